"""checkout: a copy of this tree as a fresh clone would hold it (the
files git tracks, with the working tree's changes), for the tests that
build or package from a clean folder.
"""

import os
import shutil
import subprocess


def tracked_files(root):
    r = subprocess.run(['git', '-C', root, 'ls-files', '-z', '-c', '-o',
                        '--exclude-standard'], stdout=subprocess.PIPE,
                       check=True, timeout=60)
    return [n for n in r.stdout.decode().split('\0') if n]


def fresh_copy(root, dest):
    for rel in tracked_files(root):
        src = os.path.join(root, rel)
        if not os.path.lexists(src):
            continue            # deleted in the working tree
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
