"""Outbound bounces: a 5xx from the remote server (at MAIL, RCPT, DATA or
the end of DATA) makes one RFC 3464 multipart/report per message, sent to
the envelope sender, naming every failed recipient, the remote host and its
answer; never for the null sender (DESIGN.md A6).  The
remote server is a real SMTP sink used as the smarthost.

    /usr/bin/python3 regress/run.py -k test_outbound_bounce
"""

import os
import re

from lib.oututil import (SETTLE, OutCase, bounces_in,
                         final_recipient, log_lines, make_message,
                         parse_dsn, submit, wait_for, wait_mail,
                         wait_queue_empty)

ALICE = 'alice@test.example'
REJECT = '550 5.1.1 <%s>: sink says there is no such mailbox here'


class Bounce(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')

    def bounce_for(self, inst, user='alice', n=1):
        """Wait for exactly n messages in user's Maildir (they must be
        bounces); returns the parsed DSNs [(raw, msg, permsg, rcpts)]."""
        got = [m for _, m in wait_mail(inst, user, n,
                                       extra=self.relay.describe())]
        out = []
        for raw in got:
            msg, per_msg, per_rcpt = parse_dsn(raw)
            out.append((raw, msg, per_msg, per_rcpt))
        return out

    def check_rcpt(self, fields, address, text, status_class='5'):
        self.assertEqual(final_recipient(fields).lower(), address.lower(),
                         fields)
        self.assertEqual(fields.get('action', '').lower(), 'failed', fields)
        self.assertRegex(fields.get('status', ''),
                         r'^%s\.\d{1,3}\.\d{1,3}$' % status_class, fields)
        diag = fields.get('diagnostic-code', '')
        self.assertIn(text, diag, 'Diagnostic-Code does not quote the '
                      'remote answer: %r' % fields)
        # The remote host is named (A6): by its address at least.
        self.assertIn(self.relay.host, ' '.join(fields.values()),
                      'the remote host is not named: %r' % fields)

    def test_rcpt_550_bounces(self):
        self.relay.configure(rcpt=REJECT % 'x@remote.example')
        inst = self.out_instance(relay=self.relay)
        msg = make_message('will bounce at RCPT', to='x@remote.example')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        [(raw, m, per_msg, rcpts)] = self.bounce_for(inst)
        self.assertEqual(len(rcpts), 1, rcpts)
        self.check_rcpt(rcpts[0], 'x@remote.example',
                        'sink says there is no such mailbox here')
        self.assertEqual(rcpts[0]['status'], '5.1.1')
        self.assertIn(ALICE, m.get('To', ''))
        self.assertIn('reporting-mta', per_msg, per_msg)
        # A bounce travels with the null sender (RFC 5321 4.5.5): the
        # local delivery's Return-Path says so.
        self.assertTrue(raw.startswith(b'Return-Path: <>'), raw[:200])
        # It carries the original headers (or message): the subject.
        self.assertIn(b'will bounce at RCPT', raw)
        self.assertEqual(self.relay.delivered, [])
        wait_queue_empty(inst)
        self.assertTrue(log_lines(inst, qid, 'x@remote.example'),
                        'no log line for %s' % qid)

    def test_end_of_data_550_bounces(self):
        self.relay.configure(dot='550 5.7.1 sink: message content refused')
        inst = self.out_instance(relay=self.relay)
        rcpts = ['x@remote.example', 'y@remote.example']
        submit(inst, ALICE, rcpts, make_message('refused at the dot'))
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        self.assertEqual(sorted(final_recipient(f) for f in fields), rcpts)
        for f, r in zip(sorted(fields, key=final_recipient), rcpts):
            self.check_rcpt(f, r, 'sink: message content refused')
            self.assertEqual(f['status'], '5.7.1')
        # The sink did get the data: it was one transaction, refused.
        self.assertEqual(len(self.relay.transactions), 1)
        self.assertEqual(self.relay.transactions[0].code, 550)
        wait_queue_empty(inst)

    def test_mail_from_5xx_bounces(self):
        self.relay.configure(mail='553 5.7.1 sink: sender address refused')
        inst = self.out_instance(relay=self.relay)
        submit(inst, ALICE, ['x@remote.example'], make_message('mail 553'))
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        self.assertEqual(len(fields), 1)
        self.check_rcpt(fields[0], 'x@remote.example',
                        'sink: sender address refused')
        wait_queue_empty(inst)

    def test_data_command_5xx_bounces(self):
        self.relay.configure(data='554 5.3.4 sink: no DATA today')
        inst = self.out_instance(relay=self.relay)
        submit(inst, ALICE, ['x@remote.example'], make_message('data 554'))
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        self.assertEqual(len(fields), 1)
        self.check_rcpt(fields[0], 'x@remote.example', 'sink: no DATA today')
        wait_queue_empty(inst)

    def test_one_bounce_two_failed_recipients(self):
        self.relay.configure(rcpt_replies={
            'x@remote.example': REJECT % 'x@remote.example',
            'y@remote.example': '554 5.7.1 sink: y is not welcome'})
        inst = self.out_instance(relay=self.relay)
        submit(inst, ALICE, ['x@remote.example', 'y@remote.example'],
               make_message('two failures'))
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        by = {final_recipient(f): f for f in fields}
        self.assertEqual(sorted(by), ['x@remote.example', 'y@remote.example'])
        self.check_rcpt(by['x@remote.example'], 'x@remote.example',
                        'sink says there is no such mailbox here')
        self.check_rcpt(by['y@remote.example'], 'y@remote.example',
                        'sink: y is not welcome')
        wait_queue_empty(inst)
        wait_mail(inst, 'alice', 1)     # still one, after settling

    def test_one_bounce_over_domains(self):
        """Recipients in two domains (two attempts) failing: still one
        bounce for the message."""
        self.relay.configure(rcpt='550 5.1.1 sink: nobody here')
        inst = self.out_instance(relay=self.relay)
        rcpts = ['x@one.example', 'y@two.example', 'z@two.example']
        submit(inst, ALICE, rcpts, make_message('failures in two domains'))
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        self.assertEqual(sorted(final_recipient(f) for f in fields), rcpts)
        wait_queue_empty(inst)
        wait_mail(inst, 'alice', 1)

    def test_partial_failure(self):
        """One recipient refused, one accepted: the accepted one gets the
        mail once, the bounce names only the refused one."""
        self.relay.configure(rcpt_replies={
            'x@remote.example': REJECT % 'x@remote.example'})
        inst = self.out_instance(relay=self.relay)
        msg = make_message('half')
        submit(inst, ALICE, ['x@remote.example', 'ok@remote.example'], msg)
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        self.assertEqual([final_recipient(f) for f in fields],
                         ['x@remote.example'])
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, SETTLE)
        txns = self.relay.delivered
        self.assertEqual(len(txns), 1, self.context(inst, self.relay))
        self.assertEqual(txns[0].rcpts, ['ok@remote.example'])
        self.assertTrue(txns[0].data.endswith(msg))

    def test_local_ok_remote_fails(self):
        """A local and a remote recipient: local delivered, remote
        bounced, one message each in alice's (the sender's) and bob's
        Maildirs."""
        self.relay.configure(rcpt='550 5.1.1 sink: gone')
        inst = self.out_instance(relay=self.relay)
        submit(inst, ALICE, ['bob@test.example', 'x@remote.example'],
               make_message('local and remote'))
        wait_mail(inst, 'bob', 1)
        [(raw, m, per_msg, fields)] = self.bounce_for(inst)
        self.assertEqual([final_recipient(f) for f in fields],
                         ['x@remote.example'])
        wait_queue_empty(inst)

    def test_no_bounce_for_null_sender(self):
        self.relay.configure(rcpt='550 5.1.1 sink: gone')
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, '', ['x@remote.example'],
                     make_message('from the null sender'))
        self.assertTrue(self.relay.wait_ended(1), self.relay.describe())
        wait_queue_empty(inst)
        lines = wait_for(lambda: [l for l in log_lines(inst, qid)
                                  if re.search(r'null sender|<>', l)], 5)
        self.assertTrue(lines, 'no log line says that %s is not bounced '
                        'because of its null sender\n%s'
                        % (qid, inst.log_tail(30)))
        # Nothing anywhere: no Maildir got a bounce, nothing went out.
        for u in ('alice', 'bob', 'postmaster', 'root'):
            self.assertEqual(inst.messages(u), [], u)
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(self.relay.connections, 1)
        self.assertEqual(self.relay.transactions, [])

    def test_bounce_to_remote_sender_goes_out(self):
        """The sender is remote: the bounce leaves through the relay with
        MAIL FROM:<>, a clean RFC 3464 report with CRLF line ends."""
        sender = 'carol@sender.example'
        self.relay.configure(rcpt_replies={
            'x@remote.example': REJECT % 'x@remote.example'})
        inst = self.out_instance(relay=self.relay)
        submit(inst, sender, ['x@remote.example'],
               make_message('bounce me home', sender=sender))
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(txn.mail_from, '')
        self.assertEqual(txn.rcpts, [sender])
        self.assertEqual(txn.bare, [])
        self.assert_no_protocol_errors(self.relay, inst)
        msg, per_msg, fields = parse_dsn(txn.data)
        self.assertEqual(len(fields), 1)
        self.check_rcpt(fields[0], 'x@remote.example',
                        'sink says there is no such mailbox here')
        for ln in txn.data.split(b'\r\n'):
            self.assertLessEqual(len(ln), 998, 'line over 998 octets in '
                                 'the bounce: %r' % ln[:80])
        wait_queue_empty(inst)
        self.assertEqual(inst.messages('alice'), [])

    def test_no_bounce_of_a_bounce(self):
        """The bounce to a remote sender is itself refused: it is dropped
        (logged), never bounced again, and the queue empties."""
        sender = 'carol@sender.example'
        self.relay.configure(rcpt='550 5.1.1 sink: nobody at all')
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, sender, ['x@remote.example'],
                     make_message('loop?', sender=sender))
        # The message, then its bounce: two sessions, nothing more.
        self.assertTrue(self.relay.wait_ended(2), self.relay.describe())
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, 2 * SETTLE)
        self.assertEqual(self.relay.connections, 2, self.relay.describe())
        mails = [s.transactions for s in self.relay.session_list()]
        self.assertEqual(mails, [[], []])
        froms = [c for s in self.relay.session_list() for c in s.commands
                 if c.upper().startswith(b'MAIL FROM')]
        self.assertEqual(len(froms), 2, froms)
        self.assertTrue(froms[1].upper().startswith(b'MAIL FROM:<>'),
                        froms)
        self.assertTrue([l for l in inst.log().splitlines()
                         if 'null sender' in l or
                         ('bounce' in l and '<>' in l)],
                        'the dropped bounce of %s is not logged\n%s'
                        % (qid, inst.log_tail(30)))
        for u in ('alice', 'bob'):
            self.assertEqual(bounces_in(inst.messages(u)), [], u)


if __name__ == '__main__':
    import unittest
    unittest.main()
