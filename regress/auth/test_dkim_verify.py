"""The DKIM verifier (common/dkimverify.c) against messages signed by an
implementation we did not write: Debian's python3-dkim (dkimpy). Each
message goes through regress/auth/dkimcheck, whose key lookups are
answered by a real DNS server (regress/lib/dnsfixture.py, ldns-testns)
over UDP/TCP; each verdict is compared with the one dkimpy itself gives
for the same message and the same key records (its dnsfunc hook), where
dkimpy has one.

Where we differ from dkimpy on purpose: a signature whose l= covers less
than the body passes in dkimpy and is "policy" here (what follows the
signed part is not the signer's); a DNS timeout is temperror here and an
exception there.

    /usr/bin/python3 regress/run.py regress/auth/test_dkim_verify.py
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from lib import pmtest
from lib.dnsfixture import DNSServer, txt_rdata

try:
    import dkim
except ImportError:             # the Makefile's test deps install it
    dkim = None

OPENDKIM_TESTMSG = shutil.which('opendkim-testmsg')
DKIMCHECK = os.path.join(pmtest.ROOT, 'regress', 'auth', 'dkimcheck')
DOMAIN = 'example.test'
QUERY_TIMEOUT = 1       # seconds dkimcheck waits for an answer

MESSAGE = (b'Received: from a.example.test by b.example.test; '
           b'Sun, 6 Dec 2026 10:00:00 +0000\r\n'
           b'From: Alice <alice@example.test>\r\n'
           b'To: Bob <bob@other.test>,\r\n'
           b'\tCarol <carol@other.test>\r\n'
           b'Subject: a subject that\r\n'
           b'  is folded   twice\r\n'
           b'\t over three lines\r\n'
           b'Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n'
           b'Message-ID: <1@example.test>\r\n'
           b'X-Dup: first\r\n'
           b'X-Dup: second\r\n'
           b'\r\n'
           b'Hello Bob,\r\n'
           b'  a line with   spaces  \t\r\n'
           b'\r\n'
           b'the end.\r\n'
           b'\r\n'
           b'\r\n')

HEADERS = [b'from', b'to', b'subject', b'date', b'message-id']


def openssl(*args, data=None):
    return subprocess.run(('openssl',) + args, check=True, input=data,
                          capture_output=True, timeout=60).stdout


class Key:
    """A key pair: what dkimpy signs with and the TXT record."""

    def __init__(self, tmp, kind, bits=2048):
        path = os.path.join(tmp, '%s%d.pem' % (kind, bits))
        self.path = path
        if kind == 'rsa':
            openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
                    'rsa_keygen_bits:%d' % bits, '-out', path)
            self.private = open(path, 'rb').read()
            der = openssl('pkey', '-in', path, '-pubout', '-outform', 'DER')
            self.record = b'v=DKIM1; k=rsa; p=' + base64.b64encode(der)
            self.alg = b'rsa-sha256'
        else:
            openssl('genpkey', '-algorithm', 'ED25519', '-out', path)
            priv = openssl('pkey', '-in', path, '-outform', 'DER')
            pub = openssl('pkey', '-in', path, '-pubout', '-outform', 'DER')
            # dkimpy takes the raw 32-octet seed, base64
            self.private = base64.b64encode(priv[-32:])
            self.record = b'v=DKIM1; k=ed25519; p=' + \
                base64.b64encode(pub[-32:])
            self.alg = b'ed25519-sha256'


def sign(msg, key, selector, canon=(b'relaxed', b'relaxed'),
         headers=None, length=False, identity=None):
    sig = dkim.sign(msg, selector.encode(), DOMAIN.encode(), key.private,
                    canonicalize=canon, include_headers=headers or HEADERS,
                    signature_algorithm=key.alg, length=length,
                    identity=identity)
    return sig + msg


def replace_b(msg, value):
    """msg with the b= of its first signature made value."""
    head, rest = msg.split(b'\r\n\r\n', 1)
    head = re.sub(rb'([;\s]b=)[^;]*', lambda m: m.group(1) + value,
                  head, count=1)
    return head + b'\r\n\r\n' + rest


class DKIMVerify(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        pmtest.require_built(DKIMCHECK)
        if dkim is None:
            raise pmtest.MissingBinary('no dkimpy: apt-get install '
                                       'python3-dkim')
        cls.tmp = tempfile.mkdtemp(prefix='pmdkimv-', dir=pmtest.TMPBASE)
        cls.keys = {
            'rsa1024': Key(cls.tmp, 'rsa', 1024),
            'rsa2048': Key(cls.tmp, 'rsa', 2048),
            'ed': Key(cls.tmp, 'ed25519'),
            'rsa512': Key(cls.tmp, 'rsa', 512),
        }
        # selector -> TXT record (None: no record at all)
        cls.txt = {s: k.record for s, k in cls.keys.items()}
        cls.txt['revoked'] = b'v=DKIM1; k=rsa; p='
        cls.txt['notakey'] = b'v=DKIM1; k=rsa; p=' + \
            base64.b64encode(b'this is not a key at all, just words')
        cls.txt['prose'] = b'hello world, no tags here'
        cls.txt['missing'] = None
        rsa = cls.keys['rsa2048'].record
        cls.txt['strict'] = rsa + b'; t=s'
        cls.txt['testing'] = rsa + b'; t=y'
        cls.txt['twice'] = rsa
        pkcs1 = openssl('rsa', '-pubin', '-inform', 'DER',
                        '-RSAPublicKey_out', '-outform', 'DER',
                        data=base64.b64decode(rsa.split(b'p=')[1]))
        cls.txt['pkcs1'] = b'v=DKIM1; k=rsa; p=' + base64.b64encode(pkcs1)
        cls.txt['slow'] = None
        records = []
        for sel, txt in cls.txt.items():
            if txt is not None:
                records.append(('%s._domainkey.%s.' % (sel, DOMAIN), 300,
                                'TXT', txt_rdata([txt])))
        # a second key record at one name: which one is meant is unknown
        records.append(('twice._domainkey.%s.' % DOMAIN, 300, 'TXT',
                        txt_rdata([cls.keys['ed'].record])))
        cls.port = pmtest.free_udp_port()
        cls.dns = DNSServer(cls.port, records=records,
                            timeout=['slow._domainkey.%s' % DOMAIN])
        cls.dns.start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.cleanup()
        subprocess.run(['rm', '-rf', cls.tmp], check=False)

    def dnsfunc(self, name, timeout=5):
        sel = name.decode().split('.')[0]
        return self.txt.get(sel)

    def dkimpy(self, msg, idx=0):
        """dkimpy's verdict on signature idx, True or False."""
        try:
            return dkim.DKIM(msg, minkey=1024).verify(
                idx=idx, dnsfunc=self.dnsfunc)
        except dkim.DKIMException:
            return False

    def check(self, msg, now=None):
        """dkimcheck's lines: [(result, d, s, b, reason)], summary; now:
        our clock, in seconds since the epoch."""
        clock = ['-n', str(now)] if now is not None else []
        out = subprocess.run(
            [DKIMCHECK, '-s', '127.0.0.1', '-p', str(self.port), '-t',
             str(QUERY_TIMEOUT)] + clock, input=msg, capture_output=True,
            timeout=60, check=True).stdout.decode()
        lines = out.splitlines()
        self.assertTrue(lines and lines[-1].startswith('found='), out)
        rows = []
        for line in lines[:-1]:
            res, d, s, b, reason = line.split(' ', 4)
            rows.append((res, d[2:], s[2:], b[2:], reason))
        summary = dict(kv.split('=') for kv in lines[-1].split())
        return rows, {k: int(v) for k, v in summary.items()}

    def verdict(self, msg, want, why=None, idx=0, dkimpy=True, now=None):
        rows, _ = self.check(msg, now)
        self.assertGreater(len(rows), idx, rows)
        self.assertEqual(rows[idx][0], want, rows)
        if why is not None:
            self.assertIn(why, rows[idx][4], rows)
        if dkimpy is not None:
            self.assertEqual(self.dkimpy(msg, idx), dkimpy,
                             'dkimpy disagrees: %r' % (rows,))
        return rows

    # --- signatures that verify -----------------------------------------

    def test_rsa2048_relaxed_relaxed(self):
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048')
        rows = self.verdict(msg, 'pass')
        self.assertEqual(rows[0][1:3], (DOMAIN, 'rsa2048'))
        b = re.search(rb'b=([A-Za-z0-9+/]{8})', msg.split(b'bh=')[1])
        self.assertEqual(rows[0][3], b.group(1).decode())

    def test_rsa1024_simple_simple(self):
        msg = sign(MESSAGE, self.keys['rsa1024'], 'rsa1024',
                   canon=(b'simple', b'simple'))
        self.verdict(msg, 'pass')

    def test_relaxed_simple(self):
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                   canon=(b'relaxed', b'simple'))
        self.verdict(msg, 'pass')

    def test_simple_relaxed(self):
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                   canon=(b'simple', b'relaxed'))
        self.verdict(msg, 'pass')

    def test_ed25519(self):
        for canon in ((b'relaxed', b'relaxed'), (b'simple', b'simple')):
            msg = sign(MESSAGE, self.keys['ed'], 'ed', canon=canon)
            self.verdict(msg, 'pass')

    def test_opendkim_rsa_sha1(self):
        """A second signer we did not write: opendkim-testmsg signs with
        rsa-sha1, which RFC 8301 3.1 says not to accept (dkimpy still
        does): permerror."""
        if OPENDKIM_TESTMSG is None:
            raise pmtest.MissingBinary('no opendkim-testmsg: apt-get '
                                       'install opendkim-tools')
        msg = subprocess.run(
            [OPENDKIM_TESTMSG, '-C', '-d', DOMAIN, '-s', 'rsa2048', '-k',
             self.keys['rsa2048'].path, '-t', self.tmp], input=MESSAGE,
            capture_output=True, timeout=60, check=True).stdout
        self.assertIn(b'a=rsa-sha1;', msg.split(b'\r\n\r\n')[0])
        rows = self.verdict(msg, 'permerror', 'rsa-sha1', dkimpy=True)
        # whose it claims to be, for the Authentication-Results header
        self.assertEqual(rows[0][1:3], (DOMAIN, 'rsa2048'))

    def test_header_listed_twice(self):
        """h= names X-Dup twice: both fields, the bottom one first."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                   headers=HEADERS + [b'x-dup', b'x-dup'])
        self.verdict(msg, 'pass')
        # swapping the two fields changes what was signed
        swapped = msg.replace(b'X-Dup: first', b'X-Dup: tmp').replace(
            b'X-Dup: second', b'X-Dup: first').replace(
            b'X-Dup: tmp', b'X-Dup: second')
        self.verdict(swapped, 'fail', 'signature did not verify',
                     dkimpy=False)

    def test_oversigned_from(self):
        """From listed once more than present: a From added on the way
        breaks the signature (the extra name stood for an empty one)."""
        for canon in ((b'relaxed', b'relaxed'), (b'simple', b'simple')):
            msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                       canon=canon, headers=HEADERS + [b'from'])
            self.verdict(msg, 'pass')
            head, body = msg.split(b'\r\n\r\n', 1)
            forged = head + b'\r\nFrom: Mallory <m@evil.test>\r\n\r\n' + body
            self.verdict(forged, 'fail', 'signature did not verify',
                         dkimpy=False)

    def test_double_signature(self):
        """An RSA and an Ed25519 signature of the same message."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048')
        msg = sign(msg, self.keys['ed'], 'ed')
        rows, summary = self.check(msg)
        self.assertEqual([r[:3] for r in rows],
                         [('pass', DOMAIN, 'ed'),
                          ('pass', DOMAIN, 'rsa2048')])
        self.assertTrue(self.dkimpy(msg, 0))
        self.assertTrue(self.dkimpy(msg, 1))
        self.assertEqual(summary, {'found': 2, 'checked': 2,
                                   'questions': 2})

    # --- body length limits -----------------------------------------

    def test_length_equal(self):
        for canon in ((b'relaxed', b'relaxed'), (b'simple', b'simple')):
            msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                       canon=canon, length=True)
            self.assertIn(b' l=', msg.split(b'\r\n\r\n')[0])
            self.verdict(msg, 'pass')

    def test_length_shorter(self):
        """Content after the signed part: dkimpy passes it, we say
        policy (documented in dkimverify.h)."""
        for canon in ((b'relaxed', b'relaxed'), (b'simple', b'simple')):
            msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                       canon=canon, length=True)
            added = msg + b'Click here: http://evil.test/\r\n'
            self.verdict(added, 'policy', 'body length limit',
                         dkimpy=True)

    def test_length_longer(self):
        """l= larger than the body (a part was cut): fail."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048', length=True)
        cut = msg[:msg.index(b'the end.')] + b'\r\n'
        self.verdict(cut, 'fail', 'longer than the body', dkimpy=False)

    # --- signatures that do not verify -----------------------------------

    def test_appended_body_line(self):
        for canon in ((b'relaxed', b'relaxed'), (b'simple', b'simple')):
            msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                       canon=canon)
            self.verdict(msg + b'one more line\r\n', 'fail',
                         'body hash', dkimpy=False)

    def test_changed_header(self):
        for key in ('rsa2048', 'ed'):
            msg = sign(MESSAGE, self.keys[key], key)
            changed = msg.replace(b'Subject: a subject',
                                  b'Subject: A subject')
            self.verdict(changed, 'fail', 'signature did not verify',
                         dkimpy=False)

    def test_relaxed_survives_whitespace(self):
        """Relaxed forgives what relays do to white space; simple not."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048')
        respaced = msg.replace(b'Subject: a subject that',
                               b'Subject:   a  subject that')
        self.verdict(respaced, 'pass')
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048',
                   canon=(b'simple', b'simple'))
        respaced = msg.replace(b'Subject: a subject that',
                               b'Subject:   a  subject that')
        self.verdict(respaced, 'fail', dkimpy=False)

    # --- keys -----------------------------------------------------------

    def resigned(self, selector, key='rsa2048'):
        """A message signed by key but naming another selector."""
        msg = sign(MESSAGE, self.keys[key], key)
        return msg.replace(b's=%s;' % key.encode(),
                           b's=%s;' % selector.encode(), 1)

    def test_revoked_key(self):
        self.verdict(self.resigned('revoked'), 'permerror', 'key revoked',
                     dkimpy=False)

    def test_missing_key(self):
        self.verdict(self.resigned('missing'), 'permerror', 'no key',
                     dkimpy=False)

    def test_dns_timeout(self):
        self.verdict(self.resigned('slow'), 'temperror', dkimpy=None)

    def test_not_a_key(self):
        self.verdict(self.resigned('notakey'), 'permerror',
                     'not an RSA key', dkimpy=False)
        self.verdict(self.resigned('prose'), 'permerror', dkimpy=False)
        # the key is looked at before the body (RFC 6376 6.1.2, 6.1.3)
        self.verdict(self.resigned('notakey') + b'added\r\n', 'permerror',
                     'not an RSA key', dkimpy=False)

    def test_key_type_mismatch(self):
        """An Ed25519 signature, the selector of an RSA key."""
        self.verdict(self.resigned('rsa2048', key='ed'), 'permerror',
                     'does not match', dkimpy=False)

    def test_pkcs1_key(self):
        """p= as a bare RSAPublicKey, as RFC 6376's text has it."""
        self.verdict(sign(MESSAGE, self.keys['rsa2048'], 'pkcs1'), 'pass')

    def test_two_key_records(self):
        self.verdict(self.resigned('twice'), 'permerror',
                     'more than one key record', dkimpy=None)

    def test_strict_key(self):
        """A t=s key: i= must be d= itself, not a subdomain (dkimpy
        does not look at t=s; RFC 6376 3.6.1 says so)."""
        key = self.keys['rsa2048']
        msg = sign(MESSAGE, key, 'strict', identity=b'@example.test')
        self.verdict(msg, 'pass')
        msg = sign(MESSAGE, key, 'strict', identity=b'a@sub.example.test')
        self.verdict(msg, 'permerror', 't=s', dkimpy=None)

    def test_testing_key(self):
        """A t=y key (the signer is testing): a failure is neutral, so
        it weighs no more than no signature (RFC 6376 3.6.1)."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'testing')
        self.verdict(msg, 'pass')
        self.verdict(msg + b'more\r\n', 'neutral', 'body hash',
                     dkimpy=False)

    def test_rsa_512(self):
        msg = sign(MESSAGE, self.keys['rsa512'], 'rsa512')
        self.verdict(msg, 'permerror', 'shorter than 1024', dkimpy=False)

    # --- time -------------------------------------------------------------

    def test_timestamp_in_the_future(self):
        """t= more than 300 s ahead of our clock: the signature is not
        used (policy, no key asked); 300 s ahead is a clock's drift and
        passes. dkimpy allows ten hours, so it is not asked."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048')
        t = int(re.search(rb'\bt=(\d+)', msg).group(1))
        rows, summary = self.check(msg, now=t - 301)
        self.assertEqual(rows[0][0], 'policy', rows)
        self.assertIn('in the future', rows[0][4])
        self.assertEqual(summary['questions'], 0)
        self.verdict(msg, 'pass', now=t - 300)

    def test_expiry_before_timestamp(self):
        """x= before t= is a signature that contradicts itself:
        permerror, whatever the clock."""
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048')
        t = int(re.search(rb'\bt=(\d+)', msg).group(1))
        bad = re.sub(rb'\bt=(\d+);', b't=%d; x=%d;' % (t, t - 1), msg,
                     count=1)
        self.assertNotEqual(bad, msg)
        self.verdict(bad, 'permerror', 'x=', dkimpy=False, now=t - 10)

    # --- hostile input ----------------------------------------------------

    def test_huge_b(self):
        msg = sign(MESSAGE, self.keys['rsa2048'], 'rsa2048')
        huge = replace_b(msg, b'A' * 100000)
        rows, summary = self.check(huge)
        self.assertEqual(rows[0][:3], ('permerror', DOMAIN, 'rsa2048'),
                         rows)
        self.assertEqual(summary['questions'], 0)
        self.assertFalse(self.dkimpy(huge))

    def test_thousand_signatures(self):
        """Only the first five are checked: five questions at most."""
        msg = sign(MESSAGE, self.keys['ed'], 'ed')
        junk = b''.join(
            b'DKIM-Signature: v=1; a=rsa-sha256; d=example.test; '
            b's=k%d; h=from; bh=%s; b=AAAA\r\n'
            % (i, base64.b64encode(b'x' * 32)) for i in range(999))
        many = msg[:msg.index(b'Received:')] + junk + \
            msg[msg.index(b'Received:'):]
        rows, summary = self.check(many)
        self.assertEqual(summary, {'found': 1000, 'checked': 5,
                                   'questions': 5})
        self.assertEqual(rows[0][0], 'pass', rows)
        self.assertEqual([r[0] for r in rows[1:]], ['permerror'] * 4)
        self.assertTrue(self.dkimpy(many, 0))


if __name__ == '__main__':
    unittest.main()
