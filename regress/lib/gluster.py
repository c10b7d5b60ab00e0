"""gluster: a GlusterFS volume for regress/shared/, mounted twice.

A volume of two replicated bricks under a folder of the test, served by
a glusterd of the test's own, mounted twice through FUSE: two mount
points of one distributed file system, one for each pymaild host (the
PYMAILD_SHARED_MOUNTS="A:B" form sharedutil reads).

Everything lives in private namespaces that the calling process enters
(Gluster.enter): a network namespace, because glusterd refuses loopback
brick addresses and needs an address of its own (ADDR, on a veth pair
that exists only there), and a mount namespace, so that the FUSE mounts
and the private folders bind-mounted over glusterd's state directories
(/var/lib/glusterd, /var/log/glusterfs, /run/gluster) are seen by the
test and its daemons only, and the host's gluster state is never
touched.  The processes that gluster starts are found by PID as those in
this mount namespace, and ended by stop().

missing() says why the fixture cannot run here (no root, no GlusterFS,
no usable /dev/fuse); callers then report that and run on a local tree.

Standard library only; Debian's /usr/bin/python3.
"""

import ctypes
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

ADDR = '10.99.0.1'
VOLUME = 'pmvol'
PROGRAMS = ('glusterd', 'gluster', 'glusterfsd', 'mount.glusterfs')
# glusterd's state: each gets a private, empty folder of the test.
STATE_DIRS = ('/var/lib/glusterd', '/var/log/glusterfs', '/run/gluster')
GLUSTER_COMMS = ('glusterd', 'glusterfsd', 'glusterfs')
CMD_TIMEOUT = 60        # one gluster or mount command, seconds
START_WAIT = 30.0       # glusterd answering, a brick up, a mount usable
STOP_WAIT = 10.0

# Caches of Gluster's client that serve a file's old attributes or
# contents after another client replaced or appended to it: off, so that
# a host sees what another host wrote once that one closed or renamed it
# (the close-to-open consistency NFSv4 gives).  pymailadm on one host
# rewrites users and options by rename, maildirsize is appended to by
# every host and recounted by rename, and every host must read the new
# file at its next open.  Without either, tests here fail (a file's old
# contents read after another host replaced it; a new user unknown on the
# other host, a quota passed by a message).
VOLUME_OPTIONS = (
    ('performance.quick-read', 'off'),      # small files' contents
    ('performance.stat-prefetch', 'off'),   # md-cache: stat, xattrs
)
# The kernel's FUSE caches of attributes and names (1 s by default): with
# them a host reads maildirsize up to the size it last saw and opens a
# name another host renamed over (ESTALE from pymailadm on users).
MOUNT_OPTIONS = 'attribute-timeout=0,entry-timeout=0'

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36


def missing():
    """Why a GlusterFS volume cannot be made here, or None."""
    if os.geteuid() != 0:
        return 'not root (glusterd and FUSE mounts need it)'
    for p in PROGRAMS:
        if not shutil.which(p, path=os.environ.get('PATH', '') +
                            ':/usr/sbin:/sbin'):
            return '%s not installed (Debian glusterfs-server, ' \
                   'glusterfs-client)' % p
    try:
        fd = os.open('/dev/fuse', os.O_RDWR)
    except OSError as e:
        return '/dev/fuse unusable: %s' % e.strerror
    os.close(fd)
    return None


def run(argv, check=True, timeout=CMD_TIMEOUT):
    env = dict(os.environ)
    env['PATH'] = env.get('PATH', '') + ':/usr/sbin:/sbin'
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, env=env)
    out = p.stdout.decode('utf-8', 'replace')
    if check and p.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(argv), p.returncode,
                                                out.strip()))
    return p.returncode, out


def wait_until(pred, timeout, interval=0.1):
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


def my_mount_ns():
    return os.readlink('/proc/self/ns/mnt')


class Gluster:
    """One volume, two mounts; enter(), start(), then mounts, stop()."""

    def __init__(self, tmpbase='/tmp', keep=False):
        self.root = tempfile.mkdtemp(prefix='pmgluster-', dir=tmpbase)
        os.chmod(self.root, 0o755)
        self.keep = keep
        self.state = os.path.join(self.root, 'state')
        self.bricks = [os.path.join(self.root, 'brick%d' % i)
                       for i in (1, 2)]
        self.mounts = [os.path.join(self.root, m) for m in ('A', 'B')]
        self.sock = os.path.join(self.root, 'state', 'glusterd.socket')
        self.ns = None
        self.mounted = []

    # -- namespaces ---------------------------------------------------

    def enter(self):
        """Move this process into new network and mount namespaces."""
        libc = ctypes.CDLL(None, use_errno=True)
        # glusterd and the bricks are daemons: as their subreaper we get
        # them back when they die, to reap (see kill_brick).
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, 'unshare: %s' % os.strerror(e))
        self.ns = my_mount_ns()
        # Nothing mounted from here on may reach the host's namespace.
        run(['mount', '--make-rprivate', '/'])
        run(['ip', 'link', 'set', 'lo', 'up'])
        run(['ip', 'link', 'add', 'gl0', 'type', 'veth', 'peer', 'name',
             'gl1'])
        run(['ip', 'addr', 'add', ADDR + '/24', 'dev', 'gl0'])
        run(['ip', 'link', 'set', 'gl1', 'up'])
        run(['ip', 'link', 'set', 'gl0', 'up'])
        for d in STATE_DIRS:
            private = os.path.join(self.state, d.strip('/').replace('/', '-'))
            os.makedirs(private)
            if d == '/var/lib/glusterd':
                # The package's option groups; not its hooks, scripts
                # that would set up Samba or NFS-Ganesha on the host.
                shutil.copytree(os.path.join(d, 'groups'),
                                os.path.join(private, 'groups'))
            os.makedirs(d, exist_ok=True)
            run(['mount', '--bind', private, d])

    # -- start --------------------------------------------------------

    def cli(self, *args, check=True):
        return run(['gluster', '--mode=script', '--glusterd-sock=' +
                    self.sock] + list(args), check=check)

    def volfile(self):
        """The package's glusterd.vol with the CLI socket in our folder
        (by default it is /run/glusterd.socket, on the host's /run)."""
        with open('/etc/glusterfs/glusterd.vol') as f:
            text = f.read()
        end = text.rindex('end-volume')
        path = os.path.join(self.state, 'glusterd.vol')
        with open(path, 'w') as f:
            f.write(text[:end] + '    option glusterd-sockfile %s\n'
                    % self.sock + text[end:])
        return path

    def start(self):
        """glusterd, the volume, its bricks, the two FUSE mounts."""
        assert self.ns == my_mount_ns(), 'enter() first'
        run(['glusterd', '-f', self.volfile(),
             '-p', os.path.join(self.state, 'glusterd.pid')])
        if not wait_until(lambda: self.cli('volume', 'list',
                                           check=False)[0] == 0,
                          START_WAIT, 0.2):
            raise RuntimeError('glusterd did not answer in %d s'
                               % START_WAIT)
        for b in self.bricks:
            os.makedirs(b)
        # Two bricks on one host: gluster wants `force` for that.
        self.cli('volume', 'create', VOLUME, 'replica', '2',
                 *['%s:%s' % (ADDR, b) for b in self.bricks], 'force')
        for k, v in VOLUME_OPTIONS:
            self.cli('volume', 'set', VOLUME, k, v)
        self.cli('volume', 'start', VOLUME)
        if not wait_until(lambda: len(self.brick_pids()) == 2, START_WAIT):
            raise RuntimeError('bricks not up: %r' % self.brick_pids())
        for m in self.mounts:
            os.makedirs(m)
            opts = ['-o', MOUNT_OPTIONS] if MOUNT_OPTIONS else []
            run(['mount', '-t', 'glusterfs'] + opts +
                ['%s:/%s' % (ADDR, VOLUME), m])
            self.mounted.append(m)
        self.check_shared()

    def check_shared(self):
        """What one mount writes, the other reads."""
        a, b = self.mounts
        probe = 'probe-%d' % os.getpid()
        with open(os.path.join(a, probe), 'w') as f:
            f.write('seen\n')
        ok = wait_until(lambda: os.path.exists(os.path.join(b, probe)),
                        START_WAIT)
        if not ok:
            raise RuntimeError('%s not seen through %s' % (probe, b))
        os.unlink(os.path.join(b, probe))

    # -- processes ----------------------------------------------------

    def processes(self):
        """{pid: comm} of gluster's processes in our mount namespace."""
        out = {}
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            try:
                with open('/proc/%s/comm' % name) as f:
                    comm = f.read().strip()
                if comm not in GLUSTER_COMMS:
                    continue
                if os.readlink('/proc/%s/ns/mnt' % name) != self.ns:
                    continue
                with open('/proc/%s/stat' % name) as f:
                    st = f.read()
            except OSError:
                continue
            if st[st.rfind(')') + 2] not in 'ZX':
                out[int(name)] = comm
        return out

    def reap(self):
        """Reap gluster's processes that died as our children (we are
        their subreaper, see enter())."""
        me = os.getpid()
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % name) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.find('(') + 1:st.rfind(')')]
            rest = st[st.rfind(')') + 2:].split()
            if comm in GLUSTER_COMMS and rest[0] == 'Z' and \
                    int(rest[1]) == me:
                # Blocking: a leader is Z before its last thread is gone,
                # and only then can it be reaped; it is dying, not long.
                try:
                    os.waitpid(int(name), 0)
                except ChildProcessError:
                    pass

    def brick_pids(self):
        """[pid of the glusterfsd serving brick 1, brick 2], as running."""
        alive = self.processes()
        pids = []
        for b in self.bricks:
            pat = '/run/gluster/vols/%s/%s-%s.pid' % (
                VOLUME, ADDR, b.strip('/').replace('/', '-'))
            for path in glob.glob(pat):
                try:
                    with open(path) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    continue
                if alive.get(pid) == 'glusterfsd':
                    pids.append(pid)
        return pids

    def kill_brick(self, index):
        """SIGKILL the brick process of brick `index` (0 or 1)."""
        pid = self.brick_pids()[index]
        os.kill(pid, signal.SIGKILL)
        if not wait_until(lambda: pid not in self.processes(), STOP_WAIT):
            raise RuntimeError('brick %d (pid %d) did not die' % (index,
                                                                  pid))
        # Reap the zombie (we are the daemons' subreaper, see enter()):
        # glusterd would take it for a running brick and not start it
        # again.
        self.reap()
        return pid

    def revive(self):
        """Start the bricks that are down again (gluster's self-heal
        then brings them up to date)."""
        if len(self.brick_pids()) == len(self.bricks):
            return
        self.cli('volume', 'start', VOLUME, 'force')
        if not wait_until(lambda: len(self.brick_pids()) == 2, START_WAIT):
            raise RuntimeError('bricks not up again: %r'
                               % self.brick_pids())

    # -- stop ---------------------------------------------------------

    def stop(self):
        """Unmount, end every gluster process of ours, remove the folder."""
        if self.ns is None or self.ns != my_mount_ns():
            return
        for m in reversed(self.mounted):
            if run(['umount', m], check=False)[0] != 0:
                run(['umount', '-l', m], check=False)
        self.mounted = []
        for sig, wait in ((signal.SIGTERM, STOP_WAIT),
                          (signal.SIGKILL, STOP_WAIT)):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            if wait_until(lambda: not self.processes(), wait):
                break
        self.reap()
        for d in reversed(STATE_DIRS):
            run(['umount', d], check=False)
        if not self.keep:
            shutil.rmtree(self.root, True)
