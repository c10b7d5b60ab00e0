"""Mail from one pymaild to another, both ends ours, with everything a
receiving server checks: the sender (a.example) signs with DKIM and
publishes SPF and DMARC p=reject; the receiver (b.example, checking mail
from every client) delivers it with dkim=pass, spf=pass and dmarc=pass
in its Authentication-Results field. The same message sent by a host
SPF does not name, and without the signature, is refused by DMARC.

    /usr/bin/python3 regress/run.py regress/auth/test_auth_two.py
"""

import os
import re
import shutil
import tempfile

from lib.tlsutil import TlsCase, pmtest
from lib.dnsfixture import DNSServer, txt_rdata
from lib.smtputil import make_message, wait_mail
from lib.oututil import submit, wait_queue_empty, log_lines
from test_dkim_sign import make_key, key_record


class TwoServers(TlsCase):

    def setUp(self):
        super().setUp()
        self.keydir = tempfile.mkdtemp(prefix='pmauth2-', dir=pmtest.TMPBASE)
        self.addCleanup(shutil.rmtree, self.keydir, True)
        self.key = make_key(os.path.join(self.keydir, 'a.key'), 'rsa')
        self.dns_port = pmtest.free_udp_port()

    def serve(self, b, spf_ip):
        records = [
            ('b.example.', 300, 'MX', '10 mx.b.example.'),
            ('mx.b.example.', 300, 'A', '127.0.0.1'),
            ('a.example.', 300, 'TXT',
             txt_rdata([b'v=spf1 ip4:%s -all' % spf_ip.encode()])),
            ('s1._domainkey.a.example.', 300, 'TXT',
             txt_rdata([key_record(self.key)])),
            ('_dmarc.a.example.', 300, 'TXT',
             txt_rdata([b'v=DMARC1; p=reject'])),
        ]
        dns = DNSServer(self.dns_port, records=records)
        self.addCleanup(dns.cleanup)
        dns.start()

    def servers(self, sign=True, spf_ip='127.0.0.1'):
        resolver = '127.0.0.1:%d' % self.dns_port
        b = self.smtp_instance(start=False, localdomains=['b.example'],
                               serverhostname='mx.b.example',
                               authchecks=True, noauthhosts=[],
                               resolver=resolver)
        b.start()
        b.wait_port()
        a = self.smtp_instance(start=False, localdomains=['a.example'],
                               serverhostname='mx.a.example',
                               outboundport=b.smtp_port, resolver=resolver,
                               retrymin=3600, retrymax=3600)
        if sign:
            a.write_config(extra='dkim = ( { domain = "a.example"; '
                           'selector = "s1"; key = "%s"; } );' % self.key)
        a.start()
        a.wait_port()
        self.serve(b, spf_ip)
        return a, b

    def test_dkim_spf_dmarc_pass(self):
        a, b = self.servers()
        msg = make_message('between us', sender='alice@a.example',
                           to='bob@b.example')
        qid = submit(a, 'alice@a.example', ['bob@b.example'], msg)
        data = wait_mail(b, 'bob', 1)[0][1]
        wait_queue_empty(a)
        self.assertTrue(log_lines(a, qid, 'result=sent'), a.log_tail())
        m = re.search(rb'^Authentication-Results: mx.b.example;(.*?)\n'
                      rb'(?![ \t])', data, re.M | re.S)
        self.assertIsNotNone(m, data[:900])
        v = re.sub(rb'\s+', b' ', m.group(1)).decode()
        self.assertRegex(v, r'spf=pass .*smtp.mailfrom=alice@a.example')
        self.assertIn('dkim=pass header.d=a.example header.s=s1', v)
        self.assertIn('dmarc=pass reason="p=reject dis=none" '
                      'header.from=a.example', v)

    def test_unsigned_from_elsewhere_refused(self):
        # SPF names another host and nothing is signed: DMARC fails
        # under p=reject, the receiver says 550, the mail bounces.
        a, b = self.servers(sign=False, spf_ip='127.0.0.9')
        msg = make_message('not from here', sender='alice@a.example',
                           to='bob@b.example')
        qid = submit(a, 'alice@a.example', ['bob@b.example'], msg)
        self.assertTrue(pmtest.wait_for(
            lambda: 'result=rejected-dmarc' in b.log(), 20), b.log_tail())
        self.assertTrue(pmtest.wait_for(
            lambda: log_lines(a, qid, '550'), 20), a.log_tail())
        self.assertEqual(pmtest.maildir_files(b.maildir, 'bob'), [])
