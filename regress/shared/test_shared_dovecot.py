"""Dovecot, pointed at the same store with its Maildir++ quota backend
(`quota = maildir`), agrees with pymaild on a mailbox's usage, and each
honours what the other wrote to maildirsize:

- after deliveries through both pymaild hosts and POP3 deletions (which
  append negative lines), `doveadm quota get` reports the messages and
  the kilobytes pymaild's maildirsize adds up to, and the same after
  `doveadm quota recalc` has recounted the files on its own;
- after that recount (Dovecot rewrote the file) pymaild appends to it
  and its sum still matches the files;
- a message Dovecot saves (`doveadm save`, which appends its own line)
  counts for pymaild: the next delivery that would pass the limit is
  refused with 452 4.2.2 on both hosts; once Dovecot expunges it, they
  accept again.

Dovecot runs privately (own config, base_dir and log in the test's
folder, no protocol listening: doveadm needs only its auth service).

    /usr/bin/python3 regress/run.py regress/shared/test_shared_dovecot.py
"""

import contextlib
import os
import signal
import subprocess

from lib.sharedutil import SharedCase
from lib import pmtest
from lib.smtputil import make_message, smtp_session
from test_shared_quota import parse_maildirsize

DOVECOT = '/usr/sbin/dovecot'
DOVEADM = '/usr/bin/doveadm'
LIMIT = 60000
BODY = (b'd' * 78 + b'\r\n') * 40           # 3,200 octets

CONF = """\
protocols =
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/%n/Maildir
mail_plugins = quota
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/%n
}}
passdb {{
  driver = static
  args = nopassword
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage={limit}B
}}
"""


class Dovecot:
    def __init__(self, folder, root, uid, gid):
        self.dir = folder
        for sub in ('run', 'state'):
            os.makedirs(os.path.join(folder, sub))
        self.conf = os.path.join(folder, 'dovecot.conf')
        with open(self.conf, 'w') as f:
            f.write(CONF.format(d=folder, root=root, uid=uid, gid=gid,
                                limit=LIMIT))
        self.proc = subprocess.Popen([DOVECOT, '-F', '-c', self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        sock = os.path.join(folder, 'run', 'auth-userdb')
        if not pmtest.wait_for(lambda: os.path.exists(sock), 15):
            self.stop()
            raise AssertionError('dovecot did not start:\n' + self.log())

    def log(self):
        with contextlib.suppress(OSError):
            with open(os.path.join(self.dir, 'dovecot.log')) as f:
                return f.read()[-3000:]
        return ''

    def adm(self, *args, data=None):
        r = subprocess.run([DOVEADM, '-c', self.conf] + list(args),
                           input=data, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError('doveadm %s: exit %d: %s\n%s' % (
                ' '.join(args), r.returncode,
                r.stderr.decode('utf-8', 'replace'), self.log()))
        return r.stdout.decode('utf-8', 'replace')

    def quota(self, user):
        """(kilobytes, messages) as `doveadm quota get` reports them."""
        out = self.adm('-f', 'tab', 'quota', 'get', '-u', user)
        got = {}
        for line in out.splitlines()[1:]:
            f = line.split('\t')
            got[f[1]] = int(f[2])
        return got['STORAGE'], got['MESSAGE']

    def stop(self):
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def kilobytes(octets):
    """Dovecot shows the storage figure in kilobytes, rounded up."""
    return (octets + 1023) // 1024


class DovecotQuota(SharedCase):

    def setUp(self):
        super().setUp()
        if not (os.access(DOVECOT, os.X_OK) and os.access(DOVEADM, os.X_OK)):
            self.fail('dovecot-core is not installed (make deps installs '
                      'it)')
        r = self.a.adm('chopt', 'alice', 'mailboxsize', str(LIMIT))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.n = 0

    def dovecot(self):
        st = os.stat(self.mdir())
        folder = os.path.join(self.a.dir, 'dovecot')
        d = Dovecot(folder, self.a.maildir, st.st_uid, st.st_gid)
        self.addCleanup(d.stop)
        return d

    def files(self):
        return [p for p in pmtest.maildir_files(self.a.maildir, 'alice')]

    def disk(self):
        files = self.files()
        return sum(os.stat(p).st_size for p in files), len(files)

    def ours(self):
        """(octets, messages) that maildirsize adds up to."""
        with open(os.path.join(self.mdir(), 'maildirsize'), 'rb') as f:
            limit, octets, count = parse_maildirsize(f.read())
        self.assertEqual(limit, b'%dS' % LIMIT)
        return octets, count

    def deliver(self, host):
        self.n += 1
        want = len(self.files()) + 1
        s = smtp_session(host)
        s.ehlo()
        s.sendmail('carol@sender.example', ['alice@test.example'],
                   make_message('dovecot %d' % self.n, BODY))
        s.quit()
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.files()) == want, 20))

    def rcpt(self, host):
        s = smtp_session(host)
        s.ehlo()
        s.mail('carol@sender.example', ['SIZE=%d' % (len(BODY) + 400)])
        code, text = s.rcpt('alice@test.example')
        s.quit()
        return code, text

    def test_usage_agrees_both_ways(self):
        for i in range(8):
            self.deliver((self.a, self.b)[i % 2])
        c = self.raw(self.b)
        self.assertTrue(c.login().startswith(b'+OK'))
        c.ok('DELE 2')
        c.ok('DELE 5')
        c.ok('QUIT')
        octets, count = self.ours()
        self.assertEqual((octets, count), self.disk())
        self.assertEqual(count, 6)
        d = self.dovecot()
        self.assertEqual(d.quota('alice'), (kilobytes(octets), count))
        # Dovecot's own count of the files, written back to maildirsize.
        d.adm('quota', 'recalc', '-u', 'alice')
        self.assertEqual(d.quota('alice'), (kilobytes(octets), count))
        self.assertEqual(self.ours(), (octets, count))
        # pymaild goes on from the file Dovecot wrote.
        self.deliver(self.a)
        self.assertEqual(self.ours(), self.disk())
        self.assertEqual(d.quota('alice'), (kilobytes(self.disk()[0]),
                                             count + 1))

    def test_dovecot_save_counts_for_pymaild(self):
        for i in range(4):
            self.deliver((self.a, self.b)[i % 2])
        d = self.dovecot()
        used, _ = self.disk()
        # Dovecot saves what leaves less room than one more delivery.
        room = LIMIT - used - len(BODY) // 2
        big = (b'Subject: saved by dovecot\r\n\r\n' +
               (b's' * 98 + b'\r\n') * (room // 100))
        d.adm('save', '-u', 'alice', data=big)
        self.assertEqual(len(self.files()), 5)
        self.assertEqual(self.ours(), self.disk())
        for host in (self.a, self.b):
            code, text = self.rcpt(host)
            self.assertEqual(code, 452, (host.config['serverhostname'], text))
            self.assertTrue(text.startswith(b'4.2.2'), text)
        d.adm('expunge', '-u', 'alice', 'mailbox', 'INBOX', 'HEADER',
              'Subject', 'saved by dovecot')
        self.assertEqual(len(self.files()), 4)
        self.assertEqual(self.ours(), self.disk())
        for host in (self.a, self.b):
            code, text = self.rcpt(host)
            self.assertEqual(code, 250, (host.config['serverhostname'], text))
