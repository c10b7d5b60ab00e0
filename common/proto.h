/*
 * Message types between the processes and the table of who may talk to
 * whom. One header for all, so a type means the same thing everywhere.
 */
#ifndef PYMAILD_PROTO_H
#define PYMAILD_PROTO_H

#include <stdint.h>

enum proc_role {
	PROC_PARENT,
	PROC_SMTPD,
	PROC_POP3D,
	PROC_QUEUED,
	PROC_MXCACHE,
	PROC_OUTBOUND,
	PROC_COUNT
};

/*
 * Every payload below: integers in host order, strings as mb_str (a u32
 * length, then the bytes, no NUL). "+ fd" is a descriptor passed with the
 * message; a type without it never carries one. "peerid" is the header
 * field, echoed from request to reply. Which helper may send which type
 * to the parent is pymaild/requests.c's table.
 */
enum imsg_type {
	IMSG_NONE,

	/* parent -> child, at start: str config path, u32 flags (PROCF_*)
	 * + fd: the config text in a memfd */
	IMSG_CONF,
	/* parent -> smtpd/pop3d: u32 kind (LISTEN_*) + fd: a listening
	 * socket */
	IMSG_LISTEN,
	/* child -> parent: privileges dropped, ready; u32 role (its own
	 * proc_role; another one, or a second HELLO, is hostile) */
	IMSG_HELLO,
	/* parent -> child: as IMSG_CONF, the new config after a good reload */
	IMSG_RELOAD,
	/* parent -> child: stop accepting, finish sessions, exit; empty */
	IMSG_SHUTDOWN,
	/* parent -> queued: retry every deferred message now; empty */
	IMSG_FLUSH,
	/* parent -> smtpd/pop3d/queued: what is running, for `status`;
	 * empty, peerid: the control connection's id */
	IMSG_STATS,
	/* child -> parent: u32 count (sessions; queued: messages queued),
	 * peerid echoed from IMSG_STATS */
	IMSG_STATS_REPLY,

	/* smtpd/pop3d -> parent: u32 reqid, str user, str password,
	 * str client address */
	IMSG_AUTH,
	/* parent -> smtpd/pop3d: u32 reqid, u32 result (AUTH_*),
	 * u32 delay_ms */
	IMSG_AUTH_REPLY,
	/* smtpd -> parent: u32 reqid, str user, u64 size (0 = unknown),
	 * u32 tag (echoed back) */
	IMSG_RCPT_CHECK,
	/* parent -> smtpd: u32 reqid, u32 result (RCPT_*), u32 tag */
	IMSG_RCPT_REPLY,

	/*
	 * pop3d <-> parent: the mailbox store's side of POP3
	 * (pymaild/mailbox.c). sid: pop3d's session id, echoed back.
	 *  POP3_LOGIN         pop3d -> parent
	 *	u32 sid, str user, str password, str client address
	 *  POP3_LOGIN_REPLY   parent -> pop3d
	 *	u32 sid, u32 result (POP3_LOGIN_*), u32 delay_ms, u32 count
	 *	(delay_ms: how long pop3d waits before telling a failure;
	 *	count: messages in the snapshot when the result is OK)
	 *  POP3_LISTING       parent -> pop3d, after an OK reply, until count
	 *	entries were sent, each message at most 16 KiB:
	 *	u32 sid, u32 n, n times (u64 octets RETR sends, str uid)
	 *  POP3_OPEN          pop3d -> parent
	 *	u32 sid, then one or more u32 indexes (0-based); each gets its
	 *	own reply. Opening changes nothing, so pop3d may ask ahead of
	 *	the client's commands
	 *  POP3_OPEN_REPLY    parent -> pop3d
	 *	u32 sid, u32 index, u32 result (0: the descriptor comes with
	 *	it), u64 file size (so pop3d need not read to learn the end)
	 *	+ fd (read-only) when the result is 0
	 *  POP3_UPDATE        pop3d -> parent
	 *	u32 sid, u32 more, then u32 entries to the end: an index to
	 *	delete, or index | POP3_UPDATE_SEEN for a message RETR sent in
	 *	full. Parts with more = 1 are remembered; more = 0 (QUIT)
	 *	applies them all, answers and unlocks; RELEASE applies the
	 *	seen ones only
	 *  POP3_UPDATE_REPLY  parent -> pop3d
	 *	u32 sid, u32 result (0 ok, 1 some deletions failed), u32 left
	 *  POP3_RELEASE       pop3d -> parent
	 *	u32 sid: the session ended without QUIT; nothing is deleted
	 */
	IMSG_POP3_LOGIN,	/* check password, lock, list the mailbox */
	IMSG_POP3_LOGIN_REPLY,
	IMSG_POP3_LISTING,	/* (uid, size) entries of the locked mailbox */
	IMSG_POP3_OPEN,		/* message n -> read-only descriptor */
	IMSG_POP3_OPEN_REPLY,
	IMSG_POP3_UPDATE,	/* QUIT in TRANSACTION: apply the deletions */
	IMSG_POP3_UPDATE_REPLY,
	IMSG_POP3_RELEASE,	/* session over without UPDATE: unlock */

	/*
	 * smtpd <-> queued: the spool. Strings are mb_str, ids 16 hex.
	 *  CREATE        u32 sess
	 *  CREATE_REPLY  u32 sess, str id ("" on failure) + the file's fd
	 *  RCPT          u32 sess, str id, str address, str local user ("" for
	 *                a remote recipient), str failure ("" = deliver it;
	 *                else it failed at end of DATA and gets a DSN)
	 *  COMMIT        u32 sess, str id, str sender ("" = <>), str helo,
	 *                str client address, str protocol, str session, u64
	 *                size, str Authentication-Results field ("" or one
	 *                that authres_field_ok takes, final CRLF included)
	 *  COMMIT_REPLY  u32 sess, str id, u32 result (SPOOL_*)
	 *  ABORT         u32 sess, str id
	 */
	IMSG_SPOOL_CREATE,
	IMSG_SPOOL_CREATE_REPLY,
	IMSG_SPOOL_RCPT,
	IMSG_SPOOL_COMMIT,
	IMSG_SPOOL_COMMIT_REPLY,
	IMSG_SPOOL_ABORT,
	/*
	 * queued <-> parent: local delivery.
	 *  DELIVER        u32 req, str queue id, str user, str sender,
	 *                 str recipient, str Authentication-Results field
	 *                 ("", or without its final CRLF) + the message's fd
	 *                 (read-only)
	 *  DELIVER_REPLY  u32 req, u32 result (DELIVER_*), str reason
	 */
	IMSG_DELIVER,
	IMSG_DELIVER_REPLY,

	/*
	 * outbound <-> mxcache <-> parent: MX resolution.
	 *  MX_LOOKUP   outbound->mxcache u32 req, str domain
	 *  MX_REPLY    mxcache->outbound u32 req, u32 status (MX_*), str reason,
	 *              u32 n, then n x (u32 preference, str host, str address)
	 *  MX_LOAD     parent->mxcache  empty + fd: MAILDIR/mxservers as a
	 *              memfd, at start
	 *  MX_SAVE     mxcache->parent  empty + fd: the whole cache text as a
	 *              memfd (anything but a regular file is hostile)
	 *  MX_REFRESH  parent->mxcache  empty, peerid: the control
	 *              connection's id; look every cached domain up again
	 *  MX_REFRESH_DONE mxcache->parent  u32 domains, u32 failed (<=
	 *              domains), str reason of a failure; peerid echoed
	 */
	IMSG_MX_LOOKUP,
	IMSG_MX_REPLY,
	IMSG_MX_LOAD,
	IMSG_MX_SAVE,
	IMSG_MX_REFRESH,
	IMSG_MX_REFRESH_DONE,

	/*
	 * pymailadm <-> parent over the control socket. The requests are
	 * empty (anything else is refused); a reply's payload is text, its
	 * bytes without a NUL.
	 */
	IMSG_CTL_STATUS,	/* reply: IMSG_CTL_OK with key=value text */
	IMSG_CTL_STOP,
	IMSG_CTL_RELOAD,
	IMSG_CTL_FLUSH,
	IMSG_CTL_UPDATEMX,
	IMSG_CTL_OK,		/* payload: text for the user */
	IMSG_CTL_FAIL,		/* payload: one line, the reason */

	/*
	 * The log file after a rotation (reload, SIGHUP).
	 *  LOG_REOPEN    parent -> every helper: u32 generation (1, 2, ...)
	 *                + fd: the new log file, write-only, O_APPEND. The
	 *                helper makes it its standard error
	 *  LOG_REOPENED  helper -> parent: u32 generation, echoed once the
	 *                helper writes only to the new file. One the parent
	 *                never sent is hostile
	 */
	IMSG_LOG_REOPEN,
	IMSG_LOG_REOPENED,

	/*
	 * TLS. The private keys stay with the parent; smtpd and pop3d hold
	 * the certificate chains and ask the parent for each signature a
	 * handshake needs, on a socket of their own (common/tlsremote.c,
	 * pymaild/tlskeys.c), one request at a time.
	 *  TLS_SIGNER      parent -> smtpd/pop3d, once, before the first
	 *                  TLS_CERT: empty + fd: the signing socket
	 *  TLS_CERT        parent -> smtpd/pop3d, at start and after a
	 *                  reload: u32 generation, u32 index, u32 count (pairs
	 *                  of this generation, 1..TLS_PAIRS_MAX), u32 key type
	 *                  (TLS_KEY_*), str the certificate chain (PEM, the
	 *                  server's first; certificates only). The last index
	 *                  puts the generation in use.
	 *  TLS_SIGN        smtpd/pop3d -> parent, on the signing socket only:
	 *                  u32 reqid, u32 generation, u32 index, u32 alg
	 *                  (TLS_SIGN_*), u32 md (digest NID; 0 for a PSS
	 *                  block), u32 len, len octets (a digest, or the PSS-
	 *                  encoded block for the raw RSA operation)
	 *  TLS_SIGN_REPLY  parent -> smtpd/pop3d, on that socket: u32 reqid,
	 *                  u32 result (0 ok), u32 len, len octets (signature)
	 */
	IMSG_TLS_SIGNER,
	IMSG_TLS_CERT,
	IMSG_TLS_SIGN,
	IMSG_TLS_SIGN_REPLY,

	/*
	 * queued <-> outbound: relaying one message to one domain (an
	 * "attempt"). queued keeps the schedule and the spool; outbound
	 * gets the message as a read-only descriptor and gives back one
	 * result per recipient (common/outmsg.h reads and writes these).
	 *  OUT_ATTEMPT  queued->outbound  u32 attempt, str queue id, str
	 *               sender ("" = <>), str domain, u64 size (for SIZE=),
	 *               then the recipients to the end of the payload (str
	 *               address, 1..ENV_MAX_RCPTS of them; index 0.. in this
	 *               order) + fd: the message, its spool file O_RDONLY or
	 *               a copy in a memfd sealed against writes (a small one:
	 *               the spool reuses those). One message an attempt: the
	 *               recipients that do not fit go in another attempt.
	 *  OUT_RESULT   outbound->queued  u32 attempt, u32 index (< nrcpts,
	 *               once each), u32 result (OUT_*), u32 last (1 on the
	 *               result that completes the attempt, and only there:
	 *               it ends it), str text (printable)
	 */
	IMSG_OUT_ATTEMPT,
	IMSG_OUT_RESULT,

	/*
	 * outbound <-> mxcache: an MX host's TLSA records (DANE, RFC 7672),
	 * asked before each connection to an MX, never cached.
	 *  TLSA_LOOKUP  outbound->mxcache  u32 req, u32 port, str host
	 *  TLSA_REPLY   mxcache->outbound  u32 req, u32 status (TLSA_*),
	 *               u32 authentic (0/1: the resolver's AD bit), str
	 *               reason (printable), u32 n (<= TLSA_RECORDS_MAX),
	 *               then n x (u32 usage, u32 selector, u32 matching
	 *               type, each <= 255, u32 len (1..TLSA_DATA_MAX), len
	 *               octets); common/tlsamsg.h reads and builds it
	 */
	IMSG_TLSA_LOOKUP,
	IMSG_TLSA_REPLY,

	/*
	 * Queue operations: pymailadm remove, hold, release, and the sync
	 * that pymailadm queue and show send first (common/qop.h reads and
	 * writes the payloads).
	 *  CTL_QUEUE       pymailadm -> parent, on the control socket: u32 op
	 *                  (QOP_*), u32 match (QMATCH_*; QMATCH_NONE exactly
	 *                  for QOP_SYNC, and nothing more), then for QMATCH_ID
	 *                  1..QOP_IDS_MAX str queue ids to the end, else one
	 *                  str pattern (fnmatch, case-insensitive). Answered
	 *                  CTL_OK or CTL_FAIL with QUEUE_OP_REPLY's text
	 *  QUEUE_OP        parent -> queued: u32 uid (the control socket's
	 *                  peer, for the log), then as CTL_QUEUE; peerid: the
	 *                  control connection's id
	 *  QUEUE_OP_REPLY  queued -> parent: u32 ok (0: an id unknown, or
	 *                  nothing matched), str text (lines for the user,
	 *                  printable); peerid echoed
	 *  OUT_CANCEL      queued -> outbound: u32 attempt: its message was
	 *                  removed. outbound ends the session without the
	 *                  final dot (nothing more reaches the server) and
	 *                  answers what is not settled yet as OUT_DEFERRED;
	 *                  an attempt already over is no error (the results
	 *                  cross)
	 */
	IMSG_CTL_QUEUE,
	IMSG_QUEUE_OP,
	IMSG_QUEUE_OP_REPLY,
	IMSG_OUT_CANCEL,

	/*
	 * pymailadm stats. Figures travel as text, "name value" or
	 * "name{label=\"v\"} value" lines: names of [a-z0-9_] (those ending
	 * in _total count since start; NAME_bucket{le=...}, NAME_sum and
	 * NAME_count make a histogram; the others are gauges), one label of
	 * [a-z_] with a value of [a-z0-9_.+-] or "+Inf", values in decimal
	 * (digits, or digits, a point, at most 6 digits), a family's lines
	 * one after the other, at most METRICS_TEXT_MAX octets a helper.
	 * smtpd's names begin "smtp_", pop3d's "pop3_", queued's neither.
	 *  CTL_METRICS     pymailadm -> parent, empty; answered CTL_OK with
	 *                  the parent's lines then smtpd's, pop3d's and
	 *                  queued's, or CTL_FAIL
	 *  METRICS         parent -> smtpd, pop3d, queued, empty; peerid:
	 *                  the control connection's id
	 *  METRICS_REPLY   smtpd, pop3d, queued -> parent: str the lines;
	 *                  peerid echoed
	 */
	IMSG_CTL_METRICS,
	IMSG_METRICS,
	IMSG_METRICS_REPLY,

	/*
	 * outbound <-> parent: the smarthost's credentials (smtprelayauth),
	 * asked for each session to the smarthost once TLS is up (verified),
	 * or in plaintext to a loopback address under smtprelaytls "none";
	 * only the parent reads the file. outbound wipes them after use.
	 *  RELAY_CRED        outbound->parent  u32 req
	 *  RELAY_CRED_REPLY  parent->outbound  u32 req, u32 status
	 *                    (RELAY_CRED_*), str user, str password (both ""
	 *                    unless RELAY_CRED_OK; at most RELAY_CRED_MAX
	 *                    octets, no control character), str reason
	 *                    (printable, "" when OK)
	 */
	IMSG_RELAY_CRED,
	IMSG_RELAY_CRED_REPLY,

	/*
	 * parent -> smtpd/pop3d: the session ticket keys (RFC 5077), made
	 * by the parent at start, every TLS_TICKET_ROTATE seconds and at a
	 * reload, so that a ticket outlives a reload but not two rotations.
	 *  TLS_TICKET_KEYS  u32 n (1..TLS_TICKET_KEYS_MAX), then n x (16
	 *                   octets name, 32 AES-256 key, 32 HMAC-SHA256 key);
	 *                   the first makes new tickets, each opens them
	 */
	IMSG_TLS_TICKET_KEYS,

	/*
	 * smtpd <-> mxcache: one DNS question of a helper without a
	 * resolver (DNS blocklists now; SPF, DKIM keys, DMARC later),
	 * answered from mxcache's cache or the resolver; common/dnsmsg.h
	 * reads and builds both.
	 *  DNS_QUERY  smtpd->mxcache  u32 req, u32 tag (both echoed), u32
	 *             qtype (DNS_T_A, _AAAA, _TXT, _PTR), str qname (a
	 *             domain name as mx_domain_normalize leaves it: lower
	 *             case, no final dot, at most 253 octets). Anything else
	 *             closes the channel. mxcache answers every query once,
	 *             DNS_TEMPFAIL at once when the asker has too many under
	 *             way, else within the resolver's timeout
	 *  DNS_REPLY  mxcache->smtpd  u32 req, u32 tag, u32 qtype, u32
	 *             status (DNS_*), u32 ttl (seconds left, clamped to
	 *             [60, 86400]; negative answers 300; 0 on a failure),
	 *             u32 n (1..DNS_RECORDS_MAX when DNS_OK, else 0), then
	 *             n x (u32 len <= DNS_RECORD_MAX, len octets): addresses
	 *             and names as text, a TXT record's strings joined; all
	 *             records together at most DNS_DATA_MAX octets
	 */
	IMSG_DNS_QUERY,
	IMSG_DNS_REPLY,

	/*
	 * parent -> queued: the DKIM signing keys, read by the parent only,
	 * held by queued only (it faces no network), at start (queued's
	 * HELLO) and after each good reload. A generation is count messages
	 * (index 0..count-1); the last one puts it in use, replacing the
	 * keys before. count 0: no keys, one message with nothing more.
	 *  DKIM_KEY  u32 generation, u32 index, u32 count (0..DKIM_KEYS_MAX),
	 *            then unless count is 0: str domain, str selector, u32 alg
	 *            (DKIM_ALG_*), u32 len (1..DKIM_KEY_DER_MAX), len octets:
	 *            the private key, DER
	 */
	IMSG_DKIM_KEY,

	/*
	 * queued -> parent: a message with local deliveries under way was
	 * removed (pymailadm remove). Each DELIVER of that queue id still
	 * gets its one DELIVER_REPLY: DELIVER_CANCELLED when the message
	 * never reached new/ (a copy in tmp/ is unlinked), else the result
	 * it had. An id with nothing under way is no error (the reply and
	 * the cancel cross).
	 *  DELIVER_CANCEL  str queue id (QUEUE_ID_LEN hex digits)
	 */
	IMSG_DELIVER_CANCEL,

	IMSG_TYPE_MAX
};

/* TLS_CERT key types, TLS_SIGN algorithms */
#define TLS_KEY_RSA		1
#define TLS_KEY_EC		2
#define TLS_SIGN_RSA_PKCS1	1	/* a digest: PKCS#1 v1.5 (TLS 1.2) */
#define TLS_SIGN_RSA_PSS	2	/* a PSS-encoded block, raw RSA */
#define TLS_SIGN_ECDSA		3	/* a digest */
#define TLS_PAIRS_MAX		2
#define TLS_CHAIN_MAX		12000	/* PEM octets of one chain */
#define TLS_SIGN_DATA_MAX	1024	/* RSA 8192 bits */
#define TLS_TICKET_KEYS_MAX	2	/* the current one and the one before */
#define TLS_TICKET_KEY_LEN	80	/* name 16, AES key 32, HMAC key 32 */
#define TLS_TICKET_ROTATE	3600	/* seconds */

/* IMSG_LISTEN kinds */
#define LISTEN_SMTP	1
#define LISTEN_POP3	2
#define LISTEN_SUBMISSION 3	/* SMTP: STARTTLS, AUTH before MAIL */
#define LISTEN_SMTPS	4	/* SMTP in implicit TLS, AUTH before MAIL */
#define LISTEN_POP3S	5	/* POP3 in implicit TLS */

/* IMSG_AUTH_REPLY results */
#define AUTH_OK		0
#define AUTH_FAIL	1
#define AUTH_BLOCKED	2	/* too many failures from this address */
#define AUTH_TEMPFAIL	3

/* IMSG_POP3_LOGIN_REPLY results */
#define POP3_LOGIN_OK		0
#define POP3_LOGIN_FAIL		1	/* -ERR [AUTH], after delay_ms */
#define POP3_LOGIN_BLOCKED	2	/* too many failures: [SYS/TEMP] */
#define POP3_LOGIN_INUSE	3	/* -ERR [IN-USE] */
#define POP3_LOGIN_TEMPFAIL	4	/* -ERR [SYS/TEMP] */
/* IMSG_POP3_UPDATE entry: mark this index seen (else: delete it) */
#define POP3_UPDATE_SEEN	0x80000000u

/* IMSG_RCPT_REPLY results */
#define RCPT_OK		0
#define RCPT_NOUSER	1
#define RCPT_DISABLED	2
#define RCPT_OVERQUOTA	3	/* 452 4.2.2 */
#define RCPT_TOOBIG	4	/* over maxmailsize: 552 5.3.4 */
#define RCPT_TEMPFAIL	5

/* IMSG_SPOOL_COMMIT_REPLY results */
#define SPOOL_OK	0
#define SPOOL_TEMPFAIL	1	/* 451 4.3.0 */
#define SPOOL_NOSPACE	2	/* 452 4.3.1 */
#define SPOOL_REFUSED	3	/* a request it cannot honour: 554 5.3.0 */

/* IMSG_DELIVER_REPLY results */
#define DELIVER_OK	0
#define DELIVER_TEMP	1
#define DELIVER_PERM	2
#define DELIVER_CANCELLED 3	/* DELIVER_CANCEL came first: not delivered */

/* IMSG_MX_REPLY status */
#define MX_OK		0	/* hosts follow, best first */
#define MX_TEMPFAIL	1	/* SERVFAIL, timeout: defer */
#define MX_NXDOMAIN	2	/* no such domain: bounce */
#define MX_NULLMX	3	/* RFC 7505 "no mail here": bounce */
#define MX_NOHOSTS	4	/* names exist but have no address: bounce */
#define MX_MAX_HOSTS	32	/* addresses in one reply */

/* IMSG_OUT_RESULT results */
#define OUT_DELIVERED	0	/* 2xx after the final dot */
#define OUT_DEFERRED	1	/* 4xx, or no host settled it: later */
#define OUT_FAILED	2	/* 5xx: bounce */
/* Attempts under way at once, and for one domain (outbound refuses more) */
#define OUT_ATTEMPTS_MAX	64
#define OUT_PER_DOMAIN_MAX	4

#define METRICS_TEXT_MAX	4096
/* IMSG_RELAY_CRED_REPLY status */
#define RELAY_CRED_OK		0
#define RELAY_CRED_NONE		1	/* no smtprelayauth: no AUTH */
#define RELAY_CRED_FAIL		2	/* the file went bad: defer */
#define RELAY_CRED_MAX		255	/* octets of the user, the password */

/* IMSG_DKIM_KEY: octets of one key in DER (RSA 4096 bits is ~2.4 KiB) */
#define DKIM_KEY_DER_MAX	4096

/* Queue ids: 16 hex digits. */
#define QUEUE_ID_LEN	16

/* Fixed descriptor of the channel to the parent in every child. */
#define PROC_PARENT_FD	3

extern const char *const proc_names[PROC_COUNT];

/*
 * Who may talk to whom besides the parent: each pair gets its own
 * socketpair, made by the parent at start. In a child the channels sit on
 * consecutive descriptors after PROC_PARENT_FD, in the order of this table.
 */
int	proc_may_talk(enum proc_role a, enum proc_role b);
/* The descriptor on which `self` finds its channel to `peer`, or -1. */
int	proc_peer_fd(enum proc_role self, enum proc_role peer);

#endif
