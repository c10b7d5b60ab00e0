"""Logging to syslog from confined helpers (common/sandbox.c, log.c).

No helper may make a local socket once confined, so each one connects
to /dev/log before its filter (LOG_NDELAY) and logs through that socket:
a line a helper logs while it serves arrives.  When the log daemon
restarts, syslog(3) tries to connect again; that must cost the line, not
the helper: smtpd, queued and the rest stay up and mail still flows.

Root only: /dev is a tmpfs in a private mount namespace of this test
file's worker process (the runner runs each file in its own process),
with the few device nodes the daemon opens and a /dev/log of the test's.

    /usr/bin/python3 regress/run.py regress/sandbox/test_syslog.py
"""

import os
import subprocess
import time

from lib.sandboxutil import pmtest
from lib.smtputil import SmtpCase, wait_mail
from lib.logdaemon import private_dev_log


class Syslog(SmtpCase):

    def setUp(self):
        super().setUp()
        self.logd = private_dev_log(self)

    def start(self, inst):
        """pymailadm start, its output into a file (a pipe works too:
        test_start_through_a_pipe_ends)."""
        out = os.path.join(inst.dir, 'start.out')
        with open(out, 'wb') as f:
            r = subprocess.run([pmtest.PYMAILADM, '-f', inst.conf, 'start'],
                               stdin=subprocess.DEVNULL, stdout=f,
                               stderr=f, env=inst.env(), cwd='/',
                               timeout=pmtest.ADM_TIMEOUT)
        with open(out) as f:
            self.assertEqual(r.returncode, 0, f.read())
        inst._note_daemon()
        inst.wait_port()

    def test_helpers_log_and_survive_a_log_daemon_restart(self):
        inst = self.smtp_instance(start=False, logfile='syslog')
        self.start(inst)
        roles = inst.wait_roles()
        self.send_mail(inst, 'logged')
        wait_mail(inst, 'alice', 1)
        self.assertTrue(self.logd.wait(r'smtpd\[%d\]: smtp-in session='
                                       % roles['smtpd']),
                        'no line from the confined smtpd: %r'
                        % self.logd.read()[-10:])
        self.logd.restart()
        for i in range(3):
            self.send_mail(inst, 'after the restart %d' % i)
        wait_mail(inst, 'alice', 4)
        time.sleep(0.5)
        self.assertTrue(inst.running(), self.logd.read()[-20:])
        for role, pid in sorted(roles.items()):
            self.assertTrue(pmtest.pid_alive(pid), '%s (%d) died after '
                            'the log daemon restarted: %r'
                            % (role, pid, self.logd.read()[-20:]))

    def test_start_through_a_pipe_ends(self):
        """A daemon logging to syslog keeps nothing of its starter's
        output: `pymailadm start | cat` ends once pymaild listens."""
        inst = self.smtp_instance(start=False, logfile='syslog')
        p = subprocess.Popen([pmtest.PYMAILADM, '-f', inst.conf, 'start'],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=inst.env(),
                             cwd='/')
        try:
            out, _ = p.communicate(timeout=pmtest.ADM_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            p.stdout.close()    # the daemon still holds the other end
            self.fail('the output pipe of pymailadm start never ended: '
                      'the daemon holds it')
        finally:
            inst._note_daemon()
        self.assertEqual(p.returncode, 0, out)
        self.assertIn(b'pymaild started', out)
        inst.wait_port()


if __name__ == '__main__':
    import unittest
    unittest.main()
