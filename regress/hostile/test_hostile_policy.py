"""Sizes from a compromised smtpd in RCPT_CHECK (DESIGN.md A3, A7): the
size is a u64 on the wire, the mailbox policy compares it in a signed
type. Every size past maxmailsize, up to 2^64 - 1, is too big; none may
wrap round into one that fits, and the daemon goes on.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_policy.py
"""

import os
import struct

from lib import hostile
from lib.hostile import T, s, u32, u64

RCPT_OK, RCPT_NOUSER, RCPT_TOOBIG = 0, 1, 4
HUGE = [2 ** 64 - 1, 2 ** 64 - 2, 2 ** 63, 2 ** 63 - 1, 2 ** 62 + 1,
        2 ** 40]


class Sizes(hostile.HostileCase):

    def check(self, peer, req, name, size):
        peer.send(T['IMSG_RCPT_CHECK'], u32(req) + s(name) + u64(size) +
                  u32(9))
        rreq, result, tag = struct.unpack(
            '<III', peer.expect(T['IMSG_RCPT_REPLY']))
        self.assertEqual((rreq, tag), (req, 9))
        return result

    def test_huge_sizes_are_too_big(self):
        inst, p, peer = self.start_hostile('smtpd', users=['alice'])
        base = self.baseline(inst, p)
        self.assertEqual(self.check(peer, 1, 'alice', 0), RCPT_OK)
        self.assertEqual(self.check(peer, 2, 'alice', 1000), RCPT_OK)
        for i, size in enumerate(HUGE):
            with self.subTest(size=size):
                self.assertEqual(self.check(peer, 10 + i, 'alice', size),
                                 RCPT_TOOBIG)
                # Unknown first: the size of mail to nobody is no matter.
                self.assertEqual(self.check(peer, 50 + i, 'nobody', size),
                                 RCPT_NOUSER)
        self.assertIntact(inst, p, peer, base)
