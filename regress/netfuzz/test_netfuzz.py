"""A bounded random client against smtpd: commands from the grammar with
random arguments, garbage, pipelined bursts, overlong lines, bare CR/LF
and NUL, DATA bodies at every size and line-length edge, half-closes and
dropped connections, several sessions at once. Afterwards the daemon
still answers, every message that got a 250 is in each accepting
recipient's Maildir exactly once and byte for byte, no message is there
twice or from nowhere, and the sanitizers (SANITIZE=1) reported nothing.

The PRNG seed is printed and can be given back:

    PYMAILD_NETFUZZ_SEED=1234 PYMAILD_NETFUZZ_SESSIONS=5000 \\
        /usr/bin/python3 regress/run.py regress/netfuzz/test_netfuzz.py
"""

import base64
import concurrent.futures
import os
import random
import socket
import sys
import threading
import time

from lib.smtputil import (CRLF, Client, ProtocolError, SmtpCase,
                          added_prefix, dot_stuff, read,
                          subject_of, wait_for)

SEED = int(os.environ.get('PYMAILD_NETFUZZ_SEED') or
           random.SystemRandom().randrange(1 << 32))
SESSIONS = int(os.environ.get('PYMAILD_NETFUZZ_SESSIONS', '400'))
WORKERS = 4
MAXSIZE = 20000                 # smtpmaxmailsize: size edges are cheap
# A failed AUTH is answered only after up to 5 s (the parent's throttle):
# a reply later than IO_TIMEOUT means the server stopped answering.
IO_TIMEOUT = 10.0
CLOSE_TIMEOUT = 15.0            # a half-closed session must end by then
USERS = ('alice', 'bob')
RCPTS = ('alice@test.example', 'bob@test.example', 'BOB@Test.Example',
         'nobody@test.example', 'someone@elsewhere.example',
         'Alice@test.example', 'postmaster')
SENDERS = ('carol@sender.example', '', 'dave@sender.example',
           '"a b"@sender.example',
           'Mixed.Case@Sender.Example', 'j\u00f6rg@sender.example',
           'x@[192.0.2.1]')
VERBS = ('HELO', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT',
         'VRFY', 'EXPN', 'HELP', 'AUTH', 'STARTTLS', 'BDAT', 'XYZZY', '')


# ----------------------------------------------------------------------
# Random material

def rand_bytes(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def rand_arg(rng):
    pick = rng.randrange(8)
    if pick == 0:
        return ''
    if pick == 1:
        return 'FROM:<%s>' % rng.choice(SENDERS)
    if pick == 2:
        return 'TO:<%s>' % rng.choice(RCPTS)
    if pick == 3:
        return 'PLAIN ' + base64.b64encode(rand_bytes(
            rng, rng.randrange(40))).decode()
    if pick == 4:
        return 'FROM:<a@b.example> SIZE=%d BODY=%s' % (
            rng.choice((0, MAXSIZE, MAXSIZE + 1, 10 ** 30)),
            rng.choice(('8BITMIME', '7BIT', 'X')))
    if pick == 5:
        return '<' * rng.randrange(5) + '@' * rng.randrange(3) + '>'
    return rand_bytes(rng, rng.randrange(30)).decode('latin-1')


def command(rng):
    verb = rng.choice(VERBS)
    if rng.random() < 0.3:
        verb = verb.lower()
    line = ('%s %s' % (verb, rand_arg(rng))).encode('utf-8', 'replace')
    return line.replace(b'\r', b'').replace(b'\n', b'')


def garbage(rng):
    """One line a client should never send."""
    pick = rng.randrange(6)
    if pick == 0:
        return rand_bytes(rng, rng.randrange(1, 100)) + CRLF
    if pick == 1:       # every length edge around the 512-octet limit
        return b'NOOP ' + b'A' * rng.choice((505, 506, 507, 508, 1000,
                                             5000)) + CRLF
    if pick == 2:
        return b'NOOP bare LF\n'
    if pick == 3:
        return b'NOOP bare\rCR' + CRLF
    if pick == 4:
        return b'NOOP \x00 nul' + CRLF
    return b'\r\n' * rng.randrange(1, 4)


def body_line(rng):
    pick = rng.randrange(10)
    if pick == 0:
        return b'.'
    if pick == 1:
        return b'..' + b'x' * rng.randrange(3)
    if pick == 2:       # 998 octets is the longest line allowed
        return b'L' * rng.choice((997, 998, 999, 1200))
    if pick == 3:
        return bytes(rng.randrange(0x80, 0x100) for _ in range(8))
    if pick == 4:
        return b''
    return b'text %d' % rng.randrange(10 ** 6)


def make_body(rng, token, hostile):
    """A message: CRLF lines, not yet dot-stuffed. hostile adds what
    must be refused (bare CR/LF, NUL) or what only smuggles."""
    lines = [b'Subject: ' + token.encode(), b'From: fuzz@sender.example',
             b'']
    size = rng.choice((0, 10, 200, MAXSIZE - 300, MAXSIZE - 80,
                       MAXSIZE + 10))
    total = 0
    while total < size:
        ln = body_line(rng)
        lines.append(ln)
        total += len(ln) + 2
    if hostile:         # in the body: the Subject names the message
        at = rng.randrange(3, len(lines)) if len(lines) > 3 else 2
        lines[at] += rng.choice((b'\n.\n', b'\r.\r', b'\x00', b'\n',
                                 b'\r\n.\n', b'\r'))
    return CRLF.join(lines) + CRLF


# ----------------------------------------------------------------------
# One session

class Session:
    def __init__(self, port, rng, index):
        self.port = port
        self.rng = rng
        self.index = index
        self.sock = None
        self.accepted = []      # (token, [users], body)
        self.maybe = set()      # tokens whose fate we did not read

    def connect(self):
        self.c = Client(self.port, timeout=IO_TIMEOUT)
        self.sock = self.c.sock

    def send_pieces(self, data):
        """Send in random pieces: a reader must not care where reads end."""
        i = 0
        while i < len(data):
            n = self.rng.choice((1, 7, 100, 4096, len(data)))
            self.c.send(data[i:i + n])
            i += n

    def drain(self):
        """Read what the server said so far, without waiting long."""
        self.c.pending(0.01)

    def token(self, n):
        return 'nf-%08x-%d-%d' % (SEED, self.index, n)

    def transaction(self, n, pipelined):
        """A well-formed transaction read reply by reply; records what
        got a 250 at the end of DATA."""
        rng = self.rng
        rcpts = rng.sample(RCPTS, rng.randrange(1, 4))
        sender = rng.choice(SENDERS)
        cmds = ['MAIL FROM:<%s>%s' % (sender, ' SMTPUTF8' if '\u00f6' in
                                      sender else '')]
        cmds += ['RCPT TO:<%s>' % r for r in rcpts]
        if pipelined:
            self.c.send(b''.join(c.encode() + CRLF for c in cmds))
            replies = [self.c.reply() for _ in cmds]
        else:
            replies = [self.c.cmd(c) for c in cmds]
        users = []
        for r, rc in zip(rcpts, replies[1:]):
            local = r.split('@')[0].lower()
            if rc.code == 250 and local in USERS and local not in users:
                users.append(local)
        r = self.c.cmd('DATA')
        if r.code != 354:
            return
        token = self.token(n)
        hostile = rng.random() < 0.25
        body = make_body(rng, token, hostile)
        self.send_pieces(dot_stuff(body) + b'.\r\n')
        r = self.c.reply(what='the end of DATA')
        if r.code == 250:
            self.accepted.append((token, users, body))

    def chaos(self, n):
        """Anything: replies are not read one by one, so whatever got
        accepted here is only allowed, not expected."""
        rng = self.rng
        pick = rng.randrange(6)
        if pick == 0:
            self.c.send(command(rng) + CRLF)
        elif pick == 1:
            self.c.send(garbage(rng))
        elif pick == 2:
            self.c.send(b''.join(command(rng) + CRLF
                                 for _ in range(rng.randrange(2, 12))))
        elif pick == 3:
            token = self.token(n)
            self.maybe.add(token)
            self.c.send(b'MAIL FROM:<c@sender.example>\r\n'
                        b'RCPT TO:<alice@test.example>\r\nDATA\r\n')
            body = make_body(rng, token, rng.random() < 0.5)
            if rng.random() < 0.5:
                body = dot_stuff(body) + b'.\r\n'
            # Cut anywhere after the Subject line, which names it.
            self.send_pieces(body[:rng.randrange(len(token) + 11,
                                                 len(body) + 1)])
        elif pick == 4:
            self.c.send(b'AUTH LOGIN\r\n' + base64.b64encode(
                rand_bytes(rng, rng.randrange(20))) + CRLF)
        else:
            self.c.send(b'BDAT %d LAST\r\n' % rng.randrange(100) +
                        rand_bytes(rng, rng.randrange(50)))
        self.drain()

    def finish(self):
        """QUIT, a half-close, or a drop (sometimes a reset)."""
        pick = self.rng.randrange(4)
        if pick == 0:
            self.c.send(b'QUIT\r\n')
        if pick <= 1:
            self.sock.shutdown(socket.SHUT_WR)
            if not self.c.closed_by_server(CLOSE_TIMEOUT):
                raise AssertionError('session %d: the server kept a '
                                     'half-closed session open' % self.index)
        elif pick == 2:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b'\x01\x00\x00\x00\x00\x00\x00\x00')
        self.c.close()

    def run(self):
        self.connect()
        try:
            if self.rng.random() < 0.8:
                self.c.cmd(self.rng.choice(('EHLO', 'HELO')) +
                           ' fuzz.example')
            clean = self.rng.random() < 0.5
            for n in range(self.rng.randrange(1, 6)):
                if clean:
                    self.transaction(n, self.rng.random() < 0.5)
                    self.c.cmd('RSET')
                else:
                    self.chaos(n)
            self.finish()
        except (OSError, ProtocolError) as e:
            self.c.close()
            if 'no complete reply' in str(e):
                raise AssertionError('the server stopped answering: %s'
                                     % e) from None
            # It may close on us (too many errors, a bare LF): only what
            # was answered 250 counts.
        return self


# ----------------------------------------------------------------------

class NetFuzz(SmtpCase):

    def test_random_clients(self):
        print('netfuzz: seed %d, %d sessions (PYMAILD_NETFUZZ_SEED, '
              'PYMAILD_NETFUZZ_SESSIONS)' % (SEED, SESSIONS),
              file=sys.stderr)
        why = ' (seed %d)' % SEED
        inst = self.smtp_instance(smtpmaxmailsize=MAXSIZE, noauthhosts=[],
                                  timeout=10)
        master = random.Random(SEED)
        seeds = [master.randrange(1 << 62) for _ in range(SESSIONS)]
        lock = threading.Lock()
        sessions = []
        failed = threading.Event()      # the rest is skipped, not waited

        def one(i):
            if failed.is_set():
                return
            try:
                s = Session(inst.smtp_port, random.Random(seeds[i]),
                            i).run()
            except (AssertionError, OSError) as e:
                failed.set()
                raise AssertionError('session %d: %s%s\n%s' % (
                    i, e, why, inst.log_tail())) from None
            with lock:
                sessions.append(s)

        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for f in [pool.submit(one, i) for i in range(SESSIONS)]:
                f.result()

        self.assertTrue(inst.running(), 'the daemon died' + why + '\n' +
                        inst.log_tail())
        # Still serving: one more clean message.
        check = Session(inst.smtp_port, random.Random(SEED), SESSIONS)
        check.connect()
        check.c.cmd('EHLO fuzz.example')
        r = check.c.transaction('c@sender.example', ['alice@test.example'],
                                b'Subject: nf-last\r\n\r\nlast\r\n')
        self.assertEqual(r.code, 250, 'after the fuzzing: %r%s' % (r, why))
        check.c.close()

        expected = {u: {} for u in USERS}
        expected['alice']['nf-last'] = None
        maybe = set()
        for s in sessions:
            maybe |= s.maybe
            for token, users, body in s.accepted:
                for u in users:
                    expected[u][token] = body
        # Not a vacuous run: a fair share of the clean messages got in.
        accepted = sum(len(s.accepted) for s in sessions)
        print('netfuzz: %d messages accepted' % accepted, file=sys.stderr)
        self.assertGreater(accepted, SESSIONS // 20, why)
        for u in USERS:
            self.check_maildir(inst, u, expected[u], maybe, why)
        self.assertEqual(inst.sanitizer_reports(), [], why)

    def check_maildir(self, inst, user, want, maybe, why):
        def have():
            return {subject_of(read(p)) for p in inst.maildir_files(user)}
        wait_for(lambda: set(want) <= have(), 30)
        time.sleep(0.5)         # anything still on its way lands now
        seen = {}
        for p in inst.maildir_files(user):
            data = read(p)
            token = subject_of(data)
            # A chaos session may send a message of random lines that
            # happens to get through; a name we never used is corruption.
            if token not in want and token not in maybe:
                self.assertFalse((token or '').startswith('nf-'),
                                 '%s got a message nobody sent: %r%s'
                                 % (user, data[:300], why))
                continue
            self.assertNotIn(token, seen, '%s got %s twice%s'
                             % (user, token, why))
            seen[token] = data
            if want.get(token) is not None:
                added_prefix(data, want[token])
        missing = sorted(set(want) - set(seen))
        self.assertEqual(missing, [], '%s: accepted with 250 but not '
                         'delivered%s\n%s' % (user, why, inst.log_tail()))
