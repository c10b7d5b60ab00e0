"""SMTP-in, the spool's journal (queued/journal.c): a 250 is durable in
SPOOLDIR/journal before the message's own queue files reach the disk.

- A crash after the 250 that loses the queue files (they are written
  after the answer and synced later) loses no message: the next start
  restores them from the journal and delivers them.
- A clean stop and start delivers nothing twice: messages removed from
  the queue are noted in the journal before queued exits.
- Neither does a kill -9 a while after a delivery, with no other mail
  coming: the removal reaches the journal within a second on its own.
- A journal full of garbage is ignored at start (a write cut by a crash
  ends the log), and mail flows.
- Past the end of a segment (32 MiB) the journal goes on in the other
  one, and a restart restores from both.

    /usr/bin/python3 regress/run.py -k test_smtp_journal
"""

import os
import time

from lib.smtputil import (SmtpCase, daemon_pids, kill9_group,
                          read, subject_of, wait_for, wait_mail)


def subjects(inst, user='alice'):
    return sorted(subject_of(read(p)) for p in inst.maildir_files(user))


class Journal(SmtpCase):

    def queue_files(self, inst, qid):
        return [os.path.join(inst.spooldir, d, qid) for d in ('env', 'msg')]

    def crash_losing_queue_files(self, inst, qids, unblock, timeout):
        """Wait until the queued (deferred) messages qids have their queue
        files, kill -9 the daemon, remove those files as if the crash
        came before they reached the disk, undo the block and start
        again."""
        self.assertTrue(wait_for(lambda: all(
            os.path.exists(p) for q in qids
            for p in self.queue_files(inst, q)), timeout),
            'queue files never appeared\n%s' % inst.log_tail(20))
        kill9_group(daemon_pids(inst))
        for q in qids:
            for p in self.queue_files(inst, q):
                os.unlink(p)
        unblock()
        inst.start()
        inst.wait_port()

    def start_and_send(self, inst, subject, total):
        """Start again, send one more message and wait until alice
        has total messages."""
        inst.start()
        inst.wait_port()
        self.send_mail(inst, subject)
        wait_mail(inst, 'alice', total)

    def test_lost_queue_files_are_restored_from_the_journal(self):
        inst = self.smtp_instance()
        unblock = self.block_delivery(inst)
        sent = ['journal %d' % i for i in range(3)]
        qids = [self.send_mail(inst, s)[0] for s in sent]
        self.crash_losing_queue_files(inst, qids, unblock, 10)
        wait_mail(inst, 'alice', 3)
        self.assertEqual(subjects(inst), sorted(sent))
        log = inst.log()
        for q in qids:
            self.assertIn('queue id=%s result=restored reason=journal' % q, log)
        self.assert_healthy(inst)

    def test_restore_across_both_segments(self):
        inst = self.smtp_instance(smtpmaxmailsize=2000000)
        unblock = self.block_delivery(inst)
        # 40 messages of ~900 KiB: more than one 32 MiB segment.
        body = (b'x' * 998 + b'\r\n') * 900
        sent = ['big %d' % i for i in range(40)]
        qids = [self.send_mail(inst, s, body=body)[0] for s in sent]
        jdir = os.path.join(inst.spooldir, 'journal')
        sizes = [os.path.getsize(os.path.join(jdir, n)) for n in '01']
        self.assertTrue(all(sz > 1 << 20 for sz in sizes),
                        'both segments should be in use: %r' % sizes)
        self.crash_losing_queue_files(inst, qids, unblock, 20)
        wait_mail(inst, 'alice', len(sent), timeout=30)
        self.assertEqual(subjects(inst), sorted(sent))
        for p in inst.maildir_files('alice'):
            self.assertTrue(read(p).endswith(b'x' * 998 + b'\n'), p)

    def test_clean_restart_delivers_nothing_twice(self):
        inst = self.smtp_instance()
        sent = ['once %d' % i for i in range(20)]
        for s in sent:
            self.send_mail(inst, s)
        wait_mail(inst, 'alice', len(sent))
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.start_and_send(inst, 'after restart', len(sent) + 1)
        time.sleep(1.0)         # a redelivery would have come by now
        self.assertEqual(subjects(inst), sorted(sent + ['after restart']))
        self.assertNotIn('result=restored', inst.log())

    def test_kill9_after_quiet_delivery_delivers_nothing_twice(self):
        inst = self.smtp_instance()
        self.send_mail(inst, 'only once')
        wait_mail(inst, 'alice', 1)
        time.sleep(2.0)         # no other mail meanwhile
        kill9_group(daemon_pids(inst))
        self.start_and_send(inst, 'after restart', 2)
        time.sleep(1.0)
        self.assertEqual(subjects(inst), ['after restart', 'only once'])
        self.assertNotIn('result=restored', inst.log())

    def test_garbage_journal_is_ignored(self):
        inst = self.smtp_instance()
        self.send_mail(inst, 'before')
        wait_mail(inst, 'alice', 1)
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        jdir = os.path.join(inst.spooldir, 'journal')
        names = sorted(os.listdir(jdir))
        self.assertEqual(names, ['0', '1'])
        for n in names:
            with open(os.path.join(jdir, n), 'r+b') as f:
                f.seek(0)
                f.write(os.urandom(64 * 1024))
        self.start_and_send(inst, 'after', 2)
        time.sleep(0.5)
        self.assertEqual(subjects(inst), ['after', 'before'])
        self.assert_healthy(inst)
