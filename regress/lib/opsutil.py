"""opsutil: what the tests of the administrator's tools share (log
rotation, fail2ban): a daemon with a user, mail sent and fetched by the
standard library's clients, and where each process writes its log.

Standard library only; Debian's /usr/bin/python3.
"""

import os
import poplib
import pwd
import re
import smtplib

from lib import pmtest

ETC = os.path.join(pmtest.ROOT, 'etc')
USER = 'alice'
PASSWORD = 'secret'


def daemon_account():
    """(uid, gid, name, group name) the parent runs as."""
    pw = pwd.getpwnam(pmtest.DAEMON_USER if pmtest.IS_ROOT
                      else pmtest.current_user())
    import grp
    return pw.pw_uid, pw.pw_gid, pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name


def send(inst, tag, host='127.0.0.1'):
    """One SMTP session that queues a message from <TAG@client.example>
    to alice."""
    with smtplib.SMTP(host, inst.smtp_port, timeout=30) as s:
        s.sendmail('%s@client.example' % tag, ['%s@test.example' % USER],
                   'Subject: %s\r\n\r\n%s\r\n' % (tag, tag))


def pop3_login(inst, password=PASSWORD, host='127.0.0.1'):
    """One POP3 session: USER/PASS then QUIT; True when it logged in."""
    p = poplib.POP3(host, inst.pop3_port, timeout=30)
    try:
        p.user(USER)
        p.pass_(password)
        ok = True
    except poplib.error_proto:
        ok = False
    try:
        p.quit()
    except (poplib.error_proto, OSError):
        pass
    return ok


def daemon_pids(inst):
    """{name: pid} of the parent and every helper."""
    roles = inst.wait_roles()
    out = dict(roles)
    out['pymaild'] = inst.pid()
    return out


def stderr_inode(pid):
    """(device, inode) of what the process writes its log to."""
    st = os.stat('/proc/%d/fd/2' % pid)
    return st.st_dev, st.st_ino


def file_id(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def read(path):
    if path.endswith('.gz'):
        import gzip
        with gzip.open(path, 'rt', errors='replace') as f:
            return f.read()
    with open(path, errors='replace') as f:
        return f.read()


def queued_ids(text, tag):
    """Queue ids smtpd logged for the message from <TAG@client.example>."""
    return re.findall(r'smtp-in session=\S+ client=\S+ from=<%s@client\.'
                      r'example> .*result=queued id=([0-9a-f]+)'
                      % re.escape(tag), text)
