"""Changes made through one host of a shared store take effect on the
others without a reload: users, passwords, USER/options and
default_options are checked by stat (size, mtime, inode) on use, and the
password verification cache never answers for a changed hash
(DESIGN.md B3, pymaild.conf(5)).

    /usr/bin/python3 regress/run.py regress/shared/test_shared_changes.py
"""

import os
import time

from lib.sharedutil import SharedCase
from lib import pmtest
from lib.smtputil import smtp_session

SEEN_WITHIN = 5.0       # the bound; the design is "next use"


class Changes(SharedCase):

    def adm_b(self, *args):
        """pymailadm with host B's configuration, as an admin on B."""
        r = self.b.adm(*args)
        self.assertEqual(r.returncode, 0, r.stderr)

    def login_a(self, user, password):
        c = self.raw(self.a)
        r = c.login(user, password)
        if r.startswith(b'+OK'):
            c.ok('QUIT')
        return r

    def rcpt_a(self, user):
        s = smtp_session(self.a)
        try:
            s.ehlo()
            s.mail('carol@sender.example')
            code, text = s.rcpt('%s@test.example' % user)
            return code, text
        finally:
            s.quit()

    def soon(self, pred, what):
        t0 = time.monotonic()
        self.assertTrue(pmtest.wait_for(pred, SEEN_WITHIN, 0.1),
                        '%s not seen by host A within %.0f s' %
                        (what, SEEN_WITHIN))
        return time.monotonic() - t0

    def test_password_changed_on_b_used_by_a(self):
        # A has verified (and cached) the old password.
        self.assertTrue(self.login_a('alice', 'alicepw').startswith(b'+OK'))
        self.adm_b('chpasswd', 'alice', 'newpw')
        self.soon(lambda: self.login_a('alice', 'newpw').startswith(b'+OK'),
                  'the new password')
        # The old one is refused at once, although A's verification
        # cache holds it: the hash it was checked against has changed.
        r = self.login_a('alice', 'alicepw')
        self.assertTrue(r.startswith(b'-ERR'), r)

    def test_user_added_and_removed_on_b(self):
        self.assertEqual(self.rcpt_a('dave')[0], 550)
        self.adm_b('adduser', 'dave', 'davepw')
        self.soon(lambda: self.rcpt_a('dave')[0] == 250, 'the new user')
        self.assertTrue(self.login_a('dave', 'davepw').startswith(b'+OK'))
        self.adm_b('rmuser', 'dave')
        self.soon(lambda: self.rcpt_a('dave')[0] == 550, 'the removal')
        r = self.login_a('dave', 'davepw')
        self.assertTrue(r.startswith(b'-ERR'), r)

    def test_options_changed_on_b(self):
        self.assertEqual(self.rcpt_a('bob')[0], 250)
        self.adm_b('chopt', 'bob', 'enabled', 'false')
        self.soon(lambda: self.rcpt_a('bob')[0] == 550, 'enabled=false')
        code, text = self.rcpt_a('bob')
        self.assertTrue(text.startswith(b'5.2.1'), text)
        self.adm_b('chopt', 'bob', 'enabled', 'true')
        self.soon(lambda: self.rcpt_a('bob')[0] == 250, 'enabled=true')

    def test_default_options_changed_on_b(self):
        # adduser copies the defaults into USER/options; a mailbox
        # without that file (made by hand) follows default_options.
        os.unlink(os.path.join(self.a.maildir, 'alice', 'options'))
        self.assertFalse(self.size_refused('alice', 5000))
        self.adm_b('chdefaultopt', 'maxmailsize', '1000')
        self.soon(lambda: self.size_refused('alice', 5000), 'maxmailsize')
        self.adm_b('chdefaultopt', 'maxmailsize', '10000000')
        self.soon(lambda: not self.size_refused('alice', 5000),
                  'maxmailsize back')

    def size_refused(self, user, size):
        s = smtp_session(self.a)
        try:
            s.ehlo()
            s.mail('carol@sender.example', ['SIZE=%d' % size])
            return s.rcpt('%s@test.example' % user)[0] == 552
        finally:
            s.quit()
