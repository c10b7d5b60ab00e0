#!/usr/bin/python3
"""Stands in for one pymaild helper in the hostile-peer tests.

pymaild (built with REGRESS=1) starts this instead of a helper when
PYMAILD_TEST_HELPERDIR names a folder holding it under the helper's name.
It hands its channel to the parent (descriptor 3), then its channels to
other helpers (the descriptors after it, proto.h's order), to the test
over the Unix socket PYMAILD_TEST_HOSTILE_SOCK, so the test itself speaks the
framing as a compromised helper would, then waits until the test closes
that socket, or the parent closes its end of the channel (it failed
closed: a helper would exit then too), or 600 s pass (a bound), and
exits. The stub watches the channel for the hang-up only (POLLRDHUP),
never reading from it: what the parent sends is the test's to read.
"""

import os
import select
import socket
import stat
import sys

PARENT_FD = 3
PEER_FDS_MAX = 8       # channels to other helpers, after PARENT_FD
WAIT_MS = 600 * 1000


def main():
    path = os.environ.get('PYMAILD_TEST_HOSTILE_SOCK')
    if not path:
        sys.stderr.write('stub: PYMAILD_TEST_HOSTILE_SOCK is not set\n')
        return 1
    # Before any socket of ours: only the parent's can be sockets here
    # (the interpreter's own descriptors are files).
    fds = [PARENT_FD]
    for fd in range(PARENT_FD + 1, PARENT_FD + 1 + PEER_FDS_MAX):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                fds.append(fd)
        except OSError:
            pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    socket.send_fds(s, [os.path.basename(sys.argv[0]).encode()], fds)
    p = select.poll()
    p.register(PARENT_FD, select.POLLRDHUP)
    p.register(s.fileno(), select.POLLIN)
    p.poll(WAIT_MS)
    return 0


if __name__ == '__main__':
    sys.exit(main())
