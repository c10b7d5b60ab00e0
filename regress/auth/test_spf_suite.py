"""The SPF evaluator (common/spf.c) against the published RFC 7208 test
suite (openspf.org release 2014.04, as Debian's python3-spf ships it),
every case, through regress/auth/spfcheck: each scenario's zone data is
served by a real DNS server (regress/lib/dnsfixture.py, ldns-testns) and
every question of the evaluator goes to it over UDP/TCP.

The zone data is read as the suite's own driver (pyspf's testspf.py)
reads it: an SPF (type 99) record stands for a TXT record too unless the
name has a TXT record of its own ("NONE" is no record at all); TIMEOUT,
for a name or one type of it, is a server that does not answer in time;
a name listed without records exists (NODATA).

Run alone:
    /usr/bin/python3 regress/run.py regress/auth/test_spf_suite.py
"""

import gzip
import os
import subprocess
import unittest

from lib import pmtest
from lib.dnsfixture import DNSServer, txt_rdata

SUITE = '/usr/share/doc/python3-spf/rfc7208-tests.yml.gz'
# The suite of RFC 4408 (2009.10), which RFC 7208 replaced: its cases
# with a different outcome under RFC 7208 list both results.
SUITE_4408 = '/usr/share/doc/python3-spf/rfc4408-tests.yml.gz'
SPFCHECK = os.path.join(pmtest.ROOT, 'regress', 'auth', 'spfcheck')
QUERY_TIMEOUT = 2       # seconds spfcheck waits for an answer (the
                        # server sits 3 s on a TIMEOUT name; 1 s was too
                        # short for a plain answer on a loaded machine)

# Cases we do not pass, each with the reason; the test fails when one of
# them starts passing, so the list stays true.
EXCEPTIONS = {
}

# The most questions any case of the suite may cost: the RFC's limits
# (10 DNS-querying terms, 10 names per mx or ptr) keep it well below.
QUESTIONS_MAX = 40


# The types the evaluator asks for.
ASKED = ('A', 'AAAA', 'MX', 'TXT', 'PTR')


def _absolute(name):
    return name.lower().rstrip('.') + '.'


def _owner_ok(name):
    labels = name.rstrip('.').split('.')
    return len(name) <= 253 and all(0 < len(x) <= 63 for x in labels)


def _escape_name(name):
    """A name in zone syntax: odd octets (a space, say) as \\DDD."""
    safe = set('abcdefghijklmnopqrstuvwxyz0123456789.-_')
    return ''.join(c if c in safe else '\\%03d' % ord(c) for c in name)


def _strings(v):
    return [v] if isinstance(v, str) else list(v)


def zone_records(zonedata):
    """(records, timeout, exists) for DNSServer from a scenario."""
    records, timeout, exists = [], [], []
    for name, entries in (zonedata or {}).items():
        if not _owner_ok(name):
            continue            # no client can ask for it
        owner = _escape_name(_absolute(name))
        exists.append(owner)
        has_txt = any(isinstance(e, dict) and 'TXT' in e for e in entries)
        seen = set()
        for e in entries:
            if e == 'TIMEOUT':
                # For the types without a record before it (testspf.py).
                if not seen:
                    timeout.append(owner)
                timeout.extend((owner, t) for t in ASKED if t not in seen)
                continue
            for rtype, v in e.items():
                if v != 'NONE':
                    seen.add(rtype)
                if v == 'TIMEOUT':
                    timeout.append((owner, rtype))
                    continue
                if v == 'NONE':
                    continue
                if rtype in ('TXT', 'SPF'):
                    data = txt_rdata(_strings(v))
                    records.append((owner, 300, rtype, data))
                    if rtype == 'SPF' and not has_txt:
                        records.append((owner, 300, 'TXT', data))
                elif rtype == 'MX':
                    records.append((owner, 300, 'MX', '%d %s' % (
                        v[0], _escape_name(_absolute(v[1])))))
                elif rtype in ('PTR', 'CNAME'):
                    records.append((owner, 300, rtype,
                                    _escape_name(_absolute(v))))
                else:
                    records.append((owner, 300, rtype, v))
    return records, timeout, exists


def load_suite(path=SUITE):
    import yaml
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        return list(yaml.safe_load_all(f))


class SPFSuite(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        pmtest.require_built(SPFCHECK)
        if not os.path.exists(SUITE):
            raise pmtest.MissingBinary('no %s: apt-get install python3-spf'
                                       % SUITE)

    def run_scenario(self, scenario):
        records, timeout, exists = zone_records(scenario.get('zonedata'))
        names = sorted(scenario['tests'])
        lines = ''
        for n in names:
            t = scenario['tests'][n]
            lines += '%s\t%s\t%s\n' % (t['host'], t['mailfrom'], t['helo'])
        # A port of its own for each scenario: the last server's TCP
        # socket may still hold the previous one on a loaded machine.
        port = pmtest.free_port()
        dns = DNSServer(port, records=records, timeout=timeout,
                        exists=exists)
        try:
            dns.start()
            out = subprocess.run(
                [SPFCHECK, '-s', '127.0.0.1', '-p', str(port), '-t',
                 str(QUERY_TIMEOUT)], input=lines.encode('utf-8'),
                capture_output=True, timeout=300, check=True).stdout
        finally:
            dns.cleanup()
        got = out.decode('utf-8', 'replace').splitlines()
        self.assertEqual(len(got), len(names), out)
        return [(n, scenario['tests'][n], line.split('\t', 2))
                for n, line in zip(names, got)]

    def run_suite(self, path):
        """(passed, listed exceptions, failures) over a suite file."""
        passed, excepted, failures = 0, 0, []
        for scenario in load_suite(path):
            for name, case, (result, nq, why) in self.run_scenario(
                    scenario):
                want = _strings(case['result'])
                ok = result in want
                if name in EXCEPTIONS:
                    excepted += 1
                    if ok:
                        failures.append('%s passes now: drop it from '
                                        'EXCEPTIONS' % name)
                    continue
                if not ok:
                    failures.append('%s: %s, want %s (%s)' % (
                        name, result, '/'.join(want), why))
                elif int(nq) > QUESTIONS_MAX:
                    failures.append('%s: %s questions' % (name, nq))
                else:
                    passed += 1
        print('%s: %d passed, %d listed exceptions, %d failed'
              % (os.path.basename(path), passed, excepted, len(failures)))
        return passed, excepted, failures

    def test_suite(self):
        passed, excepted, failures = self.run_suite(SUITE)
        self.maxDiff = None
        self.assertEqual(failures, [])
        # The 2014.04 release has 203 cases.
        self.assertEqual(passed + excepted, 203)

    def test_suite_4408(self):
        passed, excepted, failures = self.run_suite(SUITE_4408)
        self.maxDiff = None
        self.assertEqual(failures, [])
        self.assertEqual(passed + excepted, 191)

    def test_hostile_zone(self):
        """Records written to hurt, served over real DNS: each costs a
        permerror or temperror after a bounded number of queries (the
        count spfcheck prints is of queries it sent)."""
        zone = """
$ORIGIN hostile.test.
$TTL 300
cycle-a     TXT "v=spf1 include:cycle-b.hostile.test -all"
cycle-b     TXT "v=spf1 include:cycle-a.hostile.test -all"
many-a      TXT "v=spf1 %s +all"
loop1       CNAME loop2
loop2       CNAME loop1
cname-inc   TXT "v=spf1 include:loop1.hostile.test -all"
bigmx       TXT "v=spf1 mx -all"
voids       TXT "v=spf1 a:n1.hostile.test a:n2.hostile.test a:n3.hostile.test +all"
slow-inc    TXT "v=spf1 include:slow.hostile.test +all"
bomb        TXT "v=spf1 exists:%s.x.hostile.test -all"
""" % (' '.join(['a'] * 100), '%{l}' * 40)
        zone += ''.join('bigmx MX %d m%d.bigmx\n' % (i, i) for i in range(20))
        cases = [
            # (sender, result, most queries)
            ('x@cycle-a.hostile.test', 'permerror', 11),
            ('x@many-a.hostile.test', 'permerror', 11),
            ('x@cname-inc.hostile.test', 'permerror', 2),
            ('x@bigmx.hostile.test', 'permerror', 2),
            ('x@voids.hostile.test', 'permerror', 4),
            ('x@slow-inc.hostile.test', 'temperror', 2),
            (('q' * 60) + '@bomb.hostile.test', 'fail', 2),
        ]
        port = pmtest.free_udp_port()
        lines = ''.join('192.0.2.1\t%s\thelo.test\n' % c[0] for c in cases)
        with DNSServer(port, zone, timeout=['slow.hostile.test']):
            out = subprocess.run(
                [SPFCHECK, '-s', '127.0.0.1', '-p', str(port), '-t',
                 str(QUERY_TIMEOUT)], input=lines.encode(),
                capture_output=True, timeout=120, check=True).stdout
        got = out.decode().splitlines()
        self.assertEqual(len(got), len(cases), out)
        for (sender, want, most), line in zip(cases, got):
            result, nq, why = line.split('\t', 2)
            self.assertEqual(result, want, '%s: %s' % (sender, why))
            self.assertLessEqual(int(nq), most, '%s: %s' % (sender, line))


if __name__ == '__main__':
    unittest.main()
