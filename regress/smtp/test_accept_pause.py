"""Out of descriptors, a protocol helper takes no more sessions and
neither spins nor dies (common/listener.c, the one accept loop of smtpd
and pop3d):
- smtpd, when accept fails for want of a descriptor, stops accepting for
  a second, says so once in the log, and takes the waiting connection
  once a session has ended;
- pop3d keeps descriptors for the messages its sessions open, so it
  refuses a session beyond what its limit allows with -ERR [SYS/TEMP],
  and takes one again once a session has ended.

The daemon is started under a low descriptor limit (prlimit).

    /usr/bin/python3 regress/run.py regress/smtp/test_accept_pause.py
"""

import os
import re
import socket

from lib import pmtest

SMTP_NOFILE = 100          # proc_spawn moves descriptors past 64
POP3_HELD = 256 + 64            # pop3d.h POP3_HELD_MAX + its spare
POP3_SESSIONS = 2


def first_line(sock, timeout):
    """The first line the server sends, b'' at EOF, None at timeout."""
    sock.settimeout(timeout)
    buf = b''
    try:
        while b'\n' not in buf:
            chunk = sock.recv(512)
            if not chunk:
                return b''
            buf += chunk
    except socket.timeout:
        return None
    return buf.split(b'\n')[0]


def cpu_ticks(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])    # utime + stime


class AcceptPause(pmtest.TestCase):

    def start_limited(self, nofile):
        inst = self.instance(maxsessions=1000, maxsessionsperip=1000)
        r = pmtest.run(['/usr/bin/prlimit', '--nofile=%d:%d' %
                        (nofile, nofile), pmtest.PYMAILADM, '-f', inst.conf,
                        'start'], env=inst.env())
        inst._note_daemon()
        self.assertEqual(r.returncode, 0, r.stderr + inst.log_tail())
        pid = int(re.search(r'PID is (\d+)', r.stdout).group(1))
        inst._remember(pid)
        inst.wait_ports()
        return inst

    def connect(self, port):
        s = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.addCleanup(s.close)
        return s

    def test_smtpd_pauses_and_resumes(self):
        inst = self.start_limited(SMTP_NOFILE)
        pid = inst.wait_roles()['smtpd']
        sessions, waiting = [], None
        for _ in range(SMTP_NOFILE):
            s = self.connect(inst.smtp_port)
            line = first_line(s, 1.5)
            if line is None:
                waiting = s
                break
            self.assertTrue(line.startswith(b'220 '), line)
            sessions.append(s)
        self.assertIsNotNone(waiting, 'every connection was served')
        self.assertGreater(len(sessions), 5)
        ticks = cpu_ticks(pid)
        self.assertIsNone(first_line(waiting, 1.0))
        self.assertLess(cpu_ticks(pid) - ticks, 50, 'smtpd spins')
        self.assertIn('smtp-in: out of file descriptors with %d sessions'
                      % len(sessions), inst.log())
        sessions[0].close()
        line = first_line(waiting, 5)
        self.assertIsNotNone(line, 'not accepted again after the pause')
        self.assertTrue(line.startswith(b'220 '), line)
        # One warning a second at most, not one per wake-up.
        self.assertLessEqual(inst.log().count('out of file descriptors'),
                             6, 'a warning per attempt')
        self.assertTrue(inst.running())

    def test_pop3d_refuses_what_its_limit_cannot_hold(self):
        inst = self.start_limited(POP3_HELD + 2 * POP3_SESSIONS)
        sessions, refused = [], None
        for _ in range(POP3_SESSIONS + 8):
            s = self.connect(inst.pop3_port)
            line = first_line(s, 5) or b''
            if line.startswith(b'-ERR'):
                refused = line
                break
            self.assertTrue(line.startswith(b'+OK'), line)
            sessions.append(s)
        # Sessions up to the limit are served; the sanitizer runtimes of
        # a SANITIZE=1 build hold a descriptor or two of their own, so
        # the exact count may be one less there.
        self.assertGreaterEqual(len(sessions), 1)
        self.assertLessEqual(len(sessions), POP3_SESSIONS)
        self.assertEqual(refused,
                         b'-ERR [SYS/TEMP] too many sessions, try again '
                         b'later\r')
        self.assertIn('result=refused reason="out of descriptors"',
                      inst.log())
        sessions[0].close()

        def served():
            c = socket.create_connection(('127.0.0.1', inst.pop3_port),
                                         timeout=5)
            try:
                return (first_line(c, 5) or b'').startswith(b'+OK')
            finally:
                c.close()
        self.assertTrue(pmtest.wait_for(served, 5, interval=0.1))
        self.assertTrue(inst.running())


if __name__ == '__main__':
    import unittest
    unittest.main()
