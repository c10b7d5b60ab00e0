"""A host whose connect fails at once (no route to an address literal, an
MX on a closed loopback port) is one failed attempt, counted once: the
message is deferred with attempts 1 and its next attempt retrymin away,
and queued keeps answering (new mail is accepted and delivered,
`pymailadm status` works).  Before, the immediate failure settled the
message twice, put it twice on the retry list and made queued spin.

The test daemon runs in regress/run.py's private network namespace with
only loopback: 192.0.2.1 and 2001:db8::1 have no route there, so the
connect fails at once and nothing leaves the machine.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_fastfail.py
"""

import os
import re
import time

from lib.oututil import (OutCase, log_lines, make_message, pmtest,
                         queue_entry, submit, wait_deferred, wait_mail)

try:
    from lib import dnsfixture
except ImportError:
    dnsfixture = None

ALICE = 'alice@test.example'
RETRYMIN = 1200
RETRYMAX = 7200

ZONE = '''
$ORIGIN fast.test.
$TTL 3600
closed        MX 10 mx.closed
mx.closed     A 127.0.0.1
'''


class FastFail(OutCase):

    def fast_instance(self, **cfg):
        return self.out_instance(retrymin=RETRYMIN, retrymax=RETRYMAX,
                                 **cfg)

    def envelope(self, inst, qid):
        path = os.path.join(inst.spooldir, 'env', qid)
        if not pmtest.wait_for(lambda: os.path.exists(path), 5, 0.1):
            self.fail('no envelope %s' % path)
        text = pmtest.read_file(path, 'r')
        return dict(l.split(': ', 1) for l in text.splitlines()
                    if ': ' in l and not l.startswith('rcpt:'))

    def still_answers(self, inst):
        """queued takes new mail and delivers it; status answers."""
        r = inst.adm('status', timeout=10)
        self.assertEqual(r.returncode, 0, 'pymailadm status: %r %r\n%s'
                         % (r.stdout, r.stderr, inst.log_tail(30)))
        submit(inst, ALICE, ['bob@test.example'],
               make_message('still alive', to='bob@test.example'))
        wait_mail(inst, 'bob', 1, timeout=15, settle=0)

    def assert_one_attempt(self, inst, qid, started):
        e = wait_deferred(inst, qid, timeout=15)
        # Give a second settle (the old bug) time to happen.
        time.sleep(1.5)
        self.still_answers(inst)
        e = queue_entry(inst, qid)
        self.assertIsNotNone(e, 'message %s left the queue' % qid)
        self.assertEqual(e['attempts'], 1, 'one failed connect counted '
                         'as %r attempts\n%s' % (e['attempts'],
                                                 inst.log_tail(30)))
        deferred = log_lines(inst, 'queue id=' + qid, 'result=deferred')
        self.assertEqual(len(deferred), 1, 'deferred %d times:\n%s'
                         % (len(deferred), '\n'.join(deferred)))
        self.assertRegex(deferred[0], r'attempts=1 retry=%d' % RETRYMIN)
        env = self.envelope(inst, qid)
        nxt = int(env['next-attempt'])
        self.assertEqual(int(env['attempts']), 1, env)
        self.assertGreaterEqual(nxt, int(started) + RETRYMIN - 2, env)
        self.assertLessEqual(nxt, int(time.time()) + RETRYMIN + 2, env)

    def literal(self, rcpt):
        inst = self.fast_instance()
        started = time.time()
        qid = submit(inst, ALICE, [rcpt], make_message('no route',
                                                       to=rcpt))
        self.assert_one_attempt(inst, qid, started)
        return inst, qid

    def test_unroutable_ipv4_literal(self):
        self.literal('x@[192.0.2.1]')

    def test_unroutable_ipv6_literal(self):
        self.literal('x@[IPv6:2001:db8::1]')

    def test_bounce_to_unroutable_sender(self):
        """Any sender can trigger it: a DSN to an unroutable sender is
        a message whose connect fails at once.  alice's maxmailsize
        refuses the message for her at the end of DATA, bob takes it,
        and smtpd queues a DSN to x@[192.0.2.1] for alice's copy."""
        inst = self.fast_instance()
        r = inst.adm('chopt', 'alice', 'maxmailsize', '10')
        self.assertEqual(r.returncode, 0, r.stderr)
        s = 'x@[192.0.2.1]'
        submit(inst, s, ['bob@test.example', 'alice@test.example'],
               make_message('bounces for alice', sender=s))
        wait_mail(inst, 'bob', 1, timeout=15, settle=0)

        def bounce_deferred():
            return log_lines(inst, 'queue id=', 'result=deferred')
        self.assertTrue(pmtest.wait_for(bounce_deferred, 15, 0.1),
                        'no DSN to %s deferred\n%s'
                        % (s, inst.log_tail(30)))
        time.sleep(1.5)
        r = inst.adm('status', timeout=10)
        self.assertEqual(r.returncode, 0, inst.log_tail(30))
        deferred = log_lines(inst, 'queue id=', 'result=deferred')
        self.assertEqual(len(deferred), 1, '\n'.join(deferred))
        self.assertIn('attempts=1 retry=%d' % RETRYMIN, deferred[0])
        submit(inst, ALICE, ['bob@test.example'],
               make_message('still alive', to='bob@test.example'))
        wait_mail(inst, 'bob', 2, timeout=15, settle=0)

    def test_mx_refuses_at_once(self):
        if dnsfixture is None:
            self.skipTest('regress/lib/dnsfixture.py is missing')
        inst = self.fast_instance()
        srv = dnsfixture.DNSServer(inst.resolver_port, ZONE)
        self.addCleanup(srv.cleanup)
        srv.start()
        # Nothing listens on 127.0.0.1 at the outbound port.
        self.assertFalse(pmtest.port_open(inst.outbound_port))
        rcpt = 'x@closed.fast.test'
        started = time.time()
        qid = submit(inst, ALICE, [rcpt], make_message('refused', to=rcpt))
        self.assert_one_attempt(inst, qid, started)
        e = queue_entry(inst, qid)
        self.assertTrue(re.search(r'refused', e.get('lasterror', '')), e)


if __name__ == '__main__':
    import unittest
    unittest.main()
