"""The processes that see passwords (the parent, smtpd, pop3d) are not
dumpable, so another process of their account can neither trace them nor
read their memory, and a crash leaves no core file with passwords in it.

As root, /proc/PID/fd of a process that is not dumpable belongs to root,
not to the account it runs as: that is what is checked, once started as
root (the usual case) and once started by the daemon account itself,
where no change of user clears the flag for us.

SANITIZE=1 builds stay dumpable by design (LeakSanitizer must read its
own process): the tests skip there.

    /usr/bin/python3 regress/run.py regress/sandbox/test_dumpable.py
"""

import os
import pwd
import subprocess

from lib import sandboxutil
from lib.sandboxutil import pmtest, proc_owner
from lib.smtputil import SmtpCase

PASSWORD_ROLES = ('smtpd', 'pop3d')


class Dumpable(SmtpCase):

    def setUp(self):
        super().setUp()
        self.require_root()
        if sandboxutil.sanitize_build():
            self.skipTest('SANITIZE=1 build: dumpable by design')

    def assert_not_dumpable(self, inst):
        parent, roles, _ = inst.processes()
        pids = {'parent': parent}
        for r in PASSWORD_ROLES:
            self.assertTrue(roles.get(r), 'no %s: %r' % (r, roles))
            pids[r] = roles[r][0]
        for name, pid in sorted(pids.items()):
            uid = pmtest.proc_uids(pid)[1]
            self.assertNotEqual(uid, 0, '%s runs as root' % name)
            self.assertEqual(proc_owner(pid), 0,
                             '%s (pid %d, uid %d) is dumpable: /proc/%d/fd '
                             'belongs to uid %d'
                             % (name, pid, uid, pid, proc_owner(pid)))

    def test_password_processes_not_dumpable(self):
        inst = self.smtp_instance()
        inst.wait_roles()
        self.assert_not_dumpable(inst)

    def test_not_dumpable_when_started_unprivileged(self):
        """Started by the daemon account itself: no setuid() clears the
        dumpable flag, the programs must."""
        pw = pwd.getpwnam(pmtest.DAEMON_USER)
        inst = self.smtp_instance(start=False, queueuser=pw.pw_name)
        for dirpath, dirs, files in os.walk(inst.dir):
            for n in [dirpath] + [os.path.join(dirpath, x)
                                  for x in dirs + files]:
                os.lchown(n, pw.pw_uid, pw.pw_gid)
        err = open(os.path.join(inst.dir, 'foreground.err'), 'ab')
        self.addCleanup(err.close)
        pymaild = pmtest.programs_for(pw.pw_uid, pw.pw_gid)['pymaild']
        p = subprocess.Popen([pymaild, '-d', '-f', inst.conf],
                             stdin=subprocess.DEVNULL, stdout=err,
                             stderr=err, env=inst.env(), cwd='/',
                             user=pw.pw_uid, group=pw.pw_gid,
                             extra_groups=[], start_new_session=True)
        inst.popens.append(p)
        inst.fg_err = err.name
        inst._remember(p.pid)
        inst.wait_ports()
        self.assertTrue(pmtest.wait_for(
            lambda: all(inst.processes()[1].get(r) for r in pmtest.ROLES),
            10), inst.log_tail())
        self.assert_not_dumpable(inst)


if __name__ == '__main__':
    import unittest
    unittest.main()
