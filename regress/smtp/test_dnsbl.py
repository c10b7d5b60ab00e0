"""DNS blocklists and the greeting delay on the SMTP port (issue "mail
authentication", item 3): the client's address is asked of every
`dnsbl` zone through mxcache (the only process with a resolver socket)
while the 220 waits `greetdelay` seconds. A listed client gets 554 5.7.1
naming the list (and its TXT reason, made printable) instead of the 220,
then 503 to all but QUIT (RFC 5321 3.1); a client that talks before the
greeting gets 554 5.5.1 and is cut off; a lookup that fails lets the
client in. Submission and noauthhosts clients are never checked.

The zones are served by regress/lib/dnsfixture.py; clients connect from
loopback addresses of their own (127.0.0.2 is listed, as RFC 5782 has
every list list it). Each lookup mxcache makes is one debug log line
("dns qname=... qtype=..."), which the tests count.

    /usr/bin/python3 regress/run.py regress/smtp/test_dnsbl.py
"""

import json
import os
import re
import socket
import time

from lib import pmtest
from lib.dnsfixture import Blackhole, DNSServer
from lib.smtputil import Client, make_message, wait_mail
from lib.tlsutil import TlsCase

SENDER = 'carol@sender.example'
# 127.0.0.1: the harness's own probes of the port.
NOAUTH = ['127.0.0.1', '127.0.0.9']
V6_LOOPBACK = '.'.join('1' + '0' * 31)   # ::1, last nibble first

ZONE = '''
$ORIGIN bl.test.
$TTL 900
2.0.0.127        A   127.0.0.2
2.0.0.127        TXT "Listed for spam, see https://bl.test/q?127.0.0.2"
3.0.0.127        A   127.0.0.3
3.0.0.127        TXT "bad\\013\\010reason\\000tail" " and more"
4.0.0.127        A   127.255.255.254
7.0.0.127        A   127.0.0.2
7.0.0.127        TXT "%s" "%s"
%s A 127.0.0.4
$ORIGIN second.test.
5.0.0.127        A   127.0.0.10
''' % ('a' * 150, 'b' * 150, V6_LOOPBACK)


def lookups(inst, qname=None):
    """The DNS lookups mxcache made for the helpers (each one query)."""
    lines = re.findall(r'dns qname=(\S+) qtype=(\S+) result=', inst.log())
    return [l for l in lines if qname is None or l[0] == qname]


class DnsblCase(TlsCase):

    def setUp(self):
        super().setUp()
        self.dns = None

    def serve(self, inst, zone=ZONE):
        self.dns = DNSServer(inst.resolver_port, zone)
        self.addCleanup(self.dns.cleanup)
        self.dns.start()

    def bl_instance(self, zones=('bl.test',), delay=0, **cfg):
        conf = dict(dnsbl=list(zones), greetdelay=delay,
                    noauthhosts=NOAUTH)
        conf.update(cfg)
        inst = self.smtp_instance(start=False, **conf)
        self.serve(inst)
        inst.start()
        inst.wait_port()
        return inst

    def assertRefusedSession(self, c, zone):
        g = c.greeting
        self.assertEqual((g.code, g.enh), (554, '5.7.1'), g)
        self.assertIn(zone, g.text)
        for cmd in ('EHLO client.example', 'MAIL FROM:<%s>' % SENDER,
                    'RCPT TO:<alice@test.example>', 'DATA', 'NOOP'):
            r = c.cmd(cmd)
            self.assertEqual((r.code, r.enh), (503, '5.5.1'), (cmd, r))
        c.expect('QUIT', 221)
        self.assertTrue(c.closed_by_server(), 'not closed after QUIT')

    def assertRefusalCounted(self, inst, reason):
        r = inst.adm('stats', '--json')
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)['smtp_refusals_total']
        self.assertEqual(got[reason], 1, got)


class Listed(DnsblCase):

    def test_listed_client_refused_naming_zone_and_reason(self):
        inst = self.bl_instance()
        c = self.client(inst, source='127.0.0.2')
        self.assertIn('[127.0.0.2] blocked using bl.test: Listed for spam, '
                      'see https://bl.test/q?127.0.0.2', c.greeting.text)
        self.assertRefusedSession(c, 'bl.test')
        self.assertTrue(pmtest.wait_for(
            lambda: 'client=127.0.0.2 result=refused reason=dnsbl '
            'zone=bl.test code=127.0.0.2' in inst.log()), inst.log_tail())
        self.assertRefusalCounted(inst, 'dnsbl')

    def test_txt_reason_with_controls_is_printable_one_line(self):
        inst = self.bl_instance()
        c = self.client(inst, source='127.0.0.3')
        g = c.greeting
        self.assertEqual(g.code, 554, g)
        self.assertEqual(len(g.lines), 1, g)
        # CR, LF and NUL became '?'; the strings were joined as they are.
        self.assertTrue(g.text.endswith('bad??reason?tail and more'), g)
        self.assertTrue(all(32 <= b < 127 for b in g.raw.rstrip(b'\r\n')),
                        g.raw)

    def test_long_reason_cut_to_200(self):
        inst = self.bl_instance()
        c = self.client(inst, source='127.0.0.7')
        self.assertEqual(c.greeting.code, 554, c.greeting)
        self.assertTrue(c.greeting.text.endswith(
            'bl.test: ' + 'a' * 150 + 'b' * 50), c.greeting)

    def test_query_refused_code_is_not_a_listing(self):
        # 127.255.255.x: the list refuses to answer, it lists nobody.
        inst = self.bl_instance()
        c = self.client(inst, source='127.0.0.4')
        self.assertEqual(c.greeting.code, 220, c.greeting)

    def test_second_zone_lists(self):
        inst = self.bl_instance(zones=('bl.test', 'second.test'))
        c = self.client(inst, source='127.0.0.5')
        self.assertRefusedSession(c, 'second.test')
        self.assertEqual(len(lookups(inst)), 3, lookups(inst))

    def test_ipv6_client_nibbles(self):
        inst = self.bl_instance(listen=['127.0.0.1', '::1'])
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(10)
        s.connect(('::1', inst.smtp_port))
        line = pmtest.read_line(s, timeout=10)
        self.assertTrue(line.startswith('554 5.7.1 '), line)
        self.assertIn('[::1] blocked using bl.test', line)
        self.assertEqual(lookups(inst), [(V6_LOOPBACK + '.bl.test', 'A'),
                                         (V6_LOOPBACK + '.bl.test', 'TXT')])

    def test_answers_cached_for_their_ttl(self):
        inst = self.bl_instance()
        for _ in range(3):
            c = self.client(inst, source='127.0.0.2')
            self.assertEqual(c.greeting.code, 554)
            c.close()
            c = self.client(inst, source='127.0.0.6')
            self.assertEqual(c.greeting.code, 220)
            c.close()
        self.assertEqual(sorted(lookups(inst)), [
            ('2.0.0.127.bl.test', 'A'), ('2.0.0.127.bl.test', 'TXT'),
            ('6.0.0.127.bl.test', 'A')])


class NotListed(DnsblCase):

    def test_clean_client_delivers(self):
        inst = self.bl_instance()
        c = self.client(inst, source='127.0.0.6')
        self.assertEqual(c.greeting.code, 220, c.greeting)
        c.ehlo()
        r = c.transaction(SENDER, ['alice@test.example'],
                          make_message('clean'))
        self.assertEqual(r.code, 250, r)
        wait_mail(inst, 'alice', 1)
        self.assertEqual(lookups(inst), [('6.0.0.127.bl.test', 'A')])

    def test_resolver_silent_lets_client_in(self):
        inst = self.smtp_instance(start=False, dnsbl=['bl.test'],
                                  greetdelay=0, noauthhosts=NOAUTH)
        hole = Blackhole(inst.resolver_port)
        self.addCleanup(hole.close)
        inst.start()
        inst.wait_port()
        t0 = time.monotonic()
        c = Client(inst.smtp_port, source='127.0.0.2', greeting=False)
        self.addCleanup(c.close)
        g = c.reply(timeout=15, what='the greeting')
        took = time.monotonic() - t0
        self.assertEqual(g.code, 220, g)
        self.assertLess(took, 11, took)
        self.assertIn('dnsbl=tempfail zone=bl.test', inst.log())
        # Other sessions were not held meanwhile: the wait is a timer.
        self.assertEqual(c.cmd('NOOP').code, 250)

    def test_noauthhosts_never_checked(self):
        inst = self.bl_instance(delay=3)
        t0 = time.monotonic()
        c = self.client(inst, source='127.0.0.9')
        self.assertEqual(c.greeting.code, 220)
        self.assertLess(time.monotonic() - t0, 2)
        c.ehlo()
        c.expect('QUIT', 221)
        self.assertEqual(lookups(inst), [])

    def test_submission_port_never_checked(self):
        inst = self.tls_instance(dnsbl=['bl.test'], greetdelay=3,
                                 noauthhosts=NOAUTH, start=False)
        self.serve(inst)
        inst.start()
        inst.wait_port()
        t0 = time.monotonic()
        c = Client(inst.submission_port, source='127.0.0.2')
        self.addCleanup(c.close)
        self.assertEqual(c.greeting.code, 220)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(lookups(inst), [])


class GreetDelay(DnsblCase):

    def test_patient_client_greeted_after_delay(self):
        inst = self.bl_instance(delay=1)
        t0 = time.monotonic()
        c = self.client(inst, source='127.0.0.6')
        self.assertEqual(c.greeting.code, 220)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_talker_before_greeting_refused(self):
        inst = self.bl_instance(delay=2)
        c = Client(inst.smtp_port, source='127.0.0.6', greeting=False)
        self.addCleanup(c.close)
        c.line('EHLO robot.example')
        r = c.reply(timeout=5, what='the refusal')
        self.assertEqual((r.code, r.enh), (554, '5.5.1'), r)
        self.assertTrue(c.closed_by_server(), 'not closed')
        self.assertTrue(pmtest.wait_for(
            lambda: 'client=127.0.0.6 result=refused reason=pregreet'
            in inst.log()), inst.log_tail())
        self.assertRefusalCounted(inst, 'pregreet')

    def test_delay_does_not_hold_other_sessions(self):
        inst = self.bl_instance(delay=3)
        waiting = [Client(inst.smtp_port, source='127.0.0.%d' % i,
                          greeting=False) for i in range(20, 30)]
        for w in waiting:
            self.addCleanup(w.close)
        t0 = time.monotonic()
        c = self.client(inst, source='127.0.0.9')
        self.assertEqual(c.greeting.code, 220)
        self.assertLess(time.monotonic() - t0, 2)
        for w in waiting:
            self.assertEqual(w.reply(timeout=10).code, 220)

    def test_default_delay_with_dnsbl(self):
        inst = self.smtp_instance(start=False, dnsbl=['bl.test'],
                                  noauthhosts=NOAUTH)
        self.serve(inst)
        inst.start()
        inst.wait_port()
        t0 = time.monotonic()
        c = Client(inst.smtp_port, source='127.0.0.6', greeting=False)
        self.addCleanup(c.close)
        self.assertEqual(c.reply(timeout=10).code, 220)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
