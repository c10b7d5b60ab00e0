"""pymailadm stats: counters since start and gauges of the queue, as
key=value lines, --json and --prometheus (the text exposition format),
from the running daemon (parent and queued).  Real SMTP clients put mail
in: one local delivery, one relayed to a sink, one deferred by it.

    /usr/bin/python3 regress/run.py regress/queue/test_stats.py
"""

import json
import os
import signal
import time

from lib import promtext
from lib.oututil import (OutCase, make_message, smtp_connect,
                         submit, wait_deferred, wait_mail)

ALICE = 'alice@test.example'


class Stats(OutCase):

    def stats(self, inst):
        r = inst.adm('stats', '--json')
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_counts_and_gauges(self):
        relay = self.sink('127.0.0.1')
        relay.configure(rcpt_replies={
            'later@remote.example': '451 4.7.1 sink: greylisted'})
        inst = self.out_instance(relay=relay)
        before = self.stats(inst)
        self.assertEqual(before['messages_accepted_total'], 0, before)
        self.assertEqual(before['queue_messages'], 0, before)
        submit(inst, ALICE, ['bob@test.example'], make_message('local'))
        wait_mail(inst, 'bob', 1)
        submit(inst, ALICE, ['x@remote.example'], make_message('relayed'))
        self.wait_delivered(relay, 1, inst)
        qid = submit(inst, ALICE, ['later@remote.example'],
                     make_message('deferred'))
        wait_deferred(inst, qid, text='greylisted')
        s = self.stats(inst)
        self.assertEqual(s['messages_accepted_total'], 3, s)
        self.assertEqual(s['delivered_local_total'], 1, s)
        self.assertEqual(s['relayed_total'], 1, s)
        self.assertEqual(s['deferred_total'], 1, s)
        self.assertEqual(s['queue_messages'], 1, s)
        self.assertEqual(s['queue_deferred'], 1, s)
        self.assertEqual(s['queue_held'], 0, s)
        self.assertGreaterEqual(s['queue_oldest_age_seconds'], 0)
        self.assertGreaterEqual(s['uptime_seconds'], 0)
        for k, v in s.items():
            # labelled figures are objects, a histogram's sum a float
            if isinstance(v, dict):
                self.assertTrue(all(isinstance(n, int)
                                    for n in v.values()), s)
            elif not k.endswith('_sum'):
                self.assertIsInstance(v, int, s)
        self.assertEqual(inst.adm('hold', qid).returncode, 0)
        self.assertEqual(self.stats(inst)['queue_held'], 1)
        self.assertEqual(inst.adm('remove', qid).returncode, 0)
        s = self.stats(inst)
        self.assertEqual((s['queue_messages'], s['removed_total']), (0, 1))
        # The text form, and the exposition format line by line.
        r = inst.adm('stats')
        self.assertIn('relayed_total=1\n', r.stdout)
        r = inst.adm('stats', '--prometheus')
        self.assertEqual(r.returncode, 0, r.stderr)
        promtext.parse(r.stdout)
        lines = r.stdout.splitlines()
        self.assertIn('# TYPE pymaild_relayed_total counter', lines)
        self.assertIn('# TYPE pymaild_queue_messages gauge', lines)
        self.assertIn('pymaild_relayed_total 1', lines)

    def test_sessions_and_silent_helpers(self):
        """An open SMTP session counts; a stopped smtpd leaves its figure
        out after 2 s; a stopped queued fails stats with one line."""
        inst = self.out_instance()
        c = smtp_connect(inst.smtp_port)
        self.addCleanup(c.close)
        c.ehlo()
        self.assertGreaterEqual(self.stats(inst)['smtp_sessions_open'], 1)
        roles = inst.wait_roles()
        for role in ('smtpd', 'queued'):
            with self.subTest(role=role):
                os.kill(roles[role], signal.SIGSTOP)
                try:
                    t0 = time.monotonic()
                    r = inst.adm('stats', '--json', timeout=15)
                    took = time.monotonic() - t0
                finally:
                    os.kill(roles[role], signal.SIGCONT)
                self.assertLess(took, 6)
                if role == 'queued':
                    self.assertOneLineError(r, 'queued did not answer')
                    continue
                self.assertEqual(r.returncode, 0, r.stderr)
                s = json.loads(r.stdout)
                self.assertNotIn('smtp_sessions_open', s)
                self.assertNotIn('smtp_connections_total', s)
                self.assertIn('pop3_sessions_open', s)
                self.assertIn('queue_messages', s)
        s = self.stats(inst)
        self.assertIn('smtp_sessions_open', s)
        self.assertIn('outbound_attempts', s)

    def test_stopped_and_bad_usage(self):
        inst = self.out_instance(start=False)
        r = inst.adm('stats')
        self.assertOneLineError(r, 'pymaild is not running.')
        inst.start()
        r = inst.adm('stats', '--xml')
        self.assertEqual(r.returncode, 2, r)


if __name__ == '__main__':
    import unittest
    unittest.main()
