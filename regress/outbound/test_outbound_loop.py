"""Mail loops (DESIGN.md A7 "Loops"): outbound never connects to the
unspecified address (0.0.0.0, ::), nor to one of our own listening
addresses on our own SMTP port: "MX points back to us" bounces with
5.4.6, as Postfix does ("loops back to myself").  When we are a backup MX
(a better one is elsewhere) the better ones are still used.  MX hosts on
other loopback ports (every other outbound test) stay allowed.

A real DNS server (regress/lib/dnsfixture.py) serves the zone below on
the instance's resolver port; the daemon runs in regress/run.py's private
network namespace.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_loop.py
"""

import os
import shutil
import subprocess

from lib.oututil import (OutCase, final_recipient, log_lines,
                         make_message, parse_dsn, submit, wait_mail,
                         wait_queue_empty)

try:
    from lib import dnsfixture
except ImportError:
    dnsfixture = None

ALICE = 'alice@test.example'
# A documentation address the test puts on lo (wildcard listen case).
EXTRA_LOCAL = '198.51.100.7'

ZONE = '''
$ORIGIN loop.test.
$TTL 3600
self          MX 10 mx.self
mx.self       A 127.0.0.1
zero          MX 10 mx.zero
mx.zero       A 0.0.0.0
zero6         MX 10 mx.zero6
mx.zero6      AAAA ::
; we are the backup: the better MX gets it
backup        MX 10 mx.backup
backup        MX 20 us.backup
mx.backup     A 127.0.0.5
us.backup     A 127.0.0.1
; we are the best: bounce, the worse one is not tried
best          MX 10 us.best
best          MX 20 mx.best
us.best       A 127.0.0.1
mx.best       A 127.0.0.5
; any loopback address is ours when we listen on the wildcard
wild          MX 10 mx.wild
mx.wild       A 127.0.0.9
extra         MX 10 mx.extra
mx.extra      A %s
''' % EXTRA_LOCAL


def d(name):
    return name + '.loop.test'


class Loop(OutCase):

    def setUp(self):
        super().setUp()
        if dnsfixture is None:
            self.skipTest('regress/lib/dnsfixture.py is missing')

    def loop_instance(self, same_port=True, **cfg):
        """outboundport == smtpserverport when same_port: our own SMTP
        server is where an MX on our address would lead."""
        inst = self.out_instance(start=False, **cfg)
        if same_port:
            inst.write_config(outboundport=inst.smtp_port)
            inst.outbound_port = inst.smtp_port
        inst.start()
        inst.wait_port()
        srv = dnsfixture.DNSServer(inst.resolver_port, ZONE)
        self.addCleanup(srv.cleanup)
        srv.start()
        return inst

    def assert_loop_bounce(self, inst, rcpt, qid):
        [(_, raw)] = wait_mail(inst, 'alice', 1, timeout=15)
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields], [rcpt])
        self.assertEqual(fields[0].get('status'), '5.4.6', fields[0])
        self.assertIn('points back to us',
                      fields[0].get('diagnostic-code', ''), fields[0])
        wait_queue_empty(inst)
        # The message came in once: from the test, never from ourselves.
        received = log_lines(inst, 'smtp-in', 'result=queued')
        self.assertEqual(len(received), 1, 'the message came back to us:'
                         '\n%s'
                         % '\n'.join(received))

    def loop_case(self, rcpt, **cfg):
        inst = self.loop_instance(**cfg)
        qid = submit(inst, ALICE, [rcpt], make_message('loop', to=rcpt))
        self.assert_loop_bounce(inst, rcpt, qid)
        return inst

    def test_mx_points_back_to_us(self):
        self.loop_case('x@' + d('self'))

    def test_literal_points_back_to_us(self):
        self.loop_case('x@[127.0.0.1]')

    def test_we_are_the_best_mx(self):
        inst = self.loop_instance()
        # The worse MX listens on our SMTP port, on another address.
        other = self.sink('127.0.0.5', inst.smtp_port)
        rcpt = 'x@' + d('best')
        qid = submit(inst, ALICE, [rcpt], make_message('best', to=rcpt))
        self.assert_loop_bounce(inst, rcpt, qid)
        self.assertEqual(other.connections, 0, other.describe())

    def test_we_are_a_backup_mx(self):
        inst = self.loop_instance()
        better = self.sink('127.0.0.5', inst.smtp_port)
        rcpt = 'x@' + d('backup')
        msg = make_message('backup', to=rcpt)
        submit(inst, ALICE, [rcpt], msg)
        [txn] = self.wait_delivered(better, 1, inst)
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)

    def test_unspecified_address_never_contacted(self):
        """0.0.0.0 and :: reach this host on Linux: never connected to,
        whatever the port."""
        inst = self.loop_instance(same_port=False)
        # Where a connect to 0.0.0.0:outboundport would land.
        sink = self.sink('127.0.0.1', inst.outbound_port)
        rcpts = ['x@' + d('zero'), 'y@' + d('zero6'), 'z@[0.0.0.0]',
                 'w@[IPv6:::]']
        for r in rcpts:
            submit(inst, ALICE, [r], make_message('unspecified', to=r))
        got = [m for _, m in wait_mail(inst, 'alice', len(rcpts), timeout=15)]
        bounced = set()
        for raw in got:
            msg, per_msg, fields = parse_dsn(raw)
            self.assertEqual(fields[0].get('status'), '5.4.6', fields[0])
            bounced.add(final_recipient(fields[0]).lower())
        self.assertEqual(bounced, set(r.lower() for r in rcpts))
        self.assertEqual(sink.connections, 0, sink.describe())
        wait_queue_empty(inst)

    def test_wildcard_listen_any_local_address(self):
        self.loop_case('x@' + d('wild'), listen=['0.0.0.0'])

    def test_wildcard_listen_interface_address(self):
        """Not loopback: an address of an interface of this host."""
        if os.geteuid() != 0 or not shutil.which('ip'):
            self.skipTest('needs root and ip(8) in the test namespace')
        r = subprocess.run(['ip', 'addr', 'add', EXTRA_LOCAL + '/32',
                            'dev', 'lo'], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest('ip addr add: %s' % r.stderr.strip())
        self.addCleanup(subprocess.run, ['ip', 'addr', 'del',
                                         EXTRA_LOCAL + '/32', 'dev', 'lo'],
                        capture_output=True)
        self.loop_case('x@' + d('extra'), listen=['0.0.0.0'])


if __name__ == '__main__':
    import unittest
    unittest.main()
