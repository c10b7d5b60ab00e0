"""Queue tools: `pymailadm show ID`, `remove ID...`, `remove --from/--to
PATTERN`, `hold`/`release`, and `queue` filters (state, sender,
recipient, age), with the daemon running (control socket -> parent ->
queued) and stopped (pymailadm changes the spool itself, as the queue's
user).  A message removed while a remote server holds it in a session is
never delivered: the session ends before the final dot.  The remote
server is a real SMTP sink used as the smarthost.

    /usr/bin/python3 regress/run.py regress/queue/test_queue_tools.py
"""

import fcntl
import os
import signal
import socket
import struct
import threading

from lib import pmtest
from lib.hostile import T, s as mstr, u32
from lib.oututil import (SETTLE, OutCase, log_lines, make_message,
                         queue, queue_entry, submit, wait_deferred, wait_for,
                         wait_queue_empty)


def ctl_send(path, type_, payload):
    """One frame on the control socket (type, length, flags, peerid,
    pid, payload); returns the socket."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    c.sendall(struct.pack('=IHHII', type_, 16 + len(payload), 0, 0, 0) +
              payload)
    return c

ALICE = 'alice@test.example'
BOB = 'bob@test.example'
GREYLIST = '451 4.7.1 sink: greylisted, come back later'
STALL_LIMIT = 30.0      # the sink never holds a session longer


class QueueTools(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')

    def deferred(self, inst, sender=ALICE, rcpt='x@remote.example',
                 subject='deferred'):
        qid = submit(inst, sender, [rcpt], make_message(subject,
                                                        sender=sender))
        wait_deferred(inst, qid, text='greylisted')
        return qid

    def ok(self, r):
        self.assertEqual(r.returncode, 0, 'exit %d\nstdout %r\nstderr %r'
                         % (r.returncode, r.stdout, r.stderr))
        return r.stdout

    def states(self, inst, *filters):
        return sorted(e['id'] for e in inst.adm_json('queue', *filters))

    # -- removal ---------------------------------------------------------

    def test_remove_during_attempt_is_never_delivered(self):
        """The sink stalls its answer to DATA; the message is removed
        meanwhile: outbound ends the session, the sink never gets the
        message, nothing bounces, the queue is empty."""
        reached, go = threading.Event(), threading.Event()

        def stall(session, txn, arg):
            reached.set()
            go.wait(STALL_LIMIT)
            return None     # then the normal 354

        self.relay.configure(data=stall)
        inst = self.out_instance(relay=self.relay)
        self.addCleanup(go.set)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('removed in flight'))
        self.assertTrue(reached.wait(15), 'no DATA reached the sink\n%s'
                        % self.context(inst, self.relay))
        r = inst.adm('remove', qid)
        self.assertIn('%s removed' % qid, self.ok(r))
        go.set()
        wait_queue_empty(inst)
        self.wait_sink_idle(self.relay)
        self.assertEqual(self.relay.transactions, [], 'the removed message '
                         'reached the sink\n%s'
                         % self.context(inst, self.relay))
        self.assertEqual(inst.messages('alice'), [], 'a bounce for a '
                         'removed message')
        self.assertTrue(log_lines(inst, 'id=%s' % qid, 'result=removed',
                                  'by=uid:%d' % os.getuid()),
                        inst.log_tail(40))
        self.assertTrue(log_lines(inst, 'id=%s' % qid, 'result=cancelled'),
                        inst.log_tail(40))
        # After a restart it does not come back either.
        inst.stop()
        inst.start()
        inst.wait_port()
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(queue(inst), [])

    def hold_lock(self, inst, path):
        """An exclusive OFD lock on path (as the parent's own locks);
        returns a function that lets it go (also at cleanup)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        st = os.stat(os.path.dirname(path))
        os.fchown(fd, st.st_uid, st.st_gid)
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0)
        fl = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl)
        held = [fd]

        def release():
            if held:
                os.close(held.pop())
        self.addCleanup(release)
        return release

    def hold_quota_order(self, inst, user):
        """USER/.quota.lock: the writer thread then waits, its copy in
        tmp/ written and synced, before its rename into new/ (quota.c,
        quota_order_begin)."""
        return self.hold_lock(inst, os.path.join(inst.maildir, user,
                                                 '.quota.lock'))

    def remove_in_background(self, inst, qid):
        """pymailadm remove, which may wait for the parent's results;
        returns a function that joins it and gives its output."""
        answer = []
        adm = threading.Thread(target=lambda: answer.append(
            inst.adm('remove', qid)))
        adm.start()
        # queued has removed it (and asked the parent to cancel) before
        # the caller lets the writer go on.
        self.assertTrue(wait_for(lambda: log_lines(
            inst, 'id=%s' % qid, 'result=removed', 'by=uid:'), 15,
            interval=0.05), inst.log_tail(30))

        def join():
            adm.join(60)
            self.assertFalse(adm.is_alive(), 'pymailadm remove hangs')
            return self.ok(answer[0])
        return join

    def test_remove_during_local_delivery_is_never_delivered(self):
        """The parent's writer has the message in alice's tmp/ and waits
        for the mailbox's order lock, which the test holds; the message
        is removed meanwhile: the writer drops its copy instead of the
        rename, nothing lands in alice's Maildir, nothing bounces to bob,
        and the next message to alice is delivered as usual."""
        inst = self.out_instance(relay=self.relay)
        release = self.hold_quota_order(inst, 'alice')
        qid = submit(inst, BOB, [ALICE], make_message('removed in flight',
                                                      sender=BOB))
        self.assertTrue(wait_for(lambda: inst.maildir_files(
            'alice', ('tmp',)) != [], 15, interval=0.05),
            'the copy never reached tmp/\n' + inst.log_tail(30))
        join = self.remove_in_background(inst, qid)
        release()
        out = join()
        self.assertIn('%s removed' % qid, out)
        self.assertNotIn('delivered', out)
        wait_queue_empty(inst)
        self.assertEqual(inst.maildir_files('alice', ('tmp', 'new', 'cur')),
                         [], 'the removed message was delivered\n' +
                         inst.log_tail(30))
        self.assertTrue(wait_for(lambda: log_lines(
            inst, 'id=%s' % qid, 'result=cancelled'), 15, interval=0.05),
            inst.log_tail(30))
        self.assertEqual(log_lines(inst, 'id=%s' % qid, 'result=delivered'),
                         [])
        self.assertEqual(inst.messages('bob'), [], 'a bounce for a removed '
                         'message')
        self.assertEqual(queue(inst), [])
        # The mailbox works as before.
        submit(inst, BOB, [ALICE], make_message('after the removal',
                                                sender=BOB))
        self.assertTrue(wait_for(lambda: len(inst.messages('alice')) == 1,
                                 15, interval=0.05), inst.log_tail(30))
        self.assertIn(b'after the removal', inst.messages('alice')[0])
        self.assertEqual(inst.maildir_files('alice', ('tmp',)), [])

    def test_remove_answers_while_the_writer_is_stuck(self):
        """The writer stays stuck before the rename: pymailadm gets its
        answer anyway after queued's bound (10 s), saying the local
        delivery has not answered; once the writer goes on, the message
        is cancelled all the same."""
        inst = self.out_instance(relay=self.relay)
        release = self.hold_quota_order(inst, 'alice')
        qid = submit(inst, BOB, [ALICE], make_message('stuck', sender=BOB))
        self.assertTrue(wait_for(lambda: inst.maildir_files(
            'alice', ('tmp',)) != [], 15, interval=0.05), inst.log_tail(30))
        out = self.ok(inst.adm('remove', qid))
        self.assertIn('%s removed' % qid, out)
        self.assertIn('%s: its local delivery has not answered yet' % qid,
                      out)
        release()
        wait_queue_empty(inst)
        self.assertTrue(wait_for(lambda: log_lines(
            inst, 'id=%s' % qid, 'result=cancelled'), 15, interval=0.05),
            inst.log_tail(30))
        self.assertEqual(inst.maildir_files('alice', ('tmp', 'new', 'cur')),
                         [])
        self.assertEqual(inst.messages('bob'), [])

    def test_remove_after_the_rename_says_delivered(self):
        """Too late: the message is in alice's new/ and the writer waits
        for maildirsize's lock (its line comes after the rename) when the
        removal comes. It stays delivered, once; the answer says so
        after "removed"; nothing bounces and the queue is empty."""
        inst = self.out_instance(relay=self.relay)
        submit(inst, BOB, [ALICE], make_message('first', sender=BOB))
        mdsize = os.path.join(inst.maildir, 'alice', 'Maildir',
                              'maildirsize')
        self.assertTrue(wait_for(lambda: len(inst.messages('alice')) == 1
                                 and os.path.exists(mdsize), 15,
                                 interval=0.05), inst.log_tail(30))
        release = self.hold_lock(inst, mdsize)
        qid = submit(inst, BOB, [ALICE], make_message('too late',
                                                      sender=BOB))
        self.assertTrue(wait_for(lambda: len(inst.messages('alice')) == 2,
                                 15, interval=0.05), inst.log_tail(30))
        join = self.remove_in_background(inst, qid)
        release()
        out = join()
        self.assertIn('%s removed' % qid, out)
        self.assertIn('%s: already delivered to <%s>' % (qid, ALICE), out)
        wait_queue_empty(inst)
        self.assertEqual(len(inst.messages('alice')), 2)
        self.assertEqual(inst.maildir_files('alice', ('tmp',)), [])
        self.assertEqual(log_lines(inst, 'id=%s' % qid, 'result=cancelled'),
                         [])
        self.assertEqual(inst.messages('bob'), [])

    def test_listing_sees_a_message_at_once(self):
        """A message acknowledged a moment ago (the journal alone holds it
        for its first half second) is listed by `queue` and `show` at
        once: pymailadm asks queued to write its files first."""
        reached, go = threading.Event(), threading.Event()

        def stall(session, txn, arg):
            reached.set()
            go.wait(STALL_LIMIT)
            return None

        self.relay.configure(data=stall)
        inst = self.out_instance(relay=self.relay)
        self.addCleanup(go.set)
        for i in range(3):
            qid = submit(inst, ALICE, ['x%d@remote.example' % i],
                         make_message('listed at once %d' % i))
            self.assertIn(qid, self.states(inst), 'message %d' % i)
            self.assertIn('x%d@remote.example' % i,
                          self.ok(inst.adm('show', qid)))
        go.set()
        wait_queue_empty(inst)

    def test_remove_by_pattern_and_bad_input(self):
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        a = self.deferred(inst, ALICE, 'x@remote.example')
        b = self.deferred(inst, BOB, 'y@remote.example')
        c = self.deferred(inst, BOB, 'z@other.example')
        # The sender, case-insensitive glob.
        out = self.ok(inst.adm('remove', '--from', 'BOB@*'))
        self.assertIn('%s removed' % b, out)
        self.assertIn('%s removed' % c, out)
        self.assertEqual(self.states(inst), [a])
        # Nothing matches: one line, exit 1, nothing removed.
        r = inst.adm('remove', '--to', '*@nowhere.example')
        self.assertOneLineError(r, 'No queued message', '*@nowhere.example')
        # An unknown id.
        r = inst.adm('remove', '0123456789abcdef')
        self.assertOneLineError(r, '0123456789abcdef', 'no such message')
        # Not an id at all: a usage error.
        r = inst.adm('remove', 'x')
        self.assertEqual(r.returncode, 2, r)
        self.assertEqual(self.states(inst), [a])
        out = self.ok(inst.adm('remove', '--to', 'X@remote.example'))
        self.assertIn('%s removed' % a, out)
        self.assertEqual(queue(inst), [])
        self.relay.accept_all()
        self.ok(inst.adm('flush'))
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(inst.messages('alice'), [])

    # -- hold and release -------------------------------------------------

    def test_hold_survives_flush_and_restart_then_release(self):
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        qid = self.deferred(inst)
        other = self.deferred(inst, BOB, 'y@remote.example')
        self.assertIn('%s held' % qid, self.ok(inst.adm('hold', qid)))
        self.assertEqual(self.states(inst, '--state', 'held'), [qid])
        self.assertEqual(self.states(inst, '--state', 'deferred'), [other])
        self.relay.accept_all()
        n = self.relay.connections
        self.ok(inst.adm('flush'))
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(txn.rcpts, ['y@remote.example'])
        self.assert_quiet(self.relay, SETTLE, n + 1)
        self.assertEqual(self.states(inst), [qid])
        # Held across a restart: nothing is attempted at start.
        inst.stop()
        inst.start()
        inst.wait_port()
        self.ok(inst.adm('flush'))
        self.assert_quiet(self.relay, SETTLE, n + 1)
        self.assertIn('%s released' % qid, self.ok(inst.adm('release', qid)))
        [_, txn] = self.wait_delivered(self.relay, 2, inst)
        self.assertEqual(txn.rcpts, ['x@remote.example'])
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, 'id=%s' % qid, 'result=held',
                                  'by=uid:'), inst.log_tail(40))
        self.assertTrue(log_lines(inst, 'id=%s' % qid, 'result=released'),
                        inst.log_tail(40))

    # -- the daemon stopped ----------------------------------------------

    def test_offline_show_hold_remove(self):
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        keep = self.deferred(inst, ALICE, 'x@remote.example', 'keep me')
        drop = self.deferred(inst, BOB, 'y@remote.example', 'drop me')
        inst.stop()
        self.assertFalse(inst.running())
        out = self.ok(inst.adm('show', keep))
        self.assertIn('Subject: keep me', out)
        self.assertIn('x@remote.example', out)
        shown = inst.adm_json('show', keep)
        self.assertEqual(shown['id'], keep)
        self.assertIn('Subject: keep me', shown['header'])
        self.assertIn('%s held' % keep, self.ok(inst.adm('hold', keep)))
        self.assertIn('%s removed' % drop, self.ok(inst.adm('remove', drop)))
        envp = os.path.join(inst.spooldir, 'env', keep)
        if pmtest.IS_ROOT:
            self.assertEqual(os.stat(envp).st_uid,
                             pmtest.uid_of(pmtest.QUEUE_USER),
                             'pymailadm as root changed the owner')
        self.assertFalse(os.path.exists(os.path.join(inst.spooldir, 'msg',
                                                     drop)))
        self.assertTrue(log_lines(inst, 'id=%s' % drop, 'result=removed',
                                  'by=uid:%d' % os.getuid(),
                                  'pymaild stopped'), inst.log_tail(20))
        r = inst.adm('show', drop)
        self.assertOneLineError(r, drop, 'no such message')
        r = inst.adm('release', '--from', 'nobody@*')
        self.assertOneLineError(r, 'No queued message')
        # Started again, the held message waits; released offline, it goes.
        self.relay.accept_all()
        inst.start()
        inst.wait_port()
        self.ok(inst.adm('flush'))
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(self.states(inst, '--state', 'held'), [keep])
        inst.stop()
        self.assertIn('%s released' % keep, self.ok(inst.adm('release',
                                                             keep)))
        inst.start()
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(txn.rcpts, ['x@remote.example'])
        self.assertIn(b'Subject: keep me', txn.data)
        wait_queue_empty(inst)

    def test_offline_refused_after_a_crash(self):
        """A killed daemon leaves its journal: a removal now could be
        undone by the next start, so pymailadm refuses it."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        qid = self.deferred(inst)
        pid = inst.pid()
        for p in [pid] + pmtest.descendants(pid):
            os.kill(p, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: not inst.running(), 10))
        r = inst.adm('remove', qid)
        self.assertOneLineError(r, 'journal')
        self.assertTrue(os.path.exists(os.path.join(inst.spooldir, 'env',
                                                    qid)))

    # -- bad input -----------------------------------------------------

    def test_malformed_control_requests_close_that_connection(self):
        """A control client's malformed remove (bad op, bad id, a
        pattern with a control character, trailing bytes) loses its
        connection; the daemon and the queue go on."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        qid = self.deferred(inst)
        bad = [u32(9) + u32(1) + mstr(qid),            # no such op
               u32(1) + u32(7) + mstr(qid),            # no such match
               u32(1) + u32(1) + mstr(qid.upper()),    # not an id
               u32(1) + u32(1),                        # no id at all
               u32(4) + u32(1) + mstr(qid),            # sync names none
               u32(1) + u32(0),                        # only sync may
               u32(4) + u32(0) + b'\0',                 # sync, trailing
               u32(1) + u32(2) + mstr('a\nb'),         # a line end
               u32(1) + u32(1) + mstr(qid) + b'\0',    # trailing byte
               u32(1)]                                 # cut short
        for payload in bad:
            with self.subTest(payload=payload):
                c = ctl_send(inst.sockpath, T['IMSG_CTL_QUEUE'], payload)
                try:
                    self.assertEqual(c.recv(100), b'', 'answered')
                finally:
                    c.close()
        self.ok(inst.adm('status'))
        self.assertEqual(self.states(inst), [qid])

    def test_no_rights_to_the_spool(self):
        """Stopped, as a user who cannot enter the spool: one line,
        exit 1, nothing changed."""
        self.require_root()
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        qid = self.deferred(inst)
        inst.stop()
        adm = pmtest.programs_for(65534, 65534)['pymailadm']
        pre = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
        for args in (['remove', qid], ['hold', qid], ['show', qid],
                     ['queue']):
            with self.subTest(args=args):
                r = pmtest.run(pre + [adm, '-f', inst.conf] + args,
                               env=inst.env())
                self.assertOneLineError(r, 'Permission denied')
        self.assertTrue(os.path.exists(os.path.join(inst.spooldir, 'env',
                                                    qid)))

    # -- queue filters ----------------------------------------------------

    def test_queue_filters(self):
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        a = self.deferred(inst, ALICE, 'x@remote.example')
        b = self.deferred(inst, BOB, 'y@other.example')
        self.assertEqual(self.states(inst, '--from', 'alice@*'), [a])
        self.assertEqual(self.states(inst, '--to', '*@OTHER.example'), [b])
        self.assertEqual(self.states(inst, '--state', 'deferred'),
                         sorted([a, b]))
        self.assertEqual(self.states(inst, '--state', 'new'), [])
        self.assertEqual(self.states(inst, '--min-age', '1h'), [])
        self.assertEqual(self.states(inst, '--max-age', '1h'),
                         sorted([a, b]))
        e = queue_entry(inst, a)
        self.assertEqual(e['state'], 'deferred')
        r = inst.adm('queue', '--state', 'stuck')
        self.assertEqual(r.returncode, 2, r)
        r = inst.adm('queue', '--min-age', 'soon')
        self.assertEqual(r.returncode, 2, r)
        # The text form filters the same way.
        out = self.ok(inst.adm('queue', '--from', 'bob@*'))
        self.assertIn(b, out)
        self.assertNotIn(a, out)


if __name__ == '__main__':
    import unittest
    unittest.main()
