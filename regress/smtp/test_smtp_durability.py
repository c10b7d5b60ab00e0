"""SMTP-in, durability: every 250 is on stable storage (DESIGN.md A4, B2).

- kill -9 of the whole daemon (the pidfile's PID and all its descendants,
  frozen with SIGSTOP first so they stop at one instant, then SIGKILL)
  while 8 threads send mail; after `pymailadm start` every message that
  got a 250 is in the Maildir; exactly once, except messages that may
  have been in delivery at the kill (duplicates allowed, loss never).
- kill -9 of one helper at a time (and of the parent alone): the whole
  daemon stops (fail closed), and the next start delivers what was
  queued.

    /usr/bin/python3 regress/run.py -k test_smtp_durability
"""

import contextlib
import itertools
import os
import re
import signal
import smtplib
import threading
import time

from lib import pmtest
from lib.smtputil import (SmtpCase, all_gone, daemon_pids, kill9_group,
                          log_events, make_message, queue_id,
                          read, smtplib_send, subject_of, wait_for, wait_mail)

SENDER = 'load@sender.example'
THREADS = 8
MAX_MESSAGES = 3000         # bound on the load ...
LOAD_SECONDS = 20           # ... and on its duration
KILL_AFTER = 100            # 250s before the Maildir snapshot ...
KILL_DELAY = 1.0            # ... and seconds from the snapshot to the kill
MID_RE = re.compile(rb'^Message-ID: <load-(\d+)@test\.invalid>$', re.M)


def load_message(n):
    return make_message('load %d' % n,
                        b'payload line\r\n' * 20 +
                        b'end-of-message %d\r\n' % n,
                        mid='<load-%d@test.invalid>' % n, sender=SENDER)


def census(inst, user='alice'):
    """({n: copies}, [problems]) over user's Maildir: every file must be a
    complete load message (or another known message)."""
    counts, bad = {}, []
    for p in inst.maildir_files(user):
        try:
            data = read(p)
        except FileNotFoundError:       # moved new -> cur meanwhile
            continue
        m = MID_RE.search(data)
        if not m:
            if subject_of(data) in ('warm-up', 'after restart'):
                continue
            bad.append('%s: not a load message: %r' % (
                os.path.basename(p), data[:200]))
            continue
        n = int(m.group(1))
        if not data.endswith(b'end-of-message %d\n' % n):
            bad.append('%s: message %d is incomplete (%d bytes, ends %r)'
                       % (os.path.basename(p), n, len(data), data[-60:]))
            continue
        counts[n] = counts.get(n, 0) + 1
    return counts, bad


def wait_stable(fn, timeout, quiet=1.5):
    """Poll fn() until its value has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = fn(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        v = fn()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


class KillUnderLoad(SmtpCase):

    def test_kill9_whole_daemon_under_load_loses_nothing(self):
        inst = self.smtp_instance()
        self.send_mail(inst, 'warm-up')
        wait_mail(inst, 'alice', 1)
        port = inst.smtp_port

        lock = threading.Lock()
        accepted = {}               # n -> queue id (got a 250)
        attempted = set()
        errors = []                 # failures before the kill
        counter = itertools.count()
        killed = threading.Event()
        deadline = time.monotonic() + LOAD_SECONDS

        def worker():
            while not killed.is_set() and time.monotonic() < deadline:
                n = next(counter)
                if n >= MAX_MESSAGES:
                    return
                with lock:
                    attempted.add(n)
                s = None
                try:
                    s = smtplib.SMTP('127.0.0.1', port, timeout=10,
                                     local_hostname='load.example')
                    s.ehlo()
                    code, text = s.mail(SENDER)
                    if code == 250:
                        code, text = s.rcpt('alice@test.example')
                    if code == 250:
                        code, text = s.data(load_message(n))
                    if code == 250:
                        with lock:
                            accepted[n] = queue_id(text.decode())
                    elif not killed.is_set():
                        with lock:
                            errors.append('message %d: %d %r'
                                          % (n, code, text))
                    with contextlib.suppress(Exception):
                        s.quit()
                except (OSError, smtplib.SMTPException) as e:
                    if killed.is_set():
                        return
                    with lock:
                        errors.append('message %d: %r' % (n, e))
                finally:
                    if s is not None:
                        with contextlib.suppress(Exception):
                            s.close()

        threads = [threading.Thread(target=worker, daemon=True)
                   for _ in range(THREADS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(accepted) >= KILL_AFTER or errors,
                     LOAD_SECONDS)
            self.assertEqual(errors[:10], [], 'failures under load before '
                             'the kill\nlog:\n' + log_events(inst))
            self.assertGreaterEqual(len(accepted), KILL_AFTER,
                                    'only %d messages accepted in %d s'
                                    % (len(accepted), LOAD_SECONDS))
            # Messages in the Maildir now were delivered well before the
            # kill: they must not come twice.
            settled, bad = census(inst)
            self.assertEqual(bad, [])
            time.sleep(KILL_DELAY)
            pids = daemon_pids(inst)
            _, roles, _ = inst.processes()
            self.assertEqual(sorted(roles), sorted(pmtest.ROLES),
                             'the daemon is not whole under load (%d '
                             'accepted): %r\nlog:\n%s'
                             % (len(accepted), roles, log_events(inst)))
            killed.set()
            kill9_group(pids)
            with lock:
                n_before_kill = len(accepted)
        finally:
            killed.set()
            for t in threads:
                t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])
        self.assertFalse(pmtest.port_open(port), 'port still open after '
                         'the kill')

        # A stale pidfile and control socket never block the next start.
        inst.start()
        inst.wait_port()
        want = set(accepted)

        def present():
            counts, _ = census(inst)
            return want <= set(counts)
        wait_for(present, 30, interval=0.2)
        counts, bad = wait_stable(lambda: census(inst), 30)
        self.assertEqual(bad, [], 'partial or foreign messages in the '
                         'Maildir')
        lost = sorted(want - set(counts))
        self.assertEqual(lost, [], '%d of %d accepted messages lost '
                         '(queue ids %r)\nlog:\n%s'
                         % (len(lost), len(want),
                            [accepted[n] for n in lost[:10]],
                            inst.log_tail(30)))
        dup_settled = sorted(n for n in settled if counts.get(n, 0) != 1)
        self.assertEqual(dup_settled, [], 'messages delivered before the '
                         'kill came again (or vanished)')
        unknown = sorted(set(counts) - attempted)
        self.assertEqual(unknown, [])
        # Normal service afterwards.
        self.send_mail(inst, 'after restart')
        self.assertTrue(wait_for(lambda: any(
            subject_of(read(p)) == 'after restart'
            for p in inst.maildir_files('alice')), 15))
        self.assertGreater(n_before_kill, 0)


class FailClosed(SmtpCase):
    """kill -9 of one process of the daemon stops all of it; the next
    start delivers what had been accepted."""

    def kill_one(self, role):
        inst = self.smtp_instance()
        self.send_mail(inst, 'before')
        wait_mail(inst, 'alice', 1)
        inst.wait_roles()
        pids = daemon_pids(inst)
        parent, roles, _ = inst.processes()
        self.assertEqual(sorted(roles), sorted(pmtest.ROLES), roles)
        victim = parent if role == 'parent' else roles[role][0]
        # Accepted just before the kill: some may still be queued.
        s = self.smtp(inst)
        s.ehlo()
        subjects = ['queued %d' % i for i in range(5)]
        for subj in subjects:
            smtplib_send(s, SENDER, ['alice@test.example'],
                         make_message(subj, sender=SENDER))
        with contextlib.suppress(Exception):
            s.quit()
        loglen = len(inst.log())
        os.kill(victim, signal.SIGKILL)
        gone = wait_for(lambda: all_gone(pids), 10)
        left = [p for p, st in pids.items() if pmtest.pid_alive(p, st)]
        self.assertTrue(gone, 'kill -9 of %s (pid %d): still running after '
                        '10 s: %s\nlog:\n%s'
                        % (role, victim, ['%d %s' % (p, pmtest.proc_cmdline(p))
                                          for p in left],
                           inst.log_tail(20)))
        pmtest.reap_zombies()
        self.assertFalse(pmtest.port_open(inst.smtp_port))
        if role != 'parent':
            self.assertIn(role, inst.log()[loglen:],
                          'the parent did not log the death of %s' % role)
        r = inst.adm('status')
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('pymaild is not running.', r.stderr + r.stdout)

        inst.start()
        inst.wait_port()

        def subjects_now():
            return sorted(subject_of(read(p))
                          for p in inst.maildir_files('alice'))
        wait_for(lambda: set(subjects) <= set(subjects_now()), 15)
        have = wait_stable(subjects_now, 15, quiet=1.0)
        for subj in subjects:
            self.assertGreaterEqual(have.count(subj), 1,
                                    '%r lost; mailbox %r\nlog:\n%s'
                                    % (subj, have, inst.log_tail(30)))
        self.assertEqual(have.count('before'), 1, have)
        self.assertEqual(set(have), set(subjects) | {'before'}, have)
        self.assert_healthy(inst)

    def test_kill_smtpd_stops_daemon(self):
        self.kill_one('smtpd')

    def test_kill_queued_stops_daemon(self):
        self.kill_one('queued')

    def test_kill_mxcache_stops_daemon(self):
        self.kill_one('mxcache')

    def test_kill_pop3d_stops_daemon(self):
        self.kill_one('pop3d')

    def test_kill_parent_stops_helpers(self):
        self.kill_one('parent')
