"""The log reopen (pymaild/logfile.c) against a compromised helper: the
parent hands each helper the new log file and holds `pymailadm reload`
until each one confirms (IMSG_LOG_REOPENED), at most 2 s. A helper that
confirms a generation it was never sent, or sends a malformed or
descriptor-carrying confirmation, fails closed; one that stays silent
delays the answer, never blocks it.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_logreopen.py
"""

import fcntl
import os
import struct
import subprocess
import threading
import time

from lib import hostile
from lib.hostile import T, u32
from lib.hostile import pmtest


class Daemonized(hostile.HostileCase):
    """The stub in a daemon started by pymailadm (not -d), which logs
    to its file and so reopens it on reload."""

    def instance(self, **overrides):
        inst = super().instance(**overrides)

        def start_in_background(*args):
            t = threading.Thread(target=inst.start, daemon=True)
            t.start()
            self.addCleanup(t.join, pmtest.ADM_TIMEOUT)
            return t
        inst.start_foreground = start_in_background
        return inst

    def reload(self, inst):
        return subprocess.Popen([pmtest.PYMAILADM, '-f', inst.conf,
                                 'reload'], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=inst.env(), cwd='/')

    def start(self):
        inst, t, peer = self.start_hostile('queued')
        t.join(pmtest.ADM_TIMEOUT)
        self.assertTrue(inst.running(), inst.log_tail())
        return inst, peer

    def test_reload_waits_for_the_confirmation(self):
        inst, peer = self.start()
        adm = self.reload(inst)
        self.addCleanup(adm.kill)
        payload, fd = peer.expect_fd(T['IMSG_LOG_REOPEN'])
        self.assertIsNotNone(fd)
        try:
            # The new file itself, write-only, appending.
            self.assertEqual(os.fstat(fd).st_ino,
                             os.stat(inst.logpath).st_ino)
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            self.assertEqual(flags & os.O_ACCMODE, os.O_WRONLY)
            self.assertTrue(flags & os.O_APPEND)
        finally:
            os.close(fd)
        (gen,) = struct.unpack('<I', payload)
        self.assertEqual(gen, 1)
        time.sleep(0.5)
        self.assertIsNone(adm.poll(), 'reload answered before queued '
                          'moved to the new log file')
        t0 = time.monotonic()
        peer.send(T['IMSG_LOG_REOPENED'], u32(gen))
        out, err = adm.communicate(timeout=pmtest.ADM_TIMEOUT)
        self.assertEqual(adm.returncode, 0, err)
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertIn('Configuration reloaded.', out)
        # A confirmation repeated is no lie: still running.
        peer.send(T['IMSG_LOG_REOPENED'], u32(gen))
        time.sleep(0.3)
        self.assertTrue(inst.running(), inst.log_tail())

    def test_silent_helper_delays_the_answer(self):
        inst, peer = self.start()
        t0 = time.monotonic()
        adm = self.reload(inst)
        out, err = adm.communicate(timeout=pmtest.ADM_TIMEOUT)
        took = time.monotonic() - t0
        self.assertEqual(adm.returncode, 0, err)
        self.assertGreaterEqual(took, 1.5)
        self.assertLess(took, 10)
        self.assertRegex(inst.log(), r'reload: queued did not move to the '
                         r'new log file within 2 s')
        self.assertTrue(inst.running())


class Lies(hostile.HostileCase):
    """A foreground daemon (-d) reopens nothing: any confirmation is of
    a generation never sent."""

    def refused(self, payload, *needles, fd=None):
        inst, p, peer = self.start_hostile('queued')
        peer.send(T['IMSG_LOG_REOPENED'], payload, fd=fd)
        self.assertFailsClosed(inst, p, *needles)

    def test_generation_never_sent(self):
        for gen in (1, 0, 0xffffffff):
            with self.subTest(gen=gen):
                self.refused(u32(gen), r'queued confirmed log generation '
                             r'%d, which was never sent' % gen)

    def test_malformed(self):
        for payload in (b'', b'\x01\x00', u32(1) + b'x'):
            with self.subTest(payload=payload):
                self.refused(payload)

    def test_descriptor(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.refused(u32(1), r'carries a descriptor it does not take',
                     fd=w)
        os.close(w)


if __name__ == '__main__':
    import unittest
    unittest.main()
