"""The Debian package (README: Debian package): `make deb` on a fresh
checkout builds pymaild_VERSION_ARCH.deb that lintian passes; its files
are where Debian wants them; its own pymaild checks its own
configuration and runs from the unpacked tree; and installed with dpkg
into a copy of this system, it creates its accounts and folders, starts
with the packaged configuration, and a purge keeps mail and accounts but
removes what the package made.

The package is built once for the whole file (about 20 s on an idle
machine), in a copy of the files git tracks, so the checkout's build and
its flags stamp are left alone.

    /usr/bin/python3 regress/run.py regress/package/test_deb.py
"""

import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile
import textwrap
import unittest

from lib import pmtest
from lib.checkout import fresh_copy

BUILD_TIMEOUT = 900
UNIT_DIRS = ('lib/systemd/system', 'usr/lib/systemd/system')


def make_env():
    """The environment for a make of our own: what `make regress
    SANITIZE=1` exports (its command-line variables) must not turn the
    package into a sanitizer build."""
    env = dict(os.environ)
    for v in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'SANITIZE', 'REGRESS'):
        env.pop(v, None)
    return env


def make_var(tree, name):
    """The value of a Makefile variable, as make sees it."""
    r = subprocess.run(['make', '-s', '--no-print-directory', '-C', tree,
                        '--eval', 'print-var: ; @echo $(%s)' % name,
                        'print-var'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=make_env(),
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError('make print-var %s: %s' % (name, r.stdout))
    return r.stdout.split()


def conf_value(text, key):
    """A string key of the packaged pymaild.conf (the active line)."""
    m = re.search(r'^%s\s*=\s*"([^"]*)"\s*;' % re.escape(key), text, re.M)
    return m.group(1) if m else None


class Built:
    """The package, built once for the file's tests."""
    dir = None
    error = None


def setUpModule():
    if not os.path.exists(os.path.join(pmtest.ROOT, '.git')):
        Built.error = 'not a git checkout: no fresh tree to build from'
        return
    Built.dir = tempfile.mkdtemp(prefix='pmdeb-', dir=pmtest.TMPBASE)
    os.chmod(Built.dir, 0o755)
    Built.tree = os.path.join(Built.dir, 'tree')
    os.mkdir(Built.tree, 0o700)
    fresh_copy(pmtest.ROOT, Built.tree)
    Built.version = make_var(Built.tree, 'VERSION')[0]
    Built.helpers = [os.path.basename(h)
                     for h in make_var(Built.tree, 'HELPERS')]
    Built.arch = subprocess.run(['dpkg', '--print-architecture'],
                                stdout=subprocess.PIPE, text=True,
                                check=True).stdout.strip()
    r = subprocess.run(['make', '--no-print-directory', '-C', Built.tree,
                        'deb'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=make_env(),
                       timeout=BUILD_TIMEOUT)
    Built.log = r.stdout
    if r.returncode != 0:
        Built.error = 'make deb: exit %d\n%s' % (r.returncode,
                                                 r.stdout[-4000:])
        return
    Built.deb = os.path.join(Built.tree, 'build', 'deb', 'pymaild_%s_%s.deb'
                             % (Built.version, Built.arch))
    if not os.path.isfile(Built.deb):
        Built.error = 'make deb made no %s:\n%s' % (Built.deb,
                                                    r.stdout[-2000:])
        return
    Built.root = os.path.join(Built.dir, 'root')
    Built.control = os.path.join(Built.dir, 'control')
    subprocess.run(['dpkg-deb', '-x', Built.deb, Built.root], check=True)
    subprocess.run(['dpkg-deb', '-e', Built.deb, Built.control], check=True)
    # The daemon accounts traverse it when the unpacked daemon runs.
    os.chmod(Built.root, 0o755)


def tearDownModule():
    if Built.dir and not pmtest.KEEP:
        shutil.rmtree(Built.dir, ignore_errors=True)


class PackageCase(pmtest.TestCase):

    def setUp(self):
        if Built.error and Built.error.startswith('not a git checkout'):
            self.skipTest(Built.error)
        if Built.error:
            self.fail(Built.error)
        pmtest.require_accounts()

    def path(self, rel):
        return os.path.join(Built.root, rel.lstrip('/'))

    def control(self, name):
        with open(os.path.join(Built.control, name)) as f:
            return f.read()

    def packaged_conf(self):
        with open(self.path('etc/pymaild.conf')) as f:
            return f.read()

    def unit_path(self):
        found = [os.path.join(d, 'pymaild.service') for d in UNIT_DIRS
                 if os.path.isfile(self.path(os.path.join(
                     d, 'pymaild.service')))]
        self.assertEqual(len(found), 1, 'pymaild.service in %s'
                         % ' or '.join(UNIT_DIRS))
        return found[0]


class Contents(PackageCase):

    def test_name_version_arch(self):
        fields = subprocess.run(['dpkg-deb', '-f', Built.deb, 'Package',
                                 'Version', 'Architecture', 'Depends'],
                                stdout=subprocess.PIPE, text=True,
                                check=True).stdout
        self.assertIn('Package: pymaild\n', fields)
        self.assertIn('Version: %s\n' % Built.version, fields)
        self.assertIn('Architecture: %s\n' % Built.arch, fields)
        # ${shlibs:Depends} filled in: the libraries the programs link.
        for lib in ('libevent', 'libconfig', 'libldns', 'libseccomp'):
            self.assertIn(lib, fields)

    def test_lintian_ran_clean_of_errors(self):
        # make deb ran lintian with --fail-on error; this proves it ran.
        self.assertIn('lintian --fail-on error', Built.log)
        self.assertNotRegex(Built.log, r'(?m)^E: ')

    def test_programs(self):
        for rel in ('usr/sbin/pymaild', 'usr/sbin/pymailadm'):
            self.assertTrue(os.access(self.path(rel), os.X_OK), rel)
        libexec = self.path('usr/libexec/pymaild')
        self.assertEqual(sorted(os.listdir(libexec)), sorted(Built.helpers))
        for h in Built.helpers:
            self.assertTrue(os.access(os.path.join(libexec, h), os.X_OK), h)

    def test_helper_folder_built_in(self):
        # pymaild falls back to LIBEXECDIR when ../libexec/pymaild next
        # to itself is missing: it must name where the package puts them.
        with open(self.path('usr/sbin/pymaild'), 'rb') as f:
            data = f.read()
        self.assertIn(b'/usr/libexec/pymaild\0', data)
        self.assertNotIn(b'/usr/local/libexec', data)

    def test_manual_pages(self):
        pages = [n for n in os.listdir(os.path.join(pmtest.ROOT, 'man'))
                 if re.fullmatch(r'.+\.[1-8]', n)]
        self.assertTrue(pages)
        for n in pages:
            rel = 'usr/share/man/man%s/%s.gz' % (n[-1], n)
            with gzip.open(self.path(rel), 'rt') as f:
                self.assertRegex(f.read(), r'(?m)^\.(Dt|TH) ', rel)

    def test_conffiles(self):
        listed = set(self.control('conffiles').split())
        in_etc = set()
        for d, _, files in os.walk(self.path('etc')):
            for n in files:
                in_etc.add('/' + os.path.relpath(os.path.join(d, n),
                                                 Built.root))
        self.assertIn('/etc/pymaild.conf', listed)
        self.assertIn('/etc/logrotate.d/pymaild', listed)
        self.assertEqual(listed, in_etc)

    def test_metrics_timer_is_an_example(self):
        # Shipped to copy, not started: the textfile collector's folder
        # is node_exporter's, which the package does not depend on.
        ex = 'usr/share/doc/pymaild/examples'
        for n in ('pymaild-metrics.service', 'pymaild-metrics.timer'):
            with open(self.path(os.path.join(ex, n))) as f, \
                    open(os.path.join(pmtest.ROOT, 'etc', n)) as g:
                self.assertEqual(f.read(), g.read(), n)
            for d in ('lib/systemd/system', 'usr/lib/systemd/system'):
                self.assertFalse(os.path.exists(self.path(
                    os.path.join(d, n))), n)
        self.assertNotIn('pymaild-metrics', self.control('postinst'))

    def test_unit(self):
        with open(self.path(self.unit_path())) as f:
            unit = f.read()
        execs = re.findall(r'^Exec\w+=[-+!@]*(\S+)', unit, re.M)
        self.assertTrue(execs)
        for prog in execs:
            if prog.startswith('/usr/sbin/pymail'):
                self.assertTrue(os.access(self.path(prog), os.X_OK), prog)
            else:
                self.assertTrue(os.access(prog, os.X_OK), prog)
        self.assertNotIn('/usr/local', ''.join(
            l for l in unit.splitlines(True) if not l.startswith('#')))
        # Enabled the Debian way: dh_installsystemd's part of postinst.
        post = self.control('postinst')
        self.assertIn('deb-systemd-helper enable', post)
        self.assertIn('pymaild.service', post)

    def test_maintainer_scripts(self):
        for name in ('postinst', 'postrm', 'prerm'):
            p = os.path.join(Built.control, name)
            st = os.stat(p)
            self.assertTrue(stat.S_ISREG(st.st_mode), name)
            self.assertEqual(st.st_mode & 0o111, 0o111, name)
            with open(p) as f:
                self.assertEqual(f.readline(), '#!/bin/sh\n', name)
            r = subprocess.run(['sh', '-n', p], stderr=subprocess.PIPE,
                               text=True)
            self.assertEqual(r.returncode, 0, '%s: %s' % (name, r.stderr))

    def test_accounts_are_the_configured_ones(self):
        conf = self.packaged_conf()
        post = self.control('postinst')
        for key in ('user', 'queueuser', 'outbounduser'):
            name = conf_value(conf, key)
            self.assertTrue(name, key)
            self.assertRegex(post, r'add_account %s\b' % re.escape(name))
        self.assertIn('adduser --system', post)


class PackagedDaemon(PackageCase):

    def test_checks_its_configuration(self):
        # Nothing adjusted: the packaged program reads the packaged file.
        # Its absolute paths (/var/pymaild...) are this system's; -n only
        # reads the user list there, when one exists.
        conf = self.path('etc/pymaild.conf')
        r = pmtest.run([self.path('usr/sbin/pymaild'), '-n', '-f', conf])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('%s: configuration OK' % conf, r.stdout)

    def test_runs_from_the_unpacked_tree(self):
        # The packaged configuration with only what a test must not
        # share with the system changed: its own folder for mail, pid,
        # socket and log, and free ports. Everything else (user,
        # queueuser, limits, listen on 127.0.0.1 and ::1) as shipped.
        conf = self.packaged_conf()
        inst = self.instance()
        repl = {
            'maildir': '"maildir"', 'pidfile': '"pymaild.pid"',
            'controlsocket': '"pymaild.sock"', 'logfile': '"pymaild.log"',
            'smtpserverport': str(inst.smtp_port),
            'pop3serverport': str(inst.pop3_port),
            'resolver': '"127.0.0.1:%d"' % inst.resolver_port,
        }
        for key, value in repl.items():
            conf, n = re.subn(r'(?m)^%s\s*=.*;' % key,
                              '%s = %s;' % (key, value), conf)
            self.assertEqual(n, 1, key)
        conf += 'localdomains = [ "test.example" ];\n'
        with open(inst.conf, 'w') as f:
            f.write(conf)
        inst.config.update(maildir='maildir', pidfile='pymaild.pid',
                           controlsocket='pymaild.sock',
                           logfile='pymaild.log')
        inst.pymailadm = self.path('usr/sbin/pymailadm')
        inst.pymaild_bin = self.path('usr/sbin/pymaild')
        r = inst.adm('adduser', 'alice', 'secret')
        self.assertEqual(r.returncode, 0, r.stderr)
        inst.start()
        inst.wait_ports()
        roles = inst.wait_roles()
        for role, pid in roles.items():
            exe = os.readlink('/proc/%d/exe' % pid)
            self.assertEqual(exe, self.path('usr/libexec/pymaild/' + role))
        self.assertEqual(sorted(roles), sorted(Built.helpers))
        import smtplib
        with smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=30) as s:
            s.sendmail('bob@client.example', ['alice@test.example'],
                       'Subject: packaged\r\n\r\nhello\r\n')
        self.assertTrue(pmtest.wait_for(lambda: inst.messages('alice'), 15),
                        'no mail for alice; log:\n' + inst.log_tail())
        self.assertIn(b'Subject: packaged', inst.messages('alice')[0])
        # The packaged file leaves serverhostname to its default, which
        # each helper works out again at a reload.
        r = inst.adm('reload')
        self.assertEqual(r.returncode, 0, r.stderr + inst.log_tail())
        self.assertEqual(inst.wait_roles(), roles, inst.log_tail())
        r = inst.stop()
        self.assertEqual(r.returncode, 0, r.stderr)


# Installed with dpkg into a copy of this system: an overlay of / in a
# mount namespace of its own, chrooted, so the real system is never
# written to. The accounts are deleted first (in the copy) to see
# postinst make them. Each step prints "STEP name rc" for the test.
INSTALL_SCRIPT = r'''
set -u
W=$1
DEB=$2
WITH_MAIL=$3
mount -t tmpfs pmdeb "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay pmdeb -o lowerdir=/,upperdir=$W/upper,workdir=$W/work \
    "$W/root"
mount --bind /proc "$W/root/proc"
mount --bind /dev "$W/root/dev"
mount -t tmpfs pmdeb "$W/root/run"
mount -t tmpfs pmdeb "$W/root/tmp"
cp "$DEB" "$W/root/tmp/pymaild.deb"
exec chroot "$W/root" /bin/sh -s "$WITH_MAIL" <<'IN_CHROOT'
set -u
step() { name=$1; shift; "$@" >/tmp/out 2>&1; rc=$?; \
    echo "STEP $name $rc"; sed 's/^/    /' /tmp/out; }
WITH_MAIL=$1
# Mail to the host name, the packaged default local domain.
send_mail() {
	/usr/bin/python3 -c 'import smtplib, socket
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
    s.sendmail("bob@client.example", ["alice@" + socket.gethostname()],
               "Subject: kept\r\n\r\nhello\r\n")'
}
wait_mail() {
	i=0
	while [ $i -lt 100 ]; do
		ls /var/pymaild/alice/Maildir/new/* >/dev/null 2>&1 && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
for u in _pymaild _pymailq _pymailout; do
	userdel "$u" 2>/dev/null; groupdel "$u" 2>/dev/null
done
rm -rf /var/pymaild /var/log/pymaild.log
step install dpkg -i /tmp/pymaild.deb
step user_made getent passwd _pymaild
step queueuser_made getent passwd _pymailq
step outbounduser_made getent passwd _pymailout
step nologin sh -c 'getent passwd _pymaild | grep -q ":/usr/sbin/nologin$"'
step group_own sh -c '[ "$(id -gn _pymaild)" = _pymaild ]'
step maildir_made sh -c \
    '[ "$(stat -c %U:%a /var/pymaild)" = _pymaild:700 ]'
step enabled test -L \
    /etc/systemd/system/multi-user.target.wants/pymaild.service
step check pymaild -n
step start pymailadm start
if [ "$WITH_MAIL" = yes ]; then
	step adduser pymailadm adduser alice secret
	step send send_mail
	step delivered wait_mail
fi
step stop pymailadm stop
# Never leave a daemon behind in this namespace, whatever failed.
[ -f /run/pymaild.pid ] && kill "$(cat /run/pymaild.pid)" 2>/dev/null
step purge dpkg --purge pymaild
step conf_gone test ! -e /etc/pymaild.conf
step program_gone test ! -e /usr/sbin/pymaild
step user_kept getent passwd _pymaild
step queueuser_kept getent passwd _pymailq
step outbounduser_kept getent passwd _pymailout
if [ "$WITH_MAIL" = yes ]; then
	step mail_kept sh -c 'ls /var/pymaild/alice/Maildir/new/* >/dev/null'
	step users_kept grep -q '^alice:' /var/pymaild/users
else
	step maildir_gone test ! -e /var/pymaild
fi
echo DONE
IN_CHROOT
'''


class Installed(PackageCase):

    def setUp(self):
        super().setUp()
        self.require_root()
        for tool in ('unshare', 'chroot'):
            if shutil.which(tool) is None:
                self.fail('%s is missing (util-linux, coreutils)' % tool)

    def install_and_purge(self, with_mail):
        w = tempfile.mkdtemp(prefix='pmdebroot-', dir=pmtest.TMPBASE)
        self.addCleanup(os.rmdir, w)
        r = subprocess.run(['unshare', '--mount', '--propagation', 'private',
                            'sh', '-c', INSTALL_SCRIPT, 'install', w,
                            Built.deb, 'yes' if with_mail else 'no'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=100)
        steps = dict(re.findall(r'(?m)^STEP (\w+) (\d+)$', r.stdout))
        self.assertIn('DONE', r.stdout, r.stdout[-3000:])
        return steps, r.stdout

    def assertSteps(self, steps, out, names):
        bad = [n for n in names if steps.get(n) != '0']
        self.assertEqual(bad, [], out[-3000:])

    def test_purge_keeps_mail_and_accounts(self):
        steps, out = self.install_and_purge(True)
        self.assertSteps(steps, out, (
            'install', 'user_made', 'queueuser_made', 'outbounduser_made',
            'nologin', 'group_own',
            'maildir_made', 'enabled', 'check', 'start', 'adduser', 'send',
            'delivered', 'stop', 'purge', 'conf_gone', 'program_gone',
            'user_kept', 'queueuser_kept', 'outbounduser_kept', 'mail_kept',
            'users_kept'))
        self.assertIn('/var/pymaild holds accounts or mail: kept', out)

    def test_purge_removes_an_unused_maildir(self):
        steps, out = self.install_and_purge(False)
        self.assertSteps(steps, out, (
            'install', 'user_made', 'maildir_made', 'check', 'start', 'stop',
            'purge', 'conf_gone', 'user_kept', 'maildir_gone'))



# The package installed and its unit started by systemd as PID 1: a
# container (systemd-nspawn) booting a copy of this system (an overlay
# of / in a mount namespace of its own, nothing written to the real
# one), with a network of its own (loopback only). systemd starts the
# one unit below instead of a default target; it runs BOOT_TEST and
# powers the container off. Each step prints "STEP name rc".
BOOT_UNIT = """[Unit]
Description=pymaild package test
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/sh /pmtest/boot-test.sh
StandardOutput=file:/pmtest/out
StandardError=inherit
FailureAction=poweroff-force
"""

BOOT_TEST = r"""
step() { name=$1; shift; "$@" >/tmp/step 2>&1; rc=$?; \
    echo "STEP $name $rc"; sed 's/^/    /' /tmp/step; }
mainpid() { systemctl show -p MainPID --value pymaild; }
helpers() { ps -o pid= --ppid "$(mainpid)" | tr -d ' ' | sort | tr '\n' ' '; }
# Until the unit is active with a main PID other than $1, at most 20 s.
wait_active() {
	i=0
	while [ $i -lt 200 ]; do
		p=$(mainpid)
		[ "$p" != 0 ] && [ "$p" != "$1" ] &&
		    systemctl -q is-active pymaild && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
# man-db's trigger rebuilds every index (tens of seconds on a busy
# machine); this copy of the system is thrown away anyway.
rm -f /var/lib/man-db/auto-update
step install dpkg -i /pmtest/pymaild.deb
step verify systemd-analyze verify pymaild.service
# policy-rc.d may keep postinst from starting it in a container image.
step start systemctl start pymaild
step active systemctl is-active pymaild
step parent_user sh -c '[ "$(ps -o user= -p "$(systemctl show -p MainPID \
    --value pymaild)")" = _pymaild ]'
step adduser pymailadm adduser alice secret
step send /usr/bin/python3 -c 'import smtplib, socket
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
    s.sendmail("bob@client.example", ["alice@" + socket.gethostname()],
               "Subject: unit\r\n\r\nhello\r\n")'
step delivered sh -c 'for i in $(seq 100); do
	ls /var/pymaild/alice/Maildir/new/* && exit 0; sleep 0.1; done; exit 1'
step security sh -c 'systemd-analyze security pymaild.service | tail -1'
first=$(mainpid)
before=$(helpers)
step reload systemctl reload pymaild
sleep 1
step same_after_reload sh -c "[ '$first' = \"\$(systemctl show -p MainPID \
    --value pymaild)\" ] && [ '$before' = '$(helpers)' ]"
step kill_helper sh -c "kill -KILL \$(ps -o pid= --ppid $first | head -1)"
step restarted wait_active "$first"
step stop systemctl stop pymaild
step inactive sh -c '! systemctl -q is-active pymaild'
journalctl -u pymaild --no-pager | tail -40
echo DONE
systemctl --no-block poweroff
"""

BOOT_SCRIPT = r"""
set -e
W=$1
mount -t tmpfs pmdeb "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay pmdeb -o lowerdir=/,upperdir=$W/upper,workdir=$W/work \
    "$W/root"
exec timeout -k 5 200 systemd-nspawn -q -D "$W/root" --private-network \
    --register=no --link-journal=no --keep-unit --bind="$2:/pmtest" \
    --bind-ro="$2/pmtest.service:/etc/systemd/system/pmtest.service" \
    -b systemd.unit=pmtest.service
"""


class UnderSystemd(PackageCase):

    def setUp(self):
        super().setUp()
        self.require_root()
        for tool in ('unshare', 'systemd-nspawn'):
            if shutil.which(tool) is None:
                self.fail('%s is missing: make deps installs it' % tool)

    def test_unit_starts_reloads_restarts_and_stops(self):
        d = tempfile.mkdtemp(prefix='pmboot-', dir=pmtest.TMPBASE)
        self.addCleanup(shutil.rmtree, d, True)
        w = os.path.join(d, 'overlay')
        os.mkdir(w)
        shutil.copy(Built.deb, os.path.join(d, 'pymaild.deb'))
        for name, text in (('pmtest.service', BOOT_UNIT),
                           ('boot-test.sh', BOOT_TEST)):
            with open(os.path.join(d, name), 'w') as f:
                f.write(text)
        r = subprocess.run(['unshare', '--mount', '--propagation', 'private',
                            'sh', '-c', BOOT_SCRIPT, 'boot', w, d],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=220)
        try:
            with open(os.path.join(d, 'out')) as f:
                out = f.read()
        except FileNotFoundError:
            out = ''
        self.assertIn('DONE', out, 'no end of the test in the container:\n'
                      + out[-3000:] + '\nconsole:\n' + r.stdout[-3000:])
        steps = dict(re.findall(r'(?m)^STEP (\w+) (\d+)$', out))
        names = ('install', 'verify', 'start', 'active', 'parent_user',
                 'adduser', 'send', 'delivered', 'security', 'reload',
                 'same_after_reload', 'kill_helper', 'restarted', 'stop',
                 'inactive')
        self.assertEqual([n for n in names if steps.get(n) != '0'], [],
                         out[-4000:])
        m = re.search(r'Overall exposure level for pymaild\.service: '
                      r'(\d+\.\d+)', out)
        self.assertTrue(m, out[-2000:])
        self.assertLessEqual(float(m.group(1)), 3.0)
        # Restarted by Restart=on-failure after the helper's failure.
        self.assertIn('Scheduled restart job', out)

if __name__ == '__main__':
    unittest.main()
