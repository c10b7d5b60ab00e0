#!/usr/bin/python3
"""The pymaild regression suite runner (what `make regress` calls).

    /usr/bin/python3 regress/run.py [-v] [-k PATTERN] [-j N] [FILE...]

Runs every executable regress/unit/test_* (C unit tests printing
"PASS name" / "FAIL name: why") and every regress/*/test_*.py (unittest,
one worker process per file, N files at a time).  As root it first re-execs
itself in a private network namespace with only loopback, so no daemon a
test starts can reach another host.  The last line is always
"N passed, N failed" (", N skipped" when some were); the exit status is 0
iff nothing failed.

Test files import their helpers from the package regress/lib (`from lib
import pmtest`, `from lib.smtputil import SmtpCase`) and never edit
sys.path: regress/ is on the module path of this script (its folder) and
of every worker (PYTHONPATH), and unittest's discovery adds the test
file's own folder (a test may import a sibling test module).  One file
without the runner (no private network namespace, no timeouts then):

    PYTHONPATH=regress /usr/bin/python3 -m unittest discover -v \
        -s regress/smtp -p test_smtp_basic.py
"""

import argparse
import concurrent.futures
import glob
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGRESS = os.path.join(ROOT, 'regress')
PYTHON = '/usr/bin/python3'

# Seconds; the environment may override them (a slow machine, a debugger).
UNIT_TIMEOUT = int(os.environ.get('PYMAILD_UNIT_TIMEOUT', 120))  # a C binary
TEST_TIMEOUT = int(os.environ.get('PYMAILD_TEST_TIMEOUT', 120))  # a method
FILE_TIMEOUT = int(os.environ.get('PYMAILD_FILE_TIMEOUT', 480))  # a .py file

from lib import netns                   # regress/ is this script's folder

NETNS_VAR = netns.NETNS_VAR


# ----------------------------------------------------------------------
# Private network namespace

def enter_netns():
    """As root, re-exec this script in a private network namespace."""
    netns.enter(__file__)


def set_subreaper():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


def live_descendants(pid):
    kids = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                data = f.read().decode('utf-8', 'replace')
        except OSError:
            continue
        rest = data[data.rfind(')') + 2:].split()
        if rest and rest[0] not in ('Z', 'X', 'x'):
            kids.setdefault(int(rest[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(
                'utf-8', 'replace').strip()
    except OSError:
        return '?'


def kill_leftovers(me):
    """End every process still below us; return a description of each."""
    found = []
    for pid in live_descendants(me):
        found.append('%d %s' % (pid, cmdline(pid)))
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    reap()
    return found


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ----------------------------------------------------------------------
# Results

class Record:
    __slots__ = ('name', 'status', 'output', 'secs')

    def __init__(self, name, status, output='', secs=None):
        self.name = name
        self.status = status        # 'pass', 'fail', 'skip'
        self.output = output        # failure text or skip reason
        self.secs = secs            # duration, when known


def indent(text, prefix='    '):
    return '\n'.join(prefix + l for l in text.rstrip('\n').splitlines())


def tail(text, n=80):
    lines = text.rstrip('\n').splitlines()
    if len(lines) > n:
        lines = ['[... %d lines cut ...]' % (len(lines) - n)] + lines[-n:]
    return '\n'.join(lines)


def report_block(label, records, elapsed, verbose):
    out = []
    for r in records:
        took = ' (%.2f s)' % r.secs if verbose and r.secs is not None else ''
        if r.status == 'fail':
            out.append('FAIL %s%s' % (r.name, took))
            if r.output.strip():
                out.append(indent(r.output))
        elif r.status == 'skip':
            out.append('SKIP %s: %s' % (r.name, r.output))
        elif verbose:
            out.append('PASS %s%s' % (r.name, took))
    n = {s: sum(1 for r in records if r.status == s)
         for s in ('pass', 'fail', 'skip')}
    line = '== %s: %d passed, %d failed' % (label, n['pass'], n['fail'])
    if n['skip']:
        line += ', %d skipped' % n['skip']
    out.append(line + ' (%.1f s)' % elapsed)
    return '\n'.join(out)


# ----------------------------------------------------------------------
# C unit tests

def find_units():
    out = []
    for p in sorted(glob.glob(os.path.join(REGRESS, 'unit', 'test_*'))):
        base = os.path.basename(p)
        if '.' in base or not os.path.isfile(p) or not os.access(p, os.X_OK):
            continue
        out.append(p)
    return out


def run_unit(path, pattern):
    """Run one unit binary; returns the records whose names match."""
    base = 'unit/' + os.path.basename(path)
    try:
        p = subprocess.run([path], cwd=ROOT, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=UNIT_TIMEOUT)
        rc, out, err = p.returncode, p.stdout, p.stderr
        timed_out = False
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b'', e.stderr or b''
        timed_out = True
    out = out.decode('utf-8', 'replace')
    err = err.decode('utf-8', 'replace')
    records, failed = [], 0
    for line in out.splitlines():
        if line.startswith('PASS '):
            records.append(Record('%s:%s' % (base, line[5:].strip()),
                                  'pass'))
        elif line.startswith('FAIL '):
            name, _, why = line[5:].partition(':')
            records.append(Record('%s:%s' % (base, name.strip()), 'fail',
                                  why.strip() + ('\n' + tail(err, 40)
                                                 if err.strip() else '')))
            failed += 1
    if timed_out or (rc != 0 and not failed):
        if timed_out:
            why = 'timed out after %d s' % UNIT_TIMEOUT
        elif rc < 0:
            why = 'killed by signal %d' % -rc
        else:
            why = 'exit status %d without a FAIL line' % rc
        records.append(Record(base, 'fail', why + '\n' +
                              tail(out + err, 60)))
    if pattern:
        records = [r for r in records if pattern in r.name]
    return records


# ----------------------------------------------------------------------
# Python test files: the parent side

def find_pyfiles():
    return sorted(glob.glob(os.path.join(REGRESS, '*', 'test_*.py')))


# How long each file took last time (written after every full run), so
# the longest start first and two jobs end together: run in name order,
# a 80-second file drawn last kept one job busy alone for a minute.
TIMINGS = os.path.join(REGRESS, '.timings.json')
# Before any run on this checkout: the ones known to be long.
SLOW_HINTS = {'tls/test_tls_testssl.py': 80, 'pop3/test_pop3_auth.py': 55,
              'outbound/test_outbound_badremote.py': 45,
              'outbound/test_outbound_mx.py': 37, 'package/test_deb.py': 36,
              'hostile/test_hostile_types.py': 34,
              'outbound/test_outbound_defer.py': 32,
              'smtp/test_smtp_data.py': 29}


def longest_first(pyfiles):
    try:
        with open(TIMINGS) as f:
            known = json.load(f)
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}

    def secs(path):
        rel = os.path.relpath(path, REGRESS)
        v = known.get(rel, SLOW_HINTS.get(rel, 0))
        return v if isinstance(v, (int, float)) else 0
    return sorted(pyfiles, key=secs, reverse=True)


def save_timings(times):
    try:
        with open(TIMINGS) as f:
            known = json.load(f)
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    known.update(times)
    tmp = TIMINGS + '.tmp'
    try:
        with open(tmp, 'w') as f:
            json.dump(known, f, indent=0, sort_keys=True)
        os.replace(tmp, TIMINGS)
    except OSError:
        pass            # a read-only checkout runs in name order


_running = set()
_port_slots = queue.Queue(1)    # main() sizes it to the job count
_port_slots.put(0)
_running_lock = threading.Lock()


def run_pyfile(path, pattern, verbose):
    rel = os.path.relpath(path, REGRESS)
    fd, resfile = tempfile.mkstemp(prefix='pmrun-', suffix='.jsonl')
    os.close(fd)
    logf = tempfile.TemporaryFile()
    env = dict(os.environ)
    env['PYTHONPATH'] = REGRESS + (os.pathsep + env['PYTHONPATH']
                               if env.get('PYTHONPATH') else '')
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    slot = _port_slots.get()
    env['PYMAILD_PORT_SLOT'] = '%d/%d' % (slot, _port_slots.maxsize)
    argv = [PYTHON, os.path.abspath(__file__), '--worker', path, resfile]
    if pattern:
        argv += ['-k', pattern]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                         stdout=logf, stderr=logf, start_new_session=True)
    with _running_lock:
        _running.add(p)
    timed_out = False
    try:
        p.wait(FILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop_worker(p)
    finally:
        with _running_lock:
            _running.discard(p)
        _port_slots.put(slot)
    elapsed = time.monotonic() - t0
    records, done, termed = [], False, False
    try:
        with open(resfile) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get('done'):
                    done = True
                    continue
                termed = termed or d.get('term', False)
                records.append(Record(d['name'], d['status'],
                                      d.get('output', ''), d.get('secs')))
    finally:
        os.unlink(resfile)
    logf.seek(0)
    log = logf.read().decode('utf-8', 'replace')
    logf.close()
    if (timed_out and not termed) or (not timed_out and
                                      (not done or p.returncode != 0)):
        if timed_out:
            why = 'timed out after %d s' % FILE_TIMEOUT
        elif p.returncode < 0:
            why = 'worker killed by signal %d' % -p.returncode
        else:
            why = 'worker exit status %d' % p.returncode
        records.append(Record(rel, 'fail', why + '\n' + tail(log, 60)))
    return rel, records, elapsed


def stop_worker(p):
    """SIGTERM lets the worker clean its instances; then SIGKILL."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except OSError:
        pass
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


# ----------------------------------------------------------------------
# Python test files: the worker side (one process per file)

class TestTimeout(Exception):
    pass


def worker(path, resfile, pattern):
    import unittest

    set_subreaper()
    folder = os.path.dirname(os.path.abspath(path))
    relfolder = os.path.relpath(folder, REGRESS)
    out = open(resfile, 'a')

    def emit(name, status, output='', secs=None, **more):
        d = {'name': name, 'status': status, 'output': output, 'secs': secs}
        d.update(more)
        out.write(json.dumps(d) + '\n')
        out.flush()

    current = {}

    def on_term(signum, frame):
        pm = sys.modules.get('lib.pmtest')
        if pm:
            try:
                pm.cleanup_all()
            except Exception:
                pass
        emit(current.get('name') or '%s/%s' % (relfolder,
                                               os.path.basename(path)),
             'fail', 'still running when the file was stopped (signal %d, '
             'file timeout %d s)' % (signum, FILE_TIMEOUT), term=True)
        out.close()
        os._exit(3)
    signal.signal(signal.SIGTERM, on_term)

    def on_alarm(signum, frame):
        signal.alarm(30)    # a hanging cleanup gets interrupted too
        raise TestTimeout('test timed out after %d s' % TEST_TIMEOUT)
    signal.signal(signal.SIGALRM, on_alarm)

    def flatten(suite):
        for t in suite:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    loader = unittest.TestLoader()
    suite = loader.discover(folder, pattern=os.path.basename(path),
                            top_level_dir=folder)
    load_failed = unittest.loader._FailedTest
    tests = []
    for t in flatten(suite):
        name = '%s/%s' % (relfolder, t.id())
        if isinstance(t, load_failed) or not pattern or pattern in name:
            tests.append(t)

    class Result(unittest.TestResult):
        def __init__(self):
            super().__init__()
            self.buffer = True
            self.cur = None

        def _name(self, test):
            if isinstance(test, load_failed):
                return '%s/%s:import' % (relfolder, os.path.basename(path))
            return '%s/%s' % (relfolder, test.id())

        def _text(self, test, err, kept):
            # A binary that is not built: one line, not a traceback.
            if err[0].__name__ == 'MissingBinary':
                return str(err[1])
            return kept

        def startTest(self, test):
            super().startTest(test)
            self.cur = {'test': test, 'status': 'pass', 'output': [],
                        't0': time.monotonic()}
            current['name'] = self._name(test)
            signal.alarm(TEST_TIMEOUT)

        def stopTest(self, test):
            signal.alarm(0)
            current.pop('name', None)
            super().stopTest(test)
            c, self.cur = self.cur, None
            if c is not None:
                emit(self._name(test), c['status'], '\n'.join(c['output']),
                     round(time.monotonic() - c['t0'], 3))

        def _fail(self, test, text):
            if self.cur is not None and self.cur['test'] is test:
                self.cur['status'] = 'fail'
                self.cur['output'].append(text)
            else:   # setUpClass/module errors come outside a test
                emit('%s/%s' % (relfolder, str(test)), 'fail', text)

        def addError(self, test, err):
            super().addError(test, err)
            self._fail(test, self._text(test, err, self.errors[-1][1]))

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._fail(test, self._text(test, err, self.failures[-1][1]))

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                self._fail(test, '[%s]\n%s' % (
                    subtest._subDescription(),
                    self._exc_info_to_string(err, test)))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            if self.cur is not None and self.cur['test'] is test:
                self.cur['status'] = 'skip'
                self.cur['output'] = [reason]
            else:
                emit('%s/%s' % (relfolder, str(test)), 'skip', reason)

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._fail(test, 'unexpected success')

    result = Result()
    unittest.TestSuite(tests).run(result)
    signal.alarm(0)

    # Nothing a test started may outlive the file.
    pm = sys.modules.get('lib.pmtest')
    if pm:
        pm.cleanup_all()
    left = kill_leftovers(os.getpid())
    if left:
        emit('%s/%s:leftover-processes' % (relfolder,
                                           os.path.basename(path)),
             'fail', 'processes still running after the tests (killed):\n'
             + '\n'.join(left))
    out.write(json.dumps({'done': True}) + '\n')
    out.close()
    return 0


# ----------------------------------------------------------------------
# Main

def main():
    ap = argparse.ArgumentParser(description='pymaild regression suite')
    ap.add_argument('-k', dest='pattern', default=None,
                    help='run only tests whose name contains PATTERN')
    ap.add_argument('-v', dest='verbose', action='store_true',
                    help='list passing tests too')
    ap.add_argument('-j', dest='jobs', type=int, default=2,
                    help='Python test files run at once (default 2)')
    ap.add_argument('--worker', nargs=2, metavar=('FILE', 'RESULTS'),
                    help=argparse.SUPPRESS)
    ap.add_argument('files', nargs='*',
                    help='only these test files / unit binaries')
    args = ap.parse_args()

    if args.worker:
        return worker(args.worker[0], args.worker[1], args.pattern)

    enter_netns()
    set_subreaper()
    t0 = time.monotonic()

    units, pyfiles = find_units(), find_pyfiles()
    if args.files:
        want = {os.path.realpath(f) for f in args.files}
        units = [u for u in units if os.path.realpath(u) in want]
        pyfiles = [p for p in pyfiles if os.path.realpath(p) in want]

    ns = os.environ.get(NETNS_VAR)
    print('pymaild regress: %d unit binaries, %d test files%s%s' % (
        len(units), len(pyfiles),
        ', private network namespace' if ns == '1' else
        ', host network namespace (daemons bind loopback only)',
        ', filter -k %r' % args.pattern if args.pattern else ''))
    for prog in ('pymaild/pymaild', 'admin/pymailadm'):
        if not os.access(os.path.join(ROOT, prog), os.X_OK):
            print('note: %s is not built: its tests will fail' % prog)
    sys.stdout.flush()

    allrecs = []
    lock = threading.Lock()

    def show(label, records, elapsed):
        with lock:
            allrecs.extend(records)
            print(report_block(label, records, elapsed, args.verbose))
            sys.stdout.flush()

    for u in units:
        t = time.monotonic()
        recs = run_unit(u, args.pattern)
        if recs:
            show(os.path.relpath(u, REGRESS), recs, time.monotonic() - t)

    jobs = max(1, args.jobs)
    # Files running at once pick their ports from separate slices of the
    # range, so two of them never both find one port free and both bind it.
    global _port_slots
    _port_slots = queue.Queue(jobs)
    for i in range(jobs):
        _port_slots.put(i)
    pool = concurrent.futures.ThreadPoolExecutor(jobs)
    try:
        futs = [pool.submit(run_pyfile, f, args.pattern, args.verbose)
                for f in longest_first(pyfiles)]
        times = {}
        for fut in concurrent.futures.as_completed(futs):
            rel, recs, elapsed = fut.result()
            if recs:
                show(rel, recs, elapsed)
            times[rel] = round(elapsed, 1)
        if not args.pattern:
            save_timings(times)
    except KeyboardInterrupt:
        # Workers run in their own sessions: they did not see the ^C.
        pool.shutdown(wait=False, cancel_futures=True)
        with _running_lock:
            workers = list(_running)
        for p in workers:
            stop_worker(p)
        kill_leftovers(os.getpid())
        print('interrupted')
        return 130
    pool.shutdown()

    left = kill_leftovers(os.getpid())
    if left:
        show('leftovers', [Record('leftover-processes', 'fail',
                                  'still running after the suite '
                                  '(killed):\n' + '\n'.join(left))], 0)

    n = {s: sum(1 for r in allrecs if r.status == s)
         for s in ('pass', 'fail', 'skip')}
    print('time %.1f s' % (time.monotonic() - t0))
    line = '%d passed, %d failed' % (n['pass'], n['fail'])
    if n['skip']:
        line += ', %d skipped' % n['skip']
    print(line)
    return 1 if n['fail'] else 0


if __name__ == '__main__':
    sys.exit(main())
