"""The MX cache against DESIGN.md A1 (updatemx), A3 (MAILDIR/mxservers),
A6 and A7 (Outbound), with a real DNS server on a loopback port
(regress/lib/dnsfixture.py: ldns-testns serving a zone written here).

Run with the suite (make regress) or alone:
    /usr/bin/python3 regress/run.py -k mx
"""

import os
import re
import smtplib
import time

from lib import pmtest
from lib.dnsfixture import Blackhole, DNSServer

MXCACHE = pmtest.HELPERS['mxcache']

ZONE = '''
$ORIGIN mx.test.
$TTL 3600
multi            MX 20 backup.multi
multi            MX 10 primary.multi
multi            MX 10 second.multi
primary.multi    A 127.0.0.11
primary.multi    AAAA ::11
second.multi     A 127.0.0.12
backup.multi     A 127.0.0.13
implicit     600 A 127.0.0.14
implicit     600 AAAA ::14
nullmx           MX 0 .
shortttl       5 MX 10 primary.multi
longttl   200000 MX 10 far
far       200000 A 127.0.0.17
nohosts          MX 10 nowhere
nohosts          MX 20 noaddr
noaddr           TXT "no address here"
cname            MX 10 alias.cname
alias.cname      CNAME real.cname
real.cname       A 127.0.0.15
v6only           MX 10 six.v6only
six.v6only       AAAA 2001:db8::6
tcp              MX 10 primary.multi
partial          MX 10 broken.partial
partial          MX 20 ok.partial
ok.partial       A 127.0.0.16
allbroken        MX 10 broken.partial
''' + ''.join('many MX %d h%d.many\nh%d.many A 127.0.1.%d\n' % (i, i, i, i)
              for i in range(40, 0, -1)) + 'many MX 50 h5.many\n'
MISBEHAVE = dict(servfail=['servfail.mx.test', 'broken.partial.mx.test'],
                 truncate=['tcp.mx.test'], garbage=['garbage.mx.test'])

NEG_TTL = 300
SLACK = 30      # seconds between the lookup and the test's clock


def d(name):
    return name + '.mx.test'


def parse_cache(text):
    """MAILDIR/mxservers as {domain: {'expires', 'status', 'mx'}} plus the
    domains in file order; written independently of common/mxfile.c."""
    out, order, cur = {}, [], None
    for line in text.splitlines():
        if not line.strip():
            cur = None
            continue
        if line.startswith('#'):
            continue
        words = line.split()
        if words[0] == 'domain':
            cur = out[words[1]] = {'mx': []}
            order.append(words[1])
        elif words[0] == 'expires':
            cur['expires'] = int(words[1])
        elif words[0] == 'status':
            cur['status'] = words[1]
        elif words[0] == 'mx':
            cur['mx'].append((int(words[1]), words[2], words[3]))
        else:
            raise AssertionError('unknown line in mxservers: %r' % line)
    return out, order


def block(domain, expires, status='nxdomain', mx=()):
    text = 'domain %s\nexpires %d\nstatus %s\n' % (domain, expires, status)
    for pref, host, addr in mx:
        text += 'mx %d %s %s\n' % (pref, host, addr)
    return text + '\n'


class MXCase(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        pmtest.require_built(pmtest.PYMAILD, pmtest.PYMAILADM, MXCACHE)

    def setup(self, zone=ZONE, dns=True, **overrides):
        inst = self.instance(**overrides)
        server = DNSServer(inst.resolver_port, zone, **MISBEHAVE)
        self.addCleanup(server.cleanup)
        if dns:
            server.start()
        return inst, server

    def cache_path(self, inst):
        return os.path.join(inst.maildir, 'mxservers')

    def write_cache(self, inst, text):
        """MAILDIR/mxservers as the daemon's user would have it."""
        os.makedirs(inst.maildir, exist_ok=True)
        path = self.cache_path(inst)
        with open(path, 'w') as f:
            f.write(text)
        if pmtest.IS_ROOT:
            uid = pmtest.uid_of(pmtest.DAEMON_USER)
            os.chown(inst.maildir, uid, -1)
            os.chown(path, uid, -1)

    def stale_cache(self, inst, names, expires=1):
        """Entries for these domains that say nothing true."""
        self.write_cache(inst, ''.join(block(d(n), expires) for n in names))

    def read_cache(self, inst):
        with open(self.cache_path(inst)) as f:
            return parse_cache(f.read())

    def cache_bytes(self, inst):
        with open(self.cache_path(inst), 'rb') as f:
            return f.read()

    def assertRefreshed(self, r, n):
        self.assertEqual(r.returncode, 0, 'updatemx: %r %r' % (r.stdout,
                                                                r.stderr))
        self.assertEqual(r.stdout.strip(), 'MX cache refreshed: %d %s.'
                         % (n, 'domain' if n == 1 else 'domains'))

    def assertExpires(self, entry, ttl, now):
        self.assertGreaterEqual(entry['expires'], now + ttl - 1)
        self.assertLessEqual(entry['expires'], now + ttl + SLACK)


class StoppedDaemon(MXCase):
    """updatemx with the daemon stopped: pymailadm looks up itself."""

    def test_refresh_writes_every_kind_of_answer(self):
        inst, _ = self.setup()
        names = ['multi', 'implicit', 'nullmx', 'nonexistent', 'shortttl',
                 'longttl', 'nohosts', 'cname', 'v6only', 'tcp', 'many']
        self.stale_cache(inst, names)
        now = int(time.time())
        r = inst.adm('updatemx')
        self.assertRefreshed(r, len(names))
        cache, order = self.read_cache(inst)
        self.assertEqual(order, [d(n) for n in names])

        with self.subTest('MX hosts by preference, with their addresses'):
            e = cache[d('multi')]
            self.assertEqual(e['status'], 'ok')
            prefs = [m[0] for m in e['mx']]
            self.assertEqual(prefs, sorted(prefs))
            self.assertEqual(sorted(e['mx'][:3]), [
                (10, d('primary.multi'), '127.0.0.11'),
                (10, d('primary.multi'), '::11'),
                (10, d('second.multi'), '127.0.0.12')])
            self.assertEqual(e['mx'][3], (20, d('backup.multi'),
                                          '127.0.0.13'))
            # A host's addresses stay together, IPv4 first.
            hosts = [m[1] for m in e['mx']]
            i = hosts.index(d('primary.multi'))
            self.assertEqual(e['mx'][i][2], '127.0.0.11')
            self.assertEqual(e['mx'][i + 1][2], '::11')
            self.assertExpires(e, 3600, now)
        with self.subTest('implicit MX: the domain itself, preference 0'):
            e = cache[d('implicit')]
            self.assertEqual(e['status'], 'ok')
            self.assertEqual(e['mx'], [(0, d('implicit'), '127.0.0.14'),
                                       (0, d('implicit'), '::14')])
            self.assertExpires(e, 600, now)
        with self.subTest('null MX (RFC 7505)'):
            e = cache[d('nullmx')]
            self.assertEqual((e['status'], e['mx']), ('nullmx', []))
            self.assertExpires(e, NEG_TTL, now)
        with self.subTest('NXDOMAIN'):
            e = cache[d('nonexistent')]
            self.assertEqual((e['status'], e['mx']), ('nxdomain', []))
            self.assertExpires(e, NEG_TTL, now)
        with self.subTest('a 5 s TTL is kept 60 s'):
            e = cache[d('shortttl')]
            self.assertEqual(e['status'], 'ok')
            self.assertExpires(e, 60, now)
        with self.subTest('a TTL over a day is kept a day'):
            e = cache[d('longttl')]
            self.assertEqual(e['mx'], [(10, d('far'), '127.0.0.17')])
            self.assertExpires(e, 86400, now)
        with self.subTest('MX hosts without any address'):
            e = cache[d('nohosts')]
            self.assertEqual((e['status'], e['mx']), ('nohosts', []))
            self.assertExpires(e, NEG_TTL, now)
        with self.subTest('an MX host that is a CNAME'):
            self.assertEqual(cache[d('cname')]['mx'],
                             [(10, d('alias.cname'), '127.0.0.15')])
        with self.subTest('IPv6 only'):
            self.assertEqual(cache[d('v6only')]['mx'],
                             [(10, d('six.v6only'), '2001:db8::6')])
        with self.subTest('truncated over UDP: asked again over TCP'):
            self.assertEqual(cache[d('tcp')]['mx'],
                             [(10, d('primary.multi'), '127.0.0.11'),
                              (10, d('primary.multi'), '::11')])
        with self.subTest('40 MX hosts: the 32 best, each name once'):
            self.assertEqual(cache[d('many')]['mx'], [
                (i, d('h%d.many' % i), '127.0.1.%d' % i)
                for i in range(1, 33)])
        with self.subTest('the file stays the daemon\'s'):
            st = os.stat(self.cache_path(inst))
            self.assertEqual(st.st_mode & 0o777, 0o600)
            if pmtest.IS_ROOT:
                self.assertEqual(st.st_uid,
                                 pmtest.uid_of(pmtest.DAEMON_USER))
        # The same again: nothing accumulates.
        r = inst.adm('updatemx')
        self.assertRefreshed(r, len(names))
        again, order = self.read_cache(inst)
        self.assertEqual(order, [d(n) for n in names])
        self.assertEqual(again[d('implicit')]['mx'], cache[d('implicit')]['mx'])

    def test_temporary_failures_keep_the_old_entry(self):
        inst, _ = self.setup()
        future = int(time.time()) + 5000
        old = {d('servfail'): block(d('servfail'), future, 'ok',
                                    [(5, 'old.example', '192.0.2.1')]),
               d('garbage'): block(d('garbage'), 7, 'nohosts'),
               d('allbroken'): block(d('allbroken'), 8, 'nullmx')}
        self.write_cache(inst, block(d('multi'), 1) + ''.join(old.values())
                         + block(d('partial'), 1))
        now = int(time.time())
        r = inst.adm('updatemx')
        line = self.assertOneLineError(r, 'updatemx: 3 of 5 domains not '
                                       'refreshed: ')
        self.assertRegex(line, r'resolver 127\.0\.0\.1:%d'
                         % inst.resolver_port)
        cache, order = self.read_cache(inst)
        self.assertEqual(order, [d('multi'), d('servfail'), d('garbage'),
                                 d('allbroken'), d('partial')])
        for name, text in old.items():
            self.assertEqual(cache[name], parse_cache(text)[0][name],
                             '%s: a temporary failure replaced it' % name)
        self.assertEqual(cache[d('multi')]['status'], 'ok')
        # Some hosts failed: what resolved is used, but not for long.
        e = cache[d('partial')]
        self.assertEqual(e['mx'], [(20, d('ok.partial'), '127.0.0.16')])
        self.assertExpires(e, 60, now)

    def test_resolver_that_does_not_answer(self):
        inst, _ = self.setup(dns=False)
        self.stale_cache(inst, ['multi', 'implicit'])
        before = self.cache_bytes(inst)
        with Blackhole(inst.resolver_port):
            r = inst.adm('updatemx')
        line = self.assertOneLineError(r)
        self.assertEqual(line, 'updatemx: no answer from resolver '
                         '127.0.0.1:%d' % inst.resolver_port)
        self.assertEqual(r.stdout, '')
        self.assertEqual(self.cache_bytes(inst), before)

    def test_no_resolver_listening(self):
        inst, _ = self.setup(dns=False)
        self.stale_cache(inst, ['multi'])
        before = self.cache_bytes(inst)
        r = inst.adm('updatemx')
        line = self.assertOneLineError(r)
        self.assertEqual(line, 'updatemx: no answer from resolver '
                         '127.0.0.1:%d' % inst.resolver_port)
        self.assertEqual(self.cache_bytes(inst), before)

    def test_corrupt_file_is_refused_and_left_alone(self):
        inst, _ = self.setup()
        for text in ['domain multi.mx.test\nexpires soon\nstatus ok\n',
                     "{'multi.mx.test': [('mx', '192.0.2.1', 10)]}\n",
                     block(d('multi'), 1) + 'mx 10 a.example 192.0.2.1\n']:
            with self.subTest(text=text):
                self.write_cache(inst, text)
                r = inst.adm('updatemx')
                self.assertOneLineError(r, 'mxservers', 'corrupt')
                self.assertEqual(self.cache_bytes(inst), text.encode())

    def test_no_cache_file(self):
        inst, _ = self.setup()
        os.makedirs(inst.maildir, exist_ok=True)
        r = inst.adm('updatemx')
        self.assertRefreshed(r, 0)
        self.assertFalse(os.path.exists(self.cache_path(inst)))

    def test_usage(self):
        inst, _ = self.setup(dns=False)
        r = inst.adm('updatemx', 'example.com')
        self.assertEqual(r.returncode, 2)


class RunningDaemon(MXCase):
    """updatemx through the daemon: mxcache looks up, the parent writes."""

    def test_refresh_through_the_daemon(self):
        inst, _ = self.setup()
        future = int(time.time()) + 5000
        self.write_cache(inst, ''.join(block(d(n), future) for n in
                                       ('multi', 'implicit', 'nullmx'))
                         + block('expired.example', 5))
        inst.start()
        now = int(time.time())
        r = inst.adm('updatemx')
        # The expired entry was dropped when the daemon read the file.
        self.assertRefreshed(r, 3)
        self.assertIn('updatemx domains=3 failed=0', inst.log())
        # Written before the answer: no need to wait for it.
        cache, order = self.read_cache(inst)
        self.assertEqual(sorted(order), sorted([d('multi'), d('implicit'),
                                                d('nullmx')]))
        self.assertEqual(cache[d('multi')]['mx'][-1],
                         (20, d('backup.multi'), '127.0.0.13'))
        self.assertEqual(len(cache[d('multi')]['mx']), 4)
        self.assertEqual(cache[d('implicit')]['mx'],
                         [(0, d('implicit'), '127.0.0.14'),
                          (0, d('implicit'), '::14')])
        self.assertEqual(cache[d('nullmx')]['status'], 'nullmx')
        self.assertExpires(cache[d('multi')], 3600, now)
        st = os.stat(self.cache_path(inst))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        if pmtest.IS_ROOT:
            self.assertEqual(st.st_uid, pmtest.uid_of(pmtest.DAEMON_USER))
        self.assertTrue(inst.running())

    def test_many_domains_at_once(self):
        # More than mxcache sends at once: the rest wait their turn.
        inst, _ = self.setup()
        future = int(time.time()) + 5000
        names = ['multi'] + ['n%d' % i for i in range(400)]
        self.write_cache(inst, ''.join(block(d(n), future, 'nohosts')
                                       for n in names))
        inst.start()
        self.assertRefreshed(inst.adm('updatemx'), len(names))
        cache, order = self.read_cache(inst)
        self.assertEqual(len(order), len(names))
        self.assertEqual(cache[d('multi')]['status'], 'ok')
        self.assertEqual({cache[d(n)]['status'] for n in names[1:]},
                         {'nxdomain'})

    def test_cache_survives_a_restart(self):
        inst, dns = self.setup()
        self.write_cache(inst, ''.join(
            block(d(n), int(time.time()) + 5000) for n in
            ('multi', 'implicit')))
        inst.start()
        self.assertRefreshed(inst.adm('updatemx'), 2)
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        saved = self.cache_bytes(inst)
        self.assertEqual(parse_cache(saved.decode())[0][d('implicit')]['mx'],
                         [(0, d('implicit'), '127.0.0.14'),
                          (0, d('implicit'), '::14')])
        inst.start()
        self.assertTrue(pmtest.wait_for(
            lambda: 'mx cache loaded: domains=2' in inst.log(), 5),
            inst.log_tail())
        self.assertRefreshed(inst.adm('updatemx'), 2)

    def test_resolver_down(self):
        inst, dns = self.setup()
        future = int(time.time()) + 5000
        self.write_cache(inst, block(d('multi'), future) +
                         block(d('implicit'), future))
        inst.start()
        dns.stop()
        before = self.cache_bytes(inst)
        r = inst.adm('updatemx')
        line = self.assertOneLineError(r)
        self.assertEqual(line, 'updatemx: no answer from resolver '
                         '127.0.0.1:%d' % inst.resolver_port)
        self.assertTrue(inst.running())
        time.sleep(1.5)     # past the save delay: still nothing written
        self.assertEqual(self.cache_bytes(inst), before)
        # Back again: the entries were kept and are refreshed.
        dns.start()
        self.assertRefreshed(inst.adm('updatemx'), 2)

    def test_corrupt_file_starts_cold(self):
        inst, _ = self.setup()
        self.write_cache(inst, 'domain multi.mx.test\nstatus maybe\n')
        inst.start()
        self.assertTrue(pmtest.wait_for(
            lambda: re.search(r'mxservers: corrupt.*empty MX cache',
                              inst.log()), 5), inst.log_tail())
        self.assertRefreshed(inst.adm('updatemx'), 0)
        self.assertTrue(inst.running())

    def test_reload_changes_the_resolver(self):
        inst, dns = self.setup()
        self.write_cache(inst, block(d('multi'), int(time.time()) + 5000))
        wrong = pmtest.free_udp_port()
        inst.write_config(resolver='127.0.0.1:%d' % wrong)
        inst.start()
        r = inst.adm('updatemx')
        self.assertOneLineError(r, 'no answer from resolver 127.0.0.1:%d'
                                % wrong)
        inst.write_config(resolver='127.0.0.1:%d' % inst.resolver_port)
        self.assertEqual(inst.adm('reload').returncode, 0)
        self.assertRefreshed(inst.adm('updatemx'), 1)


class ThroughTheQueue(MXCase):
    """queued asks mxcache: MX preference, implicit MX, answers from the
    cache when DNS is gone, and a warm start from the file."""

    def send(self, inst, rcpt):
        with smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10) as c:
            c.sendmail('sender@test.example', [rcpt],
                       'Subject: mx\r\n\r\nbody\r\n')

    def test_delivery_uses_the_cache(self):
        from lib import sink as sinkmod
        zone = ZONE + '''
pref.test.       MX 10 down.pref.test.
pref.test.       MX 20 up.pref.test.
down.pref.test.  A 127.0.0.2
up.pref.test.    A 127.0.0.3
own.test.        A 127.0.0.3
'''
        inst, dns = self.setup(zone=zone)
        sink = sinkmod.Sink('127.0.0.3', inst.outbound_port)
        self.addCleanup(sink.stop)
        inst.start()
        # The first MX has nobody listening: the second gets it.
        self.send(inst, 'a@pref.test')
        self.send(inst, 'b@own.test')
        self.assertGreaterEqual(len(sink.wait_transactions(2, timeout=30)),
                                2, inst.log_tail())
        # DNS gone: the cache still knows both domains.
        dns.stop()
        self.send(inst, 'c@pref.test')
        self.assertGreaterEqual(len(sink.wait_transactions(3, timeout=30)),
                                3, inst.log_tail())
        self.assertTrue(pmtest.wait_for(
            lambda: os.path.exists(self.cache_path(inst)) and
            {'pref.test', 'own.test'} <= set(self.read_cache(inst)[0]), 5))
        # A restart starts warm: still no DNS, still delivered.
        self.assertEqual(inst.stop().returncode, 0)
        inst.start()
        self.send(inst, 'd@own.test')
        self.assertGreaterEqual(len(sink.wait_transactions(4, timeout=30)),
                                4, inst.log_tail())
        rcpts = sorted(r for t in sink.transactions for r in t.rcpts)
        self.assertEqual(rcpts, ['a@pref.test', 'b@own.test',
                                 'c@pref.test', 'd@own.test'])


class ResolvConf(MXCase):
    """With `resolver` unset, the nameservers of /etc/resolv.conf: a fake
    one is bind-mounted in a private mount namespace, pointing at a DNS
    server on 127.0.0.1 port 53 of the suite's private network."""

    RESOLV = ('# written by test_mx.py\nsearch example.org\n'
              'options ndots:2 timeout:1\nnameserver 127.0.0.1\n'
              'nameserver ::1\n')

    def setUp(self):
        super().setUp()
        self.require_root()
        if os.environ.get('PYMAILD_NETNS') != '1':
            self.skipTest('needs the private network namespace of run.py '
                          '(port 53 on loopback)')

    def in_mount_ns(self, inst, *args):
        fake = os.path.join(inst.dir, 'resolv.conf')
        with open(fake, 'w') as f:
            f.write(self.RESOLV)
        argv = ['unshare', '-m', '--', 'sh', '-c',
                'mount --bind "$0" /etc/resolv.conf && exec "$@"', fake,
                pmtest.PYMAILADM, '-f', inst.conf] + list(args)
        return pmtest.run(argv, env=inst.env())

    def test_stopped_and_running(self):
        inst = self.instance(resolver=None)
        pmtest.hold_port53(self)
        dns = DNSServer(53, ZONE)
        self.addCleanup(dns.cleanup)
        dns.start()
        self.stale_cache(inst, ['multi', 'implicit'], int(time.time()) + 999)
        self.assertRefreshed(self.in_mount_ns(inst, 'updatemx'), 2)
        cache, _ = self.read_cache(inst)
        self.assertEqual(cache[d('implicit')]['mx'],
                         [(0, d('implicit'), '127.0.0.14'),
                          (0, d('implicit'), '::14')])
        # mxcache reads it before its chroot.
        r = self.in_mount_ns(inst, 'start')
        self.assertEqual(r.returncode, 0, r.stderr)
        inst._note_daemon()
        self.assertRefreshed(inst.adm('updatemx'), 2)
        self.assertIn('resolver 127.0.0.1:53', inst.log())
