#!/usr/bin/python3
"""CPU per locally delivered message, this tree against other builds.

    PYTHONPATH=regress /usr/bin/python3 regress/bench/deliver_cpu_ab.py
        [--rounds N] [--messages N] [--size S] [--sessions C] [--strace]
        [--fs ext4|tmpfs] NAME=TREE ...

Not a test (regress/run.py leaves it out); a measuring tool for the cost
of local delivery.  Each tree (this one is "this") runs its own pymaild
with the users alice and bob, all at once, so one load on the machine
weighs on all alike; each round submits N messages (regress/bench/
smtp_load, recipient alice@test.example) to each instance in turn (the
order alternates) and waits until alice's Maildir holds them all.  The
figure is CPU time (schedstat: every thread) of the parent and queued
per message, smtpd shown apart.  Medians over the rounds.

With --strace, one more round per tree runs under `strace -c -f` attached
to the parent and to queued (each apart) and the system calls per
delivered message are printed by role and by call: a steadier figure
than CPU time on a shared machine.

With --fs ext4 (or tmpfs) the instances live on a file system of their
own, made for the run in a private mount namespace (an ext4 image with
its default journal, on a loop device): most of the parent's CPU is the
inode allocation of each new file in Maildir/tmp, and on an ext4 without
a journal (this machine's root) that skips every inode freed in the last
seconds in the block group, so it follows what everything else on the
machine deletes; on a file system of its own only the code is measured.
A tree named twice (this2=.) is the control: on this machine's /tmp one
build in two instances differed by 5% (parent and queued), and by 15%
in queued alone, as each instance's folders landed in another group.

Runs in a private network namespace (re-execs itself under unshare -n as
root), stops everything it started by PID.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from lib import netns, pmtest, syscount
from pop3_bench import task_cpu_ns

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

LOAD = os.path.join(HERE, 'smtp_load')
ROLES = ('parent', 'queued')


def role_ns(inst):
    parent, roles, _ = inst.processes()
    d = {'parent': task_cpu_ns(parent) if parent else 0}
    for r, pids in roles.items():
        d[r] = sum(task_cpu_ns(p) for p in pids)
    return d


class Server:
    def __init__(self, name, tree):
        self.name, self.tree = name, tree
        self.inst = pmtest.Instance(loglevel=1, maxsessions=6000,
                                    maxsessionsperip=6000, timeout=300)
        if tree != ROOT:
            self.inst.use_tree(tree)
        self.inst.adm('adduser', 'alice', 'alicepw')
        self.inst.adm('chopt', 'alice', 'mailboxsize', str(1 << 40))
        self.inst.start()
        self.inst.wait_port()
        self.rows = []

    def count(self):
        return len(pmtest.maildir_files(self.inst.maildir, 'alice'))

    def round(self, n, size, sessions):
        base = self.count()
        c0 = role_ns(self.inst)
        argv = [LOAD, '-h', '127.0.0.1', '-p', str(self.inst.smtp_port),
                '-c', str(sessions), '-n', str(n), '-s', str(size),
                '-r', 'alice@test.example', '-t', '120', '-R', '30']
        subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=180)
        ok = pmtest.wait_for(lambda: self.count() - base >= n, 60,
                             interval=0.01)
        time.sleep(0.3)
        c1 = role_ns(self.inst)
        got = self.count() - base
        d = {k: (c1.get(k, 0) - c0.get(k, 0)) / max(got, 1) / 1e6
             for k in set(c0) | set(c1)}
        d['deliver'] = sum(d.get(k, 0.0) for k in ROLES)
        d['ok'] = ok and got >= n
        self.rows.append(d)
        return d

    def strace_round(self, n, size, sessions):
        """One round with strace -c on the parent and queued: calls per
        delivered message, {role: {syscall: calls/msg}}."""
        parent, roles, _ = self.inst.processes()
        tracers = syscount.start(self.inst.dir, {
            'parent': [parent], 'queued': roles.get('queued', [])})
        base = self.count()
        argv = [LOAD, '-h', '127.0.0.1', '-p', str(self.inst.smtp_port),
                '-c', str(sessions), '-n', str(n), '-s', str(size),
                '-r', 'alice@test.example', '-t', '120', '-R', '30']
        subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
        pmtest.wait_for(lambda: self.count() - base >= n, 120, interval=0.05)
        time.sleep(0.5)
        return syscount.stop(tracers, self.count() - base)

    def stop(self):
        with contextlib.suppress(Exception):
            self.inst.cleanup()


def print_syscalls(servers, a):
    res = [(s.name, s.strace_round(a.messages, a.size, a.sessions))
           for s in servers]
    syscount.print_table(res, ROLES, 'delivered')


FS_VAR = 'PYMAILD_BENCH_FS'


def private_fs(kind):
    """In a private mount namespace (re-exec under unshare -m once), a
    fresh file system for the instances; returns (mountpoint, image)."""
    if os.environ.get(FS_VAR) != kind:
        env = dict(os.environ)
        env[FS_VAR] = kind
        sys.stdout.flush()
        os.execvpe('unshare', ['unshare', '-m', '--propagation', 'private',
                               '--', netns.PYTHON, os.path.abspath(__file__)]
                   + sys.argv[1:], env)
    top = tempfile.mkdtemp(prefix='deliver-ab-')
    mnt, image = os.path.join(top, 'fs'), None
    os.mkdir(mnt)
    if kind == 'tmpfs':
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4g', 'tmpfs',
                        mnt], check=True)
    else:
        image = os.path.join(top, 'fs.img')
        with open(image, 'wb') as f:
            f.truncate(4 << 30)
        subprocess.run(['mkfs.ext4', '-q', '-F', image], check=True)
        subprocess.run(['mount', '-o', 'loop', image, mnt], check=True)
    os.chmod(top, 0o755)
    os.chmod(mnt, 0o755)
    pmtest.TMPBASE = mnt
    return top, mnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--messages', type=int, default=1000)
    ap.add_argument('--size', type=int, default=4096)
    ap.add_argument('--sessions', type=int, default=16)
    ap.add_argument('--fs', choices=('ext4', 'tmpfs'),
                    help='instances on a file system of their own')
    ap.add_argument('--strace', action='store_true',
                    help='also count system calls per message')
    ap.add_argument('trees', nargs='*', metavar='NAME=TREE')
    a = ap.parse_args()
    netns.enter(__file__)
    fs = private_fs(a.fs) if a.fs else None
    pmtest.set_subreaper()
    trees = [('this', ROOT)] + [tuple(t.split('=', 1)) for t in a.trees]
    servers = []
    try:
        for name, tree in trees:
            servers.append(Server(name, os.path.abspath(tree)))
        for s in servers:           # warm-up: first forks, first scan
            s.round(200, a.size, a.sessions)
            s.rows.clear()
        for i in range(a.rounds):
            order = servers if i % 2 == 0 else servers[::-1]
            for s in order:
                time.sleep(1)
                d = s.round(a.messages, a.size, a.sessions)
                print('round %d %-6s deliver %.4f ms/msg (parent %.4f '
                      'queued %.4f) smtpd %.4f%s'
                      % (i + 1, s.name, d['deliver'], d.get('parent', 0),
                         d.get('queued', 0), d.get('smtpd', 0.0),
                         '' if d['ok'] else ' INCOMPLETE'), flush=True)
        if a.rounds > 0:
            print('median CPU per delivered message (ms), %d rounds of %d:'
                  % (a.rounds, a.messages))
        for s in servers if a.rounds > 0 else ():
            med = {k: statistics.median(r.get(k, 0.0) for r in s.rows)
                   for k in ROLES + ('deliver', 'smtpd')}
            print('  %-6s deliver %.4f  (parent %.4f queued %.4f)  '
                  'smtpd %.4f  [%s]' % (s.name, med['deliver'],
                                        med['parent'], med['queued'],
                                        med['smtpd'], s.tree))
        if a.strace:
            print_syscalls(servers, a)
    finally:
        for s in servers:
            s.stop()
        pmtest.reap_zombies()
        if fs:
            subprocess.run(['umount', fs[1]])
            shutil.rmtree(fs[0], ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
