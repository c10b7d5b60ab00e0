"""SMTP-in, what an address may contain, from MAIL and RCPT to the queue
envelope and the Maildir (DESIGN.md A4; RFC 5321 4.1.2).

One rule decides which addresses smtpd takes, and the queue stores every
one of them: quoted local parts with spaces, backslashes, '@' and '"'
inside, SMTPUTF8 local parts.  A quoted local part that needs no quotes
("alice") is the same mailbox as the dot-atom form (alice).

    /usr/bin/python3 regress/run.py regress/smtp/test_smtp_addr.py
"""

import os
import re
import shutil
import subprocess
import time

from lib.smtputil import (SmtpCase, make_message, queue_id,
                          subject_of, wait_for, wait_mail)
from lib import pmtest

# Sender as sent in MAIL FROM -> the canonical form the server keeps
# (Return-Path of the stored copy).
SENDERS = [
    ('"a b"@example.org', '"a b"@example.org'),
    ('"a\\ b"@example.org', '"a b"@example.org'),
    ('"a\\\\b"@example.org', '"a\\\\b"@example.org'),
    ('"a@b"@example.org', '"a@b"@example.org'),
    ('"a\\"b"@example.org', '"a\\"b"@example.org'),
    ('"carol"@example.org', 'carol@example.org'),
    ('"c.a.r"@example.org', 'c.a.r@example.org'),
    ('".c"@example.org', '".c"@example.org'),
    ('"j\u00f6 r"@b\u00fccher.example', '"j\u00f6 r"@b\u00fccher.example'),
]


class QuotedLocalParts(SmtpCase):

    def test_space_in_quoted_sender_queued_and_next_sessions_work(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<"a b"@example.org>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        r = c.data(make_message('quoted space', sender='"a b"@example.org'))
        self.assertEqual(r.code, 250, r)
        self.assertTrue(queue_id(r.text), r)
        (_, got), = wait_mail(inst, 'alice', 1)
        self.assertTrue(got.startswith(b'Return-Path: <"a b"@example.org>\n'),
                        got[:80])
        # The same session and the next ones go on.
        r = c.transaction('carol@sender.example', ['bob@test.example'],
                          make_message('after, same session'))
        self.assertEqual(r.code, 250, r)
        for i in range(3):
            c2 = self.session(inst)
            r = c2.transaction('carol@sender.example', ['bob@test.example'],
                               make_message('next %d' % i))
            self.assertEqual(r.code, 250, r)
        wait_mail(inst, 'bob', 4)
        self.assert_healthy(inst)

    def test_corner_case_senders_round_trip(self):
        inst = self.smtp_instance()
        for i, (sent, canon) in enumerate(SENDERS):
            with self.subTest(sender=sent):
                c = self.session(inst)
                c.expect('MAIL FROM:<%s> SMTPUTF8' % sent, 250)
                c.expect('RCPT TO:<alice@test.example>', 250)
                r = c.data(make_message('sender %d' % i))
                self.assertEqual(r.code, 250, r)
        got = wait_mail(inst, 'alice', len(SENDERS))
        paths = {}
        for _, data in got:
            first = data.split(b'\n', 1)[0].decode('utf-8')
            paths[subject_of(data)] = first
        for i, (sent, canon) in enumerate(SENDERS):
            self.assertEqual(paths.get('sender %d' % i),
                             'Return-Path: <%s>' % canon, sent)
        self.assert_healthy(inst)

    def test_quoted_remote_recipients_in_queue_survive_restart(self):
        # 127.0.0.1 may relay (default noauthhosts); the MX lookup cannot
        # succeed (no resolver answers), so the message stays queued and
        # its envelope is what `pymailadm queue` reads.
        inst = self.smtp_instance()
        rcpts = ['"x y"@other.example', '"p\\\\q"@other.example',
                 '"r@s"@other.example', '"t\\"u"@other.example']
        c = self.session(inst)
        c.expect('MAIL FROM:<"a b"@example.org>', 250)
        for rc in rcpts:
            c.expect('RCPT TO:<%s>' % rc, 250)
        r = c.data(make_message('to quoted remotes'))
        self.assertEqual(r.code, 250, r)
        qid = queue_id(r.text)

        def listed():
            out = inst.adm('queue').stdout
            return qid in out and all('<%s>' % rc in out for rc in rcpts)
        self.assertTrue(wait_for(listed, 10), inst.adm('queue').stdout)
        out = inst.adm('queue').stdout
        self.assertIn('from <"a b"@example.org>', out)
        inst.stop()
        inst.start()
        inst.wait_port()
        self.assertTrue(wait_for(listed, 10), '%s\n%s' % (
            inst.adm('queue').stdout, inst.log_tail()))
        self.assertNotIn('corrupt', inst.log())
        self.assert_healthy(inst)

    def test_quoted_local_part_of_local_user_is_that_user(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        for rc in ('"alice"@test.example', '"al\\ice"@test.example',
                   '"bob"@TEST.example'):
            with self.subTest(rcpt=rc):
                c.expect('RCPT TO:<%s>' % rc, 250)
        r = c.data(make_message('quoted but plain'))
        self.assertEqual(r.code, 250, r)
        (_, a), = wait_mail(inst, 'alice', 1)
        (_, b), = wait_mail(inst, 'bob', 1)
        self.assertEqual(subject_of(a), 'quoted but plain')
        # One copy for alice, although named twice, in two spellings.
        self.assertEqual(len(inst.maildir_files('alice')), 1)

    def test_quoted_postmaster_is_postmaster(self):
        inst = self.smtp_instance(postmaster='bob')
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<"postmaster"@test.example>', 250)
        r = c.data(make_message('quoted postmaster'))
        self.assertEqual(r.code, 250, r)
        (_, b), = wait_mail(inst, 'bob', 1)
        self.assertEqual(subject_of(b), 'quoted postmaster')

    def test_quoted_local_part_that_needs_quotes_is_no_user(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        for rc in ('"ali ce"@test.example', '"alice@x"@test.example',
                   '"alice."@test.example'):
            with self.subTest(rcpt=rc):
                c.expect('RCPT TO:<%s>' % rc, 550, '5.1.1')
        c.expect('RCPT TO:<alice@test.example>', 250)


class QueuedChannel(SmtpCase):

    def test_queued_lost_fails_sessions_at_once(self):
        # smtpd without its queue can take no message: the session in
        # the middle of DATA hears so at once (it does not hang), and
        # smtpd exits non-zero saying why.
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        c.send(b'Subject: cut\r\n\r\nhalf a message\r\n')
        _, roles, _ = inst.processes()
        (qpid,) = roles['queued']
        os.kill(qpid, 9)
        t0 = time.monotonic()
        r = c.reply(timeout=5, what='a reply once queued is gone')
        took = time.monotonic() - t0
        self.assertEqual(r.code, 421, r)
        self.assertLess(took, 3, 'the session waited %.1f s' % took)
        self.assertTrue(wait_for(lambda: re.search(
            r'smtpd.*(queued|queue).*(lost|closed|gone)', inst.log()), 5),
            inst.log_tail())
        self.assertTrue(wait_for(lambda: re.search(
            r'helper smtpd \(pid \d+\) died: exit status [1-9]',
            inst.log()), 5), inst.log_tail())


class QueuedRefusals(SmtpCase):
    """queued answers a well-framed spool request it cannot honour with a
    failure, and keeps the channel: a stand-in smtpd (fake_smtpd.py)
    sends what the real one never does."""

    def fake_tree(self, inst):
        """A copy of the built daemon with fake_smtpd.py as its smtpd
        (pymaild finds its helpers next to itself)."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        tree = os.path.join(inst.dir, 'tree')
        for role in ('pymaild',) + pmtest.ROLES:
            os.makedirs(os.path.join(tree, role), 0o755)
            src = os.path.join(root, role, role)
            if role == 'smtpd':
                src = os.path.join(root, 'regress', 'smtp', 'fake_smtpd.py')
            shutil.copy2(src, os.path.join(tree, role, role))
        return root, tree

    def test_refused_requests_get_replies_channel_stays(self):
        inst = self.smtp_instance(start=False)
        root, tree = self.fake_tree(inst)
        outdir = os.path.join(inst.dir, 'fake')
        os.mkdir(outdir)
        os.chmod(outdir, 0o1777)
        out = os.path.join(outdir, 'steps')
        env = inst.env()
        env['FAKE_SMTPD_OUT'] = out
        env['FAKE_SMTPD_PROTO'] = os.path.join(root, 'common', 'proto.h')
        errf = open(os.path.join(inst.dir, 'foreground.err'), 'ab')
        p = subprocess.Popen([os.path.join(tree, 'pymaild', 'pymaild'), '-d',
                              '-f', inst.conf], stdin=subprocess.DEVNULL,
                             stdout=errf, stderr=errf, env=env, cwd='/',
                             start_new_session=True)
        errf.close()
        inst.popens.append(p)
        inst._remember(p.pid)

        def steps():
            try:
                with open(out) as f:
                    return f.read()
            except FileNotFoundError:
                return ''
        self.assertTrue(wait_for(lambda: 'done' in steps(), 20),
                        'fake smtpd: %r\n%s' % (steps(), inst.log_tail()))
        got = dict(l.split(' ', 1) for l in steps().splitlines()
                   if ' ' in l)
        refused, tempfail, ok = '3', '1', '0'
        self.assertEqual(got, {
            'unterminated-quote': refused, 'needless-quotes': refused,
            'control-char': refused, 'bad-sender': refused,
            'space-quoted': ok, 'unknown-id': tempfail},
            '%r\n%s' % (got, inst.log_tail()))
        self.assertIsNone(p.poll(), 'the daemon stopped\n%s'
                          % inst.log_tail())
        self.assertNotIn('malformed', inst.log())
