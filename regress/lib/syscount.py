"""System calls per message of a daemon's processes, by strace -c: the
measure the CPU A/B tools print beside CPU time (steadier than either
time or rates on a shared machine)."""

import os
import re
import subprocess
import time

CALL_LINE = re.compile(r'\s*([a-z_0-9]+)\s+(\d+)\s*$')


def start(folder, pids_by_role):
    """strace -c -f on each role's processes (roles without any are left
    out); returns what stop() takes. Waits a second for them to attach."""
    tracers = {}
    for role, pids in pids_by_role.items():
        if not pids:
            continue
        out = os.path.join(folder, 'strace.%s' % role)
        argv = ['strace', '-c', '-f', '-U', 'name,calls', '-o', out]
        for p in pids:
            argv += ['-p', str(p)]
        tracers[role] = (subprocess.Popen(argv, stderr=subprocess.DEVNULL),
                         out)
    time.sleep(1)
    return tracers


def stop(tracers, messages):
    """Detach; {role: {syscall: calls per message}}."""
    res = {}
    for role, (proc, out) in tracers.items():
        proc.send_signal(2)
        proc.wait(timeout=30)
        calls = {}
        with open(out) as f:
            for line in f:
                m = CALL_LINE.match(line)
                if m and m.group(1) != 'total':
                    calls[m.group(1)] = int(m.group(2)) / max(messages, 1)
        res[role] = calls
    return res


def print_table(res, roles, what):
    """res: [(tree name, stop()'s result)]; one table a role, the
    busiest calls first."""
    for role in roles:
        names = sorted({k for _, r in res for k in r.get(role, {})},
                       key=lambda k: -max(r.get(role, {}).get(k, 0)
                                          for _, r in res))
        print('system calls per %s message, %s:' % (what, role))
        print('  %-22s' % 'total' + ''.join(
            ' %10.2f' % sum(r.get(role, {}).values()) for _, r in res)
            + '   [' + ' '.join(n for n, _ in res) + ']')
        for k in names:
            vals = [r.get(role, {}).get(k, 0) for _, r in res]
            if max(vals) >= 0.01:
                print('  %-22s' % k + ''.join(' %10.2f' % v for v in vals))
