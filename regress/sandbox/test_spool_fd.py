"""What the descriptor smtpd writes a message into can reach (DESIGN.md B2:
smtpd can read no byte it did not write in that session, and nothing it
holds after the 250 changes what is delivered).

The test plays a compromised smtpd: as root it reaches smtpd's spool
descriptor through /proc/SMTPDPID/fd/N, as smtpd itself could use it.

- Every spool descriptor smtpd receives is empty (size 0, nothing to
  read at offset 0), although other users' messages went through the
  queue just before (the queue reuses its files).
- Writing through that descriptor after the 250 (the test opened it
  during DATA and keeps it) changes nothing of what is delivered, also
  for a message that waited in the queue meanwhile.
- Messages over the journal's inline limit (1 MiB) take the other
  commit path and arrive intact.
- A message whose descriptor is mapped writable and shared at the end of
  DATA cannot be frozen: it gets 451 and nothing of it is delivered; the
  session goes on.

    /usr/bin/python3 regress/run.py regress/sandbox/test_spool_fd.py
"""

import contextlib
import mmap
import os
import stat

from lib.sandboxutil import pmtest
from lib.smtputil import (SmtpCase, added_prefix, dot_stuff,
                          make_message, subject_of, wait_mail)


def regular_fds(pid):
    """{fd: link} of pid's descriptors onto regular files or memfds."""
    out = {}
    d = '/proc/%d/fd' % pid
    for n in os.listdir(d):
        p = os.path.join(d, n)
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.stat(p).st_mode):
                out[int(n)] = os.readlink(p)
    return out


class SpoolFd(SmtpCase):

    def smtpd_pid(self, inst):
        roles = inst.wait_roles()
        self.assertIn('smtpd', roles, inst.log_tail())
        return roles['smtpd']

    def start_data(self, inst, pid, rcpt='alice@test.example'):
        """A session in DATA; returns (client, fd number of the spool
        descriptor smtpd holds for it)."""
        before = regular_fds(pid)
        c = self.session(inst)
        c.expect('MAIL FROM:<mallory@sender.example>', 250)
        c.expect('RCPT TO:<%s>' % rcpt, 250)
        c.expect('DATA', 354)
        new = {}

        def arrived():
            new.update({fd: l for fd, l in regular_fds(pid).items()
                        if before.get(fd) != l})
            return bool(new)
        self.assertTrue(pmtest.wait_for(arrived, 5),
                        'smtpd got no spool descriptor: %r'
                        % regular_fds(pid))
        self.assertEqual(len(new), 1, 'which one is the spool? %r' % new)
        return c, list(new)[0]

    def test_spool_descriptor_holds_no_earlier_message(self):
        inst = self.smtp_instance()
        pid = self.smtpd_pid(inst)
        secret = b'secret of bob number %d\r\n'
        for i in range(20):
            self.send_mail(inst, 'for bob %d' % i,
                           rcpts=('bob@test.example',),
                           body=secret % i * 50)
        wait_mail(inst, 'bob', 20)
        for i in range(5):
            c, fd = self.start_data(inst, pid)
            path = '/proc/%d/fd/%d' % (pid, fd)
            self.assertEqual(os.stat(path).st_size, 0,
                             'session %d: smtpd\'s spool descriptor %s '
                             'is not empty' % (i, os.readlink(path)))
            with open(path, 'rb') as f:
                self.assertEqual(f.read(), b'')
            c.send(dot_stuff(make_message('probe %d' % i)) + b'.\r\n')
            self.assertEqual(c.reply().code, 250)
            c.close()
        wait_mail(inst, 'alice', 5)

    def write_after_250(self, inst, pid, msg):
        """Send msg in a session whose spool descriptor the test opens
        for writing during DATA; after the 250, write over the start of
        it and past its end through that descriptor. Returns the queue
        reply."""
        c, fd = self.start_data(inst, pid)
        evil = os.open('/proc/%d/fd/%d' % (pid, fd), os.O_WRONLY)
        try:
            c.send(dot_stuff(msg) + b'.\r\n')
            r = c.reply()
            self.assertEqual(r.code, 250, r.raw)
            for off in (0, len(msg) // 2, len(msg) + 4096):
                with contextlib.suppress(OSError):
                    os.pwrite(evil, b'X-Evil: rewritten\r\n', off)
            with contextlib.suppress(OSError):
                os.ftruncate(evil, 10)
        finally:
            os.close(evil)
            c.close()
        return r

    def test_writing_after_250_changes_nothing_delivered(self):
        inst = self.smtp_instance()
        pid = self.smtpd_pid(inst)
        msg = make_message('delivered at once', b'the real text\r\n' * 40)
        self.write_after_250(inst, pid, msg)
        (_, got), = wait_mail(inst, 'alice', 1)
        added_prefix(got, msg)

    def send_while_queued(self, inst, msgs, timeout=15):
        """Send msgs (writing after each 250) while their mailbox cannot
        take them, so they wait in the queue past the time they get
        their own files; then let them in and check each one."""
        pid = self.smtpd_pid(inst)
        unblock = self.block_delivery(inst)
        for m in msgs:
            self.write_after_250(inst, pid, m)
        self.assertTrue(pmtest.wait_for(
            lambda: len(os.listdir(os.path.join(inst.spooldir, 'msg'))) ==
            len(msgs), timeout), inst.log_tail())
        unblock()
        self.assertEqual(inst.adm('flush').returncode, 0)
        got = {subject_of(b): b for _, b in wait_mail(inst, 'alice',
                                                      len(msgs), timeout)}
        for m in msgs:
            subj = subject_of(m).strip()
            self.assertIn(subj, got, 'message %r rewritten: subjects now '
                          '%r' % (subj, list(got)))
            added_prefix(got[subj], m)

    def test_writing_after_250_changes_nothing_queued(self):
        inst = self.smtp_instance(retrymin=1, retrymax=1)
        self.send_while_queued(inst, [
            make_message('queued %d' % i, b'the real text\r\n' * 40)
            for i in range(3)])

    def test_large_message_takes_the_file_path_intact(self):
        """Over the journal's inline limit: files and a syncfs."""
        inst = self.smtp_instance(smtpmaxmailsize=4000000, retrymin=1,
                                  retrymax=1)
        self.send_while_queued(inst, [
            make_message('large', (b'y' * 900 + b'\r\n') * 2000)], 30)

    def test_writable_mapping_at_commit_gets_451(self):
        inst = self.smtp_instance()
        pid = self.smtpd_pid(inst)
        c, fd = self.start_data(inst, pid)
        path = '/proc/%d/fd/%d' % (pid, fd)
        msg = make_message('mapped', (b'z' * 998 + b'\r\n') * 85)
        c.send(msg[:70000])         # more than smtpd buffers
        self.assertTrue(pmtest.wait_for(
            lambda: os.stat(path).st_size > 0, 5), 'nothing written')
        mfd = os.open(path, os.O_RDWR)
        try:
            m = mmap.mmap(mfd, os.fstat(mfd).st_size, mmap.MAP_SHARED,
                          mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                c.send(msg[70000:] + b'.\r\n')
                r = c.reply()
            finally:
                m.close()
        finally:
            os.close(mfd)
        self.assertEqual((r.code, r.enh), (451, '4.3.0'), r.raw)
        c.expect('NOOP', 250)
        r = c.transaction('carol@sender.example', ['alice@test.example'],
                          make_message('after the mapped one'))
        self.assertEqual(r.code, 250, r.raw)
        (_, got), = wait_mail(inst, 'alice', 1)
        self.assertEqual(subject_of(got).strip(), 'after the mapped one')

if __name__ == '__main__':
    import unittest
    unittest.main()
