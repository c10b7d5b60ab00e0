#!/usr/bin/python3
"""The demo behind `make run`: a pymaild in run/ on 127.0.0.1:2525 (SMTP)
and 127.0.0.1:1110 (POP3), with one user demo/demo, in the foreground.

    /usr/bin/python3 regress/lib/demo.py          set up run/ and start
    /usr/bin/python3 regress/lib/demo.py send     send a test message
    /usr/bin/python3 regress/lib/demo.py fetch    list and print the mailbox
"""

import os
import poplib
import pwd
import smtplib
import subprocess
import sys
from email.message import EmailMessage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN = os.path.join(ROOT, 'run')
CONF = os.path.join(RUN, 'pymaild.conf')
PYMAILD = os.path.join(ROOT, 'pymaild', 'pymaild')
PYMAILADM = os.path.join(ROOT, 'admin', 'pymailadm')
SMTP_PORT, POP3_PORT = 2525, 1110
SUBMISSION_PORT, SMTPS_PORT, POP3S_PORT = 2587, 2465, 1995
TLS_DIR = os.path.join(RUN, 'tls')
DOMAIN = 'demo.example'
USER, PASSWORD = 'demo', 'demo'

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
# Outbound mail is not part of the demo: DNS goes to a loopback port
# where nothing answers, so mail for other domains just stays queued and
# nothing leaves this machine.
resolver       = "127.0.0.1:5353";
# A self-signed certificate made at the first run (run/tls/).
tls            = {{ cert = "tls/cert.pem"; key = "tls/key.pem"; }};
submissionport = {submission};
smtpsport      = {smtps};
pop3sport      = {pop3s};
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
          % os.path.relpath(TLS_DIR))


def die(msg):
    print('demo: ' + msg, file=sys.stderr)
    sys.exit(1)


def adm(*args, input=None):
    return subprocess.run([PYMAILADM, '-f', CONF] + list(args), input=input,
                          stdin=None if input is not None
                          else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def setup():
    for prog in (PYMAILD, PYMAILADM):
        if not os.access(prog, os.X_OK):
            die('%s is not built: run make' % prog)
    os.makedirs(RUN, exist_ok=True)
    os.chmod(RUN, 0o755)        # the daemon's accounts must traverse it
    if os.geteuid() == 0:
        user, quser, ouser = '_pymaild', '_pymailq', '_pymailout'
    else:
        user = quser = ouser = pwd.getpwuid(os.geteuid()).pw_name
    make_certificate()
    text = CONFIG.format(domain=DOMAIN, smtp=SMTP_PORT, pop3=POP3_PORT,
                         user=user, quser=quser, ouser=ouser,
                         submission=SUBMISSION_PORT, smtps=SMTPS_PORT,
                         pop3s=POP3S_PORT)
    with open(CONF + '.tmp', 'w') as f:
        f.write(text)
    os.chmod(CONF + '.tmp', 0o644)
    os.rename(CONF + '.tmp', CONF)

    r = adm('status')
    if r.returncode == 0:
        die('a demo pymaild is already running (%s); stop it with:\n'
            '  %s -f %s stop' % (r.stdout.strip().replace('\n', ', '),
                                 os.path.relpath(PYMAILADM),
                                 os.path.relpath(CONF)))
    r = adm('users')
    if r.returncode != 0:
        die('pymailadm users: %s' % (r.stderr.strip() or r.returncode))
    if USER not in r.stdout.split():
        r = adm('adduser', USER, '-', input=PASSWORD + '\n')
        if r.returncode != 0:
            die('pymailadm adduser %s: %s' % (USER, r.stderr.strip()))
        print('demo: added user %s (password %s)' % (USER, PASSWORD))


def usage_text():
    me = os.path.relpath(os.path.abspath(__file__))
    adm_cmd = '%s -f %s' % (os.path.relpath(PYMAILADM),
                            os.path.relpath(CONF))
    return '''\
pymaild demo: SMTP 127.0.0.1:{smtp}, POP3 127.0.0.1:{pop3}, folder run/
  with STARTTLS and STLS there, submission {submission}, smtps {smtps},
  pop3s {pop3s} (self-signed certificate: run/tls/cert.pem)
  user {user}@{domain}, password {pw}

  send a message:   /usr/bin/python3 {me} send
     (or: swaks --server 127.0.0.1:{smtp} --to {user}@{domain})
  read the mailbox: /usr/bin/python3 {me} fetch
     (or any POP3 client: USER {user} / PASS {pw} on port {pop3})
  on disk:          run/maildir/{user}/Maildir/new/
  admin:            {adm} getinfo {user}
  stop:             Ctrl-C here, or {adm} stop
  TLS:              openssl s_client -starttls smtp -connect 127.0.0.1:{smtp}
'''.format(smtp=SMTP_PORT, pop3=POP3_PORT, user=USER, domain=DOMAIN,
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


def main():
    os.chdir(ROOT)
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'start'
    if cmd == 'send':
        return send()
    if cmd == 'fetch':
        return fetch()
    if cmd != 'start':
        die('usage: demo.py [start|send|fetch]')
    setup()
    print(usage_text())
    sys.stdout.flush()
    os.execv(PYMAILD, [PYMAILD, '-d', '-f', CONF])


if __name__ == '__main__':
    main()
