"""sink: a real SMTP server for the outbound tests -- the remote peer that
pymaild's queued delivers to (an MX host or the smarthost).  It is not a
mock of pymaild code: it speaks SMTP over TCP on a real socket, bound to a
given 127.0.0.x address and port, one thread a connection.

    sink = Sink('127.0.0.1')            # port 0: a free one (sink.port)
    sink.configure(rcpt='550 5.1.1 <x> sink: no such user')
    ... pymaild delivers ...
    sink.wait_transactions(1)
    t = sink.transactions[0]            # envelope + exact data bytes
    sink.stop()

What it can be told (configure(); reset() goes back to "accept all"):

- ehlo=False: EHLO gets 502, so the client must fall back to HELO;
  size=N / None: advertise SIZE N, or no SIZE; pipelining=True/False;
  greeting / hostname texts.
- replies: per stage, a reply to send instead of the normal one:
  mail=..., rcpt=..., data=... (to the DATA command), dot=... (at the end
  of DATA), each a reply text ('451 4.3.0 later'; several lines joined
  with '\\n' make a multi-line reply), or a function (session,
  transaction, argument) -> reply text or None (None: the normal reply).
  rcpt_replies={address: reply} overrides per recipient (lower-case).
- tls=ssl.SSLContext (server side; tls_context() makes one): STARTTLS
  is offered before TLS and answered 220, then the session goes on in
  TLS (the client must EHLO again; what it sent behind STARTTLS is
  dropped); tls_fail=True: 220, then bytes that are no TLS record and
  the connection closed, so the handshake fails.
- auth=(user, password): AUTH is offered (auth_mechs, default PLAIN and
  LOGIN) and required before MAIL (530 otherwise); the right credentials
  get 235, any other 535 5.7.8.  Each try is kept in the session's
  auth_tries as (mechanism, user, password, ok, tls); sess.auth and a
  transaction's auth name the user who logged in.
- misbehave=(stage, kind): at stage 'greeting', 'ehlo', 'mail', 'rcpt',
  'data' or 'dot', instead of the reply, do one of
    'garbage'   lines that are not SMTP (binary bytes, no reply code), then
                read and discard until the client leaves;
    'endless'   an endless multi-line reply ("250-..." lines, as fast as
                the client reads them) until it leaves or the sink stops;
    'longline'  one reply line of 1 MB (LONGLINE octets), then silence;
    'silent'    nothing at all: read and discard until the client leaves;
    'close'     close the connection at once.

What it records, for the test to inspect (under sink.lock, or through
the helper properties, which copy):

- sessions: Session objects (peer, helo, commands as received, protocol
  errors such as a command not ending in CRLF, transactions);
- transactions: every DATA transaction that was read to its end:
  mail_from, mail_params, rcpts (accepted), rcpt_replies, data (the
  message as sent, CRLF line ends, dot-stuffing removed here, without the
  final ".CRLF"), raw (the exact octets on the wire, terminator
  included), bare (every bare CR or LF found in the data), code/reply
  (what the sink answered at the end of DATA).

Standard library only; runs under Debian's /usr/bin/python3.
"""

import contextlib
import os
import re
import socket
import ssl
import subprocess
import threading
import time

CRLF = b'\r\n'
LONGLINE = 1 << 20              # octets in the 'longline' reply line
MAX_LINE = 2 << 20              # longest line the sink reads (then drops)
MAX_DATA = 64 << 20             # largest message the sink reads
ENDLESS_LIMIT = 60.0            # seconds an 'endless' reply goes on at most
POLL = 0.1                      # how often blocked threads look at stop

STAGES = ('greeting', 'ehlo', 'mail', 'rcpt', 'data', 'dot')
KINDS = ('garbage', 'endless', 'longline', 'silent', 'close')

GARBAGE = (b'HTTP/1.1 400 Bad Request\r\n'
           b'\x00\x01\x02\xff\xfe garbage \x1b[31m\r\n'
           b'2x0 not a reply code\r\n'
           b'hello? 220\r\n')


class _Stop(Exception):
    """The sink is stopping, or the peer left: end the session."""


class Transaction:
    def __init__(self, session):
        self.session = session
        self.mail_line = None       # the MAIL command as received (bytes)
        self.mail_from = None       # the reverse path, without <>
        self.mail_params = {}       # upper-case keyword -> value (or True)
        self.rcpts = []             # recipients the sink accepted
        self.rcpt_replies = []      # (address, reply first line) for each RCPT
        self.data = None            # unstuffed message octets
        self.raw = None             # octets on the wire after 354
        self.bare = []              # bare CR/LF found in the data
        self.code = None            # reply code at the end of DATA
        self.reply = None           # reply text at the end of DATA
        self.time = None            # time.monotonic() at the end of DATA
        self.tls = None             # its session's TLS, at MAIL
        self.auth = None            # the user logged in, at MAIL

    @property
    def accepted(self):
        return self.code is not None and 200 <= self.code < 300

    def __repr__(self):
        return '<Transaction from=<%s> to=%r %d octets code=%s>' % (
            self.mail_from, self.rcpts,
            len(self.data) if self.data is not None else -1, self.code)


class Session:
    def __init__(self, sink, peer, local):
        self.sink = sink
        self.peer = peer            # (address, port) of the client
        self.local = local          # (address, port) the client reached
        self.helo = None            # ('EHLO'|'HELO', argument)
        self.commands = []          # command lines as received (bytes)
        self.errors = []            # protocol violations seen
        self.transactions = []
        self.started = time.monotonic()
        self.ended = None           # time.monotonic() when it ended
        self.sent = 0               # octets the sink sent
        self.tls = None             # 'TLSv1.3 TLS_AES_...' once in TLS
        self.auth = None            # the user once AUTH succeeded
        self.auth_tries = []        # (mech, user, password, ok, tls)

    def __repr__(self):
        return '<Session %s:%d %d commands %d transactions%s>' % (
            self.peer[0], self.peer[1], len(self.commands),
            len(self.transactions), ' ended' if self.ended else '')


def _reply_bytes(text):
    """'250 ok' or '550-a\\n550 b' -> CRLF-terminated octets."""
    if isinstance(text, bytes):
        text = text.decode('utf-8')
    lines = text.split('\n')
    return b''.join(l.rstrip('\r').encode('utf-8') + CRLF for l in lines)


def _code_of(text):
    m = re.match(r'(\d{3})', text.split('\n')[-1])
    return int(m.group(1)) if m else None


_PATH_RE = re.compile(rb'^(MAIL FROM|RCPT TO):\s*<([^>]*)>(.*)$', re.I)


def _parse_path(line):
    """(address, params dict) of a MAIL/RCPT line, or None."""
    m = _PATH_RE.match(line.rstrip(b'\r\n'))
    if not m:
        return None
    addr = m.group(2).decode('utf-8', 'replace')
    params = {}
    for p in m.group(3).decode('utf-8', 'replace').split():
        k, eq, v = p.partition('=')
        params[k.upper()] = v if eq else True
    return addr, params


def tls_context(folder, cn='sink.test'):
    """A server SSLContext with a fresh self-signed P-256 certificate for
    cn, written into folder as sink-cert.pem / sink-key.pem (also kept
    as ctx.cert_path, the file a client may pin or a TLSA record hash)."""
    cert = os.path.join(folder, 'sink-cert.pem')
    key = os.path.join(folder, 'sink-key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
                    '-subj', '/CN=%s' % cn, '-keyout', key, '-out', cert],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.cert_path = cert
    return ctx


class _Conn:
    """A client connection: buffered line reads that notice sink.stop()."""

    def __init__(self, sock, stopping):
        self.sock = sock
        self.stopping = stopping
        self.buf = b''
        self.eof = False
        sock.settimeout(POLL)

    def _fill(self):
        if self.stopping.is_set():
            raise _Stop()
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        except OSError:
            chunk = b''
        if not chunk:
            self.eof = True
            raise _Stop()
        self.buf += chunk

    def line(self, limit=MAX_LINE):
        """One line up to and including LF (bytes).  A line longer than
        limit comes back cut at limit (the caller drops the session)."""
        while True:
            i = self.buf.find(b'\n')
            if i >= 0:
                ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return ln
            if len(self.buf) > limit:
                ln, self.buf = self.buf[:limit], b''
                return ln
            self._fill()

    def send(self, data):
        """sendall that gives up when the sink stops or the peer left."""
        view = memoryview(data)
        while view:
            if self.stopping.is_set():
                raise _Stop()
            try:
                n = self.sock.send(view)
            except socket.timeout:
                continue
            except OSError:
                raise _Stop()
            view = view[n:]

    def drain(self):
        """Read and discard until the peer leaves or the sink stops."""
        while True:
            self.buf = b''
            self._fill()


class Sink:
    """A real SMTP server on host:port (port 0: a free port)."""

    def __init__(self, host='127.0.0.1', port=0, **config):
        self.host = host
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = []
        self._socks = set()
        self.sessions = []
        self._ntx = 0
        self.reset()
        self.configure(**config)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((host, port))
        except OSError as e:
            self.listener.close()
            raise AssertionError('sink: cannot bind %s:%d: %s'
                                 % (host, port, e))
        self.listener.listen(128)
        self.listener.settimeout(POLL)
        self.port = self.listener.getsockname()[1]
        t = threading.Thread(target=self._accept_loop,
                             name='sink-accept-%s:%d' % (host, self.port),
                             daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def address(self):
        return '%s:%d' % (self.host, self.port)

    # -- behaviour -------------------------------------------------------

    def reset(self):
        """Back to a well-behaved server that accepts everything."""
        with self.lock:
            self.hostname = 'sink.test'
            self.greeting = None        # default: '220 <hostname> ESMTP sink'
            self.ehlo = True
            self.size = 10000000
            self.pipelining = True
            self.extensions = ['8BITMIME', 'ENHANCEDSTATUSCODES']
            self.replies = {}
            self.rcpt_replies = {}
            self.misbehave = None
            self.tls = None
            self.tls_fail = False
            self.auth = None
            self.auth_mechs = ('PLAIN', 'LOGIN')

    def accept_all(self):
        """Replies and misbehaviour back to normal (keeps EHLO/SIZE)."""
        with self.lock:
            self.replies = {}
            self.rcpt_replies = {}
            self.misbehave = None

    def configure(self, **kw):
        """Set behaviour: ehlo, size, pipelining, extensions, hostname,
        greeting, misbehave=(stage, kind), rcpt_replies={addr: reply},
        and stage replies mail=, rcpt=, data=, dot= (None: normal)."""
        with self.lock:
            for k, v in kw.items():
                if k in ('mail', 'rcpt', 'data', 'dot'):
                    if v is None:
                        self.replies.pop(k, None)
                    else:
                        self.replies[k] = v
                elif k == 'rcpt_replies':
                    self.rcpt_replies = {a.lower(): r
                                         for a, r in (v or {}).items()}
                elif k == 'misbehave':
                    if v is not None and (len(v) != 2 or v[0] not in STAGES
                                          or v[1] not in KINDS):
                        raise ValueError('misbehave=(stage, kind): stage in '
                                         '%r, kind in %r' % (STAGES, KINDS))
                    self.misbehave = v
                elif k in ('ehlo', 'size', 'pipelining', 'extensions',
                           'hostname', 'greeting', 'tls', 'tls_fail',
                           'auth', 'auth_mechs'):
                    setattr(self, k, v)
                else:
                    raise TypeError('sink: unknown setting %r' % k)

    # -- records -----------------------------------------------------------

    @property
    def transactions(self):
        """Every transaction read to the end of DATA, in order."""
        with self.lock:
            return [t for s in self.sessions for t in s.transactions]

    @property
    def delivered(self):
        """The transactions the sink accepted at the end of DATA."""
        return [t for t in self.transactions if t.accepted]

    def session_list(self):
        with self.lock:
            return list(self.sessions)

    @property
    def connections(self):
        with self.lock:
            return len(self.sessions)

    def errors(self):
        """Protocol violations of the client over all sessions."""
        with self.lock:
            return [e for s in self.sessions for e in s.errors]

    def _wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(0.05)

    def wait_sessions(self, n=1, timeout=15.0):
        """Until at least n connections were accepted; True/False."""
        return bool(self._wait(lambda: self.connections >= n, timeout))

    def wait_ended(self, n=1, timeout=15.0):
        """Until at least n sessions ended (the client left)."""
        return bool(self._wait(lambda: sum(
            1 for s in self.session_list() if s.ended) >= n, timeout))

    def wait_transactions(self, n=1, timeout=15.0, accepted=True):
        """Until n transactions (accepted ones only, by default) are
        recorded; returns them (a shorter list on timeout)."""
        def got():
            ts = self.delivered if accepted else self.transactions
            return ts if len(ts) >= n else None
        return self._wait(got, timeout) or (
            self.delivered if accepted else self.transactions)

    def describe(self):
        """A few lines on what happened, for failure messages."""
        out = ['sink %s: %d sessions' % (self.address, self.connections)]
        for s in self.session_list():
            out.append('  %r' % s)
            for c in s.commands[:20]:
                out.append('    > %r' % c[:120])
            for t in s.transactions:
                out.append('    %r' % t)
            for e in s.errors:
                out.append('    error: %s' % e)
        return '\n'.join(out)

    # -- server ------------------------------------------------------------

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                sock, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                if self._stopping.is_set():
                    sock.close()
                    break
                self._socks.add(sock)
                sess = Session(self, peer, sock.getsockname())
                self.sessions.append(sess)
                t = threading.Thread(target=self._serve, args=(sock, sess),
                                     name='sink-session', daemon=True)
                self._threads.append(t)
            t.start()

    def _serve(self, sock, sess):
        conn = _Conn(sock, self._stopping)
        try:
            self._session(conn, sess)
        except _Stop:
            pass
        except Exception as e:        # a sink bug: keep it visible
            with self.lock:
                sess.errors.append('sink internal error: %r' % (e,))
        finally:
            with self.lock:
                sess.ended = time.monotonic()
                self._socks.discard(sock)
                self._socks.discard(conn.sock)
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                conn.sock.close()      # the TLS socket, after STARTTLS

    def _setting(self, name):
        with self.lock:
            return getattr(self, name)

    def _say(self, conn, sess, text):
        data = _reply_bytes(text)
        conn.send(data)
        with self.lock:
            sess.sent += len(data)

    def _misbehave(self, conn, sess, stage):
        """Act out the configured misbehaviour at stage; returns only
        when there is none (else ends the session)."""
        with self.lock:
            mb = self.misbehave
        if not mb or mb[0] != stage:
            return
        kind = mb[1]
        code = b'220' if stage == 'greeting' else (
            b'354' if stage == 'data' else b'250')
        if kind == 'garbage':
            conn.send(GARBAGE)
            with self.lock:
                sess.sent += len(GARBAGE)
            conn.drain()
        elif kind == 'endless':
            chunk = b''.join(code + b'-endless reply line %d of many\r\n' % i
                             for i in range(200))
            deadline = time.monotonic() + ENDLESS_LIMIT
            while time.monotonic() < deadline:
                conn.send(chunk)
                with self.lock:
                    sess.sent += len(chunk)
            conn.drain()
        elif kind == 'longline':
            conn.send(code + b' ' + b'x' * (LONGLINE - 6) + CRLF)
            with self.lock:
                sess.sent += LONGLINE
            conn.drain()
        elif kind == 'silent':
            conn.drain()
        raise _Stop()               # 'close', and the end of the others

    def _reply_for(self, stage, sess, txn, arg, default):
        with self.lock:
            r = self.replies.get(stage)
            if stage == 'rcpt' and arg is not None:
                r = self.rcpt_replies.get(arg.lower(), r)
        if callable(r):
            r = r(sess, txn, arg)
        return default if r is None else r

    def _check_line(self, sess, line, what):
        if not line.endswith(CRLF):
            sess.errors.append('%s not terminated by CRLF: %r'
                               % (what, line[:100]))
        elif b'\r' in line[:-2]:
            sess.errors.append('bare CR in %s: %r' % (what, line[:100]))

    def _ehlo_lines(self, sess=None):
        with self.lock:
            ext = []
            if self.tls is not None and sess is not None and not sess.tls:
                ext.append('STARTTLS')
            if self.pipelining:
                ext.append('PIPELINING')
            if self.size is not None:
                ext.append('SIZE %d' % self.size if self.size else 'SIZE')
            ext.extend(self.extensions)
            if self.auth is not None and self.auth_mechs:
                ext.append('AUTH ' + ' '.join(self.auth_mechs))
            lines = [self.hostname + ' greets you'] + ext
        return '\n'.join('250%s%s' % ('-' if i < len(lines) - 1 else ' ', l)
                         for i, l in enumerate(lines))

    def _session(self, conn, sess):
        self._misbehave(conn, sess, 'greeting')
        with self.lock:
            greet = self.greeting or '220 %s ESMTP sink' % self.hostname
        self._say(conn, sess, greet)
        txn = None
        while True:
            line = conn.line(limit=4096)
            with self.lock:
                sess.commands.append(line)
                self._check_line(sess, line, 'command')
            if len(line) > 512 + 2:
                self._say(conn, sess, '500 5.5.2 line too long')
                continue
            text = line.rstrip(b'\r\n')
            verb = text.split(b' ', 1)[0].upper().decode('ascii', 'replace')
            arg = text[len(verb) + 1:].decode('utf-8', 'replace')
            if verb == 'EHLO':
                self._misbehave(conn, sess, 'ehlo')
                if not self._setting('ehlo'):
                    self._say(conn, sess, '502 5.5.1 EHLO not supported here')
                    continue
                sess.helo = ('EHLO', arg)
                txn = None
                self._say(conn, sess, self._ehlo_lines(sess))
            elif verb == 'HELO':
                sess.helo = ('HELO', arg)
                txn = None
                self._say(conn, sess, '250 %s' % self._setting('hostname'))
            elif verb == 'MAIL':
                p = _parse_path(text)
                if sess.helo is None:
                    self._say(conn, sess, '503 5.5.1 say hello first')
                    continue
                if txn is not None:
                    self._say(conn, sess, '503 5.5.1 nested MAIL')
                    continue
                if p is None:
                    self._say(conn, sess, '501 5.5.4 syntax: MAIL FROM:<a>')
                    continue
                if self._setting('auth') is not None and sess.auth is None:
                    self._say(conn, sess, '530 5.7.0 sink: authentication '
                              'required')
                    continue
                t = Transaction(sess)
                t.mail_line = line
                t.tls = sess.tls
                t.auth = sess.auth
                t.mail_from, t.mail_params = p
                self._misbehave(conn, sess, 'mail')
                r = self._reply_for('mail', sess, t, t.mail_from,
                                    '250 2.1.0 Ok')
                if _code_of(r) == 250:
                    txn = t
                self._say(conn, sess, r)
            elif verb == 'RCPT':
                p = _parse_path(text)
                if txn is None:
                    self._say(conn, sess, '503 5.5.1 need MAIL first')
                    continue
                if p is None:
                    self._say(conn, sess, '501 5.5.4 syntax: RCPT TO:<a>')
                    continue
                self._misbehave(conn, sess, 'rcpt')
                r = self._reply_for('rcpt', sess, txn, p[0], '250 2.1.5 Ok')
                txn.rcpt_replies.append((p[0], r.split('\n')[-1]))
                if _code_of(r) // 100 == 2:
                    txn.rcpts.append(p[0])
                self._say(conn, sess, r)
            elif verb == 'DATA':
                if txn is None:
                    self._say(conn, sess, '503 5.5.1 need MAIL first')
                    continue
                if not txn.rcpts:
                    self._say(conn, sess, '554 5.5.1 no valid recipients')
                    continue
                self._misbehave(conn, sess, 'data')
                r = self._reply_for('data', sess, txn, None,
                                    '354 End data with <CR><LF>.<CR><LF>')
                self._say(conn, sess, r)
                if _code_of(r) != 354:
                    txn = None
                    continue
                self._read_data(conn, sess, txn)
                with self.lock:
                    self._ntx += 1
                    n = self._ntx
                self._misbehave(conn, sess, 'dot')
                r = self._reply_for('dot', sess, txn, None,
                                    '250 2.0.0 Ok: queued as SINK%d' % n)
                with self.lock:
                    txn.code = _code_of(r)
                    txn.reply = r
                    txn.time = time.monotonic()
                    sess.transactions.append(txn)
                txn = None
                self._say(conn, sess, r)
            elif verb == 'STARTTLS' and self._setting('tls') is not None \
                    and not sess.tls:
                self._starttls(conn, sess)
                txn = None
            elif verb == 'AUTH' and self._setting('auth') is not None \
                    and sess.auth is None:
                self._auth(conn, sess, arg)
            elif verb == 'RSET':
                txn = None
                self._say(conn, sess, '250 2.0.0 Ok')
            elif verb == 'NOOP':
                self._say(conn, sess, '250 2.0.0 Ok')
            elif verb == 'QUIT':
                self._say(conn, sess, '221 2.0.0 Bye')
                raise _Stop()
            else:
                self._say(conn, sess, '500 5.5.1 command unrecognized')

    def _starttls(self, conn, sess):
        self._say(conn, sess, '220 2.0.0 Ready to start TLS')
        if self._setting('tls_fail'):
            conn.send(b'this is no TLS record\r\n' * 4)
            raise _Stop()
        conn.buf = b''              # sent in plaintext: never a command
        conn.sock.settimeout(10)
        try:
            conn.sock = self._setting('tls').wrap_socket(conn.sock,
                                                         server_side=True)
        except (OSError, ssl.SSLError) as e:
            with self.lock:
                sess.errors.append('TLS handshake: %s' % e)
            raise _Stop()
        conn.sock.settimeout(POLL)
        with self.lock:
            self._socks.add(conn.sock)
            sess.tls = '%s %s' % (conn.sock.version(),
                                  conn.sock.cipher()[0])
            sess.helo = None
            sess.auth = None

    def _auth_line(self, conn, sess, prompt):
        self._say(conn, sess, '334 ' + prompt)
        line = conn.line(limit=4096)
        with self.lock:
            sess.commands.append(line)
        return line.rstrip(b'\r\n')

    @staticmethod
    def _b64(data):
        import base64
        import binascii
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None

    def _auth(self, conn, sess, arg):
        """AUTH PLAIN (initial response or not) and AUTH LOGIN."""
        mech, _, initial = arg.partition(' ')
        mech = mech.upper()
        if mech not in [m.upper() for m in self._setting('auth_mechs')]:
            self._say(conn, sess, '504 5.5.4 sink: mechanism not offered')
            return
        user = password = None
        if mech == 'PLAIN':
            raw = self._b64(initial.encode() if initial else
                            self._auth_line(conn, sess, ''))
            parts = raw.split(b'\0') if raw is not None else []
            if len(parts) == 3:
                user, password = parts[1], parts[2]
        else:
            u = self._b64(self._auth_line(conn, sess, 'VXNlcm5hbWU6'))
            p = self._b64(self._auth_line(conn, sess, 'UGFzc3dvcmQ6'))
            user, password = u, p
        want_user, want_password = self._setting('auth')
        ok = (user == want_user.encode() and
              password == want_password.encode())
        with self.lock:
            sess.auth_tries.append((mech, user, password, ok, sess.tls))
            if ok:
                sess.auth = want_user
        self._say(conn, sess, '235 2.7.0 sink: authenticated' if ok else
                  '535 5.7.8 sink: authentication credentials invalid')

    def _read_data(self, conn, sess, txn):
        raw, out, bare, total = [], [], [], 0
        while True:
            ln = conn.line()
            raw.append(ln)
            total += len(ln)
            if ln == b'.\r\n':
                break
            if total > MAX_DATA:
                sess.errors.append('message over %d octets' % MAX_DATA)
                raise _Stop()
            if not ln.endswith(b'\n'):
                bare.append('line over %d octets' % MAX_LINE)
            elif not ln.endswith(CRLF):
                bare.append('bare LF at data offset %d: %r'
                            % (total - 1, ln[-60:]))
            body = (ln[:-2] if ln.endswith(CRLF) else
                    ln[:-1] if ln.endswith(b'\n') else ln)
            if b'\r' in body:
                bare.append('bare CR in data line %r' % ln[:60])
            out.append(ln[1:] if ln.startswith(b'.') else ln)
        with self.lock:
            txn.raw = b''.join(raw)
            txn.data = b''.join(out)
            txn.bare = bare
            if bare:
                sess.errors.extend(bare)

    # -- stop ----------------------------------------------------------------

    def stop(self, timeout=5.0):
        """Stop listening, end every session, join the threads."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError('sink %s: threads still running after stop: '
                                 '%r' % (self.address, alive))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return '<Sink %s>' % self.address
