"""Quota on a shared store: USER/Maildir/maildirsize (Maildir++), which
every host appends to and recounts, and which the quota checks of every
host read (DESIGN.md B3, pymaild.conf(5)).

    /usr/bin/python3 regress/run.py regress/shared/test_shared_quota.py
"""

import os
import re
import shutil
import smtplib
import subprocess
import threading
import time

from lib.sharedutil import SharedCase, old_tree
from lib import pmtest
from lib.smtputil import make_message, smtp_session

USERS3 = ('alice', 'bob', 'carol')
PER_HOST = int(os.environ.get('PYMAILD_SHARED_PER_HOST', '300'))
DELIVER_WAIT = 180.0
MID_RE = re.compile(rb'^Message-ID: (<[^>]+>)', re.M | re.I)


def parse_maildirsize(data):
    """(limit line, bytes, count): the sum a Maildir++ reader makes."""
    lines = data.split(b'\n')
    assert lines[-1] == b'', 'last line cut short: %r' % data[-40:]
    b = c = 0
    for ln in lines[1:-1]:
        x, y = ln.split()
        b += int(x)
        c += int(y)
    return lines[0], b, c


class Quota(SharedCase):

    def setUp(self):
        super().setUp()
        r = self.a.adm('adduser', 'carol', 'carolpw')
        self.assertEqual(r.returncode, 0, r.stderr)

    def mdsize(self, user):
        return os.path.join(self.mdir(user), 'maildirsize')

    def disk(self, user):
        files = pmtest.maildir_files(self.a.maildir, user)
        return sum(os.stat(p).st_size for p in files), len(files)

    def assert_sum_matches_disk(self, user):
        with open(self.mdsize(user), 'rb') as f:
            _, b, c = parse_maildirsize(f.read())
        self.assertEqual((b, c), self.disk(user), user)

    def send_many(self, host, subjects, errors):
        """One SMTP session, one message each, rcpt rotating."""
        try:
            s = smtp_session(host)
            s.ehlo()
            for i, subj in enumerate(subjects):
                user = USERS3[i % len(USERS3)]
                msg = make_message(subj, b'body of %s\r\n' % subj.encode(),
                                   to='%s@test.example' % user,
                                   mid='<%s@test.invalid>' % subj)
                s.sendmail('carol@sender.example',
                           ['%s@test.example' % user], msg)
            s.quit()
        except Exception as e:          # reported by the main thread
            errors.append('%s: %r' % (host.serverhostname
                                      if hasattr(host, 'serverhostname')
                                      else host, e))

    def all_mids(self):
        out = []
        for u in USERS3:
            for p in pmtest.maildir_files(self.a.maildir, u):
                with open(p, 'rb') as f:
                    m = MID_RE.search(f.read())
                out.append((u, m.group(1) if m else None))
        return out

    def test_concurrent_deliveries_through_both_hosts(self):
        errors = []
        threads = []
        for host, tag in ((self.a, 'a'), (self.b, 'b')):
            for half in range(2):
                subj = ['%s%d-%d' % (tag, half, i)
                        for i in range(PER_HOST // 2)]
                t = threading.Thread(target=self.send_many,
                                     args=(host, subj, errors))
                t.start()
                threads.append(t)
        for t in threads:
            t.join(DELIVER_WAIT)
            self.assertFalse(t.is_alive(), 'a client did not finish')
        self.assertEqual(errors, [])
        want = 2 * (PER_HOST // 2) * 2
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.all_mids()) >= want, DELIVER_WAIT),
            'only %d of %d delivered' % (len(self.all_mids()), want))
        time.sleep(1.0)         # nothing more may come
        mids = self.all_mids()
        self.assertEqual(len(mids), want)
        self.assertEqual(len(set(m for _, m in mids)), want)
        for u, m in mids:
            i = int(m.split(b'-')[1].split(b'@')[0])
            self.assertEqual(u, USERS3[i % 3], m)
        for u in USERS3:
            self.assert_sum_matches_disk(u)

    def fill_until_refused(self, limit, size):
        """Alternate hosts, one message each (SIZE= given, so RCPT can
        tell), each delivered before the next, until both said no."""
        refused = {}
        delivered = 0
        body = (b'q' * 68 + b'\r\n') * (size // 70)
        for i in range(2 * limit // size + 8):
            host = (self.a, self.b)[i % 2]
            msg = make_message('fill %d' % i, body, to='bob@test.example')
            s = smtp_session(host)
            s.ehlo()
            s.mail('carol@sender.example', ['SIZE=%d' % len(msg)])
            code, text = s.rcpt('bob@test.example')
            if code != 250:
                refused[host] = (code, text)
                s.quit()
                if len(refused) == 2:
                    return refused
                continue
            self.assertEqual(refused, {}, 'one host refused, not the other')
            code, text = s.data(msg)
            s.quit()
            self.assertEqual(code, 250, text)
            delivered += 1
            self.assertTrue(pmtest.wait_for(
                lambda: self.disk('bob')[1] == delivered, 20))
        self.fail('never refused: %r' % refused)

    def test_quota_reached_through_both_refused_on_both(self):
        limit, size = 20000, 1500
        r = self.b.adm('chopt', 'bob', 'mailboxsize', str(limit))
        self.assertEqual(r.returncode, 0, r.stderr)
        refused = self.fill_until_refused(limit, size)
        for host in (self.a, self.b):
            code, text = refused[host]
            self.assertEqual(code, 452, text)
            self.assertTrue(text.startswith(b'4.2.2'), text)
        used, n = self.disk('bob')
        one = max(os.stat(p).st_size
                  for p in pmtest.maildir_files(self.a.maildir, 'bob'))
        self.assertLessEqual(used, limit)
        self.assertGreater(used, limit - one)
        self.assert_sum_matches_disk('bob')
        with open(self.mdsize('bob'), 'rb') as f:
            self.assertEqual(f.read().split(b'\n')[0], b'%dS' % limit)

    def deliver_one(self, host, user, subj):
        s = smtp_session(host)
        s.ehlo()
        s.sendmail('carol@sender.example', ['%s@test.example' % user],
                   make_message(subj, to='%s@test.example' % user))
        s.quit()

    def test_garbled_maildirsize_recounted_and_logged(self):
        self.deliver_one(self.a, 'alice', 'first')
        self.assertTrue(pmtest.wait_for(
            lambda: self.disk('alice')[1] == 1, 20))
        cases = {
            'garbage': b'10000000S\nnot a number\n',
            'cut': b'10000000S\n123 1\n45',
            'negative': b'10000000S\n-99999999 -5\n',
            'huge': b'10000000S\n999999999999999999 1\n',
            # well formed but past 5,120 bytes: the Maildir++ rule
            'large': b'10000000S\n' + b'1 0\n' * 1500,
        }
        for n, (what, text) in enumerate(sorted(cases.items()), 2):
            with self.subTest(what=what):
                with open(self.mdsize('alice'), 'wb') as f:
                    f.write(text)
                self.deliver_one((self.a, self.b)[n % 2], 'alice', what)
                self.assertTrue(pmtest.wait_for(
                    lambda: self.disk('alice')[1] == n, 20))
                self.assert_sum_matches_disk('alice')
                self.assertLess(os.path.getsize(self.mdsize('alice')), 5120)
        log = self.a.log() + self.b.log()
        self.assertIn('mailbox of alice: maildirsize bad usage line, '
                      'recounted', log)
        self.assertIn('maildirsize last line cut short, recounted', log)
        self.assertIn('maildirsize negative total, recounted', log)

    def test_pop3_deletion_appends_a_negative_line(self):
        for i in range(3):
            self.deliver_one(self.b, 'alice', 'del %d' % i)
        self.assertTrue(pmtest.wait_for(
            lambda: self.disk('alice')[1] == 3, 20))
        c = self.raw(self.a)
        self.assertTrue(c.login().startswith(b'+OK'))
        c.ok('DELE 1')
        c.ok('DELE 3')
        c.ok('QUIT')
        self.assertEqual(self.disk('alice')[1], 1)
        with open(self.mdsize('alice'), 'rb') as f:
            data = f.read()
        self.assertRegex(data, rb'\n-\d+ -2\n$')
        self.assert_sum_matches_disk('alice')

    def test_import_through_b_counted_on_a(self):
        self.deliver_one(self.a, 'alice', 'before')
        self.assertTrue(pmtest.wait_for(
            lambda: self.disk('alice')[1] == 1, 20))
        old = old_tree(self.a.dir, b'Subject: imported\r\n\r\n'
                       + b'x' * 5000 + b'\r\n.\r\n')
        r = self.b.adm('import', old)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.deliver_one(self.a, 'alice', 'after')
        self.assertTrue(pmtest.wait_for(
            lambda: self.disk('alice')[1] == 3, 20))
        self.assert_sum_matches_disk('alice')
