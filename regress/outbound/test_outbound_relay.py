"""Outbound through the smarthost (usesmtprelay = true; smtprelay =
"127.0.0.1:PORT"): what reaches a real SMTP server (regress/lib/sink.py)
is the exact message, dot-stuffed on the wire and never carrying a bare CR
or LF; one session carries every recipient of a domain; MAIL FROM names the
sender, with SIZE when the server offers it; EHLO falls back to HELO
(DESIGN.md A6).

    /usr/bin/python3 regress/run.py -k test_outbound_relay
"""

import os

from lib.oututil import (SETTLE, OutCase, header_block_ok,
                         lasterror, log_lines, make_message, submit,
                         wait_deferred, wait_mail, wait_queue_empty)

ALICE = 'alice@test.example'

# Lines a naive client or server gets wrong: a lone dot (would end DATA),
# leading dots (must be doubled on the wire and undone by the server),
# "." + CRLF-looking text, trailing spaces, tabs, 8-bit text, a 998-octet
# line, and an empty last line.
TRICKY_BODY = (b'first line\r\n'
               b'.\r\n'
               b'..\r\n'
               b'.leading dot\r\n'
               b'...three dots\r\n'
               b' .space then dot\r\n'
               b'.\tdot tab\r\n'
               b'trailing spaces   \r\n'
               b'\ttab first\r\n'
               b'caf\xc3\xa9 \xe2\x82\xac 8-bit\r\n'
               b'.' + b'y' * 997 + b'\r\n'
               + b'z' * 998 + b'\r\n'
               b'\r\n'
               b'.\r\n'
               b'last line\r\n')


class Smarthost(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')

    def check_exact(self, inst, txn, msg):
        """txn.data is header lines pymaild added + exactly msg."""
        self.assertTrue(txn.data.endswith(msg),
                        'the data the sink got does not end with the '
                        'message sent: got %r...%r (%d octets), sent %d '
                        'octets' % (txn.data[:200], txn.data[-200:],
                                    len(txn.data), len(msg)))
        prefix = txn.data[:len(txn.data) - len(msg)]
        self.assertTrue(header_block_ok(prefix),
                        'pymaild put something other than header lines '
                        'before the message: %r' % prefix)
        self.assertEqual(txn.bare, [], 'bare CR/LF on the wire')
        self.assertNotIn(b'\n', txn.raw.replace(b'\r\n', b''),
                         'bare LF on the wire')
        self.assertNotIn(b'\r', txn.raw.replace(b'\r\n', b''),
                         'bare CR on the wire')
        return prefix

    def test_exact_bytes_dot_stuffing(self):
        inst = self.out_instance(relay=self.relay)
        msg = make_message('exact bytes', TRICKY_BODY)
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        prefix = self.check_exact(inst, txn, msg)
        self.assertIn(b'Received:', prefix, 'no Received: line added')
        # On the wire every line that starts with a dot has it doubled,
        # so the lone '.' line went out as '..' and did not end DATA.
        self.assertIn(b'\r\n..\r\n', txn.raw)
        self.assertIn(b'\r\n...\r\n', txn.raw)
        self.assertIn(b'\r\n..leading dot\r\n', txn.raw)
        self.assertIn(b'\r\n....three dots\r\n', txn.raw)
        self.assertIn(b'\r\n .space then dot\r\n', txn.raw)
        self.assertTrue(txn.raw.endswith(b'last line\r\n.\r\n'),
                        txn.raw[-40:])
        self.assertEqual(txn.rcpts, ['x@remote.example'])
        self.assertEqual(txn.mail_from, ALICE)
        self.assert_no_protocol_errors(self.relay, inst)
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid, 'x@remote.example'),
                        'no log line names the queue id and recipient')

    def test_large_message_dots_everywhere(self):
        """~300 KB in lines that all start with a dot, of every length
        from 1 to 97 octets: whatever chunking the client does, a line
        start at a buffer boundary must still be stuffed."""
        inst = self.out_instance(relay=self.relay,
                                 smtpmaxmailsize=2000000)
        lines, n = [], 0
        while n < 300000:
            ln = b'.' + (b'%d.' % n) * 40
            ln = ln[:1 + (len(lines) % 97)]
            lines.append(ln)
            n += len(ln) + 2
        msg = make_message('large', b'\r\n'.join(lines) + b'\r\n')
        submit(inst, ALICE, ['big@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst, timeout=30)[0]
        self.check_exact(inst, txn, msg)
        self.assert_no_protocol_errors(self.relay, inst)

    def test_one_session_all_recipients(self):
        inst = self.out_instance(relay=self.relay)
        rcpts = ['r%d@remote.example' % i for i in range(1, 6)]
        msg = make_message('five recipients')
        submit(inst, ALICE, rcpts, msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(sorted(txn.rcpts), sorted(rcpts),
                         self.context(inst, self.relay))
        self.assertEqual(txn.mail_from, ALICE)
        wait_queue_empty(inst)
        # Nothing more comes: one session, one transaction.
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(self.relay.connections, 1,
                         self.context(inst, self.relay))
        self.assertEqual(len(self.relay.transactions), 1,
                         self.context(inst, self.relay))
        self.check_exact(inst, txn, msg)
        self.assert_no_protocol_errors(self.relay, inst)

    def test_recipients_over_one_message_split(self):
        """queued hands a domain's recipients to outbound in one message
        an attempt: 100 recipients of ~200 octets (more than the 16 KiB a
        message holds) go as two attempts, so two transactions; every
        recipient reaches the relay exactly once and the queue empties."""
        inst = self.out_instance(relay=self.relay)
        domain = '.'.join(c * 60 for c in 'abc') + '.example'
        rcpts = ['r%03d@%s' % (i, domain) for i in range(100)]
        msg = make_message('a hundred long recipients')
        submit(inst, ALICE, rcpts, msg)
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, SETTLE, inst=inst)
        txns = self.relay.delivered
        seen = sorted(r for t in txns for r in t.rcpts)
        self.assertEqual(seen, sorted(rcpts), self.context(inst, self.relay))
        self.assertEqual(len(txns), 2, self.context(inst, self.relay))
        for t in txns:
            self.check_exact(inst, t, msg)

    def test_each_recipient_once_over_domains(self):
        """Two recipients in each of two domains, one local: every remote
        recipient reaches the relay exactly once, the domains' recipients
        together; the local one is delivered locally and never sent."""
        inst = self.out_instance(relay=self.relay)
        rcpts = ['a1@one.example', 'bob@test.example', 'b1@two.example',
                 'a2@one.example', 'b2@two.example']
        msg = make_message('two domains')
        submit(inst, ALICE, rcpts, msg)
        got = [m for _, m in wait_mail(inst, 'bob', 1)]
        self.assertTrue(got[0].replace(b'\n', b'\r\n').endswith(msg))
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, SETTLE)
        txns = self.relay.delivered
        seen = sorted(r for t in txns for r in t.rcpts)
        self.assertEqual(seen, sorted(r for r in rcpts
                                      if not r.endswith('test.example')),
                         self.context(inst, self.relay))
        for t in txns:
            self.assertEqual(len({r.split('@')[1] for r in t.rcpts}), 1,
                             'one transaction per domain: %r' % t)
            self.assertEqual(len(t.rcpts), 2, 'a domain\'s recipients '
                             'are split over transactions: %r' % txns)
            self.check_exact(inst, t, msg)
        self.assert_no_protocol_errors(self.relay, inst)

    def test_mail_from_and_size(self):
        inst = self.out_instance(relay=self.relay)
        msg = make_message('size', (b'x' * 70 + b'\r\n') * 100)
        submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(txn.mail_from, ALICE)
        self.assertIn('SIZE', txn.mail_params, 'the sink offers SIZE but '
                      'MAIL FROM has none: %r' % txn.mail_line)
        size = txn.mail_params['SIZE']
        self.assertRegex(str(size), r'^[0-9]+$', txn.mail_line)
        # RFC 1870: an estimate of the octets sent after 354 (usually,
        # not necessarily, an overestimate): close to what was sent.
        self.assertLessEqual(abs(int(size) - len(txn.data)),
                             max(1024, len(txn.data) // 10),
                             '%r for %d octets sent'
                             % (txn.mail_line, len(txn.data)))

    def test_no_size_when_not_offered(self):
        self.relay.configure(size=None)
        inst = self.out_instance(relay=self.relay)
        submit(inst, ALICE, ['x@remote.example'], make_message('no size'))
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(txn.mail_params, {}, 'MAIL FROM carries '
                         'parameters the server did not offer: %r'
                         % txn.mail_line)
        self.assertEqual(txn.mail_from, ALICE)

    def test_helo_fallback(self):
        """A server that refuses EHLO (502) still gets the mail over
        HELO, without ESMTP parameters."""
        self.relay.configure(ehlo=False)
        inst = self.out_instance(relay=self.relay)
        msg = make_message('helo only', TRICKY_BODY)
        submit(inst, ALICE, ['x@remote.example'], msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(txn.session.helo[0], 'HELO')
        self.assertEqual(txn.session.helo[1], 'mail.test.example')
        self.assertEqual(txn.mail_params, {}, txn.mail_line)
        self.check_exact(inst, txn, msg)
        wait_queue_empty(inst)

    def test_no_pipelining(self):
        self.relay.configure(pipelining=False)
        inst = self.out_instance(relay=self.relay)
        rcpts = ['p1@remote.example', 'p2@remote.example']
        msg = make_message('no pipelining')
        submit(inst, ALICE, rcpts, msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(sorted(txn.rcpts), rcpts)
        self.check_exact(inst, txn, msg)
        wait_queue_empty(inst)

    def test_multiline_replies(self):
        """Multi-line greeting and replies are read to their last line."""
        self.relay.configure(greeting='220-sink.test first\n220-second\n'
                             '220 sink.test ready',
                             mail='250-2.1.0 sender\n250 2.1.0 Ok',
                             rcpt='250-2.1.5 one\n250-two\n250 2.1.5 Ok',
                             data='354-go\n354 End with .',
                             dot='250-2.0.0 one\n250 2.0.0 queued')
        inst = self.out_instance(relay=self.relay)
        rcpts = ['m1@remote.example', 'm2@remote.example']
        msg = make_message('multi-line')
        qid = submit(inst, ALICE, rcpts, msg)
        txn = self.wait_delivered(self.relay, 1, inst)[0]
        self.assertEqual(sorted(txn.rcpts), rcpts)
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(self.relay.connections, 1)
        self.assertFalse(inst.maildir_files('alice'), 'a bounce went to '
                         'alice for %s' % qid)

    def test_relay_given_as_address_only(self):
        """smtprelay without a port: the relay is reached on port 25
        (nothing listens there in the test namespace), so the mail is
        deferred, not lost or bounced."""
        if os.environ.get('PYMAILD_NETNS') != '1':
            self.skipTest('needs the private network namespace (port 25 '
                          'of the host might answer)')
        inst = self.out_instance(usesmtprelay=True, smtprelay='127.0.0.9')
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('port 25'))
        e = wait_deferred(inst, qid)
        self.assertIn('127.0.0.9', lasterror(e))
        self.assertFalse(inst.maildir_files('alice'))


if __name__ == '__main__':
    import unittest
    unittest.main()
