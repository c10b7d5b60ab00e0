"""A compromised outbound client (DESIGN.md B2): the process that parses
what any mail server in the world sends is the least trusted one, so
queued checks everything it answers.  The test stands in for outbound
(regress/hostile/stub.py) and speaks to queued on outbound's channel.

- What queued hands over per attempt: the message as a descriptor that
  cannot write (O_RDONLY, or a memfd sealed against writes; writing
  through it fails) plus the envelope fields of that domain, and nothing
  else.
- The descriptor it kept reads that message and no later one: a file
  that was handed out never returns to the spool's pool.
- A well-behaved answer (one result per recipient, the last one marked
  as the end) settles the message: the stand-in proves the protocol, so the refusals below
  are refusals of what is wrong, not of everything.
- A result for an attempt queued never started, a result for a
  recipient that is not in the attempt, a second result for the same
  recipient, an end before every recipient has a result, a last result
  not marked as the end, a descriptor sent to queued: queued exits non-zero (logged), the parent fails
  closed (exit 1), and the message is still in the queue, intact.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_outbound.py
"""

import contextlib
import fcntl
import os
import re
import smtplib
import struct

from lib import hostile
from lib.hostile import T, pmtest, s, u32

OUT_DELIVERED, OUT_DEFERRED, OUT_FAILED = 0, 1, 2
MSG = (b'From: <alice@test.example>\r\nTo: <x@remote.example>\r\n'
       b'Subject: hostile outbound\r\n\r\nthe body\r\n')


def read_str(p, off):
    n, = struct.unpack_from('<I', p, off)
    return p[off + 4:off + 4 + n].decode(), off + 4 + n


def parse_attempt(p):
    aid, = struct.unpack_from('<I', p, 0)
    qid, off = read_str(p, 4)
    sender, off = read_str(p, off)
    domain, off = read_str(p, off)
    size, = struct.unpack_from('<Q', p, off)
    off += 8
    dkim, off = read_str(p, off)     # DKIM-Signature fields, or ""
    rcpts = []
    while off < len(p):
        r, off = read_str(p, off)
        rcpts.append(r)
    return dict(id=aid, qid=qid, sender=sender, domain=domain, size=size,
                dkim=dkim, rcpts=rcpts)


def result(aid, index, code, text, last=1):
    return u32(aid) + u32(index) + u32(code) + u32(last) + s(text)


class HostileOutbound(hostile.HostileCase):

    def start(self):
        inst, p, peer = self.start_hostile('outbound', users=['alice'])
        plain = inst.env()
        for var in ('PYMAILD_TEST_HELPERDIR', 'PYMAILD_TEST_HOSTILE_SOCK'):
            plain.pop(var, None)
        self.plain_env = lambda: dict(plain)
        self.parent_peer = peer
        self.assertGreaterEqual(len(self.peer_chans), 1,
                                'no channel to queued from the stub')
        return inst, p, self.peer_chans[0]

    def submit(self, inst, rcpts=('x@remote.example',)):
        with smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10) as c:
            c.sendmail('alice@test.example', list(rcpts), MSG)

    def attempt(self, q, n=1):
        """queued's next attempt: (fields, descriptor, [addresses])."""
        payload, fd = q.expect_fd(T['IMSG_OUT_ATTEMPT'], timeout=15)
        self.assertIsNotNone(fd, 'an attempt without the message')
        self.addCleanup(os.close, fd)
        a = parse_attempt(payload)
        self.assertEqual(len(a['rcpts']), n, a)
        return a, fd, a['rcpts']

    def exit_when_asked(self, inst, p):
        """What outbound does at IMSG_SHUTDOWN: exit (the stand-in waits
        for its parent channel to close otherwise, and the stop for it)."""
        with contextlib.suppress(TimeoutError, EOFError):
            self.parent_peer.expect(T['IMSG_SHUTDOWN'], timeout=30)
        _, roles, _ = inst.processes()
        for pid in roles.get('outbound', []):
            pmtest.kill_pid(pid)

    def assertQueuedFailsClosed(self, inst, p, needle, qid=None):
        self.exit_when_asked(inst, p)
        try:
            rc = p.wait(30)
        except Exception:
            self.fail('pymaild did not fail closed:\n%s' % inst.log_tail())
        self.assertEqual(rc, 1, inst.log_tail())
        log = inst.log()
        self.assertRegex(log, needle)
        self.assertRegex(log, r'queued.*fail(ing)? closed')
        self.assertFalse(pmtest.port_open(inst.smtp_port))
        if qid is not None:
            self.assertStillQueued(inst, qid)

    def assertStillQueued(self, inst, qid):
        """Started again with its own helpers, pymaild still has the
        message (the journal, or its files): outbound's lies changed
        nothing on disk."""
        inst.env = self.plain_env
        inst.start()
        self.assertTrue(pmtest.wait_for(
            lambda: qid in inst.adm('--json', 'queue').stdout, 10),
            'the message left the queue\n%s' % inst.log_tail())

    def test_descriptor_is_read_only_and_fields_are_the_domains(self):
        inst, p, q = self.start()
        self.submit(inst, ['x@remote.example', 'y@remote.example',
                           'z@other.example'])
        a, fd, rcpts = self.attempt(q, 2)
        self.assertEqual((a['sender'], a['domain']),
                         ('alice@test.example', 'remote.example'))
        self.assertEqual(sorted(rcpts), ['x@remote.example',
                                         'y@remote.example'])
        with open('/proc/self/fdinfo/%d' % fd) as f:
            flags = int(re.search(r'flags:\s*(\d+)', f.read()).group(1), 8)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            # A small message comes as a copy in memory, sealed.
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            self.assertTrue(seals & fcntl.F_SEAL_WRITE, seals)
        with self.assertRaises(OSError):
            os.pwrite(fd, b'rewritten', 0)
        data = os.pread(fd, 1 << 20, 0)
        self.assertTrue(data.endswith(MSG), data[-200:])
        self.assertEqual(a['size'], len(data))
        # The other domain comes as an attempt of its own.
        b, fd2, rcpts2 = self.attempt(q, 1)
        self.assertEqual((b['domain'], rcpts2),
                         ('other.example', ['z@other.example']))
        self.assertNotEqual(a['id'], b['id'])

    def test_good_answers_settle_the_message(self):
        inst, p, q = self.start()
        self.submit(inst)
        a, fd, _ = self.attempt(q)
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 0, OUT_DELIVERED,
                                            'mx[192.0.2.1] said: 250 ok'))
        self.assertTrue(pmtest.wait_for(
            lambda: a['qid'] not in inst.adm('--json', 'queue').stdout, 10),
            inst.log_tail())
        self.assertRunning(inst, p)

    def test_descriptor_never_reaches_a_later_message(self):
        """A compromised outbound keeps the descriptor of a message it was
        given: once that message is done, the queue writes the next ones
        into other files (the pool of emptied files skips it), so the
        old descriptor reads the old message and nothing else."""
        inst, p, q = self.start()
        self.submit(inst)
        a, fd, _ = self.attempt(q)
        first = os.pread(fd, 1 << 20, 0)
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 0, OUT_DELIVERED,
                                            '250 ok'))
        self.assertTrue(pmtest.wait_for(
            lambda: a['qid'] not in inst.adm('--json', 'queue').stdout, 10),
            inst.log_tail())
        self.assertEqual(os.fstat(fd).st_nlink, 0, 'the file lives on')
        later = MSG.replace(b'hostile outbound', b'a later secret')
        for i in range(5):
            with smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10) as c:
                c.sendmail('alice@test.example', ['alice@test.example'],
                           later)
        self.assertTrue(pmtest.wait_for(
            lambda: len(inst.maildir_files('alice')) == 5, 10))
        self.assertEqual(os.pread(fd, 1 << 20, 0), first)

    def test_result_for_an_attempt_never_started(self):
        inst, p, q = self.start()
        q.send(T['IMSG_OUT_RESULT'], result(4242, 0, OUT_DELIVERED, '250'))
        self.assertQueuedFailsClosed(inst, p, r'attempt 4242 recipient 0')

    def test_result_for_a_recipient_not_in_the_attempt(self):
        inst, p, q = self.start()
        self.submit(inst)
        a, fd, _ = self.attempt(q)
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 1, OUT_DELIVERED,
                                            '250'))
        self.assertQueuedFailsClosed(inst, p, r'attempt %d recipient 1'
                                     % a['id'], a['qid'])

    def test_second_result_for_one_recipient(self):
        inst, p, q = self.start()
        self.submit(inst, ['x@remote.example', 'y@remote.example'])
        a, fd, _ = self.attempt(q, 2)
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 0, OUT_DEFERRED,
                                            '451 later', last=0))
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 0, OUT_DELIVERED,
                                            '250'))
        self.assertQueuedFailsClosed(inst, p, r'attempt %d recipient 0'
                                     % a['id'], a['qid'])

    def test_end_before_every_result(self):
        inst, p, q = self.start()
        self.submit(inst, ['x@remote.example', 'y@remote.example'])
        a, fd, _ = self.attempt(q, 2)
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 1, OUT_DELIVERED,
                                            '250', last=1))
        self.assertQueuedFailsClosed(inst, p, r'outbound ended attempt %d '
                                     r'at recipient 1' % a['id'], a['qid'])

    def test_last_result_without_the_end(self):
        inst, p, q = self.start()
        self.submit(inst, ['x@remote.example', 'y@remote.example'])
        a, fd, _ = self.attempt(q, 2)
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 1, OUT_DELIVERED,
                                            '250', last=0))
        q.send(T['IMSG_OUT_RESULT'], result(a['id'], 0, OUT_DELIVERED,
                                            '250', last=0))
        self.assertQueuedFailsClosed(inst, p, r'outbound did not end '
                                     r'attempt %d at recipient 0' % a['id'],
                                     a['qid'])

    def test_malformed_result_and_descriptor(self):
        for what, send in (
                ('control characters',
                 lambda q, a: q.send(T['IMSG_OUT_RESULT'], result(
                     a['id'], 0, OUT_FAILED, '550 no\r\nX-Evil: 1'))),
                ('result out of range',
                 lambda q, a: q.send(T['IMSG_OUT_RESULT'], result(
                     a['id'], 0, 3, '550'))),
                ('end mark out of range',
                 lambda q, a: q.send(T['IMSG_OUT_RESULT'], result(
                     a['id'], 0, OUT_FAILED, '550', last=2))),
                ('a descriptor',
                 lambda q, a: q.send(T['IMSG_OUT_RESULT'], result(
                     a['id'], 0, OUT_DELIVERED, '250'), fd=0)),
                ('a type of the parent',
                 lambda q, a: q.send(T['IMSG_DELIVER_REPLY'],
                                     u32(0) + u32(0) + s('')))):
            with self.subTest(what=what):
                inst, p, q = self.start()
                self.submit(inst)
                a, fd, _ = self.attempt(q)
                send(q, a)
                self.assertQueuedFailsClosed(inst, p, r'outbound',
                                             a['qid'])

    def test_relay_cred_without_smtprelayauth(self):
        # A compromised outbound of a server with no smtprelayauth asks
        # for the smarthost's credentials, again and again: it gets
        # "none" and empty strings, and the parent goes on.
        inst, p, q = self.start()
        peer = self.parent_peer
        for req in range(1, 51):
            peer.send(T['IMSG_RELAY_CRED'], u32(req))
        for req in range(1, 51):
            payload = peer.expect(T['IMSG_RELAY_CRED_REPLY'])
            got, status = struct.unpack_from('<II', payload, 0)
            user, off = read_str(payload, 8)
            password, off = read_str(payload, off)
            self.assertEqual((got, status, user, password),
                             (req, 1, '', ''))   # RELAY_CRED_NONE
        self.assertIsNone(p.poll())


if __name__ == '__main__':
    import unittest
    unittest.main()
