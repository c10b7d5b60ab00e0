"""The helpers' confinement, seen from outside (DESIGN.md B2).

- Every thread of every helper runs under its system call filter:
  /proc/PID/task/*/status says "Seccomp: 2" and "NoNewPrivs: 1" for each,
  queued's disk thread included (it starts before the filter is built).

SANITIZE=1 builds have no filter by design (the sanitizer runtimes need
calls no filter lists): the test skips there.

    /usr/bin/python3 regress/run.py regress/sandbox/test_sandbox.py
"""

import os

from lib import sandboxutil
from lib.sandboxutil import pmtest, tasks
from lib.smtputil import SmtpCase, wait_mail


class Sandbox(SmtpCase):

    def setUp(self):
        super().setUp()
        if sandboxutil.sanitize_build():
            self.skipTest('SANITIZE=1 build: no system call filter, by '
                          'design')

    def running_instance(self):
        inst = self.smtp_instance()
        roles = inst.wait_roles()
        self.assertEqual(sorted(roles), sorted(pmtest.ROLES),
                         inst.log_tail())
        # Some work for queued's disk thread first.
        self.send_mail(inst, 'wake the disk thread')
        wait_mail(inst, 'alice', 1)
        return inst, roles

    def test_every_thread_of_every_helper_is_filtered(self):
        inst, roles = self.running_instance()
        self.assertGreaterEqual(len(tasks(roles['queued'])), 2,
                                'queued has no disk thread to check')
        for role, pid in sorted(roles.items()):
            ts = tasks(pid)
            self.assertTrue(ts, '%s (%d) has no task' % (role, pid))
            for tid, st in sorted(ts.items()):
                self.assertEqual(st.get('Seccomp'), '2',
                                 '%s pid %d thread %d: Seccomp %r'
                                 % (role, pid, tid, st.get('Seccomp')))
                self.assertEqual(st.get('NoNewPrivs'), '1',
                                 '%s pid %d thread %d: NoNewPrivs %r'
                                 % (role, pid, tid, st.get('NoNewPrivs')))

    def test_reload_without_serverhostname(self):
        # The shipped pymaild.conf leaves serverhostname out: each helper
        # then reads the system's host name (gethostname, uname(2)) when
        # it parses the configuration, at a reload under its filter too.
        inst = self.smtp_instance(serverhostname=None)
        before = inst.wait_roles()
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr + inst.log_tail())
        self.send_mail(inst, 'after the reload')
        wait_mail(inst, 'alice', 1)
        self.assertEqual(inst.wait_roles(), before, inst.log_tail())


if __name__ == '__main__':
    import unittest
    unittest.main()
