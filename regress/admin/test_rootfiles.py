"""Files pymaild writes as root before it drops privileges: a symbolic
link planted where the log file or the pidfile's temporary file goes must
not make root write to, or give away, another file.

Run alone:
    /usr/bin/python3 regress/run.py regress/admin/test_rootfiles.py
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'lib'))
import pmtest                                            # noqa: E402

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


if __name__ == '__main__':
    import unittest
    unittest.main()
