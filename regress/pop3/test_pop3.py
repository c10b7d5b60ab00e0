"""POP3: the protocol and the mailbox rules of DESIGN.md A5.

Messages are put straight into the Maildir, named as the delivery side
names them; test_pop3_interop.py adds SMTP -> POP3 round trips.

    /usr/bin/python3 regress/run.py -k test_pop3
"""

import os
import poplib
import random
import time

from lib.pop3util import (CAPA, CRLF, GREETING, UID_RE,
                          Pop3Case, pop_form, unique_name, unstuff,
                          wait_login)

SIMPLE = b'From: a@test.example\nSubject: hello\n\nbody line\n'


class Protocol(Pop3Case):

    def test_greeting_and_capa(self):
        c = self.raw()
        self.assertEqual(c.greeting, GREETING)
        self.assertTrue(c.ok('CAPA').startswith(b'+OK'))
        lines = c.multi().split(CRLF)[:-1]
        self.assertEqual(lines, CAPA)
        # poplib agrees, and sees no APOP challenge in the greeting.
        p = poplib.POP3('127.0.0.1', self.port, timeout=20)
        self.assertNotIn(b'<', p.getwelcome())
        self.assertIn('UIDL', p.capa())
        p.quit()
        # CAPA also works once logged in.
        c.login()
        c.ok('CAPA')
        self.assertEqual(c.multi().split(CRLF)[:-1], CAPA)
        c.ok('QUIT')

    def test_session_with_poplib(self):
        bodies = [SIMPLE, b'Subject: two\n\nsecond\nmessage\n']
        for b in bodies:
            self.put(b)
        p = self.pop()
        sizes = [len(pop_form(b)) for b in bodies]
        self.assertEqual(p.stat(), (2, sum(sizes)))
        resp, lst, _ = p.list()
        self.assertEqual(lst, [b'1 %d' % sizes[0], b'2 %d' % sizes[1]])
        self.assertEqual(p.list(2), b'+OK 2 %d' % sizes[1])
        resp, lines, octets = p.retr(2)
        self.assertEqual(b'\r\n'.join(lines) + b'\r\n', pop_form(bodies[1]))
        self.assertEqual(octets, sizes[1])
        self.assertTrue(p.noop().startswith(b'+OK'))
        self.assertTrue(p.quit().startswith(b'+OK'))

    def test_commands_are_case_insensitive(self):
        self.put(SIMPLE)
        c = self.raw()
        c.ok('user alice')
        c.ok('PaSs alicepw')
        self.assertEqual(c.ok('stat'), b'+OK 1 %d\r\n' % len(pop_form(SIMPLE)))
        c.ok('uIdL 1')
        self.assertEqual(c.retr(1)[1], pop_form(SIMPLE))
        c.ok('Quit')

    def test_state_rules(self):
        c = self.raw()
        # TRANSACTION commands before login.
        for cmd in ('STAT', 'LIST', 'RETR 1', 'DELE 1', 'UIDL', 'RSET',
                    'TOP 1 1'):
            self.assertTrue(c.cmd(cmd).startswith(b'-ERR'), cmd)
        self.assertTrue(c.cmd('PASS alicepw').startswith(b'-ERR'))
        self.assertTrue(c.cmd('XYZZY').startswith(b'-ERR'))
        self.assertTrue(c.cmd('APOP alice 0123').startswith(b'-ERR'))
        c.login()
        for cmd in ('USER alice', 'PASS x', 'AUTH PLAIN'):
            self.assertTrue(c.cmd(cmd).startswith(b'-ERR'), cmd)
        c.ok('STAT')
        c.ok('QUIT')

    def test_pipelining_answers_in_order(self):
        for b in (SIMPLE, b'Subject: 2\n\nx\n', b'Subject: 3\n\ny\n'):
            self.put(b)
        c = self.raw()
        c.send(b'USER alice\r\nPASS alicepw\r\nSTAT\r\nLIST\r\nUIDL\r\n'
               b'RETR 1\r\nTOP 2 0\r\nDELE 3\r\nSTAT\r\nRETR 3\r\n'
               b'RSET\r\nNOOP\r\nLIST 3\r\nQUIT\r\n')
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertTrue(c.line().startswith(b'+OK maildrop has 3'))
        self.assertTrue(c.line().startswith(b'+OK 3 '))
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertEqual(len(c.multi().split(CRLF)), 4)
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertEqual(len(c.multi().split(CRLF)), 4)
        self.assertTrue(c.line().startswith(b'+OK %d octets'
                                            % len(pop_form(SIMPLE))))
        self.assertEqual(unstuff(c.multi()), pop_form(SIMPLE))
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertEqual(c.multi(), b'Subject: 2\r\n\r\n')
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertTrue(c.line().startswith(b'+OK 2 '))
        self.assertTrue(c.line().startswith(b'-ERR'))
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertEqual(c.line(), b'+OK\r\n')
        self.assertTrue(c.line().startswith(b'+OK 3 '))
        self.assertTrue(c.line().startswith(b'+OK'))
        self.assertEqual(c.eof(), b'')
        self.assertEqual(len(self.files()), 3)

    def test_half_closed_client_gets_every_answer(self):
        self.put(SIMPLE)
        c = self.raw()
        c.send(b'USER alice\r\nPASS alicepw\r\nRETR 1\r\nQUIT\r\n')
        c.s.shutdown(1)
        rest = c.eof()
        self.assertIn(b'+OK maildrop has 1', rest)
        self.assertIn(b'body line\r\n.\r\n', rest)
        self.assertTrue(rest.endswith(b'left)\r\n'), rest[-60:])

    def test_bad_arguments_keep_the_session(self):
        for b in (SIMPLE, SIMPLE + b'2\n'):
            self.put(b)
        c = self.raw()
        c.login()
        c.ok('DELE 2')
        bad = ['RETR 0', 'RETR 99999', 'RETR x', 'RETR', 'RETR 2',
               'RETR 1 2', 'RETR -1', 'RETR +1', 'RETR 1x',
               'RETR 4294967297', 'LIST 0', 'LIST 3', 'LIST 2', 'UIDL 2',
               'UIDL x', 'TOP 1', 'TOP 1 x', 'TOP 1 -1', 'TOP 0 1',
               'TOP 2 1', 'DELE 2', 'DELE 0', 'DELE', 'STAT 1', 'NOOP 1']
        for cmd in bad:
            self.assertTrue(c.cmd(cmd).startswith(b'-ERR'), cmd)
        self.assertEqual(c.ok('STAT'), b'+OK 1 %d\r\n' % len(pop_form(SIMPLE)))
        self.assertEqual(c.retr(1)[1], pop_form(SIMPLE))
        c.ok('QUIT')

    def test_rset_and_stat_after_dele(self):
        bodies = [SIMPLE, b'a\n', b'bb\n']
        for b in bodies:
            self.put(b)
        c = self.raw()
        c.login()
        c.ok('DELE 2')
        self.assertEqual(c.ok('STAT'), b'+OK 2 %d\r\n'
                         % (len(pop_form(SIMPLE)) + 4))
        c.ok('LIST')
        self.assertEqual(c.multi(), b'1 %d\r\n3 4\r\n' % len(pop_form(SIMPLE)))
        c.ok('UIDL')
        self.assertEqual(len(c.multi().split(CRLF)), 3)
        c.ok('RSET')
        self.assertTrue(c.ok('STAT').startswith(b'+OK 3 '))
        self.assertTrue(c.ok('QUIT'))
        self.assertEqual(len(self.files()), 3)


class Messages(Pop3Case):

    def check_exact(self, body, **kw):
        self.put(body, **kw)
        c = self.raw()
        c.login()
        size = len(pop_form(body))
        self.assertEqual(c.ok('LIST 1'), b'+OK 1 %d\r\n' % size)
        first = c.cmd('RETR 1')
        self.assertEqual(first, b'+OK %d octets\r\n' % size)
        wire = c.multi()
        for line in wire.split(CRLF)[:-1]:
            # Every line that starts with a dot went out stuffed.
            if line.startswith(b'.'):
                self.assertTrue(line.startswith(b'..'), line[:20])
        self.assertEqual(unstuff(wire), pop_form(body))
        self.assertEqual(len(unstuff(wire)), size)
        c.ok('QUIT')

    def test_dots(self):
        self.check_exact(b'Subject: dots\n\n.\n..\n...\n.x\n..y\n. \n'
                         b'a.\n.\n\n.\n')

    def test_long_lines(self):
        self.check_exact(b'Subject: long\n\n' + b'x' * 20000 + b'\n' +
                         b'.' + b'y' * 70000 + b'\n' + b'z' * 998 + b'\n')

    def test_eight_bit_and_controls(self):
        body = bytes(range(1, 256)).replace(b'\n', b'') + b'\n'
        self.check_exact(b'Subject: 8bit\n\n' + body + '\u00e9t\u00e9\n'
                         .encode() + b'\x00nul\n')

    def test_no_final_newline(self):
        self.check_exact(b'Subject: x\n\nno newline at the end')

    def test_empty_message(self):
        self.check_exact(b'')

    def test_crlf_already_in_file(self):
        self.check_exact(b'Subject: crlf\r\n\r\nline\r\nbare\rcr\nlf\n')

    def test_sizes_without_w(self):
        bodies = [b'Subject: a\n\n.one\n', b'Subject: b\n\nx' * 3000,
                  b'']
        for i, b in enumerate(bodies):
            self.put(b, sizes=False)
        self.put(b'with S only\n', name=unique_name() + ',S=12')
        c = self.raw()
        c.login()
        c.ok('LIST')
        got = [int(l.split()[1]) for l in c.multi().split(CRLF)[:-1]]
        want = [len(pop_form(b)) for b in bodies] + [13]
        self.assertEqual(got, want)
        for i in range(len(want)):
            self.assertEqual(len(c.retr(i + 1)[1]), want[i])
        c.ok('QUIT')

    def test_big_message(self):
        rnd = random.Random(4)
        lines = []
        for i in range(40000):
            n = rnd.randrange(0, 200)
            lines.append(bytes(rnd.randrange(32, 127) for _ in range(n)))
        body = b'Subject: big\n\n' + b'\n'.join(lines) + b'\n'
        self.check_exact(body)

    def test_top(self):
        body = b'From: a\nSubject: t\n\n1\n.2\n3\n4\n'
        self.put(body)
        self.put(b'Only: header\nNo: body\n')
        self.put(b'Subject: crlf\r\n\r\nb1\r\nb2\r\n')
        c = self.raw()
        c.login()
        self.assertEqual(c.retr(1, 0)[1], b'From: a\r\nSubject: t\r\n\r\n')
        self.assertEqual(c.retr(1, 2)[1],
                         b'From: a\r\nSubject: t\r\n\r\n1\r\n.2\r\n')
        self.assertEqual(c.retr(1, 99999999999)[1], pop_form(body))
        self.assertEqual(c.retr(2, 5)[1], b'Only: header\r\nNo: body\r\n')
        self.assertEqual(c.retr(3, 1)[1], b'Subject: crlf\r\n\r\nb1\r\n')
        c.ok('QUIT')
        # TOP does not mark a message seen.
        self.assertEqual(len(self.files(sub='new')), 3)

    def test_many_messages_list_and_uidl(self):
        n = 3000
        for i in range(n):
            self.put(b'Subject: %d\n\n%s\n' % (i, b'x' * (i % 50)))
        p = self.pop()
        self.assertEqual(p.stat()[0], n)
        _, lst, _ = p.list()
        self.assertEqual(len(lst), n)
        for i, l in enumerate(lst):
            no, size = l.split()
            self.assertEqual(int(no), i + 1)
            self.assertEqual(int(size),
                             len(pop_form(b'Subject: %d\n\n%s\n'
                                          % (i, b'x' * (i % 50)))))
        _, uids, _ = p.uidl()
        self.assertEqual(len(set(u.split()[1] for u in uids)), n)
        p.quit()


class Pipelining(Pop3Case):
    """Random command mixes, pipelined, against a model of the answers:
    pop3d asks for descriptors ahead of the commands, and none of that
    may show."""

    def expected(self, bodies, cmds):
        deleted = set()
        out = []
        for cmd in cmds:
            word, *args = cmd.split()
            n = int(args[0]) if args else None
            ok = n is not None and 1 <= n <= len(bodies) and \
                n not in deleted
            if word == 'RETR':
                out.append(('RETR', pop_form(bodies[n - 1]) if ok else None))
            elif word == 'TOP':
                out.append(('TOP', top_form(bodies[n - 1], int(args[1]))
                            if ok else None))
            elif word == 'DELE':
                out.append(('LINE', ok))
                if ok:
                    deleted.add(n)
            elif word == 'NOOP':
                out.append(('LINE', True))
        return out

    def test_random_mixes(self):
        rnd = random.Random(7)
        bodies = []
        for i in range(30):
            lines = [bytes(rnd.choice(b'.abc \t\x80') for _ in
                           range(rnd.randrange(0, 90)))
                     for _ in range(rnd.randrange(0, 40))]
            bodies.append(b'Subject: %d\n\n' % i + b'\n'.join(lines) +
                          (b'\n' if i % 5 else b''))
        for b in bodies:
            self.put(b)
        for round_ in range(3):
            cmds = []
            for _ in range(150):
                r = rnd.random()
                n = rnd.randrange(0, 33)
                if r < 0.55:
                    cmds.append('RETR %d' % n)
                elif r < 0.75:
                    cmds.append('TOP %d %d' % (n, rnd.randrange(0, 5)))
                elif r < 0.85:
                    cmds.append('DELE %d' % n)
                else:
                    cmds.append('NOOP')
            want = self.expected(bodies, cmds)
            c = self.raw()
            c.login()
            c.send(b''.join(x.encode() + CRLF for x in cmds))
            for cmd, (kind, body) in zip(cmds, want):
                first = c.line()
                if kind == 'LINE':
                    self.assertEqual(first.startswith(b'+OK'), body, cmd)
                    continue
                if body is None:
                    self.assertTrue(first.startswith(b'-ERR'), (cmd, first))
                    continue
                self.assertTrue(first.startswith(b'+OK'), (cmd, first))
                self.assertEqual(unstuff(c.multi()), body, cmd)
            c.ok('RSET')
            c.ok('QUIT')
            self.assertEqual(len(self.files()), len(bodies))

    def test_one_command_at_a_time_mixes(self):
        # A client waiting for each answer: pop3d reads the next small
        # message into memory meanwhile (messages on both sides of that
        # size limit here); every answer is still the file's.
        rnd = random.Random(11)
        bodies = []
        for i in range(24):
            size = rnd.choice((0, 50, 4000, 16383, 16385, 40000))
            text = bytes(rnd.choice(b'.ab\n\n') for _ in range(size))
            bodies.append(b'Subject: %d\n\n' % i + text)
        for b in bodies:
            self.put(b)
        cmds = []
        for n in range(1, 26):
            cmds.append('RETR %d' % n)
            if n % 4 == 0:
                cmds.append('TOP %d %d' % (n + 1, rnd.randrange(0, 3)))
            if n % 6 == 0:
                cmds.append('DELE %d' % (n + 1))
            if n % 7 == 0:
                cmds.append('RETR %d' % (n - 3))
        want = self.expected(bodies, cmds)
        c = self.raw()
        c.login()
        for cmd, (kind, body) in zip(cmds, want):
            first = c.cmd(cmd)
            if kind == 'LINE':
                self.assertEqual(first.startswith(b'+OK'), body, cmd)
            elif body is None:
                self.assertTrue(first.startswith(b'-ERR'), (cmd, first))
            else:
                self.assertTrue(first.startswith(b'+OK'), (cmd, first))
                self.assertEqual(unstuff(c.multi()), body, cmd)
        c.ok('RSET')
        c.ok('QUIT')

    def test_only_messages_sent_in_full_are_seen(self):
        # Message 5 is larger than any socket buffer can take.
        for i in range(6):
            self.put(b'Subject: %d\n\n' % i +
                     b'x' * (20000000 if i == 4 else i * 1000) + b'\n')
        c = self.raw(rcvbuf=4096)
        c.login()
        # Pipelined RETRs make pop3d ask for later descriptors early.
        c.send(b'RETR 1\r\nRETR 2\r\nTOP 3 1\r\n')
        c.line()
        c.multi()
        c.line()
        c.multi()
        c.line()
        c.multi()
        c.send(b'RETR 5\r\n')
        c.line()
        c.s.recv(1000)
        # Dropped in the middle of message 5: only 1 and 2 were sent.
        c.close()
        self.assertTrue(wait_login(self.port))
        self.assertEqual(len(self.files(sub='cur')), 2, self.files())
        self.assertEqual(len(self.files(sub='new')), 4)


def top_form(body, n):
    """What TOP n sends for a stored message, before dot-stuffing."""
    crlf = pop_form(body)
    head, sep, rest = crlf.partition(b'\r\n\r\n')
    if not sep:
        return crlf
    lines = rest.split(b'\r\n') if rest else []
    if rest.endswith(b'\r\n'):
        lines = lines[:-1]
    return head + sep + b''.join(l + b'\r\n' for l in lines[:n])


class Mailbox(Pop3Case):

    def uidl(self, c):
        c.ok('UIDL')
        return [l.split(b' ', 1)[1] for l in c.multi().split(CRLF)[:-1]]

    def test_uids_are_the_unique_names_and_stable(self):
        names = [self.put(b'Subject: %d\n\nx\n' % i) for i in range(4)]
        c = self.raw()
        c.login()
        first = self.uidl(c)
        self.assertEqual(first, [n.encode() for n in names])
        c.retr(2)
        c.retr(4)
        c.ok('QUIT')
        # Retrieved messages moved new -> cur with the seen flag.
        cur = self.files(sub='cur')
        self.assertEqual(len(cur), 2)
        for f in cur:
            self.assertTrue(f.endswith(':2,S'), f)
            self.assertTrue(f.split('/')[1].split(',')[0] in names[1::2])
        self.assertEqual(len(self.files(sub='new')), 2)
        c = self.raw()
        c.login()
        self.assertEqual(self.uidl(c), first)
        c.ok('QUIT')
        # Deleting one leaves the others' UIDs alone.
        c = self.raw()
        c.login()
        c.ok('DELE 1')
        c.ok('QUIT')
        c = self.raw()
        c.login()
        self.assertEqual(self.uidl(c), first[1:])
        c.ok('QUIT')

    def test_seen_flag_kept_in_order(self):
        u = self.put(b'x\n', sub='cur', name=unique_name() + ',S=2,W=3:2,FT',
                     sizes=False)
        c = self.raw()
        c.login()
        c.retr(1)
        c.ok('QUIT')
        self.assertEqual(self.files(), ['cur/%s:2,FST' % u.split(':')[0]])

    def test_dele_only_at_quit(self):
        for i in range(3):
            self.put(b'Subject: %d\n\nx\n' % i)
        before = self.files()
        # A dropped connection deletes nothing.
        c = self.raw()
        c.login()
        c.ok('DELE 1')
        c.ok('DELE 2')
        c.close()
        self.assertTrue(wait_login(self.port))
        self.assertEqual(self.files(), before)
        # RSET undoes, QUIT applies the rest.
        c = self.raw()
        c.login()
        c.ok('DELE 1')
        c.ok('RSET')
        c.ok('DELE 3')
        self.assertEqual(c.ok('QUIT'), b'+OK pymaild signing off '
                         b'(2 messages left)\r\n')
        self.assertEqual(self.files(), before[:2])

    def test_delete_everything(self):
        n = 4500      # more than one IMSG_POP3_UPDATE batch
        for i in range(n):
            self.put(b'%d\n' % i)
        c = self.raw()
        c.login()
        c.send(b''.join(b'DELE %d\r\n' % (i + 1) for i in range(n)))
        for i in range(n):
            self.assertTrue(c.line().startswith(b'+OK'))
        self.assertEqual(c.ok('QUIT'), b'+OK pymaild signing off '
                         b'(0 messages left)\r\n')
        self.assertEqual(self.files(), [])

    def test_snapshot(self):
        self.put(SIMPLE)
        c = self.raw()
        c.login()
        self.put(b'Subject: late\n\nlate\n')
        self.assertTrue(c.ok('STAT').startswith(b'+OK 1 '))
        self.assertTrue(c.cmd('RETR 2').startswith(b'-ERR'))
        c.ok('QUIT')
        c = self.raw()
        c.login()
        self.assertTrue(c.ok('STAT').startswith(b'+OK 2 '))
        c.ok('QUIT')

    def test_message_removed_behind_our_back(self):
        self.put(SIMPLE)
        self.put(SIMPLE)
        c = self.raw()
        c.login()
        for f in self.files():
            os.unlink(os.path.join(self.mdir(), f))
        self.assertTrue(c.cmd('RETR 1').startswith(b'-ERR'))
        c.ok('DELE 2')
        c.ok('NOOP')
        self.assertTrue(c.ok('QUIT'))

    def test_message_replaced_by_not_a_file(self):
        # What only the mailbox's owner could do behind our back: a
        # listed message becomes a directory, or a FIFO, of the same
        # name. Its RETR never passes for a message (an -ERR, or the
        # session ends), and the next session has the mailbox again.
        for make in (os.mkdir, os.mkfifo):
            self.put(SIMPLE)
            self.put(b'Subject: second\n\nintact\n')
            c = self.raw()
            c.login()
            victim = os.path.join(self.mdir(), self.files()[0])
            os.unlink(victim)
            make(victim)
            try:
                got = c.cmd('RETR 1')
                if got.startswith(b'+OK'):
                    got += c.eof()
            except EOFError:
                got = b''
            self.assertFalse(got.endswith(b'\r\n.\r\n'), got)
            c.close()
            self.assertTrue(wait_login(self.port))
            c = self.raw()
            c.login()
            self.assertEqual(c.retr(1)[1],
                             b'Subject: second\r\n\r\nintact\r\n')
            c.ok('DELE 1')
            c.ok('QUIT')
            (os.rmdir if make is os.mkdir else os.unlink)(victim)
            self.assertEqual(self.files(), [])

    def test_no_descriptor_left_open(self):
        # pop3d holds messages it read ahead, and closes the descriptors
        # it is done with in groups: none of them outlives the session.
        for i in range(80):
            self.put(b'Subject: %d\n\n' % i + b'x' * (i * 300) + b'\n')
        fds = '/proc/%d/fd' % self.pop3d_pid()
        base = len(os.listdir(fds))
        c = self.raw()
        c.login()
        for n in range(1, 41):
            c.retr(n)
        c.send(b''.join(b'RETR %d\r\n' % n for n in range(41, 81)))
        for n in range(41, 81):
            c.line()
            c.multi()
        self.assertGreater(len(os.listdir(fds)), base)
        c.ok('QUIT')
        self.assertTrue(wait_login(self.port))
        # A client that drops in the middle leaves nothing open either.
        c = self.raw()
        c.login()
        c.retr(1)
        c.send(b'RETR 2\r\n')
        c.close()
        self.assertTrue(wait_login(self.port))
        deadline = time.monotonic() + 5
        while len(os.listdir(fds)) > base and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(os.listdir(fds)), base)

    def test_odd_names_give_valid_unique_uids(self):
        odd = ['x' * 90 + '.host',           # too long
               'x' * 90 + '.hosu',           # differs only at the end
               'caf\u00e9.M1P2.host',        # 8-bit
               '~tilde', '%41', 'A',
               'same', 'sp ace']
        for n in odd:
            self.put(b'x\n', name=n)
        # A duplicate unique part, in cur (a broken Maildir).
        self.put(b'y\n', name='same', sub='cur')
        c = self.raw()
        c.login()
        uids = self.uidl(c)
        self.assertEqual(len(uids), len(odd) + 1)
        for u in uids:
            self.assertRegex(u, UID_RE)
        self.assertEqual(len(set(uids)), len(uids))
        self.assertIn(b'A', uids)
        self.assertIn(b'same', uids)
        c.ok('QUIT')
        c = self.raw()
        c.login()
        self.assertEqual(self.uidl(c), uids)
        c.ok('QUIT')

    def test_not_a_file_is_skipped(self):
        self.put(SIMPLE)
        os.mkfifo(os.path.join(self.mdir(sub='new'), unique_name()))
        os.symlink('/etc/passwd', os.path.join(self.mdir(sub='new'),
                                               unique_name()))
        os.mkdir(os.path.join(self.mdir(sub='cur'), unique_name()))
        c = self.raw()
        c.login()
        self.assertTrue(c.ok('STAT').startswith(b'+OK 1 '))
        self.assertEqual(c.retr(1)[1], pop_form(SIMPLE))
        c.ok('QUIT')


