"""A compromised pop3d against the mailbox store (pymaild/mailbox.c):
a descriptor goes only to the session that logged in to that mailbox
(never user A's message to session B), only for an index of its listing,
only once the password checked out; OPEN or UPDATE for a session never
logged in, still checking, failed, ended or out of range fails closed;
deletions twice are one; a pop3d that asks and reads nothing cannot
make the parent hold descriptors without bound.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_pop3.py
"""

import os
import struct

from lib import hostile
from lib.hostile import T, s, u32

SEEN = 0x80000000
LOGIN_OK, LOGIN_FAIL, LOGIN_INUSE = 0, 1, 3
ALICE = [b'Subject: a1\n\nalice one\n', b'Subject: a2\n\nalice two\n']
BOB = [b'Subject: b1\n\nbob one\n']


class Pop3(hostile.HostileCase):

    def start(self):
        inst, p, peer = self.start_hostile('pop3d', users=['alice', 'bob'])
        for i, body in enumerate(ALICE):
            hostile.put_message(inst, 'alice', body, '170000000%d' % i)
        for i, body in enumerate(BOB):
            hostile.put_message(inst, 'bob', body, '170000010%d' % i)
        return inst, p, peer

    def login(self, peer, sid, user, want=LOGIN_OK, password='secret'):
        result, count, _ = hostile.pop3_login(peer, sid, user, password,
                                              addr='192.0.2.%d' % sid)
        self.assertEqual(result, want)
        return count

    def open(self, peer, sid, *indexes):
        """{index: content} of the messages OPEN hands over."""
        peer.send(T['IMSG_POP3_OPEN'], u32(sid) +
                  b''.join(u32(i) for i in indexes))
        got = {}
        for _ in indexes:
            p, fd = peer.expect_fd(T['IMSG_POP3_OPEN_REPLY'])
            rsid, index, result, size = struct.unpack('<IIIQ', p)
            self.assertEqual((rsid, result), (sid, 0))
            self.assertIsNotNone(fd)
            with os.fdopen(fd, 'rb') as f:
                data = f.read()
            self.assertEqual(len(data), size)
            got[index] = data
        return got

    def update(self, peer, sid, entries, more=0):
        peer.send(T['IMSG_POP3_UPDATE'], u32(sid) + u32(more) +
                  b''.join(u32(e) for e in entries))
        if more:
            return None
        return struct.unpack('<III', peer.expect(
            T['IMSG_POP3_UPDATE_REPLY']))

    def assertMailbox(self, inst, user, bodies):
        got = sorted(inst.messages(user))
        self.assertEqual(got, sorted(bodies))

    def test_sessions_stay_apart(self):
        inst, p, peer = self.start()
        base = self.baseline(inst, p)
        self.assertEqual(self.login(peer, 1, 'alice'), 2)
        self.assertEqual(self.login(peer, 2, 'bob'), 1)
        # A second session of a mailbox in use gets none of it.
        self.login(peer, 3, 'alice', LOGIN_INUSE)
        self.assertEqual(self.open(peer, 2, 0, 0), {0: BOB[0]})
        self.assertEqual(self.open(peer, 1, 1, 0), {0: ALICE[0],
                                                    1: ALICE[1]})
        # bob's QUIT deletes bob's message only; then alice's deletes
        # hers once, however often it names it.
        self.assertEqual(self.update(peer, 2, [0]), (2, 0, 0))
        self.assertMailbox(inst, 'alice', ALICE)
        self.update(peer, 1, [0, 0], more=1)
        self.assertEqual(self.update(peer, 1, [0, 0, 1 | SEEN]), (1, 0, 1))
        self.assertMailbox(inst, 'alice', ALICE[1:])
        self.assertMailbox(inst, 'bob', [])
        peer.send(T['IMSG_POP3_RELEASE'], u32(42))   # unknown: a race
        self.assertIntact(inst, p, peer, base)
        self.assertRegex(inst.log(), r'release of unknown session 0000002a')

    def hostile_request(self, setup, type_, payload, needle='malformed'):
        inst, p, peer = self.start()
        setup(peer)
        snap = self.outside(inst)
        peer.send(T[type_], payload)
        self.assertFailsClosed(inst, p, r'pop3d \(pid \d+\): %s' % needle)
        self.assertEqual(self.outside(inst), snap)
        self.assertMailbox(inst, 'alice', ALICE)
        self.assertMailbox(inst, 'bob', BOB)
        return peer

    def test_requests_for_no_session(self):
        def nothing(peer):
            pass

        def alice(peer):
            self.login(peer, 1, 'alice')

        def failed(peer):
            self.login(peer, 4, 'bob', LOGIN_FAIL, password='wrong')

        def quit(peer):
            self.login(peer, 1, 'alice')
            self.assertEqual(self.update(peer, 1, []), (1, 0, 2))

        def released(peer):
            self.login(peer, 1, 'alice')
            peer.send(T['IMSG_POP3_RELEASE'], u32(1))

        cases = [
            ('never logged in', nothing, 'IMSG_POP3_OPEN', u32(77) + u32(0)),
            ('never logged in', nothing, 'IMSG_POP3_UPDATE',
             u32(77) + u32(0) + u32(0)),
            ('other session', alice, 'IMSG_POP3_OPEN', u32(2) + u32(0)),
            ('login failed', failed, 'IMSG_POP3_OPEN', u32(4) + u32(0)),
            ('login failed', failed, 'IMSG_POP3_UPDATE',
             u32(4) + u32(0) + u32(0)),
            ('after QUIT', quit, 'IMSG_POP3_OPEN', u32(1) + u32(0)),
            ('after QUIT', quit, 'IMSG_POP3_UPDATE', u32(1) + u32(0) + u32(0)),
            ('after release', released, 'IMSG_POP3_OPEN', u32(1) + u32(0)),
            ('sid in use', alice, 'IMSG_POP3_LOGIN', u32(1) + s('bob') +
             s('secret') + s('192.0.2.9')),
        ]
        for what, setup, type_, payload in cases:
            with self.subTest(what=what, type=type_):
                self.hostile_request(setup, type_, payload)

    def test_open_while_checking_the_password(self):
        # LOGIN and OPEN in one write: the OPEN is read while the
        # password is still being checked on another thread.
        inst, p, peer = self.start()
        peer.send_raw(peer.frame(T['IMSG_POP3_LOGIN'], u32(5) + s('alice') +
                                 s('secret') + s('192.0.2.5')) +
                      peer.frame(T['IMSG_POP3_OPEN'], u32(5) + u32(0)))
        self.assertFailsClosed(inst, p, r'pop3d \(pid \d+\): malformed')
        self.assertMailbox(inst, 'alice', ALICE)

    def test_index_out_of_range(self):
        def alice(peer):
            self.login(peer, 1, 'alice')
        for type_, payload in (
                ('IMSG_POP3_OPEN', u32(1) + u32(2)),
                ('IMSG_POP3_OPEN', u32(1) + u32(0) + u32(0xffffffff)),
                ('IMSG_POP3_UPDATE', u32(1) + u32(0) + u32(0) + u32(2)),
                ('IMSG_POP3_UPDATE', u32(1) + u32(0) + u32(2 | SEEN)),
                ('IMSG_POP3_UPDATE', u32(1) + u32(0) + u32(0x7fffffff))):
            with self.subTest(type=type_, payload=payload):
                self.hostile_request(alice, type_, payload)

    def test_open_without_reading(self):
        # Every index asked for is a descriptor of the parent's until
        # pop3d reads it, and the parent's descriptors are also every
        # delivery's and login's: one who asks and never reads must not
        # use them up. 16,000 asked (under the parent's other bounds,
        # near its limit here) fail closed.
        inst, p, peer = self.start()
        self.login(peer, 1, 'alice')
        before = len(self.parent_fds(p))
        ask = peer.frame(T['IMSG_POP3_OPEN'], u32(1) + u32(0) * 4000)
        try:
            for _ in range(4):
                peer.send_raw(ask)
        except OSError:
            pass
        hostile.pmtest.wait_for(lambda: p.poll() is not None, 5)
        if p.poll() is None:
            self.fail('still running, holding %d descriptors more'
                      % (len(self.parent_fds(p)) - before))
        self.assertFailsClosed(inst, p, r'pop3d \(pid \d+\) reads nothing: '
                               r'\d+ descriptors')
        self.assertNotRegex(inst.log(), r'Too many open files')

if __name__ == '__main__':
    import unittest
    unittest.main()
