"""Shared pieces of the tests of smtpd's SPF, DKIM and DMARC checks:
a client from an address the checks apply to, and our verdict as the
Authentication-Results field of a delivered message says it."""

import re
import smtplib

from lib import pmtest

CLIENT = '127.0.0.2'            # not in noauthhosts (which is 127.0.0.1)
AUTHSERV_ID = 'mail.test.example'


def send(inst, sender, msg, timeout=30, rcpt='alice@test.example'):
    """One message from CLIENT on port 25: the reply to its end of DATA.
    A refused RCPT raises AssertionError."""
    s = smtplib.SMTP(timeout=timeout, source_address=(CLIENT, 0))
    try:
        s.connect('127.0.0.1', inst.smtp_port)
        s.ehlo('client.example')
        s.mail(sender)
        code, text = s.rcpt(rcpt)
        if code != 250:
            raise AssertionError('RCPT: %d %r' % (code, text))
        return s.data(msg)
    finally:
        s.close()


def last_delivered(inst, n=1, timeout=10, user='alice'):
    """The newest message once user's Maildir holds n; AssertionError
    with the log's tail if it does not in time."""
    if not pmtest.wait_for(
            lambda: len(pmtest.maildir_files(inst.maildir, user)) == n,
            timeout):
        raise AssertionError(inst.log_tail())
    with open(sorted(pmtest.maildir_files(inst.maildir, user))[-1],
              'rb') as f:
        return f.read()


def verdicts(data):
    """Our Authentication-Results field, unfolded, after the id; None
    when the message has none."""
    m = re.search(rb'^Authentication-Results: ' + AUTHSERV_ID.encode() +
                  rb';(.*?)\n(?![ \t])', data, re.M | re.S)
    return re.sub(rb'\s+', b' ', m.group(1)).decode() if m else None
