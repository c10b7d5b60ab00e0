"""A compromised smtpd asking mxcache DNS questions (IMSG_DNS_QUERY,
common/dnsmsg.h). Every question is answered exactly once; past 32
lookups under way for smtpd the rest are refused at once with a
temporary failure (never queued behind the resolver, where they would
hold outbound's MX lookups back); a question out of shape (a type not
served, a name not in normal form, a descriptor) closes the channel and
the daemon fails closed; answers come from the cache while their TTL
lasts.

Run alone (needs a REGRESS=1 build):
    /usr/bin/python3 regress/run.py regress/hostile/test_hostile_dns.py
"""

import contextlib
import os
import re
import select
import socket
import struct
import threading
import time

from lib import hostile
from lib.hostile import T, u32, s
from lib import pmtest
from lib.dnsfixture import Blackhole, DNSServer

DNS_T_A, DNS_T_TXT, DNS_T_TLSA = 1, 16, 52
OK, NXDOMAIN, NODATA, TEMPFAIL = 0, 1, 2, 3
LOOKUPS_MAX = 32

ZONE = '''
$ORIGIN bl.test.
$TTL 900
2.0.0.127   A   127.0.0.2
2.0.0.127   TXT "listed"
'''


class PickyResolver:
    """A resolver on 127.0.0.1:port that never answers names under
    `silent` and answers NXDOMAIN to the rest, at once: lookups of the
    first kind sit on the wire until mxcache gives up on them."""

    def __init__(self, port, silent):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', port))
        self.silent = silent
        self.stop = threading.Event()
        self.answered = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def qname(pkt):
        labels, off = [], 12
        while off < len(pkt) and pkt[off] != 0 and len(labels) < 128:
            n = pkt[off]
            labels.append(pkt[off + 1:off + 1 + n].decode('ascii',
                                                          'replace'))
            off += 1 + n
        return '.'.join(labels).lower(), off + 5

    def serve(self):
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            if not select.select([self.sock], [], [], 0.1)[0]:
                continue
            pkt, peer = self.sock.recvfrom(4096)
            if len(pkt) < 17:
                continue
            name, end = self.qname(pkt)
            if name.endswith(self.silent):
                continue
            self.answered.append(name)
            # QR RD RA, NXDOMAIN, the question echoed, nothing else.
            reply = pkt[:2] + struct.pack('>HHHHH', 0x8183, 1, 0, 0, 0) + \
                pkt[12:end]
            self.sock.sendto(reply, peer)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def mxfile(domain):
    return ('domain %s\nexpires %d\nstatus ok\nmx 10 mx.%s 192.0.2.1\n'
            % (domain, int(time.time()) + 3600, domain)).encode()


def query(req, name, qtype=DNS_T_A, tag=0):
    return u32(req) + u32(tag) + u32(qtype) + s(name)


def answer(payload):
    """(req, tag, qtype, status, ttl, [records])"""
    req, tag, qtype, status, ttl, n = struct.unpack_from('<6I', payload)
    off, recs = 24, []
    for _ in range(n):
        (ln,) = struct.unpack_from('<I', payload, off)
        recs.append(payload[off + 4:off + 4 + ln])
        off += 4 + ln
    assert off == len(payload), 'trailing bytes'
    return req, tag, qtype, status, ttl, recs


class DnsQueries(hostile.HostileCase):

    def start(self):
        inst, p, peer = self.start_hostile('smtpd')
        # The stub's channels after the parent's: queued, then mxcache.
        self.assertEqual(len(self.peer_chans), 2)
        return inst, p, peer, self.peer_chans[1]

    def replies(self, mx, want, timeout):
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            try:
                t, payload, fd = mx.recv(timeout=max(0.05, deadline -
                                                     time.monotonic()))
            except TimeoutError:
                break
            self.assertEqual(t, T['IMSG_DNS_REPLY'])
            self.assertIsNone(fd)
            a = answer(payload)
            self.assertNotIn(a[0], got, 'req %d answered twice' % a[0])
            got[a[0]] = a
        return got

    def test_flood_refused_past_the_bound_every_query_answered(self):
        inst = None
        inst, p, peer, mx = self.start()
        hole = Blackhole(inst.resolver_port)
        self.addCleanup(hole.close)
        n = 400
        for i in range(n):
            mx.send(T['IMSG_DNS_QUERY'], query(i + 1, 'n%d.flood.test' % i))
        # The refusals come at once; the 32 lookups wait on the resolver.
        first = self.replies(mx, n - LOOKUPS_MAX, 5)
        self.assertEqual(len(first), n - LOOKUPS_MAX)
        self.assertTrue(all(a[3] == TEMPFAIL and a[5] == [] for a in
                            first.values()))
        rest = self.replies(mx, LOOKUPS_MAX, 15)
        self.assertEqual(len(rest), LOOKUPS_MAX)
        self.assertEqual(set(first) | set(rest), set(range(1, n + 1)))
        self.assertTrue(all(a[3] == TEMPFAIL for a in rest.values()))
        log = inst.log()
        self.assertIn('result=refused reason="too many lookups under way"',
                      log)
        # One line a lookup; the refusals, one a second at most.
        self.assertEqual(len(re.findall(r'dns qname=n\S+ qtype=A result=',
                                        log)), LOOKUPS_MAX)
        self.assertLess(log.count('result=refused'), 10)
        # Room again once they are over.
        mx.send(T['IMSG_DNS_QUERY'], query(9999, 'again.flood.test'))
        self.assertFalse(self.replies(mx, 1, 1), 'refused at once')
        self.assertRunning(inst, p)

    def test_flood_does_not_hold_back_mx_lookups(self):
        # A cached domain, so that updatemx has an MX lookup to make.
        orig_instance = self.instance

        def instance(**kw):
            inst = orig_instance(**kw)
            orig_start = inst.start_foreground

            def start(*args):
                os.makedirs(inst.maildir, exist_ok=True)
                with open(os.path.join(inst.maildir, 'mxservers'),
                          'wb') as f:
                    f.write(mxfile('mx.test'))
                return orig_start(*args)
            inst.start_foreground = start
            return inst
        self.instance = instance
        inst, p, peer, mx = self.start()
        self.assertTrue(pmtest.wait_for(
            lambda: 'mx cache loaded: domains=1' in inst.log(), 10),
            inst.log_tail())
        res = PickyResolver(inst.resolver_port, 'flood.test')
        self.addCleanup(res.close)
        n = 400
        for i in range(n):
            mx.send(T['IMSG_DNS_QUERY'], query(i + 1, 'n%d.flood.test' % i))
        self.assertEqual(len(self.replies(mx, n - LOOKUPS_MAX, 5)),
                         n - LOOKUPS_MAX)
        # smtpd's lookups sit on the wire; the MX lookup goes past them.
        t0 = time.monotonic()
        r = inst.adm('updatemx')
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, (r.stdout, r.stderr))
        self.assertIn('MX cache refreshed: 1 domain', r.stdout)
        self.assertLess(took, 2.0, 'updatemx waited %.1f s' % took)
        self.assertIn('mx.test', res.answered)
        self.assertEqual(len(self.replies(mx, LOOKUPS_MAX, 15)),
                         LOOKUPS_MAX)
        self.assertRunning(inst, p)

    def test_same_question_is_one_lookup_and_cached(self):
        inst, p, peer, mx = self.start()
        dns = DNSServer(inst.resolver_port, ZONE)
        self.addCleanup(dns.cleanup)
        dns.start()
        for i in range(100):
            mx.send(T['IMSG_DNS_QUERY'], query(i + 1, '2.0.0.127.bl.test',
                                               tag=7))
        got = self.replies(mx, 100, 10)
        self.assertEqual(len(got), 100)
        for a in got.values():
            self.assertEqual(a[1:4], (7, DNS_T_A, OK))
            self.assertEqual(a[5], [b'127.0.0.2'])
            self.assertTrue(60 <= a[4] <= 900, a)
        mx.send(T['IMSG_DNS_QUERY'], query(500, '2.0.0.127.bl.test',
                                           DNS_T_TXT))
        mx.send(T['IMSG_DNS_QUERY'], query(501, 'nothere.bl.test'))
        got = self.replies(mx, 2, 10)
        self.assertEqual(got[500][3:], (OK, 900, [b'listed']))
        self.assertEqual(got[501][3], NXDOMAIN)
        dns.stop()
        mx.send(T['IMSG_DNS_QUERY'], query(600, '2.0.0.127.bl.test'))
        self.assertEqual(self.replies(mx, 1, 5)[600][5], [b'127.0.0.2'])
        self.assertEqual(inst.log().count('dns qname=2.0.0.127.bl.test '
                                          'qtype=A '), 1)
        self.assertRunning(inst, p)

    def bad(self, payload, fd=None):
        inst, p, peer, mx = self.start()
        mx.send(T['IMSG_DNS_QUERY'], payload, fd=fd)
        # What smtpd does at IMSG_SHUTDOWN: exit (else the stop waits
        # out its grace for the stand-in).
        with contextlib.suppress(TimeoutError, EOFError):
            peer.expect(T['IMSG_SHUTDOWN'], timeout=30)
        _, roles, _ = inst.processes()
        for pid in roles.get('smtpd', []):
            pmtest.kill_pid(pid)
        try:
            rc = p.wait(30)
        except Exception:
            self.fail('pymaild did not fail closed:\n%s' % inst.log_tail())
        self.assertEqual(rc, 1, inst.log_tail())
        self.assertRegex(inst.log(), r'mxcache.*smtpd: malformed message; '
                         'failing closed')

    def test_name_not_normalized_fails_closed(self):
        self.bad(query(1, 'Upper.Example'))

    def test_name_not_a_dns_name_fails_closed(self):
        self.bad(query(1, 'a..b'))

    def test_type_not_served_fails_closed(self):
        self.bad(query(1, 'example.org', DNS_T_TLSA))

    def test_descriptor_fails_closed(self):
        self.bad(query(1, 'example.org'), fd=os.open('/dev/null', os.O_RDONLY))

    def test_short_payload_fails_closed(self):
        self.bad(query(1, 'example.org')[:-1])
