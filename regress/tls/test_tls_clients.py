"""TLS with mail clients we did not write (Debian's swaks, Perl's
Net::SSLeay over OpenSSL; Debian's mpop, over GnuTLS): swaks --tls
(STARTTLS) on port 25 and on submission with AUTH, swaks --tlsc on the
smtps port; mpop over STLS and over pop3s, checking the server's
certificate against a trust file (the self-signed certificate, or the
test CA that signed it), and refusing a server whose certificate is not
the trusted one.

The clients connect from 10.77.0.1 (an address of the test's private
network namespace, as test_tls_auth.py), so the server offers AUTH and
USER/PASS inside TLS only: a login that works proves the client really
spoke TLS to us. The clients come from the Makefile's TESTDEBS.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_clients.py
"""

import os
import shutil
import subprocess

from lib import tlsutil
from lib.tlsutil import (REMOTE, TlsCase, add_remote_address,
                         pmtest)
from lib.smtputil import header, make_message, wait_mail

CLIENT_TIMEOUT = 60


class Clients(TlsCase):

    def setUp(self):
        super().setUp()
        add_remote_address(self)

    def tool(self, name):
        path = shutil.which(name)
        if path is None:
            self.skipTest('%s is not installed (make deps installs the '
                          'Makefile TESTDEBS)' % name)
        return path

    def remote_instance(self, kinds, **cfg):
        return self.tls_instance(kinds=kinds, listen=['127.0.0.1', REMOTE],
                                 **cfg)

    def run_tool(self, argv, inst):
        # HOME: neither client reads a configuration file of ours.
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=CLIENT_TIMEOUT,
                           env=dict(os.environ, HOME=inst.dir))
        return r.returncode, r.stdout.decode('utf-8', 'replace')

    # ------------------------------------------------------------------
    # swaks

    def swaks(self, inst, port, *args, trust=None):
        argv = [self.tool('swaks'), '--server', REMOTE, '--port', str(port),
                '--local-interface', REMOTE, '--helo', 'client.example',
                '--from', 'alice@test.example', '--to', 'bob@test.example',
                '--timeout', '20']
        if trust:
            argv += ['--tls-verify', '--tls-ca-path', trust]
        return self.run_tool(argv + list(args), inst)

    def auth(self, mech='PLAIN', login='alice'):
        return ['--auth', mech, '--auth-user', login,
                '--auth-password', 'alicepw']

    def check_swaks(self, rc, out, proto='TLSv1.3'):
        self.assertEqual(rc, 0, out)
        self.assertIn('=== TLS started with cipher %s:' % proto, out)
        self.assertIn('<~  235 ', out)
        self.assertRegex(out, r'<~  250 2\.0\.0 Ok: queued as \S+')

    def check_received(self, inst, n, proto='TLSv1.3'):
        msgs = wait_mail(inst, 'bob', n)
        rec = header(msgs[-1][1], 'Received')[0]
        self.assertRegex(rec, r'with ESMTPSA \(%s \S+\)' % proto)

    def test_swaks_starttls_on_port_25_with_auth(self):
        inst = self.remote_instance(('ec', 'rsa'))
        rc, out = self.swaks(inst, inst.smtp_port, '--tls', *self.auth(),
                             trust=self.pairs['ec'][0])
        self.check_swaks(rc, out)
        self.check_received(inst, 1)

    def test_swaks_without_tls_gets_no_auth(self):
        # The other tests' logins work only because swaks spoke TLS.
        inst = self.remote_instance(('ec',))
        rc, out = self.swaks(inst, inst.smtp_port, *self.auth())
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn('AUTH PLAIN', out)
        self.assertNotIn('235 ', out)

    def test_swaks_starttls_on_submission(self):
        inst = self.remote_instance(('rsa',))
        # TLS 1.2 too: the RSA suite and the signature asked of the parent.
        for n, extra in ((1, []), (2, ['--tls-protocol', 'tlsv1_2'])):
            rc, out = self.swaks(inst, inst.submission_port, '--tls',
                                 *self.auth('LOGIN', 'alice@test.example'),
                                 *extra, trust=self.pairs['rsa'][0])
            proto = 'TLSv1.2' if extra else 'TLSv1.3'
            self.check_swaks(rc, out, proto)
            if extra:
                self.assertIn('ECDHE-RSA-', out)
            self.check_received(inst, n, proto)

    def test_swaks_tls_verify_refuses_an_unknown_certificate(self):
        inst = self.remote_instance(('ec',))
        other, _ = tlsutil.make_pair(inst.dir, 'other', 'ec')
        rc, out = self.swaks(inst, inst.submission_port, '--tls',
                             *self.auth(), trust=other)
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn('=== TLS started', out)
        self.assertNotIn('235 ', out)

    def test_swaks_implicit_tls_on_smtps(self):
        inst = self.remote_instance(('ec', 'rsa'))
        rc, out = self.swaks(inst, inst.smtps_port, '--tlsc', *self.auth(),
                             trust=self.pairs['ec'][0])
        self.check_swaks(rc, out)
        self.assertNotIn('STARTTLS', out)
        self.check_received(inst, 1)

    # ------------------------------------------------------------------
    # mpop

    def mpop(self, inst, port, starttls, trust):
        out = os.path.join(inst.dir, 'mpop-out')
        for sub in ('new', 'cur', 'tmp'):
            os.makedirs(os.path.join(out, sub), exist_ok=True)
        argv = [self.tool('mpop'), '--host=' + REMOTE, '--port=%d' % port,
                '--source-ip=' + REMOTE, '--timeout=20',
                '--tls=on', '--tls-starttls=' + ('on' if starttls else 'off'),
                '--tls-trust-file=' + trust,
                # The certificate names mail.test.example, not the address.
                '--tls-host-override=mail.test.example',
                '--auth=user', '--user=alice',
                '--passwordeval=echo alicepw',
                '--delivery=maildir,' + out, '--keep=off',
                '--received-header=off',
                '--uidls-file=' + os.path.join(inst.dir, 'uidls'),
                '--only-new=off']
        rc, text = self.run_tool(argv, inst)
        got = []
        for name in os.listdir(os.path.join(out, 'new')):
            with open(os.path.join(out, 'new', name), 'rb') as f:
                got.append(f.read())
        return rc, text, got

    def deliver(self, inst, subject):
        c = self.session(inst)
        c.transaction('carol@sender.example', ['alice@test.example'],
                      make_message(subject))
        c.close()
        wait_mail(inst, 'alice', 1)

    def test_mpop_stls_checks_the_certificate(self):
        inst = self.remote_instance(('ec',))
        self.deliver(inst, 'over stls')
        other, _ = tlsutil.make_pair(inst.dir, 'other', 'ec')
        rc, text, got = self.mpop(inst, inst.pop3_port, True, other)
        self.assertNotEqual(rc, 0, text)
        self.assertIn('NOT trusted', text)
        self.assertEqual(got, [])
        self.assertEqual(len(inst.maildir_files('alice')), 1)
        rc, text, got = self.mpop(inst, inst.pop3_port, True,
                                  self.pairs['ec'][0])
        self.assertEqual(rc, 0, text)
        self.assertEqual(len(got), 1)
        self.assertIn(b'Subject: over stls', got[0])
        # --keep=off: deleted at QUIT, inside TLS.
        self.assertTrue(pmtest.wait_for(
            lambda: inst.maildir_files('alice') == [], 5))
        self.assertTrue(pmtest.wait_for(
            lambda: 'user=alice closed retr=1 dele=1 tls=TLSv1.3'
            in inst.log(), 5), inst.log_tail())

    def test_mpop_pop3s_trusting_a_ca(self):
        inst = self.remote_instance(('rsa',), ca=True)
        self.deliver(inst, 'over pop3s')
        rc, text, got = self.mpop(inst, inst.pop3s_port, False, self.ca[0])
        self.assertEqual(rc, 0, text)
        self.assertEqual(len(got), 1)
        self.assertIn(b'Subject: over pop3s', got[0])


if __name__ == '__main__':
    import unittest
    unittest.main()
