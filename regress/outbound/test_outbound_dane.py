"""DANE for outbound SMTP (RFC 7672), against a real DNS server
(regress/lib/dnsfixture.py: ldns-testns, AD set as a validating resolver
sets it) and real TLS sinks (regress/lib/sink.py) at the instance's
`outboundport` on 127.0.0.x:

- authentic TLSA 3 1 1 matching the MX's certificate: delivered over TLS,
  the log says dane=verified;
- authentic TLSA 2 0 1 naming the CA of the MX's certificate (DANE-TA),
  the certificate made out to the MX host's name: delivered, verified;
- authentic TLSA that matches nothing: deferred, never sent, the last
  error names DANE; nor is the mail sent in plaintext afterwards;
- authentic TLSA and a server that does not offer STARTTLS: deferred;
- authentic TLSA with only PKIX usages (0, 1: unusable for SMTP): TLS
  without authentication, delivered (dane=unusable);
- TLSA without AD (an unsigned zone): opportunistic, delivered over TLS
  although the record matches nothing;
- no TLSA at all: opportunistic as before;
- a TLSA lookup that fails (SERVFAIL) for a host whose address is
  authentic (a signed zone): deferred; in an unsigned zone: delivered;
- a message that keeps failing DANE until maxqueuetime bounces, and the
  DSN says DANE;
- mxcache keeps a TLSA answer for its TTL (one question for several
  messages) and asks again once it is over: a record changed in the DNS
  is then obeyed.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_dane.py
"""

import os
import shutil
import tempfile
import time

from lib.oututil import (OutCase, lasterror, log_lines, make_message,
                         parse_dsn, submit, wait_deferred, wait_mail,
                         wait_queue_empty)
from lib.sink import tls_context
from lib import dnsfixture
import ssl                                                       # noqa

ALICE = 'alice@test.example'
WRONG = '00' * 32


class Dane(OutCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix='pmdane-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.inst = self.out_instance()
        self.ctx = tls_context(self.dir, 'mx.dane.test')

    def zone(self, tlsa=(), host='mx.dane.test', extra=''):
        port = self.inst.outbound_port
        lines = ['$ORIGIN dane.test.', '$TTL 3600',
                 '@ MX 10 %s.' % host, '%s. A 127.0.0.3' % host]
        for rec in tlsa:
            lines.append('_%d._tcp.%s. TLSA %s' % (port, host, rec))
        return '\n'.join(lines) + '\n' + extra

    def dns(self, zone, **kw):
        srv = dnsfixture.DNSServer(self.inst.resolver_port, zone, **kw)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def tlsa_name(self, host='mx.dane.test'):
        return '_%d._tcp.%s' % (self.inst.outbound_port, host)

    def mx(self, **cfg):
        s = self.sink('127.0.0.3', self.inst.outbound_port, **cfg)
        return s

    def secure(self, host='mx.dane.test'):
        return ['dane.test', host, self.tlsa_name(host)]

    def send(self, subject):
        msg = make_message(subject, to='x@dane.test')
        return submit(self.inst, ALICE, ['x@dane.test'], msg), msg

    def delivered(self, sink, qid, msg, *needles):
        txn = self.wait_delivered(sink, 1, self.inst)[0]
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(self.inst)
        self.assertTrue(log_lines(self.inst, qid, 'result=sent',
                                  *needles), self.inst.log_tail(30))
        return txn

    def deferred(self, sink, qid, *needles):
        e = wait_deferred(self.inst, qid, text='DANE')
        err = lasterror(e)
        for n in needles:
            self.assertIn(n, err)
        self.wait_sink_idle(sink)
        self.assertEqual(sink.transactions, [], sink.describe())
        for s in sink.session_list():
            self.assertFalse([c for c in s.commands
                              if c.startswith(b'MAIL')], sink.describe())
        return err

    def test_ee_match_verified(self):
        spki = dnsfixture.tlsa_hash(self.ctx.cert_path, 1)
        self.dns(self.zone(['3 1 1 ' + spki]), authentic=self.secure())
        sink = self.mx(tls=self.ctx)
        qid, msg = self.send('DANE-EE match')
        txn = self.delivered(sink, qid, msg, 'dane=verified')
        self.assertRegex(txn.tls or '', r'^TLSv1\.[23] ')

    def test_ta_match_verified(self):
        from lib import tlsutil
        ca, _ = tlsutil.make_ca(self.dir)
        cert, key = tlsutil.make_signed_pair(self.dir, 'mx', 'ec', (ca, _),
                                             cn='mx.dane.test')
        chain = os.path.join(self.dir, 'chain.pem')
        with open(chain, 'w') as f:
            f.write(open(cert).read() + open(ca).read())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
        self.dns(self.zone(['2 0 1 ' + dnsfixture.tlsa_hash(ca, 0)]),
                 authentic=self.secure())
        sink = self.mx(tls=ctx)
        qid, msg = self.send('DANE-TA match')
        self.delivered(sink, qid, msg, 'dane=verified')

    def test_mismatch_deferred(self):
        self.dns(self.zone(['3 1 1 ' + WRONG]), authentic=self.secure())
        sink = self.mx(tls=self.ctx)
        qid, _ = self.send('DANE mismatch')
        err = self.deferred(sink, qid, 'TLSA')
        self.assertIn('127.0.0.3', err)
        # once in TLS, never again in plaintext
        sessions = sink.session_list()
        self.assertEqual(len(sessions), 1, sink.describe())
        self.assertIn(b'STARTTLS\r\n', sessions[0].commands)
        self.assertTrue(log_lines(self.inst, qid, 'dane=failed'))

    def test_no_starttls_deferred(self):
        spki = dnsfixture.tlsa_hash(self.ctx.cert_path, 1)
        self.dns(self.zone(['3 1 1 ' + spki]), authentic=self.secure())
        sink = self.mx()
        qid, _ = self.send('DANE, no STARTTLS')
        self.deferred(sink, qid, 'STARTTLS')

    def test_pkix_only_unusable_encrypts(self):
        self.dns(self.zone(['1 1 1 ' + WRONG, '0 0 1 ' + WRONG]),
                 authentic=self.secure())
        sink = self.mx(tls=self.ctx)
        qid, msg = self.send('DANE, PKIX usages only')
        txn = self.delivered(sink, qid, msg, 'dane=unusable')
        self.assertIsNotNone(txn.tls)

    def test_not_authentic_opportunistic(self):
        self.dns(self.zone(['3 1 1 ' + WRONG]))
        sink = self.mx(tls=self.ctx)
        qid, msg = self.send('TLSA without AD')
        txn = self.delivered(sink, qid, msg, 'tls=TLSv1.')
        self.assertIsNotNone(txn.tls)
        self.assertFalse(log_lines(self.inst, qid, 'dane=verified'))
        self.assertTrue(log_lines(self.inst, qid, 'dane=insecure'))

    def test_no_tlsa_opportunistic(self):
        self.dns(self.zone(), authentic=self.secure())
        sink = self.mx(tls=self.ctx)
        qid, msg = self.send('no TLSA')
        txn = self.delivered(sink, qid, msg, 'tls=TLSv1.')
        self.assertIsNotNone(txn.tls)
        self.assertFalse(log_lines(self.inst, qid, 'dane='))

    def test_servfail_signed_zone_deferred(self):
        self.dns(self.zone(), authentic=self.secure(),
                 servfail=[self.tlsa_name()])
        sink = self.mx(tls=self.ctx)
        qid, _ = self.send('TLSA SERVFAIL, signed')
        self.deferred(sink, qid, 'TLSA lookup failed')
        self.assertEqual(sink.connections, 0)

    def test_servfail_unsigned_zone_opportunistic(self):
        self.dns(self.zone(), servfail=[self.tlsa_name()])
        sink = self.mx(tls=self.ctx)
        qid, msg = self.send('TLSA SERVFAIL, unsigned')
        self.delivered(sink, qid, msg, 'tls=TLSv1.')

    def test_dsn_says_dane(self):
        self.inst.stop()
        self.inst = self.out_instance(maxqueuetime=3, retrymin=1,
                                      retrymax=1)
        self.dns(self.zone(['3 1 1 ' + WRONG]), authentic=self.secure())
        sink = self.mx(tls=self.ctx)
        self.send('DANE mismatch until it expires')
        [(_, raw)] = wait_mail(self.inst, 'alice', 1, timeout=20,
                              extra=sink.describe())
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual(fields[0].get('action', '').lower(), 'failed')
        self.assertIn('DANE', fields[0].get('diagnostic-code', '') +
                      raw.decode('utf-8', 'replace'))
        self.assertEqual(sink.transactions, [])


    def tlsa_asked(self, source):
        return len(log_lines(self.inst, 'tlsa key=mx.dane.test:%d'
                             % self.inst.outbound_port,
                             'source=%s' % source))

    def test_tlsa_kept_for_its_ttl(self):
        spki = dnsfixture.tlsa_hash(self.ctx.cert_path, 1)
        ttl = 3
        zone = self.zone(['3 1 1 ' + spki]).replace(' TLSA ',
                                                    ' %d TLSA ' % ttl)
        srv = self.dns(zone, authentic=self.secure())
        sink = self.mx(tls=self.ctx)
        qid, msg = self.send('TLSA asked')
        self.delivered(sink, qid, msg, 'dane=verified')
        asked = time.monotonic()
        qid, msg = self.send('TLSA kept')
        txn = self.wait_delivered(sink, 2, self.inst)[1]
        self.assertTrue(txn.data.endswith(msg))
        self.assertEqual(self.tlsa_asked('dns'), 1, self.inst.log_tail(40))
        self.assertGreaterEqual(self.tlsa_asked('cache'), 1)
        # The record changes; once its TTL is over it is asked again and
        # the new one (matching nothing) is obeyed.
        srv.stop()
        srv.set_zone(self.zone(['3 1 1 ' + WRONG]).replace(
            ' TLSA ', ' %d TLSA ' % ttl), authentic=self.secure())
        srv.start()
        time.sleep(max(0.0, asked + ttl + 1.0 - time.monotonic()))
        qid, _ = self.send('TLSA asked again')
        wait_deferred(self.inst, qid, text='DANE')
        self.assertEqual(self.tlsa_asked('dns'), 2, self.inst.log_tail(40))
        self.assertEqual(len(sink.transactions), 2, sink.describe())


if __name__ == '__main__':
    import unittest
    unittest.main()
