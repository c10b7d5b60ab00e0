#!/usr/bin/python3
"""Stands in for one pymaild helper in the hostile-peer tests.

pymaild (built with REGRESS=1) starts this instead of a helper when
PYMAILD_TEST_HELPERDIR names a folder holding it under the helper's name.
It hands its channel to the parent (descriptor 3) to the test over the
Unix socket PYMAILD_TEST_HOSTILE_SOCK, so the test itself speaks the
framing as a compromised helper would, then waits until the test closes
that socket, or the parent closes its end of the channel (it failed
closed: a helper would exit then too), or 600 s pass (a bound), and
exits. The stub watches the channel for the hang-up only (POLLRDHUP),
never reading from it: what the parent sends is the test's to read.
"""

import os
import select
import socket
import sys

PARENT_FD = 3
WAIT_MS = 600 * 1000


def main():
    path = os.environ.get('PYMAILD_TEST_HOSTILE_SOCK')
    if not path:
        sys.stderr.write('stub: PYMAILD_TEST_HOSTILE_SOCK is not set\n')
        return 1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    socket.send_fds(s, [os.path.basename(sys.argv[0]).encode()],
                    [PARENT_FD])
    p = select.poll()
    p.register(PARENT_FD, select.POLLRDHUP)
    p.register(s.fileno(), select.POLLIN)
    p.poll(WAIT_MS)
    return 0


if __name__ == '__main__':
    sys.exit(main())
