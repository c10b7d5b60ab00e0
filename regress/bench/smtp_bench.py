#!/usr/bin/python3
"""SMTP benchmark of pymaild (part of `make bench`), beside a private Postfix.

    PYTHONPATH=regress /usr/bin/python3 regress/bench/smtp_bench.py
        [--quick] [--rounds N]
        [--messages N] [--size S] [--sessions C] [--idle K] [--no-postfix]
        [--keep-logs DIR]

Figures, not a pass/fail test (the exit status is 0 unless the benchmark
itself could not run).  Everything runs in a private network namespace
with only loopback (as root the script re-execs itself under `unshare -n`;
Postfix is installed with apt-get before that, when it is missing).

1. Accept rate: regress/bench/smtp_load sends N messages of S octets over C
   concurrent sessions, one SMTP session per message, recipients alternating
   alice@ and bob@test.example.  Rounds alternate pymaild and Postfix
   (A B A B A B), each after clearing the Maildirs, `sync` and a 3 s pause;
   the median of the rounds is quoted.  The 250 after the data is durable
   in both servers (both fsync before answering).
2. End-to-end: the same rounds, from the generator's first connect until all
   accepted messages are files in the users' Maildir/new (polled).
3. Idle sessions: K sessions that said EHLO and stay silent, held by one
   pymaild smtpd; its VmRSS from /proc/PID/status.

Postfix runs as a private instance (own config, queue and data folders in a
temporary folder, a free loopback port, virtual(8) delivery into Maildirs);
a system Postfix, if any, is neither touched nor measured.  Every process
started here is stopped by its own PID; temporary folders are removed.

Lines "FIGURE<TAB>name<TAB>value<TAB>target<TAB>verdict" are for
regress/bench/run.py's summary table.
"""

import argparse
import contextlib
import os
import pwd
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
NETNS_VAR = netns.NETNS_VAR
POSTFIX_NOTE_VAR = 'PYMAILD_BENCH_POSTFIX_NOTE'
POSTFIX = '/usr/sbin/postfix'

DOMAIN = 'test.example'
USERS = {'alice': 'alicepw', 'bob': 'bobpw'}
RCPTS = ','.join('%s@%s' % (u, DOMAIN) for u in USERS)

# Targets the project set itself against Postfix on this machine.
TARGET_ACCEPT_RATIO = 5.0
TARGET_E2E_RATIO = 3.0
TARGET_IDLE_MIB = 100.0

# Seconds of quiet between rounds, after a sync (MEASURING.md: after a
# burst of deliveries everything is slower for a few seconds).
PAUSE = 4.0
# Seconds to wait for the Maildirs after a round.  (pymaild defers what
# finds no free delivery slot and retries it minutes later; waiting for
# that would only burn the time budget.)
DELIVERY_TIMEOUT = 30
BUDGET = 480            # seconds for the whole script, setup included

T0 = time.monotonic()


def out(*a):
    print(*a, flush=True)


def left():
    return BUDGET - (time.monotonic() - T0)


# ----------------------------------------------------------------------
# Namespace and Postfix package

def ensure_postfix():
    """Install Postfix when missing (needs the host's network, so this runs
    before entering the namespace).  Returns a note or ''."""
    if os.access(POSTFIX, os.X_OK):
        return ''
    if os.geteuid() != 0:
        return 'postfix is not installed and we are not root'
    out('postfix missing: apt-get install -y postfix (log: '
        '/tmp/pymaild-bench-apt.log)')
    try:
        sel = 'postfix postfix/main_mailer_type select No configuration\n'
        subprocess.run(['debconf-set-selections'], input=sel.encode(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        with open('/tmp/pymaild-bench-apt.log', 'wb') as log:
            r = subprocess.run(['apt-get', 'install', '-y', '-q', 'postfix'],
                               stdin=subprocess.DEVNULL, stdout=log,
                               stderr=log, env=env, timeout=240)
        if r.returncode != 0:
            return 'apt-get install postfix failed (exit %d)' % r.returncode
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'apt-get install postfix failed: %s' % e
    if not os.access(POSTFIX, os.X_OK):
        return 'postfix still missing after apt-get install'
    return ''


def enter_netns():
    """As root, re-exec this script in a private network namespace."""
    netns.enter(__file__)


def raise_nofile(want=65536):
    """Daemons started from here inherit this limit (pymaild does not raise
    its own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (want, max(hard, want)))
    except (ValueError, OSError):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ----------------------------------------------------------------------
# Processes and files

def proc_times(pid):
    """utime+stime+cutime+cstime of one process, in seconds."""
    f = pmtest._stat_fields(pid)
    if not f:
        return 0.0
    # after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13)
    # cstime(14)
    return sum(int(x) for x in f[11:15]) / os.sysconf('SC_CLK_TCK')


def tree_cpu(pid):
    """CPU seconds of pid and its live descendants, reaped children
    included (they are in their parent's cutime/cstime)."""
    if not pid:
        return 0.0
    return sum(proc_times(p) for p in [pid] + pmtest.descendants(pid))


def vm_kib(pid, key='VmRSS'):
    v = pmtest.proc_status(pid).get(key, '')
    m = re.match(r'(\d+)\s*kB', v)
    return int(m.group(1)) if m else None


def count_fds(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return None


def maildir_count(dirs):
    n = 0
    for d in dirs:
        with contextlib.suppress(FileNotFoundError):
            n += sum(1 for e in os.scandir(d) if not e.name.startswith('.'))
    return n


CLEARED = [0]


def clear_maildirs(dirs):
    """Empty each Maildir/new for the next round by moving it aside
    (a fresh new/ with the same owner and mode takes its place) rather
    than deleting thousands of files: on ext4 without a journal every
    inode allocation passes over the inodes freed recently (up to five
    minutes while their inode table block is dirty), so deleting here
    would slow down whichever server runs next. Both servers' folders
    are treated alike; the temporary folders go at the end."""
    CLEARED[0] += 1
    for d in dirs:
        try:
            st = os.stat(d)
        except FileNotFoundError:
            continue
        os.rename(d, '%s.bench-%d' % (d, CLEARED[0]))
        os.mkdir(d, st.st_mode & 0o7777)
        os.chown(d, st.st_uid, st.st_gid)


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
    """The generator's error summary (after 'errors: N')."""
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if l.startswith('errors:'):
            return [x.strip() for x in lines[i:] if not
                    x.startswith('RESULT ')]
    return []


def run_load(port, n, c, size, limit):
    argv = [LOAD, '-h', '127.0.0.1', '-p', str(port), '-c', str(c),
            '-n', str(n), '-s', str(size), '-r', RCPTS, '-t', str(limit),
            '-R', '30']
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=limit + 40)
        text = p.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b'').decode('utf-8', 'replace') + \
            '\n(smtp_load did not exit in time; killed)'
    return parse_result(text), text


# ----------------------------------------------------------------------
# The two servers

class Pymaild:
    name = 'pymaild'

    def __init__(self, idle):
        many = max(6000, idle + 1000)
        self.inst = pmtest.Instance(loglevel=1, maxsessions=many,
                                    maxsessionsperip=many, timeout=300,
                                    smtpmaxmailsize=10000000)
        big = str(1 << 40)
        for args in (('chdefaultopt', 'mailboxsize', big),
                     ('chdefaultopt', 'maxmailsize', '10000000')):
            r = self.inst.adm(*args)
            if r.returncode != 0:
                out('warning: pymailadm %s: %s' % (' '.join(args),
                                                   r.stderr.strip()))
        for u, pw in USERS.items():
            r = self.inst.adm('adduser', u, pw)
            if r.returncode != 0:
                raise RuntimeError('pymailadm adduser %s: %s %s'
                                   % (u, r.stdout, r.stderr))
        self.inst.start()
        self.inst.wait_port()
        self.seen_deaths = 0
        self.deaths = []        # (when, [log lines])
        self.port = self.inst.smtp_port
        self.dirs = [os.path.join(self.inst.maildir, u, 'Maildir', 'new')
                     for u in USERS]

    def daemon_pid(self):
        return self.inst.pid()

    def healthy(self):
        """All four helpers up (a dead helper stops the whole daemon)."""
        if not self.inst.running():
            return False
        _, roles, _ = self.inst.processes()
        return all(roles.get(r) for r in ('smtpd', 'queued'))

    def restart(self):
        """After a crash: start the same instance again (same port,
        same Maildirs).  Returns the log lines about the death."""
        text = self.inst.log()
        lines = [l for l in text.splitlines()
                 if re.search(r'died|killed by signal|AddressSanitizer|'
                              r'lost the channel', l)]
        new = lines[self.seen_deaths:]
        self.seen_deaths = len(lines)
        with contextlib.suppress(Exception):
            self.inst.stop()
        pmtest.wait_for(lambda: not self.inst.running(), 10)
        self.inst.start()
        self.inst.wait_port()
        return new

    def drain(self):
        """Deliver what is still queued now (deferred ones included)."""
        self.inst.adm('flush')

    def queue_note(self):
        """What pymailadm queue says about the stragglers."""
        r = self.inst.adm('queue', json=True)
        if r.returncode != 0:
            return 'pymailadm queue: exit %d %s' % (r.returncode,
                                                   r.stderr.strip()[:100])
        try:
            import json
            q = json.loads(r.stdout)
        except ValueError:
            return 'pymailadm queue: %d lines' % len(r.stdout.splitlines())
        if isinstance(q, dict):
            for k in ('messages', 'queue', 'entries'):
                if isinstance(q.get(k), list):
                    q = q[k]
                    break
        if not isinstance(q, list):
            return 'pymailadm queue: %s' % r.stdout.strip()[:120]
        deferred = [m for m in q if isinstance(m, dict) and
                    int(m.get('attempts', 0) or 0) > 0]
        errs = sorted({str(m.get('lasterror', m.get('error', ''))) for m in
                       deferred})
        return ('pymailadm queue: %d queued, %d already deferred '
                '(last errors: %s)' % (len(q), len(deferred),
                                       ', '.join(repr(e) for e in errs[:3])
                                       or '-'))

    def smtpd_pid(self):
        _, roles, _ = self.inst.processes()
        kids = roles.get('smtpd') or []
        return kids[0] if kids else None

    def log(self):
        return self.inst.log()

    def role_cpu(self):
        """{role: CPU seconds} of the parent and each helper."""
        parent, roles, _ = self.inst.processes()
        d = {'parent': proc_times(parent) if parent else 0.0}
        for r, pids in roles.items():
            d[r] = sum(tree_cpu(p) for p in pids)
        return d

    def stop(self):
        self.inst.cleanup()


MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{port}      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# Private benchmark instance written by regress/bench/smtp_bench.py.
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.example
mydomain = bench.example
myorigin = $myhostname
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
readme_directory = no
# No DNS at all (the namespace has no network anyway).
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# Accept the test recipients; no per-client limits.
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
default_process_limit = 500
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
message_size_limit = 10240000
# virtual(8) delivery into Maildirs.
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_mailbox_base = {mail}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = 0
"""


class Postfix:
    name = 'Postfix'

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='pmbench-postfix-')
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, 'etc')
        self.spool = os.path.join(self.dir, 'spool')
        self.data = os.path.join(self.dir, 'data')
        self.mail = os.path.join(self.dir, 'mail')
        self.port = pmtest.free_port()
        self.master = None
        self.master_st = None
        self.started = False
        try:
            owner = pwd.getpwnam('_pymaild')
        except KeyError:
            owner = pwd.getpwnam('postfix')
        uid, gid = owner.pw_uid, owner.pw_gid
        pf = pwd.getpwnam('postfix')
        for d in (self.conf, self.spool, self.data, self.mail):
            os.mkdir(d)
            os.chmod(d, 0o755)
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.chmod(self.data, 0o700)
        os.chown(self.mail, uid, gid)
        with open(os.path.join(self.conf, 'main.cf'), 'w') as f:
            f.write(MAIN_CF.format(spool=self.spool, data=self.data,
                                   domain=DOMAIN, conf=self.conf,
                                   mail=self.mail, uid=uid, gid=gid))
        with open(os.path.join(self.conf, 'master.cf'), 'w') as f:
            f.write(MASTER_CF.format(port='127.0.0.1:%d' % self.port))
        with open(os.path.join(self.conf, 'vmailbox'), 'w') as f:
            for u in USERS:
                f.write('%s@%s %s/Maildir/\n' % (u, DOMAIN, u))
        self.dirs = []
        for u in USERS:
            base = os.path.join(self.mail, u, 'Maildir')
            for sub in ('new', 'cur', 'tmp'):
                os.makedirs(os.path.join(base, sub), exist_ok=True)
            for dp in (os.path.join(self.mail, u), base) + tuple(
                    os.path.join(base, s) for s in ('new', 'cur', 'tmp')):
                os.chown(dp, uid, gid)
            self.dirs.append(os.path.join(base, 'new'))

    def start(self):
        self.started = True     # from here on, stop() must run
        r = self.postfix('start')
        self._find_master()
        if r.returncode != 0:
            raise RuntimeError('postfix -c %s start: exit %d: %s'
                               % (self.conf, r.returncode, r.stdout))
        pmtest.wait_port(self.port, timeout=15)

    def postfix(self, *args, timeout=60):
        env = dict(os.environ, MAIL_CONFIG=self.conf)
        try:
            p = subprocess.run([POSTFIX, '-c', self.conf] + list(args),
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env,
                               timeout=timeout)
            p.stdout = p.stdout.decode('utf-8', 'replace')
            return p
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, -1, 'timed out', '')

    def _find_master(self):
        try:
            with open(os.path.join(self.spool, 'pid', 'master.pid')) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if pmtest.pid_alive(pid) and 'master' in pmtest.proc_cmdline(pid):
            self.master = pid
            self.master_st = pmtest.proc_starttime(pid)

    def daemon_pid(self):
        return self.master

    def healthy(self):
        return bool(self.master) and pmtest.pid_alive(self.master,
                                                     self.master_st)

    def restart(self):
        return ['Postfix master (PID %s) is gone' % self.master]

    def drain(self):
        self.postfix('flush', timeout=30)

    def queue_note(self):
        return ''

    def log(self):
        return ''

    def stop(self):
        if not self.started:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        self.started = False
        try:
            if self.master is None:
                self._find_master()
            self.postfix('stop', timeout=30)
            if self.master and not pmtest.wait_for(
                    lambda: not pmtest.pid_alive(self.master,
                                                 self.master_st), 10):
                # Ours, by its PID: the master, then what it left.
                kids = pmtest.descendants(self.master)
                pmtest.kill_pid(self.master, self.master_st)
                for k in kids:
                    pmtest.kill_pid(k)
            pmtest.reap_zombies()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------
# Measurements

def one_round(server, n, c, size):
    """Clear, settle, run the generator, wait for the Maildirs.  The row
    is marked 'died' when the server was not healthy afterwards."""
    clear_maildirs(server.dirs)
    settle()
    limit = max(30, min(120, left() - 60))
    cpu0 = tree_cpu(server.daemon_pid())
    roles0 = server.role_cpu() if hasattr(server, 'role_cpu') else None
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    res, text = run_load(server.port, n, c, size, limit)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = {'text': text, 'res': res, 'errors': error_lines(text),
           'load': load}
    if not server.healthy():
        row['died'] = True
        return row
    if not res:
        return row
    want = res['accepted']
    t_first = res['first_connect_wall']
    # Delivery profile: when 50/90/99/100 % of the accepted messages
    # were files in Maildir/new (seconds from the first connect).
    marks = {50: None, 90: None, 99: None, 100: None}
    wait = min(DELIVERY_TIMEOUT, max(10, left() - 60))
    deadline = time.monotonic() + wait
    got, interval = 0, 0.005
    while want:
        got = maildir_count(server.dirs)
        t = time.time()
        for pc in marks:
            if marks[pc] is None and got >= want * pc / 100.0:
                marks[pc] = t - t_first
        if got >= want or time.monotonic() > deadline:
            break
        if not server.healthy():
            row['died'] = True
            break
        time.sleep(interval)
        if t - t_first > 5:
            interval = 0.05
    row['delivered'] = got
    row['marks'] = marks
    row['wait'] = wait
    row['cpu_server'] = tree_cpu(server.daemon_pid()) - cpu0
    if roles0 is not None and server.healthy():
        roles1 = server.role_cpu()
        row['cpu_roles'] = {k: v - roles0.get(k, 0.0)
                            for k, v in roles1.items()}
    row['cpu_client'] = (ru1.ru_utime + ru1.ru_stime) - \
        (ru0.ru_utime + ru0.ru_stime)
    if marks[90] and want:
        row['e2e90_rate'] = 0.9 * want / marks[90]
    if marks[100] and want:
        row['e2e_s'] = marks[100]
        row['e2e_rate'] = want / marks[100]
    elif got < want and server.healthy():
        row['queue_note'] = server.queue_note()
        # Leave nothing for the next round to count.
        server.drain()
        pmtest.wait_for(lambda: maildir_count(server.dirs) >= want,
                        min(30, max(5, left() - 60)))
    return row


def fmt_row(name, i, row):
    r = row.get('res')
    died = '  ** %s DIED during this round (not counted) **' % name \
        if row.get('died') else ''
    if not r:
        return '  %-8s round %d: no result%s\n%s' % (
            name, i, died, pmtest_indent(row['text']))
    s = ('  %-8s round %d: accept %7.1f msg/s (%d/%d in %.2f s), 250 p50 '
         '%.2f ms p99 %.2f ms max %.1f ms' % (
             name, i, r['rate'], r['accepted'], r['messages'], r['seconds'],
             r['p50_ms'], r['p99_ms'], r['max_ms']))
    if row.get('load') is not None:
        s += ' [load %.1f]' % row['load']
    if 'e2e_rate' in row:
        s += '; end-to-end %7.1f msg/s (%.2f s)' % (row['e2e_rate'],
                                                     row['e2e_s'])
    elif not row.get('died'):
        s += '; end-to-end: only %d of %d in the Maildirs after %d s' % (
            row.get('delivered', 0), r['accepted'], row.get('wait', 0))
    if row.get('queue_note'):
        s += '\n             ' + row['queue_note']
    m = row.get('marks')
    if m and r['accepted']:
        s += '\n             delivered 50%% / 90%% / 99%% / 100%% at %s s' % (
            ' / '.join('%.2f' % m[k] if m[k] is not None else '-'
                       for k in (50, 90, 99, 100)))
    if r['accepted']:
        s += '; CPU ms/msg server %.2f client %.2f' % (
            1e3 * row.get('cpu_server', 0) / r['accepted'],
            1e3 * row.get('cpu_client', 0) / r['accepted'])
        if row.get('cpu_roles'):
            s += ' (%s)' % ', '.join(
                '%s %.2f' % (k, 1e3 * v / r['accepted'])
                for k, v in sorted(row['cpu_roles'].items()) if v > 0)
    if row['errors']:
        s += '\n' + pmtest_indent('\n'.join(row['errors'][:12]), ' ' * 14)
    return s + died


def pmtest_indent(text, prefix='      '):
    return '\n'.join(prefix + l for l in text.rstrip('\n').splitlines())


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def figure(name, value, target, verdict):
    out('FIGURE\t%s\t%s\t%s\t%s' % (name, value, target, verdict))


def measure_idle(pm, k, hold):
    """K idle sessions on pymaild's smtpd; returns a dict."""
    smtpd = pm.smtpd_pid()
    res = {'smtpd': smtpd, 'wanted': k}
    if not smtpd:
        res['error'] = 'no smtpd process found'
        return res
    res['rss0'] = vm_kib(smtpd)
    res['fds0'] = count_fds(smtpd)
    argv = [LOAD, '-h', '127.0.0.1', '-p', str(pm.port), '-i', str(k),
            '-c', '64', '-t', '60', '-T', '150', '-R', '20']
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    text = ''
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            line = p.stdout.readline().decode('utf-8', 'replace')
            if not line:
                break
            text += line
            if line.startswith('READY'):
                ready = line
                break
        if ready:
            m = re.search(r'established=(\d+).*seconds=([\d.]+)', ready)
            res['established'] = int(m.group(1))
            res['connect_s'] = float(m.group(2))
            time.sleep(hold)
            res['rss'] = vm_kib(smtpd)
            res['hwm'] = vm_kib(smtpd, 'VmHWM')
            res['fds'] = count_fds(smtpd)
            # Does smtpd still serve others while it holds them all?
            r, t = run_load(pm.port, 200, 8, 4096, 30)
            res['during'] = r
            res['during_errors'] = error_lines(t)
            res['rss_after_load'] = vm_kib(smtpd)
            res['alive'] = pmtest.pid_alive(smtpd)
        with contextlib.suppress(OSError):
            p.send_signal(signal.SIGTERM)
        rest, _ = p.communicate(timeout=30)
        text += rest.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    res['text'] = text
    res['result'] = parse_result(text)
    res['errors'] = error_lines(text)
    # Does the memory come back once they are gone?
    time.sleep(1.0)
    res['rss_end'] = vm_kib(smtpd)
    return res


def log_problems(text):
    """Distinct warning/error lines of a pymaild log, with counts."""
    kinds = {}
    for line in text.splitlines():
        if not re.search(r'warn|error|fatal|fail|refus|crit|timeout|abort'
                         r'|signal|exit', line, re.I):
            continue
        key = re.sub(r'\b[0-9A-Fa-f]{8,}\b|\b\d+\b', 'N', line)
        key = re.sub(r'^\S+ \S+ ', '', key)   # rough: drop a timestamp
        kinds.setdefault(key, [0, line])[0] += 1
    return sorted(kinds.values(), key=lambda x: -x[0])


# ----------------------------------------------------------------------

def main():
    global BUDGET
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='1 round of 400 messages, 500 idle sessions')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--messages', type=int, default=2000)
    ap.add_argument('--size', type=int, default=4096)
    ap.add_argument('--sessions', type=int, default=32)
    ap.add_argument('--idle', type=int, default=5000)
    ap.add_argument('--hold', type=float, default=2,
                    help='seconds between establishing the idle sessions '
                    'and reading VmRSS')
    ap.add_argument('--no-postfix', action='store_true')
    ap.add_argument('--keep-logs', metavar='DIR',
                    help='copy the pymaild log here')
    ap.add_argument('--budget', type=int, default=BUDGET)
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.messages, a.idle = 1, 400, 500
    BUDGET = a.budget

    if not os.environ.get(NETNS_VAR):
        note = '' if a.no_postfix else ensure_postfix()
        os.environ[POSTFIX_NOTE_VAR] = note
        enter_netns()
    note = os.environ.get(POSTFIX_NOTE_VAR, '')

    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    pmtest.set_subreaper()
    if not os.access(LOAD, os.X_OK):
        out('smtp_load is not built (%s): run make' % LOAD)
        return 2
    nofile = raise_nofile()

    out('== SMTP benchmark: %d x %d octets, %d sessions, one session per '
        'message; %d round(s) per server' % (a.messages, a.size,
                                             a.sessions, a.rounds))
    out('   network namespace: %s; RLIMIT_NOFILE %d; %d CPUs; load '
        'average %.2f' % (
        {'1': 'private (loopback only)', '0': 'NONE (host)'}.get(
            os.environ.get(NETNS_VAR), 'host (not root)'),
        nofile, os.cpu_count(), os.getloadavg()[0]))

    servers = []
    pm = pf = None
    try:
        pm = Pymaild(a.idle)
        servers.append(pm)
        out('   pymaild: %s, port %d' % (pm.inst.dir, pm.port))
        if a.no_postfix:
            note = note or 'disabled with --no-postfix'
        elif not note:
            try:
                pf = Postfix()
                pf.start()
                servers.append(pf)
                ver = subprocess.run(
                    ['/usr/sbin/postconf', '-c', pf.conf, '-h',
                     'mail_version'], stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, timeout=10).stdout
                out('   Postfix %s: %s, port %d' % (
                    ver.decode().strip(), pf.dir, pf.port))
            except Exception as e:
                note = 'private Postfix did not start: %s' % e
                if pf:
                    pf.stop()
                pf = None
        if note:
            out('   Postfix comparison skipped: %s' % note)

        def revive(s, when):
            if s.healthy():
                return True
            try:
                lines = s.restart()
            except Exception as e:
                lines = ['restart failed: %s' % e]
            deaths.setdefault(s.name, []).append((when, lines))
            out('  ** %s died (%s); restarted. Its log says:' % (s.name,
                                                                 when))
            for l in lines[-6:]:
                out('       ' + l[:300])
            return s.healthy()

        deaths = {}
        # Warm-up (not counted): page cache, process pools, first forks.
        for s in servers:
            run_load(s.port, 200, a.sessions, a.size, 30)
            revive(s, 'warm-up')
            clear_maildirs(s.dirs)

        rows = {s.name: [] for s in servers}
        for i in range(1, a.rounds + 1):
            for s in servers:
                for attempt in (1, 2):
                    if left() < 90:
                        out('   (time budget: round %d of %s skipped)'
                            % (i, s.name))
                        break
                    if not revive(s, 'before round %d' % i):
                        break
                    row = one_round(s, a.messages, a.sessions, a.size)
                    out(fmt_row(s.name, i, row))
                    if not row.get('died'):
                        rows[s.name].append(row)
                        break
                    revive(s, 'round %d' % i)
                    if attempt == 1:
                        out('   (round %d of %s run again)' % (i, s.name))

        idle = None
        if a.idle and left() > 40 and revive(pm, 'before the idle test'):
            clear_maildirs(pm.dirs)
            settle()
            idle = measure_idle(pm, a.idle, a.hold)
            if not pm.healthy():
                idle['died'] = True
                revive(pm, 'idle test')

        log = pm.log()
        if a.keep_logs:
            os.makedirs(a.keep_logs, exist_ok=True)
            with open(os.path.join(a.keep_logs, 'pymaild.log'), 'w') as f:
                f.write(log)
        summarize(a, rows, idle, pm, pf, note, log, deaths)
    finally:
        for s in reversed(servers):
            with contextlib.suppress(Exception):
                s.stop()
        pmtest.reap_zombies()
    return 0


def summarize(a, rows, idle, pm, pf, note, log, deaths):
    def med(name, key, sub=None):
        """Median over the rounds; a round without the figure (its
        messages never all arrived) counts as the slowest, so the median
        is n/a when most rounds lack it."""
        vals = []
        for row in rows.get(name, []):
            if sub:
                r = row.get('res') or {}
                vals.append(r.get(key))
            else:
                vals.append(row.get(key))
        if not vals:
            return None
        vals.sort(key=lambda v: (v is not None, v or 0))
        n = len(vals)
        if n % 2:
            return vals[n // 2]
        lo, hi = vals[n // 2 - 1], vals[n // 2]
        return None if lo is None or hi is None else (lo + hi) / 2.0

    out('')
    out('== SMTP summary (medians of %d round(s); Postfix beside)' % a.rounds)
    pm_acc = med('pymaild', 'rate', True)
    pm_e2e = med('pymaild', 'e2e_rate')
    pf_acc = med('Postfix', 'rate', True) if pf else None
    pf_e2e = med('Postfix', 'e2e_rate') if pf else None

    def f(v, unit=' msg/s'):
        return '%.1f%s' % (v, unit) if v is not None else 'n/a'

    out('   accept rate        pymaild %-14s Postfix %s' % (f(pm_acc),
                                                           f(pf_acc)))
    out('   250 latency p50    pymaild %-14s Postfix %s' % (
        f(med('pymaild', 'p50_ms', True), ' ms'),
        f(med('Postfix', 'p50_ms', True), ' ms')))
    out('   250 latency p99    pymaild %-14s Postfix %s' % (
        f(med('pymaild', 'p99_ms', True), ' ms'),
        f(med('Postfix', 'p99_ms', True), ' ms')))
    def done(name):
        rs = rows.get(name, [])
        return '%d of %d rounds complete' % (
            sum(1 for r in rs if r.get('e2e_rate')), len(rs))
    out('   end-to-end         pymaild %-14s Postfix %-14s (%s; %s)' % (
        f(pm_e2e), f(pf_e2e), 'pymaild ' + done('pymaild'),
        'Postfix ' + done('Postfix')))
    pm_e90 = med('pymaild', 'e2e90_rate')
    pf_e90 = med('Postfix', 'e2e90_rate') if pf else None
    out('   end-to-end, 90 %%   pymaild %-14s Postfix %s   (first 90 %% '
        'of the messages in the Maildirs)' % (f(pm_e90), f(pf_e90)))
    figure('smtp accept rate (%d x %d B, %d sessions)'
           % (a.messages, a.size, a.sessions), f(pm_acc),
           'Postfix %s' % f(pf_acc), '')
    figure('smtp 250 latency p50 / p99', '%s / %s' % (
        f(med('pymaild', 'p50_ms', True), ' ms'),
        f(med('pymaild', 'p99_ms', True), ' ms')),
        'Postfix %s / %s' % (f(med('Postfix', 'p50_ms', True), ' ms'),
                             f(med('Postfix', 'p99_ms', True), ' ms')), '')
    figure('smtp end-to-end into Maildir', f(pm_e2e),
           'Postfix %s' % f(pf_e2e), '')
    figure('smtp end-to-end, first 90 % of the messages', f(pm_e90),
           'Postfix %s' % f(pf_e90), '')
    errs = sum((r.get('res') or {}).get('errors', 0) +
               (0 if r.get('res') else 1) for r in rows.get('pymaild', []))
    failed = sum((r.get('res') or {}).get('failed', 0)
                 for r in rows.get('pymaild', []))
    if pm_acc and pf_acc:
        ratio = pm_acc / pf_acc
        v = 'met' if ratio >= TARGET_ACCEPT_RATIO else 'NOT met'
        out('   accept ratio pymaild/Postfix %.2fx (target >= %.0fx): %s'
            % (ratio, TARGET_ACCEPT_RATIO, v))
        figure('smtp accept ratio pymaild/Postfix', '%.2fx' % ratio,
               '>= %.0fx' % TARGET_ACCEPT_RATIO, v)
    else:
        out('   accept ratio: n/a (%s)' % (note or 'no figures'))
        figure('smtp accept ratio pymaild/Postfix', 'n/a',
               '>= %.0fx' % TARGET_ACCEPT_RATIO, 'skipped: ' + (
                   note or 'no figures'))
    if pm_e2e and pf_e2e:
        ratio = pm_e2e / pf_e2e
        v = 'met' if ratio >= TARGET_E2E_RATIO else 'NOT met'
        out('   end-to-end ratio pymaild/Postfix %.2fx (target >= %.0fx): %s'
            % (ratio, TARGET_E2E_RATIO, v))
        figure('smtp end-to-end ratio pymaild/Postfix', '%.2fx' % ratio,
               '>= %.0fx' % TARGET_E2E_RATIO, v)
    else:
        if not note and pm_e2e is None and rows.get('pymaild'):
            why = ('in most rounds pymaild did not have all accepted '
                   'messages in the Maildirs within %d s'
                   % DELIVERY_TIMEOUT)
            verdict = 'NOT met: ' + why
        else:
            why = note or 'no figures'
            verdict = 'skipped: ' + why
        out('   end-to-end ratio: n/a (%s)' % why)
        if pm_e90 and pf_e90:
            out('   end-to-end ratio on the first 90 %%: %.2fx'
                % (pm_e90 / pf_e90))
        figure('smtp end-to-end ratio pymaild/Postfix', 'n/a',
               '>= %.0fx' % TARGET_E2E_RATIO, verdict)
    out('   pymaild generator errors over all rounds: %d (messages failed: '
        '%d)' % (errs, failed))
    figure('smtp errors seen by the generator (pymaild)', str(errs), '0',
           'met' if errs == 0 else 'NOT met')

    if idle is None:
        out('   idle sessions: not measured')
        figure('smtpd idle sessions VmRSS', 'n/a',
               '< %.0f MiB' % TARGET_IDLE_MIB, 'skipped')
    elif idle.get('died') and 'rss' not in idle:
        out('   idle sessions: pymaild died during the idle test')
        figure('smtpd idle sessions VmRSS', 'n/a',
               '< %.0f MiB' % TARGET_IDLE_MIB, 'failed: pymaild died')
    elif 'error' in idle or 'rss' not in idle:
        out('   idle sessions: %s' % idle.get('error', 'failed'))
        out(pmtest_indent(idle.get('text', '')))
        figure('smtpd idle sessions VmRSS', 'n/a',
               '< %.0f MiB' % TARGET_IDLE_MIB, 'failed')
    else:
        est = idle['established']
        mib = idle['rss'] / 1024.0
        ok = est >= idle['wanted'] and mib < TARGET_IDLE_MIB
        v = 'met' if ok else 'NOT met'
        per = ((idle['rss'] - (idle['rss0'] or 0)) / est) if est else 0
        out('   idle sessions: %d of %d established in %.2f s; smtpd '
            '(PID %d) VmRSS %.1f MiB (%.1f MiB before, ~%.1f KiB per '
            'session, VmHWM %.1f MiB, %s fds); target < %.0f MiB with %d: '
            '%s' % (est, idle['wanted'], idle['connect_s'], idle['smtpd'],
                    mib, (idle['rss0'] or 0) / 1024.0, per,
                    (idle['hwm'] or 0) / 1024.0, idle['fds'],
                    TARGET_IDLE_MIB, idle['wanted'], v))
        d = idle.get('during')
        if d:
            out('   while holding them: 200 messages over 8 sessions at '
                '%.1f msg/s, 250 p99 %.2f ms, %d errors' % (
                    d['rate'], d['p99_ms'], d['errors']))
            for e in idle.get('during_errors', [])[:8]:
                out('      ' + e)
        r = idle.get('result') or {}
        if r.get('closed'):
            out('   %d idle sessions were closed by the server while held'
                % r['closed'])
        for e in idle['errors'][:8]:
            out('      ' + e)
        if idle.get('died'):
            out('   ** pymaild died during the idle test (see below)')
        else:
            out('   smtpd VmRSS after the idle sessions closed: %.1f MiB' % (
                (idle.get('rss_end') or 0) / 1024.0))
        figure('smtpd VmRSS with %d idle sessions' % idle['wanted'],
               '%.1f MiB (%d established)' % (mib, est),
               '< %.0f MiB' % TARGET_IDLE_MIB, v)

    nd = len(deaths.get('pymaild', []))
    if nd:
        out('   ** pymaild died %d time(s) during the benchmark (restarted '
            'each time):' % nd)
        for when, lines in deaths['pymaild']:
            out('      %s: %s' % (when, '; '.join(l[-160:] for l in
                                                   lines[-2:])))
    figure('pymaild crashes during the benchmark', str(nd), '0',
           'met' if nd == 0 else 'NOT met')
    if deaths.get('Postfix'):
        out('   Postfix died %d time(s)' % len(deaths['Postfix']))
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
