#!/usr/bin/python3
"""CPU per relayed message, this tree against other builds, same rounds.

    PYTHONPATH=regress /usr/bin/python3 regress/outbound/cpu_ab.py
        [--rounds N] [--messages N]
        [--size S] [--sessions C] [--strace] NAME=TREE ...

Not a test (no test_ prefix: regress/run.py leaves it out); a measuring
tool for the cost of the outbound path.  Each tree (this one is "this")
runs its own pymaild with its own DNS server (regress/lib/dnsfixture.py)
and its own Postfix smtp-sink(1) on 127.0.0.2 (outboundport), all at
once, so one load on the machine weighs on all alike; each round submits
N messages (regress/bench/smtp_load, one recipient at d0.test) to each
instance in turn (the order alternates) and waits until its sink has
them all.  The figure is CPU time (schedstat: every thread, on a CPU,
not waiting) of the processes that relay: the parent, queued and
outbound, per message; smtpd and mxcache are shown apart (smtpd does the
same work in every tree; mxcache answers outbound's MX and TLSA asks).  Medians over the rounds.  Trees older than the outbound process
get a config without the keys they do not know (`outbounduser`...).

With --strace, one more round per tree runs under `strace -c -f`
attached to the parent, queued, outbound and mxcache (each apart; a tree
without outbound has none) and the system calls per relayed message are
printed by role and by call: a steadier figure than CPU time on a shared
machine.

Runs in a private network namespace (re-execs itself under unshare -n as
root), stops everything it started by PID.
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time

from bench import outbound_bench as ob
from bench.pop3_bench import task_cpu_ns
from lib import dnsfixture, netns, pmtest, syscount

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

RELAY_ROLES = ('parent', 'queued', 'outbound')
STRACE_ROLES = RELAY_ROLES + ('mxcache',)


def role_ns(inst):
    parent, roles, _ = inst.processes()
    d = {'parent': task_cpu_ns(parent) if parent else 0}
    for r, pids in roles.items():
        d[r] = sum(task_cpu_ns(p) + sum(task_cpu_ns(c) for c in
                                        pmtest.descendants(p))
                   for p in pids)
    return d


class Server:
    def __init__(self, name, tree):
        self.name, self.tree = name, tree
        self.inst = ob.make_instance(1)
        if tree != ROOT:
            self.inst.use_tree(tree)
        self.dns = dnsfixture.DNSServer(self.inst.resolver_port,
                                        ob.zone_text())
        self.dns.start()
        self.sink = ob.SmtpSink(ob.SINK_ADDR, self.inst.outbound_port)
        self.sink.start()
        self.inst.start()
        self.inst.wait_port()
        self.rows = []

    def round(self, n, size, sessions, rcpt):
        base = self.sink.counters()[2]
        c0 = role_ns(self.inst)
        argv = [ob.LOAD, '-h', '127.0.0.1', '-p', str(self.inst.smtp_port),
                '-c', str(sessions), '-n', str(n), '-s', str(size),
                '-r', rcpt, '-t', '120', '-R', '30']
        subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=180)
        ok = pmtest.wait_for(lambda: self.sink.counters()[2] - base >= n,
                             60, interval=0.01)
        # the last results reach queued after the sink counted
        pmtest.wait_for(lambda: ob.queue_list(self.inst)[0] == [], 20,
                        interval=0.05)
        time.sleep(0.3)
        c1 = role_ns(self.inst)
        got = self.sink.counters()[2] - base
        d = {k: (c1.get(k, 0) - c0.get(k, 0)) / max(got, 1) / 1e6
             for k in set(c0) | set(c1)}
        d['relay'] = sum(d.get(k, 0.0) for k in RELAY_ROLES)
        d['ok'] = ok and got >= n
        self.rows.append(d)
        return d

    def strace_round(self, n, size, sessions, rcpt):
        """One round with strace -c on each relaying role: calls per
        relayed message, {role: {syscall: calls/msg}}."""
        parent, roles, _ = self.inst.processes()
        pids = {'parent': [parent]}
        for r in STRACE_ROLES[1:]:
            pids[r] = roles.get(r, [])
        tracers = syscount.start(self.inst.dir, pids)
        base = self.sink.counters()[2]
        argv = [ob.LOAD, '-h', '127.0.0.1', '-p', str(self.inst.smtp_port),
                '-c', str(sessions), '-n', str(n), '-s', str(size),
                '-r', rcpt, '-t', '120', '-R', '30']
        subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
        pmtest.wait_for(lambda: self.sink.counters()[2] - base >= n, 120,
                        interval=0.05)
        pmtest.wait_for(lambda: ob.queue_list(self.inst)[0] == [], 20,
                        interval=0.05)
        time.sleep(0.5)
        return syscount.stop(tracers, self.sink.counters()[2] - base)

    def stop(self):
        for f in (self.inst.cleanup, self.sink.stop, self.dns.cleanup):
            with contextlib.suppress(Exception):
                f()


def print_strace(servers, n, size, sessions):
    res = [(s.name, s.strace_round(n, size, sessions, 'u@d0.test'))
           for s in servers]
    syscount.print_table(res, STRACE_ROLES, 'relayed')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--messages', type=int, default=1000)
    ap.add_argument('--size', type=int, default=4096)
    ap.add_argument('--sessions', type=int, default=16)
    ap.add_argument('--strace', action='store_true',
                    help='also count system calls per message')
    ap.add_argument('trees', nargs='*', metavar='NAME=TREE')
    a = ap.parse_args()
    netns.enter(__file__)
    pmtest.set_subreaper()
    ob.raise_nofile()
    trees = [('this', ROOT)] + [tuple(t.split('=', 1)) for t in a.trees]
    servers = []
    try:
        for name, tree in trees:
            servers.append(Server(name, os.path.abspath(tree)))
        for s in servers:           # warm-up: MX cache, first forks
            s.round(200, a.size, a.sessions, 'warm@d0.test')
            s.rows.clear()
        for i in range(a.rounds):
            order = servers if i % 2 == 0 else servers[::-1]
            for s in order:
                time.sleep(1)
                d = s.round(a.messages, a.size, a.sessions, 'u@d0.test')
                print('round %d %-6s relay %.4f ms/msg (%s) smtpd %.4f '
                      'mxcache %.4f%s'
                      % (i + 1, s.name, d['relay'], ' '.join(
                          '%s %.4f' % (k, d.get(k, 0.0))
                          for k in RELAY_ROLES), d.get('smtpd', 0.0),
                         d.get('mxcache', 0.0),
                         '' if d['ok'] else ' INCOMPLETE'), flush=True)
        print('median CPU per relayed message (ms), %d rounds of %d:'
              % (a.rounds, a.messages))
        for s in servers:
            med = {k: statistics.median(r.get(k, 0.0) for r in s.rows)
                   for k in RELAY_ROLES + ('relay', 'smtpd', 'mxcache')}
            print('  %-6s relay %.4f  (parent %.4f queued %.4f outbound '
                  '%.4f)  smtpd %.4f  mxcache %.4f  [%s]' % (
                      s.name, med['relay'], med['parent'], med['queued'],
                      med['outbound'], med['smtpd'], med['mxcache'],
                      s.tree))
        if a.strace:
            print_strace(servers, a.messages, a.size, a.sessions)
    finally:
        for s in servers:
            s.stop()
        pmtest.reap_zombies()


if __name__ == '__main__':
    sys.exit(main())
