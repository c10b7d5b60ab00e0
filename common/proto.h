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
	PROC_COUNT
};

enum imsg_type {
	IMSG_NONE,

	/* parent -> child, at start: the config text in a memfd */
	IMSG_CONF,
	/* parent -> child: a listening socket (fd), payload: u32 kind */
	IMSG_LISTEN,
	/* child -> parent: privileges dropped, ready; payload: u32 role */
	IMSG_HELLO,
	/* parent -> child: the new config (memfd) after a good reload */
	IMSG_RELOAD,
	/* parent -> child: stop accepting, finish sessions, exit */
	IMSG_SHUTDOWN,
	/* parent -> queued: retry every deferred message now */
	IMSG_FLUSH,
	/* parent -> child: what is running for `status`; reply: u32 count */
	IMSG_STATS,
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
	 * pop3d <-> parent: the mailbox store's side of POP3 (issue 4).
	 * The exact payloads are documented in pymaild/mailbox.c.
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
	 *                str client address, str protocol, str session, u64 size
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
	 *                 str recipient + the message's fd (read-only)
	 *  DELIVER_REPLY  u32 req, u32 result (DELIVER_*), str reason
	 */
	IMSG_DELIVER,
	IMSG_DELIVER_REPLY,

	/*
	 * queued <-> mxcache <-> parent: MX resolution (issue 5).
	 *  MX_LOOKUP   queued->mxcache  u32 req, str domain
	 *  MX_REPLY    mxcache->queued  u32 req, u32 status (MX_*), str reason,
	 *              u32 n, then n x (u32 preference, str host, str address)
	 *  MX_LOAD     parent->mxcache  MAILDIR/mxservers as a memfd, at start
	 *  MX_SAVE     mxcache->parent  the whole cache text as a memfd
	 *  MX_REFRESH  parent->mxcache  look every cached domain up again
	 */
	IMSG_MX_LOOKUP,
	IMSG_MX_REPLY,
	IMSG_MX_LOAD,
	IMSG_MX_SAVE,
	IMSG_MX_REFRESH,
	IMSG_MX_REFRESH_DONE,

	/* pymailadm <-> parent over the control socket */
	IMSG_CTL_STATUS,	/* reply: IMSG_CTL_OK with key=value text */
	IMSG_CTL_STOP,
	IMSG_CTL_RELOAD,
	IMSG_CTL_FLUSH,
	IMSG_CTL_UPDATEMX,
	IMSG_CTL_OK,		/* payload: text for the user */
	IMSG_CTL_FAIL,		/* payload: one line, the reason */

	IMSG_TYPE_MAX
};

/* IMSG_LISTEN kinds */
#define LISTEN_SMTP	1
#define LISTEN_POP3	2

/* IMSG_AUTH_REPLY results */
#define AUTH_OK		0
#define AUTH_FAIL	1
#define AUTH_BLOCKED	2	/* too many failures from this address */
#define AUTH_TEMPFAIL	3

/* IMSG_POP3_LOGIN_REPLY results; payloads in pymaild/mailbox.c */
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

/* IMSG_MX_REPLY status */
#define MX_OK		0	/* hosts follow, best first */
#define MX_TEMPFAIL	1	/* SERVFAIL, timeout: defer */
#define MX_NXDOMAIN	2	/* no such domain: bounce */
#define MX_NULLMX	3	/* RFC 7505 "no mail here": bounce */
#define MX_NOHOSTS	4	/* names exist but have no address: bounce */
#define MX_MAX_HOSTS	32	/* addresses in one reply */

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
