"""User names from a compromised helper (DESIGN.md A1: 1-64 of
[a-z0-9._-], not starting with '.' or '-', none of the names MAILDIR
keeps; upper case is folded). In AUTH, RCPT_CHECK and POP3_LOGIN a name
that is not valid is no user: a failure reply, the daemon goes on. In
DELIVER it becomes a path: refused, fail closed. Never a file outside
MAILDIR/USER/Maildir, never a descriptor kept.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_names.py
"""

import os
import struct
import tempfile

from lib import hostile
from lib.hostile import T, s, u32, u64, deliver

BAD = ['/', 'a/b', '/etc/passwd', '..', '.', '../alice', 'alice/..',
       'alice/../bob', '', 'a' * 65, 'users', 'queue', 'default_options',
       'mxservers', 'USERS', 'Queue', '.alice', '-alice', 'al ice',
       'alice\n', 'caf\u00e9', 'alice:x']
# Passes user_name_normalize as alice: upper case is folded.
SAME = ['ALICE', 'Alice']
AUTH_OK, AUTH_FAIL = 0, 1
RCPT_OK, RCPT_NOUSER = 0, 1


class Names(hostile.HostileCase):

    def auth(self, peer, req, name, password='secret'):
        # Each from its own address: the throttle is not what is tested.
        peer.send(T['IMSG_AUTH'], u32(req) + s(name) + s(password) +
                  s('192.0.2.%d' % (req % 250 + 1)))
        while True:
            p = peer.expect(T['IMSG_AUTH_REPLY'], timeout=15)
            rreq, result, _ = struct.unpack('<III', p)
            if rreq == req:
                return result

    def test_auth(self):
        for role in ('smtpd', 'pop3d'):
            inst, p, peer = self.start_hostile(role, users=['alice'])
            base = self.baseline(inst, p)
            for i, name in enumerate(BAD):
                with self.subTest(role=role, name=name):
                    self.assertEqual(self.auth(peer, i + 1, name), AUTH_FAIL)
            for i, name in enumerate(SAME):
                with self.subTest(role=role, name=name):
                    self.assertEqual(self.auth(peer, 100 + i, name), AUTH_OK)
            self.assertIntact(inst, p, peer, base)

    def test_rcpt_check(self):
        inst, p, peer = self.start_hostile('smtpd', users=['alice'])
        base = self.baseline(inst, p)
        for i, name in enumerate(BAD + SAME):
            with self.subTest(name=name):
                peer.send(T['IMSG_RCPT_CHECK'], u32(i) + s(name) + u64(0) +
                          u32(7))
                rreq, result, tag = struct.unpack(
                    '<III', peer.expect(T['IMSG_RCPT_REPLY']))
                self.assertEqual((rreq, tag), (i, 7))
                self.assertEqual(result, RCPT_OK if name in SAME
                                 else RCPT_NOUSER)
        self.assertIntact(inst, p, peer, base)

    def test_pop3_login(self):
        inst, p, peer = self.start_hostile('pop3d', users=['alice'])
        hostile.put_message(inst, 'alice', b'Subject: a\n\nalice\n',
                            '1700000000')
        base = self.baseline(inst, p)
        for i, name in enumerate(BAD):
            with self.subTest(name=name):
                result, _, _ = hostile.pop3_login(peer, 10 + i, name,
                                                  addr='192.0.2.%d' % i)
                self.assertEqual(result, 1)   # POP3_LOGIN_FAIL
        result, count, _ = hostile.pop3_login(peer, 1, 'ALICE')
        self.assertEqual((result, count), (0, 1))
        peer.send(T['IMSG_POP3_RELEASE'], u32(1))
        self.assertIntact(inst, p, peer, base)

    def test_deliver(self):
        for name in BAD:
            with self.subTest(name=name):
                inst, p, peer = self.start_hostile('queued', users=['alice'])
                snap = self.outside(inst)
                with tempfile.TemporaryFile(dir=inst.dir) as f:
                    f.write(b'Subject: x\r\n\r\nx\r\n')
                    f.flush()
                    peer.send(T['IMSG_DELIVER'], deliver(1, user=name),
                              fd=f.fileno())
                self.assertFailsClosed(inst, p, r'queued \(pid \d+\): '
                                       r'malformed message')
                self.assertEqual(self.outside(inst), snap)
                self.assertEqual(inst.messages('alice'), [])

    def test_deliver_upper_case(self):
        inst, p, peer = self.start_hostile('queued', users=['alice'])
        base = self.baseline(inst, p)
        with tempfile.TemporaryFile(dir=inst.dir) as f:
            f.write(b'Subject: x\r\n\r\nx\r\n')
            f.flush()
            peer.send(T['IMSG_DELIVER'], deliver(5, user='ALICE'),
                      fd=f.fileno())
        req, result = struct.unpack_from(
            '<II', peer.expect(T['IMSG_DELIVER_REPLY']))
        self.assertEqual((req, result), (5, 0))
        self.assertEqual(len(inst.messages('alice')), 1)
        self.assertIntact(inst, p, peer, base)


if __name__ == '__main__':
    import unittest
    unittest.main()
