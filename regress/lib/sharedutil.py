"""sharedutil: two pymaild hosts on one mail store, for regress/shared/.

Each host is a pmtest.Instance with its own ports, spool, pidfile,
control socket and log; only MAILDIR is shared, as DESIGN.md says of
several hosts on one store.

Where the store lives is the fixture's business (store_paths): by
default one local folder that both instances name (the fallback when no
distributed file system is at hand); PYMAILD_SHARED_MOUNTS="A:B" gives
two mount points of one volume (GlusterFS, NFSv4), each instance on its
own, and the same tests run there. Every test case says which it ran.

Standard library only; Debian's /usr/bin/python3.
"""

import os
import signal
import sys
import tempfile

from lib import pmtest
from lib.pop3util import (Raw, USERS, pop_form,              # noqa: F401
                          unique_name)

MOUNTS_VAR = 'PYMAILD_SHARED_MOUNTS'
_said = []


def store_paths(test):
    """(MAILDIR for host A, MAILDIR for host B, what they are)."""
    mounts = os.environ.get(MOUNTS_VAR)
    if mounts:
        a, b = mounts.split(':', 1)
        sub = tempfile.mkdtemp(prefix='store-', dir=a)
        os.chmod(sub, 0o755)        # as the local tree: others pass it
        sub = os.path.basename(sub)
        return (os.path.join(a, sub, 'maildir'),
                os.path.join(b, sub, 'maildir'),
                'two mounts of one volume: %s and %s' % (a, b))
    root = tempfile.mkdtemp(prefix='pmstore-', dir=pmtest.TMPBASE)
    os.chmod(root, 0o755)
    if not pmtest.KEEP:
        test.addCleanup(pmtest.shutil.rmtree, root, True)
    path = os.path.join(root, 'maildir')
    return path, path, 'one local tree (no %s given)' % MOUNTS_VAR


def old_tree(folder, msg):
    """An old-format mail tree for `pymailadm import` in folder/old:
    alice (a placeholder password hash) with the one message msg."""
    old = os.path.join(folder, 'old')
    os.makedirs(os.path.join(old, 'alice'))
    with open(os.path.join(old, 'users'), 'w') as f:
        f.write('alice:%s\n' % ('0' * 32))
    with open(os.path.join(old, 'alice', 'u1'), 'wb') as f:
        f.write(msg)
    with open(os.path.join(old, 'alice', 'mail'), 'w') as f:
        f.write('u1:%d\n' % len(msg))
    os.chmod(old, 0o755)
    return old


class SharedCase(pmtest.TestCase):
    """Hosts self.a and self.b on one store, started, with USERS."""

    overrides = {}

    def setUp(self):
        super().setUp()
        pa, pb, what = store_paths(self)
        if not _said:
            _said.append(what)
            sys.stderr.write('[shared store: %s] ' % what)
        self.a = self.instance(maildir=pa, spooldir='spool',
                               serverhostname='a.test.example',
                               **self.overrides)
        self.b = self.instance(maildir=pb, spooldir='spool',
                               serverhostname='b.test.example',
                               **self.overrides)
        for u, p in USERS.items():
            r = self.a.adm('adduser', u, p)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.a.start()
        self.b.start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def raw(self, host, **kw):
        c = Raw(host.pop3_port, **kw)
        self.clients.append(c)
        return c

    def mdir(self, user='alice', sub=''):
        return os.path.join(self.a.maildir, user, 'Maildir', sub)

    def put(self, body, user='alice'):
        """A message file in new/, named as our delivery names them."""
        fname = '%s,S=%d,W=%d' % (unique_name(), len(body),
                                  len(pop_form(body)))
        tmp = os.path.join(self.mdir(user, 'tmp'), fname)
        with open(tmp, 'wb') as f:
            f.write(body)
        st = os.stat(self.mdir(user))
        os.chown(tmp, st.st_uid, st.st_gid)
        os.rename(tmp, os.path.join(self.mdir(user, 'new'), fname))
        return fname

    def kill_host(self, host):
        """kill -9 of the host's whole process group (a host that dies)."""
        pid = host.pid()
        pgid = os.getpgid(pid)
        self.assertNotEqual(pgid, os.getpgrp())
        os.killpg(pgid, signal.SIGKILL)
        # pid_alive waits for every thread: the lock's descriptor closes
        # with the last one.
        self.assertTrue(pmtest.wait_for(lambda: not pmtest.pid_alive(pid),
                                        10))
