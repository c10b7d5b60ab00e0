"""SPF of mail received on the SMTP port (RFC 7208), evaluated by smtpd
with its questions answered through mxcache by a real test DNS server:
the message's log line says spf=pass / fail / softfail / neutral / none
/ temperror / permerror; the null sender is checked by its HELO name; a
DNS server that says nothing costs temperror and the mail is still
taken; submission, noauthhosts and authenticated clients are not
checked; `authchecks = false` turns it off.  (An SPF fail alone never
refuses mail: it only marks it.)

    /usr/bin/python3 regress/run.py regress/auth/test_spf_smtp.py
"""

import os
import re

from lib.tlsutil import TlsCase, pmtest
from lib.smtputil import make_message, smtp_session, USERS
from lib.dnsfixture import DNSServer

CLIENT = '127.0.0.2'            # not in noauthhosts (which is 127.0.0.1)
ZONE = """\
$ORIGIN test.
$TTL 300
pass.test.     TXT "v=spf1 ip4:127.0.0.2 -all"
fail.test.     TXT "v=spf1 -all"
soft.test.     TXT "v=spf1 ~all"
neutral.test.  TXT "v=spf1 ?all"
inc.test.      TXT "v=spf1 include:pass.test -all"
mx.test.       TXT "v=spf1 mx -all"
mx.test.       MX 10 mail.mx.test.
mail.mx.test.  A 127.0.0.2
bad.test.      TXT "v=spf1 ip4:999.1.1.1 -all"
helo.test.     TXT "v=spf1 a -all"
helo.test.     A 127.0.0.2
nospf.test.    A 127.0.0.9
"""


class SpfSmtp(TlsCase):

    def spf_instance(self, zone=ZONE, slow=(), **cfg):
        conf = dict(authchecks=True, noauthhosts=['127.0.0.1'])
        conf.update(cfg)
        inst = self.smtp_instance(start=False, **conf)
        if zone is not None:
            dns = DNSServer(inst.resolver_port, zone,
                            **({'timeout': list(slow)} if slow else {}))
            self.addCleanup(dns.cleanup)
            dns.start()
        inst.start()
        inst.wait_port()
        return inst

    def send(self, inst, sender, source=CLIENT, helo='client.example',
             port=None, login=None):
        s = smtp_session(inst, helo=helo, source=source) if port is None \
            else self.connect(port, source)
        try:
            s.ehlo(helo)
            if login:
                s.starttls(context=self.context())
                s.ehlo(helo)
                s.login(*login)
            code, text = s.mail(sender)
            self.assertEqual(code, 250, text)
            code, text = s.rcpt('alice@test.example')
            self.assertEqual(code, 250, text)
            code, text = s.data(make_message('spf of %s' % sender))
            self.assertEqual(code, 250, text)
            return re.search(rb'queued as (\w+)', text).group(1).decode()
        finally:
            s.close()

    def connect(self, port, source):
        import smtplib
        s = smtplib.SMTP(timeout=30, source_address=(source, 0))
        s.connect('127.0.0.1', port)
        s._host = 'mail.test.example'   # the name STARTTLS checks
        return s

    def spf_of(self, inst, qid):
        line = ''

        def found():
            nonlocal line
            for ln in inst.log().splitlines():
                if ' id=%s' % qid in ln and 'result=queued' in ln:
                    line = ln
                    return True
            return False
        self.assertTrue(pmtest.wait_for(found, 10), inst.log_tail())
        m = re.search(r' spf=(\w+)', line)
        return m.group(1) if m else None

    def test_results(self):
        inst = self.spf_instance()
        for sender, want in (('a@pass.test', 'pass'),
                             ('a@fail.test', 'fail'),
                             ('a@soft.test', 'softfail'),
                             ('a@neutral.test', 'neutral'),
                             ('a@inc.test', 'pass'),
                             ('a@mx.test', 'pass'),
                             ('a@bad.test', 'permerror'),
                             ('a@nospf.test', 'none'),
                             ('a@nowhere.test', 'none')):
            with self.subTest(sender=sender):
                self.assertEqual(self.spf_of(inst, self.send(inst, sender)),
                                 want)

    def delivered(self, inst, n):
        self.assertTrue(pmtest.wait_for(
            lambda: len(pmtest.maildir_files(inst.maildir, 'alice')) == n,
            10))
        out = []
        for p in sorted(pmtest.maildir_files(inst.maildir, 'alice')):
            with open(p, 'rb') as f:
                out.append(f.read())
        return out

    def test_authentication_results_on_top(self):
        inst = self.spf_instance()
        self.send(inst, 'a@pass.test')
        msg = self.delivered(inst, 1)[0]
        head = msg.split(b'\nReceived: ', 1)[0]
        self.assertRegex(head, rb'^Return-Path: <a@pass.test>\n'
                         rb'Delivered-To: alice@test.example\n'
                         rb'Authentication-Results: mail.test.example;\n'
                         rb'\tspf=pass reason="[^"\n]*"\n?\t? '
                         rb'?smtp.mailfrom=a@pass.test;\n'
                         rb'\tdkim=none;\n'
                         rb'\tdmarc=none header.from=sender.example$')
        self.assertEqual(msg.count(b'Authentication-Results:'), 1)
        # POP3 sees the same octets, with CRLF, and says so in LIST.
        import poplib
        p = poplib.POP3('127.0.0.1', inst.pop3_port, timeout=10)
        p.user('alice')
        p.pass_(USERS['alice'])
        resp, lines, octets = p.retr(1)
        listed = int(p.list(1).split()[2])
        p.quit()
        self.assertEqual(octets, listed)
        self.assertIn(b'Authentication-Results: mail.test.example;', lines)

    def test_no_field_when_not_checked(self):
        inst = self.spf_instance()
        self.send(inst, 'a@fail.test', source='127.0.0.1')
        msg = self.delivered(inst, 1)[0]
        self.assertNotIn(b'Authentication-Results:', msg)

    def test_fail_is_only_marked(self):
        inst = self.spf_instance()
        qid = self.send(inst, 'x@fail.test')
        self.assertEqual(self.spf_of(inst, qid), 'fail')
        self.assertTrue(pmtest.wait_for(
            lambda: len(pmtest.maildir_files(inst.maildir, 'alice')) == 1,
            10))

    def test_null_sender_checked_by_helo(self):
        inst = self.spf_instance()
        qid = self.send(inst, '', helo='helo.test')
        self.assertEqual(self.spf_of(inst, qid), 'pass')
        qid = self.send(inst, '', helo='fail.test')
        self.assertEqual(self.spf_of(inst, qid), 'fail')

    def test_silent_dns_is_temperror_and_mail_taken(self):
        inst = self.spf_instance(zone=None)
        qid = self.send(inst, 'a@pass.test')
        self.assertEqual(self.spf_of(inst, qid), 'temperror')

    def test_slow_answer_waited_for(self):
        # The include's record comes too late for mxcache, which answers
        # tempfail: the 250 waited for the verdict (the queued line has
        # it), and the mail is taken.
        zone = ZONE + 'slow.test. TXT "v=spf1 include:late.test -all"\n' \
            'late.test. TXT "v=spf1 ip4:127.0.0.2 -all"\n'
        inst = self.spf_instance(zone=zone, slow=[('late.test', 'TXT')])
        qid = self.send(inst, 'a@slow.test')
        self.assertEqual(self.spf_of(inst, qid), 'temperror')

    def test_not_checked(self):
        inst = self.spf_instance()
        # a client of noauthhosts
        qid = self.send(inst, 'a@fail.test', source='127.0.0.1')
        self.assertIsNone(self.spf_of(inst, qid))
        # authenticated on the submission port
        inst2 = self.tls_instance(authchecks=True,
                                  noauthhosts=['127.0.0.1'])
        qid = self.send(inst2, 'alice@test.example',
                        port=inst2.submission_port,
                        login=('alice', USERS['alice']))
        self.assertIsNone(self.spf_of(inst2, qid))

    def test_off(self):
        inst = self.spf_instance(authchecks=False)
        qid = self.send(inst, 'a@fail.test')
        self.assertIsNone(self.spf_of(inst, qid))
