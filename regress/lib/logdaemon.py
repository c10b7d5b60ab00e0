"""logdaemon: a stand-in for the system log daemon on /dev/log, for the
tests that read what the confined helpers send to syslog (they mount their
own /dev first: see mounts.py), and the device nodes such a /dev needs.
"""

import os
import re
import socket
import stat
import threading

from lib import pmtest
from lib.mounts import mount_tmpfs, private_mount_namespace, umount_lazy

DEVLOG = '/dev/log'
DEVICES = (('null', 1, 3), ('zero', 1, 5), ('random', 1, 8),
           ('urandom', 1, 9))


class LogDaemon:
    """A datagram socket on /dev/log and a thread that keeps what it
    receives (a sender blocks when nobody reads, as with a real one)."""

    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.start()

    def start(self):
        if os.path.exists(DEVLOG):
            os.unlink(DEVLOG)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(DEVLOG)
        os.chmod(DEVLOG, 0o666)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode('utf-8', 'replace'))

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()

    def restart(self):
        self.close()
        self.start()

    def read(self):
        with self.lock:
            return list(self.lines)

    def wait(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        return pmtest.wait_for(
            lambda: any(rx.search(l) for l in self.read()), timeout)


def private_dev_log(test):
    """For a test's setUp: a tmpfs on /dev in this process's private
    mount namespace, with the device nodes the daemon opens and a
    LogDaemon on /dev/log (returned; closed and unmounted at cleanup).
    Skips the test where that is not possible."""
    if not pmtest.IS_ROOT:
        test.skipTest('needs root (mounts a tmpfs on /dev)')
    why = private_mount_namespace()
    if why:
        test.skipTest('no private mount namespace: ' + why)
    mount_tmpfs('/dev', 1 << 20)
    test.addCleanup(umount_lazy, '/dev')
    for name, major, minor in DEVICES:
        path = os.path.join('/dev', name)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    logd = LogDaemon()
    test.addCleanup(logd.close)
    return logd
