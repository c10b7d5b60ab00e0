"""Outbound against a misbehaving remote server: one
that sends garbage, an endless multi-line reply, a 1 MB reply line, closes
at once, or stops answering (timeout = 2) at any stage of the session.
Each time the attempt fails and is retried (retrymin = 1), queued neither
crashes nor stalls (pymailadm status still answers with the same
processes; a local delivery goes through meanwhile), nothing bounces for
what is a temporary failure, and once the remote behaves the message is
delivered exactly once.

    /usr/bin/python3 regress/run.py -k test_outbound_badremote
"""

import os
import time

from lib.oututil import (OutCase, bounces_in, daemon_state,
                         lasterror, make_message, submit,
                         wait_deferred, wait_mail, wait_queue_empty)

ALICE = 'alice@test.example'
TIMEOUT = 2             # the config's `timeout`: silence ends a session

# (stage, kind) of the sink's misbehaviour; see regress/lib/sink.py.
CASES = [
    ('greeting', 'garbage'),
    ('greeting', 'endless'),
    ('greeting', 'longline'),
    ('greeting', 'silent'),
    ('greeting', 'close'),
    ('ehlo', 'endless'),
    ('ehlo', 'longline'),
    ('mail', 'garbage'),
    ('rcpt', 'silent'),
    ('rcpt', 'longline'),
    ('data', 'garbage'),
    ('dot', 'silent'),
    ('dot', 'endless'),
    ('dot', 'close'),
]


class BadRemote(OutCase):

    def run_case(self, stage, kind):
        relay = self.sink('127.0.0.1', misbehave=(stage, kind))
        inst = self.out_instance(relay=relay, timeout=TIMEOUT, retrymin=1,
                                 retrymax=1)
        before = daemon_state(inst)
        self.assertTrue(all(before[1].get(r) for r in
                            ('smtpd', 'queued', 'mxcache')), before)
        msg = make_message('remote misbehaves: %s at %s' % (kind, stage))
        t0 = time.monotonic()
        qid = submit(inst, ALICE, ['x@remote.example'], msg)
        # Meanwhile, local mail flows.
        submit(inst, ALICE, ['bob@test.example'],
               make_message('local while the remote misbehaves',
                            to='bob@test.example'))
        wait_mail(inst, 'bob', 1, timeout=10, settle=0)
        # The attempt fails and is retried: a second session comes.
        if not relay.wait_sessions(2, timeout=6 * TIMEOUT + 10):
            self.fail('no retry after the first attempt failed\n%s'
                      % self.context(inst, relay))
        e = wait_deferred(inst, qid)
        self.assertTrue(lasterror(e), 'no last error in %r' % e)
        self.assert_alive(inst, before)
        # Each session ended within the timeout (plus slack), none hangs.
        for s in relay.session_list()[:-1]:
            self.assertIsNotNone(s.ended, 'a session never ended: %r' % s)
            self.assertLess(s.ended - s.started, TIMEOUT + 5,
                            'a session lasted %.1f s with timeout = %d'
                            % (s.ended - s.started, TIMEOUT))
        self.assertEqual(bounces_in(inst.messages('alice')), [],
                         'a temporary failure bounced')
        # The remote is fixed: the next retry delivers, once.
        relay.accept_all()
        txns = self.wait_delivered(relay, 1, inst, timeout=6 * TIMEOUT + 10)
        self.assertTrue(txns[0].data.endswith(msg))
        self.assertEqual(txns[0].bare, [])
        wait_queue_empty(inst)
        self.assertEqual(len(relay.delivered), 1, relay.describe())
        self.assert_alive(inst, before)
        self.assertEqual(inst.messages('alice'), [])
        self.assertLess(time.monotonic() - t0, 90)


def _make(stage, kind):
    def test(self):
        self.run_case(stage, kind)
    test.__name__ = 'test_%s_at_%s' % (kind, stage)
    test.__doc__ = 'the remote sends %s at %s' % (kind, stage)
    return test


for _stage, _kind in CASES:
    setattr(BadRemote, 'test_%s_at_%s' % (_kind, _stage), _make(_stage, _kind))


class BadRemoteOthers(OutCase):

    def test_bad_remote_does_not_block_good_one(self):
        """Two remote domains through two relays would need MX; with the
        smarthost, one silent session must not keep a second message to
        another domain from going once the relay behaves: the silent
        attempt times out, both are delivered after."""
        relay = self.sink('127.0.0.1', misbehave=('greeting', 'silent'))
        inst = self.out_instance(relay=relay, timeout=TIMEOUT, retrymin=1,
                                 retrymax=1)
        before = daemon_state(inst)
        q1 = submit(inst, ALICE, ['x@one.example'], make_message('one'))
        q2 = submit(inst, ALICE, ['y@two.example'], make_message('two'))
        self.assertTrue(relay.wait_sessions(2, timeout=10),
                        self.context(inst, relay))
        # Both attempts are open at once: the runner did not serialize
        # behind the silent one.
        self.assertGreaterEqual(
            len([s for s in relay.session_list()
                 if s.started < relay.session_list()[0].started + TIMEOUT
                 - 0.5]), 2, relay.describe())
        relay.accept_all()
        txns = self.wait_delivered(relay, 2, inst, timeout=6 * TIMEOUT + 10)
        self.assertEqual(sorted(r for t in txns for r in t.rcpts),
                         ['x@one.example', 'y@two.example'])
        wait_queue_empty(inst)
        self.assert_alive(inst, before)
        self.assertNotIn(q1, str(inst.adm('queue').stdout))
        self.assertNotIn(q2, str(inst.adm('queue').stdout))


if __name__ == '__main__':
    import unittest
    unittest.main()
