"""DKIM and DMARC of mail received on the SMTP port, as smtpd checks them
(RFC 6376, RFC 7489) with keys and policies from a real test DNS server
through mxcache, and their verdicts in our Authentication-Results field
beside SPF's:

- a message signed by dkimpy for its From: domain: dkim=pass and
  dmarc=pass although SPF fails (DKIM aligns);
- the same domain unsigned, SPF failing, under p=reject: 550 5.7.1 at
  the end of DATA, nothing delivered, logged rejected-dmarc; with
  `dmarcreject = false` delivered, marked dmarc=fail;
- a signed message changed on the way: dkim=fail, and refused likewise;
- p=quarantine: delivered, marked (dis=quarantine);
- a domain without a policy: dmarc=none;
- our own verdict cannot be forged: a field in our name in the message
  is gone, ours is there once;
- a From: field a reader shows but a naive check would skip (a comma in a
  quoted name, two From: fields, authors of two domains, a From: behind
  a thousand fields) cannot step around p=reject.

    /usr/bin/python3 regress/run.py regress/auth/test_authcheck_smtp.py
"""

import shutil
import tempfile

from lib.tlsutil import TlsCase, pmtest
from lib.dnsfixture import DNSServer, txt_rdata
from lib import authutil
from test_dkim_verify import Key

try:
    import dkim
except ImportError:             # make deps installs python3-dkim
    dkim = None

ID = authutil.AUTHSERV_ID


def message(frm, subject, extra=b''):
    return (b'From: <%s>\r\nTo: <alice@test.example>\r\nSubject: %s\r\n'
            b'Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n'
            b'Message-ID: <%s@x.test>\r\n%s\r\nhello\r\n' %
            (frm.encode(), subject.encode(), subject.encode().replace(
                b' ', b'.'), extra))


class AuthChecks(TlsCase):

    @classmethod
    def setUpClass(cls):
        if dkim is None:
            raise pmtest.MissingBinary('no dkimpy: apt-get install '
                                       'python3-dkim')
        cls.tmp = tempfile.mkdtemp(prefix='pmauth-', dir=pmtest.TMPBASE)
        cls.key = Key(cls.tmp, 'rsa', 2048)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def checked_instance(self, **cfg):
        conf = dict(authchecks=True, noauthhosts=['127.0.0.1'])
        conf.update(cfg)
        inst = self.smtp_instance(start=False, **conf)
        records = []
        for dom, policy in (('rj.test', 'p=reject'),
                            ('qt.test', 'p=quarantine'),
                            ('nopol.test', None)):
            records.append((dom + '.', 300, 'TXT',
                            txt_rdata([b'v=spf1 -all'])))
            records.append(('s1._domainkey.%s.' % dom, 300, 'TXT',
                            txt_rdata([self.key.record])))
            if policy:
                records.append(('_dmarc.%s.' % dom, 300, 'TXT',
                                txt_rdata([b'v=DMARC1; ' +
                                           policy.encode()])))
        dns = DNSServer(inst.resolver_port, records=records)
        self.addCleanup(dns.cleanup)
        dns.start()
        inst.start()
        inst.wait_port()
        return inst

    def sign(self, msg, domain):
        return dkim.sign(msg, b's1', domain.encode(), self.key.private,
                         include_headers=[b'from', b'to', b'subject',
                                          b'date', b'message-id']) + msg

    def send(self, inst, sender, msg):
        return authutil.send(inst, sender, msg)

    def delivered(self, inst, n=1):
        return authutil.last_delivered(inst, n)

    def verdicts(self, data):
        """Our field, unfolded."""
        v = authutil.verdicts(data)
        self.assertIsNotNone(v, data[:800])
        return v

    def test_signed_passes_dkim_and_dmarc(self):
        inst = self.checked_instance()
        code, _ = self.send(inst, 'a@rj.test',
                            self.sign(message('a@rj.test', 'signed'),
                                      'rj.test'))
        self.assertEqual(code, 250)
        v = self.verdicts(self.delivered(inst))
        self.assertIn('spf=fail', v)
        self.assertRegex(v, r'dkim=pass header.d=rj.test header.s=s1 '
                         r'header.b=\S{8}')
        self.assertIn('dmarc=pass reason="p=reject dis=none" '
                      'header.from=rj.test', v)

    def test_unsigned_failing_refused_under_reject(self):
        inst = self.checked_instance()
        code, text = self.send(inst, 'a@rj.test',
                               message('a@rj.test', 'unsigned'))
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith(b'5.7.1'), text)
        self.assertIn('result=rejected-dmarc', inst.log())
        self.assertEqual(pmtest.maildir_files(inst.maildir, 'alice'), [])

    def test_reject_not_honoured_when_off(self):
        inst = self.checked_instance(dmarcreject=False)
        code, _ = self.send(inst, 'a@rj.test',
                            message('a@rj.test', 'unsigned'))
        self.assertEqual(code, 250)
        v = self.verdicts(self.delivered(inst))
        self.assertIn('dkim=none', v)
        self.assertIn('dmarc=fail reason="p=reject dis=reject"', v)

    def test_changed_on_the_way_fails(self):
        inst = self.checked_instance()
        signed = self.sign(message('a@rj.test', 'changed'), 'rj.test')
        code, text = self.send(inst, 'a@rj.test',
                               signed.replace(b'hello', b'HELLO'))
        self.assertEqual(code, 550, text)
        inst2 = self.checked_instance(dmarcreject=False)
        self.send(inst2, 'a@rj.test', signed.replace(b'hello', b'HELLO'))
        v = self.verdicts(self.delivered(inst2))
        self.assertRegex(v, r'dkim=fail reason="[^"]+" header.d=rj.test')

    def test_quarantine_marks_only(self):
        inst = self.checked_instance()
        code, _ = self.send(inst, 'a@qt.test',
                            message('a@qt.test', 'quarantined'))
        self.assertEqual(code, 250)
        v = self.verdicts(self.delivered(inst))
        self.assertIn('dmarc=fail reason="p=quarantine dis=quarantine"',
                      v)

    def test_no_policy_is_none(self):
        inst = self.checked_instance()
        self.send(inst, 'a@nopol.test', message('a@nopol.test', 'nopol'))
        v = self.verdicts(self.delivered(inst))
        self.assertIn('dmarc=none header.from=nopol.test', v)

    def test_forged_verdict_removed(self):
        inst = self.checked_instance()
        forged = b'Authentication-Results: %s; dkim=pass dmarc=pass\r\n' % \
            ID.encode()
        other = b'Authentication-Results: other.example; spf=pass\r\n'
        msg = self.sign(message('a@rj.test', 'forged'), 'rj.test')
        self.send(inst, 'a@rj.test', forged + other + msg)
        data = self.delivered(inst)
        self.assertEqual(data.count(b'Authentication-Results: ' +
                                    ID.encode()), 1)
        self.assertIn(other.rstrip(b'\r\n'), data)
        self.assertNotIn(b'dkim=pass dmarc=pass', data)

    def unsigned_from(self, from_lines, subject, before=b''):
        """A message with these From: lines (or none), unsigned."""
        return (before + from_lines + b'To: <alice@test.example>\r\n'
                b'Subject: %s\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n'
                b'Message-ID: <%s@x.test>\r\n\r\nhello\r\n'
                % (subject.encode(), subject.encode().replace(b' ', b'.')))

    def test_from_tricks_cannot_step_around_reject(self):
        inst = self.checked_instance()
        filler = b''.join(b'X-Filler-%04d: x\r\n' % i for i in range(1200))
        cases = [
            # (From: lines, before them, the refusal's log word)
            (b'From: "Doe, John" <a@rj.test>\r\n', b'', 'rejected-dmarc'),
            (b'From: (a, comment) a@rj.test\r\n', b'', 'rejected-dmarc'),
            (b'From: <a@rj.test>\r\n', filler, 'rejected-dmarc'),
            (b'From: <a@nopol.test>\r\nFrom: <a@rj.test>\r\n', b'',
             'rejected-from'),
            (b'From: <a@nopol.test>, <a@rj.test>\r\n', b'',
             'rejected-from'),
            (b'From: undisclosed:;\r\n', b'', 'rejected-from'),
        ]
        for i, (lines, before, word) in enumerate(cases):
            with self.subTest(from_lines=lines, filler=bool(before)):
                n = inst.log().count('result=%s' % word)
                code, text = self.send(inst, 'a@rj.test', self.unsigned_from(
                    lines, 'trick %d' % i, before))
                self.assertEqual(code, 550, text)
                self.assertTrue(text.startswith(b'5.7.1'), text)
                self.assertEqual(inst.log().count('result=%s' % word), n + 1,
                                 inst.log_tail(5))
        self.assertEqual(pmtest.maildir_files(inst.maildir, 'alice'), [])

    def test_no_from_is_marked_not_refused(self):
        inst = self.checked_instance()
        code, _ = self.send(inst, 'a@rj.test',
                            self.unsigned_from(b'', 'no from'))
        self.assertEqual(code, 250)
        v = self.verdicts(self.delivered(inst))
        self.assertIn('dmarc=none reason="it has no From: field"', v)

    def test_two_from_fields_marked_when_reject_is_off(self):
        inst = self.checked_instance(dmarcreject=False)
        code, _ = self.send(inst, 'a@rj.test', self.unsigned_from(
            b'From: <a@nopol.test>\r\nFrom: <a@rj.test>\r\n', 'two'))
        self.assertEqual(code, 250)
        v = self.verdicts(self.delivered(inst))
        self.assertIn('dmarc=none reason="it has more than one From: field"',
                      v)

    def test_utf8_from_domain_is_marked_not_refused(self):
        inst = self.checked_instance()
        code, _ = self.send(inst, 'a@rj.test', self.unsigned_from(
            'From: <a@bücher.test>\r\n'.encode(), 'utf8 from'))
        self.assertEqual(code, 250)
        v = self.verdicts(self.delivered(inst))
        self.assertIn('dmarc=none reason="its From: domain is in UTF-8, '
                      'which is not checked"', v)
