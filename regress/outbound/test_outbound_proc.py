"""The outbound SMTP client is a process of its own (DESIGN.md B2): the
code that parses what any mail server in the world sends holds the
messages it is relaying, read-only, and nothing else.

- It runs: a child of pymaild titled "outbound", with an account of its
  own (as root: outbounduser, neither user nor queueuser), chrooted in
  an empty folder, every thread under its system call filter (Seccomp 2,
  NoNewPrivs 1), not dumpable.
- During a delivery to a sink that stalls after DATA, every descriptor
  it holds onto a file but its log is read-only (fdinfo flags) or a
  memfd sealed against writes; one of them holds the message being
  relayed (a small one just received as the memfd smtpd wrote it into,
  sealed at its commit: no copy made; a large one as its spool file);
  none reaches anything else under SPOOLDIR; and
  `pymailadm status` counts the attempt (outbound=1).
- Killing it during that delivery makes pymaild fail closed (exit
  non-zero, the death logged), with the message still queued; started
  again, pymaild delivers it.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_proc.py
"""

import contextlib
import fcntl
import os
import re
import signal
import stat

from lib.oututil import (DELIVERY_TIMEOUT, OutCase, make_message,
                         pmtest, queue_entry, submit, wait_for,
                         wait_queue_empty)

from lib import sandboxutil

ALICE = 'alice@test.example'
RCPT = 'x@remote.example'


def sealed(path):
    """Is the memfd behind /proc/PID/fd/N sealed against writes?"""
    fd = os.open(path, os.O_RDONLY)
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    finally:
        os.close(fd)
    return bool(seals & fcntl.F_SEAL_WRITE)


def file_fds(pid):
    """{fd: (link, flags)} of pid's descriptors onto regular files."""
    out = {}
    d = '/proc/%d/fd' % pid
    for n in os.listdir(d):
        p = os.path.join(d, n)
        try:
            if not stat.S_ISREG(os.stat(p).st_mode):
                continue
            link = os.readlink(p)
            with open('/proc/%d/fdinfo/%s' % (pid, n)) as f:
                flags = int(re.search(r'flags:\s*(\d+)', f.read()).group(1),
                            8)
        except OSError:
            continue
        out[int(n)] = (link, flags)
    return out


class OutboundProcess(OutCase):

    def outbound_pid(self, inst):
        roles = inst.wait_roles()
        self.assertIn('outbound', roles, 'no outbound process: %r\n%s'
                      % (roles, inst.log_tail()))
        return roles

    def stalled_delivery(self, foreground=False, body=b'hello\r\n'):
        """A message under way to a sink that never answers DATA."""
        sink = self.sink('127.0.0.1', misbehave=('data', 'silent'))
        inst = self.out_instance(relay=sink, start=not foreground)
        p = None
        if foreground:
            p = inst.start_foreground()
            inst.wait_ports()
        roles = self.outbound_pid(inst)
        qid = submit(inst, ALICE, [RCPT], make_message('stalled', body))
        self.assertTrue(wait_for(lambda: any(
            c.startswith(b'DATA') for s in sink.session_list()
            for c in s.commands), DELIVERY_TIMEOUT),
            'no DATA reached the sink\n%s' % self.context(inst, sink))
        return inst, sink, roles, qid, p

    def test_confined(self):
        inst = self.out_instance()
        roles = self.outbound_pid(inst)
        pid = roles['outbound']
        self.assertEqual(pmtest.proc_ppid(pid), inst.pid())
        if pmtest.IS_ROOT:
            want = pmtest.uid_of(pmtest.OUTBOUND_USER)
            self.assertEqual(pmtest.proc_uids(pid), (want,) * 4)
            self.assertNotIn(want, (pmtest.uid_of(pmtest.DAEMON_USER),
                                    pmtest.uid_of(pmtest.QUEUE_USER)))
            self.assertNotIn(0, pmtest.proc_gids(pid))
            self.assertEqual(pmtest.proc_root(pid), '/var/empty')
            self.assertEqual(os.listdir('/var/empty'), [])
        if sandboxutil.sanitize_build():
            return      # no filter and dumpable there, by design
        for tid, st in sorted(sandboxutil.tasks(pid).items()):
            self.assertEqual((st.get('Seccomp'), st.get('NoNewPrivs')),
                             ('2', '1'), 'thread %d' % tid)
        if pmtest.IS_ROOT:
            self.assertEqual(sandboxutil.proc_owner(pid), 0,
                             'outbound is dumpable')

    def holds_only_its_message(self, body):
        inst, sink, roles, qid, _ = self.stalled_delivery(body=body)
        pid = roles['outbound']
        spool = os.path.realpath(inst.spooldir)
        fds = file_fds(pid)
        holding = []
        # Its log (stderr, as every helper's) is the one file it writes.
        for fd, (link, flags) in sorted(fds.items()):
            if link == inst.logpath:
                continue
            path = '/proc/%d/fd/%d' % (pid, fd)
            if flags & os.O_ACCMODE != os.O_RDONLY:
                self.assertTrue(link.startswith('/memfd:') and
                                sealed(path), 'outbound fd %d onto %s can '
                                'write (flags %o)' % (fd, link, flags))
            if link.startswith(spool + '/'):
                self.assertEqual(os.path.basename(link), qid,
                                 'outbound holds another spool file')
            with open(path, 'rb') as f:
                if f.read().endswith(body):
                    holding.append(link)
        self.assertEqual(len(holding), 1, 'the message in outbound: %r '
                         '(all: %r)' % (holding, fds))
        r = inst.adm('status')
        self.assertIn('outbound=1', r.stdout, r.stdout + r.stderr)
        return holding[0], spool

    def test_holds_a_small_message_as_a_sealed_copy(self):
        link, spool = self.holds_only_its_message(b'small and sealed\r\n')
        self.assertTrue(link.startswith('/memfd:'), link)
        # fresh (in the journal still): smtpd's memfd, not a copy of it
        self.assertTrue(link.startswith('/memfd:pymaild-spool'), link)

    def test_holds_a_large_message_read_only(self):
        body = b''.join(b'line %06d of a large message\r\n' % i
                        for i in range(6000))
        link, spool = self.holds_only_its_message(body)
        self.assertTrue(link.startswith(spool + '/'), link)

    def test_killed_fails_closed_and_the_message_waits(self):
        inst, sink, roles, qid, p = self.stalled_delivery(foreground=True)
        os.kill(roles['outbound'], signal.SIGKILL)
        try:
            rc = p.wait(pmtest.STOP_TIMEOUT)
        except Exception:
            self.fail('pymaild did not stop:\n%s' % inst.log_tail())
        self.assertNotEqual(rc, 0, 'pymaild exited 0 after outbound died')
        self.assertRegex(inst.log(), r'outbound.*(died|killed)')
        for role, pid in roles.items():
            self.assertTrue(wait_for(lambda: not pmtest.pid_alive(pid), 5),
                            '%s outlives the stop' % role)
        self.assertEqual(sink.delivered, [])
        # Started again with a sink that takes it: delivered, once.
        sink.reset()
        inst.start()
        inst.wait_port()
        [txn] = self.wait_delivered(sink, 1, inst)
        self.assertEqual(txn.rcpts, [RCPT])
        self.assertIn(b'Subject: stalled', txn.data)
        wait_queue_empty(inst)
        self.assertIsNone(queue_entry(inst, qid))


if __name__ == '__main__':
    import unittest
    unittest.main()
