"""Two pymaild servers relaying to each other over TLS, both ends ours:
the sending one (a.example) reaches the receiving one (b.example) through
the MX record a test DNS server publishes, or through it as a smarthost.

- by MX, opportunistic: STARTTLS is used, the receiver's Received: line
  says ESMTPS with the version and cipher, both logs say TLS;
- by MX with an authentic TLSA record (DANE-EE) of the receiver's
  certificate: the sender's log says dane=verified;
- by MX with a TLSA record that matches nothing: the mail waits, and the
  receiver never saw a MAIL command;
- as a smarthost on its submission port, smtprelaytls = "verify" against
  the receiver's CA and smtprelayauth: AUTH inside TLS, the receiver
  accepts the submission as that user (ESMTPSA) and delivers it.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_two.py
"""

import os
import re
import tempfile

from lib import tlsutil
from lib.tlsutil import TlsCase, pmtest
from lib.smtputil import (USERS, make_message,
                          wait_mail)
from lib import dnsfixture

from lib.oututil import (lasterror, log_lines, submit,
                         wait_deferred, wait_queue_empty)

MX_HOST = 'mx.b.example'
SENDER = 'alice@a.example'
RCPT = 'bob@b.example'


class TwoServers(TlsCase):

    def receiver(self):
        """b.example, with a certificate of its test CA made out to its
        MX name and to 127.0.0.1 (the smarthost is named by address)."""
        b = self.tls_instance(start=False, localdomains=['b.example'],
                              serverhostname=MX_HOST, ca=True)
        os.chmod(b.dir, 0o755)      # the parent reads as its own account
        tlsutil.make_signed_pair(b.dir, 'ec', 'ec', self.ca, cn=MX_HOST,
                                 san='DNS:%s,IP:127.0.0.1' % MX_HOST)
        b.start()
        b.wait_port()
        return b

    def sender(self, b, **cfg):
        a = self.smtp_instance(start=False, localdomains=['a.example'],
                               serverhostname='mx.a.example',
                               outboundport=b.smtp_port, **cfg)
        a.start()
        a.wait_port()
        return a

    def dns(self, a, b, tlsa=None):
        lines = ['$ORIGIN b.example.', '$TTL 3600',
                 '@ MX 10 %s.' % MX_HOST, '%s. A 127.0.0.1' % MX_HOST]
        authentic = ()
        if tlsa:
            lines.append('_%d._tcp.%s. TLSA %s' % (b.smtp_port, MX_HOST,
                                                   tlsa))
            authentic = ['b.example', MX_HOST,
                         '_%d._tcp.%s' % (b.smtp_port, MX_HOST)]
        srv = dnsfixture.DNSServer(a.resolver_port, '\n'.join(lines) + '\n',
                                   authentic=authentic)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def arrived(self, a, b, subject, qid):
        got = wait_mail(b, 'bob', 1)
        data = got[0][1]
        self.assertIn(subject.encode(), data)
        wait_queue_empty(a)
        self.assertTrue(log_lines(a, qid, 'result=sent', 'tls=TLSv1.'),
                        a.log_tail(30))
        return data

    def received_by_b(self, data):
        """The Received: field the receiver added (the first one)."""
        m = re.search(rb'^Received: (.*?)\r?\n(?! )(?!\t)', data,
                      re.M | re.S)
        self.assertIsNotNone(m, data[:600])
        return m.group(1).decode('utf-8', 'replace')

    def test_by_mx_opportunistic(self):
        b = self.receiver()
        a = self.sender(b)
        self.dns(a, b)
        msg = make_message('MX over TLS', sender=SENDER, to=RCPT)
        qid = submit(a, SENDER, [RCPT], msg)
        data = self.arrived(a, b, 'MX over TLS', qid)
        received = self.received_by_b(data)
        self.assertIn('mx.a.example', received)
        self.assertRegex(received, r'with ESMTPS\b')
        self.assertRegex(received, r'TLSv1\.[23]')
        self.assertRegex(b.log(), r'tls=TLSv1\.[23]')

    def test_by_mx_dane_verified(self):
        b = self.receiver()
        a = self.sender(b)
        cert, _ = self.pairs['ec']
        self.dns(a, b, tlsa='3 1 1 ' + dnsfixture.tlsa_hash(cert, 1))
        msg = make_message('DANE between us', sender=SENDER, to=RCPT)
        qid = submit(a, SENDER, [RCPT], msg)
        self.arrived(a, b, 'DANE between us', qid)
        self.assertTrue(log_lines(a, qid, 'result=sent', 'dane=verified'),
                        a.log_tail(30))

    def test_by_mx_dane_mismatch_waits(self):
        b = self.receiver()
        a = self.sender(b, retrymin=3600, retrymax=3600)
        self.dns(a, b, tlsa='3 1 1 ' + '00' * 32)
        msg = make_message('DANE mismatch', sender=SENDER, to=RCPT)
        qid = submit(a, SENDER, [RCPT], msg)
        err = lasterror(wait_deferred(a, qid, text='DANE'))
        self.assertIn('TLSA', err)
        self.assertEqual(b.maildir_files('bob'), [])
        self.assertNotIn('MAIL FROM', b.log())
        self.assertNotRegex(b.log(), r'result=queued')

    def test_smarthost_verify_and_auth(self):
        b = self.receiver()
        creds = tempfile.NamedTemporaryFile('w', dir=b.dir, delete=False,
                                            suffix='.auth')
        creds.write('bob:%s\n' % USERS['bob'])
        creds.close()
        os.chmod(creds.name, 0o600)
        if pmtest.IS_ROOT:
            os.chown(creds.name, pmtest.uid_of(pmtest.DAEMON_USER), -1)
        a = self.sender(b, usesmtprelay=True,
                        smtprelay='127.0.0.1:%d' % b.submission_port,
                        smtprelaytls='verify', smtprelaycafile=self.ca[0],
                        smtprelayauth=creds.name)
        self.dns(a, b)
        msg = make_message('through the smarthost', sender=SENDER, to=RCPT)
        qid = submit(a, SENDER, [RCPT], msg)
        data = self.arrived(a, b, 'through the smarthost', qid)
        self.assertRegex(self.received_by_b(data), r'with ESMTPSA\b')
        self.assertRegex(b.log(),
                         r'smtp-in session=\w+ auth user=bob result=ok')
