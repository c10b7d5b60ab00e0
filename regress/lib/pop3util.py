"""pop3util: what the POP3 tests share, on top of regress/lib/pmtest.py.

- Pop3Case: a pmtest.TestCase with a private pymaild started per test,
  users alice and bob, and helpers to put messages straight into a
  Maildir (LF line ends, named the way the delivery side names them:
  <unique>,S=<bytes>,W=<octets with CRLF>), owned by the Maildir's owner.
- Raw: a socket client that sends exactly the bytes it is given and
  returns exactly what came back (poplib hides line ends and dots).
- pop_form(): what RETR must send for a stored message (LF -> CRLF, an
  unfinished last line closed), before dot-stuffing.

Standard library only; Debian's /usr/bin/python3.
"""

import os
import poplib
import re
import socket
import time

from lib import pmtest
from lib.pmtest import wait_for                              # noqa: F401

USERS = {'alice': 'alicepw', 'bob': 'bobpw'}
REPLY_TIMEOUT = 20.0        # SANITIZE=1 builds are slow
CRLF = b'\r\n'
GREETING = b'+OK pymaild ready\r\n'
CAPA = [b'USER', b'TOP', b'UIDL', b'RESP-CODES', b'PIPELINING',
        b'AUTH-RESP-CODE', b'SASL PLAIN', b'IMPLEMENTATION pymaild']
UID_RE = re.compile(rb'^[\x21-\x7e]{1,70}$')

_counter = [0]


def unique_name(host='mail.test.example'):
    """A Maildir unique part, later than every one made before."""
    _counter[0] += 1
    n = _counter[0]
    return '%d.M%06dP%dQ%d.%s' % (1764000000 + n, n % 1000000,
                                  os.getpid(), n, host)


def pop_form(content):
    """The octets RETR sends for a stored message, before dot-stuffing."""
    out = re.sub(rb'(?<!\r)\n', b'\r\n', content)
    if content and not content.endswith(b'\n'):
        out += CRLF
    return out


def unstuff(wire):
    """A multi-line answer's body (terminator removed) without the dots
    the server added."""
    if not wire:
        return b''
    assert wire.endswith(CRLF), wire[-20:]
    lines = wire[:-2].split(CRLF)
    return CRLF.join(l[1:] if l.startswith(b'.') else l
                     for l in lines) + CRLF


class POP3From(poplib.POP3):
    """poplib from a chosen loopback source address (127.0.0.0/8), so a
    test has its own per-address counters."""

    def __init__(self, host, port, src, timeout):
        self.src = src
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.src, 0))


class Raw:
    """A POP3 connection on a plain socket."""

    def __init__(self, port, src='127.0.0.1', timeout=REPLY_TIMEOUT,
                 greet=True, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect(('127.0.0.1', port))
        self.f = self.s.makefile('rb')
        if greet:
            self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        l = self.f.readline()
        if not l:
            raise EOFError('connection closed')
        return l

    def cmd(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.send(text + CRLF)
        return self.line()

    def ok(self, text):
        l = self.cmd(text)
        if not l.startswith(b'+OK'):
            raise AssertionError('%r: want +OK, got %r' % (text, l))
        return l

    def multi(self):
        """The body of a multi-line answer, as sent (dots included)."""
        out = []
        while True:
            l = self.line()
            if l == b'.\r\n':
                return b''.join(out)
            out.append(l)

    def retr(self, n, top=None):
        """(first line, body as the server meant it)."""
        first = self.cmd('RETR %d' % n if top is None else
                         'TOP %d %d' % (n, top))
        if not first.startswith(b'+OK'):
            return first, None
        return first, unstuff(self.multi())

    def login(self, user='alice', password=None):
        self.ok('USER ' + user)
        return self.cmd('PASS ' + (password or USERS[user]))

    def eof(self, timeout=REPLY_TIMEOUT):
        """Read until the server closes; the bytes it still sent."""
        self.s.settimeout(timeout)
        data = b''
        try:
            while True:
                c = self.f.read1(65536)
                if not c:
                    return data
                data += c
        except (ConnectionResetError, socket.timeout):
            return data

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


class Pop3Case(pmtest.TestCase):
    """A private pymaild per test, started, with USERS in it."""

    overrides = {}

    def setUp(self):
        super().setUp()
        self.inst = self.instance(**self.overrides)
        for u, p in USERS.items():
            r = self.inst.adm('adduser', u, p)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.inst.start()
        self.port = self.inst.pop3_port
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def mdir(self, user='alice', sub=''):
        return os.path.join(self.inst.maildir, user, 'Maildir', sub)

    def put(self, body, user='alice', sub='new', name=None, sizes=True):
        """Store a message file; returns its unique part."""
        uniq = name or unique_name()
        fname = uniq
        if sizes:
            fname += ',S=%d,W=%d' % (len(body), len(pop_form(body)))
        if sub == 'cur' and ':' not in fname:
            fname += ':2,'
        path = os.path.join(self.mdir(user, sub), fname)
        tmp = os.path.join(self.mdir(user, 'tmp'), fname.replace(':', '_'))
        with open(tmp, 'wb') as f:
            f.write(body)
        st = os.stat(self.mdir(user))
        os.chown(tmp, st.st_uid, st.st_gid)
        os.rename(tmp, path)
        return uniq

    def files(self, user='alice', sub=None):
        subs = (sub,) if sub else ('new', 'cur')
        out = []
        for s in subs:
            out += [s + '/' + n for n in sorted(os.listdir(self.mdir(user, s)))]
        return out

    def raw(self, **kw):
        c = Raw(self.port, **kw)
        self.clients.append(c)
        return c

    def pop(self, user='alice', password=None, src='127.0.0.1'):
        """poplib, logged in."""
        c = POP3From('127.0.0.1', self.port, src, REPLY_TIMEOUT)
        self.clients.append(_Closer(c))
        c.user(user)
        c.pass_(password or USERS[user])
        return c

    def pop3d_pid(self):
        return self.inst.wait_roles().get('pop3d')

    def assertAlive(self):
        """The daemon still serves: a whole session works."""
        c = self.raw()
        self.assertEqual(c.greeting, GREETING)
        self.assertTrue(c.ok('CAPA'))
        c.multi()
        c.ok('QUIT')


class _Closer:
    def __init__(self, p):
        self.p = p

    def close(self):
        try:
            self.p.close()
        except OSError:
            pass


def wait_login(port, user='alice', timeout=10):
    """The mailbox can be locked again (the last session let it go)."""
    def ok():
        c = Raw(port)
        try:
            if c.login(user).startswith(b'+OK'):
                c.ok('QUIT')
                return True
            return False
        finally:
            c.close()
    return wait_for(ok, timeout)


def rss_kib(pid):
    s = pmtest.proc_status(pid).get('VmRSS', '0 kB')
    return int(s.split()[0])


def timed(fn, *a):
    t = time.monotonic()
    r = fn(*a)
    return r, time.monotonic() - t
