"""DKIM signing of mail that leaves (RFC 6376 relaxed/relaxed rsa-sha256,
RFC 8463 ed25519-sha256): a real pymaild relays through a real SMTP sink
(the smarthost), and what the sink received is verified by two
implementations we did not write: Debian's python3-dkim (dkimpy, given the
public keys through its dnsfunc hook) and OpenDKIM's opendkim-testmsg
(which asks DNS: a small DNS server of the test answers on 127.0.0.1:53
of the test's private network namespace, and opendkim-testmsg runs in a
mount namespace of its own whose /etc/resolv.conf points there).

What is signed: a message with a remote recipient whose From: domain is
ours, and our bounces to remote senders. What is not: a From: of another
domain, local delivery. A retry sends the same signature. Keys are
checked at start (pymaild -n names the file), and no helper but queued
holds them (a /proc/PID/mem scan, as for the TLS keys).

    /usr/bin/python3 regress/run.py regress/auth/test_dkim_sign.py
"""

import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading

from lib.oututil import (OutCase, log_lines, make_message,
                         submit, wait_deferred, wait_for, wait_mail,
                         wait_queue_empty)
from lib import pmtest

try:
    import dkim
except ImportError:             # the Makefile's test deps install it
    dkim = None

OPENDKIM_TESTMSG = shutil.which('opendkim-testmsg')
ALICE = 'alice@test.example'


def openssl(*args):
    return subprocess.run(('openssl',) + args, check=True,
                          capture_output=True).stdout


def make_key(path, kind):
    if kind == 'rsa':
        openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
                'rsa_keygen_bits:2048', '-out', path)
    elif kind == 'rsa1024':
        openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
                'rsa_keygen_bits:1024', '-out', path)
    elif kind == 'ec':
        openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-out', path)
    else:
        openssl('genpkey', '-algorithm', 'ED25519', '-out', path)
    return path


def key_record(path):
    """The TXT record of a private key file, as a publisher writes it."""
    der = openssl('pkey', '-in', path, '-pubout', '-outform', 'DER')
    text = openssl('pkey', '-in', path, '-noout', '-text').decode()
    if 'ED25519' in text.upper():
        return b'v=DKIM1; k=ed25519; p=' + base64.b64encode(der[-32:])
    return b'v=DKIM1; k=rsa; p=' + base64.b64encode(der)


def signatures(data):
    """The DKIM-Signature fields at the top of a message, unfolded."""
    out = []
    for field in data.split(b'\r\n\r\n', 1)[0].split(b'\r\n'):
        if field[:1] in (b' ', b'\t') and out:
            if out[-1] is not None:
                out[-1] += b'\r\n' + field
        elif field.lower().startswith(b'dkim-signature:'):
            out.append(field)
        else:
            out.append(None)
    return [f for f in out if f is not None]


def without_signature(data, keep):
    """data with only the signature whose a= is keep."""
    head, body = data.split(b'\r\n\r\n', 1)
    fields, cur = [], None
    for line in head.split(b'\r\n'):
        if line[:1] in (b' ', b'\t'):
            cur.append(line)
            continue
        cur = [line]
        fields.append(cur)
    kept = []
    for f in fields:
        text = b'\r\n'.join(f)
        if text.lower().startswith(b'dkim-signature:') and \
                (b'a=' + keep) not in text.replace(b'\r\n\t', b' '):
            continue
        kept.append(text)
    return b'\r\n'.join(kept) + b'\r\n\r\n' + body


class TxtServer:
    """A DNS server for TXT records only, on a UDP port: enough for a
    verifier's key lookups (a bounded loop; a name not listed is
    NXDOMAIN)."""

    def __init__(self, records, port=53):
        self.records = {k.lower().rstrip('.'): v for k, v in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', port))
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def answer(self, q):
        qid, flags, qd = struct.unpack('!HHH', q[:6])
        off, labels = 12, []
        while q[off]:
            n = q[off]
            labels.append(q[off + 1:off + 1 + n].decode('ascii', 'replace'))
            off += 1 + n
        qtype = struct.unpack('!H', q[off + 1:off + 3])[0]
        question = q[12:off + 5]
        name = '.'.join(labels).lower()
        txt = self.records.get(name)
        if txt is None or qtype != 16:
            rcode = 3 if txt is None else 0
            return struct.pack('!HHHHHH', qid, 0x8400 | rcode, 1, 0, 0,
                               0) + question
        rdata = b''.join(bytes([len(txt[i:i + 255])]) + txt[i:i + 255]
                         for i in range(0, len(txt), 255))
        rr = b'\xc0\x0c' + struct.pack('!HHIH', 16, 1, 60, len(rdata)) + \
            rdata
        return struct.pack('!HHHHHH', qid, 0x8400, 1, 1, 0, 0) + \
            question + rr

    def serve(self):
        while not self.stopped:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(q), peer)
            except (IndexError, struct.error, OSError):
                continue

    def stop(self):
        self.stopped = True
        self.thread.join(5)
        self.sock.close()


class DkimSign(OutCase):

    def setUp(self):
        super().setUp()
        if dkim is None:
            self.skipTest('python3-dkim is not installed (make regress '
                          'installs it)')
        self.relay = self.sink('127.0.0.1')
        self.keydir = tempfile.mkdtemp(prefix='dkimkeys-')
        self.addCleanup(shutil.rmtree, self.keydir, True)
        self.rsa = make_key(os.path.join(self.keydir, 'rsa.key'), 'rsa')
        self.ed = make_key(os.path.join(self.keydir, 'ed.key'), 'ed25519')
        self.records = {
            's1._domainkey.test.example': key_record(self.rsa),
            'e1._domainkey.test.example': key_record(self.ed),
        }

    def dkim_conf(self, entries):
        items = ['{ domain = "%s"; selector = "%s"; key = "%s"; }'
                 % e for e in entries]
        return 'dkim = ( %s );' % ', '.join(items)

    def signing_instance(self, entries=None, start=True, relay=True, **cfg):
        if entries is None:
            entries = [('test.example', 's1', self.rsa),
                       ('test.example', 'e1', self.ed)]
        inst = self.out_instance(relay=self.relay if relay else None,
                                 start=False, **cfg)
        inst.write_config(extra=self.dkim_conf(entries))
        if start:
            inst.start()
            inst.wait_port()
        return inst

    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return self.records.get(name.rstrip('.').lower())

    def verify_dkimpy(self, data, n):
        d = dkim.DKIM(data)
        for i in range(n):
            self.assertTrue(d.verify(idx=i, dnsfunc=self.dnsfunc),
                            'dkimpy refuses signature %d: %r\n%r'
                            % (i, d.signature_fields, data[:1500]))

    def verify_opendkim(self, data, ok=True):
        if OPENDKIM_TESTMSG is None or os.geteuid() != 0 or \
                os.environ.get('PYMAILD_NETNS') != '1':
            self.skipTest('opendkim-testmsg needs root in the private '
                          'namespace (a DNS server on port 53)')
        if getattr(self, 'txt', None) is None:
            pmtest.hold_port53(self)
            self.txt = TxtServer(self.records)
            self.addCleanup(self.txt.stop)
        resolv = os.path.join(self.keydir, 'resolv.conf')
        with open(resolv, 'w') as f:
            f.write('nameserver 127.0.0.1\noptions attempts:1 timeout:2\n')
        r = subprocess.run(
            ['unshare', '-m', '--', 'sh', '-c',
             'mount --bind "$1" /etc/resolv.conf && exec "$2"', 'sh',
             resolv, OPENDKIM_TESTMSG], input=data, capture_output=True,
            timeout=30)
        if not ok:
            self.assertNotEqual(r.returncode, 0, 'opendkim-testmsg takes '
                                'a message that was changed')
            return
        self.assertEqual(r.returncode, 0, 'opendkim-testmsg: %r %r\n%r'
                         % (r.stdout, r.stderr, data[:1500]))
        self.assertEqual(r.stdout + r.stderr, b'', 'opendkim-testmsg said '
                         'something: %r' % (r.stdout + r.stderr))

    def relayed(self, inst, n=1):
        self.wait_delivered(self.relay, n, inst)
        return self.relay.transactions[n - 1].data

    def test_signed_rsa_and_ed25519_verify(self):
        inst = self.signing_instance()
        msg = make_message('signed  subject', body=b'line one \r\n\r\n'
                           b'.dotted\r\n\r\n\r\n', sender=ALICE,
                           extra_headers=('Cc: <c@remote.example>',
                                          'MIME-Version: 1.0'))
        submit(inst, ALICE, ['x@remote.example'], msg,
               login=('alice', 'alicepw'))
        data = self.relayed(inst)
        sigs = signatures(data)
        self.assertEqual(len(sigs), 2, data[:2000])
        self.assertIn(b'a=rsa-sha256', sigs[0])
        self.assertIn(b'a=ed25519-sha256', sigs[1].replace(b'\r\n\t', b' '))
        for s in sigs:
            flat = s.replace(b'\r\n\t', b' ')
            self.assertIn(b'c=relaxed/relaxed', flat)
            self.assertIn(b'd=test.example', flat)
            self.assertNotIn(b'l=', flat.split(b'b=')[0].replace(b'bh=', b''))
            # From oversigned: h= names it once more than it is present
            h = flat.split(b'h=')[1].split(b';')[0].replace(b' ', b'')
            self.assertEqual(h.split(b':').count(b'from'), 2, h)
            for line in s.split(b'\r\n'):
                self.assertLess(len(line), 80, s)
        # the message itself is what was submitted, after our headers
        self.assertTrue(data.endswith(msg.split(b'\r\n\r\n', 1)[1]))
        self.verify_dkimpy(data, 2)
        self.verify_opendkim(without_signature(data, b'rsa-sha256'))
        self.verify_opendkim(without_signature(data, b'ed25519-sha256'))
        # both verifiers see a change: the checks above can fail
        changed = data.replace(b'line one', b'line 0ne')
        try:
            taken = dkim.DKIM(changed).verify(idx=0, dnsfunc=self.dnsfunc)
        except dkim.ValidationError:
            taken = False
        self.assertFalse(taken, 'dkimpy takes a message that was changed')
        self.verify_opendkim(without_signature(changed, b'rsa-sha256'),
                             ok=False)
        self.verify_opendkim(without_signature(changed, b'ed25519-sha256'),
                             ok=False)

    def test_mx_delivery_signed(self):
        from lib import dnsfixture
        inst = self.signing_instance(relay=False)
        dns = dnsfixture.DNSServer(inst.resolver_port, '$ORIGIN '
                                   'remote.example.\n@ MX 10 mx\n'
                                   'mx A 127.0.0.5\n')
        self.addCleanup(dns.cleanup)
        dns.start()
        mx = self.sink('127.0.0.5', inst.outbound_port)
        submit(inst, ALICE, ['x@remote.example'],
               make_message('to the MX', sender=ALICE),
               login=('alice', 'alicepw'))
        self.wait_delivered(mx, 1, inst)
        data = mx.transactions[0].data
        self.assertEqual(len(signatures(data)), 2, data[:1500])
        self.verify_dkimpy(data, 2)
        self.assertEqual(self.relay.transactions, [])

    def test_signature_kept_across_restart_and_key_change(self):
        state = {'n': 0}

        def dot(sess, tr, arg):
            state['n'] += 1
            return '451 4.3.0 sink: later' if state['n'] == 1 else None
        self.relay.configure(dot=dot)
        inst = self.signing_instance(
            entries=[('test.example', 's1', self.rsa)])
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('kept', sender=ALICE))
        wait_deferred(inst, qid)
        first = self.relay.transactions[0].data
        inst.stop()
        # the same selector, another key: a signature made again would
        # differ; the one kept with the message does not
        os.unlink(self.rsa)
        make_key(self.rsa, 'rsa')
        inst.start()
        inst.wait_port()
        self.assertEqual(inst.adm('flush').returncode, 0)
        self.wait_delivered(self.relay, 1, inst)     # the first was 451
        second = self.relay.transactions[1].data
        self.assertEqual(first, second)
        self.verify_dkimpy(second, 1)      # with the first key's record

    def test_large_folded_message_verifies(self):
        inst = self.signing_instance(
            entries=[('test.example', 's1', self.rsa)])
        body = b''.join(b'%06d  trailing \t \r\n' % i for i in range(40000))
        msg = make_message('big', body=body, sender=ALICE,
                           extra_headers=('X-Long: a\r\n\tfolded\r\n  '
                                          'header',
                                          'Subject: a second subject'))
        submit(inst, ALICE, ['x@remote.example'], msg)
        data = self.relayed(inst)
        self.assertEqual(len(signatures(data)), 1)
        self.verify_dkimpy(data, 1)

    def test_foreign_from_and_local_mail_unsigned(self):
        inst = self.signing_instance()
        submit(inst, ALICE, ['x@remote.example'],
               make_message('not ours', sender='someone@other.example'))
        submit(inst, ALICE, ['bob@test.example'],
               make_message('local', sender=ALICE, to='bob@test.example'))
        data = self.relayed(inst)
        self.assertEqual(signatures(data), [], data[:800])
        [(_, local)] = wait_mail(inst, 'bob', 1)
        self.assertNotIn(b'DKIM-Signature', local)
        wait_queue_empty(inst)

    def test_retry_sends_the_same_signature(self):
        state = {'n': 0}

        def dot(sess, tr, arg):
            state['n'] += 1
            return '451 4.3.0 sink: later' if state['n'] == 1 else None
        self.relay.configure(dot=dot)
        inst = self.signing_instance(retrymin=1, retrymax=1)
        submit(inst, ALICE, ['x@remote.example'],
               make_message('retried', sender=ALICE))
        self.relay.wait_transactions(2, 30, accepted=False)
        self.assertGreaterEqual(len(self.relay.transactions), 2,
                                self.context(inst, self.relay))
        first, second = (t.data for t in self.relay.transactions[:2])
        self.assertFalse(self.relay.transactions[0].accepted)
        self.assertTrue(self.relay.transactions[1].accepted)
        self.assertEqual(first, second)
        self.assertEqual(len(signatures(second)), 2)
        self.verify_dkimpy(second, 2)

    def test_bounce_to_remote_sender_signed(self):
        self.relay.configure(rcpt_replies={
            'y@remote.example': '550 5.1.1 sink: no such user'})
        inst = self.signing_instance(serverhostname='mail.test.example')
        submit(inst, 'x@remote.example', ['y@remote.example'],
               make_message('will bounce', sender='x@remote.example'))
        data = self.relayed(inst)
        tr = self.relay.transactions[0]
        self.assertEqual(tr.mail_from, '', 'not a bounce: %r' % tr.mail_from)
        self.assertIn(b'MAILER-DAEMON@mail.test.example', data)
        self.assertEqual(len(signatures(data)), 2, data[:1500])
        self.verify_dkimpy(data, 2)

    def test_each_domain_its_own_keys(self):
        """Entries of two domains, listed interleaved: a message of one
        is signed with that domain's keys only; a host name under a
        domain (From: user@host.test.example) takes the domain's."""
        other = make_key(os.path.join(self.keydir, 'other.key'), 'rsa')
        self.records['o1._domainkey.other.example'] = key_record(other)
        inst = self.signing_instance(
            localdomains=['test.example', 'other.example'],
            entries=[('test.example', 's1', self.rsa),
                     ('other.example', 'o1', other),
                     ('test.example', 'e1', self.ed)])
        for i, sender in enumerate(('a@other.example', ALICE,
                                    'a@host.test.example')):
            submit(inst, ALICE, ['x@remote.example'],
                   make_message('domain %d' % i, sender=sender))
            data = self.relayed(inst, i + 1)
            sigs = [x.replace(b'\r\n\t', b' ') for x in signatures(data)]
            want = [b'd=other.example; s=o1;'] if i == 0 else \
                [b'd=test.example; s=s1;', b'd=test.example; s=e1;']
            self.assertEqual(len(sigs), len(want), sigs)
            for sig, w in zip(sigs, want):
                self.assertIn(w, sig)
            self.verify_dkimpy(data, len(want))

    def test_domain_without_key_logged_once(self):
        inst = self.signing_instance(
            localdomains=['test.example', 'other.example'],
            entries=[('test.example', 's1', self.rsa)])
        for i in range(2):
            submit(inst, ALICE, ['x@remote.example'],
                   make_message('no key %d' % i, sender='a@other.example'))
        self.relayed(inst, 2)
        self.assertEqual(signatures(self.relay.transactions[1].data), [])
        wait_for(lambda: log_lines(inst, 'other.example sent unsigned'), 5)
        self.assertEqual(len(log_lines(inst, 'other.example sent unsigned')),
                         1, inst.log_tail(40))

    def check_refused(self, entries, needle, **cfg):
        inst = self.signing_instance(entries=entries, start=False, **cfg)
        r = inst.check_config()
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(needle, r.stderr + r.stdout)
        r = inst.adm('start')
        self.assertEqual(r.returncode, 1, 'started with %s' % needle)

    def test_bad_keys_refused(self):
        d = self.keydir
        small = make_key(os.path.join(d, 'small.key'), 'rsa1024')
        ec = make_key(os.path.join(d, 'ec.key'), 'ec')
        junk = os.path.join(d, 'junk.key')
        with open(junk, 'w') as f:
            f.write('-----BEGIN PRIVATE KEY-----\nnot base64\n')
        rsa2 = make_key(os.path.join(d, 'rsa2.key'), 'rsa')
        self.check_refused([('test.example', 's1', small)], '1024 bits')
        self.check_refused([('test.example', 's1', ec)],
                           'not an RSA or Ed25519 key')
        self.check_refused([('test.example', 's1', junk)],
                           'not a private key')
        self.check_refused([('test.example', 's1',
                             os.path.join(d, 'missing.key'))],
                           'cannot read')
        self.check_refused([('test.example', 's1', self.rsa),
                            ('test.example', 's2', rsa2)],
                           'a second RSA key')
        self.check_refused([('elsewhere.example', 's1', self.rsa)],
                           'not one of localdomains')
        self.check_refused([('test.example', 'bad_sel', self.rsa)],
                           'not a DNS label')

    def give_to_daemon(self, *paths):
        """A reload reads the keys as the daemon's account."""
        if pmtest.IS_ROOT:
            import pwd
            pw = pwd.getpwnam(pmtest.DAEMON_USER)
            for p in paths:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def test_reload_changes_the_keys(self):
        inst = self.signing_instance(
            entries=[('test.example', 's1', self.rsa)])
        submit(inst, ALICE, ['x@remote.example'],
               make_message('before', sender=ALICE))
        [sig] = signatures(self.relayed(inst, 1))
        self.assertIn(b's=s1;', sig)
        rsa2 = make_key(os.path.join(self.keydir, 'rsa2.key'), 'rsa')
        self.records['s2._domainkey.test.example'] = key_record(rsa2)
        self.give_to_daemon(self.keydir, rsa2, self.ed)
        inst.write_config(extra=self.dkim_conf([
            ('test.example', 's2', rsa2), ('test.example', 'e1', self.ed)]))
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr + inst.log_tail())
        submit(inst, ALICE, ['x@remote.example'],
               make_message('after', sender=ALICE))
        data = self.relayed(inst, 2)
        sigs = [s.replace(b'\r\n\t', b' ') for s in signatures(data)]
        self.assertEqual(len(sigs), 2, data[:1500])
        self.assertIn(b's=s2;', sigs[0])
        self.assertIn(b's=e1;', sigs[1])
        self.verify_dkimpy(data, 2)
        # a bad key fails the reload and keeps the keys in use
        junk = os.path.join(self.keydir, 'junk.key')
        with open(junk, 'w') as f:
            f.write('not a key\n')
        self.give_to_daemon(junk)
        inst.write_config(extra=self.dkim_conf([
            ('test.example', 's3', junk)]))
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 1, 'reloaded with a bad key')
        self.assertIn('junk.key', r.stderr + inst.log_tail())
        submit(inst, ALICE, ['x@remote.example'],
               make_message('after a bad reload', sender=ALICE))
        data = self.relayed(inst, 3)
        self.assertEqual(len(signatures(data)), 2)
        self.verify_dkimpy(data, 2)

    def test_dkimkey_makes_keys_that_verify(self):
        inst = self.out_instance(relay=self.relay, start=False)
        r = inst.adm('dkimkey', 'test.example')
        self.assertEqual(r.returncode, 0, r.stderr)
        rsa_path = re.search(r'Key written to (\S+)', r.stdout).group(1)
        self.assertEqual(os.path.dirname(rsa_path),
                         os.path.join(inst.dir, 'dkim'))
        rsa_rec = r.stdout
        out = os.path.join(inst.dir, 'ed.key')
        r = inst.adm('dkimkey', 'test.example', 'e1', '--ed25519', '-o', out)
        self.assertEqual(r.returncode, 0, r.stderr)
        ed_rec = r.stdout
        for path in (rsa_path, out):
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(out, 'rb') as f:
            before = f.read()
        r = inst.adm('dkimkey', 'test.example', 'e1', '--ed25519', '-o', out)
        self.assertEqual(r.returncode, 1, 'an existing key was replaced')
        self.assertIn('exists', r.stderr)
        with open(out, 'rb') as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(inst.adm('dkimkey', 'other.example').returncode, 1)
        self.assertEqual(inst.adm('dkimkey').returncode, 2)
        # the records, as printed, are the keys' (checked with openssl)
        self.records = {}
        entries = []
        for text, path in ((rsa_rec, rsa_path), (ed_rec, out)):
            m = re.search(r'^(\S+)\._domainkey\.test\.example\. IN TXT'
                          r'((?: "[^"]*")+)$', text, re.M)
            self.assertIsNotNone(m, text)
            parts = re.findall(r'"([^"]*)"', m.group(2))
            self.assertTrue(all(len(p) <= 255 for p in parts), parts)
            self.assertEqual(''.join(parts).encode(), key_record(path))
            self.records[m.group(1) + '._domainkey.test.example'] = \
                ''.join(parts).encode()
            self.assertIn('key = "%s"' % path, text)
            entries.append(('test.example', m.group(1), path))
        inst.write_config(extra=self.dkim_conf(entries))
        inst.start()
        inst.wait_port()
        submit(inst, ALICE, ['x@remote.example'],
               make_message('new keys', sender=ALICE))
        self.verify_dkimpy(self.relayed(inst), 2)

    def test_only_queued_holds_the_keys(self):
        if os.geteuid() != 0:
            self.skipTest('reading /proc/PID/mem of another account '
                          'needs root')
        from lib import tlsutil
        inst = self.signing_instance()
        submit(inst, ALICE, ['x@remote.example'],
               make_message('isolation', sender=ALICE))
        self.relayed(inst)
        needles = tlsutil.needles(tlsutil.key_secrets(self.rsa) +
                                  tlsutil.key_secrets(self.ed))
        parent, roles, _ = inst.processes()
        self.assertEqual(set(roles), set(pmtest.ROLES))
        for role, pids in roles.items():
            held = pmtest.memory_holding(pids[0], needles)
            if role == 'queued':
                self.assertTrue(held, 'the scan finds no key in queued, '
                                'which signs: it proves nothing')
            else:
                self.assertEqual(held, set(), '%s holds DKIM key '
                                 'material' % role)


if __name__ == '__main__':
    import unittest
    unittest.main()
