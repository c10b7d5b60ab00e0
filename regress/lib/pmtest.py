"""pmtest: the harness every pymaild integration test is built on.

An Instance is one private pymaild: a temporary folder holding its
pymaild.conf, maildir, pidfile, control socket and log, with free loopback
ports.  Tests drive it through pymailadm (Instance.adm) or run pymaild in
the foreground, and read the Maildirs it writes.  Every process a test
starts is remembered and ended by its own PID at cleanup; nothing is ever
killed by name.

Standard library only; runs under Debian's /usr/bin/python3.
"""

import atexit
import contextlib
import errno
import json as _json
import os
import pwd
import re
import shutil
import signal
import random
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PYMAILD = os.path.join(ROOT, 'pymaild', 'pymaild')
PYMAILADM = os.path.join(ROOT, 'admin', 'pymailadm')
HELPERS = {
    'smtpd': os.path.join(ROOT, 'smtpd', 'smtpd'),
    'pop3d': os.path.join(ROOT, 'pop3d', 'pop3d'),
    'queued': os.path.join(ROOT, 'queued', 'queued'),
    'mxcache': os.path.join(ROOT, 'mxcache', 'mxcache'),
    'outbound': os.path.join(ROOT, 'outbound', 'outbound'),
}
ROLES = ('smtpd', 'pop3d', 'queued', 'mxcache', 'outbound')

IS_ROOT = os.geteuid() == 0
DAEMON_USER = '_pymaild'
QUEUE_USER = '_pymailq'
OUTBOUND_USER = '_pymailout'

# Seconds.  Generous: a SANITIZE=1 build is several times slower.
ADM_TIMEOUT = 30
STOP_TIMEOUT = 20
PORT_TIMEOUT = 10

# Where instance folders go.  Not $TMPDIR: as root the unprivileged daemon
# accounts must be able to traverse every folder above the instance.
TMPBASE = os.environ.get('PYMAILD_TEST_TMP', '/tmp')
KEEP = os.environ.get('PYMAILD_KEEP') == '1'


class MissingBinary(AssertionError):
    """A program the test needs is not built: a failure, not a skip."""


def require_built(*paths):
    """Fail with one clear line when a binary is missing."""
    for p in paths or (PYMAILD, PYMAILADM):
        if not os.access(p, os.X_OK):
            raise MissingBinary('%s is not built (%s missing): run make'
                                % (os.path.basename(p), p))


def require_accounts():
    """As root the daemon drops to _pymaild/_pymailq/_pymailout; they
    must exist."""
    if not IS_ROOT:
        return
    missing = []
    for u in (DAEMON_USER, QUEUE_USER, OUTBOUND_USER):
        try:
            pwd.getpwnam(u)
        except KeyError:
            missing.append(u)
    if missing:
        raise AssertionError('running as root but account(s) %s missing: '
                             'run make accounts (make regress does)'
                             % ', '.join(missing))


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def uid_of(name):
    return pwd.getpwnam(name).pw_uid


# ----------------------------------------------------------------------
# Network helpers

# Ports are picked below the kernel's ephemeral range (32768-60999 here):
# a port the kernel hands out as some client's source port (mxcache's DNS
# queries, say) must not be one a test is about to listen on.
PORT_LOW, PORT_HIGH = 10000, 32000


def _port_slice():
    """The ports this process may hand out.  run.py gives each test file
    running at the same time a slice of its own (PYMAILD_PORT_SLOT=i/n),
    so two files cannot both find a port free a moment apart and both
    listen on it."""
    try:
        i, n = (int(x) for x in
                os.environ.get('PYMAILD_PORT_SLOT', '0/1').split('/'))
    except ValueError:
        i, n = 0, 1
    if n < 1 or not 0 <= i < n:
        i, n = 0, 1
    width = (PORT_HIGH - PORT_LOW + 1) // n
    return PORT_LOW + i * width, width


_port_lo, _port_width = _port_slice()
# Ports are handed out in turn from a random start, never twice in one
# process until the slice wraps: an instance's SMTP and submission ports
# were once picked at random, both free, and equal.
_port_next = random.randrange(_port_width)
_port_lock = threading.Lock()


def _next_port():
    global _port_next
    with _port_lock:
        port = _port_lo + _port_next % _port_width
        _port_next += 1
    return port


def _free(kind):
    for _ in range(200):
        port = _next_port()
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise AssertionError('no free port between %d and %d'
                         % (_port_lo, _port_lo + _port_width - 1))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return _free(socket.SOCK_STREAM)


def free_udp_port():
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    return _free(socket.SOCK_DGRAM)


def hold_port53(testcase, timeout=120):
    """Port 53 of 127.0.0.1 is one for every test file running in the
    run's namespace: a test that serves DNS there (for a program that
    reads /etc/resolv.conf, which names no port) takes it in turn, until
    the test's cleanups end. The lock is a file all of them flock."""
    import fcntl
    f = open(os.path.join(TMPBASE, 'pymaild-regress-port53.lock'), 'a')
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                f.close()
                raise AssertionError('port 53 stayed in use by another '
                                     'test for %d s' % timeout)
            time.sleep(0.1)
    testcase.addCleanup(f.close)


def port_open(port, host='127.0.0.1', timeout=1.0):
    """True when a TCP connection to host:port succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port, host='127.0.0.1', timeout=PORT_TIMEOUT):
    """Poll until host:port accepts a connection; AssertionError if not."""
    if not wait_for(lambda: port_open(port, host), timeout):
        raise AssertionError('nothing listens on %s:%d after %.0f s'
                             % (host, port, timeout))


def wait_port_closed(port, host='127.0.0.1', timeout=PORT_TIMEOUT):
    if not wait_for(lambda: not port_open(port, host), timeout):
        raise AssertionError('%s:%d still accepts connections after %.0f s'
                             % (host, port, timeout))


def wait_for(pred, timeout=5.0, interval=0.02):
    """Poll pred() until true (returned) or timeout (returns False)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


def read_line(sock, timeout=5.0, limit=65536):
    """One CRLF- or LF-terminated line from sock, as text (without EOL).
    Returns None at EOF before any byte."""
    sock.settimeout(timeout)
    buf = b''
    while not buf.endswith(b'\n'):
        c = sock.recv(1)
        if not c:
            break
        buf += c
        if len(buf) > limit:
            break
    if not buf:
        return None
    return buf.rstrip(b'\r\n').decode('utf-8', 'replace')


def banner(port, host='127.0.0.1', timeout=5.0):
    """Connect, read the first line the server sends, close.  '' when the
    connection fails, closes or stays silent (so it can be polled)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            return read_line(s, timeout) or ''
    except OSError:
        return ''


# ----------------------------------------------------------------------
# /proc helpers (Linux)

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the comm, or None."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read().decode('utf-8', 'replace')
    except OSError:
        return None
    # comm is in parentheses and may contain anything, even ')'.
    rest = data[data.rfind(')') + 2:].split()
    return rest  # rest[0] = state, rest[1] = ppid, rest[19] = starttime


def proc_state(pid):
    f = _stat_fields(pid)
    return f[0] if f else None


def proc_ppid(pid):
    f = _stat_fields(pid)
    return int(f[1]) if f else None


def proc_starttime(pid):
    f = _stat_fields(pid)
    return int(f[19]) if f else None


def _threads_alive(pid):
    """Is a thread of pid other than its leader still running? A killed
    process's leader turns zombie while its other threads still exit,
    and its descriptors (a listening socket, a lock) close with the
    last one."""
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return False
    for tid in tids:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ('Z', 'X', 'x'):
            return True
    return False


def pid_alive(pid, starttime=None):
    """Running (a zombie whose threads have all exited counts as gone);
    with starttime, the same process and not a later one that reused
    the PID."""
    if not pid or pid <= 0:
        return False
    f = _stat_fields(pid)
    if not f or (f[0] in ('Z', 'X', 'x') and not _threads_alive(pid)):
        return False
    if starttime is not None and int(f[19]) != starttime:
        return False
    return True


def proc_cmdline(pid):
    """The command line as one string (NULs as spaces), '' if gone."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            data = f.read()
    except OSError:
        return ''
    return data.replace(b'\0', b' ').decode('utf-8', 'replace').strip()


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    out = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                k, _, v = line.partition(':')
                out[k] = v.strip()
    except OSError:
        pass
    return out


def proc_uids(pid):
    """(real, effective, saved, fs) uids, or None."""
    s = proc_status(pid).get('Uid')
    return tuple(int(x) for x in s.split()) if s else None


def proc_gids(pid):
    s = proc_status(pid).get('Gid')
    return tuple(int(x) for x in s.split()) if s else None


def proc_root(pid):
    """readlink /proc/PID/root: '/' unless the process is chrooted."""
    try:
        return os.readlink('/proc/%d/root' % pid)
    except OSError:
        return None


def all_pids():
    for name in os.listdir('/proc'):
        if name.isdigit():
            yield int(name)


def children(pid):
    """Live processes whose parent is pid."""
    out = []
    for p in all_pids():
        f = _stat_fields(p)
        if f and int(f[1]) == pid and f[0] not in ('Z', 'X', 'x'):
            out.append(p)
    return sorted(out)


def descendants(pid):
    """Every live process below pid (children, their children, ...)."""
    kids = {}
    for p in all_pids():
        f = _stat_fields(p)
        if f and f[0] not in ('Z', 'X', 'x'):
            kids.setdefault(int(f[1]), []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return sorted(out)


def role_of(pid):
    """Which helper role a process title names, or None."""
    cmd = proc_cmdline(pid)
    for r in ROLES:
        if re.search(r'(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])' % r, cmd):
            return r
    return None


def kill_pid(pid, starttime=None, grace=3.0):
    """End one process by its PID: SIGTERM, then SIGKILL after grace."""
    if not pid_alive(pid, starttime):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    if wait_for(lambda: not pid_alive(pid, starttime), grace):
        return
    if pid_alive(pid, starttime):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid, starttime), 5)


def set_subreaper():
    """Orphans below us (daemonized pymaild) become our children, so a
    harness can always find and end them.  Best effort."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except Exception:
        return False


def reap_zombies():
    """Collect exited children.  Only call when no Popen is in use."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ----------------------------------------------------------------------
# Config files (libconfig syntax)

def cfg_value(v):
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v.replace('\\', '\\\\').replace('"', '\\"')
    if isinstance(v, (list, tuple)):
        return '[ ' + ', '.join(cfg_value(x) for x in v) + ' ]'
    if isinstance(v, dict):
        return '{ ' + ' '.join('%s = %s;' % (k, cfg_value(x))
                               for k, x in v.items()) + ' }'
    raise TypeError('cannot write %r as libconfig' % (v,))


def cfg_text(settings, extra=None):
    """settings: dict key -> value (None = leave the key out).  extra: raw
    lines appended verbatim (for deliberately bad configs)."""
    lines = ['# written by regress/lib/pmtest.py']
    for k, v in settings.items():
        if v is not None:
            lines.append('%s = %s;' % (k, cfg_value(v)))
    if extra:
        lines.extend(extra if isinstance(extra, (list, tuple)) else [extra])
    return '\n'.join(lines) + '\n'


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError('%r not in text' % needle)


# ----------------------------------------------------------------------
# Maildir / tree helpers

def maildir_files(maildir_root, user, subdirs=('new', 'cur')):
    """Paths of the message files of a user's Maildir, sorted by name."""
    out = []
    for sub in subdirs:
        d = os.path.join(maildir_root, user, 'Maildir', sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        out.extend(os.path.join(d, n) for n in names if not n.startswith('.'))
    return sorted(out, key=os.path.basename)


def read_file(path, mode='rb'):
    with open(path, mode) as f:
        return f.read()


def tree_snapshot(path, ignore=('.lock',)):
    """{relative path: (kind, mode, bytes-or-None)} of everything below
    path, to prove a refused command changed nothing on disk."""
    snap = {}
    if not os.path.exists(path):
        return snap
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for n in dirnames + sorted(filenames):
            if n in ignore or n.endswith('.lock'):
                continue
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, path)
            st = os.lstat(p)
            if os.path.islink(p):
                snap[rel] = ('link', st.st_mode, os.readlink(p))
            elif os.path.isdir(p):
                snap[rel] = ('dir', st.st_mode, None)
            elif os.path.isfile(p):
                snap[rel] = ('file', st.st_mode, read_file(p))
            else:
                snap[rel] = ('other', st.st_mode, None)
    return snap


def verify_hash(password, hashed):
    """crypt(3) check, as the daemon does it (yescrypt, bcrypt...)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        import crypt
    return crypt.crypt(password, hashed) == hashed


# ----------------------------------------------------------------------
# Running programs

def in_threads(fn, args, timeout=90):
    """fn(a) for each a of args, all at once (each a thread); waits for
    every one, at most timeout seconds each."""
    import threading
    threads = [threading.Thread(target=fn, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def run(argv, input=None, timeout=ADM_TIMEOUT, env=None, cwd='/'):
    """Run argv in its own session (no controlling tty: a program that
    wants to prompt cannot hang on the developer's terminal).  Returns a
    text CompletedProcess; on timeout, kills it and raises AssertionError.
    """
    stdin = subprocess.DEVNULL if input is None else subprocess.PIPE
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env,
                         cwd=cwd, start_new_session=True,
                         errors='replace')
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError('%s timed out after %s s\nstdout: %s\nstderr: %s'
                             % (' '.join(argv), timeout, out, err))
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def run_tty(argv, answer, timeout=ADM_TIMEOUT, env=None):
    """Run argv on a pseudo-terminal; whenever it waits at a prompt (output
    not ending in a newline), call answer(prompt_line) and type the result.
    Returns (exit status, everything it wrote to the terminal)."""
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.chdir('/')
            os.execve(argv[0], argv, env if env is not None else os.environ)
        finally:
            os._exit(127)
    out = b''
    answered_at = 0
    deadline = time.monotonic() + timeout
    status = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], min(left, 0.15))
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError as e:  # EIO: the child closed the tty
                    if e.errno == errno.EIO:
                        break
                    raise
                if not chunk:
                    break
                out += chunk
                continue
            # Quiet for a moment: is it waiting at a prompt?
            pending = out[answered_at:]
            last = pending.split(b'\n')[-1].decode('utf-8', 'replace')
            if last.strip():
                reply = answer(last.strip())
                answered_at = len(out)
                if reply is None:
                    break
                os.write(fd, reply.encode() + b'\n')
            else:
                wpid, st = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    status = st
                    # drain
                    with contextlib.suppress(OSError):
                        while select.select([fd], [], [], 0.05)[0]:
                            c = os.read(fd, 4096)
                            if not c:
                                break
                            out += c
                    break
    finally:
        if status is None:
            def exited():
                r = os.waitpid(pid, os.WNOHANG)
                return r if r[0] else None
            got = wait_for(exited, 2.0)
            if got:
                status = got[1]
            else:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                os.close(fd)
                raise AssertionError('%s still running on the tty after '
                                     '%s s; output: %r'
                                     % (' '.join(argv), timeout, out))
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode('utf-8', 'replace')


# ----------------------------------------------------------------------
# Instance

_live_instances = set()


def cleanup_all():
    """End every instance not cleaned yet (atexit, signal handlers)."""
    for inst in list(_live_instances):
        with contextlib.suppress(Exception):
            inst.cleanup()


atexit.register(cleanup_all)


class Instance:
    """A private pymaild in a temporary folder.

        inst = Instance(timeout=2, localdomains=['a.example'])
        inst.adm('adduser', 'alice', 'secret')
        inst.start(); ...; inst.stop()
        inst.cleanup()        # or: with Instance() as inst: ...

    Keyword arguments override config keys (None removes a key).
    A benchmark may point pymailadm and pymaild at another build tree
    (pymaild finds its helpers beside itself).
    """

    pymailadm = PYMAILADM
    pymaild_bin = PYMAILD

    def __init__(self, **overrides):
        self.dir = tempfile.mkdtemp(prefix='pmtest-', dir=TMPBASE)
        os.chmod(self.dir, 0o755)
        _live_instances.add(self)
        self.conf = os.path.join(self.dir, 'pymaild.conf')
        self.sandir = os.path.join(self.dir, 'sanitizer')
        os.mkdir(self.sandir)
        os.chmod(self.sandir, 0o1777)
        self.smtp_port = free_port()
        self.pop3_port = free_port()
        self.resolver_port = free_udp_port()
        self.outbound_port = free_port()
        user = DAEMON_USER if IS_ROOT else current_user()
        quser = QUEUE_USER if IS_ROOT else current_user()
        ouser = OUTBOUND_USER if IS_ROOT else current_user()
        self.config = {
            'serverhostname': 'mail.test.example',
            'localdomains': ['test.example'],
            'listen': ['127.0.0.1'],
            'smtpserverport': self.smtp_port,
            'pop3serverport': self.pop3_port,
            'maildir': 'maildir',
            'pidfile': 'pymaild.pid',
            'controlsocket': 'pymaild.sock',
            'logfile': 'pymaild.log',
            'loglevel': 3,
            'user': user,
            'queueuser': quser,
            'outbounduser': ouser,
            # Tests never use the real resolv.conf (it points off-host).
            'resolver': '127.0.0.1:%d' % self.resolver_port,
            'outboundport': self.outbound_port,
            'timeout': 30,
            # Sender authentication asks DNS for every message on port
            # 25; tests that want it (regress/auth) turn it on with a
            # DNS server of their own.
            'authchecks': False,
        }
        self.config.update(overrides)
        self.extra = None
        self.procs = {}          # pid -> starttime of daemon processes seen
        self.popens = []         # foreground pymaild processes
        self.cleaned = False
        self.started = None      # CompletedProcess of the last start()
        self.write_config()

    # -- configuration -------------------------------------------------

    def write_config(self, extra=None, **overrides):
        """Rewrite pymaild.conf with the current settings plus overrides;
        extra: raw lines appended (kept out of self.config).  Returns the
        text written."""
        self.config.update(overrides)
        self.extra = extra
        text = cfg_text(self.config, extra)
        tmp = self.conf + '.tmp'
        with open(tmp, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.conf)
        return text

    def use_tree(self, tree):
        """Run pymailadm and pymaild of another build tree (a benchmark's
        baseline), leaving out the config keys that build does not know
        yet (its `pymaild -n` names them)."""
        self.pymailadm = os.path.join(tree, 'admin', 'pymailadm')
        self.pymaild_bin = os.path.join(tree, 'pymaild', 'pymaild')
        for _ in range(len(self.config)):
            r = self.check_config()
            m = re.search(r"unknown key '([^']+)'", r.stderr + r.stdout)
            if not m or m.group(1) not in self.config:
                return
            del self.config[m.group(1)]
            self.write_config()

    def path(self, key):
        """Absolute path of a config path setting (relative ones are
        relative to the config file's folder)."""
        v = self.config.get(key)
        if key == 'spooldir' and not v:
            return os.path.join(self.path('maildir'), 'queue')
        if v is None:
            return None
        return v if os.path.isabs(v) else os.path.join(self.dir, v)

    @property
    def maildir(self):
        return self.path('maildir')

    @property
    def spooldir(self):
        return self.path('spooldir')

    @property
    def pidfile(self):
        return self.path('pidfile')

    @property
    def sockpath(self):
        return self.path('controlsocket')

    @property
    def logpath(self):
        return self.path('logfile')

    @property
    def usersfile(self):
        return os.path.join(self.maildir, 'users')

    # -- running programs ----------------------------------------------

    def env(self):
        env = dict(os.environ)
        for var, name in (('ASAN_OPTIONS', 'asan'),
                          ('UBSAN_OPTIONS', 'ubsan')):
            opts = env.get(var, '')
            opts = (opts + ':' if opts else '') + \
                'log_path=%s/%s' % (self.sandir, name)
            env[var] = opts
        env['PYMAILD_TEST_INSTANCE'] = self.dir
        return env

    def adm(self, *args, input=None, json=False, timeout=ADM_TIMEOUT):
        """Run pymailadm -f CONF [--json] ARGS...; returns the text
        CompletedProcess (never raises on a non-zero exit)."""
        require_built(self.pymailadm)
        argv = [self.pymailadm, '-f', self.conf]
        if json:
            argv.append('--json')
        argv.extend(args)
        r = run(argv, input=input, timeout=timeout, env=self.env())
        self._note_daemon()
        return r

    def adm_json(self, *args, input=None):
        """pymailadm --json ...; asserts exit 0 and returns the object."""
        r = self.adm(*args, input=input, json=True)
        if r.returncode != 0:
            raise AssertionError('pymailadm --json %s: exit %d: %s'
                                 % (' '.join(args), r.returncode, r.stderr))
        try:
            return _json.loads(r.stdout)
        except ValueError as e:
            raise AssertionError('pymailadm --json %s: not JSON (%s): %r'
                                 % (' '.join(args), e, r.stdout))

    def pymaild(self, *args, timeout=ADM_TIMEOUT):
        """Run pymaild ARGS... to completion (e.g. '-n')."""
        require_built(self.pymaild_bin)
        return run([self.pymaild_bin] + list(args), timeout=timeout,
                   env=self.env())

    def check_config(self):
        """pymaild -n -f CONF."""
        return self.pymaild('-n', '-f', self.conf)

    def start(self):
        """pymailadm start; asserts success, returns the daemon's PID."""
        r = self.adm('start')
        if r.returncode != 0:
            raise AssertionError('pymailadm start: exit %d\nstdout: %s\n'
                                 'stderr: %s\nlog (tail):\n%s'
                                 % (r.returncode, r.stdout, r.stderr,
                                    self.log_tail()))
        m = re.search(r'pymaild started, PID is (\d+)', r.stdout)
        if not m:
            raise AssertionError('pymailadm start: no "pymaild started, PID '
                                 'is N" in %r' % r.stdout)
        pid = int(m.group(1))
        self._remember(pid)
        self.started = r
        return pid

    def stop(self, timeout=STOP_TIMEOUT):
        """pymailadm stop; returns the CompletedProcess."""
        self._note_daemon()
        return self.adm('stop', timeout=timeout)

    def start_foreground(self, *extra_args):
        """pymaild -d -f CONF as a Popen (stderr to DIR/foreground.err)."""
        require_built(self.pymaild_bin)
        self.fg_err = os.path.join(self.dir, 'foreground.err')
        errf = open(self.fg_err, 'ab')
        try:
            p = subprocess.Popen([self.pymaild_bin, '-d'] + list(extra_args) +
                                 ['-f', self.conf],
                                 stdin=subprocess.DEVNULL,
                                 stdout=errf, stderr=errf, env=self.env(),
                                 cwd='/', start_new_session=True)
        finally:
            errf.close()
        self.popens.append(p)
        self._remember(p.pid)
        return p

    def wait_port(self, port=None, timeout=PORT_TIMEOUT):
        wait_port(port or self.smtp_port, timeout=timeout)

    def wait_ports(self, timeout=PORT_TIMEOUT):
        wait_port(self.smtp_port, timeout=timeout)
        wait_port(self.pop3_port, timeout=timeout)

    # -- state ---------------------------------------------------------

    def pid(self):
        """The PID in the pidfile, or None."""
        try:
            with open(self.pidfile) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self):
        """Is the daemon whose PID is in the pidfile alive?"""
        p = self.pid()
        return bool(p) and pid_alive(p) and (
            p in self.procs or 'pymaild' in proc_cmdline(p))

    def processes(self):
        """(parent pid, {role: [pids]}, [other child pids])."""
        p = self.pid()
        roles, other = {}, []
        if not p or not pid_alive(p):
            return p, roles, other
        self._remember(p)
        for c in children(p):
            self._remember(c)
            r = role_of(c)
            if r:
                roles.setdefault(r, []).append(c)
            else:
                other.append(c)
        return p, roles, other

    def wait_roles(self, timeout=5.0):
        """Wait until the parent has one child of each role; returns the
        dict role -> pid."""
        def ok():
            _, roles, _ = self.processes()
            return all(roles.get(r) for r in ROLES)
        wait_for(ok, timeout)
        _, roles, _ = self.processes()
        return {r: v[0] for r, v in roles.items()}

    def log(self):
        """The log file, plus a foreground daemon's stderr."""
        text = ''
        for p in (self.logpath, getattr(self, 'fg_err', None)):
            if p and os.path.isfile(p):
                with open(p, errors='replace') as f:
                    text += f.read()
        return text

    def log_tail(self, n=30):
        return '\n'.join(self.log().splitlines()[-n:])

    def sanitizer_reports(self):
        out = []
        with contextlib.suppress(OSError):
            for n in sorted(os.listdir(self.sandir)):
                with open(os.path.join(self.sandir, n),
                          errors='replace') as f:
                    out.append('== %s\n%s' % (n, f.read()))
        return out

    def users(self):
        """Names in MAILDIR/users (read directly, not via pymailadm)."""
        try:
            with open(self.usersfile) as f:
                return [l.split(':', 1)[0] for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def user_hash(self, user):
        with open(self.usersfile) as f:
            for line in f:
                name, _, h = line.rstrip('\n').partition(':')
                if name == user:
                    return h
        return None

    def maildir_files(self, user, subdirs=('new', 'cur')):
        return maildir_files(self.maildir, user, subdirs)

    def messages(self, user):
        """Contents (bytes) of a user's messages, in file-name order."""
        return [read_file(p) for p in self.maildir_files(user)]

    # -- process bookkeeping -------------------------------------------

    def _remember(self, pid):
        st = proc_starttime(pid)
        if st is not None and pid not in self.procs:
            self.procs[pid] = st

    def _note_daemon(self):
        p = self.pid()
        if p and pid_alive(p) and (p in self.procs or
                                   'pymaild' in proc_cmdline(p)):
            self._remember(p)
            for c in descendants(p):
                self._remember(c)

    def live_procs(self):
        return [p for p, st in self.procs.items() if pid_alive(p, st)]

    def cleanup(self):
        """Stop the daemon (pymailadm stop, then by PID), end foreground
        processes, remove the folder.  Returns sanitizer reports found."""
        if self.cleaned:
            return []
        self.cleaned = True
        try:
            self._note_daemon()
            if self.live_procs():
                # A test may have left a broken config: restore ours.
                if self.extra:
                    with contextlib.suppress(Exception):
                        self.write_config(extra=None)
                with contextlib.suppress(Exception):
                    self.adm('stop', timeout=STOP_TIMEOUT)
            for p in self.popens:
                if p.poll() is None:
                    with contextlib.suppress(OSError):
                        p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(5)
            # Whatever is left, by its own PID (children first).
            for pid in sorted(self.live_procs(), reverse=True):
                for d in descendants(pid):
                    self._remember(d)
            for pid, st in sorted(self.procs.items(), reverse=True):
                kill_pid(pid, st)
            return self.sanitizer_reports()
        finally:
            _live_instances.discard(self)
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def __repr__(self):
        return '<Instance %s>' % self.dir


# ----------------------------------------------------------------------
# TestCase base

class TestCase(unittest.TestCase):
    """Fails every test at once with one clear line when the binaries are
    not built; instance() makes an Instance that is cleaned up (and whose
    sanitizer reports fail the test) whatever happens."""

    maxDiff = None

    def setUp(self):
        require_built()
        require_accounts()

    def instance(self, **overrides):
        inst = Instance(**overrides)

        def done():
            reports = inst.cleanup()
            if reports:
                raise AssertionError('sanitizer reports from %s:\n%s'
                                     % (inst.dir, '\n'.join(reports)))
        self.addCleanup(done)
        return inst

    def require_root(self):
        if not IS_ROOT:
            self.skipTest('needs root (privilege drop and chroot are only '
                          'done when started as root)')

    def assertOneLineError(self, r, *needles):
        """Exit 1 with exactly one line on stderr containing needles."""
        self.assertEqual(r.returncode, 1, 'exit status of %s\nstdout: %r\n'
                         'stderr: %r' % (' '.join(r.args), r.stdout,
                                         r.stderr))
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, 'want one line on stderr, got %r'
                         % r.stderr)
        for n in needles:
            self.assertIn(n.lower(), lines[0].lower())
        return lines[0]

    def assertMessage(self, line, message):
        """An error line is the contract's message, optionally prefixed
        with the program name the err(3) way ("pymailadm: No such user.")."""
        self.assertRegex(line, r'^([a-z0-9_]+: )?%s$' % re.escape(message))

    def assertReply(self, sock, prefix, what=''):
        """Read one line from sock; it must start with prefix."""
        try:
            line = read_line(sock)
        except OSError as e:
            line = '(%s)' % (e.__class__.__name__,)
        if line is None:
            line = '(connection closed)'
        if not line.startswith(prefix):
            self.fail('%swant %r..., got %r' % (what + ': ' if what else '',
                                                prefix, line))
        return line


def memory_holding(pid, needles, region_max=1 << 28):
    """Which of needles (bytes) are anywhere in the process's writable
    memory (heap, stacks, data): read as root from /proc/PID/mem.
    Regions over region_max (a sanitizer's shadow) are skipped."""
    found = set()
    with open('/proc/%d/maps' % pid) as f:
        maps = f.read().splitlines()
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split('-'))
            name = fields[5] if len(fields) > 5 else ''
            if 'rw' not in fields[1] or hi - lo > region_max or \
                    name in ('[vvar]', '[vsyscall]'):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            found.update(n for n in needles if n in data)
    return found


# ----------------------------------------------------------------------
# Programs run by another account

_copies = []


def _can_exec(path, uid, gid):
    """Can uid:gid (no other groups) run path, by the mode bits of path
    and of every folder above it? (A tree cloned into /root, mode 0700,
    is closed to every account but root.)"""
    import stat as st_
    path = os.path.abspath(path)
    chain = [path]
    while chain[-1] != '/':
        chain.append(os.path.dirname(chain[-1]))
    for p in chain:
        st = os.stat(p)
        if st.st_uid == uid:
            bit = st_.S_IXUSR
        elif st.st_gid == gid:
            bit = st_.S_IXGRP
        else:
            bit = st_.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def programs_for(uid, gid):
    """{'pymaild': path, 'pymailadm': path} that uid:gid can run: the
    built ones when it can reach them, else copies installed (the
    layout of `make install`: sbin/ and libexec/pymaild/) in a folder
    under TMPBASE open to everyone, made once per test process."""
    built = {'pymaild': PYMAILD, 'pymailadm': PYMAILADM}
    if all(_can_exec(p, uid, gid) for p in list(built.values()) +
           list(HELPERS.values())):
        return built
    if not _copies:
        require_built(PYMAILD, PYMAILADM, *HELPERS.values())
        top = tempfile.mkdtemp(prefix='pmtest-bin-', dir=TMPBASE)
        _copies.append(top)
        atexit.register(shutil.rmtree, top, True)
        sbin = os.path.join(top, 'sbin')
        libexec = os.path.join(top, 'libexec', 'pymaild')
        os.makedirs(sbin)
        os.makedirs(libexec)
        for d in (top, sbin, os.path.dirname(libexec), libexec):
            os.chmod(d, 0o755)
        for src, d in [(PYMAILD, sbin), (PYMAILADM, sbin)] + \
                [(p, libexec) for p in HELPERS.values()]:
            dst = os.path.join(d, os.path.basename(src))
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o755)
    sbin = os.path.join(_copies[0], 'sbin')
    return {k: os.path.join(sbin, k) for k in built}
