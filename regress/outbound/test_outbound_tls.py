"""Outbound TLS, opportunistic (RFC 3207, RFC 7435): to a server that
offers STARTTLS the mail goes encrypted (the sink, regress/lib/sink.py,
sees the transaction inside TLS, and the delivery log line says which
version and cipher); to one that offers it and then breaks the handshake
it goes in plaintext, to the same host at once, and the log says that
TLS failed; to one that does not offer STARTTLS, in plaintext, without
STARTTLS ever sent.  With a retry that fails too, the envelope's last
error names the TLS failure.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_tls.py
"""

import os

from lib.oututil import (OutCase, lasterror, log_lines, make_message,
                         queue_entry, submit, wait_deferred, wait_queue_empty)
from lib.sink import tls_context

ALICE = 'alice@test.example'


class OutboundTLS(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')
        self.ctx = tls_context(self.tmpdir(), 'relay.test')

    def tmpdir(self):
        import tempfile
        import shutil
        d = tempfile.mkdtemp(prefix='pmtls-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def commands(self, sink):
        return [c for s in sink.session_list() for c in s.commands]

    def test_starttls_when_offered(self):
        self.relay.configure(tls=self.ctx)
        inst = self.out_instance(relay=self.relay)
        msg = make_message('over TLS')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertIsNotNone(txn.tls, self.context(inst, self.relay))
        self.assertRegex(txn.tls, r'^TLSv1\.[23] ')
        self.assertTrue(txn.data.endswith(msg))
        cmds = self.commands(self.relay)
        self.assertIn(b'STARTTLS\r\n', cmds)
        # EHLO again inside TLS (RFC 3207 4.2)
        self.assertEqual(sum(1 for c in cmds if c.startswith(b'EHLO')), 2)
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid, 'result=sent', 'tls=TLSv1.'),
                        inst.log_tail())
        self.assert_no_protocol_errors(self.relay, inst)

    def test_handshake_fails_then_plaintext(self):
        self.relay.configure(tls=self.ctx, tls_fail=True)
        inst = self.out_instance(relay=self.relay)
        msg = make_message('TLS broken')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertIsNone(txn.tls)
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)
        sessions = self.relay.session_list()
        self.assertEqual(len(sessions), 2, self.context(inst, self.relay))
        self.assertIn(b'STARTTLS\r\n', sessions[0].commands)
        self.assertNotIn(b'STARTTLS\r\n', sessions[1].commands)
        self.assertTrue(log_lines(inst, qid, 'tls=failed',
                                  'retrying in plaintext'), inst.log_tail())
        self.assertTrue(log_lines(inst, qid, 'result=sent', 'tls=no'),
                        inst.log_tail())

    def test_not_offered_plaintext(self):
        inst = self.out_instance(relay=self.relay)
        msg = make_message('no TLS offered')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertIsNone(txn.tls)
        self.assertNotIn(b'STARTTLS\r\n', self.commands(self.relay))
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid, 'result=sent', 'tls=no'),
                        inst.log_tail())

    def test_last_error_says_tls_failed(self):
        self.relay.configure(tls=self.ctx, tls_fail=True,
                             mail='451 4.3.0 sink: later')
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('TLS broken, then deferred'))
        wait_deferred(inst, qid)
        err = lasterror(queue_entry(inst, qid))
        self.assertIn('TLS', err)
        self.assertIn('451 4.3.0 sink: later', err)


if __name__ == '__main__':
    import unittest
    unittest.main()
