"""mounts: a private mount namespace and tmpfs mounts for the tests that
need a small disk or their own /dev (root only; the runner runs each test
file in its own process, so nothing is mounted on the host).
"""

import ctypes
import os
import threading

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_private_ns = None


def private_mount_namespace():
    """Enter a private mount namespace (once per process).  Returns None
    or the reason it is not possible."""
    global _private_ns
    if _private_ns is not None:
        return _private_ns
    if threading.active_count() > 1:
        _private_ns = 'the worker has threads (unshare(CLONE_NEWNS) fails)'
    elif _libc.unshare(CLONE_NEWNS) != 0:
        _private_ns = 'unshare(CLONE_NEWNS): %s' % os.strerror(
            ctypes.get_errno())
    elif _libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None) != 0:
        _private_ns = 'mount --make-rprivate /: %s' % os.strerror(
            ctypes.get_errno())
    else:
        _private_ns = ''
    return _private_ns


def mount_tmpfs(path, size):
    opts = ('size=%d,mode=0755' % size).encode()
    if _libc.mount(b'tmpfs', path.encode(), b'tmpfs', 0, opts) != 0:
        raise AssertionError('mount tmpfs on %s: %s'
                             % (path, os.strerror(ctypes.get_errno())))


def umount_lazy(path):
    _libc.umount2(path.encode(), MNT_DETACH)
