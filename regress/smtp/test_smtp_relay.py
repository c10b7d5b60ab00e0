"""SMTP-in, relay policy: a non-local domain only from an authenticated
session or a noauthhosts client (address or CIDR), else 554 5.7.1; percent
hacks, bang paths, source routes and quoted local parts never open a relay
(DESIGN.md A2, A4).

    /usr/bin/python3 regress/run.py -k test_smtp_relay
"""

import os

from lib.smtputil import (SmtpCase, make_message,
                          wait_mail)

# Addresses that name another domain in a local-looking way.  From a client
# that may not relay, none may get a 2xx (the local part is no user, or the
# real destination is not local).
TRICKS = [
    'alice%other.example@test.example',
    'bob%other.example@test.example',
    'other.example!alice@test.example',
    'other.example!bob@test.example',
    '@test.example:alice@other.example',
    '@test.example,@mail.test.example:alice@other.example',
    '@other.example:alice@test.example.other.example',
    '"alice@other.example"@test.example',
    '"bob@other.example"@test.example',
    '"alice%other.example"@test.example',
    '"alice"@other.example',
    'alice@other.example@test.example',
    'alice@test.example@other.example',
    'alice%other.example',
    'other.example!alice',
    'alice@other.example',
    'ALICE@OTHER.EXAMPLE',
    'alice@test.example.other.example',
    'alice@other.example.',
    'alice@[192.0.2.1]',
    'alice@[IPv6:2001:db8::1]',
]


class RelayDenied(SmtpCase):
    """noauthhosts = [] : 127.0.0.1 may not relay without AUTH."""

    def test_nonlocal_domain_554(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        r = c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')
        self.assertIn('Relay access denied', r.text)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')

    def test_local_sender_does_not_open_relay(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        c.expect('MAIL FROM:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')

    def test_tricks_never_relay(self):
        inst = self.smtp_instance(noauthhosts=[])
        # Each refusal counts as an error (10 end the session): a few
        # tricks per session, the last session goes on to DATA.
        chunks = [TRICKS[i:i + 5] for i in range(0, len(TRICKS), 5)]
        for chunk in chunks:
            c = self.session(inst)
            c.expect('MAIL FROM:<carol@sender.example>', 250)
            for addr in chunk:
                with self.subTest(rcpt=addr):
                    r = c.cmd('RCPT TO:<%s>' % addr)
                    self.assertEqual(r.code // 100, 5, r)
        # The transaction still works for a real local user, and what is
        # queued names no other domain.
        c.expect('RCPT TO:<alice@test.example>', 250)
        r = c.data(make_message('with tricks'))
        self.assertEqual(r.code, 250, r)
        c.expect('QUIT', 221)
        wait_mail(inst, 'alice', 1, settle=1.0)
        self.assert_nothing_for_other_domains(inst)

    def assert_nothing_for_other_domains(self, inst):
        hits = []
        for d, _, files in os.walk(inst.spooldir):
            for n in files:
                p = os.path.join(d, n)
                try:
                    with open(p, 'rb') as f:
                        data = f.read()
                except OSError:
                    continue
                if b'other.example' in data or b'192.0.2.1' in data:
                    hits.append(p)
        self.assertEqual(hits, [], 'the spool holds mail for another domain')
        r = inst.adm('queue')
        self.assertNotIn('other.example', r.stdout)
        queued = [l for l in inst.log().splitlines()
                  if 'result=queued' in l and 'other.example' in l]
        self.assertEqual(queued, [])

    def test_tricks_do_not_reach_local_users_either(self):
        # None of the trick addresses may have been delivered to alice or
        # bob as if the local part were theirs: they were all refused.
        inst = self.smtp_instance(noauthhosts=[])
        for i, addr in enumerate(TRICKS):
            if i % 4 == 0:      # two errors per trick; 10 end a session
                c = self.session(inst)
            c.expect('MAIL FROM:<carol@sender.example>', 250)
            r = c.cmd('RCPT TO:<%s>' % addr)
            self.assertEqual(r.code // 100, 5, '%s: %r' % (addr, r))
            r = c.cmd('DATA')
            self.assertEqual(r.code, 503, r)
            c.expect('RSET', 250)
        self.marker(inst, 'alice')      # alice holds the marker only
        self.assertEqual(inst.maildir_files('bob'), [])
        self.assert_nothing_for_other_domains(inst)

    def test_auth_allows_relay(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')
        c.expect('RSET', 250)
        r = c.auth_plain('alice', 'alicepw')
        self.assertEqual(r.code, 235, r)
        c.expect('MAIL FROM:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 250)
        c.expect('RCPT TO:<carol@another.example>', 250)
        c.expect('RSET', 250)

    def test_failed_auth_does_not_allow_relay(self):
        inst = self.smtp_instance(noauthhosts=[])
        c = self.session(inst)
        r = c.auth_plain('alice', 'wrong')
        self.assertEqual(r.code, 535, r)
        c.expect('MAIL FROM:<alice@test.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')

    def test_other_session_auth_does_not_leak(self):
        inst = self.smtp_instance(noauthhosts=[])
        a = self.session(inst)
        r = a.auth_plain('alice', 'alicepw')
        self.assertEqual(r.code, 235, r)
        b = self.session(inst)
        b.expect('MAIL FROM:<carol@sender.example>', 250)
        b.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')


class RelayNoauthhosts(SmtpCase):

    def test_default_noauthhosts_loopback_relays(self):
        inst = self.smtp_instance()     # default: 127.0.0.1, ::1
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 250)
        c.expect('RSET', 250)

    def test_noauthhosts_single_address(self):
        inst = self.smtp_instance(noauthhosts=['127.0.0.2'])
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 554, '5.7.1')
        c = self.session(inst, source='127.0.0.2')
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<bob@other.example>', 250)
        c.expect('RSET', 250)

    def test_noauthhosts_cidr(self):
        inst = self.smtp_instance(noauthhosts=['127.0.0.0/30'])
        for src, code in (('127.0.0.2', 250), ('127.0.0.3', 250),
                          ('127.0.0.4', 554), ('127.0.0.5', 554),
                          ('127.1.0.2', 554)):
            with self.subTest(source=src):
                c = self.session(inst, source=src)
                c.expect('MAIL FROM:<carol@sender.example>', 250)
                c.expect('RCPT TO:<bob@other.example>', code)
                c.expect('QUIT', 221)
                c.close()

    def test_noauthhosts_client_still_gets_local_checks(self):
        inst = self.smtp_instance()
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<nobody@test.example>', 550, '5.1.1')
        r = c.cmd('RCPT TO:<alice%other.example@test.example>')
        self.assertEqual(r.code // 100, 5, r)
