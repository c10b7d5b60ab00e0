"""What each host of a shared store keeps local: `sharedstore = true;`
makes `pymaild -n` warn about a spool or an MX cache inside the shared
maildir, and `mxcachefile` moves the MX cache out of it
(pymaild.conf(5)).

    /usr/bin/python3 regress/run.py regress/shared/test_shared_config.py
"""

import os
import time

from lib import pmtest

SPOOL_WARN = 'lies inside the shared maildir'


class SharedConfig(pmtest.TestCase):

    def check(self, **overrides):
        inst = self.instance(**overrides)
        r = inst.check_config()
        self.assertEqual(r.returncode, 0, r.stderr)
        return inst, r.stderr

    def test_spool_and_cache_inside_shared_maildir_warned(self):
        inst, err = self.check(sharedstore=True)
        self.assertIn('warning: spooldir %s/queue %s' %
                      (inst.maildir, SPOOL_WARN), err)
        self.assertIn('warning: mxcachefile %s/mxservers %s' %
                      (inst.maildir, SPOOL_WARN), err)

    def test_local_spool_and_cache_not_warned(self):
        _, err = self.check(sharedstore=True, spooldir='spool',
                            mxcachefile='local/mxservers')
        self.assertNotIn(SPOOL_WARN, err)

    def test_single_host_not_warned(self):
        _, err = self.check()
        self.assertNotIn(SPOOL_WARN, err)

    def test_mx_cache_in_its_own_file(self):
        inst = self.instance(mxcachefile='local/mxservers')
        local = os.path.join(inst.dir, 'local')
        os.makedirs(local)
        cache = os.path.join(local, 'mxservers')
        expires = int(time.time()) + 5000
        with open(cache, 'w') as f:
            f.write('domain kept.test\nexpires %d\nstatus ok\n'
                    'mx 10 mx.kept.test 127.0.0.20\n' % expires)
        if pmtest.IS_ROOT:
            uid = pmtest.uid_of(pmtest.DAEMON_USER)
            for p in (local, cache):
                os.chown(p, uid, -1)
        inst.start()
        self.assertTrue(pmtest.wait_for(
            lambda: 'mx cache loaded: domains=1' in inst.log(), 5),
            inst.log_tail())
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        # Kept where it was read from (the save writes the same path),
        # never in MAILDIR.
        with open(cache) as f:
            self.assertIn('kept.test', f.read())
        self.assertFalse(os.path.exists(os.path.join(inst.maildir,
                                                     'mxservers')))
