"""The private network namespace every test run and benchmark uses, so no
daemon started there can reach another host (the machine's resolv.conf
points off it)."""

import os
import subprocess
import sys

NETNS_VAR = 'PYMAILD_NETNS'
PYTHON = '/usr/bin/python3'


def enter(script):
    """As root, re-exec `script` (with our arguments) under `unshare -n`
    with lo up; once: the environment marks the child. Without root, or
    when namespaces are refused, go on in the host namespace."""
    if os.geteuid() != 0 or os.environ.get(NETNS_VAR):
        return
    try:
        ok = subprocess.run(['unshare', '-n', 'true'],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        print('warning: cannot create a network namespace (unshare -n); '
              'running in the host namespace', file=sys.stderr)
        os.environ[NETNS_VAR] = '0'
        return
    env = dict(os.environ)
    env[NETNS_VAR] = '1'
    argv = ['unshare', '-n', '--', 'sh', '-c',
            'PATH="$PATH:/usr/sbin:/sbin" ip link set lo up && exec "$@"',
            'sh', PYTHON, os.path.abspath(script)] + sys.argv[1:]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe('unshare', argv, env)
