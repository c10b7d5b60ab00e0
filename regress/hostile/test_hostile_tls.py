"""A compromised smtpd on its TLS signing socket (pymaild/tlskeys.c):
well-formed requests are signed; requests that do not suit the key (an
algorithm of the other key type, a digest of the wrong length, a stale
generation, no such key, and above all an RSA block that is not a PSS
encoding, which would make the parent a decryption oracle) get a failure
and nothing else; a malformed frame or another message type there fails
closed.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_tls.py
"""

import hashlib
import os
import socket
import struct
import subprocess
import tempfile

from lib import hostile
from lib.hostile import T, u32
from lib.hostile import pmtest
from lib import tlsutil

RSA_PKCS1, RSA_PSS, ECDSA = 1, 2, 3
NID_SHA256 = 672
KEY_RSA, KEY_EC = 1, 2


def mgf1(seed, n):
    out = b''
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + struct.pack('>I', i)).digest()
        i += 1
    return out[:n]


def pss_block(digest, modbits=2048):
    """EMSA-PSS (RFC 8017 9.1.1) of a SHA-256 digest, salt of 32."""
    embits = modbits - 1
    emlen = (embits + 7) // 8
    salt = os.urandom(32)
    h = hashlib.sha256(b'\0' * 8 + digest + salt).digest()
    db = b'\0' * (emlen - 32 - 32 - 2) + b'\x01' + salt
    masked = bytes(a ^ b for a, b in zip(db, mgf1(h, len(db))))
    masked = bytes([masked[0] & (0xff >> (8 * emlen - embits))]) + \
        masked[1:]
    return masked + h + b'\xbc'


def verify(pubcert, alg, data, sig):
    """openssl pkeyutl checks the signature with the certificate's key."""
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for name, v in (('data', data), ('sig', sig)):
            paths[name] = os.path.join(d, name)
            with open(paths[name], 'wb') as f:
                f.write(v)
        args = [tlsutil.OPENSSL, 'pkeyutl', '-verify', '-certin', '-inkey',
                pubcert, '-in', paths['data'], '-sigfile', paths['sig']]
        if alg == RSA_PKCS1:
            args += ['-pkeyopt', 'digest:sha256']
        return subprocess.run(args, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT).returncode == 0


class Signer(hostile.HostileCase):

    def instance(self, **overrides):
        inst = super().instance(**overrides)
        self.pairs = [tlsutil.make_pair(inst.dir, 'rsa', 'rsa'),
                      tlsutil.make_pair(inst.dir, 'ec', 'ec')]
        inst.write_config(tls={'cert': [c for c, _ in self.pairs],
                               'key': [k for _, k in self.pairs]},
                          submissionport=0, smtpsport=0,
                          pop3sport=pmtest.free_port())
        return inst

    def start(self):
        inst, p, peer = self.start_hostile('smtpd')
        _, fd = peer.expect_fd(T['IMSG_TLS_SIGNER'])
        self.assertIsNotNone(fd, 'no signing socket')
        sock = socket.socket(fileno=fd)
        self.addCleanup(sock.close)
        certs = []
        for _ in self.pairs:
            payload = peer.expect(T['IMSG_TLS_CERT'])
            gen, index, count, kind, n = struct.unpack_from('<5I', payload)
            certs.append((gen, index, count, kind))
            self.assertNotIn(b'PRIVATE KEY', payload)
        self.assertEqual([(i, c, k) for _, i, c, k in certs],
                         [(0, 2, KEY_RSA), (1, 2, KEY_EC)])
        self.gen = certs[0][0]
        self.peer = peer
        return inst, p, hostile.Peer(sock)

    def failed_closed(self, inst, p):
        self.assertFailsClosed(inst, p, 'malformed signing request')

    def sign(self, signer, alg, data, index, md=0, gen=None, reqid=7):
        gen = self.gen if gen is None else gen
        signer.send(T['IMSG_TLS_SIGN'], u32(reqid) + u32(gen) + u32(index) +
                    u32(alg) + u32(md) + u32(len(data)) + data)
        t, payload, fd = signer.recv()
        self.assertEqual(t, T['IMSG_TLS_SIGN_REPLY'])
        rid, result, n = struct.unpack_from('<3I', payload)
        self.assertEqual(rid, reqid)
        self.assertEqual(len(payload), 12 + n)
        return result, payload[12:]

    def test_signs_what_suits_the_key(self):
        inst, p, signer = self.start()
        digest = hashlib.sha256(b'handshake').digest()
        rsa, ec = self.pairs[0][0], self.pairs[1][0]
        r, sig = self.sign(signer, ECDSA, digest, 1)
        self.assertEqual(r, 0)
        self.assertTrue(verify(ec, ECDSA, digest, sig))
        r, sig = self.sign(signer, RSA_PKCS1, digest, 0, md=NID_SHA256)
        self.assertEqual(r, 0)
        self.assertTrue(verify(rsa, RSA_PKCS1, digest, sig))
        r, sig = self.sign(signer, RSA_PSS, pss_block(digest), 0)
        self.assertEqual((r, len(sig)), (0, 256))
        self.assertRunning(inst, p)

    def test_refuses_what_does_not(self):
        inst, p, signer = self.start()
        digest = hashlib.sha256(b'handshake').digest()
        block = pss_block(digest)
        cases = [
            (RSA_PKCS1, digest, 1, NID_SHA256, None),   # EC key
            (ECDSA, digest, 0, 0, None),                # RSA key
            (ECDSA, digest[:31], 1, 0, None),           # odd length
            (RSA_PKCS1, digest, 0, 4, None),            # MD5
            (RSA_PKCS1, digest[:20], 0, NID_SHA256, None),
            (ECDSA, digest, 1, 0, self.gen + 1),        # not yet
            (ECDSA, digest, 1, 0, self.gen - 1),        # before a reload
            # A raw RSA operation on what is no PSS encoding: a
            # ciphertext, say. Never done.
            (RSA_PSS, os.urandom(256), 0, 0, None),
            (RSA_PSS, block[:-1] + b'\xbd', 0, 0, None),
            (RSA_PSS, b'\x80' + block[1:], 0, 0, None),
            (RSA_PSS, block[:255], 0, 0, None),
        ]
        for alg, data, index, md, gen in cases:
            r, sig = self.sign(signer, alg, data, index, md=md, gen=gen)
            self.assertEqual((r, sig), (1, b''), (alg, index, md, gen))
        # No such key: the reader refuses an index past TLS_PAIRS_MAX,
        # but 0 and 1 exist; the channel is still fine.
        r, _ = self.sign(signer, ECDSA, digest, 1)
        self.assertEqual(r, 0)
        self.assertRunning(inst, p)

    def test_malformed_frame_fails_closed(self):
        inst, p, signer = self.start()
        signer.send(T['IMSG_TLS_SIGN'], u32(1) + u32(self.gen) + u32(0))
        self.failed_closed(inst, p)

    def test_other_type_fails_closed(self):
        inst, p, signer = self.start()
        signer.send(T['IMSG_AUTH'], u32(1) + hostile.s('alice') +
                    hostile.s('x') + hostile.s('192.0.2.1'))
        self.failed_closed(inst, p)

    def test_index_out_of_range_fails_closed(self):
        inst, p, signer = self.start()
        signer.send(T['IMSG_TLS_SIGN'], u32(1) + u32(self.gen) + u32(9) +
                    u32(ECDSA) + u32(0) + u32(32) + b'x' * 32)
        self.failed_closed(inst, p)


if __name__ == '__main__':
    import unittest
    unittest.main()
