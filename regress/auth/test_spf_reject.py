"""`spfreject`: with it on, a message whose SPF result is `fail` is
refused at the end of DATA with 550 5.7.23 (RFC 7372) naming the domain,
logged result=rejected-spf and counted in `pymailadm stats`; the
domain's own explanation (exp=, text from DNS) is not repeated to the
client. softfail, neutral, none and permerror never refuse (temperror
is covered under hostile DNS, test_authcheck_hostile_dns.py). Off by
default: a fail is then delivered, marked.

    /usr/bin/python3 regress/run.py regress/auth/test_spf_reject.py
"""

import json
import os
import smtplib

from lib.tlsutil import TlsCase, pmtest
from lib.smtputil import make_message
from lib.dnsfixture import DNSServer

CLIENT = '127.0.0.2'            # not in noauthhosts (which is 127.0.0.1)
ZONE = """\
$ORIGIN test.
$TTL 300
pass.test.     TXT "v=spf1 ip4:127.0.0.2 -all"
fail.test.     TXT "v=spf1 -all exp=why.fail.test"
why.fail.test. TXT "EVIL-TEXT from the domain for %{i}"
soft.test.     TXT "v=spf1 ~all"
neutral.test.  TXT "v=spf1 ?all"
bad.test.      TXT "v=spf1 ip4:999.1.1.1 -all"
nospf.test.    A 127.0.0.9
"""


class SpfReject(TlsCase):

    def spf_instance(self, **cfg):
        conf = dict(authchecks=True, noauthhosts=['127.0.0.1'])
        conf.update(cfg)
        inst = self.smtp_instance(start=False, **conf)
        dns = DNSServer(inst.resolver_port, ZONE)
        self.addCleanup(dns.cleanup)
        dns.start()
        inst.start()
        inst.wait_port()
        return inst

    def send(self, inst, sender):
        """The reply to the end of DATA: (code, text)."""
        s = smtplib.SMTP(timeout=30, source_address=(CLIENT, 0))
        try:
            s.connect('127.0.0.1', inst.smtp_port)
            s.ehlo('client.example')
            code, text = s.mail(sender)
            self.assertEqual(code, 250, text)
            code, text = s.rcpt('alice@test.example')
            self.assertEqual(code, 250, text)
            return s.data(make_message('spf of %s' % sender))
        finally:
            s.close()

    def refusals(self, inst):
        r = inst.adm('stats', '--json')
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout).get('smtp_refusals_total', {})

    def test_fail_refused(self):
        inst = self.spf_instance(spfreject=True)
        code, text = self.send(inst, 'a@fail.test')
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith(b'5.7.23 '), text)
        self.assertIn(b'fail.test', text)
        self.assertIn(b'127.0.0.2', text)
        self.assertNotIn(b'EVIL', text)
        log = inst.log()
        self.assertRegex(log, r'smtp-in session=\S+ client=127.0.0.2 '
                         r'from=<a@fail.test> .*result=rejected-spf .*'
                         r'spf=fail reason="550 5.7.23 ')
        self.assertEqual(self.refusals(inst).get('rejected-spf'), 1)
        self.assertEqual(pmtest.maildir_files(inst.maildir, 'alice'), [])

    def test_other_results_never_refuse(self):
        inst = self.spf_instance(spfreject=True)
        for sender in ('a@pass.test', 'a@soft.test', 'a@neutral.test',
                       'a@bad.test', 'a@nospf.test', 'a@nowhere.test'):
            with self.subTest(sender=sender):
                code, text = self.send(inst, sender)
                self.assertEqual(code, 250, text)
        self.assertEqual(self.refusals(inst).get('rejected-spf'), 0)

    def test_off_by_default(self):
        inst = self.spf_instance()
        code, text = self.send(inst, 'a@fail.test')
        self.assertEqual(code, 250, text)
        self.assertTrue(pmtest.wait_for(
            lambda: len(pmtest.maildir_files(inst.maildir, 'alice')) == 1,
            10))
        with open(pmtest.maildir_files(inst.maildir, 'alice')[0],
                  'rb') as f:
            self.assertIn(b'spf=fail', f.read())


if __name__ == '__main__':
    pmtest.main()
