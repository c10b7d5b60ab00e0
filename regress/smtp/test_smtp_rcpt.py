"""SMTP-in, RCPT TO for local domains: unknown users, disabled mailboxes,
quotas and maxmailsize at RCPT and at the end of DATA, postmaster, the
recipient limit (DESIGN.md A4, A7).

    /usr/bin/python3 regress/run.py -k test_smtp_rcpt
"""

import os

from lib.smtputil import (SmtpCase, make_message, queue_id,
                          subject_of, wait_for, wait_mail)


class RcptLocal(SmtpCase):

    def rcpt_until(self, c, addr, code, timeout=5.0, mail_params=''):
        """RCPT addr in a fresh transaction until it gets `code` (the
        daemon picks up pymailadm changes without a restart, A1); returns
        the last reply."""
        last = [None]

        def attempt():
            c.expect('RSET', 250)
            c.expect('MAIL FROM:<carol@sender.example>%s' % mail_params,
                     250)
            last[0] = c.cmd('RCPT TO:<%s>' % addr)
            return last[0].code == code
        wait_for(attempt, timeout, interval=0.1)
        return last[0]

    def test_local_user_250(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@TEST.EXAMPLE>', 250)
        c.expect('RCPT TO:<alice@Test.Example>', 250)

    def test_unknown_user_550_511(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        for addr in ('nobody@test.example', 'alicex@test.example',
                     'users@test.example', 'queue@test.example',
                     'a/b@test.example'):
            with self.subTest(addr=addr):
                c.expect('RCPT TO:<%s>' % addr, 550, '5.1.1')
        c.expect('RCPT TO:<alice@test.example>', 250)

    def test_user_added_while_running(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<carol@test.example>', 550, '5.1.1')
        self.adm_ok(inst, 'adduser', 'carol', 'carolpw')
        r = self.rcpt_until(c, 'carol@test.example', 250)
        self.assertEqual(r.code, 250, r)

    def test_disabled_mailbox_550(self):
        inst = self.smtp_instance()
        self.adm_ok(inst, 'chopt', 'bob', 'enabled', 'false')
        c = self.session(inst)
        r = self.rcpt_until(c, 'bob@test.example', 550)
        self.assertEqual(r.code, 550, r)
        c.expect('RCPT TO:<alice@test.example>', 250)
        self.adm_ok(inst, 'chopt', 'bob', 'enabled', 'true')
        r = self.rcpt_until(c, 'bob@test.example', 250)
        self.assertEqual(r.code, 250, r)

    def test_over_quota_452(self):
        inst = self.smtp_instance()
        self.send_mail(inst, 'fill', rcpts=('bob@test.example',),
                       body=b'x' * 500 + b'\r\n')
        wait_mail(inst, 'bob', 1)
        # Now bob's usage is over his (new, small) quota.
        self.adm_ok(inst, 'chopt', 'bob', 'mailboxsize', '200')
        c = self.session(inst)
        r = self.rcpt_until(c, 'bob@test.example', 452)
        self.assertEqual((r.code, r.enh), (452, '4.2.2'), r)
        c.expect('RCPT TO:<alice@test.example>', 250)

    def test_size_over_quota_452(self):
        inst = self.smtp_instance()
        self.adm_ok(inst, 'chopt', 'bob', 'mailboxsize', '5000')
        c = self.session(inst)
        r = self.rcpt_until(c, 'bob@test.example', 452,
                            mail_params=' SIZE=6000')
        self.assertEqual((r.code, r.enh), (452, '4.2.2'), r)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('RSET', 250)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=4000', 250)
        c.expect('RCPT TO:<bob@test.example>', 250)

    def test_size_over_maxmailsize_552(self):
        inst = self.smtp_instance()
        self.adm_ok(inst, 'chopt', 'bob', 'maxmailsize', '1000')
        c = self.session(inst)
        r = self.rcpt_until(c, 'bob@test.example', 552,
                            mail_params=' SIZE=2000')
        self.assertEqual((r.code, r.enh), (552, '5.3.4'), r)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('RSET', 250)
        c.expect('MAIL FROM:<carol@sender.example> SIZE=900', 250)
        c.expect('RCPT TO:<bob@test.example>', 250)

    def test_end_of_data_fits_no_recipient_552(self):
        inst = self.smtp_instance()
        self.adm_ok(inst, 'chopt', 'bob', 'mailboxsize', '3000')
        c = self.session(inst)
        # No SIZE=: RCPT cannot know; end of DATA must.
        self.rcpt_until(c, 'bob@test.example', 250)
        r = c.data(make_message('too big for bob',
                                (b'z' * 70 + b'\r\n') * 80))
        self.assertEqual((r.code, r.enh), (552, '5.2.2'), r)
        c.expect('NOOP', 250)
        self.marker(inst, 'alice')
        self.assertEqual(inst.maildir_files('bob'), [])

    def test_end_of_data_maxmailsize_552(self):
        inst = self.smtp_instance()
        self.adm_ok(inst, 'chopt', 'bob', 'maxmailsize', '2000')
        c = self.session(inst)
        self.rcpt_until(c, 'bob@test.example', 250)
        r = c.data(make_message('too big', (b'q' * 70 + b'\r\n') * 60))
        self.assertEqual((r.code, r.enh), (552, '5.2.2'), r)
        self.marker(inst, 'alice')
        self.assertEqual(inst.maildir_files('bob'), [])

    def test_end_of_data_fits_some_recipients(self):
        # Queued for those it fits; a DSN (RFC 3464) to the sender reports
        # the others.  The sender is local so the DSN lands in a Maildir.
        inst = self.smtp_instance()
        self.adm_ok(inst, 'adduser', 'carol', 'carolpw')
        self.adm_ok(inst, 'chopt', 'carol', 'mailboxsize', '3000')
        c = self.session(inst)
        c.expect('MAIL FROM:<bob@test.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('RCPT TO:<carol@test.example>', 250)
        r = c.data(make_message('partly fits', (b'p' * 70 + b'\r\n') * 80,
                                sender='bob@test.example'))
        self.assertEqual(r.code, 250, r)
        self.assertTrue(queue_id(r.text), r)
        (_, got), = wait_mail(inst, 'alice', 1)
        self.assertEqual(subject_of(got), 'partly fits')
        (_, dsn), = wait_mail(inst, 'bob', 1)
        self.assertIn(b'carol@test.example', dsn)
        self.assertRegex(dsn, rb'(?i)content-type:\s*multipart/report')
        self.assertRegex(dsn, rb'(?i)report-type="?delivery-status')
        self.assertEqual(inst.maildir_files('carol'), [])


class Postmaster(SmtpCase):

    def test_postmaster_accepted_without_user(self):
        # postmaster = "root" (the default) does not exist here.
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        for addr in ('postmaster@test.example', 'postmaster',
                     'Postmaster@TEST.EXAMPLE', 'POSTMASTER'):
            with self.subTest(addr=addr):
                c.expect('RCPT TO:<%s>' % addr, 250)

    def test_postmaster_goes_to_configured_user(self):
        inst = self.smtp_instance(postmaster='bob')
        self.send_mail(inst, 'to postmaster@domain',
                       rcpts=('postmaster@test.example',))
        self.send_mail(inst, 'to bare postmaster', rcpts=('postmaster',))
        got = wait_mail(inst, 'bob', 2)
        self.assertEqual(sorted(subject_of(b) for _, b in got),
                         ['to bare postmaster', 'to postmaster@domain'])
        self.assertEqual(inst.maildir_files('alice'), [])

    def test_postmaster_accepted_without_relay_right(self):
        # Accepted even in a session that is not allowed to relay.
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        c.expect('MAIL FROM:<>', 250)
        c.expect('RCPT TO:<postmaster@test.example>', 250)
        c.expect('RCPT TO:<postmaster>', 250)


class RecipientLimit(SmtpCase):

    def test_101st_recipient_452(self):
        # Default noauthhosts: 127.0.0.1 may relay, so 101 distinct
        # addresses need no users.  Sent pipelined, in one write.
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        cmds = b''.join(b'RCPT TO:<r%d@other.example>\r\n' % i
                        for i in range(1, 103))
        c.send(cmds)
        codes = [c.reply().code for _ in range(102)]
        self.assertEqual(codes[:100], [250] * 100, codes)
        self.assertEqual(codes[100:], [452, 452], codes)
        c.expect('RSET', 250)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
