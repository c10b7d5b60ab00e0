"""pymailadm and the daemon's life cycle against DESIGN.md A1, A2, A3, A7.

Run with the suite (make regress) or alone:
    /usr/bin/python3 regress/run.py -k test_admin
"""

import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time

from lib import pmtest
from lib.pmtest import (IS_ROOT, PYMAILADM, PYMAILD, ROLES,
                        pid_alive, port_open, wait_for)

MAILBOX_DIRS = ('tmp', 'new', 'cur')
USERS_LINE = re.compile(r'^[a-z0-9][a-z0-9._-]{0,63}:\$y\$\S+$')
NUMERIC_KEYS = ('usedmailbox', 'waitingmails', 'mailboxsize', 'maxmailsize')

# Refused by adduser (and never reach the disk), DESIGN.md A1.
BAD_NAMES = [
    '..', '.', 'a/b', '/etc', '../x', '-x', '.x', 'x' * 65, '',
    'users', 'default_options', 'mxservers', 'queue', 'USERS', 'Queue',
    'a b', 'a@b', 'a:b', 'a\nb', 'caf\u00e9', 'a+b', 'a\\b',
]
# Names that would escape or clobber MAILDIR if a command trusted them.
DANGEROUS_NAMES = ['.', '..', '../maildir', 'a/b', '/', 'users', 'queue',
                   'default_options', 'mxservers']
GOOD_NAMES = ['a', '0abc', 'a.b-c_d', 'x' * 64, 'a-', 'z9']


def parse_kv(text):
    """getinfo's key=value lines as a dict; AssertionError on a bad line."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        k, sep, v = line.partition('=')
        if not sep or not k:
            raise AssertionError('not a key=value line: %r' % line)
        out[k] = v
    return out


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def out_err(r):
    return r.stdout + r.stderr


class AdminCase(pmtest.TestCase):
    """One fresh instance per test, daemon stopped unless a test starts it."""

    def setUp(self):
        super().setUp()
        self.inst = self.instance()

    def adm_ok(self, *args, input=None):
        r = self.inst.adm(*args, input=input)
        self.assertEqual(r.returncode, 0, 'pymailadm %s: exit %d\nstdout: %r'
                         '\nstderr: %r' % (' '.join(args), r.returncode,
                                           r.stdout, r.stderr))
        return r

    def adduser(self, name, password='secret'):
        r = self.adm_ok('adduser', name, password)
        self.assertIn('User added.', r.stdout.splitlines())
        return r

    def info(self, user):
        return parse_kv(self.adm_ok('getinfo', user).stdout)

    def assertMailbox(self, name):
        for sub in MAILBOX_DIRS:
            d = os.path.join(self.inst.maildir, name, 'Maildir', sub)
            self.assertTrue(os.path.isdir(d), '%s missing' % d)

    def assertUnchanged(self, before, what=''):
        after = pmtest.tree_snapshot(self.inst.dir)
        # The log may grow; everything else must be byte-identical.
        for snap in (before, after):
            for k in list(snap):
                if k.startswith(('pymaild.log', 'sanitizer')):
                    del snap[k]
        if before != after:
            added = sorted(set(after) - set(before))
            gone = sorted(set(before) - set(after))
            changed = sorted(k for k in set(before) & set(after)
                             if before[k] != after[k])
            self.fail('%s changed the disk: added %s, removed %s, '
                      'changed %s' % (what, added, gone, changed))

    def snapshot(self):
        return pmtest.tree_snapshot(self.inst.dir)

    def parallel_adm(self, argvs, inputs=None, timeout=60):
        """Run several pymailadm at once; returns [(rc, out, err)]."""
        procs = []
        try:
            for i, a in enumerate(argvs):
                procs.append(subprocess.Popen(
                    [PYMAILADM, '-f', self.inst.conf] + list(a),
                    stdin=subprocess.PIPE if inputs else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, env=self.inst.env(), cwd='/',
                    start_new_session=True))
            res = []
            deadline = time.monotonic() + timeout
            for i, p in enumerate(procs):
                out, err = p.communicate(
                    inputs[i] if inputs else None,
                    timeout=max(1, deadline - time.monotonic()))
                res.append((p.returncode, out, err))
            return res
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    def concurrent_adduser(self):
        n = 20
        names = ['user%02d' % i for i in range(n)]
        res = self.parallel_adm([('adduser', u, 'pw-' + u) for u in names])
        for u, (rc, out, err) in zip(names, res):
            self.assertEqual(rc, 0, 'adduser %s: %r %r' % (u, out, err))
            self.assertIn('User added.', out.splitlines())
        with open(self.inst.usersfile) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), n, lines)
        for line in lines:
            self.assertRegex(line, USERS_LINE)
        self.assertEqual(sorted(self.inst.users()), names)
        r = self.adm_ok('users')
        self.assertEqual(sorted(r.stdout.splitlines()), names)
        for u in names:
            self.assertMailbox(u)
            self.assertTrue(pmtest.verify_hash('pw-' + u,
                                               self.inst.user_hash(u)), u)


# ----------------------------------------------------------------------
# User management with the daemon stopped

class UserCommands(AdminCase):

    def test_adduser_with_arguments(self):
        r = self.inst.adm('adduser', 'alice', 'secret')   # stdin: /dev/null
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), 'User added.')
        self.assertEqual(self.inst.users(), ['alice'])
        self.assertMailbox('alice')
        h = self.inst.user_hash('alice')
        self.assertTrue(h.startswith('$y$'), 'hash %r is not yescrypt' % h)
        self.assertTrue(pmtest.verify_hash('secret', h))
        self.assertFalse(pmtest.verify_hash('secret2', h))

    def test_users_file_format(self):
        for n in ('alice', 'bob', 'carol'):
            self.adduser(n, 'pw-' + n)
        with open(self.inst.usersfile) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 3)
        for line in lines:
            self.assertRegex(line, USERS_LINE)
        for n in ('alice', 'bob', 'carol'):
            self.assertTrue(pmtest.verify_hash('pw-' + n,
                                               self.inst.user_hash(n)))

    def test_adduser_password_from_stdin(self):
        r = self.inst.adm('adduser', 'bob', '-', input='hunter2 has: spaces\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('User added.', r.stdout.splitlines())
        h = self.inst.user_hash('bob')
        self.assertTrue(pmtest.verify_hash('hunter2 has: spaces', h),
                        'stored hash is not of the line read from stdin')
        self.assertMailbox('bob')

    def test_adduser_prompts_on_tty(self):
        prompts = []

        def answer(prompt):
            prompts.append(prompt)
            if len(prompts) > 5:
                return None
            low = prompt.lower()
            if ('user' in low or 'name' in low) and 'pass' not in low:
                return 'dave'
            return 'tty-secret'

        rc, out = pmtest.run_tty([PYMAILADM, '-f', self.inst.conf,
                                  'adduser'], answer, env=self.inst.env())
        self.assertEqual(rc, 0, 'output: %r' % out)
        self.assertIn('User added.', out)
        self.assertNotIn('tty-secret', out, 'the password was echoed')
        self.assertEqual(self.inst.users(), ['dave'])
        self.assertTrue(pmtest.verify_hash('tty-secret',
                                           self.inst.user_hash('dave')))
        # chpasswd USER prompts for the password the same way.
        prompts.clear()

        def new_password(prompt):
            prompts.append(prompt)
            return 'tty-new' if len(prompts) <= 5 else None

        rc, out = pmtest.run_tty([PYMAILADM, '-f', self.inst.conf,
                                  'chpasswd', 'dave'], new_password,
                                 env=self.inst.env())
        self.assertEqual(rc, 0, 'output: %r' % out)
        self.assertIn('Password changed.', out)
        self.assertNotIn('tty-new', out, 'the password was echoed')
        self.assertTrue(pmtest.verify_hash('tty-new',
                                           self.inst.user_hash('dave')))

    def test_adduser_without_password_and_no_tty_fails(self):
        # No terminal and no "-": nothing to read a password from.  It must
        # fail rather than hang or create a user with an empty password.
        r = self.inst.adm('adduser', 'erin')
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn('erin', self.inst.users())

    def test_adduser_duplicate(self):
        self.adduser('alice')
        before = self.snapshot()
        for name in ('alice', 'ALICE'):
            with self.subTest(name=name):
                r = self.inst.adm('adduser', name, 'other')
                self.assertOneLineError(r)
        self.assertUnchanged(before, 'duplicate adduser')
        self.assertTrue(pmtest.verify_hash('secret',
                                           self.inst.user_hash('alice')))

    def test_uppercase_stored_lowercase(self):
        self.adduser('Alice.Smith')
        self.assertEqual(self.inst.users(), ['alice.smith'])
        self.assertMailbox('alice.smith')
        self.assertFalse(os.path.exists(os.path.join(self.inst.maildir,
                                                     'Alice.Smith')))
        r = self.adm_ok('users')
        self.assertEqual(r.stdout.split(), ['alice.smith'])
        self.assertIn('usedmailbox', self.info('ALICE.SMITH'))
        r = self.adm_ok('rmuser', 'ALICE.SMITH')
        self.assertIn('User deleted.', r.stdout.splitlines())
        self.assertEqual(self.inst.users(), [])

    def test_invalid_names_refused(self):
        self.adduser('alice')
        for name in BAD_NAMES:
            with self.subTest(name=name):
                before = self.snapshot()
                r = self.inst.adm('adduser', name, 'secret')
                self.assertOneLineError(r)
                self.assertUnchanged(before, 'adduser %r' % name)
        self.assertEqual(self.inst.users(), ['alice'])

    def test_dangerous_names_touch_nothing(self):
        # Every command taking a user name refuses names that would reach
        # outside MAILDIR/USER or onto the daemon's own files.
        self.adduser('alice')
        qdir = os.path.join(self.inst.maildir, 'queue')
        os.makedirs(qdir, exist_ok=True)
        with open(os.path.join(qdir, 'keep-me'), 'w') as f:
            f.write('queued\n')
        with open(os.path.join(self.inst.maildir, 'default_options'),
                  'a'):
            pass
        for name in DANGEROUS_NAMES:
            for cmd in (['rmuser', name], ['getinfo', name],
                        ['chpasswd', name, 'x'],
                        ['chopt', name, 'mailboxsize', '1']):
                with self.subTest(cmd=cmd):
                    before = self.snapshot()
                    r = self.inst.adm(*cmd)
                    self.assertOneLineError(r)
                    self.assertUnchanged(before, ' '.join(cmd))
        self.assertTrue(os.path.isfile(os.path.join(qdir, 'keep-me')))
        self.assertEqual(self.inst.users(), ['alice'])

    def test_valid_name_edges(self):
        for name in GOOD_NAMES:
            with self.subTest(name=name):
                self.adduser(name)
                self.assertMailbox(name)
        self.assertEqual(sorted(self.inst.users()), sorted(GOOD_NAMES))

    def test_rmuser(self):
        self.adduser('alice')
        self.adduser('bob')
        r = self.adm_ok('rmuser', 'alice')
        self.assertEqual(r.stdout.strip(), 'User deleted.')
        self.assertEqual(self.inst.users(), ['bob'])
        self.assertFalse(os.path.exists(os.path.join(self.inst.maildir,
                                                     'alice')))
        self.assertMailbox('bob')
        r = self.inst.adm('rmuser', 'alice')
        self.assertMessage(self.assertOneLineError(r), 'No such user.')
        self.assertEqual(self.inst.users(), ['bob'])

    def test_chpasswd(self):
        self.adduser('alice', 'old-pw')
        r = self.adm_ok('chpasswd', 'alice', 'new-pw')
        self.assertEqual(r.stdout.strip(), 'Password changed.')
        h = self.inst.user_hash('alice')
        self.assertTrue(h.startswith('$y$'))
        self.assertTrue(pmtest.verify_hash('new-pw', h))
        self.assertFalse(pmtest.verify_hash('old-pw', h))
        r = self.adm_ok('chpasswd', 'alice', '-', input='stdin-pw\n')
        self.assertIn('Password changed.', r.stdout.splitlines())
        self.assertTrue(pmtest.verify_hash('stdin-pw',
                                           self.inst.user_hash('alice')))
        r = self.inst.adm('chpasswd', 'nosuch', 'x')
        self.assertMessage(self.assertOneLineError(r), 'No such user.')
        self.assertEqual(self.inst.users(), ['alice'])

    def test_users_lists_names(self):
        r = self.adm_ok('users')        # fresh: no MAILDIR yet
        self.assertEqual(r.stdout.strip(), '')
        for n in ('carol', 'alice', 'bob'):
            self.adduser(n)
        r = self.adm_ok('users')
        self.assertEqual(sorted(r.stdout.splitlines()),
                         ['alice', 'bob', 'carol'])

    def test_relative_paths_from_config_folder(self):
        # pymailadm runs with cwd "/": "maildir" means DIR/maildir.
        self.adduser('alice')
        self.assertTrue(os.path.isdir(os.path.join(self.inst.dir, 'maildir',
                                                   'alice')))
        self.assertFalse(os.path.exists('/maildir'))

    def test_concurrent_adduser(self):
        self.concurrent_adduser()


# ----------------------------------------------------------------------
# getinfo, chopt, chdefaultopt

class MailboxOptions(AdminCase):

    def setUp(self):
        super().setUp()
        self.adduser('alice')

    def test_getinfo_text(self):
        info = self.info('alice')
        self.assertEqual(info.get('usedmailbox'), '0')
        self.assertEqual(info.get('waitingmails'), '0')
        self.assertEqual(info.get('pop3server'),
                         'mail.test.example:%d' % self.inst.pop3_port)
        self.assertEqual(info.get('smtpserver'),
                         'mail.test.example:%d' % self.inst.smtp_port)
        self.assertEqual(info.get('mailboxsize'), '10000000')
        self.assertRegex(info.get('maxmailsize', ''), r'^\d+$')
        self.assertIn(info.get('enabled'), ('true', 'yes', '1'))

    def test_getinfo_json(self):
        obj = self.inst.adm_json('getinfo', 'alice')
        self.assertIsInstance(obj, dict)
        for k in NUMERIC_KEYS:
            self.assertTrue(is_int(obj.get(k)), '%s=%r is not a number'
                            % (k, obj.get(k)))
        self.assertEqual(obj['usedmailbox'], 0)
        self.assertEqual(obj['waitingmails'], 0)
        self.assertEqual(obj['mailboxsize'], 10000000)
        self.assertIs(obj.get('enabled'), True)
        self.assertEqual(obj.get('pop3server'),
                         'mail.test.example:%d' % self.inst.pop3_port)
        self.assertEqual(obj.get('smtpserver'),
                         'mail.test.example:%d' % self.inst.smtp_port)
        # Same keys as the text form.
        self.assertEqual(sorted(obj), sorted(self.info('alice')))

    def test_getinfo_counts_messages(self):
        md = os.path.join(self.inst.maildir, 'alice', 'Maildir')
        files = {'new/1700000000.M1P1.mail.test.example': b'a' * 123,
                 'cur/1700000001.M2P1.mail.test.example:2,S': b'b' * 77,
                 'tmp/1700000002.M3P1.mail.test.example': b'c' * 1000}
        for rel, data in files.items():
            with open(os.path.join(md, rel), 'wb') as f:
                f.write(data)
        obj = self.inst.adm_json('getinfo', 'alice')
        self.assertEqual(obj['usedmailbox'], 200, 'new + cur, not tmp')
        self.assertEqual(obj['waitingmails'], 2)
        self.assertEqual(len(self.inst.maildir_files('alice')), 2)

    def test_getinfo_unknown_user(self):
        for js in (False, True):
            r = self.inst.adm('getinfo', 'nosuch', json=js)
            self.assertMessage(self.assertOneLineError(r), 'No such user.')

    def test_chopt_good_values(self):
        self.adm_ok('chopt', 'alice', 'mailboxsize', '5000')
        self.adm_ok('chopt', 'alice', 'maxmailsize', '1000')
        obj = self.inst.adm_json('getinfo', 'alice')
        self.assertEqual(obj['mailboxsize'], 5000)
        self.assertEqual(obj['maxmailsize'], 1000)
        self.assertEqual(self.info('alice')['mailboxsize'], '5000')
        with open(os.path.join(self.inst.maildir, 'alice', 'options')) as f:
            self.assertRegex(f.read(), r'mailboxsize\s*=\s*5000')
        for text, want in (('false', False), ('true', True), ('no', False),
                           ('yes', True), ('0', False), ('1', True)):
            with self.subTest(enabled=text):
                self.adm_ok('chopt', 'alice', 'enabled', text)
                self.assertIs(self.inst.adm_json('getinfo', 'alice')
                              ['enabled'], want)

    def test_chopt_unknown_option(self):
        before = self.snapshot()
        r = self.inst.adm('chopt', 'alice', 'bogusopt', '1')
        self.assertOneLineError(r, 'bogusopt')
        self.assertUnchanged(before, 'chopt with an unknown option')

    def test_chopt_bad_values(self):
        before = self.snapshot()
        for key, value in (('mailboxsize', 'abc'), ('mailboxsize', '-1'),
                           ('mailboxsize', '12abc'), ('mailboxsize', ''),
                           ('mailboxsize', '99999999999999999999999'),
                           ('maxmailsize', '1.5'), ('enabled', 'maybe'),
                           ('enabled', '2')):
            with self.subTest(key=key, value=value):
                r = self.inst.adm('chopt', 'alice', key, value)
                self.assertOneLineError(r)
        self.assertUnchanged(before, 'chopt with bad values')
        self.assertEqual(self.inst.adm_json('getinfo', 'alice')
                         ['mailboxsize'], 10000000)

    def test_chopt_unknown_user(self):
        before = self.snapshot()
        r = self.inst.adm('chopt', 'nosuch', 'mailboxsize', '1')
        self.assertOneLineError(r, 'no such user')
        self.assertUnchanged(before, 'chopt of an unknown user')

    def test_chdefaultopt_affects_new_users_only(self):
        self.adm_ok('chdefaultopt', 'mailboxsize', '2000')
        self.adm_ok('chdefaultopt', 'enabled', 'no')
        self.assertTrue(os.path.isfile(os.path.join(self.inst.maildir,
                                                    'default_options')))
        self.adduser('bob')
        a = self.inst.adm_json('getinfo', 'alice')
        b = self.inst.adm_json('getinfo', 'bob')
        self.assertEqual(a['mailboxsize'], 10000000)
        self.assertIs(a['enabled'], True)
        self.assertEqual(b['mailboxsize'], 2000)
        self.assertIs(b['enabled'], False)

    def test_chdefaultopt_bad(self):
        before = self.snapshot()
        for args in (('bogusopt', '1'), ('mailboxsize', 'lots'),
                     ('enabled', 'perhaps')):
            with self.subTest(args=args):
                r = self.inst.adm('chdefaultopt', *args)
                self.assertOneLineError(r)
        self.assertUnchanged(before, 'bad chdefaultopt')


# ----------------------------------------------------------------------
# Command line, config and database errors

class Errors(AdminCase):

    def test_usage_errors_exit_2(self):
        self.adduser('alice')
        before = self.snapshot()
        for args in ([], ['frobnicate'], ['adduser', 'a', 'b', 'c'],
                     ['rmuser'], ['rmuser', 'alice', 'bob'], ['getinfo'],
                     ['getinfo', 'alice', 'bob'], ['chopt'],
                     ['chopt', 'alice', 'mailboxsize'],
                     ['chopt', 'alice', 'mailboxsize', '1', '2'],
                     ['chdefaultopt', 'mailboxsize'], ['users', 'extra'],
                     ['status', 'extra'], ['-Z', 'users']):
            with self.subTest(args=args):
                r = self.inst.adm(*args)
                self.assertEqual(r.returncode, 2, 'pymailadm %s: %r %r'
                                 % (args, r.stdout, r.stderr))
                self.assertTrue(r.stderr.strip(), 'no usage message')
        self.assertUnchanged(before, 'usage errors')
        self.assertEqual(self.inst.users(), ['alice'])

    def test_missing_config_file(self):
        missing = os.path.join(self.inst.dir, 'nosuch.conf')
        r = pmtest.run([PYMAILADM, '-f', missing, 'users'])
        self.assertOneLineError(r, 'nosuch.conf')
        r = pmtest.run([PYMAILD, '-n', '-f', missing])
        self.assertEqual(r.returncode, 1)
        self.assertIn('nosuch.conf', out_err(r))

    def corrupt_users(self, garbage):
        self.adduser('alice')
        with open(self.inst.usersfile, 'a') as f:
            f.write(garbage)
        before = self.snapshot()
        for cmd in (['users'], ['adduser', 'bob', 'pw'], ['rmuser', 'alice'],
                    ['chpasswd', 'alice', 'x'], ['getinfo', 'alice'],
                    ['chopt', 'alice', 'mailboxsize', '1']):
            with self.subTest(cmd=cmd):
                r = self.inst.adm(*cmd)
                self.assertOneLineError(r)
                self.assertUnchanged(before, '%s on a corrupt users file'
                                     % ' '.join(cmd))

    def test_corrupt_users_file_garbage_line(self):
        self.corrupt_users('this line is garbage\n')

    def test_corrupt_users_file_bad_name(self):
        self.corrupt_users('../evil:$y$j9T$abcdefghijklmnop$0123456789\n')

    def test_config_unknown_key_every_command(self):
        self.adduser('alice')
        text = self.inst.write_config(extra=['smtpport = 25;'])
        line = pmtest.line_of(text, 'smtpport')
        before = self.snapshot()
        for cmd in (['users'], ['adduser', 'bob', 'pw'], ['rmuser', 'alice'],
                    ['chpasswd', 'alice', 'x'], ['getinfo', 'alice'],
                    ['chopt', 'alice', 'mailboxsize', '1'],
                    ['chdefaultopt', 'mailboxsize', '1'], ['start'],
                    ['stop'], ['status'], ['reload'], ['queue'], ['flush'],
                    ['updatemx'], ['stats'], ['show', '0123456789abcdef']):
            with self.subTest(cmd=cmd):
                r = self.inst.adm(*cmd)
                self.assertOneLineError(r, self.inst.conf, ':%d' % line,
                                        'smtpport')
                self.assertUnchanged(before, '%s with a bad config'
                                     % ' '.join(cmd))
        self.assertFalse(port_open(self.inst.smtp_port))
        self.assertFalse(port_open(self.inst.pop3_port))


# ----------------------------------------------------------------------
# pymaild -n and the helper binaries

class CheckConfig(AdminCase):

    def check_fails(self, text, *needles):
        with open(self.inst.conf, 'w') as f:
            f.write(text)
        r = self.inst.check_config()
        self.assertEqual(r.returncode, 1, 'pymaild -n accepted:\n%s\n%r'
                         % (text, out_err(r)))
        for n in needles:
            self.assertIn(n, out_err(r))
        return r

    def test_check_good_config(self):
        r = self.inst.check_config()
        self.assertEqual(r.returncode, 0, out_err(r))
        self.assertFalse(os.path.exists(self.inst.pidfile))
        self.assertFalse(port_open(self.inst.smtp_port))

    def test_check_minimal_config(self):
        with open(self.inst.conf, 'w') as f:
            f.write('serverhostname = "mail.test.example";\n'
                    'localdomains = [ "test.example" ];\n'
                    'maildir = "maildir";\n')
        r = self.inst.check_config()
        self.assertEqual(r.returncode, 0, out_err(r))

    def test_check_unknown_key(self):
        text = pmtest.cfg_text(self.inst.config, ['smtpport = 25;'])
        line = pmtest.line_of(text, 'smtpport')
        self.check_fails(text, self.inst.conf, ':%d' % line, 'smtpport')

    def test_check_wrong_types(self):
        for key, raw in (('smtpserverport', '"25"'), ('localdomains', '42'),
                         ('timeout', '"30"'), ('requireauth', '"maybe"')):
            with self.subTest(key=key):
                settings = dict(self.inst.config)
                settings.pop(key, None)
                text = pmtest.cfg_text(settings, ['%s = %s;' % (key, raw)])
                line = pmtest.line_of(text, key + ' =')
                self.check_fails(text, key, ':%d' % line)

    def test_check_impossible_values(self):
        for key, value in (('smtpserverport', 70000),
                           ('pop3serverport', -1), ('loglevel', 9),
                           ('maxsessions', -5),
                           ('listen', ['not an address']),
                           ('noauthhosts', ['10.0.0.0/33'])):
            with self.subTest(key=key, value=value):
                settings = dict(self.inst.config)
                settings[key] = value
                text = pmtest.cfg_text(settings)
                line = pmtest.line_of(text, key + ' =')
                self.check_fails(text, key, ':%d' % line)

    def test_check_syntax_error(self):
        text = pmtest.cfg_text(self.inst.config, ['this is not libconfig'])
        line = pmtest.line_of(text, 'this is not')
        self.check_fails(text, self.inst.conf, ':%d' % line)

    def test_check_warns_missing_postmaster(self):
        # postmaster defaults to "root", which has no mailbox here.
        r = self.inst.check_config()
        self.assertEqual(r.returncode, 0, out_err(r))
        self.assertIn('postmaster', out_err(r).lower())

    def test_check_missing_accounts_as_root(self):
        self.require_root()
        for key in ('user', 'queueuser'):
            with self.subTest(key=key):
                settings = dict(self.inst.config)
                settings[key] = '_pm_no_such_user'
                self.check_fails(pmtest.cfg_text(settings),
                                 '_pm_no_such_user')

    def test_check_accounts_need_not_exist_unprivileged(self):
        self.inst.write_config(user='_pm_no_such_user',
                               queueuser='_pm_no_such_user')
        argv = [PYMAILD, '-n', '-f', self.inst.conf]
        if IS_ROOT:
            argv = ['setpriv', '--reuid=65534', '--regid=65534',
                    '--clear-groups',
                    pmtest.programs_for(65534, 65534)['pymaild']] + argv[1:]
        r = pmtest.run(argv, env=self.inst.env())
        self.assertEqual(r.returncode, 0, out_err(r))

    def test_helpers_refuse_manual_start(self):
        for role, path in sorted(pmtest.HELPERS.items()):
            with self.subTest(role=role):
                pmtest.require_built(path)
                r = pmtest.run([path], timeout=10)
                self.assertEqual(r.returncode, 1, out_err(r))
                self.assertIn('must be started by pymaild', out_err(r))


# ----------------------------------------------------------------------
# The daemon's life cycle

class Daemon(AdminCase):

    def assertStopped(self, procs=None):
        """Every daemon process gone, ports refused, status says so."""
        procs = procs if procs is not None else dict(self.inst.procs)
        alive = [p for p, st in procs.items() if pid_alive(p, st)]
        self.assertEqual(alive, [], 'still running: %s' % [
            (p, pmtest.proc_cmdline(p)) for p in alive])
        self.assertFalse(port_open(self.inst.smtp_port), 'SMTP port open')
        self.assertFalse(port_open(self.inst.pop3_port), 'POP3 port open')
        r = self.inst.adm('status')
        self.assertEqual(r.returncode, 1, out_err(r))
        self.assertIn('pymaild is not running.', out_err(r))

    def wait_stopped(self, timeout=10):
        procs = dict(self.inst.procs)
        wait_for(lambda: not any(pid_alive(p, st)
                                 for p, st in procs.items()), timeout)
        self.assertStopped(procs)

    def test_start_status_stop(self):
        pid = self.inst.start()
        self.assertRegex(self.inst.started.stdout.strip(),
                         r'^pymaild started, PID is %d$' % pid)
        self.assertEqual(self.inst.pid(), pid)
        # start returns once every port listens: no waiting here.
        self.assertTrue(port_open(self.inst.smtp_port), 'SMTP not listening')
        self.assertTrue(port_open(self.inst.pop3_port), 'POP3 not listening')
        self.inst.wait_roles()
        r = self.adm_ok('status')
        self.assertIn(str(pid), r.stdout)
        procs = dict(self.inst.procs)
        self.assertGreaterEqual(len(procs), 5)
        r = self.inst.stop()
        self.assertEqual(r.returncode, 0, out_err(r))
        # stop waits for every process and removes the pidfile.
        self.assertFalse(os.path.exists(self.inst.pidfile))
        self.assertStopped(procs)

    def test_start_twice(self):
        pid = self.inst.start()
        r = self.inst.adm('start')
        self.assertOneLineError(r)
        self.assertEqual(self.inst.pid(), pid)
        self.assertTrue(pid_alive(pid))
        self.assertTrue(port_open(self.inst.smtp_port))

    def test_status_and_stop_when_not_running(self):
        r = self.inst.adm('status')
        self.assertEqual(r.returncode, 1)
        self.assertIn('pymaild is not running.', out_err(r))
        r = self.inst.adm('stop')
        self.assertMessage(self.assertOneLineError(r),
                           'pymaild is not running.')

    def test_start_writes_log(self):
        self.inst.start()
        self.assertTrue(wait_for(lambda: self.inst.log().strip(), 5),
                        'nothing in %s' % self.inst.logpath)

    def test_folders_created_at_start(self):
        self.assertFalse(os.path.exists(self.inst.maildir))
        self.inst.start()
        self.assertTrue(os.path.isdir(self.inst.maildir))
        self.assertTrue(os.path.isdir(self.inst.spooldir))
        if IS_ROOT:
            for path, user in ((self.inst.maildir, pmtest.DAEMON_USER),
                               (self.inst.spooldir, pmtest.QUEUE_USER)):
                st = os.stat(path)
                self.assertEqual(st.st_uid, pmtest.uid_of(user), path)
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, path)

    def test_foreground(self):
        p = self.inst.start_foreground()
        self.inst.wait_ports()
        wait_for(lambda: self.inst.pid() == p.pid, 5)
        self.assertEqual(self.inst.pid(), p.pid, '-d writes the pidfile too')
        self.inst.wait_roles()
        r = self.adm_ok('status')
        self.assertIn(str(p.pid), r.stdout)
        r = self.inst.stop()
        self.assertEqual(r.returncode, 0, out_err(r))
        self.assertEqual(p.wait(pmtest.STOP_TIMEOUT), 0)
        self.assertTrue(self.inst.log().strip(), '-d logs nothing to stderr')
        self.assertStopped()

    def test_start_fails_when_port_taken(self):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', self.inst.pop3_port))
            s.listen(1)
            r = self.inst.adm('start')
            self.assertOneLineError(r)
            self.inst._note_daemon()
            self.assertTrue(wait_for(lambda: not self.inst.running(), 5),
                            'a daemon is left running after a failed start')
            self.assertFalse(port_open(self.inst.smtp_port),
                             'SMTP still bound after a failed start')

    def test_stale_pidfile_dead_process(self):
        dead = subprocess.Popen(['true'])
        dead.wait()
        with open(self.inst.pidfile, 'w') as f:
            f.write('%d\n' % dead.pid)
        r = self.inst.adm('status')
        self.assertEqual(r.returncode, 1, out_err(r))
        pid = self.inst.start()
        self.assertNotEqual(pid, dead.pid)
        self.assertEqual(self.inst.pid(), pid)

    def test_stale_pidfile_unrelated_live_process(self):
        # After a crash and reboot the PID may belong to someone else:
        # never signal it, never let it block the start.
        sleeper = subprocess.Popen(['sleep', '60'], start_new_session=True)
        self.addCleanup(lambda: (sleeper.kill(), sleeper.wait()))
        with open(self.inst.pidfile, 'w') as f:
            f.write('%d\n' % sleeper.pid)
        for cmd in ('status', 'stop'):
            r = self.inst.adm(cmd)
            self.assertEqual(r.returncode, 1, out_err(r))
            self.assertIn('pymaild is not running.', out_err(r))
        self.assertIsNone(sleeper.poll(), 'pymailadm signalled PID %d'
                          % sleeper.pid)
        pid = self.inst.start()
        self.assertNotEqual(pid, sleeper.pid)
        r = self.inst.stop()
        self.assertEqual(r.returncode, 0, out_err(r))
        self.assertIsNone(sleeper.poll())

    def test_stale_control_socket(self):
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(self.inst.sockpath)      # left behind: nobody listens
        self.assertTrue(stat.S_ISSOCK(os.stat(self.inst.sockpath).st_mode))
        self.inst.start()
        self.adm_ok('status')

    def test_restart_after_crash(self):
        pid = self.inst.start()
        roles = self.inst.wait_roles()
        every = [pid] + sorted(roles.values())
        for p in every:                     # freeze, then kill: no cleanup
            os.kill(p, signal.SIGSTOP)
        for p in every:
            os.kill(p, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: not any(pid_alive(p)
                                                 for p in every), 5))
        pid2 = self.inst.start()
        self.assertNotEqual(pid2, pid)
        self.assertTrue(port_open(self.inst.smtp_port))
        self.adm_ok('status')

    def test_parent_killed_children_exit(self):
        pid = self.inst.start()
        roles = self.inst.wait_roles()
        os.kill(pid, signal.SIGKILL)
        kids = list(roles.values())
        self.assertTrue(wait_for(lambda: not any(pid_alive(p) for p in kids),
                                 10), 'helpers outlive their parent: %s'
                        % [(p, pmtest.proc_cmdline(p)) for p in kids
                           if pid_alive(p)])
        self.assertFalse(port_open(self.inst.smtp_port))

    def test_child_killed_stops_daemon(self):
        for role in ROLES:
            with self.subTest(role=role):
                pid = self.inst.start()
                roles = self.inst.wait_roles()
                self.assertIn(role, roles)
                logged = len(self.inst.log())
                os.kill(roles[role], signal.SIGKILL)
                self.wait_stopped()
                self.assertFalse(pid_alive(pid))
                new = self.inst.log()[logged:]
                why = [l for l in new.splitlines() if role in l and re.search(
                    r'signal|killed|died|exit|terminat|lost', l, re.I)]
                self.assertTrue(why, 'the log does not say %s died:\n%s'
                                % (role, new))
                self.inst.procs = {}

    def test_process_titles(self):
        pid = self.inst.start()
        self.inst.wait_roles()
        _, roles, other = self.inst.processes()
        self.assertIn('pymaild', pmtest.proc_cmdline(pid))
        for role in ROLES:
            self.assertEqual(len(roles.get(role, [])), 1,
                             '%s: %s (children: %s)' % (
                                 role, roles.get(role),
                                 [(c, pmtest.proc_cmdline(c)) for c in
                                  pmtest.children(pid)]))
            self.assertEqual(pmtest.proc_ppid(roles[role][0]), pid)

    def test_privileges_as_root(self):
        self.require_root()
        self.inst.start()
        roles = self.inst.wait_roles()
        self.assertEqual(sorted(roles), sorted(ROLES), 'helpers found')
        uid = pmtest.uid_of(pmtest.DAEMON_USER)
        quid = pmtest.uid_of(pmtest.QUEUE_USER)
        ouid = pmtest.uid_of(pmtest.OUTBOUND_USER)
        for role in ROLES:
            p = roles[role]
            want = {'queued': quid, 'outbound': ouid}.get(role, uid)
            with self.subTest(role=role):
                self.assertEqual(pmtest.proc_uids(p), (want,) * 4)
                gids = pmtest.proc_gids(p)
                self.assertNotIn(0, gids)
                groups = pmtest.proc_status(p).get('Groups', '').split()
                self.assertNotIn('0', groups)
                root = pmtest.proc_root(p)
                if role == 'queued':
                    self.assertEqual(os.path.realpath(root),
                                     os.path.realpath(self.inst.spooldir))
                else:
                    self.assertNotEqual(root, '/', '%s is not chrooted'
                                        % role)

    def test_unprivileged_start(self):
        # Not root: the same five processes, no user change, no chroot,
        # and a warning in the log (DESIGN.md A2).  As root the test runs
        # pymailadm as "nobody" in a folder that user owns.
        adm = PYMAILADM
        if IS_ROOT:
            os.chown(self.inst.dir, 65534, 65534)
            pre = ['setpriv', '--reuid=65534', '--regid=65534',
                   '--clear-groups']
            uid = 65534
            # The tree may be in a folder nobody cannot enter (/root).
            adm = pmtest.programs_for(65534, 65534)['pymailadm']
        else:
            pre, uid = [], os.geteuid()
        r = pmtest.run(pre + [adm, '-f', self.inst.conf, 'start'],
                       env=self.inst.env())
        self.assertEqual(r.returncode, 0, out_err(r))
        m = re.search(r'pymaild started, PID is (\d+)', r.stdout)
        self.assertTrue(m, r.stdout)
        pid = int(m.group(1))
        self.inst._remember(pid)
        roles = self.inst.wait_roles()
        self.assertEqual(sorted(roles), sorted(ROLES))
        for p in [pid] + list(roles.values()):
            self.assertEqual(pmtest.proc_uids(p)[1], uid,
                             pmtest.proc_cmdline(p))
            self.assertEqual(pmtest.proc_root(p), '/',
                             pmtest.proc_cmdline(p))
        self.assertTrue(port_open(self.inst.smtp_port))
        self.assertRegex(self.inst.log(), r'(?i)warn|not root|privilege|'
                         r'chroot')
        r = pmtest.run(pre + [adm, '-f', self.inst.conf, 'stop'],
                       env=self.inst.env())
        self.assertEqual(r.returncode, 0, out_err(r))
        self.assertStopped()

    def test_root_mailbox_ownership(self):
        # As root the parent runs as `user`, which owns MAILDIR: whatever
        # pymailadm creates there must belong to it too (the queue to
        # `queueuser`).
        self.require_root()
        self.adduser('alice')               # daemon stopped
        self.inst.start()
        self.adduser('bob')                 # daemon running
        uid = pmtest.uid_of(pmtest.DAEMON_USER)
        quid = pmtest.uid_of(pmtest.QUEUE_USER)
        for dirpath, dirnames, filenames in os.walk(self.inst.maildir):
            for n in dirnames + filenames + ['.']:
                p = os.path.normpath(os.path.join(dirpath, n))
                if n.endswith('.lock'):
                    continue
                inqueue = os.path.commonpath([p, self.inst.spooldir]) == \
                    self.inst.spooldir
                self.assertEqual(os.lstat(p).st_uid, quid if inqueue else uid,
                                 p)

    def test_reload(self):
        pid = self.inst.start()
        self.assertRegex(pmtest.banner(self.inst.smtp_port),
                         r'^220 mail\.test\.example ')
        self.inst.write_config(serverhostname='reloaded.test.example')
        self.adm_ok('reload')
        self.assertEqual(self.inst.pid(), pid)
        self.assertTrue(pid_alive(pid))
        self.assertTrue(wait_for(lambda: 'reloaded.test.example' in
                                 pmtest.banner(self.inst.smtp_port), 5),
                        'the new serverhostname is not used after reload')

    def test_reload_bad_config_keeps_old(self):
        pid = self.inst.start()
        text = self.inst.write_config(extra=['bogus_key = 1;'],
                                      serverhostname='bad.test.example')
        line = pmtest.line_of(text, 'bogus_key')
        r = self.inst.adm('reload')
        self.assertOneLineError(r, 'bogus_key', ':%d' % line)
        self.assertTrue(pid_alive(pid))
        self.assertTrue(port_open(self.inst.smtp_port))
        self.assertTrue(port_open(self.inst.pop3_port))
        self.assertRegex(pmtest.banner(self.inst.smtp_port),
                         r'^220 mail\.test\.example ')
        self.inst.write_config(extra=None, serverhostname='mail.test.example')
        self.adm_ok('status')

    def test_sighup_reload(self):
        pid = self.inst.start()
        self.inst.write_config(serverhostname='hup.test.example')
        os.kill(pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: 'hup.test.example' in
                                 pmtest.banner(self.inst.smtp_port), 5),
                        'SIGHUP did not reload')
        self.assertTrue(pid_alive(pid))
        self.assertEqual(self.inst.pid(), pid)

    def test_sighup_bad_config_keeps_running(self):
        pid = self.inst.start()
        roles = self.inst.wait_roles()
        self.inst.write_config(extra=['bogus_key = 1;'],
                               serverhostname='bad.test.example')
        os.kill(pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: 'bogus_key' in self.inst.log(), 5),
                        'the failed reload is not logged:\n%s'
                        % self.inst.log_tail())
        time.sleep(0.2)
        self.assertTrue(pid_alive(pid))
        for p in roles.values():
            self.assertTrue(pid_alive(p))
        self.assertRegex(pmtest.banner(self.inst.smtp_port),
                         r'^220 mail\.test\.example ')

    def test_reload_keeps_sessions(self):
        self.inst.start()
        with socket.create_connection(('127.0.0.1', self.inst.smtp_port),
                                      timeout=5) as smtp, \
                socket.create_connection(('127.0.0.1', self.inst.pop3_port),
                                         timeout=5) as pop:
            self.assertReply(smtp, '220')
            self.assertReply(pop, '+OK')
            self.adm_ok('reload')
            smtp.sendall(b'NOOP\r\n')
            self.assertReply(smtp, '250')
            pop.sendall(b'CAPA\r\n')
            self.assertReply(pop, '+OK')

    def test_stop_refuses_new_connections_lets_sessions_finish(self):
        self.inst.start()
        self.inst.wait_roles()
        procs = dict(self.inst.procs)
        smtp = socket.create_connection(('127.0.0.1', self.inst.smtp_port),
                                        timeout=5)
        self.addCleanup(smtp.close)
        self.assertReply(smtp, '220')
        res = {}
        t = threading.Thread(target=lambda: res.update(r=self.inst.adm(
            'stop', timeout=pmtest.STOP_TIMEOUT)))
        t.start()
        try:
            self.assertTrue(wait_for(lambda: not port_open(
                self.inst.smtp_port, timeout=0.3), 5),
                'new connections still accepted during stop')
            self.assertTrue(t.is_alive(), 'stop did not wait for the '
                            'open session')
            smtp.sendall(b'NOOP\r\n')
            self.assertReply(smtp, '250', 'the open session during stop')
            smtp.sendall(b'QUIT\r\n')
            self.assertReply(smtp, '221')
        finally:
            t.join(pmtest.STOP_TIMEOUT + 5)
        self.assertEqual(res['r'].returncode, 0, out_err(res['r']))
        self.assertStopped(procs)

    def test_user_management_while_running(self):
        pid = self.inst.start()
        self.adduser('alice')
        self.assertMailbox('alice')
        self.assertEqual(self.adm_ok('users').stdout.split(), ['alice'])
        obj = self.inst.adm_json('getinfo', 'alice')
        self.assertEqual(obj['usedmailbox'], 0)
        self.adm_ok('chopt', 'alice', 'mailboxsize', '4242')
        self.assertEqual(self.inst.adm_json('getinfo', 'alice')
                         ['mailboxsize'], 4242)
        r = self.adm_ok('chpasswd', 'alice', 'changed')
        self.assertIn('Password changed.', r.stdout.splitlines())
        self.assertTrue(pmtest.verify_hash('changed',
                                           self.inst.user_hash('alice')))
        r = self.adm_ok('rmuser', 'alice')
        self.assertIn('User deleted.', r.stdout.splitlines())
        self.assertEqual(self.inst.users(), [])
        self.assertTrue(pid_alive(pid))
        self.adm_ok('status')

    def test_concurrent_adduser_while_running(self):
        self.inst.start()
        self.concurrent_adduser()
        self.adm_ok('status')


if __name__ == '__main__':
    import unittest
    unittest.main()
