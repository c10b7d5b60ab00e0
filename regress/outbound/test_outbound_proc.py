"""The outbound SMTP client is a process of its own (DESIGN.md B2): the
code that parses what any mail server in the world sends holds the
messages it is relaying, read-only, and nothing else.

- It runs: a child of pymaild titled "outbound", with an account of its
  own (as root: outbounduser, neither user nor queueuser), chrooted in
  an empty folder, every thread under its system call filter (Seccomp 2,
  NoNewPrivs 1), not dumpable.
- During a delivery to a sink that stalls after DATA, every descriptor
  it holds onto a file but its log is read-only (fdinfo flags), it holds
  one onto the message being relayed, none onto anything else under
  SPOOLDIR, and
  `pymailadm status` counts the attempt (outbound=1).
- Killing it during that delivery makes pymaild fail closed (exit
  non-zero, the death logged), with the message still queued; started
  again, pymaild delivers it.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_proc.py
"""

import os
import re
import signal
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oututil import (DELIVERY_TIMEOUT, OutCase, make_message,  # noqa: E402
                     pmtest, queue_entry, submit, wait_for,
                     wait_queue_empty)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'sandbox'))
import sandboxutil                                       # noqa: E402

ALICE = 'alice@test.example'
RCPT = 'x@remote.example'


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

    def stalled_delivery(self, foreground=False):
        """A message under way to a sink that never answers DATA."""
        sink = self.sink('127.0.0.1', misbehave=('data', 'silent'))
        inst = self.out_instance(relay=sink, start=not foreground)
        p = None
        if foreground:
            p = inst.start_foreground()
            inst.wait_ports()
        roles = self.outbound_pid(inst)
        qid = submit(inst, ALICE, [RCPT], make_message('stalled'))
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

    def test_holds_the_message_read_only_and_nothing_else(self):
        inst, sink, roles, qid, _ = self.stalled_delivery()
        pid = roles['outbound']
        spool = os.path.realpath(inst.spooldir)
        fds = file_fds(pid)
        under_spool = {fd: v for fd, v in fds.items()
                       if v[0].startswith(spool + '/')}
        self.assertTrue(under_spool, 'no message descriptor in outbound: '
                        '%r' % fds)
        # Its log (stderr, as every helper's) is the one file it writes.
        for fd, (link, flags) in sorted(fds.items()):
            if link == inst.logpath:
                continue
            self.assertEqual(flags & os.O_ACCMODE, os.O_RDONLY,
                             'outbound fd %d onto %s is open for writing '
                             '(flags %o)' % (fd, link, flags))
        names = {os.path.basename(v[0]) for v in under_spool.values()}
        self.assertEqual(names, {qid}, 'outbound holds other spool files: '
                         '%r' % sorted(v[0] for v in under_spool.values()))
        r = inst.adm('status')
        self.assertIn('outbound=1', r.stdout, r.stdout + r.stderr)
        # The root and cwd are the empty folder, not the spool.
        if pmtest.IS_ROOT:
            self.assertFalse(os.path.realpath('/proc/%d/cwd' % pid)
                             .startswith(spool))

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
