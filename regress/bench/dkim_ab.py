#!/usr/bin/python3
"""What DKIM signing costs: one pymaild without keys (A) against one with
an RSA 2048 and an Ed25519 key for test.example (B), same build, rounds
alternating A B A B.

    PYTHONPATH=regress /usr/bin/python3 regress/bench/dkim_ab.py
        [--rounds N] [--messages N]
        [--size S] [--sessions C]

1. Local mail (never signed): regress/bench/smtp_load sends N messages to
   alice@ and bob@test.example; the accept rate (messages/s, median over
   the rounds) and queued's CPU time per message. B must not be slower:
   the commit of local mail does not read its header.
2. Relayed mail from test.example (signed in B): N messages to
   x@remote.example through Postfix's smtp-sink as the smarthost; CPU
   time per message of queued (where signing happens) and of outbound.

Not a test (no test_ prefix); figures only. Runs in a private network
namespace (re-execs itself under unshare -n as root); stops what it
started by PID.
"""

import argparse
import os
import statistics
import subprocess
import time

import outbound_bench as ob
from lib import netns, pmtest
from smtp_bench import parse_result, tree_cpu

HERE = os.path.dirname(os.path.abspath(__file__))

LOAD = os.path.join(HERE, 'smtp_load')
SINK_ADDR = '127.0.0.2'


def keys(folder):
    out = []
    for name, alg in (('rsa', ['-algorithm', 'RSA', '-pkeyopt',
                               'rsa_keygen_bits:2048']),
                      ('ed', ['-algorithm', 'ED25519'])):
        path = os.path.join(folder, name + '.key')
        subprocess.run(['openssl', 'genpkey'] + alg + ['-out', path],
                       check=True, capture_output=True)
        out.append(path)
    return out


def instance(signing, relay_port):
    inst = pmtest.Instance(loglevel=1, maxsessions=6000,
                           maxsessionsperip=6000, timeout=300,
                           usesmtprelay=True,
                           smtprelay='[%s]:%d' % (SINK_ADDR, relay_port),
                           retrymin=3600, retrymax=3600)
    for args in (('chdefaultopt', 'mailboxsize', str(1 << 40)),
                 ('adduser', 'alice', 'pw'), ('adduser', 'bob', 'pw')):
        r = inst.adm(*args)
        if r.returncode != 0:
            raise SystemExit('pymailadm %s: %s' % (args, r.stderr))
    if signing:
        rsa, ed = keys(inst.dir)
        inst.write_config(extra='dkim = ( { domain = "test.example"; '
                          'selector = "s1"; key = "%s"; }, { domain = '
                          '"test.example"; selector = "e1"; key = "%s"; } );'
                          % (rsa, ed))
    inst.start()
    inst.wait_port()
    return inst


def role(inst, name):
    _, roles, _ = inst.processes()
    return sum(tree_cpu(p) for p in roles.get(name, []))


def delivered_local(inst):
    return sum(len(pmtest.maildir_files(inst.maildir, u))
               for u in ('alice', 'bob'))


def one_round(inst, args, rcpts, done, sink=None):
    before = {r: role(inst, r) for r in ('queued', 'outbound')}
    base = done()
    r = subprocess.run([LOAD, '-h', '127.0.0.1', '-p', str(inst.smtp_port),
                        '-c', str(args.sessions), '-n', str(args.messages),
                        '-s', str(args.size), '-r', rcpts,
                        '-f', 'alice@test.example', '-t', '120', '-R', '30'],
                       capture_output=True, timeout=200)
    res = parse_result(r.stdout.decode('utf-8', 'replace'))
    if not res or res.get('accepted') != args.messages:
        raise SystemExit('smtp_load: %r' % (r.stdout[-500:],))
    deadline = time.monotonic() + 120
    while done() - base < args.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    if done() - base < args.messages:
        raise SystemExit('only %d of %d messages arrived'
                         % (done() - base, args.messages))
    n = args.messages
    return (res['rate'], (role(inst, 'queued') - before['queued']) / n,
            (role(inst, 'outbound') - before['outbound']) / n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--messages', type=int, default=2000)
    ap.add_argument('--size', type=int, default=4000)
    ap.add_argument('--sessions', type=int, default=20)
    args = ap.parse_args()
    netns.enter(__file__)
    subprocess.run(['ip', 'addr', 'add', SINK_ADDR + '/8', 'dev', 'lo'],
                   capture_output=True)
    port = pmtest.free_port()
    sink = ob.SmtpSink(SINK_ADDR, port)
    sink.start()
    servers = {}
    try:
        servers = {'A (no keys)': instance(False, port),
                   'B (rsa+ed25519)': instance(True, port)}
        for part, rcpts, what in (
                ('local', 'alice@test.example,bob@test.example', None),
                ('relayed', 'x@remote.example', sink)):
            figures = {k: [] for k in servers}
            for i in range(args.rounds):
                order = list(servers.items())
                if i % 2:
                    order.reverse()
                for name, inst in order:
                    if what is None:
                        done = (lambda inst=inst: delivered_local(inst))
                    else:
                        done = (lambda: sink.counters()[2])
                    figures[name].append(one_round(inst, args, rcpts,
                                                   done))
            for name, rows in figures.items():
                med = [statistics.median(col) for col in zip(*rows)]
                print('%-8s %-16s accept %7.0f msg/s  queued %6.1f us/msg'
                      '  outbound %6.1f us/msg' % (part, name, med[0],
                                                  med[1] * 1e6,
                                                  med[2] * 1e6))
    finally:
        for inst in servers.values():
            inst.stop()
            inst.cleanup()
        sink.stop()


if __name__ == '__main__':
    main()
