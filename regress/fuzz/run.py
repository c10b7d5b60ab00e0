#!/usr/bin/python3
"""Run each libFuzzer harness (what `make fuzz` calls).

    /usr/bin/python3 regress/fuzz/run.py [-t SECONDS] [-j N] NAME...

Runs regress/fuzz/build/NAME for SECONDS over a working corpus (in
build/, seeded from corpus/NAME/, with NAME.dict and the flags of
NAME.options when there are). An input that crashes, hangs or runs out
of memory is copied into corpus/NAME/, where `make regress` replays it
from then on. Ends with one line per
harness, "NAME: E execs, C crashes"; the exit status is 1 when any
harness found one.
"""

import argparse
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, 'build')
CORPUS = os.path.join(HERE, 'corpus')
STAT = re.compile(rb'stat::number_of_executed_units:\s*(\d+)')
DONE = re.compile(rb'Done (\d+) runs in')
ARTIFACT = ('crash-', 'leak-', 'timeout-', 'oom-', 'slow-unit-')


def keep_artifacts(name, artdir):
    """Copy what libFuzzer saved into the corpus; returns their names."""
    kept = []
    for f in sorted(os.listdir(artdir)):
        if not f.startswith(ARTIFACT) or f.startswith('slow-unit-'):
            continue
        with open(os.path.join(artdir, f), 'rb') as fp:
            data = fp.read()
        dest = '%s%s' % (f.split('-')[0] + '-',
                         hashlib.sha1(data).hexdigest()[:16])
        shutil.copyfile(os.path.join(artdir, f),
                        os.path.join(CORPUS, name, dest))
        os.unlink(os.path.join(artdir, f))
        kept.append(dest)
    return kept


def options(name):
    """Flags of NAME.options: one a line, '#' starts a comment."""
    try:
        with open(os.path.join(HERE, name + '.options')) as f:
            lines = [l.split('#')[0].strip() for l in f]
    except FileNotFoundError:
        return []
    return [l for l in lines if l]


def run_one(name, secs):
    binary = os.path.join(BUILD, name)
    work = os.path.join(BUILD, 'corpus', name)
    artdir = os.path.join(BUILD, 'artifacts', name)
    seeds = os.path.join(CORPUS, name)
    for d in (work, artdir, seeds):
        os.makedirs(d, exist_ok=True)
    argv = [binary, '-max_total_time=%d' % secs, '-print_final_stats=1',
            '-timeout=10', '-rss_limit_mb=2048', '-max_len=65536',
            '-artifact_prefix=' + artdir + '/', work, seeds]
    d = os.path.join(HERE, name + '.dict')
    if os.path.exists(d):
        argv.insert(1, '-dict=' + d)
    argv[1:1] = options(name)
    log = os.path.join(BUILD, name + '.log')
    with open(log, 'wb') as out:
        # The bound is generous: libFuzzer ends by itself at SECONDS.
        try:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT,
                                timeout=secs + 120).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    with open(log, 'rb') as fp:
        text = fp.read()
    m = STAT.findall(text) or DONE.findall(text)
    execs = int(m[-1]) if m else 0
    kept = keep_artifacts(name, artdir)
    if rc != 0 and not kept:
        kept = ['(exit status %d, see %s)' % (rc, log)]
    return name, execs, kept


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-t', type=int, default=10, help='seconds per harness')
    ap.add_argument('-j', type=int, default=1, help='harnesses at once')
    ap.add_argument('names', nargs='+')
    args = ap.parse_args()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.j)) as pool:
        futs = [pool.submit(run_one, n, args.t) for n in args.names]
        for f in concurrent.futures.as_completed(futs):
            name, execs, kept = f.result()
            print('fuzz %s: %d execs (%d/s)%s' % (
                name, execs, execs // max(1, args.t),
                ''.join('\n    saved ' + k for k in kept)))
            sys.stdout.flush()
            results.append((name, execs, kept))
    results.sort()
    for name, execs, kept in results:
        print('%s: %d execs, %d crashes' % (name, execs, len(kept)))
    return 1 if any(k for _, _, k in results) else 0


if __name__ == '__main__':
    sys.exit(main())
