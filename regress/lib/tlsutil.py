"""tlsutil: what the TLS tests share, on top of regress/lib/pmtest.py and
regress/smtp/smtputil.py.

- make_pair(): a self-signed certificate and its key, made with Debian's
  openssl command in the test's folder: ECDSA P-256 or RSA 2048, valid
  or already expired.
- make_ca(), make_signed_pair(): a test CA and a server certificate it
  signs, with the extensions a public CA's would have (for the clients
  and scanners that judge the certificate as well as the server).
- key_secrets(): the private numbers of a key file (the EC scalar, the
  RSA primes), read from `openssl pkey -text -noout`, for the memory
  scans of the key-isolation test.
- TlsCase: an SmtpCase whose tls_instance() starts a pymaild with tls set
  and every TLS port on a free port of its own.
- client_context(): a Python ssl context that trusts the certificates
  given (and checks nothing else, the names being made up).

Standard library only; Debian's /usr/bin/python3.
"""

import os
import re
import socket
import ssl
import subprocess

from lib import pmtest
from lib.smtputil import SmtpCase, USERS, DOMAIN             # noqa: F401

OPENSSL = '/usr/bin/openssl'


# A second client address, not loopback's: it exists only on lo of the
# private network namespace regress/run.py makes (never on the host's).
REMOTE = '10.77.0.1'


def add_remote_address(test):
    if os.environ.get('PYMAILD_NETNS') != '1':
        test.skipTest('needs the private network namespace of run.py')
    r = subprocess.run(['ip', 'addr', 'add', REMOTE + '/32', 'dev', 'lo'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Another test file of the run may have added it already.
    if r.returncode != 0 and b'already assigned' not in r.stdout and \
            b'exists' not in r.stdout:
        raise AssertionError('ip addr add: %s' % r.stdout.decode())


def openssl(*args, input=None):
    r = subprocess.run([OPENSSL] + list(args), input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError('openssl %s: %s' % (' '.join(args),
                                                  r.stderr.decode()))
    return r.stdout


CA_CONF = """[ca]
default_ca = self
[self]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
"""


def make_pair(folder, name, kind='ec', days=30, expired=False,
              cn='mail.test.example'):
    """(cert path, key path) of a new self-signed pair in folder; expired:
    valid for one day of 2020 only."""
    key = os.path.join(folder, name + '.key')
    cert = os.path.join(folder, name + '.pem')
    if kind == 'ec':
        openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-out', key)
    else:
        openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
                'rsa_keygen_bits:2048', '-out', key)
    # The parent reads it again after its privilege drop, at reload.
    os.chmod(key, 0o644)
    if not expired:
        openssl('req', '-new', '-x509', '-key', key, '-out', cert,
                '-subj', '/CN=' + cn, '-addext',
                'subjectAltName=DNS:' + cn, '-days', str(days))
        return cert, key
    # openssl 3.0's req and x509 take no start date: a one-key CA does.
    ca = os.path.join(folder, name + '.ca')
    os.mkdir(ca)
    with open(os.path.join(ca, 'ca.cnf'), 'w') as f:
        f.write(CA_CONF)
    open(os.path.join(ca, 'index.txt'), 'w').close()
    with open(os.path.join(ca, 'serial'), 'w') as f:
        f.write('01\n')
    csr = os.path.join(ca, 'req.csr')
    openssl('req', '-new', '-key', key, '-out', csr, '-subj', '/CN=' + cn)
    subprocess.run([OPENSSL, 'ca', '-batch', '-config', 'ca.cnf',
                    '-selfsign', '-keyfile', key, '-in', csr, '-out', cert,
                    '-startdate', '20200101000000Z',
                    '-enddate', '20200102000000Z'], cwd=ca, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def make_ca(folder, name='ca'):
    """(cert path, key path) of a new ECDSA P-256 test CA."""
    key = os.path.join(folder, name + '.key')
    cert = os.path.join(folder, name + '.pem')
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
            'ec_paramgen_curve:P-256', '-out', key)
    openssl('req', '-new', '-x509', '-key', key, '-out', cert,
            '-subj', '/CN=pymaild test CA ' + name, '-days', '3650',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    return cert, key


LEAF_EXT = """basicConstraints = critical,CA:FALSE
keyUsage = critical,{usage}
extendedKeyUsage = serverAuth
subjectAltName = DNS:{cn}
crlDistributionPoints = URI:http://ca.test.example/test.crl
"""


def make_signed_pair(folder, name, kind, ca, days=365,
                     cn='mail.test.example', san=None):
    """(cert path, key path) of a server pair signed by ca (make_ca's
    answer): ECDSA P-256 or RSA 2048, a leaf as public CAs issue them.
    san: its subjectAltName (default DNS:cn), e.g. 'IP:127.0.0.1'."""
    key = os.path.join(folder, name + '.key')
    cert = os.path.join(folder, name + '.pem')
    if kind == 'ec':
        openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-out', key)
        usage = 'digitalSignature'
    else:
        openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
                'rsa_keygen_bits:2048', '-out', key)
        usage = 'digitalSignature,keyEncipherment'
    os.chmod(key, 0o644)
    csr = os.path.join(folder, name + '.csr')
    ext = os.path.join(folder, name + '.ext')
    with open(ext, 'w') as f:
        f.write(LEAF_EXT.format(usage=usage, cn=cn).replace(
            'subjectAltName = DNS:' + cn,
            'subjectAltName = ' + (san or 'DNS:' + cn)))
    openssl('req', '-new', '-key', key, '-out', csr, '-subj', '/CN=' + cn)
    openssl('x509', '-req', '-in', csr, '-CA', ca[0], '-CAkey', ca[1],
            '-CAcreateserial', '-out', cert, '-days', str(days),
            '-sha256', '-extfile', ext)
    return cert, key


def _hex_block(text, label):
    """The hex octets printed under `label:` by openssl pkey -text."""
    m = re.search(r'^%s:\s*\n((?:\s+[0-9a-f:]+\n)+)' % re.escape(label),
                  text, re.M)
    if not m:
        raise AssertionError('no %s in openssl pkey -text' % label)
    raw = bytes.fromhex(re.sub(r'[\s:]', '', m.group(1)))
    return raw.lstrip(b'\0')


def key_secrets(keyfile):
    """The secret numbers of a private key as big-endian bytes."""
    text = openssl('pkey', '-in', keyfile, '-text', '-noout').decode()
    if 'prime1:' in text:
        return [_hex_block(text, 'prime1'), _hex_block(text, 'prime2')]
    return [_hex_block(text, 'priv')]


def needles(secrets):
    """What a memory scan looks for: each secret in both byte orders
    (OpenSSL's BIGNUMs are little-endian words in memory), as 16-octet
    pieces from its start and its middle, so a partial copy shows too."""
    out = set()
    for s in secrets:
        for v in (s, s[::-1]):
            mid = len(v) // 2
            out.add(v[:16])
            out.add(v[mid:mid + 16])
    return out


def client_context(*certs):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    for c in certs:
        ctx.load_verify_locations(c)
    return ctx


class TlsCase(SmtpCase):
    """SMTP and POP3 with tls set: tls_instance() makes the pairs in the
    instance's folder (self.pairs: kind -> (cert, key)), self-signed or,
    with ca=True, signed by a test CA of its own (self.ca), and gives
    every TLS port a free port of its own (inst.submission_port and so
    on)."""

    def tls_instance(self, kinds=('ec',), start=True, ca=False, **cfg):
        inst = self.smtp_instance(start=False, **cfg)
        self.pairs = {}
        self.ca = make_ca(inst.dir) if ca else None
        for k in kinds:
            if ca:
                self.pairs[k] = make_signed_pair(inst.dir, k, k, self.ca)
            else:
                self.pairs[k] = make_pair(inst.dir, k, k)
        inst.submission_port = pmtest.free_port()
        inst.smtps_port = pmtest.free_port()
        inst.pop3s_port = pmtest.free_port()
        inst.write_config(
            tls={'cert': [self.pairs[k][0] for k in kinds],
                 'key': [self.pairs[k][1] for k in kinds]},
            submissionport=inst.submission_port,
            smtpsport=inst.smtps_port, pop3sport=inst.pop3s_port)
        if start:
            inst.start()
            inst.wait_port()
        return inst

    def context(self):
        return client_context(*[c for c, _ in self.pairs.values()])
