"""A remote reply line's verdict does not depend on how the network cut
it: a line of exactly 4096 octets (the limit) whose CR comes in one
segment and LF in the next is a good line, as it is when they come
together; one octet more is too long either way.

    /usr/bin/python3 regress/run.py -k test_outbound_replycut
"""

import os
import socket
import threading
import time

from lib.oututil import (OutCase, lasterror, make_message, queue,
                         submit, wait_deferred, wait_queue_empty)

ALICE = 'alice@test.example'
LINE_MAX = 4096
PAUSE = 0.4             # seconds between the segments of the greeting


class CutServer:
    """One-shot SMTP server on loopback: its greeting is `greeting`
    octets long, sent as the text and CR, then (after PAUSE) the LF;
    then it accepts one message and records its data."""

    def __init__(self, greeting_len):
        self.greeting = b'220 ' + b'g' * (greeting_len - 4)
        self.data = None
        self.lines = []
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.address = '127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.sock.close()
        self.thread.join(5)

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.session(conn, conn.makefile('rb'))
            except (OSError, ValueError):
                pass

    def session(self, conn, rf):
        conn.sendall(self.greeting + b'\r')
        time.sleep(PAUSE)
        conn.sendall(b'\n')
        for _ in range(50):                 # bounded: one message
            line = rf.readline(8192)
            if not line:
                return
            self.lines.append(line)
            verb = line[:4].upper()
            if verb == b'DATA':
                conn.sendall(b'354 go\r\n')
                data = b''
                while not data.endswith(b'\r\n.\r\n') and len(data) < 1 << 20:
                    chunk = rf.readline(8192)
                    if not chunk:
                        return
                    data += chunk
                self.data = data
                conn.sendall(b'250 ok\r\n')
            elif verb == b'QUIT':
                conn.sendall(b'221 bye\r\n')
                return
            else:
                conn.sendall(b'250 ok\r\n')


class ReplyCut(OutCase):

    def server(self, greeting_len):
        srv = CutServer(greeting_len)
        self.addCleanup(srv.stop)
        return srv

    def test_line_at_the_limit_cut_before_its_lf(self):
        srv = self.server(LINE_MAX)
        inst = self.out_instance(relay=srv)
        msg = make_message('greeting cut before its LF')
        submit(inst, ALICE, ['x@remote.example'], msg)
        deadline = time.monotonic() + 20
        while srv.data is None and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIsNotNone(srv.data, 'not delivered; queue: %r\n%r\n'
                             'log:\n%s' % (queue(inst), srv.lines,
                                            inst.log_tail(20)))
        self.assertIn(b'Subject: greeting cut before its LF', srv.data)
        wait_queue_empty(inst)

    def test_line_over_the_limit_cut_before_its_lf(self):
        srv = self.server(LINE_MAX + 1)
        inst = self.out_instance(relay=srv)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('greeting too long'))
        e = wait_deferred(inst, qid)
        self.assertIn('reply line too long', lasterror(e))
        self.assertIsNone(srv.data)


if __name__ == '__main__':
    import unittest
    unittest.main()
