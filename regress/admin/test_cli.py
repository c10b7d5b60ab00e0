"""The command line's manners (pymailadm(8), pymaild(8)): help on
standard output with status 0, errors on standard error with status 2,
--version from the one VERSION of the Makefile, `users` sorted.

    /usr/bin/python3 regress/run.py regress/admin/test_cli.py
"""

import os
import re

from lib import pmtest
from lib.pmtest import PYMAILADM, PYMAILD

COMMANDS = ('start', 'stop', 'status', 'reload', 'adduser', 'rmuser',
            'chpasswd', 'chopt', 'chdefaultopt', 'getinfo', 'users',
            'queue', 'flush', 'updatemx', 'import')


def makefile_version():
    with open(os.path.join(pmtest.ROOT, 'Makefile')) as f:
        m = re.search(r'^VERSION\s*[:?]?=\s*(\S+)\s*$', f.read(), re.M)
    if not m:
        raise AssertionError('no VERSION = line in the Makefile')
    return m.group(1)


class Cli(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        self.inst = self.instance()

    def run_adm(self, *args):
        return pmtest.run([PYMAILADM] + list(args), env=self.inst.env())

    def assertUsageOnStdout(self, r, prog='pymailadm'):
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '')
        self.assertRegex(r.stdout, r'^usage: %s ' % prog)

    def assertUsageError(self, r, *needles):
        self.assertEqual(r.returncode, 2, 'stdout %r stderr %r'
                         % (r.stdout, r.stderr))
        self.assertEqual(r.stdout, '')
        self.assertRegex(r.stderr, r'^pymailadm: ')
        for n in needles:
            self.assertIn(n, r.stderr)

    def test_help_to_stdout(self):
        # No config is read for help: a missing one does not matter.
        missing = os.path.join(self.inst.dir, 'nosuch.conf')
        for args in (['--help'], ['-h'], ['help'], ['-f', missing, 'help'],
                     ['--json', '--help']):
            with self.subTest(args=args):
                r = self.run_adm(*args)
                self.assertUsageOnStdout(r)
                for c in COMMANDS:
                    self.assertRegex(r.stdout, r'(?m)^  %s\b' % c)

    def test_errors_to_stderr_exit_2(self):
        for args, needles in (([], ('usage',)),
                              (['frobnicate'], ("'frobnicate'",)),
                              (['-Z', 'users'], ('-Z',)),
                              (['help', 'users'], ('help',)),
                              (['--version', 'users'], ('--version',))):
            with self.subTest(args=args):
                self.assertUsageError(self.run_adm(*args), *needles)

    def test_f_without_file_names_it(self):
        for args in (['-f'], ['--json', '-f']):
            with self.subTest(args=args):
                r = self.run_adm(*args)
                # "-f" as a command or an unknown option says nothing
                # of what is missing.
                self.assertUsageError(r, '-f', 'configuration file')
                self.assertNotIn('unknown', r.stderr)

    def test_version(self):
        v = makefile_version()
        r = self.run_adm('--version')
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, 'pymailadm %s\n' % v, ''))
        r = pmtest.run([PYMAILD, '--version'], env=self.inst.env())
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, 'pymaild %s\n' % v, ''))

    def test_pymaild_help_and_usage_error(self):
        r = pmtest.run([PYMAILD, '--help'], env=self.inst.env())
        self.assertUsageOnStdout(r, 'pymaild')
        r = pmtest.run([PYMAILD, '-Z'], env=self.inst.env())
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, '')
        self.assertIn('usage: pymaild', r.stderr)

    def test_users_sorted(self):
        names = ['mike', 'alice', 'zed', 'bob', 'a0', 'a-b']
        for n in names:
            r = self.inst.adm('adduser', n, 'secret')
            self.assertEqual(r.returncode, 0, r.stderr)
        # The file keeps the order of creation; the listing does not.
        self.assertEqual(self.inst.users(), names)
        r = self.inst.adm('users')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), sorted(names))


if __name__ == '__main__':
    import unittest
    unittest.main()
