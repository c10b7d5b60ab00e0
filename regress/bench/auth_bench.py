#!/usr/bin/python3
"""What sender authentication costs on port 25 (part of `make bench`):
pymaild checking SPF, DKIM and DMARC on every message against the same
build with `authchecks = false`, and against a private Postfix (no
checks at all: its plain rate), rounds alternating, medians quoted.

    PYTHONPATH=regress /usr/bin/python3 regress/bench/auth_bench.py
        [--quick] [--rounds N]
        [--messages N] [--size S] [--sessions C] [--no-postfix]

Every message is the same file, signed beforehand by dkimpy (RSA 2048,
relaxed/relaxed) for sender.example and sent by regress/bench/smtp_load
-m with MAIL FROM bench@sender.example, one SMTP session per message,
to alice@ and bob@test.example. A local DNS server (ldns-testns,
regress/lib/dnsfixture.py) publishes sender.example's SPF record (the
generator's address passes), its DKIM key and a DMARC p=reject record;
a warm-up round fills mxcache's cache before anything is measured.

Each round: clear the Maildirs, sync, pause, run the generator, wait
until every accepted message is a file in Maildir/new. Figures: the
accept rate (from the generator), and CPU per message of the whole
server from the round's start until its last delivery (pymaild: every
thread of the parent and its helpers, from /proc/PID/task/*/schedstat;
Postfix: master and children, reaped ones included, from /proc stat).

A bench that measures a broken check is worthless: after every round of
the checking instance a sample of the delivered messages must carry our
Authentication-Results with dkim=pass, spf=pass and dmarc=pass (and the
other instance's must carry none); any that does not is printed and
the ratio figures say so. With DMARC p=reject a check that fails shows
as refused messages too.

Targets (issue 13): checks on cost at most 30 % of the accept rate, and
checks on is still at least 3x Postfix's plain rate. Runs in a private
network namespace (as root it re-execs itself under unshare -n); stops
everything it started by PID. Lines "FIGURE<TAB>..." are for
regress/bench/run.py's summary table.
"""

import argparse
import base64
import contextlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import smtp_bench as sb
from lib import netns, pmtest
from lib.dnsfixture import DNSServer, txt_rdata
from pop3_bench import task_cpu_ns

HERE = os.path.dirname(os.path.abspath(__file__))

LOAD = os.path.join(HERE, 'smtp_load')
SENDER_DOMAIN = 'sender.example'
SENDER = 'bench@' + SENDER_DOMAIN
SELECTOR = 'b1'
TARGET_FALL = 0.30          # at most this fraction lost with checks on
TARGET_VS_POSTFIX = 3.0     # checks on, against Postfix without
SAMPLE = 5                  # messages checked per round
PAUSE = 2.0
DELIVERY_TIMEOUT = 30
BUDGET = 230                # seconds for the whole script, setup included

T0 = time.monotonic()


def out(*a):
    print(*a, flush=True)


def left():
    return BUDGET - (time.monotonic() - T0)


def figure(name, value, target, verdict):
    out('FIGURE\t%s\t%s\t%s\t%s' % (name, value, target, verdict))


# ----------------------------------------------------------------------
# The signed message and what DNS says about its sender

def openssl(*args):
    return subprocess.run(['openssl'] + list(args), check=True,
                          capture_output=True, timeout=60).stdout


def make_key(folder):
    path = os.path.join(folder, 'sender.key')
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
            'rsa_keygen_bits:2048', '-out', path)
    der = openssl('pkey', '-in', path, '-pubout', '-outform', 'DER')
    record = b'v=DKIM1; k=rsa; p=' + base64.b64encode(der)
    return path, record


def signed_message(key_path, record, size):
    """A message of about size octets from SENDER, signed by dkimpy and
    checked by dkimpy against record before any server sees it."""
    import dkim
    rnd = random.Random(13)
    head = ('From: Bench <%s>\r\nTo: <alice@test.example>\r\n'
            'Subject: signed for the authentication benchmark\r\n'
            'Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n'
            'Message-ID: <authbench.1@%s>\r\nMIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=us-ascii\r\n\r\n'
            % (SENDER, SENDER_DOMAIN))
    lines, n = [], len(head) + 600      # the signature takes ~600
    while n < size:
        words = ' '.join(''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz')
                                 for _ in range(rnd.randint(2, 9)))
                         for _ in range(10))[:72]
        lines.append(words)
        n += len(words) + 2
    msg = (head + '\r\n'.join(lines) + '\r\n').encode()
    with open(key_path, 'rb') as f:
        key = f.read()
    sig = dkim.sign(msg, SELECTOR.encode(), SENDER_DOMAIN.encode(), key,
                    canonicalize=(b'relaxed', b'relaxed'),
                    include_headers=[b'from', b'to', b'subject', b'date',
                                     b'message-id', b'mime-version',
                                     b'content-type'])
    msg = sig + msg
    want = ('%s._domainkey.%s.' % (SELECTOR, SENDER_DOMAIN)).encode()
    if not dkim.verify(msg, dnsfunc=lambda name, timeout=5:
                       record if name == want else None):
        raise RuntimeError('dkimpy does not verify its own signature')
    return msg


def dns_records(record):
    return [
        (SENDER_DOMAIN + '.', 3600, 'TXT',
         txt_rdata([b'v=spf1 ip4:127.0.0.0/8 -all'])),
        ('%s._domainkey.%s.' % (SELECTOR, SENDER_DOMAIN), 3600, 'TXT',
         txt_rdata([record])),
        ('_dmarc.%s.' % SENDER_DOMAIN, 3600, 'TXT',
         txt_rdata([b'v=DMARC1; p=reject'])),
    ]


# ----------------------------------------------------------------------
# Servers

class Pymaild:
    def __init__(self, name, checks, resolver_port):
        self.name = name
        self.checks = checks
        # noauthhosts empty on both: the generator's loopback address
        # would otherwise be spared the checks; authchecks alone differs.
        self.inst = pmtest.Instance(loglevel=1, maxsessions=6000,
                                    maxsessionsperip=6000, timeout=300,
                                    smtpmaxmailsize=10000000,
                                    authchecks=checks, noauthhosts=[],
                                    resolver='127.0.0.1:%d' % resolver_port)
        for args in (('chdefaultopt', 'mailboxsize', str(1 << 40)),
                     ('adduser', 'alice', 'alicepw'),
                     ('adduser', 'bob', 'bobpw')):
            r = self.inst.adm(*args)
            if r.returncode != 0:
                raise RuntimeError('pymailadm %s: %s' % (' '.join(args),
                                                         r.stderr.strip()))
        self.inst.start()
        self.inst.wait_port()
        self.port = self.inst.smtp_port
        self.dirs = [os.path.join(self.inst.maildir, u, 'Maildir', 'new')
                     for u in ('alice', 'bob')]

    def healthy(self):
        if not self.inst.running():
            return False
        _, roles, _ = self.inst.processes()
        return all(roles.get(r) for r in pmtest.ROLES)

    def cpu(self):
        """{role: CPU ns} of the parent and each helper with what it
        started (every thread: schedstat)."""
        parent, roles, _ = self.inst.processes()
        d = {'parent': task_cpu_ns(parent) if parent else 0}
        for r, pids in roles.items():
            d[r] = sum(task_cpu_ns(p) + sum(task_cpu_ns(k) for k in
                                            pmtest.descendants(p))
                       for p in pids)
        return d

    def check_sample(self, n):
        """Messages among n delivered ones whose verdict is not what this
        instance must write; returns (checked, [problems])."""
        files = []
        for d in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                files += [os.path.join(d, e) for e in os.listdir(d)
                          if not e.startswith('.')]
        picked = random.sample(files, min(n, len(files)))
        aid = self.inst.config['serverhostname']
        bad = []
        for p in picked:
            with open(p, 'rb') as f:
                head = f.read(16384).split(b'\n\n', 1)[0]
            head = head.decode('utf-8', 'replace')
            m = re.search(r'^Authentication-Results:\s*%s;(.*?)\n(?![ \t])'
                          % re.escape(aid), head, re.M | re.S | re.I)
            if not self.checks:
                if m:
                    bad.append('%s: checks are off, yet %s'
                               % (os.path.basename(p), m.group(0)[:200]))
                continue
            verdict = re.sub(r'\s+', ' ', m.group(1)) if m else ''
            miss = [w for w in ('dkim=pass', 'spf=pass', 'dmarc=pass')
                    if w not in verdict]
            if miss:
                bad.append('%s: no %s in %r' % (
                    os.path.basename(p), ', '.join(miss),
                    verdict[:300] or head[:300]))
        return len(picked), bad

    def stop(self):
        self.inst.cleanup()


class Postfix(sb.Postfix):
    name = 'Postfix'
    checks = False

    def cpu(self):
        return {'all': int(sb.tree_cpu(self.master) * 1e9)}

    def check_sample(self, n):
        return 0, []


# ----------------------------------------------------------------------
# Rounds

def run_load(port, n, c, msgfile, limit):
    argv = [LOAD, '-h', '127.0.0.1', '-p', str(port), '-c', str(c),
            '-n', str(n), '-m', msgfile, '-f', SENDER, '-H',
            'client.' + SENDER_DOMAIN, '-r',
            'alice@test.example,bob@test.example', '-t', str(limit),
            '-R', '30']
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=limit + 40)
        text = p.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b'').decode('utf-8', 'replace') + \
            '\n(smtp_load did not exit in time; killed)'
    return sb.parse_result(text), text


def one_round(server, a, msgfile):
    sb.clear_maildirs(server.dirs)
    subprocess.run(['sync'], timeout=60)
    time.sleep(PAUSE)
    cpu0 = server.cpu()
    res, text = run_load(server.port, a.messages, a.sessions, msgfile,
                         max(20, min(90, left() - 40)))
    row = {'res': res, 'errors': sb.error_lines(text), 'text': text}
    if not res:
        return row
    want = res['accepted']
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while sb.maildir_count(server.dirs) < want and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    row['delivered'] = sb.maildir_count(server.dirs)
    cpu1 = server.cpu()
    row['cpu'] = {k: cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1}
    row['checked'], row['bad'] = server.check_sample(SAMPLE)
    return row


def fmt_row(name, i, row):
    r = row['res']
    if not r:
        return '  %-22s round %d: no result\n%s' % (
            name, i, sb.pmtest_indent(row['text']))
    acc = max(1, r['accepted'])
    cpu = row['cpu']
    s = ('  %-22s round %d: accept %7.1f msg/s (%d/%d), 250 p50 %.2f ms '
         'p99 %.2f ms; %d delivered; CPU %.2f ms/msg'
         % (name, i, r['rate'], r['accepted'], r['messages'],
            r['p50_ms'], r['p99_ms'], row['delivered'],
            sum(cpu.values()) / 1e6 / acc))
    if len(cpu) > 1:
        s += ' (%s)' % ', '.join('%s %.2f' % (k, v / 1e6 / acc)
                                 for k, v in sorted(cpu.items()) if v > 0)
    if row['checked']:
        s += '; verdicts sampled %d, wrong %d' % (row['checked'],
                                                  len(row['bad']))
    for e in row['errors'][:8] + row['bad'][:3]:
        s += '\n      ' + e
    return s


def main():
    global BUDGET
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='1 round of 400 messages')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--messages', type=int, default=2000)
    ap.add_argument('--size', type=int, default=4096)
    ap.add_argument('--sessions', type=int, default=32)
    ap.add_argument('--no-postfix', action='store_true')
    ap.add_argument('--budget', type=int, default=BUDGET)
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.messages = 1, 400
    BUDGET = a.budget

    if not os.environ.get(netns.NETNS_VAR):
        note = '' if a.no_postfix else sb.ensure_postfix()
        os.environ[sb.POSTFIX_NOTE_VAR] = note
        netns.enter(__file__)
    note = os.environ.get(sb.POSTFIX_NOTE_VAR, '')
    if a.no_postfix:
        note = note or 'disabled with --no-postfix'
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    pmtest.set_subreaper()
    if not os.access(LOAD, os.X_OK):
        out('smtp_load is not built (%s): run make' % LOAD)
        return 2
    sb.raise_nofile()

    work = tempfile.mkdtemp(prefix='pmauthbench-')
    os.chmod(work, 0o755)
    servers, dns = [], None
    try:
        key, record = make_key(work)
        msg = signed_message(key, record, a.size)
        msgfile = os.path.join(work, 'signed.eml')
        with open(msgfile, 'wb') as f:
            f.write(msg)
        out('== authentication checks on port 25: %d messages of %d '
            'octets (DKIM-signed, SPF pass, DMARC p=reject), %d sessions, '
            '%d round(s) each; load average %.2f' % (
                a.messages, len(msg), a.sessions, a.rounds,
                os.getloadavg()[0]))
        dns_port = pmtest.free_udp_port()
        dns = DNSServer(dns_port, records=dns_records(record))
        dns.start()
        servers.append(Pymaild('pymaild checks on', True, dns_port))
        servers.append(Pymaild('pymaild checks off', False, dns_port))
        if not note:
            try:
                pf = Postfix()
                pf.start()
                servers.append(pf)
            except Exception as e:
                note = 'private Postfix did not start: %s' % e
                with contextlib.suppress(Exception):
                    pf.stop()
        if note:
            out('   Postfix comparison skipped: %s' % note)

        # Warm-up, not counted: page cache, and mxcache's cache for the
        # checking instance (the records' TTL outlasts the run).
        for s in servers:
            res, text = run_load(s.port, 200, a.sessions, msgfile, 30)
            if not res or res.get('accepted') != 200:
                out('   warm-up of %s: %s' % (
                    s.name, '; '.join(sb.error_lines(text)[:4]) or
                    text[-300:]))
            # Its deliveries must be over, or the first round counts
            # some of them.
            pmtest.wait_for(lambda: sb.maildir_count(s.dirs) >=
                            (res or {}).get('accepted', 0),
                            DELIVERY_TIMEOUT)
            sb.clear_maildirs(s.dirs)

        rows = {s.name: [] for s in servers}
        for i in range(1, a.rounds + 1):
            order = servers[i % len(servers):] + servers[:i % len(servers)]
            for s in order:
                if left() < 30:
                    out('   (time budget: round %d of %s skipped)'
                        % (i, s.name))
                    continue
                row = one_round(s, a, msgfile)
                out(fmt_row(s.name, i, row))
                if row['res']:
                    rows[s.name].append(row)
        summarize(a, servers, rows, note)
    finally:
        for s in reversed(servers):
            with contextlib.suppress(Exception):
                s.stop()
        if dns:
            dns.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        pmtest.reap_zombies()
    return 0


def summarize(a, servers, rows, note):
    def med(name, fn):
        vals = [fn(r) for r in rows.get(name, [])]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    def rate(r):
        return r['res']['rate']

    def cpu_ms(r):
        return sum(r['cpu'].values()) / 1e6 / max(1, r['res']['accepted'])

    on, off, pf = 'pymaild checks on', 'pymaild checks off', 'Postfix'
    r_on, r_off, r_pf = med(on, rate), med(off, rate), med(pf, rate)
    c_on, c_off, c_pf = med(on, cpu_ms), med(off, cpu_ms), med(pf, cpu_ms)
    bad = sum(len(r['bad']) for n in (on, off) for r in rows.get(n, []))
    checked = sum(r['checked'] for r in rows.get(on, []))
    errs = sum(r['res']['errors'] + r['res']['failed']
               for n in (on, off) for r in rows.get(n, []))

    def f(v, unit=' msg/s'):
        if v is None:
            return 'n/a'
        return ('%.2f%s' if unit == ' ms' else '%.1f%s') % (v, unit)

    out('')
    out('== authentication summary (medians of %d round(s))' % a.rounds)
    out('   accept rate  checks on %-14s checks off %-14s Postfix %s'
        % (f(r_on), f(r_off), f(r_pf)))
    out('   CPU per msg  checks on %-14s checks off %-14s Postfix %s'
        % (f(c_on, ' ms'), f(c_off, ' ms'), f(c_pf, ' ms')))
    out('   verdicts sampled from the checking instance: %d, wrong: %d; '
        'generator errors (pymaild): %d' % (checked, bad, errs))
    broken = bad or not checked
    why = ('the checks did not all pass (%d wrong verdicts of %d sampled)'
           % (bad, checked)) if broken else ''
    figure('smtp accept rate, SPF+DKIM+DMARC checks on / off',
           '%s / %s' % (f(r_on), f(r_off)), 'Postfix plain %s' % f(r_pf),
           '')
    figure('CPU per message, checks on / off',
           '%s / %s' % (f(c_on, ' ms'), f(c_off, ' ms')),
           'Postfix plain %s' % f(c_pf, ' ms'), '')
    if r_on and r_off:
        fall = 1 - r_on / r_off
        v = 'NOT met: ' + why if broken else (
            'met' if fall <= TARGET_FALL else 'NOT met')
        out('   fall with the checks on: %.1f %% (target <= %.0f %%): %s'
            % (100 * fall, 100 * TARGET_FALL, v))
        figure('accept rate fall with the checks on', '%.1f %%'
               % (100 * fall), '<= %.0f %%' % (100 * TARGET_FALL), v)
    else:
        figure('accept rate fall with the checks on', 'n/a',
               '<= %.0f %%' % (100 * TARGET_FALL), 'skipped: no figures')
    if r_on and r_pf:
        ratio = r_on / r_pf
        v = 'NOT met: ' + why if broken else (
            'met' if ratio >= TARGET_VS_POSTFIX else 'NOT met')
        out('   checks on against Postfix plain: %.2fx (target >= %.0fx): '
            '%s' % (ratio, TARGET_VS_POSTFIX, v))
        figure('checks on against Postfix plain', '%.2fx' % ratio,
               '>= %.0fx' % TARGET_VS_POSTFIX, v)
    else:
        figure('checks on against Postfix plain', 'n/a',
               '>= %.0fx' % TARGET_VS_POSTFIX,
               'skipped: ' + (note or 'no figures'))
    figure('verdicts dkim=spf=dmarc=pass in the sample', '%d of %d'
           % (checked - bad, checked), 'all', 'NOT met' if broken
           else 'met')


if __name__ == '__main__':
    sys.exit(main())
