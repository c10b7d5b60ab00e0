"""The outbound queue on disk: a corrupt envelope
file is logged and set aside -- never lost silently, never looped on --
and the rest of the queue keeps working.

The envelope is plain text ("key: value" lines, common/envelope.c) so an
administrator can read and repair it; this test finds a message's
envelope as the file in SPOOLDIR named after its queue id whose text has
an "id: <qid>" line, and its data as the file named after the id holding
the message.

    /usr/bin/python3 regress/run.py -k test_outbound_spool
"""

import os

from lib.oututil import (OutCase, make_message, queue_entry,
                         submit, wait_deferred, wait_for, wait_mail,
                         wait_queue_empty)

ALICE = 'alice@test.example'
GREYLIST = '451 4.7.1 sink: greylisted'

CORRUPTIONS = {
    'garbage': lambda text: b'\x00\xff garbage \x01\nversion: 99\n\x00',
    'truncated': lambda text: text[:len(text) // 3],
    'empty': lambda text: b'',
}


def spool_files(spooldir, qid):
    """{path: bytes} of every file under spooldir whose name starts with
    qid."""
    out = {}
    for dirpath, _, names in os.walk(spooldir):
        for n in names:
            if n.startswith(qid):
                p = os.path.join(dirpath, n)
                with open(p, 'rb') as f:
                    out[p] = f.read()
    return out


class Spool(OutCase):

    def test_corrupt_envelopes_set_aside(self):
        relay = self.sink('127.0.0.1', rcpt=GREYLIST)
        inst = self.out_instance(relay=relay)
        msgs = {}
        for kind in CORRUPTIONS:
            msg = make_message('corrupt %s' % kind, b'keep me: %s\r\n'
                               % kind.encode())
            qid = submit(inst, ALICE, ['%s@remote.example' % kind], msg)
            msgs[kind] = (qid, msg)
        for qid, _ in msgs.values():
            wait_deferred(inst, qid, text='greylisted')
        self.assertEqual(inst.stop().returncode, 0)
        spool = inst.spooldir
        for kind, (qid, msg) in msgs.items():
            files = spool_files(spool, qid)
            envs = [p for p, b in files.items()
                    if ('id: %s' % qid).encode() in b]
            self.assertEqual(len(envs), 1, 'the envelope of %s: %r'
                             % (qid, sorted(files)))
            with open(envs[0], 'rb') as f:
                text = f.read()
            with open(envs[0], 'wb') as f:
                f.write(CORRUPTIONS[kind](text))
        inst.start()
        inst.wait_port()
        before = inst.processes()[0]
        # The daemon runs, and the rest of the queue works: local mail
        # goes through, a new remote message is deferred as usual.
        submit(inst, ALICE, ['bob@test.example'],
               make_message('after the corruption', to='bob@test.example'))
        wait_mail(inst, 'bob', 1, settle=0)
        fresh = submit(inst, ALICE, ['fresh@remote.example'],
                       make_message('fresh'))
        wait_deferred(inst, fresh, text='greylisted')
        log = inst.log()
        for kind, (qid, msg) in msgs.items():
            with self.subTest(corruption=kind):
                # Logged, naming the message.
                lines = [l for l in log.splitlines() if qid in l and
                         'corrupt' in l.lower()]
                self.assertTrue(lines, 'no log line says the envelope of '
                                '%s is corrupt\n%s'
                                % (qid, inst.log_tail(30)))
                # Not lost: the data is still in the spool, set aside.
                kept = [p for p, b in spool_files(spool, qid).items()
                        if b.endswith(msg)]
                self.assertTrue(kept, 'the data of %s is gone: %r'
                                % (qid, sorted(spool_files(spool, qid))))
                # Not retried: the sink never sees it again.
                self.assertIsNone(queue_entry(inst, qid))
        seen = [r for s in relay.session_list() for c in s.commands
                for r in [c] if c.upper().startswith(b'RCPT')]
        for kind in CORRUPTIONS:
            n = sum(1 for c in seen if kind.encode() + b'@' in c)
            self.assertEqual(n, 1, 'RCPT for the corrupt %s message sent '
                             '%d times' % (kind, n))
        # Not looped on: no new log line about them for a while.
        n = len([l for l in inst.log().splitlines()
                 if 'corrupt' in l.lower()])
        grew = wait_for(lambda: len([l for l in inst.log().splitlines()
                                     if 'corrupt' in l.lower()]) > n, 3)
        self.assertFalse(grew, 'corrupt envelopes are logged again and '
                         'again\n%s' % inst.log_tail(20))
        self.assert_alive(inst)
        self.assertEqual(inst.processes()[0], before)
        # The fresh one still goes once the sink accepts.
        relay.accept_all()
        r = inst.adm('flush')
        self.assertEqual(r.returncode, 0)
        txns = self.wait_delivered(relay, 1, inst)
        self.assertEqual(txns[0].rcpts, ['fresh@remote.example'])
        wait_queue_empty(inst)


if __name__ == '__main__':
    import unittest
    unittest.main()
