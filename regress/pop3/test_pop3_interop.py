"""POP3 with clients we did not write: SMTP in (smtplib) -> POP3 out
(poplib) byte for byte, and Debian's mpop retrieving a mailbox.

mpop comes from the Makefile's test dependencies; when it is missing and
cannot be installed the interop test is skipped with the reason.

    /usr/bin/python3 regress/run.py -k test_pop3_interop
"""

import os
import shutil
import smtplib
import subprocess
import tempfile

from lib.pop3util import CRLF, Pop3Case, pop_form, wait_for

from lib import pmtest

# Messages as an SMTP client would send them (CRLF, not dot-stuffed).
ROUND_TRIP = [
    b'Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n...three\r\nend\r\n',
    b'Subject: long\r\n\r\n' + b'L' * 998 + b'\r\n' + b'.' + b'M' * 997 +
    b'\r\n',
    b'Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' +
    'gr\u00fc\u00dfe, \u00e9t\u00e9, \u65e5\u672c\r\n'.encode() +
    bytes(range(0x80, 0x100)) + b'\r\n',
    b'Subject: empty body\r\n\r\n',
]


def find_tool(name):
    """The program, installed with apt-get when missing (as root and
    when the network allows); None when it cannot be had."""
    path = shutil.which(name)
    if path or os.geteuid() != 0:
        return path
    try:
        subprocess.run(['apt-get', 'install', '-y', '-qq', name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'),
                       timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return shutil.which(name)


class Interop(Pop3Case):

    def test_smtp_to_pop3_byte_exact(self):
        with smtplib.SMTP('127.0.0.1', self.inst.smtp_port,
                          timeout=30) as s:
            for m in ROUND_TRIP:
                s.sendmail('sender@remote.example', ['alice@test.example'], m)
        self.assertTrue(wait_for(lambda: len(self.files()) ==
                                 len(ROUND_TRIP), 30), self.files())
        stored = {}
        for f in self.files():
            with open(os.path.join(self.mdir(), f), 'rb') as fp:
                data = fp.read()
            stored[data] = f
        p = self.pop()
        _, listing, _ = p.list()
        got = []
        for line in listing:
            no, size = map(int, line.split())
            resp, lines, octets = p.retr(no)
            body = CRLF.join(lines) + CRLF
            # LIST, RETR's +OK and what came are the same figure.
            self.assertEqual(len(body), size)
            self.assertEqual(resp, b'+OK %d octets' % size)
            got.append(body)
        p.quit()
        for sent in ROUND_TRIP:
            match = [g for g in got if g.endswith(b'\r\n\r\n' + sent.split(
                b'\r\n\r\n', 1)[1]) and sent.split(b'\r\n\r\n')[0] in g]
            self.assertEqual(len(match), 1, sent[:40])
            # What POP3 sends is exactly the stored file in CRLF form.
            self.assertIn(match[0], [pop_form(d) for d in stored])

    def test_mpop_retrieves_the_mailbox(self):
        mpop = find_tool('mpop')
        if mpop is None:
            self.skipTest('mpop is not installed and cannot be installed '
                          'here (add it to the Makefile TESTDEBS)')
        bodies = [b'Subject: m%d\n\n.dot\nline %d\n' % (i, i)
                  for i in range(20)]
        bodies.append(b'Subject: big\n\n' + b'x' * 200000 + b'\n')
        for b in bodies:
            self.put(b)
        out = tempfile.mkdtemp(prefix='mpop-', dir=self.inst.dir)
        for sub in ('new', 'cur', 'tmp'):
            os.mkdir(os.path.join(out, sub))
        argv = [mpop, '--host=127.0.0.1', '--port=%d' % self.port,
                '--tls=off', '--auth=user', '--user=alice',
                '--passwordeval=echo alicepw',
                '--delivery=maildir,' + out, '--keep=off',
                '--received-header=off',
                '--uidls-file=' + os.path.join(self.inst.dir, 'uidls'),
                '--pipelining=on', '--only-new=off']
        r = pmtest.run(argv, timeout=60, env=dict(os.environ, HOME=out))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        names = os.listdir(os.path.join(out, 'new'))
        self.assertEqual(len(names), len(bodies))
        got = set()
        for n in names:
            with open(os.path.join(out, 'new', n), 'rb') as f:
                got.add(f.read().replace(b'\r\n', b'\n'))
        self.assertEqual(got, set(bodies))
        # --keep=off: mpop deleted them at QUIT.
        self.assertEqual(self.files(), [])
