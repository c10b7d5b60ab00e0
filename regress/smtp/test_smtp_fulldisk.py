"""SMTP-in, a full spool disk: `452 4.3.1` and nothing already accepted is
lost.

Root only: the spool lives on a small tmpfs mounted in a private mount
namespace of this test file's worker process (the runner runs each file in
its own process), so nothing is mounted on the host.

    /usr/bin/python3 regress/run.py -k test_smtp_fulldisk
"""

import errno
import os

from lib import pmtest
from lib.smtputil import (SmtpCase, make_message, subject_of,
                          wait_mail)
from lib.mounts import (mount_tmpfs, private_mount_namespace,
                        umount_lazy)


def fill(path):
    """Write a file in path until the disk is full; returns its name."""
    name = os.path.join(path, 'filler')
    block = b'\0' * 65536
    with open(name, 'wb', buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[:len(block) // 2]
    return name


class FullDisk(SmtpCase):

    def setUp(self):
        super().setUp()
        if not pmtest.IS_ROOT:
            self.skipTest('needs root (mounts a small tmpfs for the spool)')
        why = private_mount_namespace()
        if why:
            self.skipTest('no private mount namespace: ' + why)

    def test_full_spool_452_431_and_nothing_lost(self):
        inst = self.smtp_instance(start=False, smtpmaxmailsize=10000000,
                                  spooldir='spooldisk/queue')
        disk = os.path.join(inst.dir, 'spooldisk')
        os.mkdir(disk)
        mount_tmpfs(disk, 4 << 20)
        self.addCleanup(umount_lazy, disk)
        inst.start()
        inst.wait_port()

        self.send_mail(inst, 'before full')
        filler = fill(disk)
        body = b'f' * 76 + b'\r\n'
        refused = None
        c = self.session(inst)
        for i in range(3):
            # The first answer that is not a success must be 452 4.3.1,
            # whether the server checks at MAIL, at RCPT or at the end of
            # the data (which it must then read to its end).
            r = c.cmd('MAIL FROM:<carol@sender.example>')
            if r.code == 250:
                r = c.cmd('RCPT TO:<alice@test.example>')
            if r.code == 250:
                r = c.cmd('DATA')
                if r.code == 354:
                    c.send(make_message('while full %d' % i, body * 2000) +
                           b'.\r\n')
                    r = c.reply(what='the end of DATA on a full disk')
            if r.code != 250:
                refused = r
                c.expect('RSET', 250)
                break
        self.assertIsNotNone(refused, 'three 200 KB messages accepted on '
                             'a full spool disk')
        self.assertEqual((refused.code, refused.enh), (452, '4.3.1'),
                         refused)
        c.expect('NOOP', 250)
        os.unlink(filler)
        r = c.transaction('carol@sender.example', ['alice@test.example'],
                          make_message('after full', body * 2000))
        self.assertEqual(r.code, 250, r)
        c.expect('QUIT', 221)
        accepted = ['before full', 'after full'] + [
            'while full %d' % j for j in range(i)]
        got = wait_mail(inst, 'alice', len(accepted))
        self.assertEqual(sorted(subject_of(b) for _, b in got),
                         sorted(accepted))
