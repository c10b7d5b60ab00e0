"""The `make run` demo signs what it sends out, and another pymaild
checks it: `demo.py relay` (regress/lib/demo.py) starts a second
instance for second.example and a DNS server on the demo's resolver
port, sends demo@demo.example -> someone@second.example through the
demo, and reports dkimpy's verdict on what arrived. Here the demo runs
from a temporary folder (PYMAILD_DEMO_DIR) in the test's private network
namespace, so its fixed ports are free.

    /usr/bin/python3 regress/run.py regress/admin/test_demo_relay.py
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile

from lib import pmtest

PYTHON = '/usr/bin/python3'
DEMO = os.path.join(pmtest.ROOT, 'regress', 'lib', 'demo.py')
DEMO_SMTP_PORT = 2525


def unfolded(head, name):
    """The values of every field called name in a header block."""
    fields = re.findall(r'^%s:(.*?)\r?\n(?![ \t])' % re.escape(name),
                        head, re.M | re.S | re.I)
    return [re.sub(r'\s+', ' ', f).strip() for f in fields]


class DemoRelay(pmtest.TestCase):

    def setUp(self):
        super().setUp()
        self.require_root()
        self.dir = tempfile.mkdtemp(prefix='pmdemo-', dir=pmtest.TMPBASE)
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env = dict(os.environ, PYMAILD_DEMO_DIR=self.dir)
        self.conf = os.path.join(self.dir, 'pymaild.conf')

    def start_demo(self):
        """demo.py as `make run` starts it: it sets up the folder, then
        becomes pymaild -d in the foreground."""
        log = open(os.path.join(self.dir, 'demo.out'), 'wb')
        self.addCleanup(log.close)
        p = subprocess.Popen([PYTHON, DEMO], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, env=self.env,
                             start_new_session=True)
        self.addCleanup(self.stop_demo, p)
        if not pmtest.wait_for(lambda: pmtest.port_open(DEMO_SMTP_PORT) or
                               p.poll() is not None, 30):
            self.fail('the demo did not listen on %d' % DEMO_SMTP_PORT)
        if p.poll() is not None:
            self.fail('the demo exited: %s' % self.demo_output())
        return p

    def demo_output(self):
        with open(os.path.join(self.dir, 'demo.out'), errors='replace') as f:
            return f.read()[-3000:]

    def stop_demo(self, p):
        kids = pmtest.descendants(p.pid)
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for k in kids:
            pmtest.kill_pid(k)

    def test_signed_mail_verifies_at_second_instance(self):
        demo = self.start_demo()
        r = subprocess.run([PYTHON, DEMO, 'relay'], env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=150)
        said = 'stdout:\n%s\nstderr:\n%s\ndemo:\n%s' % (
            r.stdout, r.stderr, self.demo_output())
        self.assertEqual(r.returncode, 0, said)
        self.assertIn('dkimpy: signature verified', r.stdout, said)

        # What arrived, read here rather than believed from its report.
        files = glob.glob(os.path.join(self.dir, 'second', 'maildir',
                                       'someone', 'Maildir', 'new', '*'))
        self.assertEqual(len(files), 1, said)
        with open(files[0], 'rb') as f:
            data = f.read()
        head = data.split(b'\n\n', 1)[0].split(b'\r\n\r\n', 1)[0]
        head = head.decode('utf-8', 'replace')
        sigs = unfolded(head, 'DKIM-Signature')
        self.assertTrue(sigs, head)
        self.assertTrue(any(re.search(r'(^|;)\s*d=demo\.example\s*(;|$)',
                                      s) for s in sigs), sigs)
        ar = unfolded(head, 'Authentication-Results')
        self.assertEqual(len(ar), 1, head)
        self.assertTrue(ar[0].startswith('mx.second.example;'), ar)
        self.assertIn('dkim=pass header.d=demo.example', ar[0])
        self.assertIn('spf=pass', ar[0])
        self.assertIn('dmarc=pass', ar[0])

        # dkimpy again, against the record the demo's configuration
        # gives (pymailadm dnsrecords), with no DNS at all.
        import dkim
        rec = subprocess.run([pmtest.PYMAILADM, '-f', self.conf,
                              'dnsrecords', 'demo.example'],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        m = re.search(r'^(\S+)\._domainkey\.demo\.example\. IN TXT (.*)$',
                      rec.stdout, re.M)
        self.assertIsNotNone(m, rec.stdout)
        txt = ''.join(re.findall(r'"([^"]*)"', m.group(2))).encode()
        name = ('%s._domainkey.demo.example.' % m.group(1)).encode()
        self.assertTrue(dkim.verify(
            data.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n'),
            dnsfunc=lambda n, timeout=5: txt if n == name else None))

        # relay stopped what it started: the second instance is gone.
        self.assertFalse(pmtest.port_open(2625), 'second instance left')

        # The demo logs to its terminal: a SANITIZE=1 build reports there.
        self.stop_demo(demo)
        said = self.demo_output()
        for bad in ('AddressSanitizer', 'runtime error:', 'LeakSanitizer'):
            self.assertNotIn(bad, said)


if __name__ == '__main__':
    import unittest
    unittest.main()
