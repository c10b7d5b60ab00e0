"""`make` works the first time on a fresh checkout (README: Build and
install), plain and SANITIZE=1: no "No rule to make target" because the
flags stamp, written while make reads the Makefile, was not seen yet.

The checkout is made of the files git tracks (as a clone would hold
them, with the working tree's changes), in a private folder (mode 0700,
as /root is); `make -n` is enough to see make give up, and takes no
build time. CI builds a real clone for good (.ci/run).

    /usr/bin/python3 regress/run.py regress/build/test_fresh_clone.py
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from lib import pmtest
from lib.checkout import fresh_copy


class FreshCheckout(unittest.TestCase):

    def setUp(self):
        if not os.path.exists(os.path.join(pmtest.ROOT, '.git')):
            self.skipTest('not a git checkout: no fresh clone to compare')
        if shutil.which('git') is None:
            self.fail('git is missing but the tree is a git checkout')
        self.dir = tempfile.mkdtemp(prefix='pmclone-', dir=pmtest.TMPBASE)
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o700)
        fresh_copy(pmtest.ROOT, self.dir)

    def make_n(self, *args):
        env = dict(os.environ)
        for v in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL'):
            env.pop(v, None)
        return subprocess.run(['make', '-n', '-C', self.dir] + list(args),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=env, timeout=120)

    def assertMakes(self, *args):
        r = self.make_n(*args)
        self.assertEqual(r.returncode, 0, 'make -n %s on a fresh checkout:'
                         '\n%s' % (' '.join(args), r.stdout[-2000:]))
        self.assertNotIn('No rule to make target', r.stdout)
        self.assertIn('-o pymaild/pymaild', r.stdout)

    def test_nothing_built_yet(self):
        self.assertFalse(os.path.exists(os.path.join(self.dir,
                                                     '.build-flags')))
        self.assertFalse(os.path.exists(os.path.join(self.dir, 'pymaild',
                                                     'pymaild')))

    def test_make(self):
        self.assertMakes()

    def test_make_sanitize(self):
        self.assertMakes('SANITIZE=1')

    def test_make_regress_build(self):
        # What `make regress` runs after deps and accounts.
        self.assertMakes('REGRESS=1', 'all')

    def test_flags_change_then_make(self):
        self.assertMakes()
        os.unlink(os.path.join(self.dir, '.build-flags'))
        self.assertMakes('SANITIZE=1')


if __name__ == '__main__':
    unittest.main()
