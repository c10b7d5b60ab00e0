"""POP3 over TLS (RFC 2595, 8314; DESIGN.md A5): STLS on the POP3 port
(CAPA lists it before, not after), implicit TLS on the pop3s port with
poplib's POP3_SSL, the plaintext commands pipelined behind STLS thrown
away, openssl s_client -starttls pop3, and the session's log line naming
the TLS version and cipher.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_pop3.py
"""

import os
import poplib
import socket
import subprocess

from lib import tlsutil
from lib.tlsutil import TlsCase, pmtest
from lib.smtputil import make_message, smtplib_send, wait_mail


def read_line(sock):
    buf = b''
    while not buf.endswith(b'\r\n'):
        c = sock.recv(1)
        if not c:
            break
        buf += c
    return buf


class Pop3(TlsCase):

    def deliver(self, inst, subject):
        with self.smtp(inst) as s:
            s.ehlo('client.example')
            smtplib_send(s, 'carol@sender.example', ['alice@test.example'],
                         make_message(subject))
        wait_mail(inst, 'alice', 1)

    def test_stls_with_poplib(self):
        inst = self.tls_instance(kinds=('ec', 'rsa'))
        self.deliver(inst, 'over stls')
        p = poplib.POP3('127.0.0.1', inst.pop3_port, timeout=10)
        self.addCleanup(p.close)
        self.assertIn('STLS', p.capa())
        p.stls(context=self.context())
        self.assertNotIn('STLS', p.capa(), 'STLS offered inside TLS')
        self.assertEqual(p.sock.version(), 'TLSv1.3')
        p.user('alice')
        p.pass_('alicepw')
        _, lines, _ = p.retr(1)
        self.assertIn(b'Subject: over stls', lines)
        p.quit()
        self.assertTrue(pmtest.wait_for(lambda: 'user=alice closed retr=1 '
                                        'dele=0 tls=TLSv1.3 cipher=TLS_'
                                        in inst.log(), 5), inst.log_tail())

    def test_pop3s_implicit_tls(self):
        inst = self.tls_instance(kinds=('rsa',))
        self.deliver(inst, 'over pop3s')
        p = poplib.POP3_SSL('127.0.0.1', inst.pop3s_port, timeout=10,
                            context=self.context())
        self.addCleanup(p.close)
        self.assertTrue(p.getwelcome().startswith(b'+OK'))
        self.assertNotIn('STLS', p.capa())
        p.user('alice')
        p.pass_('alicepw')
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_injection_after_stls_is_discarded(self):
        inst = self.tls_instance()
        s = socket.create_connection(('127.0.0.1', inst.pop3_port),
                                     timeout=10)
        self.addCleanup(s.close)
        self.assertTrue(read_line(s).startswith(b'+OK'))
        s.sendall(b'STLS\r\nQUIT\r\n')
        self.assertTrue(read_line(s).startswith(b'+OK Begin TLS'))
        t = self.context().wrap_socket(s)
        t.sendall(b'NOOP\r\n')
        # QUIT would have said +OK and closed; NOOP's +OK comes first.
        self.assertEqual(read_line(t), b'+OK\r\n')
        t.sendall(b'QUIT\r\n')
        self.assertTrue(read_line(t).startswith(b'+OK'))

    def test_openssl_s_client(self):
        inst = self.tls_instance(kinds=('rsa', 'ec'))
        r = subprocess.run(
            [tlsutil.OPENSSL, 's_client', '-connect',
             '127.0.0.1:%d' % inst.pop3_port, '-starttls', 'pop3', '-brief',
             '-ign_eof'],
            input=b'USER alice\r\nPASS alicepw\r\nSTAT\r\nQUIT\r\n',
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode('utf-8', 'replace')
        self.assertEqual(r.returncode, 0, out)
        self.assertIn('+OK 0 0', out)


if __name__ == '__main__':
    import unittest
    unittest.main()
