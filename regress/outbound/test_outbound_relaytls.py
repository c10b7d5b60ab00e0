"""The smarthost's TLS policy (smtprelaytls, smtprelaycafile).

"verify": the mail goes to the smarthost only inside TLS whose
certificate chains to the configured CA bundle and names the smarthost
(here by its address, 127.0.0.1, as the smtprelay key gives it); a
certificate from another CA, one naming another host, a smarthost that
does not offer STARTTLS or whose handshake breaks: the message is
deferred, never sent in plaintext (the sink sees no MAIL), and the
envelope's last error says "TLS verify failed" and why.  "none": no
STARTTLS to the smarthost even when offered.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_relaytls.py
"""

import os
import shutil
import ssl
import tempfile

from lib.oututil import (OutCase, lasterror, log_lines, make_message,
                         queue_entry, submit, wait_deferred, wait_queue_empty)
from lib.tlsutil import make_ca, make_signed_pair

ALICE = 'alice@test.example'


def server_context(pair):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pair[0], pair[1])
    return ctx


class RelayTLS(OutCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='pmrelaytls-')
        cls.ca = make_ca(cls.dir, 'ca')
        cls.other_ca = make_ca(cls.dir, 'otherca')
        cls.good = make_signed_pair(cls.dir, 'good', 'ec', cls.ca,
                                    cn='relay.test', san='IP:127.0.0.1')
        cls.wrongname = make_signed_pair(cls.dir, 'wrongname', 'ec', cls.ca,
                                         cn='elsewhere.test')
        cls.untrusted = make_signed_pair(cls.dir, 'untrusted', 'ec',
                                         cls.other_ca, cn='relay.test',
                                         san='IP:127.0.0.1')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')

    def verify_instance(self, **cfg):
        conf = dict(smtprelaytls='verify', smtprelaycafile=self.ca[0])
        conf.update(cfg)
        return self.out_instance(relay=self.relay, **conf)

    def commands(self):
        return [c for s in self.relay.session_list() for c in s.commands]

    def mail_sent(self):
        return [c for c in self.commands() if c.startswith(b'MAIL')]

    def test_verified_delivery(self):
        self.relay.configure(tls=server_context(self.good))
        inst = self.verify_instance()
        msg = make_message('verified relay')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertRegex(txn.tls or '', r'^TLSv1\.[23] ',
                         self.context(inst, self.relay))
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid, 'result=sent', 'tls=TLSv1.'),
                        inst.log_tail())

    def deferred(self, inst, qid, *needles):
        wait_deferred(inst, qid)
        err = lasterror(queue_entry(inst, qid))
        self.assertIn('TLS verify failed', err,
                      self.context(inst, self.relay))
        for n in needles:
            self.assertIn(n, err, self.context(inst, self.relay))
        self.assertEqual(self.mail_sent(), [],
                         self.context(inst, self.relay))
        self.assertEqual(self.relay.delivered, [])
        return err

    def test_untrusted_ca_defers(self):
        self.relay.configure(tls=server_context(self.untrusted))
        inst = self.verify_instance()
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('untrusted CA'))
        self.deferred(inst, qid, 'certificate', 'local issuer')
        self.assertTrue(log_lines(inst, qid, 'verify=failed'),
                        inst.log_tail())

    def test_wrong_name_defers(self):
        self.relay.configure(tls=server_context(self.wrongname))
        inst = self.verify_instance()
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('wrong name'))
        self.deferred(inst, qid, 'mismatch')

    def test_self_signed_not_in_bundle_defers(self):
        # The system bundle (the default) knows no test CA.
        self.relay.configure(tls=server_context(self.good))
        inst = self.verify_instance(
            smtprelaycafile='/etc/ssl/certs/ca-certificates.crt')
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('system bundle'))
        self.deferred(inst, qid, 'local issuer')

    def test_no_starttls_defers(self):
        inst = self.verify_instance()
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('no STARTTLS'))
        self.deferred(inst, qid, 'STARTTLS not offered')

    def test_broken_handshake_no_plaintext(self):
        self.relay.configure(tls=server_context(self.good), tls_fail=True)
        inst = self.verify_instance()
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('broken handshake'))
        self.deferred(inst, qid, 'handshake')
        self.assertFalse(log_lines(inst, qid, 'retrying in plaintext'),
                         inst.log_tail())

    def test_none_never_starttls(self):
        self.relay.configure(tls=server_context(self.good))
        inst = self.out_instance(relay=self.relay, smtprelaytls='none')
        msg = make_message('no TLS wanted')
        submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertIsNone(txn.tls)
        self.assertNotIn(b'STARTTLS\r\n', self.commands())
        wait_queue_empty(inst)

    def test_missing_cafile_refused_at_start(self):
        missing = os.path.join(self.dir, 'none.pem')
        inst = self.verify_instance(start=False, smtprelaycafile=missing)
        r = inst.adm('start')
        self.assertNotEqual(r.returncode, 0, inst.log_tail())
        self.assertIn('smtprelaycafile ' + missing,
                      r.stdout + r.stderr + inst.log_tail())


if __name__ == '__main__':
    import unittest
    unittest.main()
