"""A compromised helper sends a message type that is not its role's
(DESIGN.md B2: one table of who may ask what): every type the parent
does not take from that role, the parent's own, pymailadm's (IMSG_CTL_*),
unknown numbers and numbers past IMSG_TYPE_MAX. Each fails closed at
once: exit 1, the log names the helper and the refused type, and the
descriptor that came with it is closed.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_types.py
"""

import os
import select

from lib import hostile
from lib.hostile import ALLOWED, T, u32

NAMES = {v: k for k, v in T.items()}


def refused_types(role):
    nums = [n for n in range(T['IMSG_TYPE_MAX'] + 1)
            if NAMES[n] not in ALLOWED[role]]
    return nums + [T['IMSG_TYPE_MAX'] + 7, 0x7fffffff, 0xffffffff]


class WrongRole(hostile.HostileCase):

    def refused(self, role, type_):
        name = NAMES.get(type_, 'type %d' % type_)
        payload, takes_fd = hostile.well_formed(name)
        inst, p, peer = self.start_hostile(role)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        peer.send(type_, payload, fd=w if takes_fd else None)
        os.close(w)
        self.assertFailsClosed(inst, p, r'%s sent a request it may not '
                               r'send \(type %d\)' % (role, type_))
        # The parent kept no copy of what came with it.
        self.assertTrue(select.select([r], [], [], 5)[0], name)
        self.assertEqual(os.read(r, 1), b'')

    def each(self, role):
        for t in refused_types(role):
            with self.subTest(role=role, type=NAMES.get(t, t)):
                self.refused(role, t)

    def test_smtpd(self):
        self.each('smtpd')

    def test_pop3d(self):
        self.each('pop3d')

    def test_queued(self):
        self.each('queued')

    def test_mxcache(self):
        self.each('mxcache')

    def test_outbound(self):
        self.each('outbound')


if __name__ == '__main__':
    import unittest
    unittest.main()
