"""pymailadm stats, the sessions' figures: real SMTP sessions (smtplib,
on the smtp, submission and smtps listeners: a refused relay, an unknown
user, a declared size over the limit, MAIL before AUTH on submission, a
failed and a good AUTH, one message) and POP3 sessions (poplib, on pop3
and pop3s: a bad and two good logins, RETR, TOP, DELE applied at QUIT
and DELE dropped with the connection) move every counter by exactly what
they did and no other; the histograms count each 250 and each delivery.
--prometheus is read by a strict parser of the exposition format and
agrees with --json; stats answers while SIGHUP reloads run. The
systemd timer example passes systemd-analyze verify, and its command
writes a file the strict parser takes, mode 0644, by rename, and
removes it when the daemon does not answer.

    /usr/bin/python3 regress/run.py regress/ops/test_metrics.py
"""

import json
import math
import os
import poplib
import re
import shlex
import shutil
import signal
import smtplib
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from lib import promtext
from lib.tlsutil import (REMOTE, TlsCase, USERS,
                         add_remote_address)
from lib.tlsutil import pmtest
from lib.smtputil import make_message, wait_mail

HIST = ('smtp_data_reply_seconds', 'delivery_seconds')
SMTP_NAMES = {'smtp_connections_total', 'smtp_sessions_open',
              'smtp_refusals_total', 'smtp_auth_total',
              'smtp_messages_accepted_total',
              'smtp_data_reply_seconds_bucket',
              'smtp_data_reply_seconds_sum', 'smtp_data_reply_seconds_count'}
POP3_NAMES = {'pop3_connections_total', 'pop3_sessions_open',
              'pop3_logins_total', 'pop3_messages_retrieved_total',
              'pop3_retrieved_bytes_total', 'pop3_messages_deleted_total'}
ALICE = ('alice', USERS['alice'])


def flatten(s):
    """{'name' or 'name[label value]': number}."""
    out = {}
    for k, v in s.items():
        if isinstance(v, dict):
            for lv, n in v.items():
                out['%s[%s]' % (k, lv)] = n
        else:
            out[k] = v
    return out


class Metrics(TlsCase):

    def stats(self, inst):
        r = inst.adm('stats', '--json')
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def settled(self, inst, **want):
        """Stats once the gauges and counters named reached their
        values (a closed session is counted closed a moment later)."""
        got = {}

        def ok():
            got.update(self.stats(inst))
            return all(got.get(k) == v for k, v in want.items())
        if not pmtest.wait_for(ok, timeout=10):
            self.fail('stats never reached %r: %r' % (want, got))
        return got

    def quiet(self, inst):
        """Stats once nothing moves: the start's probes of each port are
        connections the helpers may accept only after it returned."""
        last = {}

        def still():
            now = flatten(self.stats(inst))
            now.pop('uptime_seconds')
            same = now == last and now['smtp_sessions_open'] == 0 and \
                now['pop3_sessions_open'] == 0
            last.clear()
            last.update(now)
            time.sleep(0.3)
            return same
        if not pmtest.wait_for(still, timeout=15):
            self.fail('stats kept moving: %r' % last)
        return self.stats(inst)

    def assertMoved(self, before, after, expected):
        """Every figure moved by exactly expected (name -> delta), the
        histograms' buckets aside (checked by assertHistMoved)."""
        b, a = flatten(before), flatten(after)
        self.assertEqual(set(a), set(b))
        moved = {k: a[k] - b[k] for k in a
                 if a[k] != b[k] and k != 'uptime_seconds' and
                 not k.startswith(tuple(h + '_bucket' for h in HIST)) and
                 not k.endswith('_sum')}
        self.assertEqual(moved, expected)

    def assertHistMoved(self, before, after, name, n):
        """n more observations: +Inf up by n, each bucket by 0..n, the
        sum up (time passes)."""
        b, a = before[name + '_bucket'], after[name + '_bucket']
        self.assertEqual(list(a), list(b))
        self.assertEqual(a['+Inf'] - b['+Inf'], n)
        self.assertTrue(all(0 <= a[k] - b[k] <= n for k in a), (b, a))
        self.assertGreater(after[name + '_sum'], before[name + '_sum'])

    # -- SMTP ------------------------------------------------------------

    def smtp_traffic(self, inst):
        """On port 25: a refused relay, an unknown user, a SIZE over the
        limit, a failed and a good AUTH, one message to alice."""
        with smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=30) as s:
            s.ehlo('client.example')
            self.assertEqual(s.mail('carol@client.example')[0], 250)
            self.assertEqual(s.rcpt('x@remote.example')[0], 554)
            self.assertEqual(s.rcpt('nobody@test.example')[0], 550)
            self.assertEqual(s.rcpt('alice@test.example')[0], 250)
            self.assertEqual(s.data(make_message('counted'))[0], 250)
            code, _ = s.docmd('MAIL', 'FROM:<carol@client.example> '
                              'SIZE=999999999')
            self.assertEqual(code, 552)
            self.assertEqual(s.docmd('AUTH', 'PLAIN ' + plain(
                'alice', 'wrong'))[0], 535)
            self.assertEqual(s.docmd('AUTH', 'PLAIN ' + plain(*ALICE))[0],
                             235)

    def test_smtp_counters(self):
        inst = self.tls_instance(noauthhosts=[])
        before = self.quiet(inst)
        self.smtp_traffic(inst)
        # Submission: every sender logs in first.
        with smtplib.SMTP('127.0.0.1', inst.submission_port,
                          timeout=30) as s:
            s.ehlo('client.example')
            self.assertEqual(s.mail('carol@client.example')[0], 530)
        # smtps: the connection counts, in implicit TLS.
        with smtplib.SMTP_SSL('127.0.0.1', inst.smtps_port, timeout=30,
                              context=self.context()) as s:
            self.assertEqual(s.noop()[0], 250)
        wait_mail(inst, 'alice', 1)
        after = self.settled(inst, smtp_sessions_open=0,
                             delivered_local_total=1)
        self.assertMoved(before, after, {
            'smtp_connections_total[smtp]': 1,
            'smtp_connections_total[submission]': 1,
            'smtp_connections_total[smtps]': 1,
            'smtp_refusals_total[relay-denied]': 1,
            'smtp_refusals_total[unknown-user]': 1,
            'smtp_refusals_total[size]': 1,
            'smtp_refusals_total[auth-required]': 1,
            'smtp_auth_total[ok]': 1,
            'smtp_auth_total[failed]': 1,
            'smtp_messages_accepted_total': 1,
            'smtp_data_reply_seconds_count': 1,
            'messages_accepted_total': 1,
            'delivered_local_total': 1,
            'delivery_seconds_count': 1,
        })
        self.assertHistMoved(before, after, 'smtp_data_reply_seconds', 1)
        self.assertHistMoved(before, after, 'delivery_seconds', 1)

    def test_tls_required(self):
        """AUTH before STARTTLS from an address off the loopback."""
        add_remote_address(self)
        inst = self.tls_instance(listen=['127.0.0.1', REMOTE])
        before = self.quiet(inst)
        with smtplib.SMTP(REMOTE, inst.smtp_port, timeout=30,
                          source_address=(REMOTE, 0)) as s:
            s.ehlo('client.example')
            self.assertEqual(s.docmd('AUTH', 'PLAIN ' + plain(*ALICE))[0],
                             538)
        after = self.quiet(inst)
        self.assertMoved(before, after, {
            'smtp_connections_total[smtp]': 1,
            'smtp_refusals_total[tls-required]': 1,
        })

    def test_sessions_open(self):
        inst = self.tls_instance()
        s = smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=30)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        p = poplib.POP3('127.0.0.1', inst.pop3_port, timeout=30)
        self.addCleanup(p.close)
        self.settled(inst, smtp_sessions_open=1, pop3_sessions_open=1)
        s.quit()
        p.quit()
        self.settled(inst, smtp_sessions_open=0, pop3_sessions_open=0)

    # -- POP3 ------------------------------------------------------------

    def put_mail(self, inst, n):
        with smtplib.SMTP('127.0.0.1', inst.smtp_port, timeout=30) as s:
            for i in range(n):
                s.sendmail('carol@client.example', ['alice@test.example'],
                           make_message('pop %d' % i, b'x' * (100 * i + 1)))
        wait_mail(inst, 'alice', n)

    def test_pop3_counters(self):
        inst = self.tls_instance()
        self.put_mail(inst, 2)
        self.settled(inst, delivered_local_total=2)
        before = self.quiet(inst)
        p = poplib.POP3('127.0.0.1', inst.pop3_port, timeout=30)
        p.user('alice')
        with self.assertRaises(poplib.error_proto):
            p.pass_('wrong')
        p.user('alice')
        p.pass_(ALICE[1])
        sizes = [int(x.split()[1]) for x in p.list()[1]]
        p.retr(1)
        p.top(2, 0)             # not a retrieval
        p.dele(2)
        p.quit()
        # pop3s: a RETR, and a DELE the dropped connection never applies.
        q = poplib.POP3_SSL('127.0.0.1', inst.pop3s_port, timeout=30,
                            context=self.context())
        q.user('alice')
        q.pass_(ALICE[1])
        q.retr(1)
        q.dele(1)
        q.sock.close()
        q.file.close()
        after = self.settled(inst, pop3_sessions_open=0)
        self.assertMoved(before, after, {
            'pop3_connections_total[pop3]': 1,
            'pop3_connections_total[pop3s]': 1,
            'pop3_logins_total[ok]': 2,
            'pop3_logins_total[failed]': 1,
            'pop3_messages_retrieved_total': 2,
            'pop3_retrieved_bytes_total': 2 * sizes[0],
            'pop3_messages_deleted_total': 1,
        })
        self.assertEqual(len(inst.messages('alice')), 1)

    # -- the formats -----------------------------------------------------

    def test_prometheus_agrees_with_json(self):
        inst = self.tls_instance(noauthhosts=[])
        self.smtp_traffic(inst)
        wait_mail(inst, 'alice', 1)
        self.settled(inst, delivered_local_total=1)
        js = self.quiet(inst)
        r = inst.adm('stats', '--prometheus')
        self.assertEqual(r.returncode, 0, r.stderr)
        fams = promtext.parse(r.stdout)
        for name, f in fams.items():
            self.assertTrue(name.startswith('pymaild_'), name)
            self.assertTrue(f['typed'], name)
            self.assertTrue(f['help'], name)
        self.assertEqual(fams['pymaild_smtp_data_reply_seconds']['type'],
                         'histogram')
        self.assertEqual(fams['pymaild_delivery_seconds']['type'],
                         'histogram')
        self.assertEqual(fams['pymaild_smtp_refusals_total']['type'],
                         'counter')
        prom = {}
        for (name, labels), v in promtext.series(fams).items():
            key = name[len('pymaild_'):]
            if labels:
                self.assertEqual(len(labels), 1, labels)
                key += '[%s]' % labels[0][1]
            prom[key] = v
        flat = flatten(js)
        self.assertEqual(set(prom), set(flat))
        for k, v in flat.items():
            if k != 'uptime_seconds':
                self.assertTrue(math.isclose(prom[k], v), (k, prom[k], v))
        # The text form says the same, a line each.
        r = inst.adm('stats')
        lines = dict(x.rsplit('=', 1) for x in r.stdout.splitlines())
        self.assertEqual(lines['smtp_refusals_total{reason="relay-denied"}'],
                         '1')
        self.assertEqual(len(lines), len(flat))

    def test_parser_refuses_bad_text(self):
        """The parser the tests trust must refuse what Prometheus does."""
        good = ('# HELP a_total x\n# TYPE a_total counter\na_total 1\n'
                '# TYPE h histogram\nh_bucket{le="1"} 1\n'
                'h_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n')
        promtext.parse(good)
        bad = [
            good[:-1],                                  # no last LF
            good.replace('a_total 1', 'a_total one'),
            good.replace('a_total 1', 'a_total{x="1} 1'),
            good.replace('a_total 1', 'a_total{x="\\q"} 1'),
            good.replace('a_total 1', 'a_total 1\na_total 2'),
            good.replace('counter', 'countr'),
            good.replace('a_total 1', '1a 1'),
            good.replace('# TYPE a_total counter\na_total 1\n',
                         'a_total 1\n# TYPE a_total counter\n'),
            good.replace('h_count 2', 'h_count 3'),
            good.replace('le="1"} 1', 'le="1"} 3'),
            good.replace('h_bucket{le="+Inf"} 2\n', ''),
            good.replace('a_total', 'a'),               # counter name
            good + 'a_total{y="1"} 1\n',                # family apart
            good.replace('\nh_sum 0.5', ''),
        ]
        for text in bad:
            with self.subTest(text=text):
                with self.assertRaises(promtext.FormatError):
                    promtext.parse(text)

    # -- bad input -------------------------------------------------------

    def test_stats_during_reloads(self):
        """SIGHUP in a loop (bounded), and one just before each of 30
        stats requests: every request answers, whole."""
        inst = self.tls_instance()
        pid = inst.pid()
        stop = threading.Event()
        sent = [0]

        def hup():
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline \
                    and sent[0] < 2000:
                os.kill(pid, signal.SIGHUP)
                sent[0] += 1
                time.sleep(0.02)
        t = threading.Thread(target=hup)
        t.start()
        try:
            for _ in range(30):
                os.kill(pid, signal.SIGHUP)
                r = inst.adm('stats', '--json', timeout=15)
                self.assertEqual(r.returncode, 0, r.stderr)
                s = json.loads(r.stdout)
                self.assertIn('queue_messages', s)
                # A helper still busy with a backlog of reloads after
                # 2 s is left out whole (a slow SANITIZE=1 build).
                for names in (SMTP_NAMES, POP3_NAMES):
                    self.assertIn(len(names & set(s)), (0, len(names)), s)
        finally:
            stop.set()
            t.join(70)
        self.assertGreater(sent[0], 0)
        # The backlog drained, every helper answers again.
        self.assertTrue(pmtest.wait_for(
            lambda: SMTP_NAMES | POP3_NAMES <= set(self.stats(inst)),
            timeout=20))
        self.assertTrue(inst.running())
        self.assertIn('configuration reloaded', inst.log())


ETC = os.path.join(pmtest.ROOT, 'etc')
TIMER_UNITS = ('pymaild-metrics.service', 'pymaild-metrics.timer')


class TimerExample(TlsCase):

    def setUp(self):
        super().setUp()
        if shutil.which('systemd-analyze') is None:
            self.fail('systemd-analyze is missing: make deps installs '
                      'systemd')
        self.dir = tempfile.mkdtemp(prefix='pmtimer-', dir=pmtest.TMPBASE)
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_verify(self):
        for u in TIMER_UNITS:
            shutil.copy(os.path.join(ETC, u), self.dir)
        r = subprocess.run(['systemd-analyze', '--no-pager', 'verify',
                            '--man=no'] + [os.path.join(self.dir, u)
                                           for u in TIMER_UNITS],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ''))

    def command(self, inst):
        """The unit's ExecStart, as systemd would run it, with this
        instance's pymailadm first in PATH and PROM_DIR a folder here."""
        with open(os.path.join(ETC, TIMER_UNITS[0])) as f:
            text = f.read()
        (line,) = re.findall(r'^ExecStart=(.*)$', text, re.M)
        argv = shlex.split(line.replace('$$', '$'))
        self.assertEqual(argv[:2], ['/bin/sh', '-c'])
        bindir = os.path.join(self.dir, 'bin')
        os.mkdir(bindir)
        wrapper = os.path.join(bindir, 'pymailadm')
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\nexec %s -f %s "$@"\n' % (
                shlex.quote(inst.pymailadm), shlex.quote(inst.conf)))
        os.chmod(wrapper, 0o755)
        prom = os.path.join(self.dir, 'prom')
        os.mkdir(prom)
        env = dict(os.environ, PROM_DIR=prom,
                   PATH=bindir + ':/usr/sbin:/usr/bin:/sbin:/bin')
        return argv, env, prom

    def test_writes_by_rename_and_removes_when_down(self):
        inst = self.tls_instance()
        argv, env, prom = self.command(inst)
        out = os.path.join(prom, 'pymaild.prom')
        for _ in range(2):      # the second run replaces the first
            r = subprocess.run(argv, env=env, timeout=60,
                               stderr=subprocess.PIPE, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(os.listdir(prom), ['pymaild.prom'])
            self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o644)
            with open(out) as f:
                fams = promtext.parse(f.read())
            self.assertIn('pymaild_queue_messages', fams)
            self.assertIn('pymaild_smtp_data_reply_seconds', fams)
        inst.stop()
        r = subprocess.run(argv, env=env, timeout=60,
                           stderr=subprocess.PIPE, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(os.listdir(prom), [])


def plain(user, password):
    import base64
    return base64.b64encode(b'\0' + user.encode() + b'\0' +
                            password.encode()).decode()


if __name__ == '__main__':
    unittest.main()
