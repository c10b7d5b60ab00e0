"""Unique Maildir names across the hosts of a shared store: every name
holds the host's serverhostname, and the parent holds an OFD lock on
MAILDIR/.hosts/NAME.lock, so a second host of the same name refuses to
start, or to reload to a name another host has (DESIGN.md B3,
pymaild.conf(5)).

    /usr/bin/python3 regress/run.py regress/shared/test_shared_hosts.py
"""

import os
import re

from lib.sharedutil import SharedCase
from lib import pmtest
from lib.smtputil import make_message, smtp_session


class Hosts(SharedCase):

    def deliver(self, host, subj):
        s = smtp_session(host)
        s.ehlo()
        s.sendmail('carol@sender.example', ['alice@test.example'],
                   make_message(subj))
        s.quit()

    def third(self, name):
        """A third host on the store (own ports, spool, pidfile...)."""
        return self.instance(maildir=self.a.maildir, spooldir='spool',
                             serverhostname=name)

    def test_host_name_in_every_maildir_name(self):
        for i in range(3):
            self.deliver(self.a, 'from a %d' % i)
            self.deliver(self.b, 'from b %d' % i)
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.a.maildir_files('alice')) == 6, 20))
        names = [os.path.basename(p) for p in self.a.maildir_files('alice')]
        hosts = sorted(re.match(r'^\d+\.M\d+P\d+Q\d+\.([^,:]+),S=', n)
                       .group(1) for n in names)
        self.assertEqual(hosts, ['a.test.example'] * 3 +
                         ['b.test.example'] * 3, names)

    def test_same_name_refused_while_the_other_runs(self):
        c = self.third('a.test.example')
        r = c.adm('start')
        self.assertNotEqual(r.returncode, 0, r.stdout)
        lock = os.path.join(self.a.maildir, '.hosts', 'a.test.example.lock')
        self.assertIn('another host named a.test.example serves', r.stderr +
                      r.stdout + c.log())
        self.assertIn(lock, r.stderr + r.stdout + c.log())
        self.assertFalse(c.running())
        # The first host goes on serving.
        self.deliver(self.a, 'still here')
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.a.maildir_files('alice')) == 1, 20))
        # A host that dies frees its name at once: no stale lock.
        self.kill_host(self.a)
        c.start()
        c.wait_port()
        self.assertTrue(c.running())

    def test_reload_to_a_name_in_use_refused(self):
        self.b.write_config(serverhostname='a.test.example')
        r = self.b.adm('reload')
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn('another host named a.test.example serves',
                      r.stdout + r.stderr + self.b.log())
        # B keeps its name: its files still say b.test.example.
        self.deliver(self.b, 'after refused reload')
        self.assertTrue(pmtest.wait_for(
            lambda: len(self.a.maildir_files('alice')) == 1, 20))
        self.assertIn('.b.test.example,S=',
                      self.a.maildir_files('alice')[0])
        # A free name is taken, and B's old one is free for another.
        self.b.write_config(serverhostname='c.test.example')
        r = self.b.adm('reload')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        c = self.third('b.test.example')
        c.start()
        self.assertTrue(c.running())

    def test_bad_name_refused(self):
        c = self.third('a/../../etc')
        r = c.adm('start')
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertFalse(os.path.exists(os.path.join(
            self.a.maildir, 'etc.lock')))
