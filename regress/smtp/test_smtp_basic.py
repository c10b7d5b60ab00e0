"""SMTP-in, the conversation: greeting, EHLO/HELO, the small commands,
command order, error counting, MAIL FROM and its parameters
(DESIGN.md A4, A7).

    /usr/bin/python3 regress/run.py -k test_smtp_basic
"""

import os

from lib.smtputil import (HELO, HOSTNAME, MAXSIZE, ProtocolError,
                          SmtpCase, make_message, queue_id, wait_mail)


class Greeting(SmtpCase):

    def test_greeting_line(self):
        inst = self.smtp_instance(serverhostname='mx1.greeting.example')
        c = self.client(inst)
        self.assertEqual(c.greeting.raw,
                         b'220 mx1.greeting.example ESMTP pymaild\r\n')

    def test_ehlo_keywords(self):
        inst = self.smtp_instance()
        s = self.smtp(inst)
        code, text = s.ehlo()
        self.assertEqual(code, 250, text)
        f = s.esmtp_features
        for kw in ('pipelining', '8bitmime', 'enhancedstatuscodes',
                   'smtputf8'):
            self.assertIn(kw, f, 'EHLO does not advertise %s: %r'
                          % (kw.upper(), text))
        self.assertEqual(f.get('size'), str(MAXSIZE),
                         'SIZE must advertise smtpmaxmailsize: %r' % text)
        self.assertIn('auth', f, 'EHLO does not advertise AUTH: %r' % text)
        self.assertEqual(set(f['auth'].upper().split()), {'PLAIN', 'LOGIN'},
                         'AUTH mechanisms: %r' % text)
        self.assertNotIn('starttls', f, 'STARTTLS without tls configured')

    def test_ehlo_reply_names_server(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        r = c.ehlo()
        self.assertGreater(len(r.lines), 1, 'EHLO reply is one line: %r'
                           % r)
        self.assertEqual(r.lines[0].split()[0], HOSTNAME, r)

    def test_ehlo_without_domain_501(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        c.expect('EHLO', 501)
        c.ehlo()

    def test_helo(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        r = c.expect('HELO ' + HELO, 250)
        self.assertEqual(len(r.lines), 1, 'HELO reply must be one line')
        r = c.transaction('carol@sender.example', ['alice@test.example'],
                          make_message('after helo'))
        self.assertEqual(r.code, 250, r)
        self.assertTrue(queue_id(r.text), r)
        wait_mail(inst, 'alice', 1)

    def test_commands_case_insensitive(self):
        inst = self.smtp_instance()
        c = self.client(inst)
        c.expect('ehlo ' + HELO, 250)
        c.expect('nOoP', 250)
        c.expect('mail from:<carol@sender.example> size=100 '
                 'body=8bitmime', 250)
        c.expect('RcPt To:<alice@test.example>', 250)
        c.expect('rcpt to:<bob@test.example>', 250)
        c.expect('data', 354)
        c.send(make_message('lower case') + b'\r\n.\r\n')
        r = c.reply()
        self.assertEqual(r.code, 250, r)
        c.expect('rset', 250)
        c.expect('vrfy alice', 252)
        c.expect('help', 214)
        c.expect('quit', 221)
        wait_mail(inst, 'alice', 1)
        wait_mail(inst, 'bob', 1)

    def test_ehlo_resets_transaction(self):
        # RFC 5321 4.1.4: EHLO in a session is an implicit RSET.
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.ehlo()
        c.expect('RCPT TO:<alice@test.example>', 503)


class Commands(SmtpCase):

    def test_noop(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('NOOP', 250)
        c.expect('NOOP', 250)

    def test_rset_clears_transaction(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('RSET', 250)
        c.expect('DATA', 503)
        c.expect('RCPT TO:<alice@test.example>', 503)
        c.expect('MAIL FROM:<carol@sender.example>', 250)

    def test_quit_221_closes(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('QUIT', 221)
        self.assertTrue(c.closed_by_server(5),
                        'connection still open 5 s after QUIT')

    def test_vrfy_252(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        # Same answer for a user, a non-user and an address: no
        # enumeration.
        for arg in ('alice', 'nobody', '<alice@test.example>',
                    'nobody@test.example'):
            c.expect('VRFY ' + arg, 252)

    def test_help_214(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('HELP', 214)
        c.expect('NOOP', 250)

    def test_unknown_command_500(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('FOO', 500, '5.5.1')
        c.expect('XYZZY bar baz', 500, '5.5.1')
        c.expect('MAILFROM:<a@b.example>', 500, '5.5.1')
        c.expect('NOOP', 250)

    def test_ten_errors_421_and_close(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        replies = []
        for i in range(1, 13):
            try:
                c.line('XBAD%d' % i)
            except OSError:
                pass        # closed: a 421 may still be in our buffer
            try:
                r = c.reply(timeout=5)
            except ProtocolError:
                if c.eof:
                    break
                raise
            replies.append(r)
            if r.code == 421:
                break
        codes = [r.code for r in replies]
        self.assertIn(421, codes, 'no 421 after %d errors: %r'
                      % (len(codes), codes))
        n = codes.index(421)
        self.assertEqual(codes[:n], [500] * n, codes)
        self.assertIn(n, (9, 10), 'want 421 at the 10th error (in place '
                      'of, or right after, its 500): %r' % codes)
        self.assertTrue(c.closed_by_server(5),
                        'connection still open after 421')
        self.assert_healthy(inst)

    def test_errors_counted_per_session(self):
        inst = self.smtp_instance()
        for _ in range(2):
            c = self.session(inst)
            for i in range(6):
                c.expect('XBAD%d' % i, 500)
            c.expect('QUIT', 221)
            c.close()
        c = self.session(inst)
        for i in range(8):
            c.expect('XBAD%d' % i, 500)
        c.expect('NOOP', 250)


class Sequence(SmtpCase):

    def test_rcpt_before_mail_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('RCPT TO:<alice@test.example>', 503, '5.5.1')
        c.expect('NOOP', 250)

    def test_data_without_rcpt_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('DATA', 503, '5.5.1')
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        c.send(make_message('after 503') + b'\r\n.\r\n')
        self.assertEqual(c.reply().code, 250)

    def test_data_before_mail_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('DATA', 503, '5.5.1')
        c.expect('NOOP', 250)

    def test_mail_twice_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('MAIL FROM:<dave@sender.example>', 503, '5.5.1')

    def test_rcpt_after_refused_mail_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=%d'
                 % (MAXSIZE + 1), 552)
        c.expect('RCPT TO:<alice@test.example>', 503)


class MailFrom(SmtpCase):

    def test_null_sender(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)

    def test_size_within_limit(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=1000', 250)
        c.expect('RSET', 250)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=%d' % MAXSIZE, 250)

    def test_size_over_limit_552(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=%d'
                 % (MAXSIZE + 1), 552, '5.3.4')
        c.expect('MAIL FROM:<> SIZE=%d' % (MAXSIZE * 10), 552, '5.3.4')
        c.expect('MAIL FROM:<carol@sender.example> SIZE=10', 250)

    def test_size_bad_numbers_refused(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        for v in ('99999999999999999999999999999', '18446744073709551616',
                  '-1', 'abc', '', '1e9', '0x10'):
            with self.subTest(size=v):
                r = c.cmd('MAIL FROM:<carol@sender.example> SIZE=' + v)
                self.assertEqual(r.code // 100, 5, r)
                c.expect('NOOP', 250)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=5', 250)

    def test_body_8bitmime_and_7bit(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example> BODY=8BITMIME', 250)
        c.expect('RSET', 250)
        c.expect('MAIL FROM:<carol@sender.example> BODY=7BIT', 250)
        c.expect('RSET', 250)
        c.expect('MAIL FROM:<carol@sender.example> BODY=8BITMIME '
                 'SIZE=500 SMTPUTF8', 250)

    def test_body_bad_value_refused(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        r = c.cmd('MAIL FROM:<carol@sender.example> BODY=NONSENSE')
        self.assertIn(r.code, (501, 555), r)
        c.expect('NOOP', 250)

    def test_unknown_param_555(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example> FOO=BAR', 555)
        c.expect('MAIL FROM:<carol@sender.example> XYZZY', 555)
        c.expect('MAIL FROM:<carol@sender.example>', 250)

    def test_smtputf8_param(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example> SMTPUTF8', 250)

    def test_malformed_mail_501(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        for cmd in ('MAIL FROM:', 'MAIL FROM:<carol@sender.example',
                    'MAIL', 'MAIL TO:<carol@sender.example>',
                    'MAIL FROM:<carol@sender.example> SIZE'):
            with self.subTest(cmd=cmd):
                r = c.cmd(cmd)
                self.assertIn(r.code, (501, 555) if 'SIZE' in cmd
                              else (501,), r)
        c.expect('MAIL FROM:<carol@sender.example>', 250)

    def test_malformed_rcpt_501(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        for cmd in ('RCPT TO:', 'RCPT', 'RCPT TO:<alice@test.example',
                    'RCPT FROM:<alice@test.example>'):
            with self.subTest(cmd=cmd):
                c.expect(cmd, 501)
        c.expect('RCPT TO:<alice@test.example>', 250)
