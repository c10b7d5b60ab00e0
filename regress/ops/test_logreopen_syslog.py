"""A log reopen that fails is said to syslog too (and in the old file:
test_logrotate.py), so an administrator watching either one sees it.

Root only: /dev is a tmpfs in a private mount namespace of this file's
worker process, with a /dev/log of the test's (as sandbox/test_syslog.py
does).

    /usr/bin/python3 regress/run.py regress/ops/test_logreopen_syslog.py
"""

import os
import re

from lib import opsutil
from lib.opsutil import pmtest
from lib.logdaemon import private_dev_log


class ReopenFailure(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        self.logd = private_dev_log(self)

    def test_failure_reaches_syslog(self):
        # As root the parent runs as _pymaild, which may not make files
        # in the instance folder: the moved file cannot be recreated.
        inst = self.instance()
        pid = inst.start()
        log = inst.logpath
        os.rename(log, log + '.1')
        r = inst.adm('reload')
        self.assertOneLineError(r, log, 'Permission denied')
        self.assertTrue(self.logd.wait(
            r'pymaild\[%d\]: log reopen file=%s result=failed '
            r'reason="[^"]*Permission denied' % (pid, re.escape(log))),
            'not in syslog: %r' % self.logd.read()[-5:])
        self.assertIn('result=failed', opsutil.read(log + '.1'))
        self.assertTrue(inst.running())


if __name__ == '__main__':
    import unittest
    unittest.main()
