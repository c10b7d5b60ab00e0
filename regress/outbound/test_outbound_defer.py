"""Outbound deferrals: a 4xx from the remote server defers the message; it
is listed by `pymailadm queue` (and `--json`: id, recipients, attempts,
last error), retried with growing intervals (retrymin/retrymax) or at once
by `pymailadm flush`, survives a restart, and bounces ("expired") after
maxqueuetime (DESIGN.md A1, A6, A7 "Values").  The remote server
is a real SMTP sink used as the smarthost.

    /usr/bin/python3 regress/run.py -k test_outbound_defer
"""

import os
import time

from lib.oututil import (SETTLE, OutCase, final_recipient,
                         lasterror, make_message, parse_dsn, queue,
                         queue_entry, rcpt_addresses, submit, wait_deferred,
                         wait_mail, wait_queue_empty)

ALICE = 'alice@test.example'
GREYLIST = '451 4.7.1 sink: greylisted, come back later'


class Defer(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')

    def flush(self, inst):
        r = inst.adm('flush')
        self.assertEqual(r.returncode, 0, 'pymailadm flush: %r %r'
                         % (r.stdout, r.stderr))

    def test_451_deferred_listed_then_flushed(self):
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        msg = make_message('greylisted')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        e = wait_deferred(inst, qid, text='greylisted')
        # --json: id, sender, recipients, attempts, last error.
        self.assertEqual(e['id'], qid)
        self.assertEqual(rcpt_addresses(e), ['x@remote.example'])
        self.assertGreaterEqual(e['attempts'], 1)
        self.assertIsInstance(e['attempts'], int)
        self.assertIn('451', lasterror(e))
        self.assertIn('127.0.0.1', lasterror(e), 'the last error does not '
                      'name the remote host: %r' % e)
        self.assertEqual(e.get('sender'), ALICE)
        self.assertIsInstance(e.get('age'), int, e)
        # The text listing names the same.
        r = inst.adm('queue')
        self.assertEqual(r.returncode, 0, r.stderr)
        for needle in (qid, 'x@remote.example', ALICE, 'greylisted'):
            self.assertIn(needle, r.stdout)
        self.assertRegex(r.stdout, r'(?i)attempts\D{0,3}\d')
        # retrymin is an hour: nothing happens on its own.
        self.assert_quiet(self.relay, 2)
        self.assertEqual(self.relay.delivered, [])
        # The sink accepts now; flush sends it at once.
        self.relay.accept_all()
        self.flush(inst)
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(txn.rcpts, ['x@remote.example'])
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)
        self.assertEqual(inst.adm('queue').stdout.strip(), 'Queue is empty.')
        self.assertEqual(inst.messages('alice'), [], 'a bounce for a '
                         'temporary failure')

    def test_451_at_end_of_data(self):
        self.relay.configure(dot='451 4.3.0 sink: disk full, try later')
        inst = self.out_instance(relay=self.relay)
        msg = make_message('deferred at the dot')
        qid = submit(inst, ALICE, ['x@remote.example', 'y@remote.example'],
                     msg)
        e = wait_deferred(inst, qid, text='disk full')
        self.assertEqual(sorted(rcpt_addresses(e)),
                         ['x@remote.example', 'y@remote.example'])
        self.relay.accept_all()
        self.flush(inst)
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(sorted(txn.rcpts),
                         ['x@remote.example', 'y@remote.example'])
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)
        self.assertEqual(inst.messages('alice'), [])

    def test_partial_defer_no_duplicate(self):
        """x is deferred, y accepted: y gets the message once; after the
        flush only x is sent."""
        self.relay.configure(rcpt_replies={'x@remote.example': GREYLIST})
        inst = self.out_instance(relay=self.relay)
        msg = make_message('half deferred')
        qid = submit(inst, ALICE, ['x@remote.example', 'y@remote.example'],
                     msg)
        wait_deferred(inst, qid, text='greylisted')
        [first] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(first.rcpts, ['y@remote.example'])
        e = queue_entry(inst, qid)
        st = {r['address']: r.get('status') for r in e['recipients']}
        self.assertEqual(st.get('x@remote.example'), 'pending', e)
        self.relay.accept_all()
        self.flush(inst)
        txns = self.wait_delivered(self.relay, 2, inst)
        self.assertEqual(txns[1].rcpts, ['x@remote.example'],
                         'the retry must carry only the deferred recipient')
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(len(self.relay.delivered), 2)

    def test_retries_on_its_own(self):
        """retrymin = 1, retrymax = 2: the deferred message is tried again
        without flush, the attempts grow, and it goes once accepted."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay, retrymin=1, retrymax=2)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('retry alone'))
        self.assertTrue(self.relay.wait_sessions(3, timeout=20),
                        self.context(inst, self.relay))
        wait_deferred(inst, qid, attempts=2)
        self.relay.accept_all()
        self.wait_delivered(self.relay, 1, inst)
        wait_queue_empty(inst)
        # Intervals grow but stay within retrymax (+ the 1 s tick).
        starts = [s.started for s in self.relay.session_list()]
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        self.assertTrue(all(g < 2 + 1.5 for g in gaps), gaps)

    def test_421_greeting_defers(self):
        """A server that greets with 421 (busy) defers the message."""
        self.relay.configure(greeting='421 4.3.2 sink: too busy, later')
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('busy server'))
        e = wait_deferred(inst, qid)
        self.assertIn('too busy', lasterror(e))
        self.assertEqual(inst.messages('alice'), [])
        self.relay.reset()
        self.flush(inst)
        self.wait_delivered(self.relay, 1, inst)
        wait_queue_empty(inst)

    def test_intervals_grow_up_to_retrymax(self):
        """retrymin = 1, retrymax = 4: the gaps between attempts grow
        (1, 2, 4, 4 s: doubling), never beyond retrymax."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay, retrymin=1, retrymax=4)
        submit(inst, ALICE, ['x@remote.example'], make_message('growing'))
        self.assertTrue(self.relay.wait_sessions(5, timeout=30),
                        self.context(inst, self.relay))
        starts = [s.started for s in self.relay.session_list()][:5]
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        # The runner ticks once a second: allow +-1.2 s on each.
        self.assertLess(gaps[0], 2.5, gaps)
        self.assertGreater(gaps[2], 2.5, gaps)
        self.assertGreater(max(gaps), gaps[0] + 1.5, gaps)
        self.assertTrue(all(g < 4 + 1.5 for g in gaps), gaps)

    def test_maxqueuetime_expires(self):
        """maxqueuetime = 3: a message the sink keeps deferring bounces
        ("expired"), naming the recipient and the last remote answer."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay, maxqueuetime=3,
                                 retrymin=1, retrymax=1)
        t0 = time.monotonic()
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('too late'))
        [(_, raw)] = wait_mail(inst, 'alice', 1, timeout=20,
                              extra=self.relay.describe())
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 2.5, 'bounced before maxqueuetime')
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields],
                         ['x@remote.example'])
        self.assertRegex(fields[0].get('status', ''), r'^[45]\.\d+\.\d+$')
        self.assertEqual(fields[0].get('action', '').lower(), 'failed')
        self.assertRegex(raw.decode('utf-8', 'replace'), r'(?i)expired')
        # The last answer of the remote server is in the report.
        self.assertIn('greylisted', fields[0].get('diagnostic-code', '') +
                      raw.decode('utf-8', 'replace'))
        wait_queue_empty(inst)
        self.assertEqual(self.relay.delivered, [])
        self.assertNotIn(qid, [e['id'] for e in queue(inst)])

    def test_restart_keeps_deferred(self):
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        msg = make_message('survives a restart')
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        e = wait_deferred(inst, qid, text='greylisted')
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(inst.running())
        # Listed with the daemon stopped too (from the envelope files).
        e2 = queue_entry(inst, qid)
        self.assertIsNotNone(e2, 'the deferred message is gone after stop')
        self.assertEqual(rcpt_addresses(e2), ['x@remote.example'])
        self.assertGreaterEqual(e2['attempts'], e['attempts'])
        inst.start()
        inst.wait_port()
        e3 = queue_entry(inst, qid)
        self.assertIsNotNone(e3, 'the deferred message is gone after start')
        self.assertGreaterEqual(e3['attempts'], e['attempts'],
                                'the attempt count went back')
        # Whether or not the start retried it at once, let that settle,
        # then the sink accepts and flush sends it.
        self.wait_sink_idle(self.relay)
        self.relay.accept_all()
        self.flush(inst)
        txns = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(txns[0].rcpts, ['x@remote.example'])
        self.assertTrue(txns[0].data.endswith(msg))
        wait_queue_empty(inst)
        self.assert_quiet(self.relay, SETTLE)
        self.assertEqual(len(self.relay.delivered), 1)
        self.assertEqual(inst.messages('alice'), [])

    def test_restart_keeps_schedule(self):
        """Per-recipient status is kept in the envelope, so a restart
        keeps the schedule: with retrymin an hour, a restart does
        not retry a deferred message at once; the attempt count and last
        error survive."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('on schedule'))
        e = wait_deferred(inst, qid, text='greylisted')
        self.assertTrue(self.relay.wait_ended(1))
        n = self.relay.connections
        self.assertEqual(inst.stop().returncode, 0)
        inst.start()
        inst.wait_port()
        self.assert_quiet(self.relay, 3, n)
        e2 = queue_entry(inst, qid)
        self.assertEqual(e2['attempts'], e['attempts'])
        self.assertIn('greylisted', lasterror(e2))

    def test_flush_with_nothing_queued(self):
        inst = self.out_instance(relay=self.relay)
        self.flush(inst)
        self.assertEqual(queue(inst), [])
        r = inst.adm('queue')
        self.assertEqual((r.returncode, r.stdout.strip()),
                         (0, 'Queue is empty.'))


if __name__ == '__main__':
    import unittest
    unittest.main()
