"""smtputil: what the SMTP-in tests share, on top of regress/lib/pmtest.py.

- SmtpCase: a pmtest.TestCase whose smtp_instance() makes a private pymaild
  with the SMTP test configuration (localdomain test.example, users alice
  and bob, smtpmaxmailsize 100000), started and listening.
- Client: a raw-socket SMTP client that sends exactly the bytes it is given
  (smtplib normalises line ends; the smuggling and bare-CR/LF tests must
  not) and parses replies strictly (CRLF, 3-digit code, continuation).
- Maildir helpers: wait for deliveries, prove that nothing else arrived
  (a marker message is sent after the thing under test; once the marker is
  in, anything queued before it would have been delivered too), check a
  stored message against the bytes that were sent.
- Daemon process helpers for the kill -9 tests: the daemon's PIDs are the
  pidfile's PID and its descendants (/proc/*/stat ppid); only those are
  signalled, by PID.

Standard library only; Debian's /usr/bin/python3.
"""

import base64
import contextlib
import email.utils
import os
import re
import select
import shutil
import signal
import smtplib
import socket
import time
import uuid

from lib import pmtest
from lib.pmtest import pid_alive, proc_starttime, wait_for   # noqa: F401

DOMAIN = 'test.example'
HOSTNAME = 'mail.test.example'          # pmtest's default serverhostname
USERS = {'alice': 'alicepw', 'bob': 'bobpw'}
MAXSIZE = 100000                        # smtpmaxmailsize in these tests
HELO = 'client.example'

# Seconds.  Generous (SANITIZE=1 builds are slow), but a daemon that does
# not speak at all fails each test after GREETING_TIMEOUT, not later.
GREETING_TIMEOUT = float(os.environ.get('PYMAILD_TEST_GREETING', '5'))
REPLY_TIMEOUT = 10.0
DELIVERY_TIMEOUT = 15.0
SETTLE = 0.5            # quiet time that proves no further file arrives

QUEUED_RE = re.compile(r'^2\.0\.0 Ok: queued as (\S+)$')
CRLF = b'\r\n'


# ----------------------------------------------------------------------
# Raw SMTP client

class Reply:
    """One SMTP reply: code (int), lines (texts after 'NNN-'/'NNN '),
    raw (bytes as received)."""

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines
        self.raw = raw

    @property
    def text(self):
        return '\n'.join(self.lines)

    @property
    def first(self):
        """The first line as sent, e.g. '250 2.1.0 Ok'."""
        return self.raw.split(b'\r\n', 1)[0].decode('utf-8', 'replace')

    @property
    def enh(self):
        """The enhanced status code of the last line, or None."""
        m = re.match(r'([245]\.\d{1,3}\.\d{1,3})(?: |$)', self.lines[-1])
        return m.group(1) if m else None

    def __repr__(self):
        return '<Reply %r>' % self.raw.decode('utf-8', 'replace')


class ProtocolError(AssertionError):
    pass


class Client:
    """A raw SMTP session.  Every reply line must end in CRLF."""

    def __init__(self, port, host='127.0.0.1', source=None,
                 timeout=REPLY_TIMEOUT, greeting=True):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b''
        self.eof = False
        self.greeting = None
        if greeting:
            self.greeting = self.reply(timeout=GREETING_TIMEOUT,
                                       what='the greeting')

    # -- low level -----------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def line(self, s):
        """Send s plus CRLF (s: str or bytes)."""
        if isinstance(s, str):
            s = s.encode('utf-8')
        self.send(s + CRLF)

    def _fill(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProtocolError('no complete reply to %s within %.1f s '
                                '(have %r)' % (what, self.timeout, self.buf))
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise ProtocolError('no complete reply to %s within %.1f s '
                                '(have %r)' % (what, self.timeout,
                                               self.buf)) from None
        except ConnectionResetError:
            chunk = b''
        if not chunk:
            self.eof = True
            raise ProtocolError('connection closed by the server while '
                                'waiting for %s (have %r)'
                                % (what, self.buf))
        self.buf += chunk

    def readline(self, timeout=None, what='a reply'):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b'\n' not in self.buf:
            self._fill(deadline, what)
        i = self.buf.index(b'\n') + 1
        ln, self.buf = self.buf[:i], self.buf[i:]
        if not ln.endswith(b'\r\n') or b'\r' in ln[:-2]:
            raise ProtocolError('reply line not terminated by CRLF: %r' % ln)
        return ln

    def reply(self, timeout=None, what='a reply'):
        """Read one (possibly multi-line) reply."""
        raw, lines, code = b'', [], None
        while True:
            ln = self.readline(timeout, what)
            raw += ln
            s = ln[:-2].decode('utf-8', 'replace')
            m = re.match(r'^([2-5][0-9][0-9])([ -]|$)(.*)$', s)
            if not m:
                raise ProtocolError('malformed reply line %r' % ln)
            if code is None:
                code = m.group(1)
            elif m.group(1) != code:
                raise ProtocolError('reply code changed inside a multi-line '
                                    'reply: %r' % raw)
            lines.append(m.group(3))
            if m.group(2) != '-':
                return Reply(int(code), lines, raw)

    def cmd(self, s, timeout=None):
        self.line(s)
        return self.reply(timeout, what=repr(s)[:80])

    def pending(self, wait=0.3):
        """Bytes the server sent (beyond what was read) within wait
        seconds; b'' if none.  Does not raise at EOF."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                break
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                chunk = b''
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
        out, self.buf = self.buf, b''
        return out

    def closed_by_server(self, timeout=5.0):
        """True when the server closes the connection within timeout
        (anything it sends before is kept in self.trailing)."""
        deadline = time.monotonic() + timeout
        self.trailing = b''
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b''
            if not chunk:
                self.eof = True
            self.trailing += chunk
        return True

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- SMTP level ----------------------------------------------------

    def expect(self, s, code, enh=None, msg=None):
        """Send command s; assert the reply code (and enhanced code)."""
        r = self.cmd(s)
        check_reply(r, code, enh, '%s -> ' % (msg or repr(s)[:80]))
        return r

    def ehlo(self, name=HELO):
        return self.expect('EHLO ' + name, 250)

    def data(self, body, stuff=True):
        """DATA, then body (bytes, CRLF line ends, dot-stuffed here unless
        stuff=False), then the terminator; returns the final reply."""
        self.expect('DATA', 354)
        if stuff:
            body = dot_stuff(body)
        if not body.endswith(CRLF):
            body += CRLF
        self.send(body + b'.\r\n')
        return self.reply(what='the end of DATA')

    def transaction(self, sender, rcpts, body, stuff=True, mail_params=''):
        """MAIL, RCPT each (all must get 250), DATA; returns the final
        reply (not checked)."""
        self.expect('MAIL FROM:<%s>%s' % (sender, mail_params), 250)
        for r in rcpts:
            self.expect('RCPT TO:<%s>' % r, 250)
        return self.data(body, stuff)

    def auth_plain(self, user, password):
        tok = b64(b'\0' + user.encode() + b'\0' + password.encode())
        return self.cmd('AUTH PLAIN ' + tok)


def check_reply(r, code, enh=None, prefix=''):
    if r.code != code:
        raise AssertionError('%swant %d%s, got %r'
                             % (prefix, code, ' ' + enh if enh else '',
                                r.raw.decode('utf-8', 'replace')))
    if enh is not None and r.enh != enh:
        raise AssertionError('%swant enhanced code %s, got %r'
                             % (prefix, enh, r.raw.decode('utf-8',
                                                         'replace')))


def b64(b):
    if isinstance(b, str):
        b = b.encode('utf-8')
    return base64.b64encode(b).decode('ascii')


def dot_stuff(body):
    """Double a leading '.' of every CRLF-delimited line (only CRLF counts
    as a line end, as for the server)."""
    out = []
    for ln in body.split(CRLF):
        out.append(b'.' + ln if ln.startswith(b'.') else ln)
    return CRLF.join(out)


def queue_id(text):
    """The ID from a '2.0.0 Ok: queued as ID' reply text, or None."""
    m = QUEUED_RE.match(text.strip())
    return m.group(1) if m else None


def make_message(subject, body=b'hello\r\n', extra_headers=(),
                 mid=None, sender='carol@sender.example',
                 to='alice@test.example'):
    """A small RFC 5322 message (bytes, CRLF line ends)."""
    mid = mid or '<%s@test.invalid>' % uuid.uuid4().hex
    hdrs = ['From: <%s>' % sender, 'To: <%s>' % to,
            'Subject: %s' % subject, 'Message-ID: %s' % mid,
            'Date: %s' % email.utils.formatdate()]
    hdrs.extend(extra_headers)
    if isinstance(body, str):
        body = body.encode('utf-8')
    return ('\r\n'.join(hdrs)).encode('utf-8') + b'\r\n\r\n' + body


def lf(b):
    return b.replace(b'\r\n', b'\n')


# ----------------------------------------------------------------------
# smtplib (a client we did not write)

def smtp_session(inst, helo=HELO, source=None, timeout=REPLY_TIMEOUT):
    kw = {}
    if source:
        kw['source_address'] = (source, 0)
    s = smtplib.SMTP(timeout=timeout, local_hostname=helo, **kw)
    # connect() with a short greeting timeout, then the normal one.
    s.timeout = GREETING_TIMEOUT
    try:
        code, msg = s.connect('127.0.0.1', inst.smtp_port)
    except (socket.timeout, smtplib.SMTPServerDisconnected) as e:
        s.close()
        raise AssertionError('no SMTP greeting from pymaild on port %d '
                             'within %.0f s (%s)'
                             % (inst.smtp_port, GREETING_TIMEOUT, e))
    s.timeout = timeout
    if s.sock:
        s.sock.settimeout(timeout)
    if code != 220:
        s.close()
        raise AssertionError('greeting %d %r' % (code, msg))
    return s


def smtplib_send(s, sender, rcpts, msg, mail_options=()):
    """MAIL/RCPT/DATA through smtplib, asserting 250s; returns the queue
    id from '250 2.0.0 Ok: queued as ID'."""
    code, text = s.mail(sender, list(mail_options))
    if code != 250:
        raise AssertionError('MAIL FROM:<%s> -> %d %r' % (sender, code,
                                                           text))
    for r in rcpts:
        code, text = s.rcpt(r)
        if code != 250:
            raise AssertionError('RCPT TO:<%s> -> %d %r' % (r, code, text))
    code, text = s.data(msg)
    text = text.decode('utf-8', 'replace')
    if code != 250:
        raise AssertionError('end of DATA -> %d %r' % (code, text))
    qid = queue_id(text)
    if not qid:
        raise AssertionError('end of DATA: want "250 2.0.0 Ok: queued as '
                             '<ID>", got %d %r' % (code, text))
    return qid


# ----------------------------------------------------------------------
# Maildir

def all_mailbox_files(inst, subdirs=('new', 'cur', 'tmp')):
    """{user: [paths]} for every user folder under MAILDIR."""
    out = {}
    try:
        names = os.listdir(inst.maildir)
    except FileNotFoundError:
        return out
    for n in names:
        if os.path.isdir(os.path.join(inst.maildir, n, 'Maildir')):
            out[n] = inst.maildir_files(n, subdirs)
    return out


read = pmtest.read_file


def wait_mail(inst, user, n, timeout=DELIVERY_TIMEOUT, settle=SETTLE,
              extra=''):
    """Wait until user's Maildir (new+cur) holds n messages and stays at n
    for `settle` seconds; returns [(path, bytes)].  AssertionError with
    what is there otherwise (and `extra`: what else would explain it)."""
    def count():
        return len(inst.maildir_files(user))
    wait_for(lambda: count() >= n, timeout)
    if count() >= n and settle:
        time.sleep(settle)
    files = inst.maildir_files(user)
    if len(files) != n:
        raise AssertionError(
            '%s\'s Maildir: want %d message(s), found %d after %.0f s%s\n'
            'subjects: %r\nlog (tail):\n%s'
            % (user, n, len(files), timeout,
               ' (more than expected)' if len(files) > n else '',
               [subject_of(read(p)) for p in files], inst.log_tail(25))
            + ('\n' + extra if extra else ''))
    return [(p, read(p)) for p in files]


def subject_of(data):
    m = re.search(rb'^Subject: ?(.*)$', data, re.M)
    return m.group(1).decode('utf-8', 'replace') if m else None


def headers_of(data):
    """Unfolded header fields [(name, value)] of a stored message (LF)."""
    head = data.split(b'\n\n', 1)[0].decode('utf-8', 'replace')
    out = []
    for ln in head.split('\n'):
        if ln[:1] in (' ', '\t') and out:
            out[-1] = (out[-1][0], out[-1][1] + ' ' + ln.strip())
        elif ':' in ln:
            k, _, v = ln.partition(':')
            out.append((k, v.strip()))
        else:
            out.append(('', ln))
    return out


def header(data, name):
    """Every value of header `name` (case-insensitive), unfolded."""
    return [v for k, v in headers_of(data) if k.lower() == name.lower()]


def added_prefix(stored, sent):
    """The stored message must be header lines the server added followed
    by exactly the sent message with CRLF turned into LF.  Returns the
    added prefix (bytes)."""
    want = lf(sent)
    if not stored.endswith(want):
        # Show where they differ, not 100 KB of bytes.
        i = 0
        tail = stored[-len(want):] if len(stored) >= len(want) else stored
        while i < min(len(tail), len(want)) and tail[i] == want[i]:
            i += 1
        raise AssertionError(
            'stored message does not end with the sent message (CRLF->LF, '
            'dot-unstuffed): first difference at offset %d of the sent part: '
            'stored %r vs sent %r (sizes %d / %d)'
            % (i, tail[max(0, i - 20):i + 40], want[max(0, i - 20):i + 40],
               len(stored), len(want)))
    prefix = stored[:len(stored) - len(want)]
    for ln in prefix.split(b'\n')[:-1]:
        if not re.match(rb'^([!-9;-~]+:|[ \t])', ln):
            raise AssertionError('added prefix has a non-header line %r in '
                                 '%r' % (ln, prefix))
    if prefix and not prefix.endswith(b'\n'):
        raise AssertionError('added prefix does not end with LF: %r'
                             % prefix)
    return prefix


def maildir_size_ok(path):
    """(S= value or None, real size)."""
    m = re.search(r'(?:^|[,.])S=(\d+)(?=[,:.]|$)', os.path.basename(path))
    return (int(m.group(1)) if m else None), os.path.getsize(path)


ROUTINE_LOG = re.compile(r'smtp-in session=|committed \d+ messages|'
                         r'result=(delivered|done|queued)')


def log_events(inst, n=40):
    """The last n log lines that are not routine per-message lines (for
    failure messages: why did the daemon stop?)."""
    lines = [l for l in inst.log().splitlines()
             if not ROUTINE_LOG.search(l)]
    return '\n'.join(lines[-n:])


def tmp_files(inst):
    return {u: fs for u, fs in all_mailbox_files(inst, ('tmp',)).items()
            if fs}


# ----------------------------------------------------------------------
# Daemon processes

def daemon_pids(inst):
    """{pid: starttime} of the daemon: the pidfile's PID (when it is a
    live pymaild) and every descendant of it (found by ppid in /proc)."""
    p = inst.pid()
    out = {}
    if not p or not pid_alive(p):
        return out
    if p not in inst.procs and 'pymaild' not in pmtest.proc_cmdline(p):
        return out
    for q in [p] + pmtest.descendants(p):
        st = proc_starttime(q)
        if st is not None:
            out[q] = st
            inst._remember(q)
    return out


def kill9_group(pids):
    """SIGSTOP every process first (so they are frozen at the same
    instant, as a kill -9 of the process group would), then SIGKILL them;
    waits until all are gone."""
    for p, st in pids.items():
        if pid_alive(p, st):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGSTOP)
    for p, st in pids.items():
        if pid_alive(p, st):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
    ok = wait_for(lambda: not any(pid_alive(p, st)
                                  for p, st in pids.items()), 10)
    pmtest.reap_zombies()
    if not ok:
        raise AssertionError('daemon processes survive SIGKILL: %r'
                             % [p for p, st in pids.items()
                                if pid_alive(p, st)])


def all_gone(pids):
    return not any(pid_alive(p, st) for p, st in pids.items())


# ----------------------------------------------------------------------
# Test case base

class SmtpCase(pmtest.TestCase):
    """Each test makes its own instance(s) with smtp_instance() (a start
    costs a few tens of ms)."""

    def block_delivery(self, inst, user='alice'):
        """Make USER/Maildir/tmp a file: deliveries fail temporarily and
        the messages stay queued. Returns a function that undoes it."""
        tmp = os.path.join(inst.maildir, user, 'Maildir', 'tmp')
        st = os.stat(tmp)
        shutil.rmtree(tmp)
        with open(tmp, 'w') as f:
            f.write('not a folder\n')

        def undo():
            os.unlink(tmp)
            os.mkdir(tmp, 0o700)
            os.chown(tmp, st.st_uid, st.st_gid)
        return undo

    def smtp_instance(self, users=None, start=True, **cfg):
        conf = {'smtpmaxmailsize': MAXSIZE}
        conf.update(cfg)
        inst = self.instance(**conf)
        for u, pw in (USERS if users is None else users).items():
            self.adm_ok(inst, 'adduser', u, pw)
        if start:
            inst.start()
            inst.wait_port()
        return inst

    def adm_ok(self, inst, *args):
        r = inst.adm(*args)
        if r.returncode != 0:
            raise AssertionError('pymailadm %s: exit %d\nstdout: %r\n'
                                 'stderr: %r' % (' '.join(args),
                                                 r.returncode, r.stdout,
                                                 r.stderr))
        return r

    def client(self, inst, **kw):
        c = Client(inst.smtp_port, **kw)
        self.addCleanup(c.close)
        return c

    def session(self, inst, helo=HELO, **kw):
        """A raw Client that has said EHLO."""
        c = self.client(inst, **kw)
        c.ehlo(helo)
        return c

    def smtp(self, inst, **kw):
        s = smtp_session(inst, **kw)

        def close():
            with contextlib.suppress(Exception):
                s.close()
        self.addCleanup(close)
        return s

    def send_mail(self, inst, subject, rcpts=('alice@test.example',),
                  sender='carol@sender.example', body=b'hello\r\n'):
        """One message through smtplib (EHLO, MAIL, RCPT, DATA, QUIT);
        returns (queue id, message bytes)."""
        s = self.smtp(inst)
        s.ehlo()
        msg = make_message(subject, body, sender=sender, to=rcpts[0])
        qid = smtplib_send(s, sender, rcpts, msg)
        with contextlib.suppress(Exception):
            s.quit()
        return qid, msg

    def marker(self, inst, user='alice', already=0):
        """Send a marker message to user and wait until it (and nothing
        else) is there: user's Maildir must then hold already+1 files.
        Proves that whatever the test did before was not delivered (a
        message queued earlier would have arrived by now)."""
        subj = 'marker %s' % uuid.uuid4().hex
        self.send_mail(inst, subj, rcpts=('%s@%s' % (user, DOMAIN),))
        files = wait_mail(inst, user, already + 1)
        subjects = [subject_of(b) for _, b in files]
        self.assertIn(subj, subjects)
        return files

    def assert_only(self, inst, want):
        """want: {user: [subject, ...]}; every Maildir (new+cur) holds
        exactly those, and no Maildir/tmp holds anything."""
        have = {u: sorted(subject_of(read(p)) or '' for p in fs)
                for u, fs in all_mailbox_files(inst, ('new', 'cur')).items()}
        for u in list(have):
            if not have[u] and u not in want:
                del have[u]
        self.assertEqual(have, {u: sorted(v) for u, v in want.items()},
                         'Maildir contents')
        self.assertEqual(tmp_files(inst), {}, 'files left in Maildir/tmp')

    def assert_healthy(self, inst, within=2.0):
        """The daemon still serves a normal session promptly."""
        t0 = time.monotonic()
        c = Client(inst.smtp_port)
        try:
            c.ehlo()
            c.expect('NOOP', 250)
            c.expect('QUIT', 221)
        finally:
            c.close()
        took = time.monotonic() - t0
        self.assertLess(took, within, 'a normal session took %.2f s' % took)
        self.assertTrue(inst.running(), 'the daemon is not running\n%s'
                        % inst.log_tail())
