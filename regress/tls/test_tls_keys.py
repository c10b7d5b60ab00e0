"""The certificates and keys (DESIGN.md A2, B2): a missing file, a key
that does not match its certificate, an expired certificate are refused
by pymaild -n and at start, naming the file; `pymailadm reload` reads the
pair again (a new connection sees the new certificate) and keeps the old
one when the new is bad; a returning client resumes its session without
a new handshake's signature; and the private key is in no helper's
memory after sessions with an RSA and an ECDSA certificate, while the
same scan finds it in the parent.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_keys.py
"""

import os
import shutil
import smtplib
import socket
import ssl
import threading
import time

from lib import tlsutil
from lib.tlsutil import TlsCase, pmtest, make_pair
from lib.smtputil import make_message, smtplib_send, wait_mail


def smtps_cert(inst, ctx, session=None):
    """The DER certificate the smtps port shows, and the TLS session."""
    raw = socket.create_connection(('127.0.0.1', inst.smtps_port),
                                   timeout=10)
    with ctx.wrap_socket(raw, session=session) as s:
        f = s.makefile('rb')
        greeting = f.readline()
        assert greeting.startswith(b'220 '), greeting
        s.sendall(b'QUIT\r\n')
        f.readline()
        return s.getpeercert(binary_form=True), s.session, \
            s.session_reused


def der(certfile):
    with open(certfile) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Keys(TlsCase):

    def check_refused(self, inst, needle):
        r = inst.check_config()
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(needle, r.stderr)
        r = inst.adm('start')
        self.assertEqual(r.returncode, 1, 'started with %s' % needle)
        self.assertIn(needle, r.stderr + r.stdout + inst.log())

    def test_bad_pairs_refused_at_start(self):
        inst = self.tls_instance(start=False)
        cert, key = self.pairs['ec']
        r = inst.check_config()
        self.assertEqual(r.returncode, 0, r.stderr)
        other_cert, other_key = make_pair(inst.dir, 'other', 'rsa')
        old_cert, old_key = make_pair(inst.dir, 'old', 'ec', expired=True)
        cases = [
            ({'cert': cert + '.missing', 'key': key}, cert + '.missing'),
            ({'cert': cert, 'key': key + '.missing'}, key + '.missing'),
            ({'cert': cert, 'key': other_key}, 'does not match'),
            ({'cert': old_cert, 'key': old_key}, 'has expired'),
            ({'cert': key, 'key': key}, 'no certificate'),
            ({'cert': [cert, cert], 'key': [key, key]}, 'same type'),
        ]
        for tls, needle in cases:
            inst.write_config(tls=tls)
            self.check_refused(inst, needle)
        inst.write_config(tls={'cert': old_cert, 'key': old_key})
        r = inst.check_config()
        self.assertIn(old_cert, r.stderr)
        self.assertFalse(inst.running())

    def test_reload_reads_the_pair_again(self):
        inst = self.tls_instance()
        cert, key = self.pairs['ec']
        ctx = self.context()
        first, _, _ = smtps_cert(inst, ctx)
        self.assertEqual(first, der(cert))
        # A renewed certificate (and key), put in place as certbot does.
        new_cert, new_key = make_pair(inst.dir, 'renewed', 'ec')
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr)
        ctx = tlsutil.client_context(new_cert)
        seen = pmtest.wait_for(lambda: smtps_cert(inst, ctx)[0] ==
                               der(new_cert), 5)
        self.assertTrue(seen, 'the renewed certificate is not served')
        # A bad pair: refused with the file named, the last good kept.
        bad_cert, bad_key = make_pair(inst.dir, 'bad', 'rsa')
        shutil.copy(bad_cert, cert)
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 1, 'a mismatched pair was taken')
        self.assertIn('does not match', r.stderr)
        self.assertIn(key, r.stderr)
        self.assertEqual(smtps_cert(inst, ctx)[0], der(new_cert))
        self.assertTrue(inst.running())

    def test_handshakes_across_reloads(self):
        """A handshake under way when a reload swaps the pair still gets
        its signature from the key of the certificate it showed."""
        inst = self.tls_instance()
        cert, key = self.pairs['ec']
        pairs = [(cert + '.a', key + '.a'), (cert + '.b', key + '.b')]
        shutil.copy(cert, pairs[0][0])
        shutil.copy(key, pairs[0][1])
        pairs[1] = make_pair(inst.dir, 'renewed', 'ec')
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        done = threading.Event()
        seen = {'ok': 0, 'failed': []}

        def handshakes():
            deadline = time.monotonic() + 30
            while not done.is_set() and time.monotonic() < deadline \
                    and seen['ok'] < 2000:
                try:
                    smtps_cert(inst, ctx)
                    seen['ok'] += 1
                except (OSError, AssertionError) as e:
                    seen['failed'].append(repr(e))

        workers = [threading.Thread(target=handshakes) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            for i in range(30):
                new_cert, new_key = pairs[i % 2]
                shutil.copy(new_cert, cert)
                shutil.copy(new_key, key)
                r = inst.adm('reload')
                self.assertEqual(r.returncode, 0, r.stderr)
                time.sleep(0.05)
        finally:
            done.set()
            for w in workers:
                w.join(40)
        self.assertEqual(seen['failed'], [])
        self.assertGreater(seen['ok'], 30)
        self.assertNotIn('refused a signing request', inst.log())

    def test_resumption(self):
        inst = self.tls_instance()
        ctx = self.context()
        _, sess, reused = smtps_cert(inst, ctx)
        self.assertFalse(reused)
        self.assertIsNotNone(sess)
        _, _, reused = smtps_cert(inst, ctx, session=sess)
        self.assertTrue(reused, 'the second connection did not resume')
        self.assertTrue(pmtest.wait_for(lambda: 'resumed=yes' in
                                        inst.log(), 5), inst.log_tail())

    def test_key_isolation(self):
        inst = self.tls_instance(kinds=('rsa', 'ec'))
        secrets = []
        for _, key in self.pairs.values():
            secrets += tlsutil.key_secrets(key)
        needles = tlsutil.needles(secrets)
        # Full handshakes with each key, SMTP and POP3.
        for suite in ('ECDHE-RSA-AES128-GCM-SHA256',
                      'ECDHE-ECDSA-AES128-GCM-SHA256'):
            ctx = self.context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(suite)
            smtps_cert(inst, ctx)
            s = smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=10)
            s.starttls(context=ctx)
            s.ehlo('client.example')
            s.login('alice', 'alicepw')
            smtplib_send(s, 'alice@test.example', ['bob@test.example'],
                         make_message(suite, to='bob@test.example'))
            s.quit()
            import poplib
            p = poplib.POP3_SSL('127.0.0.1', inst.pop3s_port, timeout=10,
                                context=ctx)
            p.user('bob')
            p.pass_('bobpw')
            p.quit()
        wait_mail(inst, 'bob', 2)
        parent, roles, _ = inst.processes()
        self.assertEqual(set(roles), set(pmtest.ROLES))
        # What each must hold, so a scan that read nothing cannot pass:
        # the configuration every helper gets, and in those that speak
        # TLS the certificates (their signatures, which OpenSSL keeps as
        # they came: the last octets of the DER).
        certs = {der(c)[-32:] for c, _ in self.pairs.values()}
        for role, pids in roles.items():
            must = {inst.config['serverhostname'].encode()}
            if role in ('smtpd', 'pop3d'):
                must |= certs
            held = pmtest.memory_holding(pids[0], needles | must)
            self.assertEqual(held & needles, set(),
                             '%s holds key material' % role)
            self.assertEqual(held & must, must,
                             'the scan of %s missed what it holds' % role)
        self.assertTrue(pmtest.memory_holding(parent, needles),
                        'the scan finds no key in the parent either: it '
                        'proves nothing')


if __name__ == '__main__':
    import unittest
    unittest.main()
