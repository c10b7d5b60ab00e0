"""The shared-store tests on a real distributed file system: GlusterFS.

The module makes a volume of two replicated bricks (lib/gluster.py) in
private network and mount namespaces of this test process, mounts it
twice through FUSE and runs the store tests of regress/shared/ with each
pymaild host on its own mount (PYMAILD_SHARED_MOUNTS): the POP3 lock
(OFD fcntl locks carried across the mounts), maildirsize (O_APPEND from
two clients, rename into new/ and cur/), changes seen by the other host,
unique host names, Dovecot's reading of the same Maildir.  Then the
concurrent deliveries again with one brick killed on the way.  Semantics
checks the file system's part directly on the two mounts (OFD locks,
appends, renames), so a failure can be told from pymaild's.

Without root, GlusterFS or a usable /dev/fuse the module is skipped and
says why; the same tests then run only on one local tree, from their own
files.  PYMAILD_SHARED_PER_HOST (default 300, 100 in a SANITIZE=1
build) sets the messages each
host delivers in the two concurrent tests; 1,000 took about 2 minutes a
test here, past the runner's PYMAILD_TEST_TIMEOUT (120 s): raise both.

    /usr/bin/python3 regress/run.py regress/shared/test_shared_gluster.py
"""

import errno
import fcntl
import os
import smtplib
import struct
import sys
import threading
import time
import unittest

from lib.sandboxutil import sanitize_build
# A sanitizer build runs the same code several times slower: its run
# looks for memory errors with fewer messages; the plain run stresses.
if sanitize_build():
    os.environ.setdefault('PYMAILD_SHARED_PER_HOST', '100')
from lib import gluster, pmtest, sharedutil
from lib.smtputil import make_message, smtp_session
import test_shared_changes
import test_shared_dovecot
import test_shared_hosts
import test_shared_lock
import test_shared_quota

PER_HOST = test_shared_quota.PER_HOST
USERS3 = test_shared_quota.USERS3
SEND_WAIT = 300.0
_volume = []


def setUpModule():
    why = gluster.missing()
    if why:
        raise unittest.SkipTest('no GlusterFS volume: %s' % why)
    g = gluster.Gluster(pmtest.TMPBASE, pmtest.KEEP)
    try:
        g.enter()
        g.start()
    except Exception:
        g.stop()
        raise
    _volume.append(g)
    os.environ[sharedutil.MOUNTS_VAR] = ':'.join(g.mounts)


def tearDownModule():
    os.environ.pop(sharedutil.MOUNTS_VAR, None)
    while _volume:
        _volume.pop().stop()


def on_gluster(cls):
    """cls again, as a test case of this module."""
    return type(cls.__name__, (cls,), {'__module__': __name__,
                                       '__doc__': cls.__doc__})


Lock = on_gluster(test_shared_lock.Lock)
Tools = on_gluster(test_shared_lock.Tools)
Quota = on_gluster(test_shared_quota.Quota)
Changes = on_gluster(test_shared_changes.Changes)
Hosts = on_gluster(test_shared_hosts.Hosts)
DovecotQuota = on_gluster(test_shared_dovecot.DovecotQuota)


def ofd_lock(fd):
    """Try an OFD write lock on all of fd's file: True, or False when
    another open file description holds one."""
    flock = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, flock)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class Semantics(unittest.TestCase):
    """What the store's mechanisms need of the file system, checked on
    the two mounts directly, so that a failure of pymaild's tests can be
    told from a file system that does not give it."""

    def setUp(self):
        self.a, self.b = _volume[0].mounts
        self.name = 'sem-%s' % self.id().rsplit('.', 1)[1]
        self.fds = []

    def tearDown(self):
        for fd in self.fds:
            os.close(fd)
        for p in (os.path.join(self.a, self.name),
                  os.path.join(self.a, self.name + '.tmp'),
                  os.path.join(self.a, self.name + '.lock')):
            if os.path.exists(p):
                os.unlink(p)

    def open(self, mount, flags=os.O_RDWR | os.O_CREAT):
        fd = os.open(os.path.join(mount, self.name), flags, 0o600)
        self.fds.append(fd)
        return fd

    def test_ofd_lock_across_mounts(self):
        fa = self.open(self.a)
        self.assertTrue(ofd_lock(fa))
        # Another open file description conflicts, even in this process
        # (what makes it an OFD lock, not a per-process POSIX one) ...
        self.assertFalse(ofd_lock(self.open(self.a)))
        # ... and on the other mount: the lock is the volume's.
        fb = self.open(self.b)
        self.assertFalse(ofd_lock(fb))
        # The holder's close frees it, within moments: FUSE sends the
        # release to gluster after close() has returned.
        self.fds.remove(fa)
        os.close(fa)
        self.assertTrue(pmtest.wait_for(lambda: ofd_lock(fb), 1.0))

    def append_lines(self, mount, tag, n, errors):
        """n lines, each by: exclusive OFD lock on NAME.lock, open, one
        O_APPEND write, close, unlock."""
        path = os.path.join(mount, self.name)
        try:
            for i in range(n):
                line = b'%s %d %s\n' % (tag, i, b'x' * (i % 23))
                lk = os.open(path + '.lock', os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.fcntl(lk, fcntl.F_OFD_SETLKW, struct.pack(
                        'hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                    try:
                        if os.write(fd, line) != len(line):
                            errors.append('%s %d: short write' % (tag, i))
                    finally:
                        os.close(fd)
                finally:
                    os.close(lk)
        except OSError as e:
            errors.append('%s: %r' % (tag, e))

    def test_append_from_both_mounts(self):
        # Whole lines from both hosts at once, none lost or overwritten,
        # when each append holds an exclusive lock.  Without it, O_APPEND
        # alone from the two mounts lost or cut lines on the bricks
        # themselves in 4 of 6 rounds of 2 x 300 lines (when a third
        # descriptor of the file was open), as open(2) warns for NFS.
        # The order between the hosts is not kept (write-behind) and need
        # not be: maildirsize is a sum.
        self.open(self.a)       # that third descriptor
        n, errors = 300, []
        threads = [threading.Thread(target=self.append_lines,
                                    args=(m, tag, n, errors))
                   for m, tag in ((self.a, b'a'), (self.b, b'b'))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        for m in (self.a, self.b):
            with open(os.path.join(m, self.name), 'rb') as f:
                lines = f.read().split(b'\n')
            self.assertEqual(lines.pop(), b'', m)
            want = sorted(b'%s %d %s' % (tag, i, b'x' * (i % 23))
                          for tag in (b'a', b'b') for i in range(n))
            self.assertEqual(sorted(lines), want, m)

    def test_rename_seen_at_next_open(self):
        path_a = os.path.join(self.a, self.name)
        path_b = os.path.join(self.b, self.name)
        for n in range(20):
            old, new = b'version %d\n' % n, b'version %d\n' % (n + 1)
            with open(path_a + '.tmp', 'wb') as f:
                f.write(old if n == 0 else b'')
            if n == 0:
                os.rename(path_a + '.tmp', path_a)
            with open(path_b, 'rb') as f:   # B has seen the old one
                self.assertEqual(f.read(), old)
            with open(path_a + '.tmp', 'wb') as f:
                f.write(new)
            os.rename(path_a + '.tmp', path_a)
            with open(path_b, 'rb') as f:
                self.assertEqual(f.read(), new, 'round %d' % n)
            st_a, st_b = os.stat(path_a), os.stat(path_b)
            self.assertEqual((st_a.st_ino, st_a.st_size),
                             (st_b.st_ino, st_b.st_size))


class BrickKilled(sharedutil.SharedCase):
    """Both hosts deliver while one brick's process is killed."""

    Q = test_shared_quota.Quota
    mdsize = Q.mdsize
    disk = Q.disk
    assert_sum_matches_disk = Q.assert_sum_matches_disk
    all_mids = Q.all_mids

    def setUp(self):
        super().setUp()
        r = self.a.adm('adduser', 'carol', 'carolpw')
        self.assertEqual(r.returncode, 0, r.stderr)

    def send_counted(self, host, tag, n, acked, refused):
        """n messages, one session; every 250 is written into acked
        (subject -> time), every refusal or broken session into refused;
        a broken session is opened again (a bounded number of times)."""
        i, reconnects = 0, 0
        while i < n and reconnects < 20:
            try:
                s = smtp_session(host)
                s.ehlo()
            except (OSError, smtplib.SMTPException) as e:
                refused.append('%s connect: %r' % (tag, e))
                reconnects += 1
                time.sleep(0.2)
                continue
            try:
                while i < n:
                    subj = '%s-%d' % (tag, i)
                    user = USERS3[i % len(USERS3)]
                    i += 1
                    msg = make_message(
                        subj, b'body of %s\r\n' % subj.encode(),
                        to='%s@test.example' % user,
                        mid='<%s@test.invalid>' % subj)
                    try:
                        s.sendmail('carol@sender.example',
                                   ['%s@test.example' % user], msg)
                    except smtplib.SMTPResponseException as e:
                        refused.append('%s: %d %r' % (subj, e.smtp_code,
                                                      e.smtp_error))
                        s.rset()
                        continue
                    acked[subj] = time.monotonic()
                s.quit()
            except (OSError, smtplib.SMTPException) as e:
                refused.append('%s session: %r' % (tag, e))
                reconnects += 1

    def test_deliveries_go_on_with_a_brick_killed(self):
        vol = _volume[0]
        self.addCleanup(vol.revive)     # the next tests want both
        acked, refused, threads = {}, [], []
        half = PER_HOST // 2
        for host, tag in ((self.a, 'a'), (self.b, 'b')):
            for part in range(2):
                t = threading.Thread(target=self.send_counted, args=(
                    host, '%s%d' % (tag, part), half, acked, refused))
                t.start()
                threads.append(t)
        # Half way through.  Gluster 10 leaves a replica 2 volume's client
        # quorum off (cluster.quorum-type none): either brick alone takes
        # writes, and the other is healed when it is back.
        self.assertTrue(pmtest.wait_for(lambda: len(acked) >= PER_HOST // 2,
                                        SEND_WAIT))
        killed_at = time.monotonic()
        vol.kill_brick(1)
        for t in threads:
            t.join(SEND_WAIT)
            self.assertFalse(t.is_alive(), 'a client did not finish')
        self.assertEqual(len(vol.brick_pids()), 1, 'the brick came back')
        sys.stderr.write('[%d acknowledged, %d after the kill; refused: '
                         '%d] ' % (len(acked), sum(
                             1 for t in acked.values() if t > killed_at),
                             len(refused)))
        for tag in ('a', 'b'):
            late = [s for s, t in acked.items()
                    if s.startswith(tag) and t > killed_at]
            self.assertTrue(late, 'host %s took nothing after the kill'
                            % tag)
        self.assertEqual(refused, [])
        want = set('<%s@test.invalid>' % s for s in acked)
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.all_mids()) >= len(want), SEND_WAIT),
            'only %d of %d delivered' % (len(self.all_mids()), len(want)))
        time.sleep(1.0)         # nothing more may come
        mids = self.all_mids()
        got = [m.decode() for _, m in mids]
        self.assertEqual(len(got), len(set(got)), 'a message twice')
        self.assertEqual(want - set(got), set(), 'acknowledged, lost')
        for u in USERS3:
            self.assert_sum_matches_disk(u)


if __name__ == '__main__':
    unittest.main()
