"""A compromised mxcache and MAILDIR/mxservers (DESIGN.md B2: mxcache
keeps the cache, the parent persists what it sends). A cache in a memfd
is written; a descriptor that is no file (pipe, socket, folder) fails
closed; a cache too large or not a cache is not written (logged), and
the daemon goes on. The file on disk is never emptied or half-written.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_mx.py
"""

import os
import select
import socket
import time

from lib import hostile
from lib.hostile import T
from lib import pmtest

MXFILE_MAX = 16 * 1024 * 1024


def cache(domain, expires=None):
    expires = expires or int(time.time()) + 3600
    return ('domain %s\nexpires %d\nstatus ok\nmx 10 mx.%s 192.0.2.1\n'
            % (domain, expires, domain)).encode()


def memfd(data):
    fd = os.memfd_create('mxservers')
    os.write(fd, data)
    return fd


class MxSave(hostile.HostileCase):

    def start(self):
        inst, p, peer = self.start_hostile('mxcache')
        self.old = cache('old.example')
        self.path = os.path.join(inst.maildir, 'mxservers')
        self.write_old()
        return inst, p, peer

    def write_old(self):
        """What an earlier run saved: what must survive a bad save."""
        with open(self.path, 'wb') as f:
            f.write(self.old)
        st = os.stat(os.path.dirname(self.path))
        os.chown(self.path, st.st_uid, st.st_gid)
        os.chmod(self.path, 0o600)

    def saved(self):
        with open(self.path, 'rb') as f:
            return f.read()

    def test_cache_in_a_memfd_is_written(self):
        inst, p, peer = self.start()
        base = self.baseline(inst, p)
        new = cache('new.example')
        fd = memfd(new)
        peer.send(T['IMSG_MX_SAVE'], fd=fd)
        os.close(fd)
        self.assertTrue(pmtest.wait_for(lambda: self.saved() == new, 10),
                        inst.log_tail())
        self.write_old()    # so the snapshot matches
        self.assertIntact(inst, p, peer, base)

    def test_not_a_file_fails_closed(self):
        for kind in ('pipe', 'socket', 'folder'):
            with self.subTest(kind=kind):
                inst, p, peer = self.start()
                if kind == 'pipe':
                    keep, fd = os.pipe()
                elif kind == 'socket':
                    a, b = socket.socketpair()
                    keep, fd = os.dup(a.fileno()), os.dup(b.fileno())
                    a.close()
                    b.close()
                else:
                    keep = os.open(inst.dir, os.O_RDONLY | os.O_DIRECTORY)
                    fd = os.dup(keep)
                self.addCleanup(os.close, keep)
                peer.send(T['IMSG_MX_SAVE'], fd=fd)
                os.close(fd)
                self.assertFailsClosed(inst, p, r'not a regular file')
                self.assertEqual(self.saved(), self.old)
                if kind == 'pipe':      # the parent kept no copy
                    self.assertTrue(select.select([keep], [], [], 5)[0])

    def bad_save(self, data, needle):
        inst, p, peer = self.start()
        base = self.baseline(inst, p)
        fd = memfd(data)
        peer.send(T['IMSG_MX_SAVE'], fd=fd)
        os.close(fd)
        self.assertTrue(pmtest.wait_for(
            lambda: 'mxservers: not saved' in inst.log(), 10),
            inst.log_tail())
        self.assertRegex(inst.log(), needle)
        self.assertEqual(self.saved(), self.old)
        self.assertIntact(inst, p, peer, base)

    def test_too_large_is_not_written(self):
        line = b'# padding' + b'x' * 90 + b'\n'
        self.bad_save(cache('big.example') +
                      line * (MXFILE_MAX // len(line) + 1), r'too large')

    def test_garbage_is_not_written(self):
        for data in (b'\xff\xfe garbage\n', b'domain x.example\n\0\n',
                     cache('a.example') + b'mx 10 h 999.1.1.1\n',
                     b'domain ../../etc\nexpires 1\nstatus ok\n'):
            with self.subTest(data=data[:40]):
                self.bad_save(data, r'mxcache sent a bad cache')

    def test_save_without_descriptor_fails_closed(self):
        inst, p, peer = self.start()
        peer.send(T['IMSG_MX_SAVE'])
        self.assertFailsClosed(inst, p)
        self.assertEqual(self.saved(), self.old)


if __name__ == '__main__':
    import unittest
    unittest.main()
