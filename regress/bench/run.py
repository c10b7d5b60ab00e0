#!/usr/bin/python3
"""`make bench`: pymaild's benchmarks, one after the other.

    /usr/bin/python3 regress/bench/run.py [ARGS for smtp_bench.py...]
    /usr/bin/python3 regress/bench/run.py --tls-only [ARGS for tls_bench.py]
    /usr/bin/python3 regress/bench/run.py --auth-only [ARGS for auth_bench.py]

Runs regress/bench/smtp_bench.py, then regress/bench/pop3_bench.py when
it exists, then outbound_bench.py, tls_bench.py (--tls-only: the TLS
one alone) and auth_bench.py (--auth-only: that one alone), each as its
own process (each one sets up its private network namespace and daemons,
and cleans them up), streams their output, and ends with a summary table of every figure they printed.

A benchmark reports a figure with a line
    FIGURE<TAB>name<TAB>value<TAB>target<TAB>verdict
(verdict "met", "NOT met", "skipped: why" or empty when there is no
target).  Figures, not a test: the exit status is 0 unless a benchmark
could not run at all.
"""

import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = '/usr/bin/python3'

# Seconds each benchmark may take before it is stopped (the whole of
# `make bench` should stay under ~10 minutes).
LIMITS = {'smtp_bench.py': 540, 'pop3_bench.py': 420, 'tls_bench.py': 300,
          'auth_bench.py': 270}


def run_one(name, args):
    path = os.path.join(HERE, name)
    limit = int(os.environ.get('PYMAILD_BENCH_LIMIT', LIMITS.get(name, 300)))
    print('#### %s' % name, flush=True)
    figures, t0 = [], time.monotonic()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    # The benchmarks import the test helpers as the package lib.
    env['PYTHONPATH'] = os.path.join(ROOT, 'regress') + (
        os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    p = subprocess.Popen([PYTHON, path] + args, cwd=ROOT, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    status = None
    try:
        deadline = t0 + limit
        for raw in p.stdout:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            if line.startswith('FIGURE\t'):
                f = (line.split('\t') + [''] * 5)[1:5]
                figures.append(f)
            else:
                print(line, flush=True)
            if time.monotonic() > deadline:
                status = 'stopped after %d s' % limit
                break
    except KeyboardInterrupt:
        status = 'interrupted'
    finally:
        if p.poll() is None:
            # SIGTERM lets it stop its daemons; it is its own session.
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                p.wait(40)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        p.stdout.close()
    rc = p.wait()
    if status is None:
        status = 'ok' if rc == 0 else 'exit status %d' % rc
    return figures, status, time.monotonic() - t0


def table(rows):
    heads = ('benchmark', 'figure', 'measured', 'target / peer', 'verdict')
    widths = [len(h) for h in heads]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = min(max(widths[i], len(c)), 60)
    fmt = '  '.join('%%-%ds' % w for w in widths)
    lines = [fmt % heads, fmt % tuple('-' * w for w in widths)]
    lines += [fmt % tuple(r) for r in rows]
    return '\n'.join(l.rstrip() for l in lines)


def main():
    args = sys.argv[1:]
    benches = [('smtp_bench.py', args)]
    if os.path.isfile(os.path.join(HERE, 'pop3_bench.py')):
        benches.append(('pop3_bench.py', []))
    if os.path.isfile(os.path.join(HERE, 'outbound_bench.py')):
        benches.append(('outbound_bench.py', []))
    benches.append(('tls_bench.py', []))
    benches.append(('auth_bench.py', []))
    if '--tls-only' in args:
        args.remove('--tls-only')
        benches = [('tls_bench.py', args)]
    if '--auth-only' in args:
        args.remove('--auth-only')
        benches = [('auth_bench.py', args)]
    rows, statuses, bad = [], [], 0
    for name, a in benches:
        figs, status, secs = run_one(name, a)
        statuses.append('%s: %s (%.0f s)' % (name, status, secs))
        if status != 'ok':
            bad += 1
        label = name[:-len('_bench.py')] if name.endswith('_bench.py') \
            else name
        for f in figs:
            rows.append([label] + f)
        print(flush=True)
    if not os.path.isfile(os.path.join(HERE, 'pop3_bench.py')) and \
            len(benches) > 1:
        statuses.append('pop3_bench.py: not present, skipped')
    print('#### summary')
    if rows:
        print(table(rows))
    else:
        print('(no figures)')
    for s in statuses:
        print('  ' + s)
    return 1 if bad == len(benches) else 0


if __name__ == '__main__':
    sys.exit(main())
