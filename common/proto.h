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
	/* parent -> child: what is running for `status`; reply: u32 count */
	IMSG_STATS,
	IMSG_STATS_REPLY,

	/* smtpd/pop3d -> parent: u32 reqid, str user, str password,
	 * str client address */
	IMSG_AUTH,
	/* parent -> smtpd/pop3d: u32 reqid, u32 result (AUTH_*),
	 * u32 delay_ms */
	IMSG_AUTH_REPLY,
	/* smtpd -> parent: u32 reqid, str user, u64 size (0 = unknown) */
	IMSG_RCPT_CHECK,
	/* parent -> smtpd: u32 reqid, u32 result (RCPT_*) */
	IMSG_RCPT_REPLY,

	/* pymailadm <-> parent over the control socket */
	IMSG_CTL_STATUS,	/* reply: IMSG_CTL_OK with key=value text */
	IMSG_CTL_STOP,
	IMSG_CTL_RELOAD,
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

/* IMSG_RCPT_REPLY results */
#define RCPT_OK		0
#define RCPT_NOUSER	1
#define RCPT_DISABLED	2
#define RCPT_OVERQUOTA	3	/* 452 4.2.2 */
#define RCPT_TOOBIG	4	/* over maxmailsize: 552 5.3.4 */
#define RCPT_TEMPFAIL	5

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
