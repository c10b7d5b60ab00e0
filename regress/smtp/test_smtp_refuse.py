"""SMTP-in refusals at the end of DATA and at RCPT: a NUL octet in the
data, a message that has looped (more than 100 Received: lines), mail to a
postmaster that has no mailbox, and the log line every refusal leaves at
loglevel 2 (DESIGN.md A4, A7).

    /usr/bin/python3 regress/run.py regress/smtp/test_smtp_refuse.py
"""

import os
import re

from lib.smtputil import (SmtpCase, make_message, queue_id,
                          subject_of, wait_for, wait_mail,
                          MAXSIZE)

SENDER = 'carol@sender.example'


def received_lines(n):
    return tuple('Received: from hop%d.example by hop%d.example; '
                 'Thu, 1 Jan 2026 00:00:00 +0000' % (i, i + 1)
                 for i in range(n))


class NulInData(SmtpCase):

    def test_nul_refused_550_560_session_goes_on(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<%s>' % SENDER, 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        # The smuggling shape: a NUL where a server might end a line.
        r = c.data(make_message('nul', b'one\r\n\x00.\r\nMAIL FROM:<x@y>\r\n'
                                b'two\r\n'))
        self.assertEqual((r.code, r.enh), (550, '5.6.0'), r)
        c.expect('NOOP', 250)
        r = c.transaction(SENDER, ['alice@test.example'],
                          make_message('clean after nul'))
        self.assertEqual(r.code, 250, r)
        (_, got), = wait_mail(inst, 'alice', 1)
        self.assertEqual(subject_of(got), 'clean after nul')

    def test_nul_in_headers_and_at_end(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        for body in (b'X-A: \x00\r\n\r\nbody\r\n', b'body\r\nlast\x00\r\n',
                     b'\x00'):
            with self.subTest(body=body):
                c.expect('MAIL FROM:<%s>' % SENDER, 250)
                c.expect('RCPT TO:<alice@test.example>', 250)
                r = c.data(body)
                self.assertEqual((r.code, r.enh), (550, '5.6.0'), r)
        self.marker(inst, 'alice')


class ReceivedLimit(SmtpCase):

    def test_101_received_554_546(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<%s>' % SENDER, 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        # Mixed case, and folded: a continuation line is not a new one.
        hdrs = list(received_lines(101))
        hdrs[3] = 'RECEIVED: from x.example\r\n\tby y.example; now'
        hdrs[7] = 'received:from z.example'
        r = c.data(make_message('looped', extra_headers=hdrs))
        self.assertEqual((r.code, r.enh), (554, '5.4.6'), r)
        c.expect('NOOP', 250)
        self.marker(inst, 'alice')

    def test_100_received_accepted(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        r = c.transaction(SENDER, ['alice@test.example'],
                          make_message('100 hops',
                                       extra_headers=received_lines(100)))
        self.assertEqual(r.code, 250, r)
        (_, got), = wait_mail(inst, 'alice', 1)
        self.assertEqual(len(re.findall(rb'(?mi)^received:', got)), 101)

    def test_received_in_body_not_counted(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        body = ('\r\n'.join(received_lines(150)) + '\r\n').encode()
        r = c.transaction(SENDER, ['alice@test.example'],
                          make_message('quoted hops', body,
                                       extra_headers=received_lines(50)))
        self.assertEqual(r.code, 250, r)
        wait_mail(inst, 'alice', 1)


class PostmasterWithoutUser(SmtpCase):

    def test_postmaster_missing_accepted_then_bounced(self):
        # postmaster = "root" (the default) has no mailbox here: the mail
        # is taken (RFC 5321 4.5.1) and bounced at delivery, like mail to
        # an unknown user; the local sender gets the DSN.
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<bob@test.example>', 250)
        c.expect('RCPT TO:<postmaster@test.example>', 250)
        r = c.data(make_message('to a missing postmaster',
                                sender='bob@test.example'))
        self.assertEqual(r.code, 250, r)
        self.assertTrue(queue_id(r.text), r)
        (_, dsn), = wait_mail(inst, 'bob', 1)
        self.assertRegex(dsn, rb'(?i)report-type="?delivery-status')
        self.assertIn(b'postmaster@test.example', dsn)
        self.assertNotIn(b'quota', dsn.lower())
        # The words of RCPT's refusal of an unknown user: one table.
        self.assertIn(b'550 5.1.1 User unknown', dsn)


class RefusalReplies(SmtpCase):

    def test_every_recipient_disabled_does_not_blame_quota(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<%s>' % SENDER, 250)
        c.expect('RCPT TO:<bob@test.example>', 250)
        self.adm_ok(inst, 'chopt', 'bob', 'enabled', 'false')
        c2 = self.session(inst)
        c2.expect('MAIL FROM:<%s>' % SENDER, 250)
        self.assertTrue(wait_for(lambda: c2.cmd(
            'RCPT TO:<bob@test.example>').code == 550, 5, interval=0.1))
        r = c.data(make_message('bob went away'))
        self.assertEqual(r.code // 100, 5, r)
        self.assertNotIn('quota', r.text.lower(), r)
        self.assertNotIn('size', r.text.lower(), r)
        self.assertIn('disabled', r.text.lower(), r)
        self.marker(inst, 'alice')
        self.assertEqual(inst.maildir_files('bob'), [])


class RefusalLog(SmtpCase):
    """Every refusal at RCPT and at the end of DATA leaves one line at
    loglevel 2 naming the session, the client, the address and why."""

    def refusal_line(self, inst, address, reason):
        pat = re.compile(r'smtp-in session=[0-9a-f]{16} .*client=127\.0\.0\.1'
                         r'.*<%s>.*%s' % (re.escape(address), reason))

        def found():
            return [l for l in inst.log().splitlines() if pat.search(l)]
        wait_for(found, 3)
        lines = found()
        self.assertTrue(lines, 'no log line for <%s> (%s):\n%s'
                        % (address, reason, inst.log_tail(20)))
        return lines[0]

    def test_rcpt_refusals_logged(self):
        inst = self.smtp_instance(loglevel=2, noauthhosts=[])
        self.adm_ok(inst, 'adduser', 'dis', 'dispw')
        self.adm_ok(inst, 'chopt', 'dis', 'enabled', 'false')
        self.adm_ok(inst, 'adduser', 'full', 'fullpw')
        self.adm_ok(inst, 'chopt', 'full', 'mailboxsize', '1')
        self.adm_ok(inst, 'chopt', 'bob', 'maxmailsize', '100')
        c = self.session(inst)
        c.expect('MAIL FROM:<%s> SIZE=500' % SENDER, 250)
        c.expect('RCPT TO:<x@other.example>', 554, '5.7.1')
        c.expect('RCPT TO:<nobody@test.example>', 550, '5.1.1')
        c.expect('RCPT TO:<dis@test.example>', 550)
        c.expect('RCPT TO:<full@test.example>', 452, '4.2.2')
        c.expect('RCPT TO:<bob@test.example>', 552, '5.3.4')
        c.expect('RCPT TO:<no\x1b[31m spaces@x>', 501)
        for addr, why in (('x@other.example', 'reason="[^"]*[Rr]elay'),
                          ('nobody@test.example', 'reason="[^"]*unknown'),
                          ('dis@test.example', 'reason="[^"]*disabled'),
                          ('full@test.example', 'reason="[^"]*full'),
                          ('bob@test.example', 'reason="[^"]*too big')):
            with self.subTest(addr=addr):
                line = self.refusal_line(inst, addr, why)
                self.assertIn('result=rejected', line)
                self.assertIn('from=<%s>' % SENDER, line)
        # A syntax error is logged too, without the client's text.
        bad = [l for l in inst.log().splitlines()
               if 'client=127.0.0.1' in l and 'reason="501' in l]
        self.assertEqual(len(bad), 1, inst.log_tail(10))
        self.assertNotIn('\x1b', inst.log())

    def test_data_refusals_logged(self):
        inst = self.smtp_instance(loglevel=2)
        c = self.session(inst)
        cases = (
            ('nul', b'a\x00b\r\n', 'reason="[^"]*NUL'),
            ('barelf', b'a\nb\r\n', 'reason="[^"]*[Bb]are'),
            ('longline', b'x' * 1200 + b'\r\n', 'reason="[^"]*998'),
            ('toobig', (b'y' * 70 + b'\r\n') * (MAXSIZE // 70 + 10),
             'reason="[^"]*too big'),
            ('loop', make_message('loop', extra_headers=received_lines(
                101)), 'reason="[^"]*(loop|Received)'),
        )
        for user, body, why in cases:
            with self.subTest(case=user):
                rcpt = '%s@other.example' % user
                c.expect('MAIL FROM:<%s>' % SENDER, 250)
                c.expect('RCPT TO:<%s>' % rcpt, 250)
                r = c.data(body)
                self.assertEqual(r.code // 100, 5, r)
                line = self.refusal_line(inst, rcpt, why)
                self.assertIn('result=rejected', line)
