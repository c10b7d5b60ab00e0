"""Hostile TLS clients (issue "Bad input"): garbage instead of a
ClientHello, a handshake stopped halfway, 16 KiB records of junk before
and after the handshake, a renegotiation. Each costs its own session and
one log line; sessions alongside go on, and so does the parent's signing
for them.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_badinput.py
"""

import os
import smtplib
import socket
import ssl
import struct
import subprocess

from lib import tlsutil
from lib.tlsutil import TlsCase, pmtest
from lib.smtputil import make_message

FAILED = 'tls=failed'


def client_hello(ctx):
    """The first flight of a real client, as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed(sock, timeout=10):
    """Does the server close this connection within timeout?"""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class BadInput(TlsCase):

    def good_session(self, inst):
        """A full TLS session with mail, while the bad ones are open."""
        s = smtplib.SMTP_SSL('127.0.0.1', inst.smtps_port, timeout=10,
                             context=self.context())
        s.ehlo('client.example')
        s.login('alice', 'alicepw')
        s.quit()

    def connect(self, port):
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.addCleanup(s.close)
        return s

    def failures(self, inst):
        return inst.log().count(FAILED)

    def alive(self, inst):
        _, roles, _ = inst.processes()
        self.assertTrue(inst.running() and set(roles) == set(pmtest.ROLES),
                        inst.log_tail())

    def test_garbage_instead_of_client_hello(self):
        # In bursts, so that most are there before the accept: then the
        # handshake fails before the session's first wait.
        inst = self.tls_instance()
        junk = struct.pack('!BHH', 22, 0x0303, 16384) + os.urandom(16384)
        # A session open all along: it must still find its answers.
        c = self.session(inst)
        n = 0
        for garbage in (b'GET / HTTP/1.0\r\n\r\n' * 4, junk):
            for port in (inst.smtps_port, inst.pop3s_port):
                burst = []
                for _ in range(20):
                    s = self.connect(port)
                    s.sendall(garbage)
                    burst.append(s)
                for s in burst:
                    self.assertTrue(closed(s), 'garbage kept the session '
                                    'open: %s' % inst.log_tail())
                    s.close()
                n += len(burst)
        self.assertTrue(pmtest.wait_for(lambda: self.failures(inst) == n,
                                        5), inst.log_tail())
        self.alive(inst)
        c.transaction('carol@sender.example', ['bob@test.example'],
                      make_message('alongside'))
        self.good_session(inst)

    def test_handshake_stopped_halfway(self):
        inst = self.tls_instance(kinds=('rsa',), timeout=3)
        ctx = self.context()
        stuck = []
        for _ in range(3):
            s = self.connect(inst.smtps_port)
            s.sendall(client_hello(ctx))
            stuck.append(s)
        # The server answered each; the clients never finish. Others are
        # served meanwhile, signatures included.
        for _ in range(3):
            self.good_session(inst)
        # The session timeout ends the stuck ones, one line each.
        for s in stuck:
            self.assertTrue(closed(s, 10), 'a stuck handshake never ends')
        self.assertTrue(pmtest.wait_for(
            lambda: inst.log().count('timeout') >= 3, 5), inst.log_tail())

    def test_junk_records(self):
        inst = self.tls_instance()
        junk = os.urandom(16384)
        # Before the handshake: a handshake record full of junk.
        s = self.connect(inst.smtps_port)
        s.sendall(struct.pack('!BHH', 22, 0x0303, len(junk)) + junk)
        self.assertTrue(closed(s))
        # Inside TLS: raw junk records on the established socket's fd.
        s = self.connect(inst.smtp_port)
        f = s.makefile('rb')
        f.readline()
        s.sendall(b'EHLO client.example\r\nSTARTTLS\r\n')
        while not f.readline().startswith(b'220 '):
            pass
        t = self.context().wrap_socket(s)
        self.addCleanup(t.close)
        t.sendall(b'NOOP\r\n')
        t.recv(100)
        raw = socket.socket(fileno=os.dup(t.fileno()))
        self.addCleanup(raw.close)
        for _ in range(4):
            try:
                raw.sendall(struct.pack('!BHH', 23, 0x0303, len(junk)) +
                            junk)
            except OSError:
                break
        self.assertTrue(closed(raw))
        self.assertTrue(pmtest.wait_for(
            lambda: self.failures(inst) == 1 and 'result=tls-error' in inst.log(),
            5), inst.log_tail())
        self.alive(inst)
        self.good_session(inst)

    def test_renegotiation_refused(self):
        inst = self.tls_instance(kinds=('rsa',))
        # s_client takes "R" as a command only without -ign_eof, so its
        # input stays open until the renegotiation had its answer.
        p = subprocess.Popen(
            [tlsutil.OPENSSL, 's_client', '-connect',
             '127.0.0.1:%d' % inst.smtps_port, '-tls1_2'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.addCleanup(p.kill)
        p.stdin.write(b'R\n')
        p.stdin.flush()
        pmtest.wait_for(lambda: p.poll() is not None, 3)
        if p.poll() is None:
            p.stdin.close()
        out = p.communicate(timeout=20)[0].decode('utf-8', 'replace')
        self.assertIn('RENEGOTIATING', out)
        # No second handshake completes: no second session is printed.
        after = out.split('RENEGOTIATING', 1)[1]
        self.assertNotIn('SSL-Session', after)
        self.assertNotIn('Verify return code', after)
        self.good_session(inst)


if __name__ == '__main__':
    import unittest
    unittest.main()
