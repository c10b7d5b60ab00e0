#!/usr/bin/python3
"""The demo behind `make run`: a pymaild in run/ on 127.0.0.1:2525 (SMTP)
and 127.0.0.1:1110 (POP3), with one user demo/demo, in the foreground.

    /usr/bin/python3 regress/lib/demo.py          set up run/ and start
    /usr/bin/python3 regress/lib/demo.py send     send a test message
    /usr/bin/python3 regress/lib/demo.py fetch    list and print the mailbox
    /usr/bin/python3 regress/lib/demo.py relay    send one message out to a
        second pymaild (second.example) that checks its DKIM signature,
        SPF and DMARC; print the verdicts; stop what it started

The demo signs the mail it sends out with a DKIM key made at the first
run (run/dkim/).  PYMAILD_DEMO_DIR=FOLDER puts the demo's folder (run/)
elsewhere (the tests do).
"""

import glob
import os
import poplib
import re
import pwd
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN = os.path.abspath(os.environ.get('PYMAILD_DEMO_DIR') or
                      os.path.join(ROOT, 'run'))
CONF = os.path.join(RUN, 'pymaild.conf')
PYMAILD = os.path.join(ROOT, 'pymaild', 'pymaild')
PYMAILADM = os.path.join(ROOT, 'admin', 'pymailadm')
SMTP_PORT, POP3_PORT = 2525, 1110
SUBMISSION_PORT, SMTPS_PORT, POP3S_PORT = 2587, 2465, 1995
TLS_DIR = os.path.join(RUN, 'tls')
DOMAIN = 'demo.example'
USER, PASSWORD = 'demo', 'demo'
DKIM_SELECTOR = 'demo'
DKIM_KEY = os.path.join(RUN, 'dkim', '%s.%s.key' % (DOMAIN, DKIM_SELECTOR))
RESOLVER_PORT = 5353
# `relay`: the second instance, in RUN/second/, and who gets the mail.
SECOND = os.path.join(RUN, 'second')
SECOND_CONF = os.path.join(SECOND, 'pymaild.conf')
SECOND_DOMAIN = 'second.example'
SECOND_SMTP_PORT, SECOND_POP3_PORT = 2625, 1210
SECOND_USER = 'someone'

CONFIG = '''\
# The `make run` demo (written by regress/lib/demo.py at every start;
# edits are overwritten).  Relative paths are relative to this folder.
serverhostname = "mail.{domain}";
localdomains   = [ "{domain}" ];
listen         = [ "127.0.0.1" ];
smtpserverport = {smtp};
pop3serverport = {pop3};
maildir        = "maildir";
pidfile        = "pymaild.pid";
controlsocket  = "pymaild.sock";
loglevel       = 2;          # pymaild -d logs to stderr
user           = "{user}";
queueuser      = "{quser}";
outbounduser   = "{ouser}";
# Outbound mail stays on this machine: DNS goes to a loopback port where
# nothing answers (so mail for other domains just stays queued) unless
# `demo.py relay` runs its DNS server there for second.example, whose
# MX is this machine's port {outport}.
resolver       = "127.0.0.1:{resolver}";
outboundport   = {outport};
# A self-signed certificate made at the first run (run/tls/).
tls            = {{ cert = "tls/cert.pem"; key = "tls/key.pem"; }};
submissionport = {submission};
smtpsport      = {smtps};
pop3sport      = {pop3s};
'''

# Mail that leaves with a From: in demo.example is signed with this key.
DKIM_CONFIG = '''\
dkim = ( {{ domain = "{domain}"; selector = "{selector}"; key = "{key}"; }} );
'''

SECOND_CONFIG = '''\
# The second instance of `demo.py relay` (written at every relay).
serverhostname = "mx.{domain}";
localdomains   = [ "{domain}" ];
listen         = [ "127.0.0.1" ];
smtpserverport = {smtp};
pop3serverport = {pop3};
submissionport = 0;
smtpsport      = 0;
pop3sport      = 0;
maildir        = "maildir";
pidfile        = "pymaild.pid";
controlsocket  = "pymaild.sock";
logfile        = "pymaild.log";
loglevel       = 2;
user           = "{user}";
queueuser      = "{quser}";
outbounduser   = "{ouser}";
resolver       = "127.0.0.1:{resolver}";
# Check SPF, DKIM and DMARC of mail from everyone, loopback included
# (the demo sends from 127.0.0.1, which noauthhosts spares by default).
authchecks     = true;
noauthhosts    = [ ];
'''


def make_certificate():
    """An ECDSA P-256 self-signed pair for mail.demo.example, once."""
    key = os.path.join(TLS_DIR, 'key.pem')
    cert = os.path.join(TLS_DIR, 'cert.pem')
    if os.path.exists(key) and os.path.exists(cert):
        return
    os.makedirs(TLS_DIR, exist_ok=True)
    cn = 'mail.' + DOMAIN
    for argv in (['genpkey', '-algorithm', 'EC', '-pkeyopt',
                  'ec_paramgen_curve:P-256', '-out', key],
                 ['req', '-new', '-x509', '-key', key, '-out', cert,
                  '-days', '3650', '-subj', '/CN=' + cn,
                  '-addext', 'subjectAltName=DNS:' + cn]):
        r = subprocess.run(['openssl'] + argv, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            die('openssl %s: %s' % (argv[0], r.stderr.strip()))
    # Read again by the daemon's account at a reload.
    os.chmod(key, 0o644)
    print('demo: made a self-signed certificate in %s'
          % shown(TLS_DIR))


def shown(path):
    """path as a user types it: relative when under the current folder."""
    rel = os.path.relpath(path)
    return path if rel.startswith('..') else rel


def die(msg):
    print('demo: ' + msg, file=sys.stderr)
    sys.exit(1)


def adm(*args, input=None, conf=CONF):
    return subprocess.run([PYMAILADM, '-f', conf] + list(args), input=input,
                          stdin=None if input is not None
                          else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def accounts():
    """The daemon's accounts: the system ones as root, else ours."""
    if os.geteuid() == 0:
        return '_pymaild', '_pymailq', '_pymailout'
    me = pwd.getpwuid(os.geteuid()).pw_name
    return me, me, me


def write_file(path, text):
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.chmod(path + '.tmp', 0o644)
    os.rename(path + '.tmp', path)


def make_dkim_key():
    """pymailadm dkimkey, once: it needs demo.example in the written
    configuration, which then names the key."""
    if os.path.exists(DKIM_KEY):
        return
    r = adm('dkimkey', DOMAIN, DKIM_SELECTOR, '-o', DKIM_KEY)
    if r.returncode != 0:
        die('pymailadm dkimkey: %s' % (r.stderr.strip() or r.returncode))
    print('demo: made a DKIM key for %s in %s' % (
        DOMAIN, shown(DKIM_KEY)))


def setup():
    for prog in (PYMAILD, PYMAILADM):
        if not os.access(prog, os.X_OK):
            die('%s is not built: run make' % prog)
    os.makedirs(RUN, exist_ok=True)
    os.chmod(RUN, 0o755)        # the daemon's accounts must traverse it
    user, quser, ouser = accounts()
    make_certificate()
    text = CONFIG.format(domain=DOMAIN, smtp=SMTP_PORT, pop3=POP3_PORT,
                         user=user, quser=quser, ouser=ouser,
                         submission=SUBMISSION_PORT, smtps=SMTPS_PORT,
                         pop3s=POP3S_PORT, resolver=RESOLVER_PORT,
                         outport=SECOND_SMTP_PORT)
    write_file(CONF, text)
    os.makedirs(os.path.dirname(DKIM_KEY), exist_ok=True)
    make_dkim_key()
    write_file(CONF, text + DKIM_CONFIG.format(
        domain=DOMAIN, selector=DKIM_SELECTOR, key=DKIM_KEY))

    r = adm('status')
    if r.returncode == 0:
        die('a demo pymaild is already running (%s); stop it with:\n'
            '  %s -f %s stop' % (r.stdout.strip().replace('\n', ', '),
                                 shown(PYMAILADM),
                                 shown(CONF)))
    r = adm('users')
    if r.returncode != 0:
        die('pymailadm users: %s' % (r.stderr.strip() or r.returncode))
    if USER not in r.stdout.split():
        r = adm('adduser', USER, '-', input=PASSWORD + '\n')
        if r.returncode != 0:
            die('pymailadm adduser %s: %s' % (USER, r.stderr.strip()))
        print('demo: added user %s (password %s)' % (USER, PASSWORD))


def usage_text():
    me = shown(os.path.abspath(__file__))
    adm_cmd = '%s -f %s' % (shown(PYMAILADM),
                            shown(CONF))
    return '''\
pymaild demo: SMTP 127.0.0.1:{smtp}, POP3 127.0.0.1:{pop3}, folder {run}/
  with STARTTLS and STLS there, submission {submission}, smtps {smtps},
  pop3s {pop3s} (self-signed certificate: {run}/tls/cert.pem)
  user {user}@{domain}, password {pw}

  send a message:   /usr/bin/python3 {me} send
     (or: swaks --server 127.0.0.1:{smtp} --to {user}@{domain})
  read the mailbox: /usr/bin/python3 {me} fetch
     (or any POP3 client: USER {user} / PASS {pw} on port {pop3})
  on disk:          {run}/maildir/{user}/Maildir/new/
  admin:            {adm} getinfo {user}
  stop:             Ctrl-C here, or {adm} stop
  TLS:              openssl s_client -starttls smtp -connect 127.0.0.1:{smtp}
  mail out, signed: /usr/bin/python3 {me} relay
     (to a second pymaild on port {second} that checks DKIM, SPF, DMARC)
'''.format(second=SECOND_SMTP_PORT, run=shown(RUN), smtp=SMTP_PORT,
           pop3=POP3_PORT, user=USER, domain=DOMAIN,
           pw=PASSWORD, me=me, adm=adm_cmd, submission=SUBMISSION_PORT,
           smtps=SMTPS_PORT, pop3s=POP3S_PORT)


def send():
    msg = EmailMessage()
    msg['From'] = 'someone@example.org'
    msg['To'] = '%s@%s' % (USER, DOMAIN)
    msg['Subject'] = 'Hello from the pymaild demo'
    msg.set_content('It works.\n')
    with smtplib.SMTP('127.0.0.1', SMTP_PORT, timeout=30) as s:
        s.send_message(msg)
    print('sent to %s@%s' % (USER, DOMAIN))


def fetch():
    p = poplib.POP3('127.0.0.1', POP3_PORT, timeout=30)
    try:
        p.user(USER)
        p.pass_(PASSWORD)
        count, size = p.stat()
        print('%d message(s), %d octets' % (count, size))
        for i in range(1, count + 1):
            _, lines, _ = p.retr(i)
            print('--- message %d ---' % i)
            print(b'\n'.join(lines).decode('utf-8', 'replace'))
    finally:
        p.quit()


# ----------------------------------------------------------------------
# relay: the demo's mail, signed, checked by a second pymaild

def demo_dns_records():
    """The records `pymailadm dnsrecords` says demo.example needs (MX,
    SPF, the DKIM key, DMARC), the address of its MX host, and the MX
    of second.example: all on this machine."""
    from dnsfixture import txt_rdata
    r = adm('dnsrecords', DOMAIN)
    if r.returncode != 0:
        die('pymailadm dnsrecords: %s' % (r.stderr.strip() or r.returncode))
    records = []
    for line in r.stdout.splitlines():
        m = re.match(r'^(\S+\.) IN (MX|TXT) (.*)$', line)
        if not m:
            continue
        owner, rtype, rdata = m.groups()
        if rtype == 'TXT':
            rdata = txt_rdata(re.findall(r'"([^"]*)"', rdata))
        records.append((owner.lower(), 300, rtype, rdata))
    if not any(r[2] == 'TXT' and '_domainkey' in r[0] for r in records):
        die('pymailadm dnsrecords %s names no DKIM key:\n%s'
            % (DOMAIN, r.stdout))
    return records + [
        ('mail.%s.' % DOMAIN, 300, 'A', '127.0.0.1'),
        ('%s.' % SECOND_DOMAIN, 300, 'MX', '10 mx.%s.' % SECOND_DOMAIN),
        ('mx.%s.' % SECOND_DOMAIN, 300, 'A', '127.0.0.1'),
    ]


def start_second():
    """The second pymaild in RUN/second/; returns its PID."""
    os.makedirs(SECOND, exist_ok=True)
    os.chmod(SECOND, 0o755)
    user, quser, ouser = accounts()
    write_file(SECOND_CONF, SECOND_CONFIG.format(
        domain=SECOND_DOMAIN, smtp=SECOND_SMTP_PORT, pop3=SECOND_POP3_PORT,
        user=user, quser=quser, ouser=ouser, resolver=RESOLVER_PORT))
    if adm('status', conf=SECOND_CONF).returncode == 0:
        die('a second pymaild is already running: %s -f %s stop'
            % (shown(PYMAILADM), shown(SECOND_CONF)))
    r = adm('users', conf=SECOND_CONF)
    if r.returncode == 0 and SECOND_USER not in r.stdout.split():
        r = adm('adduser', SECOND_USER, '-', input='someone\n',
                conf=SECOND_CONF)
    if r.returncode != 0:
        die('pymailadm (second instance): %s' % r.stderr.strip())
    r = adm('start', conf=SECOND_CONF)
    m = re.search(r'PID is (\d+)', r.stdout)
    if r.returncode != 0 or not m:
        die('the second pymaild did not start: %s %s'
            % (r.stdout.strip(), r.stderr.strip()))
    return int(m.group(1))


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except (OSError, IndexError):
        return False


def stop_second(pid):
    """pymailadm stop, then by its PID if it is still there."""
    adm('stop', conf=SECOND_CONF)
    for sig in (None, 15, 9):
        if sig is not None and alive(pid):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return


def send_out():
    """demo@demo.example -> someone@second.example through the demo's
    port (loopback may send out without logging in); the Message-ID."""
    import email.utils
    msgid = email.utils.make_msgid(domain=DOMAIN)
    msg = EmailMessage()
    msg['From'] = '%s@%s' % (USER, DOMAIN)
    msg['To'] = '%s@%s' % (SECOND_USER, SECOND_DOMAIN)
    msg['Subject'] = 'Signed by the pymaild demo'
    msg['Date'] = email.utils.formatdate()
    msg['Message-ID'] = msgid
    msg.set_content('This left demo.example with a DKIM signature.\n')
    with smtplib.SMTP('127.0.0.1', SMTP_PORT, timeout=30) as s:
        s.send_message(msg)
    return msgid


def wait_arrival(msgid, timeout=60):
    """The bytes of the message with msgid in someone's Maildir, or
    None.  Asks the demo to retry now and then: a first attempt made
    while something was still starting waits minutes otherwise."""
    pattern = os.path.join(SECOND, 'maildir', SECOND_USER, 'Maildir',
                           'new', '*')
    deadline = time.monotonic() + timeout
    next_flush = time.monotonic() + 5
    while time.monotonic() < deadline:
        for path in glob.glob(pattern):
            with open(path, 'rb') as f:
                data = f.read()
            if msgid.encode() in data:
                return data
        if time.monotonic() > next_flush:
            adm('flush')
            next_flush = time.monotonic() + 5
        time.sleep(0.1)
    return None


def dkimpy_verdict(data):
    """dkimpy's verification, its key looked up in the relay's DNS."""
    import dkim
    import dns.resolver

    def txt(name, timeout=5):
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = ['127.0.0.1']
        res.port = RESOLVER_PORT
        try:
            answer = res.resolve(name.decode(), 'TXT', lifetime=timeout)
        except Exception:
            return None
        return b''.join(answer[0].strings)
    data = data.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
    try:
        return bool(dkim.verify(data, dnsfunc=txt))
    except Exception as e:
        print('dkimpy: %s' % e)
        return False


def header_fields(data, name):
    head = data.replace(b'\r\n', b'\n').split(b'\n\n', 1)[0]
    head = head.decode('utf-8', 'replace')
    return [re.sub(r'\s+', ' ', v).strip() for v in re.findall(
        r'^%s:(.*?)\n(?![ \t])' % re.escape(name), head + '\n',
        re.M | re.S | re.I)]


def relay():
    if adm('status').returncode != 0:
        die('the demo is not running: start it first (make run)')
    from lib.dnsfixture import DNSServer
    dns = DNSServer(RESOLVER_PORT, records=demo_dns_records())
    pid = None
    try:
        try:
            dns.start()
        except AssertionError as e:
            die('no DNS server on 127.0.0.1:%d (%s); is the port taken?'
                % (RESOLVER_PORT, e))
        print('relay: DNS for %s and %s on 127.0.0.1:%d'
              % (DOMAIN, SECOND_DOMAIN, RESOLVER_PORT))
        pid = start_second()
        print('relay: second pymaild (PID %d) for %s on 127.0.0.1:%d, '
              'folder %s' % (pid, SECOND_DOMAIN, SECOND_SMTP_PORT,
                             shown(SECOND)))
        msgid = send_out()
        print('relay: sent %s@%s -> %s@%s, %s' % (
            USER, DOMAIN, SECOND_USER, SECOND_DOMAIN, msgid))
        data = wait_arrival(msgid)
        if data is None:
            die('it did not arrive within 60 s: see %s queue and %s'
                % (shown(PYMAILADM),
                   shown(os.path.join(SECOND, 'pymaild.log'))))
        for v in header_fields(data, 'DKIM-Signature'):
            print('DKIM-Signature: %s' % v[:120])
        for v in header_fields(data, 'Authentication-Results'):
            print('Authentication-Results: %s' % v)
        ok = dkimpy_verdict(data)
        print('dkimpy: %s' % ('signature verified' if ok else
                              'signature NOT verified'))
        return 0 if ok else 1
    finally:
        if pid:
            stop_second(pid)
        dns.cleanup()


def main():
    os.chdir(ROOT)
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'start'
    if cmd == 'send':
        return send()
    if cmd == 'fetch':
        return fetch()
    if cmd == 'relay':
        return relay()
    if cmd != 'start':
        die('usage: demo.py [start|send|fetch|relay]')
    setup()
    print(usage_text())
    sys.stdout.flush()
    os.execv(PYMAILD, [PYMAILD, '-d', '-f', CONF])


if __name__ == '__main__':
    sys.exit(main())
