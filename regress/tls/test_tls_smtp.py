"""SMTP over TLS (RFC 3207, 6409, 8314; DESIGN.md A4): STARTTLS on port
25 with ECDSA and RSA certificates, the session starting again inside TLS,
Received: naming ESMTPS/ESMTPSA with the TLS version and cipher, the log
line's tls=; submission (AUTH offered only inside TLS, AUTH before MAIL);
implicit TLS on the smtps port; the plaintext commands pipelined behind
STARTTLS thrown away; TLS 1.0 and 1.1 refused; openssl s_client.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_smtp.py
"""

import os
import re
import smtplib
import ssl
import subprocess

from lib import tlsutil
from lib.tlsutil import TlsCase, pmtest
from lib.smtputil import (Client, b64, header, make_message,
                          smtplib_send, wait_mail)

FROM = 'alice@test.example'


class Smtp(TlsCase):

    def starttls_send(self, inst, ctx, subject):
        s = smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        self.assertTrue(s.has_extn('starttls'), s.esmtp_features)
        code, _ = s.starttls(context=ctx)
        self.assertEqual(code, 220)
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        s.ehlo('client.example')
        self.assertFalse(s.has_extn('starttls'),
                         'STARTTLS offered inside TLS')
        s.login('alice', 'alicepw')
        smtplib_send(s, FROM, ['bob@test.example'],
                     make_message(subject, to='bob@test.example'))
        s.quit()
        return version, cipher

    def check_received(self, inst, n, version, cipher, proto):
        msgs = wait_mail(inst, 'bob', n)
        rec = header(msgs[-1][1], 'Received')[0]
        self.assertIn('with %s (%s %s)' % (proto, version, cipher), rec)

    def test_starttls_ecdsa_and_rsa(self):
        inst = self.tls_instance(kinds=('rsa', 'ec'))
        ctx = self.context()
        version, cipher = self.starttls_send(inst, ctx, 'tls13')
        self.assertEqual(version, 'TLSv1.3')
        self.check_received(inst, 1, version, cipher, 'ESMTPSA')
        # TLS 1.2 with each key type: the suite names the key.
        for suite in ('ECDHE-RSA-AES128-GCM-SHA256',
                      'ECDHE-ECDSA-AES256-GCM-SHA384'):
            ctx = self.context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(suite)
            version, cipher = self.starttls_send(inst, ctx, suite)
            self.assertEqual((version, cipher), ('TLSv1.2', suite))
        self.check_received(inst, 3, 'TLSv1.2',
                            'ECDHE-ECDSA-AES256-GCM-SHA384', 'ESMTPSA')
        log = inst.log()
        self.assertRegex(log, r'smtp-in session=\S+ disconnect '
                         r'tls=TLSv1\.3 cipher=TLS_AES_\S+')
        self.assertIn('tls=TLSv1.2 cipher=ECDHE-RSA-AES128-GCM-SHA256', log)

    def test_session_starts_again_inside_tls(self):
        # RFC 3207 4.2: after the handshake the client must say EHLO
        # again; a transaction before it is out of order.
        inst = self.tls_instance()
        c = self.session(inst)
        c.expect('STARTTLS', 220)
        c.sock = self.context().wrap_socket(c.sock)
        c.expect('MAIL FROM:<carol@sender.example>', 503)
        r = c.cmd('EHLO client.example')
        self.assertEqual(r.code, 250)
        self.assertNotIn('STARTTLS', r.lines)
        c.expect('STARTTLS', 503)
        # ESMTPS without AUTH, for mail to a local user.
        c.transaction('carol@sender.example', ['bob@test.example'],
                      make_message('no auth'))
        msgs = wait_mail(inst, 'bob', 1)
        rec = header(msgs[0][1], 'Received')[0]
        self.assertRegex(rec, r'with ESMTPS \(TLSv1\.3 TLS_\S+\)')

    def test_injection_after_starttls_is_discarded(self):
        # The plaintext behind STARTTLS in the same write must never run
        # inside TLS: the first answer there is the one to our EHLO.
        inst = self.tls_instance()
        c = self.session(inst)
        c.send(b'STARTTLS\r\nRSET\r\n')
        r = c.reply()
        self.assertEqual(r.code, 220, r)
        c.sock = self.context().wrap_socket(c.sock)
        r = c.cmd('EHLO client.example')
        self.assertEqual(r.code, 250, 'first answer inside TLS: %r' % r)
        self.assertIn('PIPELINING', r.lines)
        self.assertEqual(c.pending(), b'', 'more answers than commands')

    def test_submission_port(self):
        inst = self.tls_instance()
        c = Client(inst.submission_port)
        r = c.cmd('EHLO client.example')
        self.assertIn('STARTTLS', r.lines)
        self.assertFalse([l for l in r.lines if l.startswith('AUTH')],
                         'AUTH offered before TLS on submission: %r' % r)
        c.expect('AUTH PLAIN ' + b64(b'\0alice\0alicepw'), 538,
                 '5.7.11')
        c.expect('MAIL FROM:<alice@test.example>', 530, '5.7.0')
        c.expect('STARTTLS', 220)
        c.sock = self.context().wrap_socket(c.sock)
        r = c.cmd('EHLO client.example')
        self.assertIn('AUTH PLAIN LOGIN', r.lines)
        # Even to a local user, a submission needs AUTH.
        c.expect('MAIL FROM:<alice@test.example>', 530, '5.7.0')
        c.expect('AUTH PLAIN ' + b64(b'\0alice\0alicepw'), 235)
        c.expect('MAIL FROM:<alice@test.example>', 250)

    def test_submission_adds_date_and_message_id(self):
        # RFC 6409 8: on the submission ports a message without Date: or
        # Message-ID: gets them; one with them keeps its own; port 25
        # adds nothing.
        inst = self.tls_instance()
        bare = (b'From: <alice@test.example>\r\nTo: <bob@test.example>\r\n'
                b'Subject: bare\r\n\r\nbody\r\n')
        s = smtplib.SMTP_SSL('127.0.0.1', inst.smtps_port, timeout=10,
                             context=self.context())
        self.addCleanup(s.close)
        s.ehlo('client.example')
        s.login('alice', 'alicepw')
        smtplib_send(s, FROM, ['bob@test.example'], bare)
        smtplib_send(s, FROM, ['bob@test.example'],
                     b'Subject: no body\r\n')
        full = make_message('full', to='bob@test.example',
                            mid='<kept@test.invalid>')
        smtplib_send(s, FROM, ['bob@test.example'], full)
        s.quit()
        c = self.session(inst)
        c.transaction('carol@sender.example', ['bob@test.example'], bare)
        msgs = [m for _, m in wait_mail(inst, 'bob', 4)]
        submitted = [m for m in msgs
                     if 'ESMTPSA' in header(m, 'Received')[0]]
        by = {header(m, 'Subject')[0]: m for m in submitted}
        for subj in ('bare', 'no body'):
            m = by[subj]
            self.assertEqual(len(header(m, 'Date')), 1, m)
            self.assertRegex(header(m, 'Message-ID')[0],
                             r'^<[0-9a-f]{16}\.[0-9a-f]{16}@'
                             r'mail\.test\.example>$')
        self.assertTrue(by['bare'].endswith(b'\n\nbody\n'), by['bare'])
        self.assertEqual(header(by['full'], 'Message-ID'),
                         ['<kept@test.invalid>'])
        self.assertEqual(len(header(by['full'], 'Date')), 1)
        plain = [m for m in msgs if m not in submitted]
        self.assertEqual(len(plain), 1)
        self.assertEqual(header(plain[0], 'Date'), [])
        self.assertEqual(header(plain[0], 'Message-ID'), [])

    def test_smtps_implicit_tls(self):
        inst = self.tls_instance(kinds=('rsa',))
        s = smtplib.SMTP_SSL('127.0.0.1', inst.smtps_port, timeout=10,
                             context=self.context())
        self.addCleanup(s.close)
        s.ehlo('client.example')
        self.assertFalse(s.has_extn('starttls'))
        self.assertTrue(s.has_extn('auth'))
        code, _ = s.mail(FROM)
        self.assertEqual(code, 530, 'MAIL before AUTH on smtps')
        s.rset()
        s.login('alice', 'alicepw')
        smtplib_send(s, FROM, ['bob@test.example'],
                     make_message('smtps', to='bob@test.example'))
        s.quit()
        msgs = wait_mail(inst, 'bob', 1)
        rec = header(msgs[0][1], 'Received')[0]
        self.assertRegex(rec, r'with ESMTPSA \(TLSv1\.3 TLS_\S+\)')

    def test_old_protocols_refused(self):
        inst = self.tls_instance()
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = self.context()
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = v
            ctx.set_ciphers('ALL:@SECLEVEL=0')
            with self.assertRaises((ssl.SSLError, OSError),
                                   msg='%s accepted' % v):
                s = smtplib.SMTP_SSL('127.0.0.1', inst.smtps_port,
                                     timeout=10, context=ctx)
                s.close()

    def s_client(self, port, *args):
        return subprocess.run(
            [tlsutil.OPENSSL, 's_client', '-connect', '127.0.0.1:%d' % port,
             '-starttls', 'smtp', '-brief', '-ign_eof'] + list(args),
            input=b'EHLO client.example\r\nQUIT\r\n', stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=30)

    def test_openssl_s_client(self):
        # TLS 1.2 with RSA PKCS#1 v1.5 signatures, then RSA-PSS, then
        # TLS 1.3: each of the remote key's RSA paths.
        inst = self.tls_instance(kinds=('rsa',))
        for args, sig in ((['-tls1_2', '-sigalgs', 'RSA+SHA256'],
                           'RSA'),
                          (['-tls1_2', '-sigalgs', 'RSA-PSS+SHA256'],
                           'RSA-PSS'),
                          (['-tls1_3'], 'RSA-PSS')):
            r = self.s_client(inst.smtp_port, *args)
            out = r.stdout.decode('utf-8', 'replace')
            self.assertEqual(r.returncode, 0, out)
            self.assertIn('221 2.0.0', out)
            self.assertRegex(out, r'(?m)^Signature type: %s$' %
                             re.escape(sig))


if __name__ == '__main__':
    import unittest
    unittest.main()
