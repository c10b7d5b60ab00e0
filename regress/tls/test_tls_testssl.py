"""testssl.sh (Debian's package) judges our TLS: protocols (-p), cipher
categories (-s), forward secrecy (-f), the known vulnerabilities (-U) and
the server defaults and certificates (-S), with an ECDSA and an RSA
certificate at once. No finding may be rated HIGH or CRITICAL (nor say
"NOT ok"); the MEDIUM and LOW ones are printed for the reader.

The certificates are signed by a test CA (tlsutil.make_ca) handed to
testssl with --add-ca, and valid for a year with the extensions a public
CA's have, so what is judged is the server, not a throw-away self-signed
certificate. testssl makes no DNS query (--nodns none, --ip) and stays in
the private network namespace of regress/run.py.

testssl takes 30 to 60 s a port. By default two ports are scanned:
STARTTLS on port 25 (smtpd) and implicit TLS on pop3s (pop3d), which
between them cover both daemons and both ways into TLS (the TLS settings
are one piece of code, common/tls.c). PYMAILD_TESTSSL=full adds the smtps
port and STLS on the POP3 port.

    /usr/bin/python3 regress/run.py regress/tls/test_tls_testssl.py
    PYMAILD_TESTSSL=full /usr/bin/python3 regress/run.py \
        regress/tls/test_tls_testssl.py
"""

import json
import os
import shutil
import subprocess

from lib.tlsutil import TlsCase

FULL = os.environ.get('PYMAILD_TESTSSL') == 'full'
SECTIONS = ['-p', '-s', '-f', '-U', '-S']
# Below run.py's limit for one test method (120 s).
SCAN_TIMEOUT = 110
BAD = ('HIGH', 'CRITICAL', 'FATAL')


class Testssl(TlsCase):

    def scan(self, port_attr, starttls=None):
        tool = shutil.which('testssl')
        if tool is None:
            self.skipTest('testssl is not installed (make deps installs '
                          'the Makefile TESTDEBS)')
        inst = self.tls_instance(kinds=('ec', 'rsa'), ca=True)
        port = getattr(inst, port_attr)
        report = os.path.join(inst.dir, 'testssl.json')
        argv = [tool, '--quiet', '--color', '0', '--warnings', 'off',
                '--nodns', 'none', '--ip', '127.0.0.1',
                '--connect-timeout', '10', '--openssl-timeout', '10',
                '--add-ca', self.ca[0], '--jsonfile', report] + SECTIONS
        if starttls:
            argv += ['-t', starttls]
        argv.append('mail.test.example:%d' % port)
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=SCAN_TIMEOUT,
                           env=dict(os.environ, HOME=inst.dir))
        text = r.stdout.decode('utf-8', 'replace')
        self.assertTrue(os.path.exists(report), text)
        with open(report) as f:
            findings = json.load(f)
        self.check(findings, text, port_attr)

    def check(self, findings, text, what):
        by_id = {}
        for f in findings:
            # "cert_commonName <cert#2>": one id per certificate.
            by_id.setdefault(f['id'].split(' ')[0], []).append(f)
        # The scan reached our server and ran to the end.
        self.assertNotIn('scanProblem', by_id, text)
        self.assertEqual(by_id['cert_commonName'][0]['finding'],
                         'mail.test.example', text)
        self.assertEqual(len(by_id['cert_commonName']), 2,
                         'want the ECDSA and the RSA certificate')
        self.assertIn('not offered', by_id['TLS1'][0]['finding'])
        self.assertIn('offered', by_id['TLS1_3'][0]['finding'])
        self.assertIn('heartbleed', by_id)
        self.assertEqual(len(by_id['cert_chain_of_trust']), 2)
        bad = ['%s %s: %s' % (f['severity'], f['id'], f['finding'])
               for f in findings if f['severity'] in BAD or
               'NOT ok' in f['finding']]
        self.assertEqual(bad, [], text)
        notes = ['%s %s: %s' % (f['severity'], f['id'], f['finding'])
                 for f in findings
                 if f['severity'] in ('MEDIUM', 'LOW', 'WARN')]
        for n in notes:
            print('testssl %s: %s' % (what, n))

    def test_starttls_on_port_25(self):
        self.scan('smtp_port', 'smtp')

    def test_pop3s(self):
        self.scan('pop3s_port')

    def test_smtps(self):
        if not FULL:
            self.skipTest('set PYMAILD_TESTSSL=full for this port')
        self.scan('smtps_port')

    def test_stls_on_the_pop3_port(self):
        if not FULL:
            self.skipTest('set PYMAILD_TESTSSL=full for this port')
        self.scan('pop3_port', 'pop3')


if __name__ == '__main__':
    import unittest
    unittest.main()
