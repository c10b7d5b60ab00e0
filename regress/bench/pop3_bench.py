#!/usr/bin/python3
"""POP3 benchmark of pymaild, beside a private Dovecot.

    PYTHONPATH=regress /usr/bin/python3 regress/bench/pop3_bench.py
        [--rounds N] [--quick]
        [--messages N] [--big N] [--logins N] [--no-dovecot]
        [--baseline TREE]

Figures, not a pass/fail test (the exit status is 0 unless the benchmark
itself could not run).  Everything runs in a private network namespace
with only loopback (as root the script re-execs itself under `unshare -n`).

The same client, regress/bench/pop3_load (C), measures both servers on
copies of the same Maildir (hard links of one corpus, so the page cache is
shared and neither server is favoured by it):

1. Retrieval of N messages of 4 KiB (default 10,000): RETR 1..N one at a
   time, then pipelined (64 in flight); messages/s and MB/s.
2. Retrieval of 100 messages of 1 MiB, one at a time and pipelined (8).
3. STAT + LIST + UIDL on the 4 KiB mailbox: best and median of 10 runs.
4. Logins per second of a polling client: the same user and password
   again and again (connect, USER, PASS, QUIT), one after another; and
   the first login after a password change, which pays the full yescrypt
   cost on both servers.

Dovecot is installed from Debian's packages when it is missing (apt-get,
before entering the namespace; --no-dovecot skips it).  Rounds alternate
the servers (A B, then B A, ...), each with fresh copies, after `sync`
and a pause (MEASURING.md); medians are quoted.  Dovecot
(dovecot-core + dovecot-pop3d) runs privately: own config, base_dir and
log in a temporary folder, stock settings otherwise (a login process per
connection, no auth cache), a passwd-file with the same yescrypt hashes.

--baseline TREE adds a third server: pymaild as built in another checkout
(e.g. `git worktree add /tmp/base OLDCOMMIT && make -C /tmp/base`),
measured in the same rounds, so a change is judged against the code
before it on the same machine at the same moment; each figure is then
also given as the median of the rounds' own ratios to it.

Lines "FIGURE<TAB>name<TAB>value<TAB>target<TAB>verdict" are for the
summary of regress/bench/run.py; main() prints everything.
"""

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from lib import netns, pmtest

HERE = os.path.dirname(os.path.abspath(__file__))

LOAD = os.path.join(HERE, 'pop3_load')
NETNS_VAR = netns.NETNS_VAR
DOVECOT = '/usr/sbin/dovecot'
PAUSE = 2.0

# Targets the project set itself against Dovecot on this machine.
TARGET_RETR_RATIO = 1.5
TARGET_LIST_MS = 50.0
TARGET_LOGIN_RATIO = 10.0
# A change may cost at most 5% of a figure against the code before it.
TARGET_BASELINE = 0.95

USERS = {'bench4k': 'bench4k-pw', 'bench1m': 'bench1m-pw',
         'poll': 'poll-pw'}


def out(*a):
    print(*a, flush=True)


def install_dovecot():
    """Dovecot is the yardstick: bring it from Debian's packages when it
    is missing (machines are handed over fresh). Before the private
    network namespace, which has no route to the package mirror. Our
    instance runs with its own config whether or not the package's
    service was started."""
    if os.access(DOVECOT, os.X_OK) or not shutil.which('apt-get'):
        return
    out('pop3_bench: installing dovecot-core and dovecot-pop3d ...')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for argv in (['apt-get', 'update', '-qq'],
                 ['apt-get', 'install', '-y', '-qq', 'dovecot-core',
                  'dovecot-pop3d']):
        r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            out('pop3_bench: %s failed: %s' % (' '.join(argv),
                                               r.stderr.strip()[-300:]))
            return


def enter_netns():
    """As root, re-exec this script in a private network namespace."""
    netns.enter(__file__)


# ----------------------------------------------------------------------
# The corpus: message files as the delivery side names them.

def message(i, size):
    head = ('Return-Path: <sender%d@remote.example>\n'
            'Delivered-To: user@test.example\n'
            'From: Sender %d <sender%d@remote.example>\n'
            'To: user@test.example\n'
            'Subject: benchmark message %d\n'
            'Message-ID: <%d.bench@remote.example>\n\n' % (i, i, i, i, i))
    line = ('%05d the quick brown fox jumps over the lazy dog; '
            'pack my box with five dozen liquor jugs.\n' % i)
    body = head.encode()
    while len(body) + len(line) <= size - 1:
        body += line.encode()
    if len(body) < size - 1:
        body += b'x' * (size - 1 - len(body))
    if len(body) < size:
        body += b'\n'
    if i % 7 == 0:
        body = body.replace(b'\nthe', b'\n.the', 1)     # some dot-stuffing
    return body


def make_corpus(folder, n, size):
    os.makedirs(folder)
    for i in range(n):
        data = message(i, size)
        w = len(data) + data.count(b'\n')
        name = '%d.M%06dP1Q%d.bench.example,S=%d,W=%d' % (
            1764000000 + i, i, i, len(data), w)
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)


def own_corpora(corpora, uid, gid):
    """Messages belong to the mail user, as our delivery writes them
    (the mode stays 0644: Dovecot reads the same inodes as its own
    user). Only the owner may read a file without updating its access
    time (O_NOATIME), which pymaild asks for."""
    for corpus in corpora.values():
        for name in os.listdir(corpus):
            os.chown(os.path.join(corpus, name), uid, gid)


def link_mailbox(corpus, maildir, uid=None, gid=None):
    """A fresh Maildir whose messages are hard links of the corpus."""
    if os.path.exists(maildir):
        shutil.rmtree(maildir)
    for sub in ('', 'new', 'cur', 'tmp'):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        if uid is not None:
            os.chown(os.path.join(maildir, sub), uid, gid)
    for name in os.listdir(corpus):
        os.link(os.path.join(corpus, name),
                os.path.join(maildir, 'new', name))


def settle():
    subprocess.run(['sync'])
    time.sleep(PAUSE)


# ----------------------------------------------------------------------
# The servers

class Pymaild:
    name = 'pymaild'

    def __init__(self, tree=None):
        self.inst = pmtest.Instance(loglevel=1, timeout=600,
                                    maxsessions=1000)
        if tree:
            self.name = 'baseline'
            self.inst.use_tree(tree)
        for u, p in USERS.items():
            r = self.inst.adm('adduser', u, p)
            if r.returncode != 0:
                raise SystemExit('adduser %s: %s' % (u, r.stderr))
        st = os.stat(os.path.join(self.inst.maildir, 'poll'))
        self.uid, self.gid = st.st_uid, st.st_gid
        self.inst.start()
        self.port = self.inst.pop3_port
        self.passwords = dict(USERS)

    def maildir(self, user):
        return os.path.join(self.inst.maildir, user, 'Maildir')

    def cpu_ns(self):
        """CPU time the daemon used so far, every process and thread of
        it: far steadier than a rate on a busy machine, since time spent
        waiting for another program's turn is not counted."""
        parent, roles, other = self.inst.processes()
        pids = [parent] + [p for v in roles.values() for p in v] + other
        return sum(task_cpu_ns(p) for p in pids if p)

    def set_password(self, user, pw):
        r = self.inst.adm('chpasswd', user, pw)
        if r.returncode != 0:
            raise SystemExit('chpasswd: %s' % r.stderr)
        self.passwords[user] = pw

    def hashes(self):
        return {u: self.inst.user_hash(u) for u in USERS}

    def stop(self):
        self.inst.cleanup()


def task_cpu_ns(pid):
    """Nanoseconds on a CPU of every thread of pid (schedstat)."""
    total = 0
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return 0
    for t in tasks:
        try:
            with open('/proc/%d/task/%s/schedstat' % (pid, t)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


class Dovecot:
    name = 'dovecot'

    def cpu_ns(self):
        return None         # a process per login: not followed here

    def __init__(self, folder, hashes):
        self.dir = folder
        self.root = os.path.join(folder, 'mail')
        os.makedirs(self.root)
        os.makedirs(os.path.join(folder, 'run'))
        os.makedirs(os.path.join(folder, 'state'))
        nobody = pwd.getpwnam('nobody')
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        self.port = pmtest.free_port()
        self.passwords = dict(USERS)
        self.hashes = dict(hashes)
        self.write_passwd()
        self.conf = os.path.join(folder, 'dovecot.conf')
        with open(self.conf, 'w') as f:
            f.write(DOVECOT_CONF.format(d=folder, root=self.root,
                                        port=self.port, uid=self.uid,
                                        gid=self.gid))
        self.proc = subprocess.Popen([DOVECOT, '-F', '-c', self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        pmtest.wait_port(self.port, timeout=15)

    def write_passwd(self):
        path = os.path.join(self.dir, 'passwd')
        with open(path + '.tmp', 'w') as f:
            for u, h in self.hashes.items():
                f.write('%s:{CRYPT}%s\n' % (u, h))
        os.rename(path + '.tmp', path)

    def maildir(self, user):
        return os.path.join(self.root, user, 'Maildir')

    def set_password(self, user, pw, hashed):
        self.hashes[user] = hashed
        self.passwords[user] = pw
        self.write_passwd()
        # passwd-file looks at the file at most once a second.
        time.sleep(1.1)

    def stop(self):
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


DOVECOT_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{root}/%n/Maildir
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%n {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
}}
"""


# ----------------------------------------------------------------------
# Measuring

def load(server, mode, user, *opts, timeout=600):
    argv = [LOAD, '-p', str(server.port), '-u', user, '-w',
            server.passwords[user]] + list(opts) + [mode]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError('%s %s: %s' % (server.name, ' '.join(argv),
                                          r.stderr.strip()))
    return dict(kv.split('=', 1) for kv in r.stdout.split())


def fresh_mailboxes(server, corpora):
    for user, corpus in corpora.items():
        m = server.maildir(user)
        link_mailbox(corpus, m, server.uid, server.gid)
        os.chown(os.path.dirname(m), server.uid, server.gid)


def one_round(server, corpora, args, rnd, hash_of):
    fresh_mailboxes(server, corpora)
    settle()
    res = {}
    # Warm up (Dovecot builds its index on the first open).
    load(server, 'list', 'bench4k', '-n', '1')
    load(server, 'list', 'bench1m', '-n', '1')
    r = load(server, 'list', 'bench4k', '-n', '10')
    res['list_best_ms'] = float(r['best_ms'])
    res['list_median_ms'] = float(r['median_ms'])
    for depth, key in ((1, 'retr4k_seq'), (64, 'retr4k_pipe')):
        settle()
        c0 = server.cpu_ns()
        r = load(server, 'retr', 'bench4k', '-d', str(depth))
        c1 = server.cpu_ns()
        res[key + '_msgs'] = float(r['msgs_per_s'])
        res[key + '_mbs'] = float(r['mb_per_s'])
        res[key + '_quit_ms'] = float(r['quit_s']) * 1000
        res[key + '_cpu_us'] = (float('nan') if c0 is None else
                                (c1 - c0) / 1000 / args.messages)
    for depth, key in ((1, 'retr1m_seq'), (8, 'retr1m_pipe')):
        settle()
        r = load(server, 'retr', 'bench1m', '-d', str(depth))
        res[key + '_msgs'] = float(r['msgs_per_s'])
        res[key + '_mbs'] = float(r['mb_per_s'])
    # A new password: the first login pays for yescrypt.
    pw = 'poll-pw-%d-%s' % (rnd, server.name)
    if isinstance(server, Pymaild):
        server.set_password('poll', pw)
    else:
        server.set_password('poll', pw, hash_of(pw))
    r = load(server, 'login', 'poll', '-n', '1')
    res['first_login_ms'] = float(r['seconds']) * 1000
    n = args.logins if isinstance(server, Pymaild) else args.dovecot_logins
    r = load(server, 'login', 'poll', '-n', str(n))
    res['logins_per_s'] = float(r['logins_per_s'])
    return res


ROWS = [
    ('retr4k_seq_msgs', 'RETR 4 KiB, one at a time', 'msg/s'),
    ('retr4k_seq_mbs', '', 'MB/s'),
    ('retr4k_pipe_msgs', 'RETR 4 KiB, pipelined (64)', 'msg/s'),
    ('retr4k_pipe_mbs', '', 'MB/s'),
    ('retr4k_seq_quit_ms', 'QUIT after the first pass (marks seen)', 'ms'),
    ('retr4k_seq_cpu_us', 'CPU a message, one at a time', 'us'),
    ('retr4k_pipe_cpu_us', 'CPU a message, pipelined', 'us'),
    ('retr1m_seq_msgs', 'RETR 1 MiB, one at a time', 'msg/s'),
    ('retr1m_seq_mbs', '', 'MB/s'),
    ('retr1m_pipe_msgs', 'RETR 1 MiB, pipelined (8)', 'msg/s'),
    ('retr1m_pipe_mbs', '', 'MB/s'),
    ('list_best_ms', 'STAT+LIST+UIDL, 4 KiB mailbox, best', 'ms'),
    ('list_median_ms', 'STAT+LIST+UIDL, median', 'ms'),
    ('logins_per_s', 'logins, same user again and again', '/s'),
    ('first_login_ms', 'first login after a password change', 'ms'),
]


def med(results, key):
    return statistics.median(r[key] for r in results)


def pair_ratio(pm, dc, key):
    """The median of each round's own ratio: the two servers ran one
    after the other in a round, so load from elsewhere cancels better
    than in the ratio of the medians."""
    ratios = [a[key] / b[key] for a, b in zip(pm, dc)
              if b[key] and a[key] == a[key] and b[key] == b[key]]
    if key.endswith('_ms') or key.endswith('_us'):
        ratios = [1 / r for r in ratios if r]
    return statistics.median(ratios) if ratios else float('nan')


def num(v):
    return '%.0f' % v if v >= 100 else '%.2f' % v


def report(args, pm, dc, base):
    out('')
    out('POP3 figures: medians of %d rounds; %d messages of 4 KiB, %d of '
        '1 MiB' % (args.rounds, args.messages, args.big))
    others = [(n, r) for n, r in (('dovecot', dc), ('baseline', base)) if r]
    out('%-40s %12s' % ('', 'pymaild') + ''.join(
        ' %12s %8s' % (n, 'ratio*') for n, _ in others))
    for key, label, unit in ROWS:
        line = '%-40s %12.1f' % ((label or '') + ' ' + unit, med(pm, key))
        for _, r in others:
            line += ' %12.1f %7.2fx' % (med(r, key), pair_ratio(pm, r, key))
        out(line)
    if others:
        out('* ratio: the median of the rounds\' own ratios (>1: pymaild '
            'better)')
    out('')
    out('per round (the spread says how noisy the machine was):')
    for key, label, unit in ROWS:
        line = '  %-20s pymaild %s' % (key, ' '.join(num(r[key])
                                                     for r in pm))
        for n, res in others:
            line += ' | %s %s' % (n, ' '.join(num(r[key]) for r in res))
        out(line)
    out('')
    figures(pm, dc, base)


def figure(name, value, target, verdict):
    out('FIGURE\t%s\t%s\t%s\t%s' % (name, value, target, verdict))


def figures(pm, dc, base):
    if base:
        for key in ('retr4k_seq_msgs', 'retr4k_pipe_msgs', 'retr1m_seq_msgs',
                    'retr1m_pipe_msgs', 'logins_per_s', 'list_median_ms',
                    'retr4k_seq_cpu_us', 'retr4k_pipe_cpu_us'):
            ratio = pair_ratio(pm, base, key)
            figure('pop3 %s vs baseline' % key, '%.3fx' % ratio,
                   '>= %.2fx' % TARGET_BASELINE,
                   'ok' if ratio >= TARGET_BASELINE else 'MISSED')
    for key in ('retr4k_seq_msgs', 'retr4k_pipe_msgs'):
        a = med(pm, key)
        if dc:
            ratio = pair_ratio(pm, dc, key)
            figure('pop3 %s vs dovecot' % key, '%.2fx (%.0f/s)' % (ratio, a),
                   '>= %.1fx' % TARGET_RETR_RATIO,
                   'ok' if ratio >= TARGET_RETR_RATIO else 'MISSED')
        else:
            figure('pop3 %s' % key, '%.0f/s' % a, '-', 'no dovecot')
    a = med(pm, 'list_median_ms')
    figure('pop3 STAT+LIST+UIDL 10k', '%.1f ms' % a,
           '< %.0f ms' % TARGET_LIST_MS,
           'ok' if a < TARGET_LIST_MS else 'MISSED')
    a = med(pm, 'logins_per_s')
    if dc:
        ratio = pair_ratio(pm, dc, 'logins_per_s')
        figure('pop3 repeated logins vs dovecot', '%.1fx (%.0f/s)'
               % (ratio, a), '>= %.0fx' % TARGET_LOGIN_RATIO,
               'ok' if ratio >= TARGET_LOGIN_RATIO else 'MISSED')
    else:
        figure('pop3 repeated logins', '%.0f/s' % a, '-', 'no dovecot')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--big', type=int, default=100)
    ap.add_argument('--logins', type=int, default=2000)
    ap.add_argument('--dovecot-logins', type=int, default=60)
    ap.add_argument('--no-dovecot', action='store_true')
    ap.add_argument('--baseline', metavar='TREE',
                    help='also measure pymaild as built in TREE')
    ap.add_argument('--quick', action='store_true',
                    help='one round, smaller mailboxes')
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.messages, args.big = 1, 2000, 20
        args.logins, args.dovecot_logins = 500, 20
    if os.geteuid() != 0:
        raise SystemExit('pop3_bench: run as root (network namespace, '
                         'Dovecot, the daemon accounts)')
    if not args.no_dovecot:
        install_dovecot()
    enter_netns()
    if not os.access(LOAD, os.X_OK):
        raise SystemExit('pop3_bench: %s is not built: run make' % LOAD)
    pmtest.require_built()
    work = tempfile.mkdtemp(prefix='pop3bench-', dir='/tmp')
    os.chmod(work, 0o755)
    servers = []
    try:
        out('pop3_bench: making the corpus ...')
        corpora = {'bench4k': os.path.join(work, 'c4k'),
                   'bench1m': os.path.join(work, 'c1m'),
                   'poll': os.path.join(work, 'cpoll')}
        make_corpus(corpora['bench4k'], args.messages, 4096)
        make_corpus(corpora['bench1m'], args.big, 1024 * 1024)
        make_corpus(corpora['poll'], 5, 2000)
        pm = Pymaild()
        servers.append(pm)
        base = None
        if args.baseline:
            base = Pymaild(os.path.abspath(args.baseline))
            servers.append(base)
        own_corpora(corpora, pm.uid, pm.gid)
        dc = None
        if args.no_dovecot:
            out('pop3_bench: Dovecot left out (--no-dovecot)')
        elif not os.access(DOVECOT, os.X_OK):
            out('pop3_bench: Dovecot is not installed (apt-get install '
                'dovecot-core dovecot-pop3d): pymaild figures only')
        else:
            dc = Dovecot(os.path.join(work, 'dovecot'), pm.hashes())
            servers.append(dc)

        def hash_of(pw):
            pm.set_password('poll', pw)
            return pm.inst.user_hash('poll')
        res = {pm: [], dc: [], base: []}
        for rnd in range(args.rounds):
            order = [s for s in (pm, base, dc) if s is not None]
            if rnd % 2:
                order.reverse()
            for s in order:
                out('pop3_bench: round %d, %s ...' % (rnd + 1, s.name))
                res[s].append(one_round(s, corpora, args, rnd, hash_of))
        report(args, res[pm], res[dc], res[base])
    finally:
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        if not os.environ.get("PYMAILD_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
