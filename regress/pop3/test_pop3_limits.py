"""POP3 limits and bad input: line lengths, idle timeout,
maxsessions and maxsessionsperip, random bytes, a client that stops
reading, a client that drops during QUIT, a stop with sessions open.

    /usr/bin/python3 regress/run.py -k test_pop3_limits
"""

import os
import random
import signal
import socket
import struct
import threading
import time

from lib.pop3util import (CRLF, Pop3Case, Raw, pop_form, rss_kib,
                          timed, wait_for, wait_login)

from lib import pmtest


class BadInput(Pop3Case):

    def test_overlong_command(self):
        c = self.raw()
        self.assertEqual(c.cmd('NOOP ' + 'x' * 300), b'-ERR line too long\r\n')
        self.assertTrue(c.ok('USER ' + 'a' * 248))    # 255 with CRLF
        self.assertTrue(c.cmd('USER ' + 'a' * 249).startswith(b'-ERR'))
        # Far longer than the input buffer: one answer, the rest skipped.
        c.send(b'USER ' + b'y' * 50000 + CRLF)
        self.assertEqual(c.line(), b'-ERR line too long\r\n')
        self.assertTrue(c.login().startswith(b'+OK'))
        c.ok('QUIT')

    def test_overlong_sasl_response(self):
        c = self.raw()
        self.assertEqual(c.cmd('AUTH PLAIN'), b'+ \r\n')
        self.assertTrue(c.cmd('A' * 5000).startswith(b'-ERR'))
        self.assertTrue(c.login().startswith(b'+OK'))

    def test_line_ends_and_nul(self):
        c = self.raw()
        c.send(b'USER alice\nPASS alicepw\nSTAT\r\n')
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertTrue(c.line().startswith(b'+OK 0 0'))
        self.assertTrue(c.cmd(b'NO\rOP').startswith(b'-ERR'))
        self.assertTrue(c.cmd(b'NOOP\0').startswith(b'-ERR'))
        self.assertTrue(c.cmd(b'\xff\xfe').startswith(b'-ERR'))
        self.assertTrue(c.cmd(b'').startswith(b'-ERR'))
        c.ok('NOOP')

    def test_too_many_bad_commands(self):
        c = self.raw()
        c.send(b'BAD\r\n' * 25)
        got = c.eof()
        self.assertEqual(got.count(b'-ERR'), 21)
        self.assertTrue(got.endswith(b'-ERR too many bad commands, bye\r\n'))
        self.assertAlive()

    def test_random_bytes(self):
        pid = self.pop3d_pid()
        self.put(b'Subject: x\n\nhello\n')
        rnd = random.Random(1)
        for i in range(40):
            c = Raw(self.port)
            try:
                if i % 2:
                    c.login()
                data = bytes(rnd.randrange(256) for _ in range(
                    rnd.randrange(1, 20000)))
                if i % 3 == 0:
                    data = data.replace(b'\x00', b'\n')
                c.send(data)
                if i % 4 == 0:
                    c.eof(timeout=0.2)
            except OSError:
                pass
            finally:
                c.close()
        self.assertEqual(self.pop3d_pid(), pid)
        self.assertTrue(wait_login(self.port))
        self.assertAlive()

    def test_client_that_stops_reading(self):
        big = (b'Subject: big\n\n' +
               (b'0123456789' * 7 + b'\n') * (10 * 1024 * 1024 // 71))
        self.put(big)
        small = b'Subject: small\n\n' + b'z' * 100000 + b'\n'
        self.put(small, user='bob')
        pid = self.pop3d_pid()
        before = rss_kib(pid)
        slow = self.raw(rcvbuf=4096)
        slow.login()
        self.assertEqual(slow.cmd('RETR 1'),
                         b'+OK %d octets\r\n' % len(pop_form(big)))
        time.sleep(1.0)
        # Another session is served all the while.
        t0 = time.monotonic()
        other = self.raw()
        self.assertTrue(other.login('bob').startswith(b'+OK'))
        self.assertEqual(other.retr(1)[1], pop_form(small))
        other.ok('QUIT')
        self.assertLess(time.monotonic() - t0, 5)
        # And pop3d did not take the message into memory.
        self.assertLess(rss_kib(pid) - before, 6 * 1024)
        # Now read it all: nothing lost on the way.
        first = len(b'+OK %d octets\r\n' % len(pop_form(big)))
        slow.s.settimeout(60)
        body = slow.multi()
        self.assertEqual(len(body) + first, first + len(pop_form(big)))
        slow.ok('QUIT')

    def test_client_drops_in_the_middle_of_retr(self):
        big = b'Subject: big\n\n' + b'x' * 3000000 + b'\n'
        self.put(big)
        c = self.raw(rcvbuf=4096)
        c.login()
        c.send(b'RETR 1\r\n')
        c.line()
        # A reset, not a FIN: the server's next write fails.
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack('ii', 1, 0))
        c.close()
        self.assertTrue(wait_login(self.port))
        self.assertEqual(len(self.files()), 1)

    def test_client_drops_during_quit(self):
        bodies = [b'Subject: %d\n\n%s\n' % (i, b'q' * i * 1000)
                  for i in range(5)]
        for b in bodies:
            self.put(b)
        c = self.raw()
        c.login()
        c.send(b'DELE 1\r\nDELE 3\r\nQUIT\r\n')
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack('ii', 1, 0))
        c.close()
        self.assertTrue(wait_login(self.port))
        # Each message is there whole or gone.
        left = self.inst.messages('alice')
        for m in left:
            self.assertIn(m, bodies)
        self.assertIn(len(left), (3, 5))

    def test_stop_with_a_session_open(self):
        self.put(b'Subject: x\n\nkeep\n')
        c = self.raw()
        c.login()
        c.ok('DELE 1')
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            'r', self.inst.stop()))
        t.start()
        # New connections are refused at once ...
        pmtest.wait_port_closed(self.port)
        # ... while the open session finishes its work.
        self.assertTrue(c.ok('QUIT').startswith(b'+OK pymaild signing off'))
        t.join(30)
        self.assertEqual(result['r'].returncode, 0, result['r'].stderr)
        self.assertEqual(self.files(), [])


class Durability(Pop3Case):

    def test_kill_during_update(self):
        n = 3000
        originals = {}
        for i in range(n):
            body = b'Subject: %d\n\n%s\n' % (i, b'k' * (i % 700))
            originals[self.put(body)] = body
        c = self.raw()
        c.login()
        c.send(b''.join(b'DELE %d\r\n' % (i + 1) for i in range(n)))
        for i in range(n):
            self.assertTrue(c.line().startswith(b'+OK'))
        parent, roles, _ = self.inst.processes()
        pids = [parent] + [p for v in roles.values() for p in v]
        c.send(b'QUIT\r\n')
        # Strike while the deletions are under way.
        new = self.mdir(sub='new')
        wait_for(lambda: len(os.listdir(new)) < n - 100, 10, 0.001)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            wait_for(lambda: not pmtest.pid_alive(pid), 10)
        # Every message is there whole, or gone.
        left = {}
        for f in self.files():
            with open(os.path.join(self.mdir(), f), 'rb') as fp:
                left[f.split('/')[1].split(',')[0]] = fp.read()
        for uniq, data in left.items():
            self.assertEqual(data, originals[uniq])
        # The lock died with the daemon; the next one serves the rest.
        self.inst.start()
        self.assertTrue(wait_login(self.port))
        c = self.raw()
        c.login()
        self.assertEqual(c.ok('STAT').split()[1], b'%d' % len(left))
        c.ok('QUIT')


class Timeouts(Pop3Case):

    overrides = {'timeout': 1}

    def test_idle_client_logged_out(self):
        c = self.raw()
        got, t = timed(c.eof, 10)
        self.assertIn(b'-ERR', got)
        self.assertLess(t, 5)

    def test_idle_transaction_releases_the_lock(self):
        self.put(b'Subject: x\n\nx\n')
        c = self.raw()
        c.login()
        c.ok('DELE 1')
        c.eof(10)
        self.assertTrue(wait_login(self.port))
        self.assertEqual(len(self.files()), 1)

    def test_busy_client_stays(self):
        c = self.raw()
        for _ in range(8):
            time.sleep(0.4)
            c.ok('NOOP')

    def test_delayed_answer_is_not_cut_by_the_timeout(self):
        c = self.raw(src='127.0.0.9')
        for want in (1, 2):
            c.ok('USER alice')
            r, t = timed(c.cmd, 'PASS wrong')
            self.assertEqual(r, b'-ERR [AUTH] authentication failed\r\n')
            self.assertGreaterEqual(t, want - 0.05)
        self.assertTrue(c.login().startswith(b'+OK'))


class Many(Pop3Case):

    overrides = {'maxsessionsperip': 1000}

    def test_idle_sessions_are_small(self):
        pid = self.pop3d_pid()
        self.assertAlive()
        before = rss_kib(pid)
        n = 400
        conns = [Raw(self.port) for _ in range(n)]
        try:
            for c in conns[:50]:
                c.login('bob')  # IN-USE for all but one: still a session
            after = rss_kib(pid)
            # A small fixed buffer each (16 KiB leaves room for ASan).
            self.assertLess((after - before) / n, 16, (before, after))
            self.assertEqual(conns[-1].cmd('NOOP'), b'+OK\r\n')
        finally:
            for c in conns:
                c.close()
        self.assertTrue(wait_login(self.port, 'bob'))


class Sessions(Pop3Case):

    overrides = {'maxsessions': 4, 'maxsessionsperip': 2}

    def test_maxsessionsperip_and_maxsessions(self):
        a = [self.raw(src='127.0.0.1') for _ in range(2)]
        extra = self.raw(src='127.0.0.1', greet=False)
        self.assertEqual(extra.eof(), b'-ERR [SYS/TEMP] too many sessions, '
                         b'try again later\r\n')
        b = [self.raw(src='127.0.0.2') for _ in range(2)]
        extra = self.raw(src='127.0.0.3', greet=False)
        self.assertTrue(extra.eof().startswith(b'-ERR [SYS/TEMP]'))
        for c in a + b:
            c.ok('NOOP')
        # A slot freed is a slot free again.
        a[0].ok('QUIT')
        a[0].eof()

        def free():
            c = Raw(self.port, greet=False)
            try:
                return c.line().startswith(b'+OK')
            except (EOFError, OSError):
                return False
            finally:
                c.close()
        self.assertTrue(wait_for(free, 10))
