"""Files pymaild writes as root before it drops privileges: a symbolic
link planted where the log file or the pidfile's temporary file goes must
not make root write to, or give away, another file.

Run alone:
    /usr/bin/python3 regress/run.py regress/admin/test_rootfiles.py
"""

import os

from lib import pmtest

PRECIOUS = b'root:precious\n'
# PIDs a start may take after we looked: pymailadm, pymaild, its fork.
PID_MARGIN = 3000


class RootFiles(pmtest.TestCase):

    def victim(self, inst):
        path = os.path.join(inst.dir, 'victim')
        with open(path, 'wb') as f:
            f.write(PRECIOUS)
        os.chmod(path, 0o600)
        return path

    def assertUntouched(self, path):
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0),
                         'the file behind the link was given away')
        self.assertEqual(pmtest.read_file(path), PRECIOUS,
                         'root wrote through the link')

    def test_logfile_symlink_not_followed(self):
        self.require_root()
        inst = self.instance()
        victim = self.victim(inst)
        os.symlink(victim, inst.logpath)
        r = inst.adm('start')
        self.assertUntouched(victim)
        self.assertNotEqual(r.returncode, 0, 'started with the log file '
                            'a symbolic link: %s' % r.stdout)

    def test_pidfile_temporary_name_not_predictable(self):
        self.require_root()
        inst = self.instance()
        victim = self.victim(inst)
        with open('/proc/sys/kernel/ns_last_pid') as f:
            last = int(f.read())
        for pid in range(last + 1, last + PID_MARGIN):
            os.symlink(victim, '%s.tmp.%d' % (inst.pidfile, pid))
        inst.start()
        self.assertUntouched(victim)
        self.assertEqual(inst.pid(), int(open(inst.pidfile).read()))
        st = os.lstat(inst.pidfile)
        self.assertTrue(os.path.isfile(inst.pidfile) and
                        not os.path.islink(inst.pidfile))
        self.assertEqual(st.st_mode & 0o777, 0o644)

    def plant(self, path, victim):
        """A link to victim at every temporary name of path a writer
        of the next PID_MARGIN processes could guess; their paths."""
        with open('/proc/sys/kernel/ns_last_pid') as f:
            last = int(f.read())
        links = []
        for pid in range(last + 1, last + PID_MARGIN):
            links.append('%s.tmp.%d' % (path, pid))
            os.symlink(victim, links[-1])
        return links

    def test_admin_temporary_names_not_predictable(self):
        # users, default_options and USER/options are rewritten through
        # a temporary file in MAILDIR, where whoever runs as `user` may
        # plant links: at a name it can guess, a link would take the
        # write to a file of its choice (one `user` may write: here) or
        # make the command fail (one it may not).
        self.require_root()
        inst = self.instance()
        r = inst.adm('adduser', 'alice', 'secret')
        self.assertEqual(r.returncode, 0, r.stderr)
        victim = self.victim(inst)
        st = os.stat(inst.maildir)
        os.chown(victim, st.st_uid, st.st_gid)
        for path, argv in (
                (inst.usersfile, ('adduser', 'bob', 'secret')),
                (os.path.join(inst.maildir, 'default_options'),
                 ('chdefaultopt', 'mailboxsize', '2000000')),
                (os.path.join(inst.maildir, 'alice', 'options'),
                 ('chopt', 'alice', 'mailboxsize', '3000000'))):
            with self.subTest(file=os.path.basename(path)):
                links = self.plant(path, victim)
                r = inst.adm(*argv)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(pmtest.read_file(victim), PRECIOUS,
                                 'written through the link')
                self.assertFalse(os.path.islink(path), path)
                self.assertTrue(os.path.isfile(path))
                for link in links:      # each link is still a link
                    self.assertTrue(os.path.islink(link), link)
                    os.unlink(link)
        self.assertIn('bob', inst.users())
        r = inst.adm('getinfo', 'alice')
        self.assertIn('mailboxsize=3000000', r.stdout)


if __name__ == '__main__':
    import unittest
    unittest.main()
