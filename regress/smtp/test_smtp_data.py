"""SMTP-in, DATA and delivery: what lands in the Maildir (Return-Path,
Received, exact body bytes, LF line ends, S=size), pipelining, the SMTP
smuggling variants, bare CR/LF in commands, long lines, the size limit,
the per-message log line (DESIGN.md A3, A4, A7, A9).

    /usr/bin/python3 regress/run.py -k test_smtp_data
"""

import datetime
import email.utils
import os
import re

from lib.smtputil import (CRLF, HOSTNAME, MAXSIZE, SmtpCase,
                          added_prefix, dot_stuff, header,
                          maildir_size_ok, make_message, queue_id,
                          smtplib_send, subject_of, tmp_files, wait_for,
                          wait_mail)

SENDER = 'carol@sender.example'


class Delivery(SmtpCase):

    def check_received(self, data, helo, addr, proto, qid):
        recs = header(data, 'Received')
        self.assertTrue(recs, 'no Received: header in %r' % data[:500])
        r = recs[0]
        self.assertIn(helo, r, 'Received: must name the HELO name')
        self.assertRegex(r, r'(?<![0-9.])%s(?![0-9])' % re.escape(addr),
                         'Received: must name the client address')
        self.assertIn(HOSTNAME, r, 'Received: must name serverhostname')
        m = re.search(r'\bwith\s+([A-Za-z0-9]+)', r)
        self.assertTrue(m, 'Received: has no "with PROTOCOL": %r' % r)
        self.assertEqual(m.group(1), proto, r)
        self.assertIn(qid, r, 'Received: must name the queue id')
        self.assertIn(';', r, 'Received: has no date: %r' % r)
        when = email.utils.parsedate_to_datetime(r.rsplit(';', 1)[1].strip())
        self.assertIsNotNone(when.tzinfo, r)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 3600, r)

    def test_delivered_to_maildir(self):
        inst = self.smtp_instance()
        s = self.smtp(inst, helo='helo-name.client.example')
        s.ehlo()
        msg = make_message('first delivery', b'line 1\r\nline 2\r\n')
        qid = smtplib_send(s, SENDER, ['alice@test.example'], msg)
        s.quit()
        (path, data), = wait_mail(inst, 'alice', 1)
        self.assertEqual(os.path.basename(os.path.dirname(path)), 'new')
        self.assertNotIn(b'\r', data, 'Maildir files use LF line ends')
        self.assertTrue(data.startswith(b'Return-Path: <%s>\n'
                                        % SENDER.encode()),
                        'first line must be Return-Path: %r' % data[:80])
        prefix = added_prefix(data, msg)
        self.check_received(prefix, 'helo-name.client.example', '127.0.0.1',
                            'ESMTP', qid)
        self.assertEqual(inst.maildir_files('bob'), [])
        self.assertEqual(tmp_files(inst), {})

    def test_maildir_name_has_size(self):
        inst = self.smtp_instance()
        self.send_mail(inst, 'sized', body=b'abc\r\n' * 100)
        (path, data), = wait_mail(inst, 'alice', 1)
        s, real = maildir_size_ok(path)
        self.assertIsNotNone(s, 'no S=<size> in %r' % os.path.basename(path))
        self.assertEqual(s, real, os.path.basename(path))
        self.assertEqual(real, len(data))

    def test_received_after_helo_says_smtp(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        c.expect('HELO old.client.example', 250)
        msg = make_message('helo')
        r = c.transaction(SENDER, ['alice@test.example'], msg)
        self.assertEqual(r.code, 250, r)
        (_, data), = wait_mail(inst, 'alice', 1)
        self.check_received(added_prefix(data, msg), 'old.client.example',
                            '127.0.0.1', 'SMTP', queue_id(r.text))

    def test_received_names_real_client_address(self):
        inst = self.smtp_instance()
        c = self.client(inst, source='127.0.0.2')
        c.ehlo('two.client.example')
        msg = make_message('from .2')
        r = c.transaction(SENDER, ['alice@test.example'], msg)
        self.assertEqual(r.code, 250, r)
        (_, data), = wait_mail(inst, 'alice', 1)
        self.check_received(added_prefix(data, msg), 'two.client.example',
                            '127.0.0.2', 'ESMTP', queue_id(r.text))

    def test_null_sender_return_path(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        msg = make_message('bounce-like', sender='MAILER-DAEMON@x.example')
        r = c.transaction('', ['alice@test.example'], msg)
        self.assertEqual(r.code, 250, r)
        (_, data), = wait_mail(inst, 'alice', 1)
        self.assertTrue(data.startswith(b'Return-Path: <>\n'), data[:80])
        added_prefix(data, msg)

    def test_exact_body_bytes(self):
        # Dot-unstuffing, 8-bit bytes, a 998-octet line, odd whitespace:
        # stored exactly, only CRLF -> LF.
        inst = self.smtp_instance()
        lines = [
            b'From: <carol@sender.example>',
            b'Subject: exact',
            b'Message-ID: <exact@test.invalid>',
            b'MIME-Version: 1.0',
            b'Content-Type: text/plain; charset=utf-8',
            b'Content-Transfer-Encoding: 8bit',
            b'',
            b'.x',
            b'..',
            b'.',
            b'.. two',
            b' .leading space',
            b'tab\there',
            b'trailing spaces   ',
            b'',
            b'',
            bytes(range(0x80, 0x100)),
            bytes(range(0x20, 0x7f)),
            b'\x01\x02\x1b[0m\x7f',
            'gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, \U0001f600'.encode(),
            b'a' * 998,
            b'.' + b'b' * 997,
            b'end',
        ]
        msg = CRLF.join(lines) + CRLF
        wire = dot_stuff(msg)
        self.assertIn(b'\r\n..x\r\n', wire)
        self.assertIn(b'\r\n...\r\n', wire)
        c = self.session(inst)
        c.expect('MAIL FROM:<%s> BODY=8BITMIME' % SENDER, 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        r = c.data(msg)
        self.assertEqual(r.code, 250, r)
        (path, data), = wait_mail(inst, 'alice', 1)
        added_prefix(data, msg)
        self.assertIn(b'\n.x\n..\n.\n.. two\n', data)
        s, real = maildir_size_ok(path)
        self.assertEqual(s, real)

    def test_two_recipients_one_copy_each(self):
        inst = self.smtp_instance()
        qid, msg = self.send_mail(inst, 'for both',
                                  rcpts=('alice@test.example',
                                         'bob@test.example'))
        for u in ('alice', 'bob'):
            (_, data), = wait_mail(inst, u, 1)
            added_prefix(data, msg)
            self.assertIn(qid, header(data, 'Received')[0])

    def test_two_transactions_one_session(self):
        inst = self.smtp_instance()
        s = self.smtp(inst)
        s.ehlo()
        m1, m2 = make_message('one'), make_message('two')
        q1 = smtplib_send(s, SENDER, ['alice@test.example'], m1)
        q2 = smtplib_send(s, SENDER, ['alice@test.example'], m2)
        s.quit()
        self.assertNotEqual(q1, q2)
        got = wait_mail(inst, 'alice', 2)
        self.assertEqual(sorted(subject_of(b) for _, b in got),
                         ['one', 'two'])

    def test_log_line_per_message(self):
        inst = self.smtp_instance()
        qid, _ = self.send_mail(inst, 'logged', sender='dave@sender.example')
        wait_mail(inst, 'alice', 1)

        def lines():
            return [l for l in inst.log().splitlines()
                    if 'result=queued' in l and
                    re.search(r'\bid=%s(?![\w.-])' % re.escape(qid), l)]
        wait_for(lines, 5)
        found = lines()
        self.assertEqual(len(found), 1, 'want one "result=queued id=%s" '
                         'line, log:\n%s' % (qid, inst.log_tail(40)))
        l = found[0]
        self.assertRegex(l, r'\bsession=\S+')
        self.assertIn('from=<dave@sender.example>', l)
        self.assertIn('to=<alice@test.example>', l)
        self.assertRegex(l, r'\bsize=\d+')


class Pipelining(SmtpCase):

    def test_pipelined_transaction_one_write(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.send(b'MAIL FROM:<carol@sender.example>\r\n'
               b'RCPT TO:<alice@test.example>\r\n'
               b'RCPT TO:<bob@test.example>\r\n'
               b'DATA\r\n')
        codes = [c.reply().code for _ in range(4)]
        self.assertEqual(codes, [250, 250, 250, 354])
        msg = make_message('pipelined')
        c.send(dot_stuff(msg) + b'.\r\nQUIT\r\n')
        r = c.reply()
        self.assertEqual(r.code, 250, r)
        self.assertTrue(queue_id(r.text), r)
        c.reply()   # 221
        for u in ('alice', 'bob'):
            (_, data), = wait_mail(inst, u, 1)
            added_prefix(data, msg)

    def test_pipelined_replies_in_order_with_errors(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.send(b'NOOP\r\n'
               b'RCPT TO:<alice@test.example>\r\n'
               b'MAIL FROM:<carol@sender.example>\r\n'
               b'RCPT TO:<nobody@test.example>\r\n'
               b'RCPT TO:<alice@test.example>\r\n'
               b'VRFY alice\r\n'
               b'BOGUS\r\n'
               b'RCPT TO:<bob@test.example>\r\n'
               b'DATA\r\n')
        want = [250, 503, 250, 550, 250, 252, 500, 250, 354]
        got = [c.reply().code for _ in want]
        self.assertEqual(got, want)
        c.send(dot_stuff(make_message('in order')) + b'.\r\n')
        r = c.reply()
        self.assertEqual(r.code, 250, r)
        wait_mail(inst, 'alice', 1)
        wait_mail(inst, 'bob', 1)

    def test_many_commands_one_write(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.send(b''.join(b'NOOP %d\r\n' % i if i % 2 else b'RSET\r\n'
                        for i in range(200)))
        codes = [c.reply().code for _ in range(200)]
        self.assertEqual(codes, [250] * 200)
        c.expect('QUIT', 221)


# SMTP smuggling: a fake end of data followed by a second transaction.
SMUGGLE_SEPARATORS = {
    'lf_dot_lf': b'\n.\n',
    'lf_dot_crlf': b'\n.\r\n',
    'crlf_dot_cr': b'\r\n.\r',
    'crlf_dot_lf': b'\r\n.\n',
    'cr_dot_crlf': b'\r.\r\n',
    'cr_dot_cr': b'\r.\r',
}
# Data with bare CR or LF but no fake terminator.
BARE_PAYLOADS = {
    'bare_lf_line': b'Subject: first\r\n\r\nline one\nline two\r\n',
    'bare_lf_lines': b'Subject: first\n\nline one\nline two\n\r\n',
    'bare_cr': b'Subject: first\r\n\r\nline one\rline two\r\n',
    'bare_lf_in_header': b'Subject: first\nX-Y: z\r\n\r\nbody\r\n',
    'cr_cr_lf': b'Subject: first\r\n\r\nbody\r\r\n',
}


def smuggle_payload(sep):
    return (b'From: <carol@sender.example>\r\nSubject: first\r\n\r\n'
            b'first body' + sep +
            b'MAIL FROM:<evil@other.example>\r\n'
            b'RCPT TO:<bob@test.example>\r\n'
            b'DATA\r\n'
            b'From: <evil@other.example>\r\nSubject: smuggled\r\n\r\n'
            b'smuggled body\r\n')


class Smuggling(SmtpCase):
    """Each payload is sent raw (not dot-stuffed) after DATA and followed
    by the real <CRLF>.<CRLF>.  The whole of it must get one 550 5.5.2,
    nothing is delivered, and a following transaction in the same session
    is delivered alone."""

    def run_payload(self, payload):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        self.assertTrue(payload.endswith(b'\r\n'))
        c.send(payload + b'.\r\n')
        r = c.reply(what='the end of the data')
        self.assertEqual((r.code, r.enh), (550, '5.5.2'), r)
        extra = c.pending(0.5)
        self.assertEqual(extra, b'', 'more replies than one: the data was '
                         'split into several messages')
        legit = make_message('legit')
        r = c.transaction(SENDER, ['alice@test.example'], legit)
        self.assertEqual(r.code, 250, r)
        c.expect('QUIT', 221)
        (_, data), = wait_mail(inst, 'alice', 1)
        added_prefix(data, legit)
        self.assertNotIn(b'smuggled', data)
        self.assertNotIn(b'first body', data)
        self.assert_only(inst, {'alice': ['legit']})


def _add_smuggling_tests():
    for name, sep in SMUGGLE_SEPARATORS.items():
        def t(self, sep=sep):
            self.run_payload(smuggle_payload(sep))
        t.__name__ = 'test_smuggle_%s' % name
        setattr(Smuggling, t.__name__, t)
    for name, payload in BARE_PAYLOADS.items():
        def t(self, payload=payload):
            self.run_payload(payload)
        t.__name__ = 'test_%s_in_data' % name
        setattr(Smuggling, t.__name__, t)


_add_smuggling_tests()


class CommandFraming(SmtpCase):

    BAD = {
        'lf': b'NOOP\n',
        'lf_inside': b'NO\nOP\r\n',
        'cr_inside': b'NOOP\rX\r\n',
        'cr_cr_lf': b'NOOP\r\r\n',
        'leading_lf': b'\nNOOP\r\n',
        'mail_lf': b'MAIL FROM:<carol@sender.example>\n',
    }

    def test_bare_cr_lf_in_command_500_and_close(self):
        inst = self.smtp_instance()
        for name, bad in self.BAD.items():
            with self.subTest(variant=name):
                c = self.session(inst)
                c.send(bad)
                r = c.reply(what='the bad line %r' % bad)
                self.assertEqual((r.code, r.enh), (500, '5.5.2'), r)
                self.assertTrue(c.closed_by_server(5),
                                'connection still open after %r' % bad)
                c.close()
        self.assert_healthy(inst)

    def test_bare_lf_after_data_command_nothing_delivered(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.send(b'DATA\nSubject: sneaky\r\n\r\nbody\r\n.\r\n')
        r = c.reply()
        self.assertEqual((r.code, r.enh), (500, '5.5.2'), r)
        self.assertTrue(c.closed_by_server(5))
        self.marker(inst)
        self.assertEqual(len(inst.maildir_files('alice')), 1)

    def test_command_too_long(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        for n in (600, 2000, 65536):
            with self.subTest(length=n):
                r = c.cmd('NOOP ' + 'x' * n)
                self.assertEqual((r.code, r.enh), (500, '5.5.2'), r)
                self.assertIn('Line too long', r.text)
                c.expect('NOOP', 250)
                c.expect('RSET', 250)

    def test_command_too_long_keeps_transaction(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        r = c.cmd('RCPT TO:<' + 'a' * 600 + '@test.example>')
        self.assertEqual((r.code, r.enh), (500, '5.5.2'), r)
        c.expect('RCPT TO:<alice@test.example>', 250)
        msg = make_message('after long')
        r = c.data(msg)
        self.assertEqual(r.code, 250, r)
        (_, data), = wait_mail(inst, 'alice', 1)
        added_prefix(data, msg)

    def test_command_under_limit_ok(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        # 'NOOP ' + 400 + CRLF: well under 512.
        c.expect('NOOP ' + 'y' * 400, 250)


class LongDataLines(SmtpCase):

    def refused_line(self, n):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        r = c.data(make_message('long line', b'short\r\n' + b'L' * n +
                                b'\r\nafter\r\n'))
        self.assertEqual((r.code, r.enh), (550, '5.5.2'), r)
        legit = make_message('legit')
        r = c.transaction(SENDER, ['alice@test.example'], legit)
        self.assertEqual(r.code, 250, r)
        wait_mail(inst, 'alice', 1)
        self.assert_only(inst, {'alice': ['legit']})

    def test_line_2000_octets_550(self):
        self.refused_line(2000)

    def test_line_999_octets_550(self):
        self.refused_line(999)

    def test_line_998_octets_ok(self):
        inst = self.smtp_instance()
        self.send_mail(inst, '998', body=b'M' * 998 + b'\r\n')
        (_, data), = wait_mail(inst, 'alice', 1)
        self.assertIn(b'\n' + b'M' * 998 + b'\n', data)


class SizeLimit(SmtpCase):

    def oversize(self, mail_params=''):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>%s' % mail_params, 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        line = b'o' * 76 + b'\r\n'
        n = MAXSIZE * 3 // 2 // len(line)
        c.send(make_message('too big', line * n))
        # Read to its end: nothing is answered before the terminator.
        early = c.pending(0.5)
        self.assertEqual(early, b'', 'the server answered before the end '
                         'of the data')
        c.send(b'.\r\n')
        r = c.reply(what='the end of an oversize message')
        self.assertEqual((r.code, r.enh), (552, '5.3.4'), r)
        c.expect('NOOP', 250)
        fits = make_message('fits', line * (MAXSIZE // 2 // len(line)))
        r = c.transaction(SENDER, ['alice@test.example'], fits)
        self.assertEqual(r.code, 250, r)
        (_, data), = wait_mail(inst, 'alice', 1)
        added_prefix(data, fits)
        self.assert_only(inst, {'alice': ['fits']})

    def test_oversize_without_size_param_552(self):
        self.oversize()

    def test_oversize_with_understated_size_552(self):
        self.oversize(' SIZE=1000')
