#!/usr/bin/python3
"""TLS benchmark of pymaild (part of `make bench`), beside a private
Postfix and a private Dovecot serving the same ECDSA P-256 certificate.

    PYTHONPATH=regress /usr/bin/python3 regress/bench/tls_bench.py
        [--quick] [--rounds N]
        [--sessions N] [--concurrency C] [--logins N] [--dovecot-logins N]
        [--no-postfix] [--no-dovecot]
    /usr/bin/python3 regress/bench/run.py --tls-only     (this one alone)

Figures, not a pass/fail test (the exit status is 0 unless the benchmark
itself could not run). Everything runs in a private network namespace
with only loopback; Postfix and Dovecot are installed from Debian's
packages first when missing (as smtp_bench.py and pop3_bench.py do).

1. SMTP sessions per second with STARTTLS (regress/bench/smtp_load -e -N):
   C concurrent clients each connect, read the greeting, say EHLO,
   STARTTLS, make the handshake, say EHLO again inside TLS and QUIT;
   no mail is sent, so the figure is the cost of a TLS session and not
   of the disk. Twice: a full handshake every session (the server signs
   each one with its ECDSA key), then with resumption (-k: each client
   offers the TLS 1.3 ticket its previous session was handed, once).
2. POP3 over implicit TLS (the pop3s port; regress/bench/pop3_load -t):
   one client logs in, RETRs the first of 5 messages of 2 KB and QUITs,
   again and again; full handshakes, then with resumption.

Postfix: smtp_bench.py's private instance plus smtpd_tls_security_level
= may, the certificate, a session cache and tlsmgr (which makes its
ticket keys). Dovecot: pop3_bench.py's private instance (stock settings:
a login process per connection, no auth cache, so Dovecot pays its
yescrypt hash at each login) plus ssl = required and a pop3s listener.

Rounds alternate the servers (A B, then B A); each figure is the median
of the rounds, each ratio the median of the rounds' own ratios (the two
servers ran back to back, so load from elsewhere cancels better). The
server's CPU time per session (its processes, reaped children included)
is printed beside each rate: steadier than a rate on a busy machine.

Lines "FIGURE<TAB>name<TAB>value<TAB>target<TAB>verdict" are for
regress/bench/run.py's summary table.
"""

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import pop3_bench
import smtp_bench
from lib import netns, pmtest, tlsutil

HERE = os.path.dirname(os.path.abspath(__file__))

SMTP_LOAD = os.path.join(HERE, 'smtp_load')
POP3_LOAD = os.path.join(HERE, 'pop3_load')
NOTE_VAR = 'PYMAILD_BENCH_TLS_NOTE'

# Targets: full handshakes twice Postfix's rate, resumed three times,
# POP3 over TLS one and a half times Dovecot's.
TARGET_FULL = 2.0
TARGET_RESUMED = 3.0
TARGET_POP3 = 1.5
# -k must resume nearly every session offered one, or the figure is
# not about resumption.
MIN_RESUMED = 0.9

PAUSE = 2.0
POP3_USER, POP3_PASS = 'poll', 'poll-pw'


def out(*a):
    print(*a, flush=True)


def settle():
    subprocess.run(['sync'], timeout=60)
    time.sleep(PAUSE)


def parse_kv(text, prefix=None):
    """The key=value words of the line starting with prefix (or of the
    last line), numbers as floats."""
    lines = text.splitlines()
    if prefix:
        lines = [l for l in lines if l.startswith(prefix)]
    if not lines:
        return None
    d = {}
    for kv in lines[-1].split():
        k, _, v = kv.partition('=')
        try:
            d[k] = float(v)
        except ValueError:
            d[k] = v
    return d


# ----------------------------------------------------------------------
# The servers

class Pymaild:
    name = 'pymaild'

    def __init__(self, cert, key):
        self.inst = pmtest.Instance(
            loglevel=1, maxsessions=6000, maxsessionsperip=6000,
            timeout=300, tls={'cert': [cert], 'key': [key]},
            pop3sport=pmtest.free_port())
        for u, pw in list(smtp_bench.USERS.items()) + [(POP3_USER,
                                                         POP3_PASS)]:
            r = self.inst.adm('adduser', u, pw)
            if r.returncode != 0:
                raise RuntimeError('pymailadm adduser %s: %s' %
                                   (u, r.stderr))
        st = os.stat(os.path.join(self.inst.maildir, POP3_USER))
        self.uid, self.gid = st.st_uid, st.st_gid
        self.inst.start()
        self.inst.wait_port()
        self.smtp_port = self.inst.smtp_port
        self.pop3s_port = self.inst.config['pop3sport']
        pmtest.wait_port(self.pop3s_port)

    def maildir(self, user):
        return os.path.join(self.inst.maildir, user, 'Maildir')

    def cpu(self):
        return smtp_bench.tree_cpu(self.inst.pid())

    def healthy(self):
        return self.inst.running()

    def stop(self):
        self.inst.cleanup()


POSTFIX_TLS = """
# TLS for regress/bench/tls_bench.py: the certificate pymaild serves.
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_loglevel = 0
smtpd_tls_session_cache_database = btree:{data}/smtpd_scache
smtpd_tls_session_cache_timeout = 3600s
"""
POSTFIX_TLSMGR = ('tlsmgr    unix  -       -       n       1000?   1       '
                  'tlsmgr\n')


class Postfix(smtp_bench.Postfix):
    """smtp_bench.py's private Postfix with TLS on its port 25."""

    def __init__(self, cert, key):
        super().__init__()
        with open(os.path.join(self.conf, 'main.cf'), 'a') as f:
            f.write(POSTFIX_TLS.format(cert=cert, key=key, data=self.data))
        with open(os.path.join(self.conf, 'master.cf'), 'a') as f:
            f.write(POSTFIX_TLSMGR)
        self.smtp_port = self.port

    def cpu(self):
        return smtp_bench.tree_cpu(self.master)


DOVECOT_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
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
    port = 0
  }}
  inet_listener pop3s {{
    port = {port}
    ssl = yes
  }}
}}
"""


class Dovecot(pop3_bench.Dovecot):
    """pop3_bench.py's private Dovecot, speaking POP3 on a pop3s port
    only, with the same certificate."""

    name = 'Dovecot'

    def __init__(self, folder, hashes, cert, key):
        import pwd
        self.dir = folder
        self.root = os.path.join(folder, 'mail')
        for d in (self.root, os.path.join(folder, 'run'),
                  os.path.join(folder, 'state')):
            os.makedirs(d)
        nobody = pwd.getpwnam('nobody')
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        self.port = self.pop3s_port = pmtest.free_port()
        self.passwords = {POP3_USER: POP3_PASS}
        self.hashes = dict(hashes)
        self.write_passwd()
        self.conf = os.path.join(folder, 'dovecot.conf')
        with open(self.conf, 'w') as f:
            f.write(DOVECOT_CONF.format(d=folder, root=self.root,
                                        port=self.port, uid=self.uid,
                                        gid=self.gid, cert=cert, key=key))
        self.proc = subprocess.Popen([pop3_bench.DOVECOT, '-F', '-c',
                                      self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        pmtest.wait_port(self.port, timeout=15)

    def cpu(self):
        return smtp_bench.tree_cpu(self.proc.pid)

    def healthy(self):
        return self.proc.poll() is None


# ----------------------------------------------------------------------
# Measuring

def run_tool(argv, timeout):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        return -1, (e.stdout or b'').decode('utf-8', 'replace') + \
            '\n(did not exit in time; killed)'


def smtp_sessions(server, n, c, resume):
    """One smtp_load run; a row: rate, CPU ms a session, resumed..."""
    argv = [SMTP_LOAD, '-h', '127.0.0.1', '-p', str(server.smtp_port),
            '-e', '-N', '-n', str(n), '-c', str(c), '-t', '120',
            '-R', '30'] + (['-k'] if resume else [])
    cpu0 = server.cpu()
    rc, text = run_tool(argv, 180)
    cpu1 = server.cpu()
    r = parse_kv(text, 'RESULT ') or {}
    row = {'text': text, 'rate': r.get('rate'),
           'errors': int(r.get('errors', 1 if not r else 0)),
           'offered': int(r.get('offered', 0)),
           'resumed': int(r.get('resumed', 0)),
           'sessions': int(r.get('accepted', 0)),
           'hs_p50_ms': r.get('hs_p50_ms')}
    if row['sessions']:
        row['cpu_ms'] = (cpu1 - cpu0) * 1e3 / row['sessions']
    return row


def pop3_logins(server, n, resume):
    argv = [POP3_LOAD, '-p', str(server.pop3s_port), '-t', '-u', POP3_USER,
            '-w', POP3_PASS, '-n', str(n), '-g', '1'] + \
        (['-k'] if resume else []) + ['login']
    cpu0 = server.cpu()
    rc, text = run_tool(argv, 300)
    cpu1 = server.cpu()
    r = parse_kv(text, 'mode=login') or {}
    row = {'text': text, 'rate': r.get('logins_per_s'),
           'errors': 0 if rc == 0 and r else 1,
           'offered': int(n - 1) if resume else 0,
           'resumed': int(r.get('resumed', 0)),
           'sessions': int(r.get('logins', 0)),
           'hs_p50_ms': r.get('handshake_ms')}
    if row['sessions']:
        row['cpu_ms'] = (cpu1 - cpu0) * 1e3 / row['sessions']
    return row


def fmt(name, what, row):
    if row.get('rate') is None:
        return '  %-8s %-26s no result:\n%s' % (
            name, what, smtp_bench.pmtest_indent(row['text'][-1500:]))
    s = '  %-8s %-26s %8.1f /s  server CPU %6.2f ms/session' % (
        name, what, row['rate'], row.get('cpu_ms', float('nan')))
    if row.get('hs_p50_ms') is not None:
        s += '  handshake %.2f ms' % row['hs_p50_ms']
    if row['offered']:
        s += '  resumed %d (%d offered a ticket)' % (row['resumed'],
                                                     row['offered'])
    if row['errors']:
        s += '  ERRORS %d:\n%s' % (row['errors'], smtp_bench.pmtest_indent(
            '\n'.join(l for l in row['text'].splitlines()
                      if not l.startswith('RESULT'))[-1200:]))
    return s


KINDS = [('smtp_full', 'SMTP STARTTLS, full'),
         ('smtp_resumed', 'SMTP STARTTLS, resumed'),
         ('pop3_full', 'pop3s login+RETR, full'),
         ('pop3_resumed', 'pop3s login+RETR, resumed')]


def one_round(server, a, results):
    settle()
    n = a.sessions
    if 'smtp_full' in results[server.name]:
        for key, resume in (('smtp_full', False), ('smtp_resumed', True)):
            row = smtp_sessions(server, n, a.concurrency, resume)
            results[server.name][key].append(row)
            out(fmt(server.name, dict(KINDS)[key], row))
    if 'pop3_full' in results[server.name]:
        logins = a.dovecot_logins if isinstance(server, Dovecot) else \
            a.logins
        for key, resume in (('pop3_full', False), ('pop3_resumed', True)):
            row = pop3_logins(server, logins, resume)
            results[server.name][key].append(row)
            out(fmt(server.name, dict(KINDS)[key], row))


def median_of(rows, key='rate'):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ratio_of(mine, theirs):
    """The median of the rounds' own ratios."""
    rs = [a['rate'] / b['rate'] for a, b in zip(mine, theirs)
          if a.get('rate') and b.get('rate')]
    return statistics.median(rs) if rs else None


def figure(name, value, target, verdict):
    out('FIGURE\t%s\t%s\t%s\t%s' % (name, value, target, verdict))


def summarize(a, results, notes):
    pm = results['pymaild']
    out('')
    out('== TLS summary (medians of %d round(s); ECDSA P-256 certificate)'
        % a.rounds)
    for key, label in KINDS:
        for peer in ('Postfix', 'Dovecot'):
            if key in results.get(peer, {}):
                break
        else:
            peer = None
        line = '   %-28s pymaild %8.1f/s (%.2f ms CPU)' % (
            label, median_of(pm[key]) or 0, median_of(pm[key], 'cpu_ms')
            or 0)
        if peer:
            theirs = results[peer][key]
            line += '   %s %8.1f/s (%.2f ms CPU)   ratio %.2fx' % (
                peer, median_of(theirs) or 0,
                median_of(theirs, 'cpu_ms') or 0,
                ratio_of(pm[key], theirs) or 0)
            res = sum(r['resumed'] for r in theirs)
            off = sum(r['offered'] for r in theirs)
            n = sum(r['sessions'] for r in theirs)
            if off:
                line += ' (%s resumed %d of %d sessions, %d offered a ' \
                    'ticket)' % (peer, res, n, off)
        out(line)
    targets = (('smtp_full', 'Postfix', TARGET_FULL,
                'smtp STARTTLS sessions/s, full handshake'),
               ('smtp_resumed', 'Postfix', TARGET_RESUMED,
                'smtp STARTTLS sessions/s, resumed'),
               ('pop3_full', 'Dovecot', TARGET_POP3,
                'pop3s logins+RETR/s, full handshake'))
    for key, peer, target, name in targets:
        mine = pm[key]
        value = median_of(mine)
        off = sum(r['offered'] for r in mine)
        res = sum(r['resumed'] for r in mine)
        theirs = results.get(peer, {}).get(key)
        peer_txt = '%s %.0f/s' % (peer, median_of(theirs) or 0) \
            if theirs else '%s: %s' % (peer, notes.get(peer, 'no figures'))
        figure(name, '%.0f/s' % value if value else 'n/a', peer_txt, '')
        ratio = ratio_of(mine, theirs) if theirs else None
        if ratio is None:
            verdict = 'skipped: ' + notes.get(peer, 'no figures')
        elif off and res < MIN_RESUMED * off:
            verdict = 'NOT met: pymaild resumed only %d of %d' % (res, off)
        else:
            verdict = 'met' if ratio >= target else 'NOT met'
        figure('%s ratio pymaild/%s' % (name, peer),
               '%.2fx' % ratio if ratio else 'n/a',
               '>= %.1fx' % target, verdict)
    value = median_of(pm['pop3_resumed'])
    theirs = results.get('Dovecot', {}).get('pop3_resumed')
    figure('pop3s logins+RETR/s, resumed', '%.0f/s' % value if value
           else 'n/a', 'Dovecot %.0f/s (resumed %d of %d)' % (
               median_of(theirs) or 0,
               sum(r['resumed'] for r in theirs),
               sum(r['sessions'] for r in theirs)) if theirs else '-', '')
    errs = sum(r['errors'] for rows in pm.values() for r in rows)
    figure('tls errors seen by the load clients (pymaild)', str(errs), '0',
           'met' if errs == 0 else 'NOT met')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='1 round, fewer sessions and logins')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--sessions', type=int, default=2000)
    ap.add_argument('--concurrency', type=int, default=16)
    ap.add_argument('--logins', type=int, default=1000)
    ap.add_argument('--dovecot-logins', type=int, default=100)
    ap.add_argument('--no-postfix', action='store_true')
    ap.add_argument('--no-dovecot', action='store_true')
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.sessions, a.logins, a.dovecot_logins = 1, 500, 300, 40
    if os.geteuid() != 0:
        raise SystemExit('tls_bench: run as root (network namespace, '
                         'Postfix, Dovecot, the daemon accounts)')
    if not os.environ.get(netns.NETNS_VAR):
        notes = []
        if not a.no_postfix:
            notes.append(smtp_bench.ensure_postfix())
        if not a.no_dovecot:
            pop3_bench.install_dovecot()
        os.environ[NOTE_VAR] = notes[0] if notes else ''
        netns.enter(__file__)
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    pmtest.set_subreaper()
    for tool in (SMTP_LOAD, POP3_LOAD):
        if not os.access(tool, os.X_OK):
            raise SystemExit('tls_bench: %s is not built: run make' % tool)
    pmtest.require_built()
    smtp_bench.raise_nofile()

    notes = {}
    if a.no_postfix:
        notes['Postfix'] = 'disabled with --no-postfix'
    elif os.environ.get(NOTE_VAR):
        notes['Postfix'] = os.environ[NOTE_VAR]
    if a.no_dovecot:
        notes['Dovecot'] = 'disabled with --no-dovecot'
    elif not os.access(pop3_bench.DOVECOT, os.X_OK):
        notes['Dovecot'] = 'Dovecot is not installed'

    work = tempfile.mkdtemp(prefix='tlsbench-', dir='/tmp')
    os.chmod(work, 0o755)
    servers = []
    try:
        cert, key = tlsutil.make_pair(work, 'bench', 'ec')
        out('== TLS benchmark: %d STARTTLS sessions, %d at a time; %d '
            'pop3s logins (Dovecot %d); %d round(s)' % (
                a.sessions, a.concurrency, a.logins, a.dovecot_logins,
                a.rounds))
        out('   %d CPUs; load average %.2f' % (os.cpu_count(),
                                              os.getloadavg()[0]))
        pm = Pymaild(cert, key)
        servers.append(pm)
        corpus = os.path.join(work, 'corpus')
        pop3_bench.make_corpus(corpus, 5, 2000)
        pop3_bench.own_corpora({POP3_USER: corpus}, pm.uid, pm.gid)
        pop3_bench.link_mailbox(corpus, pm.maildir(POP3_USER), pm.uid,
                                pm.gid)
        results = {'pymaild': {k: [] for k, _ in KINDS}}
        if 'Postfix' not in notes:
            try:
                pf = Postfix(cert, key)
                servers.append(pf)
                pf.start()
                results['Postfix'] = {'smtp_full': [], 'smtp_resumed': []}
            except Exception as e:
                notes['Postfix'] = 'private Postfix did not start: %s' % e
        if 'Dovecot' not in notes:
            try:
                dc = Dovecot(os.path.join(work, 'dovecot'),
                             {POP3_USER: pm.inst.user_hash(POP3_USER)},
                             cert, key)
                servers.append(dc)
                pop3_bench.link_mailbox(corpus, dc.maildir(POP3_USER),
                                        dc.uid, dc.gid)
                os.chown(os.path.dirname(dc.maildir(POP3_USER)), dc.uid,
                         dc.gid)
                results['Dovecot'] = {'pop3_full': [], 'pop3_resumed': []}
            except Exception as e:
                notes['Dovecot'] = 'private Dovecot did not start: %s' % e
        for peer, note in notes.items():
            out('   %s comparison skipped: %s' % (peer, note))
        # Warm-up, not counted: process pools, tlsmgr, page cache.
        for s in servers:
            if 'smtp_full' in results[s.name]:
                smtp_sessions(s, 200, a.concurrency, True)
            if 'pop3_full' in results[s.name]:
                pop3_logins(s, 5, True)
        for i in range(a.rounds):
            order = servers if i % 2 == 0 else list(reversed(servers))
            out('-- round %d' % (i + 1))
            for s in order:
                if not s.healthy():
                    out('  ** %s is not running; round skipped' % s.name)
                    continue
                one_round(s, a, results)
        summarize(a, results, notes)
    finally:
        for s in reversed(servers):
            with contextlib.suppress(Exception):
                s.stop()
        pmtest.reap_zombies()
        if not os.environ.get('PYMAILD_KEEP'):
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
