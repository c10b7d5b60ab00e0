#!/usr/bin/python3
"""A stand-in for smtpd that sends queued well-framed spool requests it
cannot honour, the way a buggy or compromised smtpd could
(test_smtp_addr.QueuedRefusals puts it in place of smtpd).

The parent starts it like smtpd: its channel on fd 3, queued's on fd 4.
It says hello, then runs the steps below on queued, one after the other,
and writes "STEP RESULT" lines (RESULT: the SPOOL_* of the commit reply,
or "closed" when queued dropped the channel) into $FAKE_SMTPD_OUT, then
"done".  Message type numbers are read from common/proto.h
($FAKE_SMTPD_PROTO), so they follow the header.
"""

import os
import re
import select
import socket
import struct
import sys
import time

HDR = struct.Struct('=IHHII')
HASFD = 1
ROLE_SMTPD = 1
LIMIT = 20.0            # seconds for everything


def imsg_types(path):
    text = open(path).read()
    body = re.search(r'enum imsg_type \{(.*?)\};', text, re.S).group(1)
    body = re.sub(r'/\*.*?\*/', '', body, flags=re.S)
    names = [n.strip() for n in body.split(',') if n.strip()]
    return {n: i for i, n in enumerate(names)}


T = imsg_types(os.environ['FAKE_SMTPD_PROTO'])
OUT = open(os.environ['FAKE_SMTPD_OUT'], 'a', buffering=1)


class Chan:
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.buf = b''
        self.fds = []
        self.closed = False

    def send(self, mtype, payload=b'', fd=None, peerid=0):
        data = HDR.pack(mtype, HDR.size + len(payload),
                        HASFD if fd is not None else 0, peerid,
                        os.getpid()) + payload
        try:
            if fd is None:
                self.sock.sendall(data)
            else:
                socket.send_fds(self.sock, [data], [fd])
        except OSError:
            self.closed = True

    def fill(self):
        data, fds, _, _ = socket.recv_fds(self.sock, 65536, 8)
        if not data:
            self.closed = True
        self.buf += data
        self.fds.extend(fds)

    def get(self):
        """One message (type, peerid, payload, fd) or None."""
        if len(self.buf) < HDR.size:
            return None
        mtype, mlen, flags, peerid, _ = HDR.unpack_from(self.buf)
        if len(self.buf) < mlen:
            return None
        payload, self.buf = self.buf[HDR.size:mlen], self.buf[mlen:]
        fd = self.fds.pop(0) if flags & HASFD else None
        return mtype, peerid, payload, fd


def u32(v):
    return struct.pack('=I', v)


def s(v):
    b = v.encode('utf-8') if isinstance(v, str) else v
    return u32(len(b)) + b


def read_str(p, off):
    n, = struct.unpack_from('=I', p, off)
    return p[off + 4:off + 4 + n].decode('utf-8', 'replace'), off + 4 + n


parent, queued = Chan(3), Chan(4)
deadline = time.monotonic() + LIMIT


def serve_parent(msg):
    mtype, peerid, payload, fd = msg
    if fd is not None:
        os.close(fd)
    if mtype == T['IMSG_STATS']:
        parent.send(T['IMSG_STATS_REPLY'], u32(0), peerid=peerid)
    elif mtype == T['IMSG_SHUTDOWN']:
        sys.exit(0)


def wait_queued(want):
    """The next message of type `want` from queued; None if it closed."""
    while time.monotonic() < deadline:
        for ch in (parent, queued):
            while True:
                m = ch.get()
                if m is None:
                    break
                if ch is parent:
                    serve_parent(m)
                elif m[0] == want:
                    return m
                elif m[3] is not None:
                    os.close(m[3])
        if queued.closed:
            return None
        r, _, _ = select.select([parent.sock, queued.sock], [], [], 0.5)
        for sock in r:
            (parent if sock is parent.sock else queued).fill()
        if parent.closed:
            sys.exit(0)
    return None


def create(sess):
    queued.send(T['IMSG_SPOOL_CREATE'], u32(sess))
    m = wait_queued(T['IMSG_SPOOL_CREATE_REPLY'])
    if m is None:
        return None
    _, _, payload, fd = m
    qid, _ = read_str(payload, 4)
    os.write(fd, b'Subject: from the fake smtpd\r\n\r\nbody\r\n')
    os.close(fd)
    return qid


def commit(sess, qid, sender):
    queued.send(T['IMSG_SPOOL_COMMIT'], u32(sess) + s(qid) + s(sender) +
                s('fake.example') + s('127.0.0.1') + s('ESMTP') +
                s('0123456789abcdef') + struct.pack('=Q', 40) + s(''))
    m = wait_queued(T['IMSG_SPOOL_COMMIT_REPLY'])
    if m is None:
        return 'closed'
    _, _, payload, _ = m
    _, off = read_str(payload, 4)
    return str(struct.unpack_from('=I', payload, off)[0])


def rcpt(sess, qid, addr, user=''):
    queued.send(T['IMSG_SPOOL_RCPT'], u32(sess) + s(qid) + s(addr) +
                s(user) + s(''))


# (step, recipient, sender): a bad recipient or sender each.
STEPS = [
    ('unterminated-quote', '"a b@other.example', 'c@x.example'),
    ('needless-quotes', '"bob"@other.example', 'c@x.example'),
    ('control-char', 'a\x01b@other.example', 'c@x.example'),
    ('bad-sender', 'bob@other.example', 'not an address'),
    ('space-quoted', '"a b"@other.example', '"c d"@x.example'),
]


def main():
    m = None
    while m is None:
        parent.fill()
        m = parent.get()
    if m[3] is not None:
        os.close(m[3])                  # the configuration
    parent.send(T['IMSG_HELLO'], u32(ROLE_SMTPD))
    sess = 0
    for step, addr, sender in STEPS:
        sess += 1
        qid = create(sess)
        if qid is None:
            OUT.write('%s closed\n' % step)
            break
        rcpt(sess, qid, addr)
        OUT.write('%s %s\n' % (step, commit(sess, qid, sender)))
    else:
        OUT.write('unknown-id %s\n' % commit(99, '0000000000000000',
                                              'c@x.example'))
    OUT.write('done\n')
    while wait_queued(-1) is not None:
        pass
    while True:
        parent.fill()
        if parent.closed:
            return
        while True:
            m = parent.get()
            if m is None:
                break
            serve_parent(m)


main()
