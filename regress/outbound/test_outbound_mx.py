"""Outbound through the domain's MX hosts, with a real DNS server
(regress/lib/dnsfixture.py, ldns-testns serving a zone written here) on
the instance's `resolver` port and real SMTP sinks (regress/lib/sink.py)
listening on 127.0.0.x at the instance's `outboundport` (DESIGN.md A6, A7
"Outbound"), and what a broken DNS answer costs:

- MX preference, with the first MX down (nothing listens on 127.0.0.2);
- the domain's own address when it has no MX (implicit MX);
- a null MX (RFC 7505) bounces at once (or is refused at RCPT, 556);
- NXDOMAIN bounces; a DNS server that is silent, answers SERVFAIL or
  garbage defers, never bounces;
- the smarthost as the fallback after every MX failed;
- two pymaild instances, each the other's MX through the test DNS: a user
  of one writes (SMTP AUTH) to a user of the other, who reads it over
  POP3.

    /usr/bin/python3 regress/run.py -k test_outbound_mx
"""

import contextlib
import os
import poplib
import smtplib
import time

from lib.oututil import (DELIVERY_TIMEOUT, SETTLE, OutCase,
                         bounces_in, final_recipient, lasterror, log_lines,
                         make_message, parse_dsn, submit,
                         wait_deferred, wait_mail, wait_queue_empty)
from lib import pmtest

try:
    from lib import dnsfixture
except ImportError:
    dnsfixture = None

ALICE = 'alice@test.example'
NO_FIXTURE = ('regress/lib/dnsfixture.py is not there yet (the MX tests '
              'need its DNS server)')

ZONE = '''
$ORIGIN out.test.
$TTL 3600
; MX preference: the best one is down, the second answers, the third
; must never be needed.  Listed out of order on purpose.
pref          MX 30 mx3.pref
pref          MX 10 mx1.pref
pref          MX 20 mx2.pref
mx1.pref      A 127.0.0.2
mx2.pref      A 127.0.0.3
mx3.pref      A 127.0.0.4
; all up: the lowest preference gets it
order         MX 20 high.order
order         MX 10 low.order
high.order    A 127.0.0.6
low.order     A 127.0.0.5
; no MX: the domain's own address
implicit      A 127.0.0.7
; null MX, with an address that must not be used as an implicit MX
nullmx        MX 0 .
nullmx        A 127.0.0.8
; every MX down
down          MX 10 mx1.down
down          MX 20 mx2.down
mx1.down      A 127.0.0.2
mx2.down      A 127.0.0.9
; MX hosts without any address
noaddr        MX 10 nowhere.noaddr
noaddr        MX 20 nowhere2.noaddr
nowhere2.noaddr TXT "nothing"
'''


def d(name):
    return name + '.out.test'


class MxCase(OutCase):

    def setUp(self):
        super().setUp()
        if dnsfixture is None:
            self.skipTest(NO_FIXTURE)

    def dns(self, inst, zone=ZONE, **misbehave):
        srv = dnsfixture.DNSServer(inst.resolver_port, zone, **misbehave)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def mx_instance(self, **cfg):
        inst = self.out_instance(**cfg)
        return inst

    def mx_sink(self, inst, host, **cfg):
        """A sink on host at the instance's outboundport."""
        return self.sink(host, inst.outbound_port, **cfg)

    def assert_never(self, *sinks):
        for s in sinks:
            self.assertEqual(s.connections, 0, 'contacted: %s'
                             % s.describe())


class Mx(MxCase):

    def test_preference_first_mx_down(self):
        inst = self.mx_instance()
        self.dns(inst)
        mx2 = self.mx_sink(inst, '127.0.0.3')
        mx3 = self.mx_sink(inst, '127.0.0.4')
        msg = make_message('first MX down', to='x@' + d('pref'))
        qid = submit(inst, ALICE, ['x@' + d('pref'), 'y@' + d('pref')], msg)
        [txn] = self.wait_delivered(mx2, 1, inst)
        self.assertEqual(sorted(txn.rcpts),
                         ['x@' + d('pref'), 'y@' + d('pref')])
        self.assertTrue(txn.data.endswith(msg))
        self.assertEqual(txn.mail_from, ALICE)
        wait_queue_empty(inst)
        self.assert_quiet(mx2, SETTLE)
        self.assertEqual(mx2.connections, 1)
        self.assert_never(mx3)
        # The first MX was tried (and failed) in the same attempt.
        self.assertTrue([l for l in log_lines(inst, qid)
                         if '127.0.0.2' in l],
                        'no log line says 127.0.0.2 was tried\n%s'
                        % inst.log_tail(30))
        self.assertEqual(inst.messages('alice'), [])

    def test_preference_order(self):
        inst = self.mx_instance()
        self.dns(inst)
        low = self.mx_sink(inst, '127.0.0.5')
        high = self.mx_sink(inst, '127.0.0.6')
        for i in range(3):
            submit(inst, ALICE, ['n%d@%s' % (i, d('order'))],
                   make_message('order %d' % i))
        self.wait_delivered(low, 3, inst)
        wait_queue_empty(inst)
        self.assert_never(high)

    def test_implicit_mx(self):
        inst = self.mx_instance()
        self.dns(inst)
        host = self.mx_sink(inst, '127.0.0.7')
        msg = make_message('implicit MX')
        submit(inst, ALICE, ['x@' + d('implicit')], msg)
        [txn] = self.wait_delivered(host, 1, inst)
        self.assertEqual(txn.rcpts, ['x@' + d('implicit')])
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)

    def test_null_mx_bounces(self):
        """RFC 7505: refused at RCPT with 556 5.1.10, or bounced at once
        (A7) -- and the domain's A record is not used instead."""
        inst = self.mx_instance(retrymin=1, retrymax=1)
        self.dns(inst)
        addr_sink = self.mx_sink(inst, '127.0.0.8')
        rcpt = 'x@' + d('nullmx')
        s = smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        s.mail(ALICE)
        code, text = s.rcpt(rcpt)
        if code != 250:
            self.assertEqual(code, 556, text)
            self.assertIn(b'5.1.10', text)
            self.assertEqual(inst.messages('alice'), [])
        else:
            code, text = s.data(make_message('to a null MX', to=rcpt))
            self.assertEqual(code, 250, text)
            s.quit()
            t0 = time.monotonic()
            [(_, raw)] = wait_mail(inst, 'alice', 1)
            # At once: no retry schedule, well before any maxqueuetime.
            self.assertLess(time.monotonic() - t0, 15)
            msg, per_msg, fields = parse_dsn(raw)
            self.assertEqual([final_recipient(f) for f in fields], [rcpt])
            self.assertRegex(fields[0].get('status', ''), r'^5\.')
            self.assertRegex(fields[0].get('diagnostic-code', '').lower(),
                             r'null mx|5\.1\.10|does not accept mail')
        wait_queue_empty(inst)
        self.assert_never(addr_sink)

    def test_nxdomain_bounces(self):
        inst = self.mx_instance(retrymin=1, retrymax=1)
        self.dns(inst)
        rcpt = 'x@' + d('no-such-domain')
        qid = submit(inst, ALICE, [rcpt], make_message('NXDOMAIN', to=rcpt))
        [(_, raw)] = wait_mail(inst, 'alice', 1)
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields], [rcpt])
        self.assertRegex(fields[0].get('status', ''), r'^5\.\d+\.\d+$')
        self.assertIn(d('no-such-domain'),
                      fields[0].get('diagnostic-code', ''))
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid), qid)

    def test_mx_hosts_without_address_bounce_or_defer(self):
        """MX hosts that resolve to nothing (NXDOMAIN, NODATA): a
        permanent failure per the mxlookup contract (MX_NOHOSTS)."""
        inst = self.mx_instance(retrymin=1, retrymax=1)
        self.dns(inst)
        rcpt = 'x@' + d('noaddr')
        submit(inst, ALICE, [rcpt], make_message('no address', to=rcpt))
        [(_, raw)] = wait_mail(inst, 'alice', 1)
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields], [rcpt])
        self.assertRegex(fields[0].get('status', ''), r'^5\.')
        wait_queue_empty(inst)

    def test_mx_rejection_names_mx_host(self):
        """A 550 from the MX: the bounce names the MX host and address
        and quotes its answer."""
        inst = self.mx_instance()
        self.dns(inst)
        self.mx_sink(inst, '127.0.0.5',
                     rcpt='550 5.1.1 mx sink: unknown user here')
        rcpt = 'x@' + d('order')
        submit(inst, ALICE, [rcpt], make_message('refused by MX'))
        [(_, raw)] = wait_mail(inst, 'alice', 1)
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields], [rcpt])
        f = fields[0]
        self.assertEqual(f.get('status'), '5.1.1')
        self.assertIn('mx sink: unknown user here', f['diagnostic-code'])
        allf = ' '.join(f.values())
        self.assertIn('127.0.0.5', allf)
        self.assertIn('low.order.out.test', allf.lower())
        wait_queue_empty(inst)

    def test_every_mx_down_defers(self):
        inst = self.mx_instance(retrymin=1, retrymax=1)
        self.dns(inst)
        rcpt = 'x@' + d('down')
        qid = submit(inst, ALICE, [rcpt], make_message('all MX down'))
        e = wait_deferred(inst, qid, attempts=2)
        self.assertTrue(lasterror(e))
        self.assertEqual(bounces_in(inst.messages('alice')), [])
        # The second MX comes up: the next retry gets there.
        mx2 = self.mx_sink(inst, '127.0.0.9')
        self.wait_delivered(mx2, 1, inst)
        wait_queue_empty(inst)

    def test_smtprelay_fallback_after_every_mx_failed(self):
        """smtprelay set, usesmtprelay false: MX first; when every MX
        fails, the relay gets it in the same attempt (A7)."""
        relay = self.sink('127.0.0.1')
        inst = self.mx_instance(smtprelay=relay.address)
        self.dns(inst)
        rcpt = 'x@' + d('down')
        msg = make_message('fallback')
        qid = submit(inst, ALICE, [rcpt], msg)
        [txn] = self.wait_delivered(relay, 1, inst)
        self.assertEqual(txn.rcpts, [rcpt])
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)
        self.assertFalse([l for l in log_lines(inst, qid)
                          if 'result=deferred' in l],
                         'deferred before the fallback was tried')

    def test_smtprelay_not_used_when_mx_answers(self):
        relay = self.sink('127.0.0.1')
        inst = self.mx_instance(smtprelay=relay.address)
        self.dns(inst)
        mx = self.mx_sink(inst, '127.0.0.5')
        submit(inst, ALICE, ['x@' + d('order')], make_message('via MX'))
        self.wait_delivered(mx, 1, inst)
        wait_queue_empty(inst)
        self.assert_never(relay)


class DnsTrouble(MxCase):
    """A DNS server that does not answer, answers SERVFAIL or garbage:
    the message is deferred, never bounced."""

    def check_deferred_not_bounced(self, inst, qid, attempts=2,
                                   timeout=DELIVERY_TIMEOUT + 20):
        e = wait_deferred(inst, qid, attempts=attempts, timeout=timeout)
        self.assertTrue(lasterror(e), e)
        self.assertEqual([r.get('status') for r in e['recipients']],
                         ['pending'], e)
        self.assertEqual(inst.messages('alice'), [], 'bounced on a '
                         'temporary DNS failure')
        return e

    def test_silent_dns_defers(self):
        inst = self.mx_instance(retrymin=1, retrymax=1)
        hole = dnsfixture.Blackhole(inst.resolver_port)
        self.addCleanup(hole.close)
        before = inst.processes()
        rcpt = 'x@' + d('implicit')
        msg = make_message('DNS is silent')
        qid = submit(inst, ALICE, [rcpt], msg)
        # Local mail still flows while lookups hang.
        submit(inst, ALICE, ['bob@test.example'],
               make_message('local', to='bob@test.example'))
        wait_mail(inst, 'bob', 1, settle=0)
        self.check_deferred_not_bounced(inst, qid)
        self.assert_alive(inst)
        self.assertEqual(inst.processes()[0], before[0])
        # The DNS server comes back: the message goes.
        hole.close()
        self.dns(inst)
        host = self.mx_sink(inst, '127.0.0.7')
        r = inst.adm('flush')
        self.assertEqual(r.returncode, 0, r.stderr)
        [txn] = self.wait_delivered(host, 1, inst, timeout=30)
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)
        self.assertEqual(inst.messages('alice'), [])

    def test_no_dns_server_defers(self):
        """Nothing listens on the resolver port (ICMP port unreachable)."""
        inst = self.mx_instance(retrymin=1, retrymax=1)
        qid = submit(inst, ALICE, ['x@' + d('implicit')],
                     make_message('no DNS server'))
        self.check_deferred_not_bounced(inst, qid)
        self.assert_alive(inst)

    def test_servfail_defers(self):
        inst = self.mx_instance(retrymin=1, retrymax=1)
        self.dns(inst, servfail=[d('sf')])
        qid = submit(inst, ALICE, ['x@' + d('sf')],
                     make_message('SERVFAIL'))
        self.check_deferred_not_bounced(inst, qid)
        self.assert_alive(inst)

    def test_garbage_dns_defers(self):
        inst = self.mx_instance(retrymin=1, retrymax=1)
        self.dns(inst, garbage=[d('junk')])
        qid = submit(inst, ALICE, ['x@' + d('junk')],
                     make_message('garbage DNS'))
        self.check_deferred_not_bounced(inst, qid)
        self.assert_alive(inst)

    def test_silent_dns_expires_with_maxqueuetime_only(self):
        """A silent resolver for longer than maxqueuetime: the bounce
        says the time expired (not "no such domain")."""
        inst = self.mx_instance(retrymin=1, retrymax=1, maxqueuetime=4)
        hole = dnsfixture.Blackhole(inst.resolver_port)
        self.addCleanup(hole.close)
        rcpt = 'x@' + d('implicit')
        submit(inst, ALICE, [rcpt], make_message('expire on DNS'))
        [(_, raw)] = wait_mail(inst, 'alice', 1, timeout=40)
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields], [rcpt])
        self.assertRegex(raw.decode('utf-8', 'replace'), r'(?i)expired')
        self.assertNotRegex(fields[0].get('diagnostic-code', ''),
                            r'(?i)no such domain')
        wait_queue_empty(inst)


# ----------------------------------------------------------------------
# Two instances, each the other's MX

TWO_ZONE = '''
$TTL 3600
$ORIGIN a.test.
@        MX 10 mx
mx       A 127.0.0.2
$ORIGIN b.test.
@        MX 10 mx
mx       A 127.0.0.3
'''


class TwoInstances(MxCase):

    def pop3_read(self, inst, host, user, password, want):
        """USER/PASS and RETR every message; returns their texts, or
        skips when pop3d does not answer."""
        try:
            p = poplib.POP3(host, inst.pop3_port, timeout=10)
        except OSError as e:
            self.skipTest('pop3d does not answer on %s:%d (%s): POP3 is '
                          'not finished' % (host, inst.pop3_port, e))
        try:
            if not p.getwelcome().startswith(b'+OK'):
                self.skipTest('pop3d greeting %r' % p.getwelcome())
            try:
                p.user(user)
                p.pass_(password)
                n, _ = p.stat()
            except poplib.error_proto as e:
                self.skipTest('pop3d does not complete a login (%s): POP3 '
                              'is not finished' % e)
            out = []
            for i in range(1, n + 1):
                _, lines, _ = p.retr(i)
                out.append(b'\r\n'.join(lines) + b'\r\n')
            p.quit()
        finally:
            with contextlib.suppress(Exception):
                p.close()
        return out

    def test_two_instances_each_others_mx(self):
        port = pmtest.free_port()
        a = self.out_instance(
            users={'alice': 'alicepw'}, start=False,
            serverhostname='mail.a.test', localdomains=['a.test'],
            listen=['127.0.0.2'], smtpserverport=port, outboundport=port,
            noauthhosts=[], retrymin=1, retrymax=2)
        b = self.out_instance(
            users={'bob': 'bobpw'}, start=False,
            serverhostname='mail.b.test', localdomains=['b.test'],
            listen=['127.0.0.3'], smtpserverport=port, outboundport=port,
            noauthhosts=[], retrymin=1, retrymax=2,
            resolver='127.0.0.1:%d' % a.resolver_port)
        self.dns(a, TWO_ZONE)
        for inst, host in ((a, '127.0.0.2'), (b, '127.0.0.3')):
            inst.start()
            pmtest.wait_port(port, host=host)

        # Without AUTH, A is no open relay.
        s = smtplib.SMTP('127.0.0.2', port, timeout=10)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        s.mail('alice@a.test')
        code, _ = s.rcpt('bob@b.test')
        self.assertEqual(code, 554)
        s.quit()

        # alice@a.test -> bob@b.test, submitted to A with AUTH.
        msg = make_message('from A to B', b'over two MTAs\r\n.dot\r\n',
                           sender='alice@a.test', to='bob@b.test')
        qid = submit(a, 'alice@a.test', ['bob@b.test'], msg,
                     host='127.0.0.2', port=port,
                     login=('alice', 'alicepw'))
        [(_, stored)] = wait_mail(b, 'bob', 1,
                                  extra='A log:\n' + a.log_tail(30))
        self.assertTrue(stored.endswith(msg.replace(b'\r\n', b'\n')),
                        stored)
        self.assertIn(b'mail.a.test', stored)      # A's Received: / HELO
        wait_queue_empty(a)
        self.assertTrue(log_lines(a, qid, 'bob@b.test'))

        # bob answers through B; alice gets it on A.
        reply = make_message('re: from A to B', b'got it\r\n',
                             sender='bob@b.test', to='alice@a.test')
        submit(b, 'bob@b.test', ['alice@a.test'], reply, host='127.0.0.3',
               port=port, login=('bob', 'bobpw'))
        wait_mail(a, 'alice', 1, extra='B log:\n' + b.log_tail(30))
        wait_queue_empty(b)

        # bob reads it over POP3 on B.
        got = self.pop3_read(b, '127.0.0.3', 'bob', 'bobpw', 1)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].endswith(msg), got[0][-300:])
        got = self.pop3_read(a, '127.0.0.2', 'alice', 'alicepw', 1)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].endswith(reply))


if __name__ == '__main__':
    import unittest
    unittest.main()
