"""A bounded random client against pop3d, several sessions at once.

Clean sessions log in as alice and run random commands (STAT, LIST,
UIDL, RETR, TOP, DELE, RSET, NOOP), one at a time or pipelined, checked
against a model of the mailbox: every answer agrees with the files we
stored, and deletions happen exactly when a QUIT was answered +OK (a
session dropped or cut short deletes nothing). Chaos sessions, as bob or
as no one, send anything: commands from the grammar with random
arguments, wrong and right passwords, AUTH with random responses,
garbage, NUL, overlong lines, pipelined bursts, half-closes and drops,
without reading answers one by one.

Afterwards the daemon still serves; alice's Maildir holds exactly the
messages the model says, byte for byte; bob's holds only messages we
stored for him, unchanged; no chaos session ever received a byte of
alice's mail; and the sanitizers (SANITIZE=1) reported nothing.

Each session connects from its own loopback address (127.0.0.0/8), so
the per-address failure counter of one chaos session delays no other.
The PRNG seed is printed and can be given back:

    PYMAILD_NETFUZZ_SEED=1234 PYMAILD_NETFUZZ_SESSIONS=2000 \\
        /usr/bin/python3 regress/run.py regress/netfuzz/test_netfuzz_pop3.py
"""

import base64
import concurrent.futures
import os
import random
import socket
import sys
import threading
import time

from lib.pop3util import (CRLF, USERS, Pop3Case, Raw, pop_form,
                          unstuff, wait_for)

SEED = int(os.environ.get('PYMAILD_NETFUZZ_SEED') or
           random.SystemRandom().randrange(1 << 32))
SESSIONS = int(os.environ.get('PYMAILD_NETFUZZ_SESSIONS', '300'))
WORKERS = 4
STORED = 30                     # messages each of alice and bob start with
IO_TIMEOUT = 15.0               # a failed login is answered after <= 5 s
CLOSE_TIMEOUT = 15.0            # a half-closed session must end by then
ALICE_MARK = b'alice-private-'  # in every line of alice's mail
VERBS = ('USER', 'PASS', 'AUTH', 'CAPA', 'STAT', 'LIST', 'UIDL', 'RETR',
         'TOP', 'DELE', 'RSET', 'NOOP', 'QUIT', 'APOP', 'STLS', 'XTND',
         'retr', '')
CHAOS_USERS = ('bob', 'BOB', 'mallory', 'bob@test.example', '', 'b\x00b',
               '../alice', 'x' * 300)


def rand_bytes(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def message(rng, owner, i):
    """A stored message: LF line ends, dot lines, long lines, sometimes
    no final newline; a header, a blank line and at least one body line;
    every line of alice's names her mark."""
    tag = (ALICE_MARK if owner == 'alice' else b'bob-') + b'%d' % i
    lines = [b'Subject: %s' % tag, b'From: <x@test.example>', b'']
    for _ in range(rng.randrange(1, 12)):
        pick = rng.randrange(5)
        if pick == 0:
            lines.append(b'.' * rng.randrange(1, 4) + b' ' + tag)
        elif pick == 1:
            lines.append(tag + b' ' + b'y' * rng.randrange(0, 3000))
        elif pick == 2:
            lines.append(tag + b' \t ' + tag)
        else:
            lines.append(b'%s line %d' % (tag, rng.randrange(10 ** 6)))
    body = b'\n'.join(lines)
    return body if rng.random() < 0.2 else body + b'\n'


class Model:
    """alice's mailbox as the sessions that got +OK to QUIT left it."""

    def __init__(self, stored):
        self.lock = threading.Condition()
        self.content = dict(stored)            # uid -> stored bytes
        self.order = sorted(stored)            # uids, the listing order
        self.quitting = 0                      # a QUIT's answer awaited

    def snapshot(self):
        """The mailbox as the session that just got the lock sees it:
        the server released the lock after a QUIT's deletions, maybe
        before that session's thread heard +OK and committed them."""
        with self.lock:
            if not self.lock.wait_for(lambda: self.quitting == 0, 30):
                raise AssertionError('a QUIT never got its answer')
            return list(self.order)

    def quit_begin(self):
        with self.lock:
            self.quitting += 1

    def quit_end(self, uids):
        with self.lock:
            for u in uids:
                self.order.remove(u)
                del self.content[u]
            self.quitting -= 1
            self.lock.notify_all()


class Clean:
    """A session as alice that checks every answer against the model."""

    def __init__(self, port, rng, index, model, src):
        self.rng, self.index, self.model = rng, index, model
        self.c = Raw(port, src=src, timeout=IO_TIMEOUT)

    def fail(self, what):
        raise AssertionError('session %d (alice): %s' % (self.index, what))

    def expect_ok(self, line, what):
        if not line.startswith(b'+OK'):
            self.fail('%s: %r' % (what, line))

    def run(self):
        c = self.c
        try:
            c.ok('USER alice')
            r = c.cmd('PASS ' + USERS['alice'])
            if r.startswith(b'-ERR [IN-USE]'):
                c.ok('QUIT')
                return
            self.expect_ok(r, 'the right password')
            # The lock is ours: the model cannot change under us.
            self.listing = self.model.snapshot()
            self.check_stat()
            self.check_uidl()
            self.deleted = set()
            ops = [self.op() for _ in range(self.rng.randrange(1, 12))]
            if self.rng.random() < 0.4:
                self.pipelined(ops)
            else:
                for o in ops:
                    self.answer(o, c.cmd(o[0]))
            self.finish()
        finally:
            c.close()

    def check_stat(self):
        r = self.c.ok('STAT').split()
        size = sum(len(pop_form(self.model.content[u]))
                   for u in self.listing)
        if (int(r[1]), int(r[2])) != (len(self.listing), size):
            self.fail('STAT %r, the model has %d messages, %d octets'
                      % (r, len(self.listing), size))

    def check_uidl(self):
        self.c.ok('UIDL')
        got = [l.split(b' ', 1)[1].decode()
               for l in self.c.multi().split(CRLF)[:-1]]
        if got != self.listing:
            self.fail('UIDL %r, the model %r' % (got[:5], self.listing[:5]))

    def op(self):
        n = self.rng.randrange(0, len(self.listing) + 2)
        verb = self.rng.choice(('RETR', 'RETR', 'TOP', 'LIST', 'DELE',
                                'DELE', 'RSET', 'NOOP', 'UIDL'))
        if verb == 'TOP':
            return ('TOP %d %d' % (n, self.rng.randrange(0, 4)), verb, n)
        if verb in ('RSET', 'NOOP'):
            return (verb, verb, n)
        return ('%s %d' % (verb, n), verb, n)

    def pipelined(self, ops):
        self.c.send(b''.join(o[0].encode() + CRLF for o in ops))
        for o in ops:
            self.answer(o, self.c.line())

    def uid_of(self, n):
        """The uid of message n, or None when n names no live message."""
        if n < 1 or n > len(self.listing):
            return None
        u = self.listing[n - 1]
        return None if u in self.deleted else u

    def answer(self, o, first):
        text, verb, n = o
        u = self.uid_of(n)
        if verb == 'NOOP':
            return self.expect_ok(first, text)
        if verb == 'RSET':
            self.deleted.clear()
            return self.expect_ok(first, text)
        if u is None:
            if not first.startswith(b'-ERR'):
                self.fail('%s on no message: %r' % (text, first))
            return
        self.expect_ok(first, text)
        want = pop_form(self.model.content[u])
        if verb == 'DELE':
            self.deleted.add(u)
        elif verb == 'LIST':
            if first.split()[1:3] != [b'%d' % n, b'%d' % len(want)]:
                self.fail('%s: %r, want %d octets' % (text, first,
                                                      len(want)))
        elif verb == 'UIDL':
            if first.split()[2:3] != [u.encode()]:
                self.fail('%s: %r, want %s' % (text, first, u))
        elif verb == 'RETR':
            got = unstuff(self.c.multi())
            if got != want:
                self.fail('%s: %d octets differ from the stored %d'
                          % (text, len(got), len(want)))
        else:
            self.check_top(text, unstuff(self.c.multi()), want)

    def check_top(self, text, got, want):
        """The header, the blank line, then the first lines of the body."""
        lines = int(text.split()[2])
        head, sep, body = want.partition(b'\r\n\r\n')
        body_lines = body[:-2].split(CRLF)
        expect = head + sep + b''.join(l + CRLF for l in body_lines[:lines])
        if got != expect:
            self.fail('%s: %r, want %r' % (text, got[:120], expect[:120]))

    def finish(self):
        pick = self.rng.randrange(4)
        if pick == 0:
            return          # dropped: nothing may be deleted
        if pick == 1:
            self.c.send(b'NOOP\r\n')
            self.c.s.shutdown(socket.SHUT_WR)
            if not self.closes():
                self.fail('a half-closed session stayed open')
            return          # no QUIT: nothing may be deleted
        self.model.quit_begin()
        deleted = []
        try:
            r = self.c.cmd('QUIT')
            self.expect_ok(r, 'QUIT')
            deleted = [u for u in self.listing if u in self.deleted]
        finally:
            self.model.quit_end(deleted)

    def closes(self):
        deadline = time.monotonic() + CLOSE_TIMEOUT
        self.c.s.settimeout(1)
        while time.monotonic() < deadline:
            try:
                if not self.c.s.recv(65536):
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False


class Chaos:
    """Anything, as bob or no one; answers are read but not checked,
    except that none may carry a byte of alice's mail."""

    def __init__(self, port, rng, index, src):
        self.rng, self.index = rng, index
        self.s = socket.create_connection(('127.0.0.1', port), IO_TIMEOUT,
                                          source_address=(src, 0))
        self.got = b''

    def command(self):
        rng = self.rng
        verb = rng.choice(VERBS)
        pick = rng.randrange(7)
        if verb in ('USER', 'PASS') and pick < 4:
            arg = (rng.choice(CHAOS_USERS) if verb == 'USER' else
                   rng.choice((USERS['bob'], 'wrong', '', 'alicepw')))
        elif verb == 'AUTH' and pick < 4:
            # (Not alice: her failures would lock the clean sessions out.)
            who = rng.choice((b'bob', b'mallory', b'nobody'))
            pw = rng.choice((USERS['bob'].encode(), b'bad', b''))
            arg = 'PLAIN ' + base64.b64encode(
                rng.choice((b'', who)) + b'\0' + who + b'\0' + pw).decode()
        elif pick < 5:
            arg = ' '.join(str(rng.choice((0, 1, 2, 3, STORED, STORED + 1,
                                           -1, 2 ** 32, 10 ** 30)))
                           for _ in range(rng.randrange(0, 4)))
        else:
            arg = rand_bytes(rng, rng.randrange(40)).decode('latin-1')
        line = (verb + ' ' + arg if arg else verb).encode('latin-1')
        return line.replace(b'\n', b' ')

    def burst(self):
        rng = self.rng
        pick = rng.randrange(6)
        if pick == 0:
            return b''.join(self.command() + CRLF
                            for _ in range(rng.randrange(2, 20)))
        if pick == 1:
            return rand_bytes(rng, rng.randrange(1, 600))
        if pick == 2:
            return b'NOOP ' + b'x' * rng.choice((240, 255, 256, 2000,
                                                 70000)) + CRLF
        if pick == 3:
            return b'USER bob\r\nPASS ' + USERS['bob'].encode() + \
                b'\r\nSTAT\r\nRETR 1\r\nTOP 2 1\r\nDELE 3\r\nLIST\r\n'
        if pick == 4:
            return self.command() + rng.choice((b'\r', b'\n', b'\0',
                                                b'\r\r\n'))
        return self.command() + CRLF

    def send_pieces(self, data):
        i = 0
        while i < len(data):
            n = self.rng.choice((1, 3, 100, 4096, len(data)))
            self.s.sendall(data[i:i + n])
            i += n

    def read_some(self, wait):
        self.s.settimeout(wait)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return False
                self.got += d
        except socket.timeout:
            return True

    def run(self):
        try:
            for _ in range(self.rng.randrange(1, 8)):
                self.send_pieces(self.burst())
                if not self.read_some(0.02):
                    break
            self.finish()
        except OSError:
            pass                # it may close on us: only its data counts
        finally:
            self.s.close()
        if ALICE_MARK in self.got:
            raise AssertionError('chaos session %d received alice\'s mail'
                                 % self.index)

    def finish(self):
        pick = self.rng.randrange(4)
        if pick == 0:
            self.s.sendall(b'QUIT\r\n')
        if pick <= 1:
            self.s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + CLOSE_TIMEOUT
            while time.monotonic() < deadline:
                if not self.read_some(1.0):
                    return
            raise AssertionError('chaos session %d: the server kept a '
                                 'half-closed session open' % self.index)
        if pick == 2:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              b'\x01\x00\x00\x00\x00\x00\x00\x00')


def source(i):
    """A loopback address of its own for session i."""
    return '127.%d.%d.%d' % (10 + i // 64000, (i // 250) % 256,
                             1 + i % 250)


class NetFuzzPop3(Pop3Case):

    overrides = {'timeout': 10}

    def test_random_clients(self):
        print('netfuzz pop3: seed %d, %d sessions (PYMAILD_NETFUZZ_SEED, '
              'PYMAILD_NETFUZZ_SESSIONS)' % (SEED, SESSIONS),
              file=sys.stderr)
        why = ' (seed %d)' % SEED
        master = random.Random(SEED)
        stored = {u: {} for u in ('alice', 'bob')}
        for owner in stored:
            for i in range(STORED):
                body = message(master, owner, i)
                stored[owner][self.put(body, user=owner)] = body
        model = Model(stored['alice'])
        seeds = [master.randrange(1 << 62) for _ in range(SESSIONS)]
        counts = {'clean': 0, 'chaos': 0}
        lock = threading.Lock()
        failed = threading.Event()

        def one(i):
            if failed.is_set():
                return
            rng = random.Random(seeds[i])
            kind = 'clean' if rng.random() < 0.35 else 'chaos'
            try:
                if kind == 'clean':
                    Clean(self.port, rng, i, model, source(i)).run()
                else:
                    Chaos(self.port, rng, i, source(i)).run()
            except (AssertionError, OSError, EOFError, ValueError,
                    IndexError) as e:
                failed.set()
                raise AssertionError('session %d (%s): %r%s\n%s' % (
                    i, kind, e, why, self.inst.log_tail())) from None
            with lock:
                counts[kind] += 1

        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for f in [pool.submit(one, i) for i in range(SESSIONS)]:
                f.result()
        print('netfuzz pop3: %(clean)d clean, %(chaos)d chaos sessions'
              % counts, file=sys.stderr)
        self.assertGreater(counts['clean'], SESSIONS // 10, why)

        self.assertTrue(self.inst.running(), 'the daemon died' + why)
        self.assertAlive()
        self.check_alice(model, why)
        self.check_bob(stored['bob'], why)
        self.assertEqual(self.inst.sanitizer_reports(), [], why)

    def mailbox(self, user):
        """uid -> content of every message in the user's new/ and cur/."""
        out = {}
        for rel in self.files(user):
            uid = os.path.basename(rel).split(',')[0].split(':')[0]
            with open(os.path.join(self.mdir(user), rel), 'rb') as f:
                out[uid] = f.read()
        return out

    def check_alice(self, model, why):
        # The last session's QUIT may still be committing.
        wait_for(lambda: set(self.mailbox('alice')) == set(model.content),
                 10)
        self.assertEqual(self.mailbox('alice'), model.content,
                         'alice\'s mailbox is not what the sessions that '
                         'quit left' + why)
        self.assertEqual(os.listdir(self.mdir('alice', 'tmp')), [], why)

    def check_bob(self, stored, why):
        have = self.mailbox('bob')
        self.assertLessEqual(set(have), set(stored), why)
        for uid, data in have.items():
            self.assertEqual(data, stored[uid], 'bob\'s %s changed%s'
                             % (uid, why))
