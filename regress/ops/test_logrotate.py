"""Log rotation (pymaild(8) LOGS, etc/logrotate.d/pymaild): on reload or
SIGHUP the parent opens the log file again and every process writes to
the new file from then on; nothing is lost, nothing lands in the old
file once `pymailadm reload` has returned. Debian's logrotate runs the
shipped configuration against a running daemon while mail flows. A
reopen that fails leaves the daemon running on the old file and says so
there (the syslog half: test_logreopen_syslog.py).

    /usr/bin/python3 regress/run.py regress/ops/test_logrotate.py
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

from lib import opsutil
from lib.opsutil import pmtest

SHIPPED = os.path.join(opsutil.ETC, 'logrotate.d', 'pymaild')


class Rotation(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        self.inst = self.instance()
        r = self.inst.adm('adduser', opsutil.USER, opsutil.PASSWORD)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.sent = []

    def start(self):
        self.inst.start()
        self.pids = opsutil.daemon_pids(self.inst)
        # The parent and one process of each role.
        self.assertEqual(len(self.pids), len(pmtest.ROLES) + 1, self.pids)

    def send(self, tag):
        opsutil.send(self.inst, tag)
        self.sent.append(tag)

    def wait_delivered(self):
        n = len(self.sent)
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.inst.maildir_files(opsutil.USER)) >= n, 30),
            'not every message was delivered:\n%s' % self.inst.log_tail())

    def create_log(self, path):
        """What logrotate's `create 0640 USER GROUP` leaves."""
        uid, gid, _, _ = opsutil.daemon_account()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.fchown(fd, uid, gid)
        os.close(fd)

    def assertAllWriteTo(self, path, timeout=0):
        want = opsutil.file_id(path)

        def where():
            return {n: opsutil.stderr_inode(p) for n, p in
                    self.pids.items()}
        if timeout:
            pmtest.wait_for(lambda: all(v == want for v in
                                        where().values()), timeout)
        for name, got in where().items():
            self.assertEqual(got, want, '%s does not write to %s'
                             % (name, path))

    def assertTraced(self, text, tag, what=''):
        """The message from TAG went through smtpd, queued and the
        parent, and each logged it in text."""
        ids = opsutil.queued_ids(text, tag)
        self.assertEqual(len(ids), 1, '%s: smtpd line of %s %r'
                         % (what, tag, ids))
        qid = ids[0]
        self.assertRegex(text, r'pymaild\[\d+\]: delivery id=%s .*'
                         r'result=delivered' % qid, '%s: %s' % (what, tag))
        self.assertRegex(text, r'queued\[\d+\]: queue id=%s result=done'
                         % qid, '%s: %s' % (what, tag))
        return qid

    def assertNotIn_(self, text, tag, what):
        self.assertNotIn('<%s@client.example>' % tag, text, what)

    # -----------------------------------------------------------------

    def test_reload_moves_every_process(self):
        self.start()
        log = self.inst.logpath
        self.assertAllWriteTo(log)
        for i in range(3):
            self.send('before%d' % i)
        self.wait_delivered()
        self.assertTrue(opsutil.pop3_login(self.inst))
        # Every line of those sessions is written by now.
        time.sleep(0.3)
        os.rename(log, log + '.1')
        self.create_log(log)
        r = self.inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr)
        # Once reload has answered, every process writes to the new file.
        self.assertAllWriteTo(log)
        old_size = os.path.getsize(log + '.1')
        for i in range(3):
            self.send('after%d' % i)
        self.wait_delivered()
        self.assertTrue(opsutil.pop3_login(self.inst))
        self.assertEqual(self.inst.stop().returncode, 0)
        old, new = opsutil.read(log + '.1'), opsutil.read(log)
        self.assertEqual(os.path.getsize(log + '.1'), old_size,
                         'written to the old file after the reopen:\n%s'
                         % old[old_size - 200:])
        for i in range(3):
            self.assertTraced(old, 'before%d' % i, 'old file')
            self.assertNotIn_(new, 'before%d' % i, 'new file')
            self.assertTraced(new, 'after%d' % i, 'new file')
        self.assertRegex(new, r'pop3d\[\d+\]: pop3 session=\S+ from=\S+ '
                         r'user=alice result=ok')
        # Each file says where the other one is.
        self.assertRegex(old, r'pymaild\[\d+\]: log reopen file=%s '
                         r'generation=1 result=moving\n' % re.escape(log))
        self.assertRegex(new, r'pymaild\[\d+\]: log reopen file=%s '
                         r'generation=1 result=ok\n' % re.escape(log))

    def test_sighup_reopens(self):
        self.start()
        log = self.inst.logpath
        os.rename(log, log + '.1')
        self.create_log(log)
        os.kill(self.pids['pymaild'], signal.SIGHUP)
        self.assertAllWriteTo(log, timeout=10)
        self.send('afterhup')
        self.wait_delivered()
        self.assertTrue(pmtest.wait_for(
            lambda: 'result=done' in opsutil.read(log), 10))
        self.assertTraced(opsutil.read(log), 'afterhup', 'new file')
        self.assertNotIn_(opsutil.read(log + '.1'), 'afterhup', 'old file')

    def test_reopen_failure_keeps_the_old_file(self):
        # The log in a folder the daemon's account may not write to, and
        # nobody made the new file: the reopen fails, says so, and the
        # daemon goes on writing to the file it has.
        logdir = os.path.join(self.inst.dir, 'log')
        os.mkdir(logdir, 0o755)
        self.inst.write_config(logfile='log/pymaild.log')
        self.start()
        log = self.inst.logpath
        os.rename(log, log + '.1')
        if not pmtest.IS_ROOT:
            os.chmod(logdir, 0o555)
            self.addCleanup(os.chmod, logdir, 0o755)
        r = self.inst.adm('reload')
        self.assertOneLineError(r, log)
        self.assertFalse(os.path.exists(log))
        self.assertTrue(self.inst.running())
        old = opsutil.read(log + '.1')
        self.assertRegex(old, r'pymaild\[\d+\]: log reopen file=%s '
                         r'result=failed reason="[^"]+"'
                         % re.escape(log))
        # Still serving, still logging, to the file it had.
        self.send('stillold')
        self.wait_delivered()
        self.assertTrue(pmtest.wait_for(lambda: opsutil.queued_ids(
            opsutil.read(log + '.1'), 'stillold'), 10))
        self.assertAllWriteTo(log + '.1')
        # Once the file can be made, the next reload moves everyone.
        if not pmtest.IS_ROOT:
            os.chmod(logdir, 0o755)
        self.create_log(log)
        r = self.inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertAllWriteTo(log)

    def test_foreground_and_syslog_reload_untouched(self):
        # -d logs to standard error, whatever logfile says: a reload
        # opens nothing.
        inst = self.inst
        p = inst.start_foreground()
        inst.wait_ports()
        pids = {'pymaild': p.pid}
        pids.update(inst.wait_roles())
        before = {n: opsutil.stderr_inode(x) for n, x in pids.items()}
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(inst.logpath))
        self.assertEqual({n: opsutil.stderr_inode(x)
                          for n, x in pids.items()}, before)

    # -----------------------------------------------------------------

    def logrotate_conf(self):
        """The shipped file, pointed at this instance."""
        with open(SHIPPED) as f:
            text = f.read()
        _, _, user, group = opsutil.daemon_account()
        self.assertIn('/var/log/pymaild.log', text)
        text = text.replace('/var/log/pymaild.log', self.inst.logpath)
        text = re.sub(r'(?m)^(\s*create\s+0640)\s+\S+\s+\S+',
                      r'\1 %s %s' % (user, group), text)
        adm = '%s -f %s' % (pmtest.PYMAILADM, self.inst.conf)
        self.assertRegex(text, r'\bpymailadm\b')
        text = re.sub(r'\bpymailadm\b', adm, text)
        path = os.path.join(self.inst.dir, 'logrotate.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def logrotate(self, conf):
        state = os.path.join(self.inst.dir, 'logrotate.state')
        r = pmtest.run(['logrotate', '-f', '-s', state, conf],
                       env=self.inst.env(), timeout=60)
        self.assertEqual(r.returncode, 0, 'logrotate: %s%s'
                         % (r.stdout, r.stderr))

    def test_logrotate_shipped_config_while_mail_flows(self):
        if shutil.which('logrotate') is None:
            self.fail('logrotate is missing: make regress installs it '
                      '(Makefile TESTDEBS)')
        conf = self.logrotate_conf()
        self.start()
        log = self.inst.logpath
        stop = threading.Event()
        errors = []

        def traffic():
            i = 0
            while not stop.is_set() and i < 200:
                try:
                    self.send('during%d' % i)
                except Exception as e:      # reported below
                    errors.append(repr(e))
                    return
                i += 1
        t = threading.Thread(target=traffic)
        t.start()
        try:
            pmtest.wait_for(lambda: len(self.sent) >= 3, 10)
            self.logrotate(conf)
            old_size = os.path.getsize(log + '.1')
            pmtest.wait_for(lambda: len(self.sent) >= 8, 10)
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(errors, [])
        for i in range(3):
            self.send('after%d' % i)
        self.wait_delivered()
        # A second rotation compresses the first (delaycompress).
        self.logrotate(conf)
        for i in range(2):
            self.send('second%d' % i)
        self.wait_delivered()
        self.assertEqual(self.inst.stop().returncode, 0)
        self.assertTrue(os.path.exists(log + '.2.gz'), os.listdir(
            self.inst.dir))
        first = opsutil.read(log + '.2.gz')
        self.assertEqual(len(first.encode()), old_size,
                         'written to the first file after its rotation')
        middle, new = opsutil.read(log + '.1'), opsutil.read(log)
        every = first + middle + new
        # Nothing lost, nothing twice: each session's lines once.
        for tag in self.sent:
            self.assertTraced(every, tag, 'all files')
        for i in range(3):
            self.assertNotIn_(first, 'after%d' % i, 'first file')
        for i in range(2):
            self.assertTraced(new, 'second%d' % i, 'newest file')
            self.assertNotIn_(first + middle, 'second%d' % i,
                              'older files')
        st = os.stat(log)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertEqual(st.st_uid, opsutil.daemon_account()[0])


if __name__ == '__main__':
    import unittest
    unittest.main()
