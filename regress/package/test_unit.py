"""The systemd unit, etc/pymaild.service, read by systemd's own tools:
`systemd-analyze security` rates it 3.0 or lower, `systemd-analyze
verify` finds nothing wrong, its paths agree with etc/pymaild.conf, and
its system call filter lets through every call the helpers' own filters
allow (a helper making one the unit forbids would be killed).

Starting it under systemd is test_deb.py's UnderSystemd: it needs the
package.

    /usr/bin/python3 regress/run.py regress/package/test_unit.py
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from lib import pmtest

UNIT = os.path.join(pmtest.ROOT, 'etc', 'pymaild.service')
CONF = os.path.join(pmtest.ROOT, 'etc', 'pymaild.conf')
SANDBOX_C = os.path.join(pmtest.ROOT, 'common', 'sandbox.c')
MAX_EXPOSURE = 3.0


def analyze(*args):
    return subprocess.run(['systemd-analyze', '--no-pager'] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def unit_values(text, key):
    """Every value of key in the unit, in order."""
    return re.findall(r'^%s=(.*)$' % re.escape(key), text, re.M)


def conf_value(text, key):
    m = re.search(r'^%s\s*=\s*"([^"]*)"\s*;' % re.escape(key), text, re.M)
    return m.group(1) if m else None


def syscall_groups():
    """{'@group': [members]} as this systemd defines them."""
    r = analyze('syscall-filter')
    groups, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith('@'):
            cur = groups.setdefault(line.split()[0], [])
        elif cur is not None and line.startswith('    ') and \
                not line.strip().startswith('#') and line.strip():
            cur.append(line.split()[0])
    return groups


def expand(names, groups, seen=()):
    out = set()
    for n in names:
        if n.startswith('@'):
            if n not in groups:
                raise AssertionError('unknown system call group %s' % n)
            if n not in seen:
                out |= expand(groups[n], groups, seen + (n,))
        else:
            out.add(n)
    return out


class Unit(unittest.TestCase):

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if shutil.which('systemd-analyze') is None:
            raise AssertionError('systemd-analyze is missing: make deps '
                                 'installs systemd')
        with open(UNIT) as f:
            cls.text = f.read()
        with open(CONF) as f:
            cls.conf = f.read()

    def test_exposure_at_most_3(self):
        r = analyze('security', '--offline=yes', UNIT)
        m = re.search(r'Overall exposure level for pymaild\.service: '
                      r'(\d+\.\d+)', r.stdout)
        self.assertTrue(m, r.stdout[-2000:] + r.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)

    def test_verify(self):
        # The unit names the installed programs; pointed at this tree's
        # build instead, verify can check that they exist and run.
        pmtest.require_built()
        progs = {'pymaild': pmtest.PYMAILD, 'pymailadm': pmtest.PYMAILADM}
        text = re.sub(r'/usr/local/sbin/(\w+)',
                      lambda m: progs[m.group(1)], self.text)
        d = tempfile.mkdtemp(prefix='pmunit-', dir=pmtest.TMPBASE)
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'pymaild.service')
        with open(path, 'w') as f:
            f.write(text)
        r = analyze('verify', '--man=no', path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, '')

    def test_restarts_on_failure(self):
        # A helper that fails stops the daemon with exit 1 (fail closed).
        self.assertEqual(unit_values(self.text, 'Restart'), ['on-failure'])

    def test_paths_agree_with_the_configuration(self):
        pidfile = conf_value(self.conf, 'pidfile')
        sock = conf_value(self.conf, 'controlsocket')
        maildir = conf_value(self.conf, 'maildir')
        run = lambda p: re.sub(r'^/var/run/', '/run/', p)
        self.assertEqual(unit_values(self.text, 'PIDFile'), [run(pidfile)])
        writable = ' '.join(unit_values(self.text, 'ReadWritePaths'))
        writable = [p.lstrip('-') for p in writable.split()]
        self.assertEqual(unit_values(self.text, 'ProtectSystem'),
                         ['strict'])
        for path in (maildir, os.path.dirname(run(pidfile)),
                     os.path.dirname(run(sock))):
            self.assertIn(path, writable)

    def test_helpers_calls_are_allowed(self):
        groups = syscall_groups()
        self.assertIn('@system-service', groups)
        lines = unit_values(self.text, 'SystemCallFilter')
        self.assertTrue(lines and not lines[0].startswith('~'),
                        'the first SystemCallFilter= must be an allow list')
        allowed = set()
        for line in lines:
            if line.startswith('~'):
                allowed -= expand(line[1:].split(), groups)
            else:
                allowed |= expand(line.split(), groups)
        with open(SANDBOX_C) as f:
            used = set(re.findall(r'SCMP_SYS\((\w+)\)', f.read()))
        self.assertTrue(used)
        # seccomp to load their filters, chroot to get into their folder.
        used |= {'seccomp', 'chroot', 'setresuid', 'setresgid', 'setgroups',
                 'prctl', 'execve'}
        self.assertEqual(sorted(used - allowed), [])


if __name__ == '__main__':
    unittest.main()
