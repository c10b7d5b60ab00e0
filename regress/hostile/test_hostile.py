"""The parent against a compromised helper (DESIGN.md B2): a request it
cannot honour gets a failure reply; a malformed frame, a wrong-role type,
a descriptor where none is taken or a flood is hostile and fails closed.
Never a hang, a crash, a leaked descriptor or a file outside the mailbox.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile.py
"""

import fcntl
import os
import select
import signal
import socket
import struct
import tempfile
import threading
import time

from lib import hostile
from lib.hostile import T, deliver, s, u32, u64
from lib import pmtest



def reply_of(payload):
    """(req, result, reason) of an IMSG_DELIVER_REPLY."""
    req = int.from_bytes(payload[0:4], 'little')
    result = int.from_bytes(payload[4:8], 'little')
    return req, result, payload[12:].decode(errors='replace')


class Deliver(hostile.HostileCase):

    def test_regular_file_is_delivered_exactly(self):
        inst, p, peer = self.start_hostile('queued', users=['alice'])
        with tempfile.TemporaryFile(dir=inst.dir) as f:
            f.write(b'Subject: hi\r\n\r\nbody\r\n')
            f.flush()
            peer.send(T['IMSG_DELIVER'], deliver(7), fd=f.fileno())
        req, result, why = reply_of(peer.expect(T['IMSG_DELIVER_REPLY']))
        self.assertEqual((req, result), (7, 0), why)
        msgs = inst.messages('alice')
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(b'Subject: hi\n\nbody\n'), msgs[0])
        self.assertRunning(inst, p)

    def test_not_a_regular_file_gets_a_failure(self):
        # A socket or a FIFO would hang the delivery for ever, a
        # directory is no message: each gets a failure reply, at once.
        inst, p, peer = self.start_hostile('queued', users=['alice'])
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        fifo = os.path.join(inst.dir, 'fifo')
        os.mkfifo(fifo)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        wfd = os.open(fifo, os.O_WRONLY)
        self.addCleanup(os.close, rfd)
        self.addCleanup(os.close, wfd)
        dfd = os.open(inst.dir, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, dfd)
        for req, fd in ((1, a.fileno()), (2, rfd), (3, dfd)):
            with self.subTest(req=req):
                peer.send(T['IMSG_DELIVER'], deliver(req), fd=fd)
                try:
                    got = reply_of(peer.expect(T['IMSG_DELIVER_REPLY'],
                                               timeout=10))
                except TimeoutError:
                    self.fail('no answer to a delivery from a %s'
                              % ('socket', 'FIFO', 'folder')[req - 1])
                self.assertEqual(got[0], req)
                self.assertNotEqual(got[1], 0, got[2])
        self.assertRunning(inst, p)
        self.assertEqual(inst.maildir_files('alice', ('tmp', 'new', 'cur')),
                         [])
        self.assertRegex(inst.log(), r'not a regular file')

    def test_reload_while_delivering(self):
        # A reload frees the old configuration while the writer thread
        # may be building paths from it: deliveries stream while SIGHUPs
        # come as fast as the parent takes them, so the writer's reads
        # land inside a reload many times (a SANITIZE=1 build reports a
        # read of freed memory; any build may write a wrong path).
        inst, p, peer = self.start_hostile('queued', users=['alice'])
        n, signals, stop = 600, [0], threading.Event()

        def hangups():
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline \
                    and signals[0] < 20000:
                p.send_signal(signal.SIGHUP)
                signals[0] += 1
                time.sleep(0.0002)
        t = threading.Thread(target=hangups)
        t.start()
        try:
            # A delivery goes only after a SIGHUP of its own went: a
            # fast machine would otherwise finish them all between two.
            got = self.stream_deliveries(inst, peer, n,
                                         pace=lambda: signals[0])
        finally:
            stop.set()
            t.join()
        self.assertEqual(inst.sanitizer_reports(), [])
        self.assertEqual(sorted(got), list(range(n)))
        self.assertEqual([k for k, v in got.items() if v[0] != 0], [])
        self.assertEqual(len(inst.messages('alice')), n)
        self.assertGreater(signals[0], n)
        self.assertRegex(inst.log(), r'configuration reloaded')
        self.assertRunning(inst, p)

    def test_cancel(self):
        # queued's DELIVER_CANCEL reaches the deliveries of that queue id
        # only: one waiting for the writer is answered "cancelled" at
        # once, one the writer holds (held here before its rename by the
        # mailbox's order lock, quota.c) when the writer comes to it;
        # another message's goes on; an id with nothing under way, or
        # whose reply already went, is no error.
        inst, p, peer = self.start_hostile('queued', users=['alice'])
        other = 'fedcba9876543210'
        lock = os.path.join(inst.maildir, 'alice', '.quota.lock')
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        st = os.stat(os.path.dirname(lock))
        os.fchown(fd, st.st_uid, st.st_gid)
        held = [fd]

        def release():
            if held:
                os.close(held.pop())
        self.addCleanup(release)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(
            'hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        peer.send(T['IMSG_DELIVER_CANCEL'], s(other))

        def send(req, qid):
            with tempfile.TemporaryFile(dir=inst.dir) as f:
                f.write(b'Subject: %d\r\n\r\nbody\r\n' % req)
                f.flush()
                peer.send(T['IMSG_DELIVER'], deliver(req, qid=qid),
                          fd=f.fileno())
        send(1, hostile.QID)
        self.assertTrue(pmtest.wait_for(lambda: inst.maildir_files(
            'alice', ('tmp',)) != [], 10), inst.log_tail())
        send(2, hostile.QID)    # waits: the writer is busy
        send(3, other)
        peer.send(T['IMSG_DELIVER_CANCEL'], s(hostile.QID))
        req, result, why = reply_of(peer.expect(T['IMSG_DELIVER_REPLY']))
        self.assertEqual((req, result), (2, 3), why)
        release()
        got = {}
        for _ in range(2):
            req, result, why = reply_of(peer.expect(
                T['IMSG_DELIVER_REPLY']))
            got[req] = result
        self.assertEqual(got, {1: 3, 3: 0})
        peer.send(T['IMSG_DELIVER_CANCEL'], s(hostile.QID))
        self.assertStatusAnswers(inst, peer)
        self.assertEqual(inst.maildir_files('alice', ('tmp',)), [])
        msgs = inst.messages('alice')
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(b'Subject: 3\n\nbody\n'), msgs[0])
        self.assertRunning(inst, p)

    def stream_deliveries(self, inst, peer, n, window=32, pace=None):
        """Deliver n messages keeping up to window in flight; their
        replies, by request number. pace: delivery i waits (at most 5 s)
        until pace() passes i."""
        got, sent = {}, 0
        while len(got) < n:
            while sent < n and sent - len(got) < window:
                deadline = time.monotonic() + 5
                while pace and pace() <= sent and \
                        time.monotonic() < deadline:
                    time.sleep(0.0005)
                with tempfile.TemporaryFile(dir=inst.dir) as f:
                    f.write(b'Subject: %d\r\n\r\nbody\r\n' % sent)
                    f.flush()
                    peer.send(T['IMSG_DELIVER'], deliver(sent),
                              fd=f.fileno())
                sent += 1
            try:
                req, result, why = reply_of(peer.expect(
                    T['IMSG_DELIVER_REPLY'], timeout=30))
            except (TimeoutError, OSError) as e:
                self.fail('delivery %d of %d got no answer (%s):\n%s%s'
                          % (len(got), n, e, inst.log_tail(),
                             ''.join(inst.sanitizer_reports())))
            got[req] = (result, why)
        return got


class Descriptors(hostile.HostileCase):

    def test_descriptor_where_none_is_taken(self):
        inst, p, peer = self.start_hostile('queued')
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        peer.send(T['IMSG_STATS_REPLY'], u32(0), fd=w)
        os.close(w)
        self.assertFailsClosed(inst, p, r'descriptor')
        # Our pipe's write end is closed everywhere: the parent kept none.
        self.assertTrue(select.select([r], [], [], 5)[0])
        self.assertEqual(os.read(r, 1), b'')


class Floods(hostile.HostileCase):

    def test_requests_without_reading_replies(self):
        # Answers pile up in the parent for a helper that reads nothing.
        inst, p, peer = self.start_hostile('smtpd')
        one = peer.frame(T['IMSG_RCPT_CHECK'],
                         u32(1) + s('nobody') + u64(0) + u32(0))
        chunk = one * 2000
        try:
            for _ in range(100):
                peer.send_raw(chunk)
        except OSError:
            pass        # the parent gave up on us: what we want
        self.assertFailsClosed(inst, p, r'(?i)reads nothing|flood')

    def test_too_many_requests_in_flight(self):
        # Password checks take time: a helper may not queue thousands.
        inst, p, peer = self.start_hostile('smtpd')
        one = peer.frame(T['IMSG_AUTH'], u32(1) + s('alice') + s('x') +
                         s('192.0.2.1'))
        try:
            for _ in range(10):
                peer.send_raw(one * 1000)
        except OSError:
            pass
        self.assertFailsClosed(inst, p, r'(?i)requests')


if __name__ == '__main__':
    import unittest
    unittest.main()
