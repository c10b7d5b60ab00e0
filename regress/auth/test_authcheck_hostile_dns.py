"""smtpd's SPF, DKIM and DMARC checks under hostile DNS: answers past
mxcache's bounds, CNAME and include loops, a server that never answers
and a DNS process that does not answer at all. Whatever DNS does, the
message gets its 250 (with `spfreject` and `dmarcreject` both on, so a
DNS failure taken for a verdict would show as a 5xx), our
Authentication-Results field says temperror or permerror (or none where
DNS said there is nothing), smtpd and mxcache still run, a loop costs a
bounded number of queries, and `pymailadm stats` counts the messages
accepted and no refusal.

    /usr/bin/python3 regress/run.py regress/auth/test_authcheck_hostile_dns.py
"""

import json
import os
import re
import shutil
import signal
import smtplib
import tempfile
import time

from lib.tlsutil import TlsCase, pmtest
from lib.dnsfixture import DNSServer, txt_rdata
from lib import authutil
from test_dkim_verify import Key

try:
    import dkim
except ImportError:             # make deps installs python3-dkim
    dkim = None

CLIENT = authutil.CLIENT
CHECK_WAIT_MAX = 15             # smtpd's cap on the checks (seconds)
LOOPED = ('loop.test.', 's1._domainkey.loop.test.', '_dmarc.loop.test.')


def loop_entries():
    """ldns-testns entries answering a TXT question for each LOOPED
    name with a CNAME pair that points back at itself, the whole loop in
    the one answer (a resolver that passes loops on)."""
    out = []
    for name in LOOPED:
        other = 'x.' + name
        out.append('\n'.join([
            'ENTRY_BEGIN', 'MATCH opcode qtype qname',
            'REPLY QR AA NOERROR', 'ADJUST copy_id', 'SECTION QUESTION',
            '%s IN TXT' % name, 'SECTION ANSWER',
            '%s 300 IN CNAME %s' % (name, other),
            '%s 300 IN CNAME %s' % (other, name), 'ENTRY_END']) + '\n')
    return ''.join(out)


def message(frm, subject):
    return (b'From: <%s>\r\nTo: <alice@test.example>\r\nSubject: %s\r\n'
            b'Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n'
            b'Message-ID: <%s@x.test>\r\n\r\nhello\r\n' %
            (frm.encode(), subject.encode(), subject.encode()))


class HostileDNS(TlsCase):

    @classmethod
    def setUpClass(cls):
        if dkim is None:
            raise pmtest.MissingBinary('no dkimpy: apt-get install '
                                       'python3-dkim')
        cls.tmp = tempfile.mkdtemp(prefix='pmhostile-', dir=pmtest.TMPBASE)
        cls.key = Key(cls.tmp, 'rsa', 2048)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def records(self):
        big = b'v=spf1 ' + b' '.join(b'ip4:10.%d.%d.0/24' % (i // 250,
                                                              i % 250)
                                     for i in range(300)) + b' -all'
        return [
            # (a) past mxcache's bounds: one record of some 5,000
            # octets, 40 key records, a policy of 20 strings of 255
            ('huge.test.', 300, 'TXT', txt_rdata([big])),
            ('_dmarc.huge.test.', 300, 'TXT',
             txt_rdata([b'v=DMARC1; p=reject; rua=mailto:' +
                        b'a' * 5000])),
        ] + [('s1._domainkey.huge.test.', 300, 'TXT',
              txt_rdata([self.key.record + b'; n=%d' % i]))
             for i in range(40)] + [
            # an include that includes itself
            ('incloop.test.', 300, 'TXT',
             txt_rdata([b'v=spf1 include:incloop.test -all'])),
            ('s1._domainkey.incloop.test.', 300, 'TXT',
             txt_rdata([self.key.record])),
            ('_dmarc.incloop.test.', 300, 'TXT',
             txt_rdata([b'v=DMARC1; p=reject'])),
        ]

    def checked_instance(self, **cfg):
        conf = dict(authchecks=True, noauthhosts=['127.0.0.1'],
                    spfreject=True, dmarcreject=True)
        conf.update(cfg)
        inst = self.smtp_instance(start=False, **conf)
        dns = DNSServer(inst.resolver_port, records=self.records(),
                        timeout=['slow.test', 's1._domainkey.slow.test',
                                 '_dmarc.slow.test'])
        with open(dns.path) as f:
            data = f.read()
        with open(dns.path, 'w') as f:
            f.write(loop_entries() + data)
        self.addCleanup(dns.cleanup)
        dns.start()
        inst.start()
        inst.wait_port()
        return inst

    def sign(self, msg, domain):
        return dkim.sign(msg, b's1', domain.encode(), self.key.private,
                         include_headers=[b'from', b'to', b'subject',
                                          b'date', b'message-id']) + msg

    def send(self, inst, domain, subject):
        """Send a message from a@domain signed by domain: the reply to
        its end of DATA and the seconds it took."""
        msg = self.sign(message('a@' + domain, subject), domain)
        s = smtplib.SMTP(timeout=60, source_address=(CLIENT, 0))
        try:
            s.connect('127.0.0.1', inst.smtp_port)
            s.ehlo('client.example')
            s.mail('a@' + domain)
            code, text = s.rcpt('alice@test.example')
            self.assertEqual(code, 250, text)
            t = time.monotonic()
            code, text = s.data(msg)
            return code, text, time.monotonic() - t
        finally:
            s.close()

    def verdicts(self, inst, subject):
        """Our field of the delivered message with that subject."""
        found = {}

        def there():
            for p in pmtest.maildir_files(inst.maildir, 'alice'):
                with open(p, 'rb') as f:
                    data = f.read()
                if re.search(rb'^Subject: %s\r?$' % subject.encode(),
                             data, re.M):
                    found['data'] = data
                    return True
            return False
        self.assertTrue(pmtest.wait_for(there, 10), inst.log_tail())
        v = authutil.verdicts(found['data'])
        self.assertIsNotNone(v, found['data'][:800])
        return v

    def stats(self, inst):
        r = inst.adm('stats', '--json')
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def assert_still_running(self, inst, roles):
        for role in ('smtpd', 'mxcache'):
            self.assertTrue(pmtest.pid_alive(roles[role]),
                            '%s is gone' % role)
        self.assertEqual(inst.wait_roles(), roles)

    def assert_counted(self, inst, accepted):
        st = self.stats(inst)
        self.assertEqual(st['smtp_messages_accepted_total'], accepted)
        refusals = st['smtp_refusals_total']
        for why in ('rejected-spf', 'rejected-dmarc', 'other'):
            self.assertEqual(refusals.get(why), 0, refusals)

    def queries(self, inst, qname):
        """mxcache's lookups of qname (TXT), as its log lines say."""
        return len(re.findall(r'dns qname=%s qtype=TXT ' % re.escape(qname),
                              inst.log()))

    def test_answers_past_bounds(self):
        inst = self.checked_instance()
        roles = inst.wait_roles()
        code, text, _ = self.send(inst, 'huge.test', 'huge')
        self.assertEqual(code, 250, text)
        v = self.verdicts(inst, 'huge')
        # too large to be used, and asking again would not help
        self.assertRegex(v, r'spf=(temperror|permerror) ')
        self.assertRegex(v, r'dkim=permerror reason="[^"]*too large[^"]*"'
                         r' header.d=huge.test')
        self.assertRegex(v, r'dmarc=(temperror|permerror) ')
        self.assert_still_running(inst, roles)
        self.assert_counted(inst, 1)

    def test_loops(self):
        inst = self.checked_instance()
        roles = inst.wait_roles()
        code, text, _ = self.send(inst, 'loop.test', 'loop')
        self.assertEqual(code, 250, text)
        v = self.verdicts(inst, 'loop')
        # a CNAME loop leads to no record: no SPF record, no key, no
        # policy (never a pass)
        self.assertRegex(v, r'spf=(none|temperror|permerror) ')
        self.assertRegex(v, r'dkim=permerror reason="no key" '
                         r'header.d=loop.test')
        self.assertRegex(v, r'dmarc=(none|temperror|permerror) ')
        code, text, _ = self.send(inst, 'incloop.test', 'incloop')
        self.assertEqual(code, 250, text)
        v = self.verdicts(inst, 'incloop')
        self.assertRegex(v, r'spf=permerror ')
        self.assertIn('dkim=pass', v)
        self.assertIn('dmarc=pass', v)
        # one lookup each, however often the loop came round; the
        # CNAMEs are followed inside the answer, never asked
        for name, n in (('loop.test', 1), ('x.loop.test', 0),
                        ('incloop.test', 1)):
            self.assertEqual(self.queries(inst, name), n, name)
        self.assert_still_running(inst, roles)
        self.assert_counted(inst, 2)

    def test_server_never_answers(self):
        inst = self.checked_instance()
        roles = inst.wait_roles()
        code, text, took = self.send(inst, 'slow.test', 'slow')
        self.assertEqual(code, 250, text)
        self.assertLess(took, CHECK_WAIT_MAX + 5)
        v = self.verdicts(inst, 'slow')
        self.assertRegex(v, r'spf=temperror ')
        self.assertRegex(v, r'dkim=temperror .*header.d=slow.test')
        self.assertRegex(v, r'dmarc=temperror ')
        self.assert_still_running(inst, roles)
        self.assert_counted(inst, 1)

    def test_dns_process_silent(self):
        """mxcache stopped: the checks give up at smtpd's cap."""
        inst = self.checked_instance()
        roles = inst.wait_roles()
        os.kill(roles['mxcache'], signal.SIGSTOP)
        self.addCleanup(os.kill, roles['mxcache'], signal.SIGCONT)
        try:
            code, text, took = self.send(inst, 'incloop.test', 'silent')
        finally:
            os.kill(roles['mxcache'], signal.SIGCONT)
        self.assertEqual(code, 250, text)
        self.assertGreater(took, CHECK_WAIT_MAX - 3)
        self.assertLess(took, CHECK_WAIT_MAX + 5)
        v = self.verdicts(inst, 'silent')
        self.assertRegex(v, r'spf=temperror ')
        self.assertRegex(v, r'dkim=temperror .*header.d=incloop.test')
        self.assertRegex(v, r'dmarc=temperror ')
        self.assertRegex(inst.log(), r'spf=timeout')
        self.assertRegex(inst.log(), r'dkim=timeout')
        self.assert_still_running(inst, roles)
        self.assert_counted(inst, 1)


if __name__ == '__main__':
    pmtest.main()
