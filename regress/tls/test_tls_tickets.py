"""Session tickets whose keys the parent makes and rotates (at a reload,
and every hour): a client resumes its session after one rotation, on
SMTP (port 465) and POP3 (port 995) alike, with TLS 1.3 and 1.2; after
two rotations its old ticket opens nothing and it makes a full
handshake; a ticket resumed after a rotation comes back renewed under
the new key, so that client keeps resuming after the next rotation.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_tickets.py
"""

import os
import socket
import ssl

from lib.tlsutil import TlsCase, pmtest


def visit(port, ctx, greeting, bye, session=None):
    """(session, reused) of one implicit-TLS visit: the greeting, a
    goodbye, the session as the client keeps it."""
    raw = socket.create_connection(('127.0.0.1', port), timeout=10)
    with ctx.wrap_socket(raw, session=session) as s:
        f = s.makefile('rb')
        line = f.readline()
        assert line.startswith(greeting), line
        s.sendall(bye)
        f.readline()
        return s.session, s.session_reused


class Tickets(TlsCase):

    def reload(self, inst):
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr)
        # The keys go out with the reload; a moment for the helpers.
        pmtest.wait_for(lambda: False, 0.3)

    def services(self, inst):
        return (('smtp', inst.smtps_port, b'220 ', b'QUIT\r\n'),
                ('pop3', inst.pop3s_port, b'+OK', b'QUIT\r\n'))

    def contexts(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = self.context()
            ctx.minimum_version = ctx.maximum_version = version
            yield version.name, ctx

    def test_one_rotation_resumes_two_do_not(self):
        inst = self.tls_instance()
        for vname, ctx in self.contexts():
            for name, port, hello, bye in self.services(inst):
                with self.subTest(version=vname, service=name):
                    old, reused = visit(port, ctx, hello, bye)
                    self.assertFalse(reused)
                    self.reload(inst)
                    renewed, reused = visit(port, ctx, hello, bye, old)
                    self.assertTrue(reused, 'no resumption after one '
                                    'rotation')
                    self.reload(inst)
                    _, reused = visit(port, ctx, hello, bye, old)
                    self.assertFalse(reused, 'a ticket two rotations old '
                                     'was taken')
                    _, reused = visit(port, ctx, hello, bye, renewed)
                    self.assertTrue(reused, 'the renewed ticket was not '
                                    'under the newer key')
        self.assertTrue(inst.running())


if __name__ == '__main__':
    import unittest
    unittest.main()
