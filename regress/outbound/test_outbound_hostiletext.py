"""Text from a hostile remote SMTP server (terminal escape sequences, NUL,
BEL, a CR inside the line, 8-bit octets) is made printable before it
reaches an envelope, a log line, a bounce or `pymailadm queue`; and
`pymailadm queue` also cleans what an older version may have written
into an envelope.

The remote server is the test sink (regress/lib/sink.py) used as the
smarthost, answering RCPT with the hostile text.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_hostiletext.py
"""

import os
import re

from lib.oututil import (OutCase, final_recipient, make_message,
                         parse_dsn, pmtest, queue_entry, submit, wait_deferred,
                         wait_mail)

ALICE = 'alice@test.example'
EVIL = '\x1b[2J\x1b]0;pwned\x07 evil\x00nul\rcr\x7fdel \xe9t\xe9 \x9b31m'
LATER = '451 4.7.1 later ' + EVIL
NEVER = '550 5.1.1 never ' + EVIL
# What must never come out: C0 controls but TAB, DEL, C1 controls.
BAD_BYTES = re.compile(rb'[\x00-\x08\x0a-\x1f\x7f]|\xc2[\x80-\x9f]')
BAD_CHARS = re.compile('[\x00-\x08\x0a-\x1f\x7f-\x9f]')


class HostileText(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')
        self.relay.configure(rcpt_replies={'x@remote.example': LATER,
                                           'y@remote.example': NEVER})

    def assert_clean_bytes(self, what, data):
        for ln in data.split(b'\n'):
            ln = ln[:-1] if ln.endswith(b'\r') else ln
            m = BAD_BYTES.search(ln)
            self.assertIsNone(m, '%s holds %r: %r' % (what, m and m.group(),
                                                       ln))

    def assert_clean_text(self, what, text):
        m = BAD_CHARS.search(text)
        self.assertIsNone(m, '%s holds %r: %r' % (what, m and m.group(),
                                                   text))

    def test_remote_text_made_printable(self):
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, ALICE, ['x@remote.example', 'y@remote.example'],
                     make_message('hostile replies'))
        e = wait_deferred(inst, qid, text='later')
        # The bounce for y: the diagnostic is there, cleaned.
        [(_, raw)] = wait_mail(inst, 'alice', 1, timeout=15)
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields],
                         ['y@remote.example'])
        self.assertIn('never', fields[0].get('diagnostic-code', ''))
        self.assert_clean_bytes('the bounce', raw)
        # --json: still the words, no control character.
        self.assertIn('evil', e['lasterror'])
        self.assert_clean_text('queue --json lasterror', e['lasterror'])
        for r in e['recipients']:
            self.assert_clean_text('queue --json reason', r['reason'])
        # The text listing, as a terminal would get it.
        r = inst.adm('queue')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('evil', r.stdout)
        self.assert_clean_bytes('pymailadm queue', r.stdout.encode(
            'utf-8', 'surrogateescape'))
        # The envelope and the log.
        env = pmtest.read_file(os.path.join(inst.spooldir, 'env', qid))
        self.assertIn(b'evil', env)
        self.assert_clean_bytes('the envelope', env)
        log = pmtest.read_file(inst.logpath)
        self.assertIn(b'evil', log)
        self.assert_clean_bytes('the log', log)

    def test_queue_cleans_an_old_envelope(self):
        """An envelope written before the cleaning (or by hand): the
        listing shows it without its control characters."""
        self.relay.configure(rcpt='451 4.7.1 later')
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('old envelope'))
        wait_deferred(inst, qid, text='later')
        self.assertEqual(inst.stop().returncode, 0)
        path = os.path.join(inst.spooldir, 'env', qid)
        env = pmtest.read_file(path)
        env = re.sub(rb'(?m)^last-error: .*$', b'last-error: 451 ' +
                     EVIL.encode('latin-1').replace(b'\r', b'').replace(
                         b'\0', b''), env)
        env = re.sub(rb'(?m)^(rcpt: pending - x@remote.example).*$',
                     b'\\1 451 \x1b[5mblink', env)
        self.assertIn(b'\x1b[5m', env)
        with open(path, 'wb') as f:
            f.write(env)
        r = inst.adm('queue')
        self.assertIn(qid, r.stdout, r.stderr)
        self.assert_clean_bytes('pymailadm queue', r.stdout.encode(
            'utf-8', 'surrogateescape'))
        self.assert_clean_bytes('pymailadm queue (stderr)', r.stderr.encode(
            'utf-8', 'surrogateescape'))
        e = queue_entry(inst, qid)
        self.assertIsNotNone(e)
        self.assert_clean_text('queue --json', repr(e).encode(
            'ascii', 'backslashreplace').decode())
        self.assert_clean_text('queue --json lasterror', e['lasterror'])


if __name__ == '__main__':
    import unittest
    unittest.main()
