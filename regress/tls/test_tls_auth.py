"""Passwords only inside TLS once tls is set (DESIGN.md A4, A7): from a
client address that is not loopback, SMTP AUTH is neither offered nor
taken before STARTTLS (538 5.7.11), POP3 USER/PASS/AUTH neither before
STLS; inside TLS they work. Loopback clients may still log in in
plaintext; port 25 takes mail for local users without AUTH from anyone.
A login may name the user or the user's address in a local domain.

The other address is 10.77.0.1 on the loopback interface of the private
network namespace regress/run.py makes (never on the host's).

    /usr/bin/python3 regress/run.py regress/tls/test_tls_auth.py
"""

import os
import poplib
import smtplib
import subprocess

from lib.tlsutil import (REMOTE, TlsCase, add_remote_address,
                         pmtest)
from lib.smtputil import Client, b64, make_message, wait_mail

class Pop3From(poplib.POP3):
    """poplib from a given source address."""

    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout):
        import socket
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


class Auth(TlsCase):

    def setUp(self):
        super().setUp()
        add_remote_address(self)

    def remote_instance(self):
        return self.tls_instance(listen=['127.0.0.1', REMOTE])

    def test_smtp_auth_refused_before_tls(self):
        inst = self.remote_instance()
        c = Client(inst.smtp_port, host=REMOTE, source=REMOTE)
        self.addCleanup(c.close)
        r = c.cmd('EHLO client.example')
        self.assertIn('STARTTLS', r.lines)
        self.assertFalse([l for l in r.lines if l.startswith('AUTH')], r)
        c.expect('AUTH PLAIN ' + b64(b'\0alice\0alicepw'), 538, '5.7.11')
        c.expect('AUTH LOGIN', 538, '5.7.11')
        # Local delivery needs no AUTH, TLS or not.
        c.transaction('carol@sender.example', ['bob@test.example'],
                      make_message('plain to a local user'))
        c.expect('STARTTLS', 220)
        c.sock = self.context().wrap_socket(c.sock)
        r = c.cmd('EHLO client.example')
        self.assertIn('AUTH PLAIN LOGIN', r.lines)
        # The full address is a login name too.
        c.expect('AUTH PLAIN ' + b64(b'\0alice@test.example\0alicepw'), 235)
        wait_mail(inst, 'bob', 1)

    def test_smtp_loopback_may_auth_in_plaintext(self):
        inst = self.remote_instance()
        s = smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        self.assertTrue(s.has_extn('auth'), s.esmtp_features)
        s.login('alice', 'alicepw')
        s.quit()

    def test_pop3_login_refused_before_stls(self):
        inst = self.remote_instance()
        p = Pop3From(REMOTE, inst.pop3_port, REMOTE)
        self.addCleanup(p.close)
        capa = p.capa()
        self.assertIn('STLS', capa)
        self.assertNotIn('USER', capa)
        self.assertNotIn('SASL', capa)
        for cmd in (p.user, ):
            with self.assertRaises(poplib.error_proto) as e:
                cmd('alice')
            self.assertIn(b'[AUTH]', e.exception.args[0])
        with self.assertRaises(poplib.error_proto):
            p._shortcmd('AUTH PLAIN ' + b64(b'\0alice\0alicepw'))
        p.stls(context=self.context())
        self.assertIn('USER', p.capa())
        p.user('alice@test.example')
        p.pass_('alicepw')
        self.assertEqual(p.stat()[0], 0)
        p.quit()

    def test_login_name_of_another_domain_fails(self):
        inst = self.remote_instance()
        s = smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s.login('alice@other.example', 'alicepw')


if __name__ == '__main__':
    import unittest
    unittest.main()
