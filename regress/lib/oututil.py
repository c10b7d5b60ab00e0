"""oututil: what the outbound tests share, on top of regress/lib/pmtest.py
and regress/lib/sink.py.

- OutCase: a pmtest.TestCase whose out_instance() makes a private pymaild
  (local domain test.example, users alice and bob) and whose sink() starts
  a real SMTP sink (the remote peer) that is stopped at cleanup.
- submit(): a message into pymaild over SMTP (smtplib; 127.0.0.1 is a
  noauthhosts client, so it may relay), returning the queue id.
- queue(): `pymailadm --json queue`, as a list of dicts; wait_queue().
- DSN parsing: dsn_fields() returns the delivery-status part of a bounce.

Every wait polls with a deadline; nothing sleeps blindly.  Standard
library only; Debian's /usr/bin/python3.
"""

import contextlib
import email
import functools
import os
import re
import smtplib
import time

from lib import pmtest, smtputil
from lib.pmtest import wait_for                     # noqa: F401
from lib.sink import Sink

DOMAIN = 'test.example'
USERS = {'alice': 'alicepw', 'bob': 'bobpw'}
REMOTE = 'remote.example'

# Seconds.  Generous (SANITIZE=1 builds are slower), always polled.
DELIVERY_TIMEOUT = float(os.environ.get('PYMAILD_TEST_DELIVERY', '20'))
SETTLE = 1.0            # quiet time proving that nothing more arrives
REPLY_TIMEOUT = 10.0
# No retry on its own during a test, unless the test asks for one.
NO_RETRY = 3600

QUEUED_RE = re.compile(r'Ok: queued as (\S+)')


# The outbound tests' mail goes from a local user to a remote one by
# default, and a relay hop takes longer than a local delivery.
make_message = functools.partial(smtputil.make_message,
                                 sender='alice@test.example',
                                 to='x@remote.example')


def smtp_connect(port, host='127.0.0.1', helo='client.example'):
    s = smtplib.SMTP(timeout=REPLY_TIMEOUT, local_hostname=helo)
    try:
        code, msg = s.connect(host, port)
    except (OSError, smtplib.SMTPException) as e:
        s.close()
        raise AssertionError('no SMTP greeting from %s:%d: %s'
                             % (host, port, e))
    if code != 220:
        s.close()
        raise AssertionError('greeting %d %r' % (code, msg))
    return s


def submit(inst, sender, rcpts, msg, host='127.0.0.1', port=None,
           login=None):
    """MAIL/RCPT/DATA into pymaild (exact bytes: smtplib only dot-stuffs
    bytes data); asserts 250s; returns the queue id.  login=(user,
    password) authenticates first."""
    s = smtp_connect(port or inst.smtp_port, host)
    try:
        s.ehlo()
        if login:
            s.login(*login)
        code, text = s.mail(sender)
        if code != 250:
            raise AssertionError('MAIL FROM:<%s> -> %d %r'
                                 % (sender, code, text))
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                raise AssertionError('RCPT TO:<%s> -> %d %r'
                                     % (r, code, text))
        code, text = s.data(msg)
        text = text.decode('utf-8', 'replace')
        if code != 250:
            raise AssertionError('end of DATA -> %d %r' % (code, text))
        m = QUEUED_RE.search(text)
        if not m:
            raise AssertionError('end of DATA: no "queued as ID" in %r'
                                 % text)
        with contextlib.suppress(Exception):
            s.quit()
        return m.group(1)
    finally:
        s.close()


def queue(inst):
    """pymailadm --json queue -> list of dicts."""
    q = inst.adm_json('queue')
    if not isinstance(q, list):
        raise AssertionError('pymailadm --json queue: want a JSON list, '
                             'got %r' % (q,))
    return q


def queue_entry(inst, qid):
    for e in queue(inst):
        if e.get('id') == qid:
            return e
    return None


def lasterror(entry):
    for k in ('lasterror', 'last_error', 'last error'):
        if k in entry:
            return entry[k] or ''
    raise AssertionError('queue entry has no last error field: %r' % entry)


def rcpt_addresses(entry):
    out = []
    for r in entry.get('recipients', []):
        out.append(r['address'] if isinstance(r, dict) else r)
    return out


def wait_deferred(inst, qid, text=None, attempts=1, timeout=DELIVERY_TIMEOUT):
    """Wait until `queue --json` lists qid with at least `attempts`
    attempts (and text in its last error); returns the entry."""
    def ok():
        e = queue_entry(inst, qid)
        if e and e.get('attempts', 0) >= attempts and (
                text is None or text in lasterror(e)):
            return e
        return None
    e = wait_for(ok, timeout, interval=0.1)
    if not e:
        raise AssertionError('message %s not deferred (attempts >= %d%s) '
                             'after %.0f s; queue: %r\nlog (tail):\n%s'
                             % (qid, attempts, ', last error containing %r'
                                % text if text else '', timeout,
                                queue(inst), inst.log_tail(30)))
    return e


def wait_queue_empty(inst, timeout=DELIVERY_TIMEOUT):
    if not wait_for(lambda: queue(inst) == [], timeout, interval=0.1):
        raise AssertionError('queue not empty after %.0f s: %r\nlog (tail):'
                             '\n%s' % (timeout, queue(inst),
                                       inst.log_tail(30)))


wait_mail = functools.partial(smtputil.wait_mail, timeout=DELIVERY_TIMEOUT,
                              settle=SETTLE)


def header_block_ok(prefix):
    """prefix: octets pymaild put before the message; header lines only."""
    if not prefix:
        return True
    if not prefix.endswith(b'\r\n'):
        return False
    for ln in prefix[:-2].split(b'\r\n'):
        if not re.match(rb'^([!-9;-~]+:|[ \t])', ln):
            return False
    return True


# ----------------------------------------------------------------------
# DSNs (RFC 3464)

def parse_dsn(data):
    """(message, per-message fields, [per-recipient fields]) of a bounce;
    the field dicts have lower-case keys.  AssertionError when it is not
    a multipart/report; report-type=delivery-status."""
    msg = email.message_from_bytes(data)
    if msg.get_content_type() != 'multipart/report':
        raise AssertionError('bounce is %s, not multipart/report:\n%s'
                             % (msg.get_content_type(),
                                data[:2000].decode('utf-8', 'replace')))
    if (msg.get_param('report-type') or '').lower() != 'delivery-status':
        raise AssertionError('multipart/report without report-type='
                             'delivery-status: %r' % msg['Content-Type'])
    status = [p for p in msg.walk()
              if p.get_content_type() == 'message/delivery-status']
    if len(status) != 1:
        raise AssertionError('want one message/delivery-status part, found '
                             '%d' % len(status))
    blocks = status[0].get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise AssertionError('message/delivery-status without per-'
                             'recipient fields: %r' % (blocks,))

    def fields(m):
        return {k.lower(): ' '.join(str(v).split()) for k, v in m.items()}
    return msg, fields(blocks[0]), [fields(b) for b in blocks[1:]]


def final_recipient(fields):
    """'rfc822; x@y' -> 'x@y'."""
    v = fields.get('final-recipient', '')
    return v.split(';', 1)[1].strip() if ';' in v else v.strip()


def bounces_in(msgs):
    return [m for m in msgs
            if re.search(rb'^Content-Type: multipart/report', m,
                         re.M | re.I)]


# ----------------------------------------------------------------------
# The daemon

def daemon_state(inst):
    """(parent pid, {role: pid})."""
    p, roles, _ = inst.processes()
    return p, {r: v[0] for r, v in roles.items()}


def log_lines(inst, *needles):
    return [l for l in inst.log().splitlines()
            if all(n in l for n in needles)]


# ----------------------------------------------------------------------
# Test case base

class OutCase(pmtest.TestCase):

    def out_instance(self, users=None, start=True, relay=None, **cfg):
        """A pymaild with users alice and bob; relay=Sink sends every
        outbound message to it (usesmtprelay).  Retries are off unless
        cfg sets retrymin/retrymax."""
        conf = {'retrymin': NO_RETRY, 'retrymax': NO_RETRY}
        if relay is not None:
            conf.update(usesmtprelay=True, smtprelay=relay.address)
        conf.update(cfg)
        inst = self.instance(**conf)
        for u, pw in (USERS if users is None else users).items():
            r = inst.adm('adduser', u, pw)
            if r.returncode != 0:
                raise AssertionError('pymailadm adduser %s: exit %d: %s'
                                     % (u, r.returncode, r.stderr))
        if start:
            inst.start()
            inst.wait_port()
        return inst

    def sink(self, host='127.0.0.1', port=0, **cfg):
        s = Sink(host, port, **cfg)
        self.addCleanup(s.stop)
        return s

    def context(self, inst, *sinks):
        """Log tail and sink records, for failure messages."""
        return 'log (tail):\n%s\n%s' % (
            inst.log_tail(40), '\n'.join(s.describe() for s in sinks))

    def wait_delivered(self, sink, n, inst, timeout=DELIVERY_TIMEOUT):
        got = sink.wait_transactions(n, timeout)
        if len(got) < n:
            self.fail('sink got %d accepted transaction(s), want %d, after '
                      '%.0f s\n%s' % (len(got), n, timeout,
                                      self.context(inst, sink)))
        return got

    def assert_no_protocol_errors(self, sink, inst):
        errs = sink.errors()
        self.assertEqual(errs, [], 'protocol errors seen by the sink\n%s'
                         % self.context(inst, sink))

    def assert_alive(self, inst, before=None):
        """pymailadm status says running; with before (from
        daemon_state), the same parent and helper processes."""
        r = inst.adm('status')
        self.assertEqual(r.returncode, 0, 'pymailadm status: %r %r\n%s'
                         % (r.stdout, r.stderr, inst.log_tail(40)))
        if before is not None:
            now = daemon_state(inst)
            self.assertEqual(now, before, 'daemon processes changed (a '
                             'helper died?)\n%s' % inst.log_tail(40))

    def wait_sink_idle(self, sink, quiet=SETTLE, timeout=DELIVERY_TIMEOUT):
        """Until every session with the sink ended and no new one came
        for `quiet` seconds (an attempt under way has settled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = sink.connections
            if all(s.ended for s in sink.session_list()) and not wait_for(
                    lambda: sink.connections > n, quiet, interval=0.1):
                if all(s.ended for s in sink.session_list()):
                    return
        self.fail('the sink is never idle for %.1f s\n%s'
                  % (quiet, sink.describe()))

    def assert_quiet(self, sink, seconds, n=None, inst=None):
        """No new sink connection for `seconds` (n: the count now);
        inst: its log goes into the failure, to tell what connected."""
        n = sink.connections if n is None else n
        got = wait_for(lambda: sink.connections > n, seconds, interval=0.1)
        self.assertFalse(got, 'the sink was contacted again (%d -> %d '
                         'connections) within %.1f s\n%s'
                         % (n, sink.connections, seconds,
                            self.context(inst, sink) if inst else
                            sink.describe()))
