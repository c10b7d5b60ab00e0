"""pymailadm status asks smtpd, pop3d and queued for their figures; a
helper that does not answer (stopped, stuck) must not hang it: after
2 s the answer says what is known and which helper was silent.

Run alone:
    /usr/bin/python3 regress/run.py regress/admin/test_status_timeout.py
"""

import os
import signal
import time

from lib import pmtest


class StatusTimeout(pmtest.TestCase):

    def test_stopped_helper(self):
        inst = self.instance()
        inst.start()
        roles = inst.wait_roles()
        for role in ('queued', 'pop3d', 'smtpd'):
            with self.subTest(role=role):
                os.kill(roles[role], signal.SIGSTOP)
                try:
                    t0 = time.monotonic()
                    r = inst.adm('status', timeout=15)
                    took = time.monotonic() - t0
                    rj = inst.adm('status', json=True, timeout=15)
                finally:
                    os.kill(roles[role], signal.SIGCONT)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertLess(took, 6)
                self.assertIn('pymaild is running.', r.stdout)
                self.assertIn('pid=%d' % inst.pid(), r.stdout)
                self.assertRegex(r.stdout, r'(?m)^%s did not answer within '
                                 r'2 s$' % role)
                # No figure is made up for the silent helper.
                key = 'queue' if role == 'queued' else 'sessions'
                self.assertNotRegex(r.stdout, r'(?m)^%s=' % key)
                other = 'sessions' if role == 'queued' else 'queue'
                self.assertRegex(r.stdout, r'(?m)^%s=\d+$' % other)
                self.assertEqual(rj.returncode, 0, rj.stderr)
                self.assertIn('"running": true', rj.stdout.replace(
                    '":true', '": true'))
        # Once they answer again, so does status, in full and at once.
        t0 = time.monotonic()
        r = inst.adm('status')
        self.assertLess(time.monotonic() - t0, 2)
        self.assertRegex(r.stdout, r'(?m)^sessions=\d+$')
        self.assertRegex(r.stdout, r'(?m)^queue=\d+$')
        self.assertNotIn('did not answer', r.stdout)


if __name__ == '__main__':
    import unittest
    unittest.main()
