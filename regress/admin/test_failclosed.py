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
import time

from lib import pmtest
from lib.pmtest import IS_ROOT, ROLES, pid_alive, wait_for


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

    def test_stuck_helper_dies_with_parent(self):
        # A helper that reads nothing (stopped here) never sees the
        # parent's EOF: the kernel must end it with the parent.
        inst = self.instance()
        pid = inst.start()
        roles = inst.wait_roles()
        for role in ('smtpd', 'pop3d', 'mxcache'):
            os.kill(roles[role], signal.SIGSTOP)
        os.kill(pid, signal.SIGKILL)
        for role in ('smtpd', 'pop3d', 'mxcache'):
            self.assertTrue(wait_for(lambda: not pid_alive(roles[role]), 5),
                            '%s outlives its parent' % role)

    def test_stop_ends_stuck_helper_of_other_account(self):
        # As root queued runs as queueuser and the parent as user, which
        # may not signal it: stop must still end it, and tidy up.
        self.require_root()
        inst = self.instance()
        pid = inst.start()
        roles = inst.wait_roles()
        every = [pid] + list(roles.values())
        os.kill(roles['queued'], signal.SIGSTOP)
        r = inst.adm('stop', timeout=60)
        alive = [(p, pmtest.proc_cmdline(p)) for p in every
                 if pid_alive(p)]
        self.assertEqual(alive, [], 'still running after stop (exit %d: '
                         '%s)' % (r.returncode, r.stderr))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.lexists(inst.pidfile), 'pidfile left')
        self.assertFalse(os.path.lexists(inst.sockpath), 'socket left')
        self.assertRegex(inst.log(), r'did not stop')

    def test_stop_ends_stuck_parent(self):
        # The parent itself does not stop: pymailadm (root) ends it and
        # its helpers, removes the pidfile and socket, and says it failed.
        self.require_root()
        inst = self.instance()
        pid = inst.start()
        roles = inst.wait_roles()
        every = [pid] + list(roles.values())
        os.kill(pid, signal.SIGSTOP)
        r = inst.adm('stop', timeout=60)
        self.assertOneLineError(r, "killed")
        alive = [(p, pmtest.proc_cmdline(p)) for p in every
                 if pid_alive(p)]
        self.assertEqual(alive, [], 'still running after stop')
        self.assertFalse(os.path.lexists(inst.pidfile), 'pidfile left')
        self.assertFalse(os.path.lexists(inst.sockpath), 'socket left')


if __name__ == '__main__':
    import unittest
    unittest.main()
