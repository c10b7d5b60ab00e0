"""SMTP-in, session limits: timeout, maxsessionsperip and maxsessions give
421 4.3.2 (DESIGN.md A2, A4, A7).

    /usr/bin/python3 regress/run.py -k test_smtp_limits
"""

import os
import time

from lib.smtputil import (Client, SmtpCase, make_message,
                          tmp_files, wait_for)


class Timeout(SmtpCase):

    def test_idle_session_421(self):
        inst = self.smtp_instance(timeout=2)
        c = self.client(inst)
        t0 = time.monotonic()
        r = c.reply(timeout=10, what='the timeout')
        took = time.monotonic() - t0
        self.assertEqual((r.code, r.enh), (421, '4.3.2'), r)
        self.assertGreaterEqual(took, 1.5, 'timed out after %.2f s' % took)
        self.assertLess(took, 6, 'timed out after %.2f s' % took)
        self.assertTrue(c.closed_by_server(3))

    def test_timeout_mid_data_nothing_delivered(self):
        inst = self.smtp_instance(timeout=2)
        c = self.session(inst)
        c.expect('MAIL FROM:<carol@sender.example>', 250)
        c.expect('RCPT TO:<alice@test.example>', 250)
        c.expect('DATA', 354)
        c.send(make_message('never finished', b'partial line\r\nno end'))
        r = c.reply(timeout=10, what='the timeout')
        self.assertEqual((r.code, r.enh), (421, '4.3.2'), r)
        self.assertTrue(c.closed_by_server(3))
        self.marker(inst)
        self.assertEqual(len(inst.maildir_files('alice')), 1)
        self.assertEqual(tmp_files(inst), {})

    def test_active_session_not_cut(self):
        # The timeout is for silence, not for the session's length.
        inst = self.smtp_instance(timeout=2)
        c = self.session(inst)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:
            c.expect('NOOP', 250)
            time.sleep(0.5)
        c.expect('QUIT', 221)


class Sessions(SmtpCase):

    def connect_refused_421(self, inst, source=None):
        c = self.client(inst, source=source, greeting=False)
        r = c.reply(what='the session-limit answer')
        self.assertEqual((r.code, r.enh), (421, '4.3.2'), r)
        self.assertTrue(c.closed_by_server(3))

    def open_up_to_limit(self, inst, sources):
        """One session from each source, all greeted 220.  Retried for a
        few seconds: the daemon may not have seen the close of the probe
        connection of wait_port() yet."""
        got = []

        def attempt():
            for c in got:
                c.close()
            del got[:]
            for src in sources:
                c = Client(self.inst.smtp_port, source=src, greeting=False)
                got.append(c)
                if c.reply(what='the greeting').code != 220:
                    return False
            return True
        self.inst = inst
        ok = wait_for(attempt, 5, interval=0.2)
        for c in got:
            self.addCleanup(c.close)
        self.assertTrue(ok, 'sessions under the limit refused')
        return got

    def test_maxsessionsperip(self):
        inst = self.smtp_instance(maxsessionsperip=2)
        a, b = self.open_up_to_limit(inst, ['127.0.0.1', '127.0.0.1'])
        self.connect_refused_421(inst)
        # Another address is not affected.
        c = self.client(inst, source='127.0.0.2')
        self.assertEqual(c.greeting.code, 220)
        c.ehlo()
        # The two first still work.
        a.ehlo()
        b.expect('NOOP', 250)
        # When one ends, a new one from 127.0.0.1 is accepted again.
        a.expect('QUIT', 221)
        a.close()

        def again():
            d = Client(inst.smtp_port, greeting=False)
            try:
                return d.reply().code == 220
            finally:
                d.close()
        self.assertTrue(wait_for(again, 5, interval=0.1),
                        'a slot freed by QUIT is not reused')

    def test_maxsessions(self):
        inst = self.smtp_instance(maxsessions=2, maxsessionsperip=50)
        a, b = self.open_up_to_limit(inst, ['127.0.0.1', '127.0.0.2'])
        self.connect_refused_421(inst, source='127.0.0.3')
        b.close()

        def again():
            d = Client(inst.smtp_port, source='127.0.0.4', greeting=False)
            try:
                return d.reply().code == 220
            finally:
                d.close()
        self.assertTrue(wait_for(again, 5, interval=0.1),
                        'a slot freed by a closed connection is not reused')
