"""fail2ban (etc/fail2ban): real failed SMTP AUTH and POP3 logins, from
several IPv4 loopback addresses and ::1, beside good logins, mail whose
envelope carries text that looks like a failure line, and user names
that try the same; Debian's fail2ban-regex with the shipped filter must
match every failure, with its client address, and nothing else. The
shipped jail must load with that filter.

    /usr/bin/python3 regress/run.py regress/ops/test_fail2ban.py
"""

import base64
import collections
import os
import shutil
import smtplib
import socket
import subprocess

from lib import opsutil
from lib.opsutil import pmtest

FILTER = os.path.join(opsutil.ETC, 'fail2ban', 'filter.d', 'pymaild.conf')
JAIL = os.path.join(opsutil.ETC, 'fail2ban', 'jail.d', 'pymaild.conf')
# An address no client has: it may only come from text a client wrote.
PLANTED = '192.0.2.66'
LURE = 'x from=%s result=failed' % PLANTED


def host_of(src):
    return '::1' if ':' in src else '127.0.0.1'


def smtp_auth(inst, src, user, password):
    """One AUTH PLAIN (login() would try LOGIN after a failed PLAIN: two
    failures); True when it succeeded."""
    with smtplib.SMTP(host_of(src), inst.smtp_port, timeout=30,
                      source_address=(src, 0)) as s:
        s.ehlo()
        s.user, s.password = user, password
        try:
            s.auth('PLAIN', s.auth_plain)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


class Pop3:
    """A bare POP3 client bound to a source address (poplib cannot)."""

    def __init__(self, inst, src):
        self.sock = socket.create_connection(
            (host_of(src), inst.pop3_port), timeout=30,
            source_address=(src, 0))
        self.f = self.sock.makefile('rb')
        assert self.line().startswith('+OK')

    def line(self):
        return self.f.readline().decode('utf-8', 'replace').rstrip('\r\n')

    def cmd(self, text):
        self.sock.sendall(text.encode() + b'\r\n')
        return self.line()

    def close(self):
        try:
            self.cmd('QUIT')
        finally:
            self.f.close()
            self.sock.close()


def pop3_pass(inst, src, user, password):
    c = Pop3(inst, src)
    try:
        c.cmd('USER ' + user)
        return c.cmd('PASS ' + password).startswith('+OK')
    finally:
        c.close()


def pop3_auth_plain(inst, src, user, password):
    c = Pop3(inst, src)
    try:
        token = base64.b64encode(b'\0' + user.encode() + b'\0' +
                                 password.encode()).decode()
        return c.cmd('AUTH PLAIN ' + token).startswith('+OK')
    finally:
        c.close()


def lure_mail(inst, src):
    """A message whose envelope sender holds a fake failure line."""
    with smtplib.SMTP(host_of(src), inst.smtp_port, timeout=30,
                      source_address=(src, 0)) as s:
        s.sendmail('"%s"@client.example' % LURE,
                   ['%s@test.example' % opsutil.USER],
                   'Subject: lure\r\n\r\nlure\r\n')


class Fail2ban(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        if shutil.which('fail2ban-regex') is None:
            self.fail('fail2ban-regex is missing: make regress installs '
                      'fail2ban (Makefile TESTDEBS)')
        self.inst = self.instance(listen=['127.0.0.1', '::1'],
                                  noauthhosts=[])
        r = self.inst.adm('adduser', opsutil.USER, opsutil.PASSWORD)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.inst.start()

    def regex(self, *args):
        r = subprocess.run(['fail2ban-regex'] + list(args) +
                           [self.inst.logpath, FILTER],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120, cwd='/')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_filter_matches_failures_only(self):
        pw, bad = opsutil.PASSWORD, 'wrong'
        user = opsutil.USER
        # Each source address its own thread: the answer to a failure
        # waits a second per failure of that address.
        plan = {
            '127.0.0.2': [(smtp_auth, user, bad)],
            '127.0.0.3': [(pop3_pass, user, bad)],
            '127.0.0.4': [(smtp_auth, 'nosuch', bad)],
            '127.0.0.5': [(pop3_auth_plain, user, bad)],
            '127.0.0.6': [(smtp_auth, user, bad), (smtp_auth, user, bad)],
            '127.0.0.7': [(smtp_auth, user, pw), (pop3_pass, user, pw),
                          (pop3_auth_plain, user, pw)],
            # POP3 refuses such a USER before any password is checked:
            # no login failed, nothing to count.
            '127.0.0.8': [(smtp_auth, LURE, bad), (pop3_pass, LURE, pw)],
            '::1': [(smtp_auth, user, bad), (pop3_pass, user, bad),
                    (pop3_pass, user, pw)],
        }
        want = collections.Counter()
        results = {}

        def run(src):
            got = []
            for fn, u, p in plan[src]:
                got.append(fn(self.inst, src, u, p))
            lure_mail(self.inst, src)
            results[src] = got
        pmtest.in_threads(run, list(plan))
        for src, steps in plan.items():
            self.assertIn(src, results, 'the client of %s failed' % src)
            for (fn, u, p), ok in zip(steps, results[src]):
                self.assertEqual(ok, u == user and p == pw,
                                 '%s %s %s' % (src, fn.__name__, u))
                if not ok and not (fn is pop3_pass and u == LURE):
                    want[src] += 1
        log = self.inst.log()
        self.assertIn(PLANTED, log, 'the lure is not in the log: the test '
                      'proves nothing')
        got = collections.Counter(self.regex('-o', 'ip').split())
        self.assertEqual(sorted(got.items()), sorted(want.items()), log[-3000:])
        self.assertNotIn(PLANTED, got)
        summary = self.regex()
        self.assertRegex(summary, r'Lines: \d+ lines, 0 ignored, %d matched'
                         % sum(want.values()))

    def test_jail_loads_with_the_filter(self):
        # The shipped jail, enabled and pointed at this log, in a copy
        # of Debian's configuration: fail2ban-client reads it all.
        conf = os.path.join(self.inst.dir, 'fail2ban')
        shutil.copytree('/etc/fail2ban', conf, symlinks=True)
        for d in ('jail.d', 'fail2ban.d'):
            shutil.rmtree(os.path.join(conf, d), ignore_errors=True)
            os.mkdir(os.path.join(conf, d))
        shutil.copy(FILTER, os.path.join(conf, 'filter.d'))
        shutil.copy(JAIL, os.path.join(conf, 'jail.d'))
        with open(os.path.join(conf, 'jail.d', 'pymaild.local'), 'w') as f:
            f.write('[pymaild]\nenabled = true\nlogpath = %s\n'
                    % self.inst.logpath)
        with open(JAIL) as f:
            self.assertRegex(f.read(), r'(?m)^enabled\s*=\s*false$')
        r = subprocess.run(['fail2ban-client', '-c', conf, '-d'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120, cwd='/')
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("['add', 'pymaild', 'auto']", r.stdout)
        self.assertIn("['set', 'pymaild', 'addlogpath', '%s'"
                      % self.inst.logpath, r.stdout)
        self.assertIn("['set', 'pymaild', 'addfailregex'", r.stdout)
        self.assertIn('from=<ADDR> result=(?:failed|blocked)', r.stdout)


if __name__ == '__main__':
    import unittest
    unittest.main()
