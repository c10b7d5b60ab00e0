"""AUTH to the smarthost (smtprelayauth): the credentials are in a file
only the parent reads; outbound asks for them for each session to the
smarthost, once TLS is up and verified (smtprelaytls = "verify"), and
logs in with AUTH PLAIN, or LOGIN when that is all the smarthost offers.
The sink (regress/lib/sink.py) requires AUTH before MAIL and checks the
credentials.  Wrong credentials defer the message with the smarthost's
535 in the last error; the password is never in the log.  A file open
to group or others stops the start with a message naming it.  Under
smtprelaytls = "none" the credentials go in plaintext, but only to a
loopback smarthost.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_relayauth.py
"""

import base64
import os
import shutil
import ssl
import tempfile
import time

from lib import pmtest
from lib.oututil import (OutCase, lasterror, log_lines, make_message,
                         queue_entry, submit, wait_deferred, wait_queue_empty)
from lib.tlsutil import make_ca, make_signed_pair

ALICE = 'alice@test.example'
USER = 'relayuser'
PASSWORD = 'S3cret:pass!word'


def server_context(pair):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pair[0], pair[1])
    return ctx


class RelayAuth(OutCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='pmrelayauth-')
        os.chmod(cls.dir, 0o755)    # the parent reads as its own account
        cls.ca = make_ca(cls.dir, 'ca')
        cls.pair = make_signed_pair(cls.dir, 'relay', 'ec', cls.ca,
                                    cn='relay.test', san='IP:127.0.0.1')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1', auth=(USER, PASSWORD))
        self.relay.configure(tls=server_context(self.pair))

    def auth_file(self, text, mode=0o600):
        fd, path = tempfile.mkstemp(prefix='relay-', suffix='.auth',
                                    dir=self.dir)
        os.write(fd, text.encode())
        os.close(fd)
        os.chmod(path, mode)
        if pmtest.IS_ROOT:
            os.chown(path, pmtest.uid_of(pmtest.DAEMON_USER), -1)
        self.addCleanup(os.unlink, path)
        return path

    def auth_instance(self, creds='%s:%s\n' % (USER, PASSWORD), **cfg):
        conf = dict(smtprelaytls='verify', smtprelaycafile=self.ca[0],
                    smtprelayauth=self.auth_file(creds))
        conf.update(cfg)
        return self.out_instance(relay=self.relay, **conf)

    def tries(self):
        return [t for s in self.relay.session_list() for t in s.auth_tries]

    def assert_password_not_logged(self, inst):
        with open(inst.logpath, 'rb') as f:
            log = f.read()
        raw = ('\0%s\0%s' % (USER, PASSWORD)).encode()
        for needle in (PASSWORD.encode(), base64.b64encode(raw),
                       base64.b64encode(PASSWORD.encode())):
            self.assertNotIn(needle, log)

    def test_plain_inside_tls(self):
        inst = self.auth_instance()
        msg = make_message('relayed with AUTH')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(txn.auth, USER, self.context(inst, self.relay))
        self.assertIsNotNone(txn.tls)
        self.assertTrue(txn.data.endswith(msg))
        mech, _, _, ok, tls = self.tries()[0]
        self.assertEqual((mech, ok), ('PLAIN', True))
        self.assertIsNotNone(tls, 'AUTH outside TLS')
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid, 'result=sent'))
        self.assert_password_not_logged(inst)

    def test_login_when_only_login(self):
        self.relay.configure(auth_mechs=('LOGIN',))
        inst = self.auth_instance()
        submit(inst, ALICE, ['x@remote.example'], make_message('LOGIN'))
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(txn.auth, USER, self.context(inst, self.relay))
        self.assertEqual([t[0] for t in self.tries()], ['LOGIN'])
        self.assert_password_not_logged(inst)

    def test_wrong_password_defers_with_535(self):
        inst = self.auth_instance(creds='%s:wrong%s\n' % (USER, PASSWORD))
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('wrong password'))
        wait_deferred(inst, qid)
        err = lasterror(queue_entry(inst, qid))
        self.assertIn('535 5.7.8', err, self.context(inst, self.relay))
        self.assertEqual(self.relay.delivered, [])
        self.assertTrue(self.tries() and not self.tries()[0][3])
        self.assertTrue(log_lines(inst, qid, 'auth=failed'), inst.log_tail())
        self.assert_password_not_logged(inst)

    def test_never_before_tls(self):
        # STARTTLS not offered: no AUTH in plaintext, the mail waits.
        self.relay.configure(tls=None)
        inst = self.auth_instance()
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('no TLS, no AUTH'))
        wait_deferred(inst, qid)
        self.assertEqual(self.tries(), [])
        self.assertFalse(any(c.startswith(b'AUTH') for s in
                             self.relay.session_list() for c in s.commands))
        self.assertIn('TLS verify failed', lasterror(queue_entry(inst, qid)))

    def test_plaintext_to_loopback_under_none(self):
        inst = self.auth_instance(smtprelaytls='none')
        submit(inst, ALICE, ['x@remote.example'], make_message('loopback'))
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(txn.auth, USER, self.context(inst, self.relay))
        self.assertIsNone(txn.tls)

    def outbound_pids(self, inst):
        _, roles, _ = inst.processes()
        return roles.get('outbound', [])

    def check_not_kept(self, inst, mechs):
        """After sessions with AUTH are over, outbound's memory holds
        neither the password nor the lines that carried it."""
        self.relay.configure(auth_mechs=mechs)
        for i in range(3):
            submit(inst, ALICE, ['x%d@remote.example' % i],
                   make_message('kept? %d' % i))
        self.wait_delivered(self.relay, 3, inst)
        wait_queue_empty(inst)
        raw = ('\0%s\0%s' % (USER, PASSWORD)).encode()
        # Any 12 characters of an encoded line: a later, shorter line in
        # the same reused buffer overwrites only the start of it.
        needles = {PASSWORD.encode()}
        for b64 in (base64.b64encode(raw),
                    base64.b64encode(PASSWORD.encode())):
            needles.update(b64[i:i + 12] for i in range(len(b64) - 11))
        pids = self.outbound_pids(inst)
        self.assertTrue(pids, 'no outbound process')
        # The session closes after the last reply: give it a moment.
        time.sleep(0.5)
        for pid in pids:
            self.assertEqual(pmtest.memory_holding(pid, needles), set())

    def test_password_not_kept_after_plain(self):
        self.check_not_kept(self.auth_instance(smtprelaytls='none'),
                            ('PLAIN',))

    def test_password_not_kept_after_login(self):
        self.check_not_kept(self.auth_instance(), ('LOGIN',))

    def test_file_open_to_others_refused(self):
        path = self.auth_file('%s:%s\n' % (USER, PASSWORD), mode=0o644)
        inst = self.out_instance(relay=self.relay, start=False,
                                 smtprelaytls='verify',
                                 smtprelaycafile=self.ca[0],
                                 smtprelayauth=path)
        r = inst.adm('start')
        self.assertNotEqual(r.returncode, 0)
        out = r.stdout + r.stderr + inst.log_tail()
        self.assertIn(path, out)
        self.assertIn('group or others', out)

    def test_reload_refuses_a_file_opened_up(self):
        inst = self.auth_instance()
        path = inst.config['smtprelayauth']
        os.chmod(path, 0o640)
        r = inst.adm('reload')
        self.assertNotEqual(r.returncode, 0, 'reload took a 0640 file')
        self.assertIn(path, r.stdout + r.stderr)
        self.assertTrue(inst.running())

    def test_garbled_file_refused(self):
        path = self.auth_file('no colon here\n')
        inst = self.out_instance(relay=self.relay, start=False,
                                 smtprelaytls='verify',
                                 smtprelaycafile=self.ca[0],
                                 smtprelayauth=path)
        r = inst.adm('start')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(path, r.stdout + r.stderr + inst.log_tail())


if __name__ == '__main__':
    import unittest
    unittest.main()
