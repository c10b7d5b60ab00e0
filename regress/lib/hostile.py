"""A compromised helper in the tests: pymaild starts regress/hostile/stub.py
in place of one helper (PYMAILD_TEST_HELPERDIR, honoured only by a
REGRESS=1 build), the stub hands over its channel to the parent, and the
test speaks the framing (DESIGN.md B3) itself through a Peer.
"""

import os
import re
import select
import socket
import struct
import subprocess
import time

from lib import pmtest

# A program, not a module: it stays beside the tests that use it.
STUB = os.path.join(pmtest.ROOT, 'regress', 'hostile', 'stub.py')
HDR = struct.Struct('<IHHII')     # type, len, flags, peerid, pid
HASFD = 0x0001
IMSG_MAX = 16384
ROLE_NUM = {'smtpd': 1, 'pop3d': 2, 'queued': 3, 'mxcache': 4,
            'outbound': 5}


def _imsg_types():
    """IMSG_* -> number, from common/proto.h, so additions do not break
    the tests."""
    with open(os.path.join(pmtest.ROOT, 'common', 'proto.h')) as f:
        text = f.read()
    body = text[text.index('enum imsg_type {'):]
    body = body[body.index('{') + 1:body.index('};')]
    body = re.sub(r'/\*.*?\*/', '', body, flags=re.S)
    names = [n.strip() for n in body.split(',') if n.strip()]
    return {n: i for i, n in enumerate(names)}


T = _imsg_types()


def u32(v):
    return struct.pack('<I', v)


def u64(v):
    return struct.pack('<Q', v)


def s(v):
    b = v.encode() if isinstance(v, str) else v
    return u32(len(b)) + b


class Peer:
    """Our end of a helper's channel to the parent."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''
        self.fds = []

    def frame(self, type_, payload=b'', flags=0, length=None, peerid=0):
        n = HDR.size + len(payload) if length is None else length
        return HDR.pack(type_, n, flags, peerid, os.getpid()) + payload

    def send(self, type_, payload=b'', fd=None, flags=None, length=None,
             peerid=0):
        if flags is None:
            flags = HASFD if fd is not None else 0
        data = self.frame(type_, payload, flags, length, peerid)
        if fd is None:
            self.sock.sendall(data)
        else:
            socket.send_fds(self.sock, [data], [fd])

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self, timeout=10):
        """(type, payload, fd or None); EOFError when the parent closed,
        TimeoutError when nothing whole came within timeout."""
        return self.recv_full(timeout)[:3]

    def recv_full(self, timeout=10):
        """(type, payload, fd or None, peerid)."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HDR.size:
                type_, n, flags, peerid, _ = HDR.unpack_from(self.buf)
                if len(self.buf) >= n:
                    payload = self.buf[HDR.size:n]
                    self.buf = self.buf[n:]
                    fd = self.fds.pop(0) if flags & HASFD else None
                    return type_, payload, fd, peerid
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise TimeoutError('no message from the parent')
            data, fds, _, _ = socket.recv_fds(self.sock, 65536, 64)
            if not data:
                raise EOFError('the parent closed the channel')
            self.buf += data
            self.fds.extend(fds)

    def expect(self, type_, timeout=10):
        """The next message of this type (others are skipped)."""
        return self.expect_fd(type_, timeout, keep_fd=False)[0]

    def expect_fd(self, type_, timeout=10, keep_fd=True):
        """(payload, fd or None) of the next message of this type."""
        deadline = time.monotonic() + timeout
        while True:
            t, payload, fd = self.recv(max(0.01, deadline - time.monotonic()))
            if t == type_:
                if fd is not None and not keep_fd:
                    os.close(fd)
                    fd = None
                return payload, fd
            if fd is not None:
                os.close(fd)

    def expect_header(self, type_, timeout=10):
        """(peerid, payload) of the next message of this type."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.01, deadline - time.monotonic())
            t, payload, fd, peerid = self.recv_full(left)
            if fd is not None:
                os.close(fd)
            if t == type_:
                return peerid, payload


class HostileCase(pmtest.TestCase):
    """start_hostile(role) -> (inst, popen, peer): a foreground pymaild
    whose `role` helper is us."""

    def start_hostile(self, role, users=(), hello=True, tries=3):
        inst = self.instance()
        for u in users:
            r = inst.adm('adduser', u, 'secret')
            self.assertEqual(r.returncode, 0, r.stderr)
        hdir = os.path.join(inst.dir, 'helpers')
        os.mkdir(hdir)
        for r in pmtest.ROLES:
            os.symlink(STUB if r == role else pmtest.HELPERS[r],
                       os.path.join(hdir, r))
        path = os.path.join(inst.dir, 'hostile.sock')
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(ls.close)
        ls.bind(path)
        ls.listen(1)
        ls.settimeout(15)
        env = inst.env()
        env['PYMAILD_TEST_HELPERDIR'] = hdir
        env['PYMAILD_TEST_HOSTILE_SOCK'] = path
        inst.env = lambda: env
        p = inst.start_foreground()
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            # Another test file running at the same time may have taken
            # a port picked for this instance: try again on new ones.
            if tries > 1 and 'Address already in use' in inst.log_tail():
                return self.start_hostile(role, users, hello, tries - 1)
            self.fail('pymaild did not start the stub in place of %s '
                      '(built without REGRESS=1?)\n%s'
                      % (role, inst.log_tail()))
        self.addCleanup(conn.close)
        conn.settimeout(15)
        _, fds, _, _ = socket.recv_fds(conn, 64, 16)
        self.assertGreaterEqual(len(fds), 1)
        chan = socket.socket(fileno=fds[0])
        self.addCleanup(chan.close)
        # The stub's channels to other helpers, in proto.h's order.
        self.peer_chans = []
        for fd in fds[1:]:
            sock = socket.socket(fileno=fd)
            self.addCleanup(sock.close)
            self.peer_chans.append(Peer(sock))
        peer = Peer(chan)
        t, _, fd = peer.recv()
        self.assertEqual(t, T['IMSG_CONF'])
        if fd is not None:
            os.close(fd)
        if hello:
            peer.send(T['IMSG_HELLO'], u32(ROLE_NUM[role]))
        inst.wait_ports()
        self.role = role
        return inst, p, peer

    def assertFailsClosed(self, inst, p, *needles, timeout=30):
        """pymaild stops everything and exits non-zero, saying why."""
        try:
            rc = p.wait(timeout)
        except Exception:
            self.fail('pymaild did not fail closed within %d s:\n%s'
                      % (timeout, inst.log_tail()))
        self.assertEqual(rc, 1, 'pymaild did not exit 1:\n%s'
                         % inst.log_tail())
        log = inst.log()
        self.assertRegex(log, r'%s.*fail closed' % self.role)
        for n in needles:
            self.assertRegex(log, n)
        # (A stand-in for smtpd holds the SMTP listener itself.)
        if self.role != 'smtpd':
            self.assertFalse(pmtest.port_open(inst.smtp_port))

    def assertRunning(self, inst, p):
        self.assertIsNone(p.poll(), 'pymaild exited:\n%s' % inst.log_tail())

    # -- what a hostile helper must never achieve ----------------------

    def parent_fds(self, p):
        """The parent's open descriptors, by number -> what they are."""
        d = '/proc/%d/fd' % p.pid
        out = {}
        for n in os.listdir(d):
            try:
                out[int(n)] = os.readlink(os.path.join(d, n))
            except OSError:
                pass
        return out

    def outside(self, inst):
        """Everything the parent could write in the instance folder
        except the Maildirs, the spool (queued's), and the files of the
        run (log, pidfile, sockets): it must not change."""
        skip = {'pymaild.log', 'foreground.err', 'pymaild.pid',
                'pymaild.sock', 'hostile.sock', 'sanitizer', 'helpers'}
        snap = pmtest.tree_snapshot(inst.dir)
        out = {}
        for rel, v in snap.items():
            parts = rel.split(os.sep)
            if parts[0] in skip:
                continue
            if parts[:2] == ['maildir', 'queue']:
                continue
            if len(parts) >= 3 and parts[0] == 'maildir' and \
                    parts[2] == 'Maildir' and len(parts) > 3:
                continue
            out[rel] = v
        return out

    def baseline(self, inst, p):
        """(descriptors, outside snapshot) to compare with later."""
        return self.parent_fds(p), self.outside(inst)

    def assertIntact(self, inst, p, peer, base):
        """Still running, answering, holding no descriptor more than at
        the baseline, and nothing outside the Maildirs changed."""
        fds, snap = base
        self.assertRunning(inst, p)
        self.assertStatusAnswers(inst, peer)
        pmtest.wait_for(lambda: len(self.parent_fds(p)) <= len(fds), 5)
        now = self.parent_fds(p)
        self.assertLessEqual(len(now), len(fds), 'descriptors leaked: %r'
                             % sorted(set(now.items()) - set(fds.items())))
        self.assertEqual(self.outside(inst), snap)
        self.assertEqual(inst.sanitizer_reports(), [])

    def assertStatusAnswers(self, inst, peer):
        """pymailadm status gets an answer (the control socket is
        served); as the helper we stand in for, we answer its question."""
        adm = subprocess.Popen([pmtest.PYMAILADM, '-f', inst.conf, 'status'],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=inst.env(), cwd='/')
        try:
            if self.role != 'mxcache':
                peerid, _ = peer.expect_header(T['IMSG_STATS'])
                peer.send(T['IMSG_STATS_REPLY'], u32(0), peerid=peerid)
            out, err = adm.communicate(timeout=pmtest.ADM_TIMEOUT)
        finally:
            if adm.poll() is None:
                adm.kill()
                adm.wait()
        self.assertEqual(adm.returncode, 0, err)
        self.assertIn('pymaild is running.', out)


# What each helper may send the parent (DESIGN.md B2); all else is hostile.
ALLOWED = {
    'smtpd': {'IMSG_HELLO', 'IMSG_STATS_REPLY', 'IMSG_AUTH',
              'IMSG_RCPT_CHECK', 'IMSG_METRICS_REPLY'},
    'pop3d': {'IMSG_HELLO', 'IMSG_STATS_REPLY', 'IMSG_AUTH',
              'IMSG_POP3_LOGIN', 'IMSG_POP3_OPEN', 'IMSG_POP3_UPDATE',
              'IMSG_POP3_RELEASE', 'IMSG_METRICS_REPLY'},
    'queued': {'IMSG_HELLO', 'IMSG_STATS_REPLY', 'IMSG_DELIVER',
               'IMSG_QUEUE_OP_REPLY', 'IMSG_METRICS_REPLY',
               'IMSG_DELIVER_CANCEL'},
    'mxcache': {'IMSG_HELLO', 'IMSG_MX_SAVE', 'IMSG_MX_REFRESH_DONE'},
    'outbound': {'IMSG_HELLO', 'IMSG_STATS_REPLY', 'IMSG_RELAY_CRED'},
}
# Every helper confirms a log reopen (test_hostile_logreopen.py).
for _role in ALLOWED:
    ALLOWED[_role].add('IMSG_LOG_REOPENED')

QID = '0123456789abcdef'


def deliver(req, user='alice', sender='s@remote.example',
            rcpt='alice@test.example', qid=QID, authres=''):
    return u32(req) + s(qid) + s(user) + s(sender) + s(rcpt) + s(authres)


def well_formed(name):
    """A payload of the right shape for a child -> parent type, and
    whether it carries a descriptor."""
    return {
        'IMSG_HELLO': (u32(1), False),
        'IMSG_STATS_REPLY': (u32(0), False),
        'IMSG_AUTH': (u32(1) + s('alice') + s('secret') + s('192.0.2.1'),
                      False),
        'IMSG_RCPT_CHECK': (u32(1) + s('alice') + u64(0) + u32(0), False),
        'IMSG_POP3_LOGIN': (u32(1) + s('alice') + s('secret') +
                            s('192.0.2.1'), False),
        'IMSG_POP3_OPEN': (u32(1) + u32(0), False),
        'IMSG_POP3_UPDATE': (u32(1) + u32(0), False),
        'IMSG_POP3_RELEASE': (u32(1), False),
        'IMSG_DELIVER': (deliver(1), True),
        'IMSG_MX_SAVE': (b'', True),
        'IMSG_QUEUE_OP_REPLY': (u32(1) + s('done\n'), False),
        'IMSG_METRICS_REPLY': (s('queue_messages 0\n'), False),
        'IMSG_MX_REFRESH_DONE': (u32(0) + u32(0) + s(''), False),
        'IMSG_RELAY_CRED': (u32(1), False),
        'IMSG_DELIVER_CANCEL': (s(QID), False),
    }.get(name, (u32(0), False))


def put_message(inst, user, body, unique):
    """A message in user's Maildir/new as a delivery leaves it; its path."""
    d = os.path.join(inst.maildir, user, 'Maildir', 'new')
    path = os.path.join(d, '%s.M1P1Q1.test,S=%d' % (unique, len(body)))
    with open(path, 'wb') as f:
        f.write(body)
    st = os.stat(d)
    os.chown(path, st.st_uid, st.st_gid)
    return path


def pop3_login(peer, sid, user, password='secret', addr='192.0.2.1'):
    """(result, count, [(size, uid)]) of an IMSG_POP3_LOGIN."""
    peer.send(T['IMSG_POP3_LOGIN'], u32(sid) + s(user) + s(password) +
              s(addr))
    p = peer.expect(T['IMSG_POP3_LOGIN_REPLY'], timeout=15)
    rsid, result, _, count = struct.unpack_from('<IIII', p)
    assert rsid == sid, (rsid, sid)
    listing = []
    while result == 0 and len(listing) < count:
        p = peer.expect(T['IMSG_POP3_LISTING'])
        rsid, n = struct.unpack_from('<II', p)
        assert rsid == sid, (rsid, sid)
        off = 8
        for _ in range(n):
            size, ulen = struct.unpack_from('<QI', p, off)
            off += 12
            listing.append((size, p[off:off + ulen].decode()))
            off += ulen
    return result, count, listing
