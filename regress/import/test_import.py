"""pymailadm import DIR: a PyMaild 0.2 data folder (DESIGN.md A1, A3, A8).

Each test builds a PyMaild 0.2 folder the way 0.2 left it (users with md5
hashes, Python-literal options, USER/mail lists, messages as received in
DATA: CRLF, dot-stuffed, ending with the "." line) and checks what lands in
MAILDIR, byte for byte, and that the folder itself is never changed.

Run with the suite (make regress) or alone:
    /usr/bin/python3 regress/run.py -k import
"""

import hashlib
import os
import poplib
import re
import signal
import smtplib
import subprocess

from lib import pmtest
from lib.pmtest import IS_ROOT, wait_for

MAILDIR_NAME = re.compile(
    r'^(\d+)\.M(\d{6})P(\d+)Q(\d+)\.mail\.test\.example,S=(\d+),W=(\d+)$')
USER_LINE = re.compile(r'^imported user (\S+): (\d+) messages \((\d+) bytes\)')


def md5(password):
    return hashlib.md5(password.encode()).hexdigest()


def received(n):
    """PyMaild's own Received: lines, which stay part of the message."""
    return [b'Received: from client%d.example ([192.0.2.%d])' % (n, n),
            b'\tby oldhost.example (PyMaild 0.2) with SMTP;',
            b'\tMon, 1 Jan 2007 10:00:%02d +0100' % n]


def as_received(lines):
    """A message as 0.2 stored it: the DATA bytes, CRLF, dot-stuffed,
    with the final "." line."""
    out = b''
    for line in lines:
        out += (b'.' + line if line.startswith(b'.') else line) + b'\r\n'
    return out + b'.\r\n'


def as_stored(lines):
    """What the Maildir file must hold: LF line ends, unstuffed."""
    return b''.join(line + b'\n' for line in lines)


# Messages with the awkward parts: dot-stuffed lines, 8-bit bytes, long
# lines, a line that is only "..", a lone CR inside a line.
MSG_DOTS = received(1) + [
    b'From: Carol <carol@old.example>', b'To: alice@test.example',
    b'Subject: dots', b'',
    b'.leading dot', b'..two dots', b'.', b'..', b'a . in the middle',
    b'.']
MSG_8BIT = received(2) + [
    b'Subject: =?iso-8859-1?q?caf=E9?=', b'Content-Type: text/plain; '
    b'charset=iso-8859-1', b'Content-Transfer-Encoding: 8bit', b'',
    b'caf\xe9 cr\xe8me br\xfbl\xe9e \xff\xfe\x80', b'lone\rCR stays', b'']
MSG_LONG = received(3) + [
    b'Subject: long lines', b'', b'x' * 5000, b'.' + b'y' * 3000,
    b'end']
MSG_EMPTY_BODY = received(4) + [b'Subject: no body', b'']


class PyMaildDir:
    """A PyMaild 0.2 data folder under an instance's folder."""

    def __init__(self, inst, name='pymaild-0.2', mode=0o700):
        self.path = os.path.join(inst.dir, name)
        os.mkdir(self.path)
        os.chmod(self.path, mode)
        self.users = []

    def write(self, rel, data, mode=0o644):
        p = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(p, mode)
        return p

    def user(self, name, password, options=None, messages=(), sizes=True):
        """messages: [(uid, lines)]; the mail list says uid:size
        (the DATA size) when sizes, else just uid."""
        self.users.append('%s:%s' % (name, md5(password)))
        self.write('users', '\n'.join(self.users) + '\n')
        if options is not None:
            self.write(name + '/options', options)
        mail = ''
        for uid, lines in messages:
            data = as_received(lines)
            self.write('%s/%s' % (name, uid), data)
            mail += '%s:%d\n' % (uid, len(data)) if sizes else uid + '\n'
        if messages or options is not None:
            self.write(name + '/mail', mail)

    def snapshot(self):
        return pmtest.tree_snapshot(self.path)


class ImportCase(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        self.inst = self.instance()
        self.old = PyMaildDir(self.inst)

    def imp(self, *extra, json=False, want=0):
        r = self.inst.adm('import', *(extra or (self.old.path,)), json=json)
        if want is not None:
            self.assertEqual(r.returncode, want, 'pymailadm import: exit %d\n'
                             'stdout: %s\nstderr: %s'
                             % (r.returncode, r.stdout, r.stderr))
        return r

    def user_lines(self, r):
        """{user: (messages, bytes)} from the per-user lines."""
        out = {}
        for line in r.stdout.splitlines():
            m = USER_LINE.match(line)
            if m:
                out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        return out

    def info(self, user):
        return self.inst.adm_json('getinfo', user)

    def assertMaildir(self, user, expected):
        """The user's Maildir holds exactly these messages, in this order,
        each named <unique>,S=<size>,W=<CRLF size>, nothing left in tmp/."""
        files = self.inst.maildir_files(user, ('new', 'cur'))
        got = [pmtest.read_file(p) for p in files]
        self.assertEqual(len(got), len(expected),
                         'messages of %s: %r' % (user, files))
        for p, data, want in zip(files, got, expected):
            self.assertEqual(data, want, 'content of %s' % p)
            m = MAILDIR_NAME.match(os.path.basename(p))
            self.assertTrue(m, 'Maildir name %r' % os.path.basename(p))
            self.assertEqual(int(m.group(5)), len(data), 'S= of %s' % p)
            self.assertEqual(int(m.group(5)), os.path.getsize(p))
            self.assertEqual(int(m.group(6)), len(data) + data.count(b'\n'),
                             'W= of %s' % p)
            self.assertNotIn(b'\r\n', data)
            if IS_ROOT:
                self.assertEqual(os.stat(p).st_uid,
                                 pmtest.uid_of(pmtest.DAEMON_USER))
        tmp = os.path.join(self.inst.maildir, user, 'Maildir', 'tmp')
        self.assertEqual(os.listdir(tmp), [], 'tmp/ of %s' % user)
        return files

    def standard_folder(self):
        """alice (options, uid:size lines), Bob (upper case in 0.2, uid
        lines), carol (no folder at all)."""
        self.old.write('default_options',
                       'mailboxsize = 20000000L\nmaxmailsize = 5000000\n'
                       'enabled = True\n')
        self.old.user('alice', 'alicepw',
                      options="mailboxsize = 30000000L\nenabled = True\n"
                              "maxmailsize = '7000000'\n",
                      messages=[('1167642000.1', MSG_DOTS),
                                ('1167642000.2', MSG_8BIT),
                                ('1167642001.1', MSG_LONG)])
        self.old.user('Bob', 'bobpw', options='enabled = False\n',
                      messages=[('20', MSG_EMPTY_BODY), ('21', MSG_DOTS)],
                      sizes=False)
        self.old.user('carol', 'carolpw')

    # -- the import itself ----------------------------------------------

    def test_users_options_and_messages(self):
        self.standard_folder()
        before = self.old.snapshot()
        r = self.imp()
        self.assertEqual(r.stderr, '')
        self.assertEqual(self.user_lines(r), {
            'alice': (3, sum(len(as_stored(m))
                             for m in (MSG_DOTS, MSG_8BIT, MSG_LONG))),
            'bob': (2, len(as_stored(MSG_EMPTY_BODY)) +
                    len(as_stored(MSG_DOTS))),
            'carol': (0, 0)})
        self.assertTrue(r.stdout.splitlines()[-1].startswith('import of'),
                        r.stdout)
        # Names lower-cased, md5 hashes as they were (upgraded at login).
        with open(self.inst.usersfile) as f:
            self.assertEqual(sorted(f.read().splitlines()), [
                'alice:' + md5('alicepw'), 'bob:' + md5('bobpw'),
                'carol:' + md5('carolpw')])
        self.assertMaildir('alice', [as_stored(m) for m in
                                     (MSG_DOTS, MSG_8BIT, MSG_LONG)])
        self.assertMaildir('bob', [as_stored(MSG_EMPTY_BODY),
                                   as_stored(MSG_DOTS)])
        self.assertMaildir('carol', [])
        # Options: the user's own over the old defaults over today's.
        a = self.info('alice')
        self.assertEqual((a['mailboxsize'], a['maxmailsize'], a['enabled']),
                         (30000000, 7000000, True))
        self.assertEqual(a['waitingmails'], 3)
        self.assertEqual(a['usedmailbox'], self.user_lines(r)['alice'][1])
        b = self.info('bob')
        self.assertEqual((b['mailboxsize'], b['maxmailsize'], b['enabled']),
                         (20000000, 5000000, False))
        c = self.info('carol')
        self.assertEqual((c['mailboxsize'], c['maxmailsize'], c['enabled']),
                         (20000000, 5000000, True))
        # MAILDIR had no default_options: the old ones became them.
        self.assertEqual(self.inst.adm_json('getinfo', 'carol')['mailboxsize'],
                         20000000)
        self.assertTrue(os.path.isfile(os.path.join(self.inst.maildir,
                                                    'default_options')))
        self.assertEqual(self.old.snapshot(), before, 'DIR was changed')

    def test_sizes_in_mail_are_not_trusted(self):
        self.old.user('alice', 'pw', messages=[('1', MSG_LONG)])
        self.old.write('alice/mail', '1:12\n')      # a lie
        self.imp()
        self.assertMaildir('alice', [as_stored(MSG_LONG)])

    def test_second_import_imports_nothing_twice(self):
        self.standard_folder()
        self.imp()
        first = {u: self.inst.maildir_files(u) for u in ('alice', 'bob')}
        r = self.imp()
        self.assertEqual(self.user_lines(r)['alice'], (0, 0))
        self.assertIn('3 already imported', r.stdout)
        self.assertEqual({u: self.inst.maildir_files(u)
                          for u in ('alice', 'bob')}, first)
        # A message read and deleted over POP3 does not come back...
        os.unlink(first['alice'][0])
        self.imp()
        self.assertEqual(self.inst.maildir_files('alice'), first['alice'][1:])
        # ...and one that reached 0.2 after the first run is imported.
        self.old.write('alice/1167642002.1', as_received(MSG_8BIT))
        with open(os.path.join(self.old.path, 'alice', 'mail'), 'a') as f:
            f.write('1167642002.1\n')
        r = self.imp()
        self.assertEqual(self.user_lines(r)['alice'],
                         (1, len(as_stored(MSG_8BIT))))
        self.assertMaildir('alice', [as_stored(m) for m in
                                     (MSG_8BIT, MSG_LONG, MSG_8BIT)])

    def test_interrupted_import_is_finished(self):
        """A crash after the record but before the rename leaves the file
        in tmp/ under its recorded name: the next run moves it into new/
        and imports nothing twice."""
        self.old.user('alice', 'pw', messages=[('1', MSG_DOTS),
                                               ('2', MSG_LONG)])
        self.imp()
        files = self.inst.maildir_files('alice')
        name = os.path.basename(files[1])
        tmp = os.path.join(self.inst.maildir, 'alice', 'Maildir', 'tmp',
                           name.split(',')[0])
        os.rename(files[1], tmp)
        r = self.imp()
        self.assertIn('interrupted', r.stdout)
        self.assertEqual(self.inst.maildir_files('alice'), files)
        self.assertMaildir('alice', [as_stored(MSG_DOTS),
                                     as_stored(MSG_LONG)])

    def test_killed_import_loses_and_duplicates_nothing(self):
        """kill -9 in the middle, then a second run: every message exactly
        once, whatever the moment of the kill."""
        msgs = [('%d' % i, received(i % 50) + [b'Subject: %d' % i, b'',
                                                b'.body %d' % i] +
                 [b'z' * 200] * 50) for i in range(300)]
        self.old.user('alice', 'pw', messages=msgs)
        p = subprocess.Popen([pmtest.PYMAILADM, '-f', self.inst.conf,
                              'import', self.old.path],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd='/',
                             env=self.inst.env(), start_new_session=True)
        new = os.path.join(self.inst.maildir, 'alice', 'Maildir', 'new')
        wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) >= 20,
                 20, interval=0.001)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        self.assertLess(len(os.listdir(new)), len(msgs),
                        'the import ended before the kill: test too fast')
        self.imp()
        self.assertMaildir('alice', [as_stored(m) for _, m in msgs])

    def test_queued_and_mxservers_reported_and_left(self):
        self.old.user('alice', 'pw', messages=[('1', MSG_DOTS)])
        self.old.write('queued-1167642000.5', as_received(MSG_8BIT))
        self.old.write('queued-1167642000.6', as_received(MSG_DOTS))
        self.old.write('mxservers',
                       "{'old.example': [('mx.old.example', '192.0.2.1', "
                       "10)]}\n")
        before = self.old.snapshot()
        r = self.imp()
        self.assertRegex(r.stderr, r'2 queued messages in \S+ were not '
                         r'imported: their recipients are unknown')
        self.assertIn('mxservers', r.stdout)
        self.assertEqual(self.old.snapshot(), before)
        self.assertMaildir('alice', [as_stored(MSG_DOTS)])

    def test_invalid_user_names_refused(self):
        """Nothing is read or written outside DIR and MAILDIR, whatever
        the users file says."""
        self.old.user('alice', 'pw', messages=[('1', MSG_DOTS)])
        for bad in ('../evil', 'a/b', 'users', '.hidden', '-x', 'a b',
                    'x' * 65):
            self.old.users.append('%s:%s' % (bad, md5('pw')))
        self.old.users.append('dave:not-an-md5-hash')
        self.old.write('users', '\n'.join(self.old.users) + '\n')
        # What ../evil would have pointed at.
        evil = os.path.join(self.inst.dir, 'evil')
        os.mkdir(evil)
        with open(os.path.join(evil, 'mail'), 'w') as f:
            f.write('1\n')
        with open(os.path.join(evil, '1'), 'wb') as f:
            f.write(as_received(MSG_8BIT))
        before = {k: v for k, v in
                  pmtest.tree_snapshot(self.inst.dir).items()
                  if not k.startswith(('maildir', 'pymaild.log'))}
        r = self.imp(want=1)
        after = {k: v for k, v in
                 pmtest.tree_snapshot(self.inst.dir).items()
                 if not k.startswith(('maildir', 'pymaild.log'))}
        self.assertEqual(after, before, 'something changed outside MAILDIR')
        self.assertIn("'../evil' refused", r.stderr)
        self.assertIn("'a/b' refused", r.stderr)
        self.assertIn('dave refused', r.stderr)
        self.assertEqual(sorted(os.listdir(self.inst.maildir)),
                         ['.import.lock', '.lock', 'alice', 'users'])
        self.assertEqual(self.inst.users(), ['alice'])
        self.assertMaildir('alice', [as_stored(MSG_DOTS)])
        self.assertIn('users_refused', self.imp(json=True, want=1).stdout)

    def test_bad_messages_reported_others_imported(self):
        secret = os.path.join(self.inst.dir, 'secret')
        with open(secret, 'wb') as f:
            f.write(as_received([b'Subject: secret', b'', b'root only']))
        os.chmod(secret, 0o600)
        self.old.user('alice', 'pw', messages=[
            ('1', MSG_DOTS), ('2', MSG_8BIT), ('3', MSG_LONG),
            ('4', MSG_EMPTY_BODY), ('5', MSG_DOTS), ('6', MSG_8BIT)])
        # 2: truncated, 3: something after the end, 4: listed, no file,
        # 5: a link to a file outside, 6: a folder.
        self.old.write('alice/2', as_received(MSG_8BIT)[:-3])
        self.old.write('alice/3', as_received(MSG_LONG) + b'more\r\n')
        os.unlink(os.path.join(self.old.path, 'alice', '4'))
        os.unlink(os.path.join(self.old.path, 'alice', '5'))
        os.symlink(secret, os.path.join(self.old.path, 'alice', '5'))
        os.unlink(os.path.join(self.old.path, 'alice', '6'))
        os.mkdir(os.path.join(self.old.path, 'alice', '6'))
        with open(os.path.join(self.old.path, 'alice', 'mail'), 'a') as f:
            f.write('bad/uid\n7\n')
        self.old.write('alice/7', as_received(MSG_EMPTY_BODY))
        before = self.old.snapshot()
        r = self.imp(want=1)
        for uid in ('2', '3', '4', '5', '6'):
            self.assertRegex(r.stderr, r'(?m)^error: .*/alice/%s: ' % uid)
        self.assertIn('truncated', r.stderr)
        self.assertIn('after the final', r.stderr)
        self.assertIn('mail:7', r.stderr)
        self.assertEqual(self.user_lines(r)['alice'][0], 2)
        self.assertMaildir('alice', [as_stored(MSG_DOTS),
                                     as_stored(MSG_EMPTY_BODY)])
        self.assertEqual(self.old.snapshot(), before, 'DIR was changed')
        # Fixed in DIR, the next run imports them, once.
        self.old.write('alice/2', as_received(MSG_8BIT))
        r = self.imp(want=1)
        self.assertEqual(self.user_lines(r)['alice'][0], 1)
        self.assertMaildir('alice', [as_stored(m) for m in
                                     (MSG_DOTS, MSG_EMPTY_BODY, MSG_8BIT)])

    def test_unlisted_files_reported(self):
        self.old.user('alice', 'pw', messages=[('1', MSG_DOTS)])
        self.old.write('alice/99', as_received(MSG_LONG))
        r = self.imp()
        self.assertRegex(r.stderr, r'warning: .*alice: 1 files not listed '
                         r'.*: 99')
        self.assertMaildir('alice', [as_stored(MSG_DOTS)])

    def test_limits(self):
        self.old.user('alice', 'pw', options='enabled = True\n',
                      messages=[('1', MSG_DOTS), ('2', MSG_8BIT)])
        # A message over 1 GiB (sparse: no disk needed) and options over
        # 64 KiB are refused, not read.
        with open(os.path.join(self.old.path, 'alice', '2'), 'r+b') as f:
            f.truncate((1 << 30) + 1)
        self.old.write('alice/options', '# padding\n' * 7000 +
                       'mailboxsize = 1\n')
        r = self.imp(want=1)
        self.assertRegex(r.stderr, r'alice/2: over 1 GiB')
        self.assertRegex(r.stderr, r'alice/options: file too large')
        self.assertEqual(self.info('alice')['mailboxsize'], 10000000)
        self.assertMaildir('alice', [as_stored(MSG_DOTS)])

    def test_options_python_literals(self):
        self.old.write('default_options', '# 0.2 defaults\n'
                       'mailboxsize = 4000000   # four MB\n')
        self.old.user('alice', 'pw', options=(
            "mailboxsize=12345678L\n"
            "enabled = False\n"
            "color = 'blue'\n"            # not a pymaild option
            "maxmailsize = -5\n"          # refused value
            "garbage line\n"))
        r = self.imp(want=1)
        self.assertIn("option 'color' does not exist", r.stderr)
        self.assertRegex(r.stderr, r'alice/options:4: .*maxmailsize')
        self.assertRegex(r.stderr, r'alice/options:5: not a')
        a = self.info('alice')
        self.assertEqual((a['mailboxsize'], a['maxmailsize'], a['enabled']),
                         (12345678, 10000000, False))

    def test_existing_user_and_defaults_kept(self):
        r = self.inst.adm('adduser', 'alice', 'newpw')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.inst.adm('chopt', 'alice', 'mailboxsize', '555555')
        self.inst.adm('chdefaultopt', 'maxmailsize', '444444')
        hash_before = self.inst.user_hash('alice')
        self.old.write('default_options', 'maxmailsize = 1000\n')
        self.old.user('alice', 'oldpw', options='mailboxsize = 99999999\n',
                      messages=[('1', MSG_DOTS)])
        self.old.user('bob', 'bobpw', messages=[('1', MSG_8BIT)])
        r = self.imp()
        self.assertIn('already exists with another password hash', r.stderr)
        self.assertIn('kept its options', r.stderr)
        self.assertEqual(self.inst.user_hash('alice'), hash_before)
        self.assertEqual(self.info('alice')['mailboxsize'], 555555)
        # MAILDIR's defaults stay; the imported mailbox gets the old ones.
        self.assertEqual(self.inst.adm_json(
            'getinfo', 'bob')['maxmailsize'], 1000)
        with open(os.path.join(self.inst.maildir, 'default_options')) as f:
            self.assertIn('444444', f.read())
        self.assertMaildir('alice', [as_stored(MSG_DOTS)])
        self.assertEqual(self.user_lines(r)['bob'][0], 1)

    def test_json_summary(self):
        self.standard_folder()
        self.old.write('queued-1', as_received(MSG_DOTS))
        j = self.inst.adm_json('import', self.old.path)
        self.assertEqual({k: j[k] for k in (
            'users', 'users_added', 'users_refused', 'messages',
            'already_imported', 'queued_left', 'errors', 'ok')}, {
            'users': 3, 'users_added': 3, 'users_refused': 0,
            'messages': 5, 'already_imported': 0, 'queued_left': 1,
            'errors': 0, 'ok': True})
        self.assertEqual(j['bytes'], sum(
            self.info(u)['usedmailbox'] for u in ('alice', 'bob', 'carol')))
        j = self.inst.adm_json('import', self.old.path)
        self.assertEqual((j['messages'], j['already_imported'],
                          j['users_added']), (0, 5, 0))

    # -- refusals of the whole command ------------------------------------

    def test_not_a_pymaild_folder(self):
        r = self.imp(os.path.join(self.inst.dir, 'nothing'), want=1)
        self.assertIn('nothing', r.stderr)
        r = self.imp(want=1)                    # exists, no users file
        self.assertIn('users', r.stderr)
        self.assertEqual(self.inst.adm('import').returncode, 2)

    def test_maildir_itself_refused(self):
        self.inst.adm('adduser', 'alice', 'pw')
        before = pmtest.tree_snapshot(self.inst.maildir)
        r = self.imp(self.inst.maildir, want=1)
        self.assertIn('overlap', r.stderr)
        self.assertEqual(pmtest.tree_snapshot(self.inst.maildir), before)

    def test_reads_as_the_owner_of_dir(self):
        """As root, DIR is read with its owner's rights only: a file its
        owner could not read is not imported."""
        self.require_root()
        self.old.user('alice', 'pw', messages=[('1', MSG_DOTS),
                                               ('2', MSG_8BIT)])
        nobody = pmtest.uid_of('nobody')
        for dirpath, dirs, files in os.walk(self.old.path):
            for n in [dirpath] + [os.path.join(dirpath, f) for f in files]:
                os.chown(n, nobody, -1)
        p = os.path.join(self.old.path, 'alice', '2')
        os.chown(p, 0, 0)
        os.chmod(p, 0o600)
        r = self.imp(want=1)
        self.assertRegex(r.stderr, r'alice/2: Permission denied')
        self.assertMaildir('alice', [as_stored(MSG_DOTS)])

    # -- with the daemon running -----------------------------------------

    def test_daemon_running_login_with_old_password(self):
        self.inst.start()
        self.standard_folder()
        self.imp()
        s = smtplib.SMTP('127.0.0.1', self.inst.smtp_port, timeout=20)
        try:
            s.ehlo('client.test.example')
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login('alice', 'wrong')
        finally:
            s.close()
        s = smtplib.SMTP('127.0.0.1', self.inst.smtp_port, timeout=20)
        try:
            s.ehlo('client.test.example')
            code, _ = s.login('alice', 'alicepw')
            self.assertEqual(code, 235)
            s.quit()
        finally:
            s.close()
        # The parent stores a yescrypt hash after that login.
        self.assertTrue(wait_for(lambda: (self.inst.user_hash('alice') or
                                          '').startswith('$y$'), 10),
                        'hash of alice after login: %r'
                        % self.inst.user_hash('alice'))
        self.assertTrue(pmtest.verify_hash('alicepw',
                                           self.inst.user_hash('alice')))
        self.assertEqual(self.inst.user_hash('bob'), md5('bobpw'))
        # The imported mail is there over POP3, as sent by 0.2's clients.
        p = poplib.POP3('127.0.0.1', self.inst.pop3_port, timeout=20)
        try:
            p.user('alice')
            p.pass_('alicepw')
            self.assertEqual(p.stat()[0], 3)
            _, lines, _ = p.retr(2)
            self.assertEqual(b'\n'.join(lines) + b'\n', as_stored(MSG_8BIT))
            p.quit()
        finally:
            p.close()


if __name__ == '__main__':
    import unittest
    unittest.main()
