"""The POP3 lock on a shared store: MAILDIR/USER/.pop3.lock, an OFD fcntl
lock, honoured by every host on the store and by pymailadm (DESIGN.md A5,
B3; pymaild.conf(5)).

    /usr/bin/python3 regress/run.py regress/shared/test_shared_lock.py
"""

import os
import threading
import time

from lib.sharedutil import SharedCase, old_tree
from lib import pmtest

IN_USE = b'-ERR [IN-USE] mailbox is locked by another session\r\n'
TOOL_WAIT = 5.0     # MBOXLOCK_TOOL_WAIT_MS


class Lock(SharedCase):

    def uidl(self, c):
        c.ok('UIDL')
        return sorted(c.multi().split(b'\r\n')[:-1])

    def test_second_host_in_use_then_free_at_once(self):
        a = self.raw(self.a)
        self.assertTrue(a.login().startswith(b'+OK'))
        b = self.raw(self.b)
        self.assertEqual(b.login(), IN_USE)
        # The other way round too, and another mailbox is not affected.
        self.assertTrue(b.login('bob').startswith(b'+OK'))
        self.assertEqual(self.raw(self.a).login('bob'), IN_USE)
        a.ok('QUIT')
        # At once: no wait, no retry.
        r = self.raw(self.b).login()
        self.assertTrue(r.startswith(b'+OK'), r)
        self.assertIn('user=alice from=127.0.0.1 result=in-use',
                      self.b.log())

    def test_killed_host_frees_the_lock_at_once(self):
        a = self.raw(self.a)
        self.assertTrue(a.login().startswith(b'+OK'))
        self.assertEqual(self.raw(self.b).login(), IN_USE)
        self.kill_host(self.a)
        self.assertTrue(self.raw(self.b).login().startswith(b'+OK'))

    def test_deletions_and_uids_agree_across_hosts(self):
        for i in range(3):
            self.put(b'Subject: %d\n\nbody %d\n' % (i, i))
        a = self.raw(self.a)
        a.login()
        uids_a = self.uidl(a)
        a.ok('DELE 2')
        a.ok('QUIT')
        b = self.raw(self.b)
        self.assertTrue(b.login().startswith(b'+OK'))
        uids_b = self.uidl(b)
        self.assertEqual(len(uids_b), 2)
        gone = set(u.split()[1] for u in uids_a) - \
            set(u.split()[1] for u in uids_b)
        self.assertEqual(len(gone), 1)
        self.assertEqual(set(u.split()[1] for u in uids_b) | gone,
                         set(u.split()[1] for u in uids_a))

    def test_lock_file_not_regular_refused(self):
        lock = os.path.join(self.a.maildir, 'alice', '.pop3.lock')
        elsewhere = os.path.join(self.a.dir, 'not-here')
        kinds = {
            'symlink': lambda: os.symlink(elsewhere, lock),
            'fifo': lambda: os.mkfifo(lock, 0o600),
            'directory': lambda: os.mkdir(lock, 0o700),
        }
        for kind, make in kinds.items():
            with self.subTest(kind=kind):
                if os.path.isdir(lock) and not os.path.islink(lock):
                    os.rmdir(lock)
                elif os.path.lexists(lock):
                    os.unlink(lock)
                make()
                for host in (self.a, self.b):
                    c = self.raw(host)
                    r = c.login()
                    self.assertTrue(r.startswith(b'-ERR [SYS/TEMP]'), r)
                    self.assertIn('alice/.pop3.lock is not a regular file',
                                  host.log())
                self.assertFalse(os.path.lexists(elsewhere))
                # Other mailboxes go on.
                c = self.raw(self.a)
                self.assertTrue(c.login('bob').startswith(b'+OK'))
                c.ok('QUIT')


class Tools(SharedCase):

    def test_rmuser_waits_for_the_session_on_another_host(self):
        a = self.raw(self.a)
        self.assertTrue(a.login().startswith(b'+OK'))
        out = []
        t = threading.Thread(target=lambda: out.append(
            self.b.adm('rmuser', 'alice')))
        t.start()
        time.sleep(1.0)
        # Still waiting, nothing removed under the session.
        self.assertTrue(t.is_alive())
        self.assertIn('alice', self.a.users())
        self.assertTrue(os.path.isdir(os.path.join(self.a.maildir, 'alice')))
        a.ok('QUIT')
        t.join(pmtest.ADM_TIMEOUT)
        self.assertEqual(out[0].returncode, 0, out[0].stderr)
        self.assertNotIn('alice', self.a.users())
        self.assertFalse(os.path.exists(os.path.join(self.a.maildir,
                                                     'alice')))

    def test_rmuser_gives_up_under_a_long_session(self):
        a = self.raw(self.a)
        self.assertTrue(a.login().startswith(b'+OK'))
        t0 = time.monotonic()
        r = self.b.adm('rmuser', 'alice')
        self.assertGreaterEqual(time.monotonic() - t0, TOOL_WAIT - 0.5)
        self.assertOneLineError(r, 'mailbox of alice is in use')
        self.assertIn('alice', self.a.users())
        a.ok('STAT')
        a.ok('QUIT')

    def test_import_leaves_a_mailbox_in_session_alone(self):
        old = old_tree(self.a.dir, b'Subject: imported\r\n\r\nhello\r\n.\r\n')
        a = self.raw(self.a)
        self.assertTrue(a.login().startswith(b'+OK'))
        r = self.b.adm('import', old)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('mailbox of alice is in use', r.stderr)
        self.assertEqual(os.listdir(os.path.join(self.a.maildir, 'alice',
                                                 'Maildir', 'new')), [])
        a.ok('QUIT')
        r = self.b.adm('import', old)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(os.listdir(os.path.join(
            self.a.maildir, 'alice', 'Maildir', 'new'))), 1)
