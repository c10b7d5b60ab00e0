"""dnsfixture: a real DNS server on a loopback port for the tests.

    dns = DNSServer(inst.resolver_port, '''
        $ORIGIN example.test.
        $TTL 3600
        @        MX 10 mx1
        @        MX 20 mx2
        mx1      A  127.0.0.1
        mx2      AAAA ::1
        ''', servfail=['broken.example.test'])
    dns.start(); ...; dns.stop()

The test writes the zone (zone-file syntax, one record a line, names
relative to $ORIGIN unless they end in a dot); the fixture turns it into
a data file for ldns-testns (Debian's ldnsutils), which answers over UDP
and TCP as an authoritative server would: the records of a name and type
(following a CNAME), NODATA with the SOA for a name that exists without
that type, NXDOMAIN for anything else.  Misbehaviour on demand:
servfail=[names] answers SERVFAIL, truncate=[names] sets TC over UDP (so
the client must retry over TCP), garbage=[names] sends bytes that are no
DNS message.  Blackhole(port) takes the port and never answers.

For data a zone file cannot say, a test may give the records themselves
(records=[(owner, ttl, type, rdata)], owners absolute) instead of the
zone text; txt_rdata() writes the data of a TXT (or SPF, type 99)
record of several strings, any octets.  timeout=[name or (name, type)]
never answers in time (the server sleeps TIMEOUT_SLEEP seconds on that
query while other instances of it answer the rest); exists=[names]
are names without any record (NODATA for every type).

DNSSEC as a validating resolver reports it: authentic=[names] sets the AD
bit on every answer for those names (SERVFAIL included), as a resolver
does for data it validated; the others go without AD.  TLSA records are
written as in a zone file (`_25._tcp.mx TLSA 3 1 1 <hex>`); tlsa_hash()
gives the data of a `3 1 1` or `2 0 1` record for a PEM certificate.

Standard library only.
"""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from lib import pmtest

LDNS_TESTNS = shutil.which('ldns-testns') or '/usr/bin/ldns-testns'

SOA_NAME = 'ns.fixture.invalid.'

# timeout=: how long the server sits on such a query (a client gives up
# well before), and how many extra server processes answer meanwhile.
TIMEOUT_SLEEP = 3
TIMEOUT_FORKS = 8


class ZoneError(ValueError):
    pass


def _absolute(name, origin):
    if name == '@':
        return origin
    if name.endswith('.'):
        return name.lower()
    return (name + '.' + origin).lower() if origin != '.' else \
        name.lower() + '.'


def parse_zone(text):
    """[(owner, ttl, type, rdata)], owners absolute and lower-case."""
    origin, ttl, last = '.', 3600, None
    out = []
    for raw in text.splitlines():
        line = raw.split(';', 1)[0].rstrip()
        if not line.strip():
            continue
        words = line.split()
        if words[0] == '$ORIGIN':
            origin = words[1] if words[1].endswith('.') else words[1] + '.'
            origin = origin.lower()
            continue
        if words[0] == '$TTL':
            ttl = int(words[1])
            continue
        if line[0] in ' \t':
            if last is None:
                raise ZoneError('no owner for %r' % raw)
            owner = last
        else:
            owner = _absolute(words.pop(0), origin)
        last = owner
        rttl = ttl
        if words and words[0].isdigit():
            rttl = int(words.pop(0))
        if words and words[0].upper() == 'IN':
            words.pop(0)
        if len(words) < 2:
            raise ZoneError('bad record %r' % raw)
        rtype = words[0].upper()
        rdata = words[1:]
        if rtype in ('MX',):
            rdata = [rdata[0], _absolute(rdata[1], origin)]
        elif rtype in ('CNAME', 'NS'):
            rdata = [_absolute(rdata[0], origin)]
        out.append((owner, rttl, rtype, ' '.join(rdata)))
    return out


def _rr(owner, ttl, rtype, rdata):
    return '%s %d IN %s %s' % (owner, ttl, rtype, rdata)


def _entry(match, reply, question, answer=(), authority=(), adjust='copy_id',
           hex_answer=None):
    lines = ['ENTRY_BEGIN', 'MATCH ' + match, 'REPLY ' + reply,
             'ADJUST ' + adjust, 'SECTION QUESTION', question]
    if answer:
        lines.append('SECTION ANSWER')
        lines.extend(answer)
    if authority:
        lines.append('SECTION AUTHORITY')
        lines.extend(authority)
    if hex_answer is not None:
        lines.append('HEX_ANSWER_BEGIN')
        lines.append(hex_answer)
        lines.append('HEX_ANSWER_END')
    lines.append('ENTRY_END')
    return '\n'.join(lines) + '\n'


def _flags(flags, name, authentic):
    """REPLY flags, with AD for a name the resolver vouches for."""
    if name not in authentic:
        return flags
    words = flags.split()
    return ' '.join(words[:-1] + ['AD', words[-1]])


def tlsa_hash(cert_pem_path, selector=1):
    """SHA-256 (hex) of the certificate's public key (selector 1) or of
    the whole certificate (selector 0), in DER: a TLSA record's data."""
    import hashlib
    der = subprocess.run(['openssl', 'x509', '-in', cert_pem_path,
                          '-outform', 'DER'], check=True,
                         capture_output=True, timeout=30).stdout
    if selector == 1:
        pem = subprocess.run(['openssl', 'x509', '-in', cert_pem_path,
                              '-noout', '-pubkey'], check=True,
                             capture_output=True, timeout=30).stdout
        der = subprocess.run(['openssl', 'pkey', '-pubin', '-outform',
                              'DER'], input=pem, check=True,
                             capture_output=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def txt_rdata(strings):
    """TXT rdata in zone syntax for strings (str or bytes), each cut
    into character-strings of at most 255 octets; every octet that is
    not plainly safe in the data file is written as \\DDD."""
    safe = set(b'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
               b'0123456789 =:./_+-~?!%{}()@,*&^[]|<>$\'')
    out = []
    for s in strings:
        if isinstance(s, str):
            s = s.encode('utf-8')
        chunks = [s[i:i + 255] for i in range(0, len(s), 255)] or [b'']
        for c in chunks:
            out.append('"' + ''.join(chr(b) if b in safe else '\\%03d' % b
                                     for b in c) + '"')
    # No strings at all cannot go on the wire: one empty string.
    return ' '.join(out) or '""'


def _timeout_entries(timeout, norm):
    out = []
    for t in timeout:
        name, rtype = (t, None) if isinstance(t, str) else t
        match = 'opcode qname' if rtype is None else 'opcode qtype qname'
        out.append(_entry(match, 'QR NOERROR', '%s IN %s' % (
            norm(name), rtype or 'A'),
            adjust='copy_id copy_query sleep=%d' % TIMEOUT_SLEEP))
    return out


def datafile(records, servfail=(), truncate=(), garbage=(), authentic=(),
             timeout=(), exists=()):
    """The ldns-testns data file for these records and misbehaviours."""
    norm = lambda n: n.lower() if n.endswith('.') else n.lower() + '.'
    authentic = set(map(norm, authentic))
    by_name = {}
    for owner, ttl, rtype, rdata in records:
        by_name.setdefault(owner, {}).setdefault(rtype, []).append(
            _rr(owner, ttl, rtype, rdata))
    for name in map(norm, exists):
        by_name.setdefault(name, {})
    soa = _rr('.', 300, 'SOA', '%s hostmaster.fixture.invalid. 1 3600 600 '
              '86400 300' % SOA_NAME)
    out = _timeout_entries(timeout, norm)
    for name in map(norm, garbage):
        # No DNS message at all: a header cut short.
        out.append(_entry('opcode qname', 'QR NOERROR', '%s IN A' % name,
                          adjust='copy_query', hex_answer='00 01 02'))
    for name in map(norm, servfail):
        out.append(_entry('opcode qname',
                          _flags('QR SERVFAIL', name, authentic),
                          '%s IN A' % name,
                          adjust='copy_id copy_query'))
    for name in map(norm, truncate):
        out.append(_entry('opcode qname UDP', 'QR AA TC NOERROR',
                          '%s IN A' % name, adjust='copy_id copy_query'))
    for name, types in by_name.items():
        cname = types.get('CNAME')
        target = by_name.get(cname[0].split()[-1], {}) if cname else {}
        ok = _flags('QR AA NOERROR', name, authentic)
        for rtype, rrs in types.items():
            out.append(_entry('opcode qtype qname', ok,
                              '%s IN %s' % (name, rtype), answer=rrs))
        for rtype, rrs in target.items():
            if rtype not in types:
                out.append(_entry('opcode qtype qname', ok,
                                  '%s IN %s' % (name, rtype),
                                  answer=cname + rrs))
        # The name exists: any other type is NODATA.
        out.append(_entry('opcode qname', ok, '%s IN A' % name,
                          answer=cname or (), authority=() if cname else
                          (soa,), adjust='copy_id copy_query'))
    out.append(_entry('opcode', 'QR AA NXDOMAIN', 'invalid. IN A',
                      authority=(soa,), adjust='copy_id copy_query'))
    return '\n'.join(out)


def query(port, name, qtype=1, timeout=1.0):
    """One UDP query to 127.0.0.1:port; the answer's rcode, or None."""
    qid = os.getpid() & 0xffff
    pkt = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip('.').split('.'):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b'\0' + struct.pack('>HH', qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(pkt, ('127.0.0.1', port))
            data = s.recv(65535)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack('>H', data[:2])[0] != qid:
        return None
    return data[3] & 0x0f


class DNSServer:
    """ldns-testns serving a zone on 127.0.0.1:port (UDP and TCP)."""

    def __init__(self, port, zone='', **misbehave):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix='pmdns-', dir=pmtest.TMPBASE)
        self.proc = None
        self.starttime = None
        self.forks = 0
        self.set_zone(zone, **misbehave)

    def set_zone(self, zone, records=None, **misbehave):
        """Write the data file; a running server must be restarted."""
        self.zone = zone
        self.path = os.path.join(self.dir, 'data')
        if records is None:
            records = parse_zone(zone)
        self.forks = TIMEOUT_FORKS if misbehave.get('timeout') else 0
        with open(self.path, 'w') as f:
            f.write(datafile(records, **misbehave))

    def start(self, timeout=10.0):
        if not os.access(LDNS_TESTNS, os.X_OK):
            raise pmtest.MissingBinary('ldns-testns is not installed: '
                                       'apt-get install ldnsutils')
        self.log = open(os.path.join(self.dir, 'log'), 'ab')
        forks = ['-f', str(self.forks)] if self.forks else []
        self.proc = subprocess.Popen(
            [LDNS_TESTNS] + forks + ['-p', str(self.port), self.path],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            cwd=self.dir, start_new_session=True)
        self.starttime = pmtest.proc_starttime(self.proc.pid)
        # Any answer at all means it serves the file.
        if not pmtest.wait_for(lambda: query(self.port, 'probe.invalid',
                                             timeout=0.2) is not None,
                               timeout):
            self.stop()
            raise AssertionError('ldns-testns did not answer on port %d'
                                 % self.port)
        return self

    def stop(self):
        if self.proc is not None:
            if self.forks:
                # The extra instances are in the group it leads.
                try:
                    os.killpg(self.proc.pid, 15)
                except OSError:
                    pass
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
            self.log.close()

    def restart(self, zone=None, **misbehave):
        self.stop()
        if zone is not None:
            self.set_zone(zone, **misbehave)
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


class Blackhole:
    """Holds the UDP (and TCP) port and never answers: a resolver that is
    down without telling (no ICMP port unreachable)."""

    def __init__(self, port):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(('127.0.0.1', port))

    def close(self):
        self.udp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
