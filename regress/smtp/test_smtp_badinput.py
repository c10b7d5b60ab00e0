"""SMTP-in, bad input: random bytes, 1 MB without a newline, half-closed
connections, clients that stop reading, many idle sessions.  After each,
the daemon still serves a normal session promptly and no partial message
is in any Maildir (DESIGN.md A4, A7).

    /usr/bin/python3 regress/run.py -k test_smtp_badinput
"""

import os
import random
import socket
import threading
import time

from lib.smtputil import (ProtocolError, SmtpCase,
                          make_message, subject_of)

MB = 1 << 20


def send_quietly(sock, data, chunk=65536):
    """Send data; stop quietly when the server closes.  Returns the number
    of bytes sent."""
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent:sent + chunk])
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    return sent


class BadInput(SmtpCase):

    def finish(self, inst):
        """Healthy, and Maildirs hold only the marker."""
        self.assert_healthy(inst)
        files = self.marker(inst, 'alice')
        self.assertEqual(len(files), 1)
        self.assertEqual(inst.maildir_files('bob'), [])
        self.assert_only(inst, {'alice': [subject_of(files[0][1])]})

    def healthy_during(self, inst, busy, seconds=None):
        """Run busy() in a thread; while it runs, normal sessions must be
        served promptly.  Returns busy's result."""
        out = {}

        def run():
            try:
                out['result'] = busy()
            except BaseException as e:      # reported below
                out['error'] = e
        th = threading.Thread(target=run, daemon=True)
        th.start()
        time.sleep(0.05)
        checks = 0
        while th.is_alive() and checks < 5:
            self.assert_healthy(inst, within=2.0)
            checks += 1
        th.join(60)
        self.assertFalse(th.is_alive(), 'the bad client never finished')
        if 'error' in out:
            raise out['error']
        return out.get('result')

    def test_random_bytes(self):
        inst = self.smtp_instance()
        rng = random.Random(4242)
        for i in range(8):
            with socket.create_connection(('127.0.0.1', inst.smtp_port),
                                          timeout=5) as s:
                n = rng.choice((1, 100, 4096, 65536, 300000))
                send_quietly(s, rng.randbytes(n))
        self.finish(inst)

    def test_random_bytes_after_ehlo_and_in_data(self):
        inst = self.smtp_instance()
        rng = random.Random(7)
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        junk = rng.randbytes(200000).replace(b'\r\n.\r\n', b'')
        c.send(junk + b'\r\n.\r\n')
        r = c.reply(what='the end of random data')
        self.assertEqual(r.code, 550, r)
        c.expect('NOOP', 250)
        c.close()
        self.finish(inst)

    def test_1mb_without_newline_in_command(self):
        inst = self.smtp_instance()
        c = self.session(inst)

        def flood():
            c.send(b'A' * MB)
        self.healthy_during(inst, flood)
        c.send(b'\r\nNOOP\r\n')
        r = c.reply(what='the 1 MB line')
        self.assertEqual((r.code, r.enh), (500, '5.5.2'), r)
        self.assertIn('Line too long', r.text)
        r = c.reply(what='NOOP after the 1 MB line')
        self.assertEqual(r.code, 250, r)
        c.expect('QUIT', 221)
        self.finish(inst)

    def test_1mb_without_newline_in_data(self):
        inst = self.smtp_instance(smtpmaxmailsize=10000000)
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)

        def flood():
            c.send(b'Subject: flood\r\n\r\n' + b'B' * MB)
        self.healthy_during(inst, flood)
        c.send(b'\r\n.\r\n')
        r = c.reply(what='the end of the data')
        self.assertEqual((r.code, r.enh), (550, '5.5.2'), r)
        c.expect('NOOP', 250)
        c.close()
        self.finish(inst)

    def test_half_close_mid_data(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        c.send(make_message('half', b'half a message\r\nand'))
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed_by_server(5), 'the server keeps a '
                        'half-closed session open')
        c.close()
        self.finish(inst)

    def test_half_close_after_commands(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        c.send(b'EHLO half.example\r\nMAIL FROM:<carol@sender.example>\r\n'
               b'RCPT TO:<alice@test.example>\r\n')
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed_by_server(5), 'the server keeps a '
                        'half-closed session open')
        c.close()
        self.finish(inst)

    def test_half_close_right_after_connect(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed_by_server(5), 'the server keeps a '
                        'half-closed session open')
        self.finish(inst)

    def test_client_stops_reading(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.sock.setblocking(False)
        burst = b'HELP\r\nNOOP\r\nVRFY alice\r\nRSET\r\n' * 256
        sent, t0 = 0, time.monotonic()
        # Write until the connection is full both ways (or 3 s): the
        # server's replies pile up unread.
        while time.monotonic() - t0 < 3:
            try:
                sent += c.sock.send(burst)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    sent += c.sock.send(burst)
                except BlockingIOError:
                    break
            except (BrokenPipeError, ConnectionResetError):
                break
        self.assertGreater(sent, 0)
        # The stuck client does not hold up anyone else.
        for _ in range(3):
            self.assert_healthy(inst, within=2.0)
        self.marker(inst)
        c.close()
        self.assert_healthy(inst)
        self.assertEqual(len(inst.maildir_files('alice')), 1)

    def test_stalled_reader_mid_transaction(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        c.send(make_message('stalled', b'x' * 500 + b'\r\n'))
        # Never finishes, never reads; others go on.
        for _ in range(3):
            self.assert_healthy(inst)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b'\x01\x00\x00\x00\x00\x00\x00\x00')
        c.close()       # RST
        self.finish(inst)

    def test_many_idle_sessions(self):
        inst = self.smtp_instance(maxsessionsperip=200, maxsessions=1000)
        idle = []
        try:
            for i in range(150):
                s = socket.create_connection(('127.0.0.1', inst.smtp_port),
                                             timeout=5)
                idle.append(s)
            for s in idle[:10]:
                s.recv(100)
            self.assert_healthy(inst)
        finally:
            for s in idle:
                s.close()
        self.finish(inst)

    def test_nul_and_high_bytes_in_commands(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        for bad in (b'NO\0OP', b'\xff\xfe\xfd', b'MAIL FROM:<a\0b@x.example>',
                    b'RCPT TO:<\xc3\xa9@test.example>', b'\x1b[2J'):
            with self.subTest(line=bad):
                try:
                    c.line(bad)
                    r = c.reply()
                except (ProtocolError, OSError):
                    break       # closing on such input is fine too
                self.assertEqual(r.code // 100, 5, r)
        c.close()
        self.finish(inst)
