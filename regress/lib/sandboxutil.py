"""sandboxutil: what the sandbox tests share.

- sanitize_build(): is the tree built with SANITIZE=1?  Such builds have
  no system call filter and stay dumpable on purpose (common/sandbox.c,
  the Makefile), so the tests of those properties skip there.  Read from
  the compiler flags the build recorded (.build-flags), never guessed.
- tasks(pid): the threads of a process, each as its /proc status dict.
- proc_owner(pid): the owner of /proc/PID/fd, which the kernel gives to
  root when the process is not dumpable (/proc/PID itself keeps the
  account's).

Standard library only; Debian's /usr/bin/python3.
"""

import os

from lib import pmtest

FLAGSTAMP = os.path.join(pmtest.ROOT, '.build-flags')


def sanitize_build():
    with open(FLAGSTAMP) as f:
        return '-DPYMAILD_SANITIZE' in f.read().split()


def tasks(pid):
    """{tid: status dict} of every thread of pid."""
    out = {}
    try:
        names = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return out
    for t in names:
        st = {}
        try:
            with open('/proc/%d/task/%s/status' % (pid, t)) as f:
                for line in f:
                    k, _, v = line.partition(':')
                    st[k] = v.strip()
        except OSError:
            continue
        out[int(t)] = st
    return out


def proc_owner(pid):
    return os.stat('/proc/%d/fd' % pid).st_uid
