"""Malformed frames from a compromised helper: every payload reader of
the parent against truncated payloads and trailing bytes, frames that
claim more than 16 KiB or less than a header, strings that run past the
payload, hold a NUL or exceed their field, a descriptor announced and
not sent. Each fails closed: exit 1, the log names the helper and why,
nothing written outside the Maildirs. Descriptors sent without being
announced stay bounded.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_payloads.py
"""

import os
import tempfile

from lib import hostile
from lib.hostile import T, s, u32, u64, deliver
from lib.hostile import pmtest

AUTH = u32(1) + s('alice') + s('secret') + s('192.0.2.1')
RCPT = u32(1) + s('alice') + u64(0) + u32(0)
LOGIN = u32(9) + s('alice') + s('secret') + s('192.0.2.1')
OPEN = u32(1) + u32(0)
UPDATE = u32(1) + u32(1) + u32(0)
RELEASE = u32(1)
REFRESH = u32(0) + u32(0) + s('')

# role, type, a well-formed payload, whether a session of alice is open
# (sid 1), and the lengths at which a cut leaves a well-formed prefix.
READERS = [
    ('smtpd', 'IMSG_AUTH', AUTH, False, ()),
    ('smtpd', 'IMSG_RCPT_CHECK', RCPT, False, ()),
    ('pop3d', 'IMSG_AUTH', AUTH, False, ()),
    ('pop3d', 'IMSG_POP3_LOGIN', LOGIN, False, ()),
    ('pop3d', 'IMSG_POP3_OPEN', OPEN, True, ()),
    ('pop3d', 'IMSG_POP3_UPDATE', UPDATE, True, (8,)),
    ('pop3d', 'IMSG_POP3_RELEASE', RELEASE, True, ()),
    ('queued', 'IMSG_DELIVER', deliver(1), False, ()),
    ('queued', 'IMSG_STATS_REPLY', u32(0), False, ()),
    ('mxcache', 'IMSG_MX_REFRESH_DONE', REFRESH, False, ()),
    ('queued', 'IMSG_QUEUE_OP_REPLY', u32(1) + s('0123456789abcdef '
                                                 'removed\n'), False, ()),
    ('queued', 'IMSG_METRICS_REPLY', s('relayed_total 3\n'), False, ()),
    ('smtpd', 'IMSG_METRICS_REPLY', s('smtp_x{le="+Inf"} 3\n'), False, ()),
    ('pop3d', 'IMSG_METRICS_REPLY', s('pop3_x_sum 0.25\n'), False, ()),
    ('outbound', 'IMSG_RELAY_CRED', u32(1), False, ()),
    ('queued', 'IMSG_DELIVER_CANCEL', s(hostile.QID), False, ()),
]


def cuts(payload, whole):
    return sorted(n for n in {0, 2, 6, len(payload) - 1}
                  if 0 <= n < len(payload) and n not in whole)


class Payloads(hostile.HostileCase):

    def start(self, role, session=False, hello=True):
        inst, p, peer = self.start_hostile(role, users=['alice'],
                                           hello=hello)
        if session:
            hostile.put_message(inst, 'alice', b'Subject: a\n\nalice\n',
                                '1700000000')
            result, count, _ = hostile.pop3_login(peer, 1, 'alice')
            self.assertEqual((result, count), (0, 1))
        return inst, p, peer

    def send(self, inst, peer, type_, payload):
        if type_ != 'IMSG_DELIVER':
            peer.send(T[type_], payload)
            return
        with tempfile.TemporaryFile(dir=inst.dir) as f:
            f.write(b'Subject: x\r\n\r\nx\r\n')
            f.flush()
            peer.send(T[type_], payload, fd=f.fileno())

    def malformed(self, role, type_, payload, session=False,
                  needle=r'malformed message', hello=True):
        inst, p, peer = self.start(role, session, hello)
        snap = self.outside(inst)
        self.send(inst, peer, type_, payload)
        self.assertFailsClosed(inst, p, r'%s \(pid \d+\): %s' % (role,
                                                                 needle))
        self.assertEqual(self.outside(inst), snap)
        self.assertEqual(inst.messages('alice')[1:], [])

    def test_truncated(self):
        for role, type_, good, session, whole in READERS:
            for n in cuts(good, whole):
                with self.subTest(role=role, type=type_, cut=n):
                    self.malformed(role, type_, good[:n], session)

    def test_trailing_bytes(self):
        for role, type_, good, session, _ in READERS:
            with self.subTest(role=role, type=type_):
                self.malformed(role, type_, good + b'\0', session)

    def test_hello(self):
        # The first word a helper says: cut, padded, another role's,
        # or said twice.
        for payload in (b'', u32(2)[:2], u32(3) + b'\0', u32(4)):
            with self.subTest(payload=payload):
                self.malformed('queued', 'IMSG_HELLO', payload, hello=False)
        with self.subTest(payload='twice'):
            self.malformed('queued', 'IMSG_HELLO', u32(3))

    def test_strings(self):
        cases = [
            # past the end of the payload
            ('smtpd', 'IMSG_AUTH', u32(1) + u32(1000) + b'alice'),
            ('smtpd', 'IMSG_AUTH', u32(1) + u32(0xffffffff) + b'alice'),
            # a NUL inside
            ('smtpd', 'IMSG_AUTH', u32(1) + s('ali\0ce') + s('secret') +
             s('192.0.2.1')),
            ('smtpd', 'IMSG_AUTH', u32(1) + s('alice') + s('sec\0ret') +
             s('192.0.2.1')),
            ('smtpd', 'IMSG_RCPT_CHECK', u32(1) + s('alice\0') + u64(0) +
             u32(0)),
            ('pop3d', 'IMSG_POP3_LOGIN', u32(9) + s('\0alice') +
             s('secret') + s('192.0.2.1')),
            ('queued', 'IMSG_DELIVER', deliver(1, user='alice\0/../x')),
            ('queued', 'IMSG_DELIVER', deliver(1, qid='0123\0')),
            ('queued', 'IMSG_DELIVER', deliver(1, rcpt='a\0@b')),
            # longer than the field
            ('smtpd', 'IMSG_AUTH', u32(1) + s('a' * 256) + s('secret') +
             s('192.0.2.1')),
            ('smtpd', 'IMSG_AUTH', u32(1) + s('alice') + s('p' * 1024) +
             s('192.0.2.1')),
            ('pop3d', 'IMSG_POP3_LOGIN', u32(9) + s('alice') + s('secret') +
             s('1' * 64)),
            ('queued', 'IMSG_DELIVER', deliver(1, user='a' * 65)),
            ('queued', 'IMSG_DELIVER', deliver(1, qid='0' * 17)),
            ('queued', 'IMSG_DELIVER', deliver(1, sender='s' * 512)),
            # a header in a field
            ('queued', 'IMSG_DELIVER', deliver(1, sender='a@b\r\nX-Evil: 1')),
            ('queued', 'IMSG_DELIVER', deliver(1, rcpt='a@b\nX-Evil: 1')),
            ('queued', 'IMSG_DELIVER', deliver(
                1, authres='Authentication-Results: x; spf=pass\r\nX-Evil: 1')),
            ('queued', 'IMSG_DELIVER', deliver(
                1, authres='X-Evil: 1\r\n\tAuthentication-Results: x')),
            ('queued', 'IMSG_DELIVER', deliver(
                1, authres='Authentication-Results: x;\n\tspf=pass')),
            # a cancel names one queue id: 16 lower-case hex digits
            ('queued', 'IMSG_DELIVER_CANCEL', s('0123456789ABCDEF')),
            ('queued', 'IMSG_DELIVER_CANCEL', s('0123456789abcde')),
            ('queued', 'IMSG_DELIVER_CANCEL', s('0123456789abcdef0')),
            ('queued', 'IMSG_DELIVER_CANCEL', s('0123456789abcde\0')),
            ('queued', 'IMSG_DELIVER_CANCEL', s('')),
            ('queued', 'IMSG_DELIVER_CANCEL', s('../../../etc/pas')),
            # what pymailadm prints: no terminal escapes, no NUL, ok 0/1
            ('queued', 'IMSG_QUEUE_OP_REPLY', u32(1) + s('\x1b[2J gone')),
            ('queued', 'IMSG_QUEUE_OP_REPLY', u32(0) + s('a\0b')),
            ('queued', 'IMSG_QUEUE_OP_REPLY', u32(2) + s('removed')),
            # metrics: a name, a space, digits, a line end; nothing else
            ('queued', 'IMSG_METRICS_REPLY', s('relayed_total 3')),
            ('queued', 'IMSG_METRICS_REPLY', s('Relayed 3\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a 1\n# TYPE x\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a -1\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a 1' + '0' * 30 + '\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a 1.\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a 1.1234567\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a{r="x"}} 1\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a{r=x} 1\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a{r="x y"} 1\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a{r="x\\"} 1\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('a{r="x",s="y"} 1\n')),
            # each helper its own names: none answers for another
            ('smtpd', 'IMSG_METRICS_REPLY', s('queue_messages 0\n')),
            ('smtpd', 'IMSG_METRICS_REPLY', s('smtp_a 1\npop3_a 1\n')),
            ('pop3d', 'IMSG_METRICS_REPLY', s('smtp_sessions_open 9\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('smtp_sessions_open 9\n')),
            ('queued', 'IMSG_METRICS_REPLY', s('uptime_seconds 9\n')),
        ]
        for role, type_, payload in cases:
            with self.subTest(role=role, type=type_, payload=payload[:40]):
                self.malformed(role, type_, payload)

    def test_frame_length(self):
        for claim, body in ((16385, 16369), (65535, 16384), (0, 0), (15, 0),
                            (8, 8)):
            with self.subTest(claim=claim):
                inst, p, peer = self.start('smtpd')
                peer.send(T['IMSG_RCPT_CHECK'], b'\0' * body, length=claim)
                self.assertFailsClosed(inst, p, r'smtpd \(pid \d+\): bad '
                                       r'message framing')

    def test_descriptor_announced_not_sent(self):
        inst, p, peer = self.start('queued')
        peer.send(T['IMSG_DELIVER'], deliver(1), flags=hostile.HASFD)
        self.assertFailsClosed(inst, p, r'queued \(pid \d+\): bad message '
                               r'framing')
        self.assertEqual(inst.messages('alice'), [])

    def test_descriptors_not_announced_stay_bounded(self):
        # Descriptors come before the message that takes them, so the
        # parent cannot tell one that no message will take: it keeps at
        # most a few batches' worth (IMSG_FDQ_MAX, 96) and closes the
        # rest; all go with the channel.
        inst, p, peer = self.start('queued')
        before = len(self.parent_fds(p))
        ends = []
        for _ in range(300):
            r, w = os.pipe()
            ends.append(r)
            peer.send(T['IMSG_STATS_REPLY'], u32(0), fd=w, flags=0)
            os.close(w)
        self.addCleanup(lambda: [os.close(r) for r in ends])
        self.assertStatusAnswers(inst, peer)
        # The status request's own connection may still be closing.
        pmtest.wait_for(lambda: len(self.parent_fds(p)) - before <= 96,
                        timeout=5)
        self.assertLessEqual(len(self.parent_fds(p)) - before, 96)
        self.assertRunning(inst, p)


if __name__ == '__main__':
    import unittest
    unittest.main()
