"""A message with more than 100 `Received:` lines, met in the queue at
relay time, is a mail loop: it bounces (554 5.4.6 "too many hops",
RFC 5321 6.3) and is never relayed.  smtpd refuses such a message at the
end of DATA; this is the queue's own check, for what reaches the queue
another way (a queue written before the smtpd check, a message edited
in the spool).  The test puts the message there itself: a deferred
message's data (msg/ID, whose format the README describes) gets the
extra lines while the daemon is stopped.  A message within the limit is
relayed as before.

    /usr/bin/python3 regress/run.py regress/outbound/test_outbound_hops.py
"""

import os
import re

from lib.oututil import (OutCase, final_recipient, make_message,
                         parse_dsn, pmtest, submit, wait_deferred, wait_mail,
                         wait_queue_empty)

ALICE = 'alice@test.example'
GREYLIST = '451 4.7.1 sink: greylisted, come back later'
LIMIT = 100


def received(i):
    return ('Received: from hop%d.example (hop%d.example [192.0.2.%d])'
            '\r\n\tby relay%d.example with ESMTP id %08d;'
            '\r\n\tSat, 5 Dec 2026 10:00:00 +0000' % (i, i, i % 250 + 1,
                                                       i, i))


class Hops(OutCase):

    def setUp(self):
        super().setUp()
        self.relay = self.sink('127.0.0.1')

    def queued_with_hops(self, nlines):
        """A message deferred by the relay, whose queued data then gets
        nlines Received: lines in all (ours included)."""
        self.relay.configure(rcpt=GREYLIST)
        inst = self.out_instance(relay=self.relay)
        qid = submit(inst, ALICE, ['x@remote.example'],
                     make_message('looping'))
        wait_deferred(inst, qid, text='greylisted')
        self.assertEqual(inst.stop().returncode, 0)
        msgpath = os.path.join(inst.spooldir, 'msg', qid)
        envpath = os.path.join(inst.spooldir, 'env', qid)
        data = pmtest.read_file(msgpath)
        have = len(re.findall(rb'(?im)^received:', data.split(
            b'\r\n\r\n', 1)[0]))
        extra = ''.join(received(i) + '\r\n'
                        for i in range(nlines - have)).encode()
        data = extra + data
        with open(msgpath, 'wb') as f:
            f.write(data)
        env = pmtest.read_file(envpath, 'r')
        env = re.sub(r'(?m)^data-size: \d+$', 'data-size: %d' % len(data),
                     env)
        with open(envpath, 'w') as f:
            f.write(env)
        self.relay.accept_all()
        inst.start()
        inst.wait_port()
        r = inst.adm('flush')
        self.assertEqual(r.returncode, 0, r.stderr)
        return inst, qid

    def test_over_the_limit_bounces(self):
        inst, qid = self.queued_with_hops(LIMIT + 1)
        [(_, raw)] = wait_mail(inst, 'alice', 1, timeout=15,
                              extra=self.relay.describe())
        msg, per_msg, fields = parse_dsn(raw)
        self.assertEqual([final_recipient(f) for f in fields],
                         ['x@remote.example'])
        self.assertEqual(fields[0].get('status'), '5.4.6', fields[0])
        self.assertIn('too many hops', fields[0].get('diagnostic-code', ''))
        wait_queue_empty(inst)
        self.assertEqual(self.relay.delivered, [],
                         'a looping message was relayed')

    def test_at_the_limit_is_relayed(self):
        inst, qid = self.queued_with_hops(LIMIT)
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertEqual(len(re.findall(rb'(?im)^received:', txn.data)),
                         LIMIT)
        wait_queue_empty(inst)
        self.assertEqual(pmtest.maildir_files(inst.maildir, 'alice'), [])

    def test_submitted_near_the_limit_is_relayed(self):
        """Through smtpd: 98 lines from the client, ours makes 99."""
        inst = self.out_instance(relay=self.relay)
        hdrs = [received(i) for i in range(LIMIT - 2)]
        msg = make_message('many hops', extra_headers=hdrs)
        submit(inst, ALICE, ['x@remote.example'], msg)
        [txn] = self.wait_delivered(self.relay, 1, inst)
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)


if __name__ == '__main__':
    import unittest
    unittest.main()
