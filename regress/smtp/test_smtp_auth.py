"""SMTP-in, AUTH PLAIN and AUTH LOGIN (RFC 4954, DESIGN.md A4, A7):
initial-response and continuation forms, smtplib's login, failures
535 5.7.8 after a delay that grows per client address, '*' cancels,
ESMTPA in Received.  Every test has a fresh daemon, so no earlier failure
from 127.0.0.1 is counted.

    /usr/bin/python3 regress/run.py -k test_smtp_auth
"""

import os
import re
import smtplib
import threading
import time

from lib.smtputil import (Client, SmtpCase, added_prefix, b64,
                          header, make_message, smtplib_send,
                          wait_mail)
from lib import pmtest

USER_PROMPT = 'VXNlcm5hbWU6'        # base64 "Username:"
ACCOUNT_LOCK = 30                   # failures that lock an account
PASS_PROMPT = 'UGFzc3dvcmQ6'        # base64 "Password:"


class Auth(SmtpCase):

    def relay_check(self, c):
        """After AUTH, relaying is allowed (noauthhosts = [])."""
        c.expect('MAIL FROM:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 250)
        c.expect('RSET', 250)

    def test_plain_initial_response(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.cmd('AUTH PLAIN ' + b64(b'\0alice\0alicepw'))
        self.assertEqual((r.code, r.enh), (235, '2.7.0'), r)
        self.relay_check(c)

    def test_plain_continuation(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.cmd('AUTH PLAIN')
        self.assertEqual(r.code, 334, r)
        self.assertEqual(r.lines, [''], 'PLAIN challenge must be empty: %r'
                         % r)
        r = c.cmd(b64(b'\0alice\0alicepw'))
        self.assertEqual((r.code, r.enh), (235, '2.7.0'), r)
        self.relay_check(c)

    def test_plain_with_authzid_equal_to_user(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.cmd('AUTH PLAIN ' + b64(b'alice\0alice\0alicepw'))
        self.assertEqual(r.code, 235, r)

    def test_plain_authzid_ignores_case(self):
        # One SASL rule with POP3: user names are stored lower-case, so
        # an authzid naming the same user in other case is that user;
        # another user is still refused.
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.cmd('AUTH PLAIN ' + b64(b'ALICE\0alice\0alicepw'))
        self.assertEqual((r.code, r.enh), (235, '2.7.0'), r)
        c2 = self.session(inst)
        r = c2.cmd('AUTH PLAIN ' + b64(b'bob\0alice\0alicepw'))
        self.assertEqual(r.code, 501, r)

    def test_login(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.cmd('AUTH LOGIN')
        self.assertEqual(r.code, 334, r)
        self.assertEqual(r.lines, [USER_PROMPT], r)
        r = c.cmd(b64('alice'))
        self.assertEqual(r.code, 334, r)
        self.assertEqual(r.lines, [PASS_PROMPT], r)
        r = c.cmd(b64('alicepw'))
        self.assertEqual((r.code, r.enh), (235, '2.7.0'), r)
        self.relay_check(c)

    def test_login_initial_response(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.cmd('AUTH LOGIN ' + b64('alice'))
        self.assertEqual(r.code, 334, r)
        self.assertEqual(r.lines, [PASS_PROMPT], r)
        r = c.cmd(b64('alicepw'))
        self.assertEqual((r.code, r.enh), (235, '2.7.0'), r)
        self.relay_check(c)

    def test_mechanism_case_insensitive(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        r = c.cmd('auth plain ' + b64(b'\0bob\0bobpw'))
        self.assertEqual(r.code, 235, r)

    def test_smtplib_login_plain_and_login(self):
        inst = self.smtp_instance(noauthhosts=[])
        s = self.smtp(inst)
        s.ehlo()
        code, _ = s.login('alice', 'alicepw')      # PLAIN
        self.assertEqual(code, 235)
        s.quit()
        s = self.smtp(inst)
        s.ehlo()
        s.user, s.password = 'bob', 'bobpw'
        code, _ = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
        self.assertEqual(code, 235)
        s.quit()
        s = self.smtp(inst)
        s.ehlo()
        s.user, s.password = 'bob', 'bobpw'
        code, _ = s.auth('LOGIN', s.auth_login, initial_response_ok=True)
        self.assertEqual(code, 235)
        s.quit()

    def test_received_says_esmtpa(self):
        inst = self.smtp_instance()
        s = self.smtp(inst, helo='authed.client.example')
        s.ehlo()
        s.login('alice', 'alicepw')
        msg = make_message('authenticated', sender='alice@test.example',
                           to='bob@test.example')
        qid = smtplib_send(s, 'alice@test.example', ['bob@test.example'],
                           msg)
        s.quit()
        (_, data), = wait_mail(inst, 'bob', 1)
        rec = header(added_prefix(data, msg), 'Received')[0]
        m = re.search(r'\bwith\s+([A-Za-z0-9]+)', rec)
        self.assertTrue(m, rec)
        self.assertEqual(m.group(1), 'ESMTPA', rec)
        self.assertIn(qid, rec)
        self.assertIn('authed.client.example', rec)

    def test_cancel_with_star(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        for start in ('AUTH PLAIN', 'AUTH LOGIN', 'AUTH LOGIN ' + b64('a')):
            with self.subTest(start=start):
                r = c.cmd(start)
                self.assertEqual(r.code, 334, r)
                r = c.cmd('*')
                self.assertEqual(r.code, 501, r)
                c.expect('NOOP', 250)
        c.expect('MAIL FROM:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')
        c.expect('RSET', 250)
        r = c.auth_plain('alice', 'alicepw')
        self.assertEqual(r.code, 235, r)

    def test_bad_base64_501(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        r = c.cmd('AUTH PLAIN !!!notbase64!!!')
        self.assertEqual(r.code, 501, r)
        c.expect('NOOP', 250)
        r = c.cmd('AUTH LOGIN')
        self.assertEqual(r.code, 334, r)
        r = c.cmd('@@@')
        self.assertEqual(r.code, 501, r)
        c.expect('NOOP', 250)

    def test_unknown_mechanism(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        r = c.cmd('AUTH CRAM-MD5')
        self.assertIn(r.code, (504, 501), r)
        r = c.cmd('AUTH')
        self.assertIn(r.code, (501, 504), r)
        c.expect('NOOP', 250)

    def test_auth_twice_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        r = c.auth_plain('alice', 'alicepw')
        self.assertEqual(r.code, 235, r)
        r = c.auth_plain('bob', 'bobpw')
        self.assertEqual(r.code, 503, r)

    def test_auth_in_transaction_503(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        r = c.auth_plain('alice', 'alicepw')
        self.assertEqual(r.code, 503, r)

    def test_bad_password_535_delayed_and_growing(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        t0 = time.monotonic()
        r = c.auth_plain('alice', 'wrong')
        d1 = time.monotonic() - t0
        self.assertEqual((r.code, r.enh), (535, '5.7.8'), r)
        self.assertGreaterEqual(d1, 0.9, 'first failure answered after '
                                '%.2f s' % d1)
        self.assertLess(d1, 6.0)
        # The second failure of this address (a new session, unknown
        # user: the same answer, no enumeration) waits longer; meanwhile
        # another session from the same address is served at once.
        c2 = self.session(inst)
        other = {}

        def side():
            t = time.monotonic()
            o = Client(inst.smtp_port)
            try:
                o.ehlo()
                o.expect('NOOP', 250)
            finally:
                o.close()
            other['took'] = time.monotonic() - t
        th = threading.Thread(target=side)
        t0 = time.monotonic()
        c2.line('AUTH LOGIN ' + b64('nosuchuser'))
        r = c2.reply()
        self.assertEqual(r.code, 334, r)
        c2.line(b64('wrong'))
        time.sleep(0.1)
        th.start()
        r = c2.reply()
        d2 = time.monotonic() - t0
        th.join(10)
        self.assertEqual((r.code, r.enh), (535, '5.7.8'), r)
        self.assertGreaterEqual(d2, 1.8, 'second failure answered after '
                                '%.2f s' % d2)
        self.assertLess(d2, 7.0)
        self.assertIn('took', other, 'the side session failed')
        self.assertLess(other['took'], 0.8, 'a failing AUTH stalled another '
                        'session for %.2f s' % other['took'])
        # The session goes on, and a right password still works.
        c2.expect('NOOP', 250)
        r = c2.auth_plain('alice', 'alicepw')
        self.assertEqual(r.code, 235, r)

    def test_session_ends_after_three_failed_auths(self):
        # Guesses pipelined behind a failure each hold the session for
        # another delay: the third failure ends it, and what follows is
        # never tried.
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst, source='127.0.5.1')
        c.send(b''.join(b'AUTH PLAIN %s\r\n' % b64('\0alice\0no%d' % i)
                        .encode() for i in range(3)) +
               b'AUTH PLAIN %s\r\n' % b64('\0alice\0alicepw').encode())
        for i in range(3):
            r = c.reply(timeout=15)
            self.assertEqual((r.code, r.enh), (535, '5.7.8'), r)
        r = c.reply(timeout=5)
        self.assertEqual(r.code, 421, r)
        self.assertTrue(c.closed_by_server(5))
        log = inst.log()
        self.assertRegex(log, r'client=127\.0\.5\.1.*too many failed '
                         r'authentications')
        self.assertNotRegex(log, r'auth user=alice result=ok')

    def test_account_locked_by_failures_from_many_addresses(self):
        inst = self.smtp_instance(noauthhosts=[])
        answers = []

        def fail_once(i):
            c = Client(inst.smtp_port, source='127.0.3.%d' % i, timeout=60)
            try:
                c.ehlo()
                answers.append(c.auth_plain('alice', 'wrong%d' % i))
            finally:
                c.close()
        pmtest.in_threads(fail_once, range(1, ACCOUNT_LOCK + 1))
        self.assertEqual(len(answers), ACCOUNT_LOCK)
        self.assertTrue(all(r.code == 535 for r in answers), answers)
        # Locked: the right password is answered like a wrong one, from
        # a fresh address, AUTH PLAIN and AUTH LOGIN alike.
        c = self.session(inst, source='127.0.4.1')
        t0 = time.monotonic()
        r = c.auth_plain('alice', 'alicepw')
        took = time.monotonic() - t0
        self.assertEqual((r.code, r.enh), (535, '5.7.8'), r)
        self.assertGreaterEqual(took, 0.9)
        c = self.session(inst, source='127.0.4.2')
        c.expect('AUTH LOGIN ' + b64('alice'), 334)
        c.expect(b64('alicepw'), 535, '5.7.8')
        # Another account still works.
        r = c.auth_plain('bob', 'bobpw')
        self.assertEqual(r.code, 235, r)

    def test_passwords_wiped_once_checked(self):
        # Neither smtpd nor the parent keeps a password (nor its base64)
        # anywhere in memory once it was checked: a right one and a
        # wrong one, by PLAIN, PLAIN continued, LOGIN, and pipelined
        # behind a command that follows it.
        right, wrong = 'Right-7f3a9c61e2', 'Wrong-2b8d4e07a5'
        inst = self.smtp_instance(users={'alice': right, 'bob': 'bobpw'},
                                  noauthhosts=[])
        plain_right = b64(b'\0alice\0' + right.encode())
        plain_wrong = b64(b'\0alice\0' + wrong.encode())
        c1 = self.session(inst)
        c1.expect('AUTH PLAIN ' + plain_wrong, 535)
        c2 = self.session(inst)
        c2.expect('AUTH PLAIN', 334)
        c2.expect(plain_right, 235)
        c3 = self.session(inst)
        c3.expect('AUTH LOGIN ' + b64('alice'), 334)
        c3.expect(b64(wrong), 535)
        c3.expect('AUTH LOGIN', 334)
        c3.expect(b64('alice'), 334)
        c3.expect(b64(right), 235)
        c4 = self.session(inst)
        c4.send(('AUTH PLAIN %s\r\nNOOP\r\n' % plain_wrong).encode())
        self.assertEqual(c4.reply().code, 535)
        self.assertEqual(c4.reply().code, 250)
        needles = {x.encode() for x in (right, wrong, plain_right,
                                        plain_wrong, b64(right),
                                        b64(wrong))}
        pids = {'parent': inst.pid(), 'smtpd': inst.wait_roles()['smtpd']}
        held = {role: sorted(pmtest.memory_holding(pid, needles))
                for role, pid in pids.items()}
        self.assertEqual(held, {'parent': [], 'smtpd': []})
        for c in (c1, c2, c3, c4):
            c.expect('NOOP', 250)

    def test_smtplib_bad_password(self):
        inst = self.smtp_instance()
        s = self.smtp(inst)
        s.ehlo()
        s.user, s.password = 'alice', 'nope'
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.auth('PLAIN', s.auth_plain)
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertTrue(cm.exception.smtp_error.startswith(b'5.7.8'),
                        cm.exception.smtp_error)
