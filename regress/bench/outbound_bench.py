#!/usr/bin/python3
"""Outbound benchmark of pymaild (part of `make bench`).

    PYTHONPATH=regress /usr/bin/python3 regress/bench/outbound_bench.py
        [--quick] [--rounds N]
        [--messages N] [--size S] [--sessions C] [--keep-logs DIR]

Figures, not a pass/fail test (the exit status is 0 unless the benchmark
itself could not run).  Everything runs in a private network namespace
with only loopback (as root the script re-execs itself under `unshare -n`).

Set-up: one pymaild (loglevel 1) whose `resolver` is a real DNS server on
a loopback port (regress/lib/dnsfixture.py: ldns-testns serving a zone
written here) and whose `outboundport` is the port of a sink: Postfix's
smtp-sink(1) on 127.0.0.2, in C, which accepts everything, stores nothing
and counts (`-c`: "sess=N quit=N mesg=N" after every message and session,
written to a file that is polled here).  The zone holds ten domains
d0.test .. d9.test, each with one MX host mx.dN.test whose A record is
127.0.0.2.

Measured: regress/bench/smtp_load (C) submits N messages of S octets over
C concurrent sessions (one session per message, one recipient each) from
127.0.0.1, a noauthhosts client, so relaying is allowed; the recipients
are all at d0.test ("1 domain") or round-robin over d0..d9.test ("10
domains").  The figure is messages/s from the generator's first connect
until the sink has received all accepted messages.  A warm-up of 200
messages over all ten domains comes first (not counted), so the MX cache
is warm (TTL 3600): these are steady-state figures, DNS lookups excluded.
Rounds alternate the two cases (A B A B A B), each after `sync` and a
pause; medians are quoted.  A round ends when the sink has all accepted
messages, or when nothing more reached it for 5 s after the generator
ended (a stall: the rest was deferred).  Then `pymailadm --json queue`
must become empty; anything left (deferred: attempts and last error) is
reported, and pymaild is restarted with an emptied spool so that retries
cannot leak into a later round.  The sink's session count shows how many
outbound SMTP sessions carried the messages.

Every process started here (DNS server, sink, generator, pymaild) is
stopped by its own PID; temporary folders are removed.

Lines "FIGURE<TAB>name<TAB>value<TAB>target<TAB>verdict" are for
regress/bench/run.py's summary table.
"""

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from lib import netns, pmtest

HERE = os.path.dirname(os.path.abspath(__file__))

PYTHON = '/usr/bin/python3'
LOAD = os.path.join(HERE, 'smtp_load')
SMTP_SINK = '/usr/sbin/smtp-sink'
NETNS_VAR = netns.NETNS_VAR

SINK_ADDR = '127.0.0.2'
NDOMAINS = 10
DOMAINS = ['d%d.test' % i for i in range(NDOMAINS)]
PAUSE = 3.0             # seconds of quiet between rounds (MEASURING.md)
DELIVERY_TIMEOUT = 60   # seconds after the generator ends to wait for the sink
STALL = 5.0             # ... at most, while nothing more reaches the sink
QUEUE_TIMEOUT = 20      # seconds for the queue to become empty after a round
BUDGET = 270            # seconds for the whole script, setup included
POLL = 0.005            # seconds between looks at the sink's counter

T0 = time.monotonic()


def out(*a):
    print(*a, flush=True)


def left():
    return BUDGET - (time.monotonic() - T0)


def figure(name, value, target, verdict):
    out('FIGURE\t%s\t%s\t%s\t%s' % (name, value, target, verdict))


def indent(text, prefix='      '):
    return '\n'.join(prefix + l for l in text.rstrip('\n').splitlines())


# ----------------------------------------------------------------------
# Namespace, limits, processes

def enter_netns():
    """As root, re-exec this script in a private network namespace."""
    netns.enter(__file__)


def raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_times(pid):
    f = pmtest._stat_fields(pid)
    if not f:
        return 0.0
    return sum(int(x) for x in f[11:15]) / os.sysconf('SC_CLK_TCK')


def tree_cpu(pid):
    if not pid:
        return 0.0
    return sum(proc_times(p) for p in [pid] + pmtest.descendants(pid))


def settle():
    subprocess.run(['sync'], timeout=60)
    time.sleep(PAUSE)


def parse_result(text):
    for line in text.splitlines():
        if line.startswith('RESULT '):
            d = {}
            for kv in line.split()[1:]:
                k, _, v = kv.partition('=')
                try:
                    d[k] = float(v) if '.' in v else int(v)
                except ValueError:
                    d[k] = v
            return d
    return None


def error_lines(text):
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if l.startswith('errors:'):
            return [x.strip() for x in lines[i:] if not
                    x.startswith('RESULT ')]
    return []


def log_problems(text):
    """Distinct warning/error lines of a pymaild log, with counts."""
    kinds = {}
    for line in text.splitlines():
        if not re.search(r'warn|error|fatal|fail|refus|crit|timeout|abort'
                         r'|signal|exit|defer|died', line, re.I):
            continue
        key = re.sub(r'\b[0-9A-Fa-f]{8,}\b|\b\d+\b', 'N', line)
        key = re.sub(r'^\S+ \S+ \S+ ', '', key)
        kinds.setdefault(key, [0, line])[0] += 1
    return sorted(kinds.values(), key=lambda x: -x[0])


# ----------------------------------------------------------------------
# The sink: smtp-sink -c, its counters read from its output file

class SmtpSink:
    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.dir = tempfile.mkdtemp(prefix='pmsink-', dir=pmtest.TMPBASE)
        self.path = os.path.join(self.dir, 'counters')
        self.proc = None
        self.fd = None

    def start(self):
        argv = [SMTP_SINK, '-c', '-m', '1024']
        if os.geteuid() == 0:
            argv += ['-u', 'nobody']
        argv += ['%s:%d' % (self.addr, self.port), '1024']
        with open(self.path, 'wb') as f:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=f,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.starttime = pmtest.proc_starttime(self.proc.pid)
        self.fd = os.open(self.path, os.O_RDONLY)
        pmtest.wait_port(self.port, host=self.addr, timeout=10)
        # The probe connection counts as a session; counters() is read
        # relative to a base anyway.

    def counters(self):
        """(sessions, quits, messages) so far."""
        size = os.fstat(self.fd).st_size
        if size == 0:
            return (0, 0, 0)
        off = max(0, size - 120)
        tail = os.pread(self.fd, size - off, off).decode('ascii', 'replace')
        m = None
        for m in re.finditer(r'sess=(\d+) quit=(\d+) mesg=(\d+)', tail):
            pass
        if not m:
            return (0, 0, 0)
        return tuple(int(x) for x in m.groups())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu(self):
        return proc_times(self.proc.pid) if self.alive() else 0.0

    def stderr_text(self):
        """Anything in its output that is not a counter update."""
        try:
            with open(self.path, 'rb') as f:
                data = f.read().decode('utf-8', 'replace')
        except OSError:
            return ''
        rest = re.sub(r'sess=\d+ quit=\d+ mesg=\d+\r?', '', data)
        return rest.strip()

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------
# pymaild

def zone_text():
    lines = ['$TTL 3600']
    for d in DOMAINS:
        lines += ['$ORIGIN %s.' % d, '@    MX 10 mx', 'mx   A  %s' % SINK_ADDR]
    return '\n'.join(lines) + '\n'


def make_instance(loglevel=1):
    inst = pmtest.Instance(loglevel=loglevel, maxsessions=6000,
                           maxsessionsperip=6000, timeout=300,
                           smtpmaxmailsize=10000000)
    return inst


def role_cpu(inst):
    parent, roles, _ = inst.processes()
    d = {'parent': proc_times(parent) if parent else 0.0}
    for r, pids in roles.items():
        d[r] = sum(tree_cpu(p) for p in pids)
    return d


def healthy(inst):
    if not inst.running():
        return False
    _, roles, _ = inst.processes()
    return all(roles.get(r) for r in ('smtpd', 'queued', 'mxcache'))


def queue_list(inst):
    r = inst.adm('queue', json=True)
    if r.returncode != 0:
        return None, 'pymailadm queue: exit %d: %s' % (
            r.returncode, r.stderr.strip()[:200])
    try:
        q = json.loads(r.stdout)
    except ValueError:
        return None, 'pymailadm queue: not JSON: %r' % r.stdout[:200]
    return q, ''


def queue_summary(q):
    """One line about queue entries: how many, attempts, last errors."""
    att = {}
    errs = {}
    silent = 0
    for e in q:
        a = int(e.get('attempts', 0) or 0)
        att[a] = att.get(a, 0) + 1
        le = e.get('lasterror') or ''
        if le:
            errs[le] = errs.get(le, 0) + 1
        elif a:
            silent += 1
    s = '%d queued; attempts: %s' % (len(q), ', '.join(
        '%d x %d' % (n, a) for a, n in sorted(att.items())) or '-')
    if silent:
        s += '; %d deferred with an empty last error' % silent
    if errs:
        s += '; last errors: ' + '; '.join(
            '%d x %r' % (n, t[:160]) for t, n in
            sorted(errs.items(), key=lambda x: -x[1])[:4])
    return s


# ----------------------------------------------------------------------
# One round

def reset_queue(inst):
    """Deferred mail would come back minutes later, in another round:
    stop pymaild, empty its spool (env/ and msg/), start it again.  The
    MX cache survives (MAILDIR/mxservers).  Returns a note."""
    r = inst.stop()
    if not pmtest.wait_for(lambda: not inst.running(), 20):
        return 'pymailadm stop failed (%s); queue left as it is' % (
            (r.stdout + r.stderr).strip()[:200])
    n = 0
    for sub in ('env', 'msg'):
        d = os.path.join(inst.spooldir, sub)
        with contextlib.suppress(FileNotFoundError):
            for e in os.scandir(d):
                if e.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)
                        n += 1
    inst.start()
    inst.wait_port()
    return 'pymaild restarted with an emptied spool (%d files removed)' % n


def run_round(inst, sink, rcpts, n, c, size):
    settle()
    row = {'n': n}
    limit = max(30, min(120, int(left() - 60)))
    s0 = sink.counters()
    base = s0[2]
    cpu0 = role_cpu(inst)
    sink_cpu0 = sink.cpu()
    argv = [LOAD, '-h', '127.0.0.1', '-p', str(inst.smtp_port),
            '-c', str(c), '-n', str(n), '-s', str(size),
            '-r', ','.join(rcpts), '-t', str(limit), '-R', '30']
    t_start = time.time()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    marks = {50: None, 90: None, 100: None}
    got = last_got = 0
    last_change = time.monotonic()
    load_end = None
    deadline = time.monotonic() + limit + 30
    try:
        while True:
            got = sink.counters()[2] - base
            t = time.time()
            now = time.monotonic()
            if got != last_got:
                last_got, last_change = got, now
                row['t_last'] = t
            for pc in marks:
                if marks[pc] is None and got >= n * pc / 100.0:
                    marks[pc] = t
            if got >= n:
                break
            if load_end is None and p.poll() is not None:
                load_end = now
                deadline = min(deadline, load_end + min(
                    DELIVERY_TIMEOUT, max(10, left() - 40)))
            if now > deadline:
                row['stalled'] = 'time limit'
                break
            if load_end is not None and now - max(last_change, load_end) \
                    > STALL:
                row['stalled'] = 'no message reached the sink for %.0f s' \
                    % STALL
                break
            time.sleep(POLL)
        try:
            text = p.communicate(timeout=max(5, limit + 10 - (
                time.time() - t_start)))[0]
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            text = p.communicate()[0] + b'\n(smtp_load killed)'
    finally:
        if p.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    text = text.decode('utf-8', 'replace')
    res = parse_result(text)
    row.update(text=text, res=res, errors=error_lines(text))
    want = res['accepted'] if res else n
    row['want'] = want
    if res and res.get('first_connect_wall'):
        t_first = res['first_connect_wall']
    else:
        t_first = t_start
    if want < n and marks[100] is None and sink.counters()[2] - base >= want:
        marks[100] = time.time()
    row['marks'] = {k: (v - t_first if v else None) for k, v in marks.items()}
    row['got_at_stop'] = got
    if got and row.get('t_last', 0) > t_first:
        # What did get through, and how fast (meaningful after a stall).
        row['partial_rate'] = got / (row['t_last'] - t_first)
    if marks[100] and want:
        row['secs'] = marks[100] - t_first
        row['rate'] = want / row['secs']
    if marks[90] and want:
        row['rate90'] = 0.9 * n / (marks[90] - t_first)
    row['cpu_roles'] = {k: v - cpu0.get(k, 0.0)
                        for k, v in role_cpu(inst).items()}
    row['cpu_sink'] = sink.cpu() - sink_cpu0

    # The queue must empty (delivered messages leave the spool).  What is
    # still there after a stall was deferred: report it, then clear it.
    wait = QUEUE_TIMEOUT if not row.get('stalled') else 0.5
    if not pmtest.wait_for(lambda: queue_list(inst)[0] == [], wait,
                           interval=0.1):
        q, why = queue_list(inst)
        row['queue_left'] = queue_summary(q) if q is not None else why
        row['queue_n'] = len(q) if q is not None else None
        row['deferred'] = sum(1 for e in (q or [])
                              if int(e.get('attempts', 0) or 0) > 0)
        row['reset'] = reset_queue(inst)
    # Anything more than we sent (a message delivered twice) shows here.
    time.sleep(0.2)
    s1 = sink.counters()
    row['sink_msgs'] = s1[2] - base
    row['sink_sessions'] = s1[0] - s0[0]
    row['sink_quits'] = s1[1] - s0[1]
    row['healthy'] = healthy(inst)
    return row


def fmt_row(label, i, row):
    r = row.get('res')
    s = '  %-10s round %d: ' % (label, i)
    if row.get('rate'):
        s += 'relayed %7.1f msg/s (%d in %.2f s)' % (row['rate'], row['want'],
                                                    row['secs'])
    else:
        s += 'NOT all relayed: the sink got %d of %d (%s)' % (
            row['got_at_stop'], row['want'], row.get('stalled', '?'))
        if row.get('partial_rate'):
            s += ', those at %.1f msg/s' % row['partial_rate']
    if r:
        s += '; accepted %d/%d at %.1f msg/s, 250 p99 %.1f ms' % (
            r['accepted'], r['messages'], r['rate'], r['p99_ms'])
    else:
        s += '; generator: no result'
    m = row['marks']
    s += '\n             sink had 50%% / 90%% / 100%% at %s s after the ' \
        'first connect' % ' / '.join(
            '%.2f' % m[k] if m[k] is not None else '-' for k in (50, 90, 100))
    s += '\n             outbound SMTP sessions seen by the sink %d ' \
        '(%d ended with QUIT), messages %d' % (
            row['sink_sessions'], row['sink_quits'], row['sink_msgs'])
    want = row['want']
    if want:
        roles = row['cpu_roles']
        tot = sum(roles.values())
        s += '\n             CPU ms/msg: pymaild %.2f (%s), sink %.3f' % (
            1e3 * tot / want, ', '.join(
                '%s %.2f' % (k, 1e3 * v / want) for k, v in
                sorted(roles.items()) if v > 0),
            1e3 * row['cpu_sink'] / want)
    if row.get('queue_left'):
        s += '\n             ** left in the queue: %s\n                %s' % (
            row['queue_left'], row.get('reset', ''))
    if row['errors']:
        s += '\n' + indent('\n'.join(row['errors'][:12]), ' ' * 13)
    if not r:
        s += '\n' + indent(row['text'][-2000:], ' ' * 13)
    if not row['healthy']:
        s += '\n             ** pymaild is not healthy after this round'
    return s


# ----------------------------------------------------------------------

def main():
    global BUDGET
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='1 round of 400 messages per case')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--messages', type=int, default=2000)
    ap.add_argument('--size', type=int, default=4096)
    ap.add_argument('--sessions', type=int, default=32)
    ap.add_argument('--keep-logs', metavar='DIR',
                    help='copy the pymaild log here')
    ap.add_argument('--budget', type=int, default=BUDGET)
    ap.add_argument('--loglevel', type=int, default=1,
                    help='pymaild loglevel (the figures are for 1)')
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.messages = 1, 400
    BUDGET = a.budget

    enter_netns()
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    pmtest.set_subreaper()
    for prog, why in ((LOAD, 'run make'),
                      (SMTP_SINK, 'apt-get install postfix'),
                      (pmtest.PYMAILD, 'run make')):
        if not os.access(prog, os.X_OK):
            out('%s is missing: %s' % (prog, why))
            return 2
    try:
        from lib import dnsfixture
    except ImportError as e:
        out('regress/lib/dnsfixture.py cannot be imported: %s' % e)
        return 2
    nofile = raise_nofile()

    cases = [('1 domain', ['user%d@%s' % (i, DOMAINS[0]) for i in range(10)]),
             ('10 domains', ['user@%s' % d for d in DOMAINS])]
    out('== Outbound benchmark: %d x %d octets submitted over %d sessions '
        '(one per message, one recipient), relayed to smtp-sink on %s; '
        '%d round(s) per case' % (a.messages, a.size, a.sessions, SINK_ADDR,
                                  a.rounds))
    out('   network namespace: %s; RLIMIT_NOFILE %d; %d CPUs; load '
        'average %.2f' % (
            {'1': 'private (loopback only)', '0': 'NONE (host)'}.get(
                os.environ.get(NETNS_VAR), 'host (not root)'),
            nofile, os.cpu_count(), os.getloadavg()[0]))

    inst = dns = sink = None
    rows = {label: [] for label, _ in cases}
    try:
        inst = make_instance(a.loglevel)
        dns = dnsfixture.DNSServer(inst.resolver_port, zone_text())
        dns.start()
        sink = SmtpSink(SINK_ADDR, inst.outbound_port)
        sink.start()
        inst.start()
        inst.wait_port()
        out('   pymaild: %s, SMTP port %d, resolver 127.0.0.1:%d '
            '(ldns-testns), outboundport %d (smtp-sink -c on %s)' % (
                inst.dir, inst.smtp_port, inst.resolver_port,
                inst.outbound_port, SINK_ADDR))

        # Warm-up: every domain's MX in the cache, first forks, page cache.
        warm = run_round(inst, sink, cases[1][1], 200, a.sessions, a.size)
        out(fmt_row('warm-up', 0, warm))
        if not warm.get('got_at_stop'):
            out('   ** nothing got through in the warm-up; log (tail):')
            out(indent(inst.log_tail(30)))

        broken = False
        for i in range(1, a.rounds + 1):
            order = cases if i % 2 else cases[::-1]
            for label, rcpts in order:
                if broken:
                    break
                if left() < 40:
                    out('   (time budget: round %d of %s skipped)'
                        % (i, label))
                    continue
                if not healthy(inst):
                    out('   ** pymaild is not running properly; stopping. '
                        'Log (tail):')
                    out(indent(inst.log_tail(30)))
                    broken = True
                    break
                row = run_round(inst, sink, rcpts, a.messages, a.sessions,
                                a.size)
                out(fmt_row(label, i, row))
                rows[label].append(row)

        q, why = queue_list(inst)
        status = inst.adm('status')
        log = inst.log()
        if a.keep_logs:
            os.makedirs(a.keep_logs, exist_ok=True)
            with open(os.path.join(a.keep_logs, 'pymaild.log'), 'w') as f:
                f.write(log)
        summarize(a, cases, rows, q, why, status, log, sink)
    finally:
        for thing in (inst, sink, dns):
            if thing is None:
                continue
            with contextlib.suppress(Exception):
                if thing is inst:
                    inst.cleanup()
                elif thing is dns:
                    dns.cleanup()
                else:
                    sink.stop()
        pmtest.reap_zombies()
    return 0


def summarize(a, cases, rows, q, why, status, log, sink):
    def med(label, key):
        """Median over the rounds; a round without the figure counts as
        the slowest."""
        vals = [r.get(key) for r in rows[label]]
        if not vals:
            return None
        vals.sort(key=lambda v: (v is not None, v or 0))
        n = len(vals)
        if n % 2:
            return vals[n // 2]
        lo, hi = vals[n // 2 - 1], vals[n // 2]
        return None if lo is None or hi is None else (lo + hi) / 2.0

    def f(v, unit=' msg/s'):
        return '%.1f%s' % (v, unit) if v is not None else 'n/a'

    out('')
    out('== Outbound summary (medians of %d round(s))' % a.rounds)
    for label, _ in cases:
        rs = rows[label]
        acc = statistics.median([r['res']['rate'] for r in rs
                                 if r.get('res')]) if any(
            r.get('res') for r in rs) else None
        sess = [r['sink_sessions'] for r in rs]
        done = sum(1 for r in rs if r.get('rate'))
        out('   %-10s relayed %-14s first 90 %% %-14s (submission '
            'accepted at %s; %d of %d rounds complete; outbound sessions '
            'per round %s)' % (label, f(med(label, 'rate')),
                               f(med(label, 'rate90')), f(acc), done,
                               len(rs), '/'.join(str(s) for s in sess)))
        rate = med(label, 'rate')
        if rate is not None:
            value = f(rate)
        elif rs:
            value = 'n/a: %d/%d relayed (%s), %d deferred' % (
                    statistics.median(r['got_at_stop'] for r in rs),
                    statistics.median(r['want'] for r in rs),
                    f(med(label, 'partial_rate')),
                    statistics.median(r.get('deferred', 0) for r in rs))
        else:
            value = 'n/a'
        figure('outbound relay to a sink, %s (%d x %d B)'
               % (label, a.messages, a.size), value, '', '')
    left_rounds = [r for label, _ in cases for r in rows[label]
                   if r.get('queue_left')]
    errs = sum((r.get('res') or {}).get('errors', 0) +
               (0 if r.get('res') else 1)
               for label, _ in cases for r in rows[label])
    extra = sum(max(0, r['sink_msgs'] - r['want'])
                for label, _ in cases for r in rows[label])
    out('   submission errors seen by the generator: %d' % errs)
    out('   messages the sink got more than once (more than accepted): %d'
        % extra)
    if left_rounds:
        out('   ** %d round(s) left mail in the queue (deferred):'
            % len(left_rounds))
        for r in left_rounds:
            out('      ' + r['queue_left'])
    if q is None:
        out('   queue at the end: %s' % why)
        qfig, qv = 'unknown', 'NOT met'
    else:
        out('   queue at the end (pymailadm queue): %s' % (
            'empty' if not q else queue_summary(q)))
        qfig = str(len(q))
        qv = 'met' if not q and not left_rounds else 'NOT met'
    out(indent(status.stdout.strip(), '      pymailadm status: '))
    ndef = sum(r.get('deferred', 0) for label, _ in cases
               for r in rows[label])
    figure('outbound deferred (all rounds) / queued at the end',
           '%d / %s' % (ndef, qfig), '0 / 0', qv)
    figure('outbound duplicates at the sink', str(extra), '0',
           'met' if extra == 0 else 'NOT met')
    extra_out = sink.stderr_text()
    if extra_out:
        out('   smtp-sink said: %s' % extra_out[:500])
    probs = log_problems(log)
    if probs:
        out('   pymaild log (loglevel 1): %d distinct warning/error lines:'
            % len(probs))
        for n, line in probs[:10]:
            out('      %5d x %s' % (n, line[:200]))
    else:
        out('   pymaild log (loglevel 1): no warnings or errors')


if __name__ == '__main__':
    sys.exit(main())
