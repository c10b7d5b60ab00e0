/*
 * queued: the durable queue (DESIGN.md B2), chrooted in SPOOLDIR.
 *
 * Layout, relative to the chroot:
 *   incoming/ID        a committed message's data, queued's copy of the
 *                      memfd smtpd wrote it into (spool.c)
 *   incoming/ID.env    its envelope, before the commit renames
 *   msg/ID             committed message data (CRLF lines, dot-unstuffed)
 *   env/ID             committed envelope: its presence is the commit
 *   corrupt/           envelopes that could not be read, set aside
 */
#ifndef PYMAILD_QUEUED_H
#define PYMAILD_QUEUED_H

#include <limits.h>

#include "chan.h"
#include "envelope.h"
#include "proto.h"

/* One address to try: an MX host, a domain's own address, the relay. */
struct host {
	char	host[256];
	char	addr[64];
	int	port;
	int	pref;		/* MX preference; HOST_RELAY: the smarthost */
};
#define HOST_RELAY	INT_MAX

/* Per recipient of an attempt, while it runs. */
enum attempt_result {
	AR_UNSETTLED,	/* not answered yet, or the host failed */
	AR_ACCEPTED,	/* 2xx to RCPT, waiting for the end of DATA */
	AR_DELIVERED,	/* 2xx after the final dot */
	AR_FINAL,	/* 5xx: failed for good */
	AR_LATER	/* 4xx: try again later */
};

/* Delivering one domain's recipients of one message. */
struct attempt {
	TAILQ_ENTRY(attempt)	 entry;
	uint32_t		 req;		/* the MX lookup */
	struct envelope		*env;
	char			 domain[256];
	size_t			*rcpts;		/* indexes into env->rcpts */
	enum attempt_result	*result;
	char			(*reason)[256];
	size_t			 nrcpts;
	struct host		 hosts[MX_MAX_HOSTS + 1];
	int			 nhosts;
	int			 cur;
	char			 lasterror[256];
};

/* queued.c */
extern struct chan	smtpd_chan, mxcache_chan;
void	queued_send_parent(uint32_t type, struct msgbuild *, int fd);

/* fpool.c */
void	fpool_init(void);
int	fpool_take(const char *path);
int	fpool_give(const char *path, off_t size);

/* journal.c */
#define JNL_INLINE_MAX	(1024 * 1024)	/* larger messages: syncfs */
struct jbatch {
	char	*buf;
	size_t	 len, cap;
	size_t	 ncommits;
	int	 seg;		/* where journal_write put them */
};
void	journal_init(int rootfd);
int	journal_write(struct jbatch *);
char	*jbatch_reserve(struct jbatch *, size_t envlen, size_t datalen);
void	jbatch_commit(struct jbatch *, const char *env, size_t envlen,
	    size_t datalen);
void	jbatch_done(struct jbatch *, const char *id);
void	jbatch_free(struct jbatch *);
void	journal_finalized(int seg);
int	journal_close(void);

/* held.c */
void	held_init(void);
void	held_add(struct envelope *, int seg);
int	held_finalize(const struct envelope *);
void	held_finalize_all(void);
int	held_remove(const struct envelope *);
void	held_data_path(const struct envelope *, char *path, size_t len);

/* spool.c */
int	spool_write_env(int fd, const char *text, int dosync);
int	spool_files_commit(const char *id);
void	spool_init(void);
int	spool_dispatch(struct imsg *);
/* Write a message and its envelope straight into the queue (bounces). */
int	spool_inject(struct envelope *, const char *data, size_t len);
/* Rewrite a queued envelope (after a deferral). */
int	spool_update(struct envelope *);
/* The message is done: remove it from disk. */
void	spool_remove(struct envelope *);
void	spool_exit(void);
int	spool_open_data(const struct envelope *);
void	spool_new_id(char *id);
size_t	spool_count(void);

/* runner.c */
void	runner_init(void);
void	runner_add(struct envelope *);
void	runner_restore(struct envelope *);
int	runner_deliver_reply(struct imsg *);
void	runner_shutdown(void);
void	runner_flush(void);

/* outbound.c */
void	outbound_init(void);
/* Start delivering e's pending remote recipients: 0 out of slots, 1 all
 * under way, 2 some wait for a busy domain. */
int	outbound_start(struct envelope *e);
int	outbound_mx_reply(struct imsg *);
int	outbound_busy(void);
void	outbound_reloaded(void);
void	attempt_host_failed(struct attempt *, const char *why);
void	attempt_host_done(struct attempt *);
void	attempt_rcpt_final(struct attempt *, size_t idx, const char *why);
void	attempt_rcpt_later(struct attempt *, size_t idx, const char *why);
void	attempt_all_final(struct attempt *, const char *why);
void	attempt_accepted_result(struct attempt *, int code, const char *why);

/* smtpc.c */
void	smtpc_start(struct attempt *);

/* smtpreply.c: the reply parser of smtpc.c, pure */
#define SMTP_REPLY_LINE_MAX	4096	/* octets of a line, CRLF aside */
#define SMTP_REPLY_LINES_MAX	100	/* lines of a reply */
#define SMTP_EXT_PIPELINING	0x01	/* EHLO keywords */
#define SMTP_EXT_SIZE		0x02

enum smtp_reply_status {
	SMTP_REPLY_MORE,	/* every whole line used; more octets wanted */
	SMTP_REPLY_DONE,	/* a reply ended: its code, text and ext */
	SMTP_REPLY_GARBLED,	/* not a reply line, or too many lines */
	SMTP_REPLY_TOOLONG	/* a line over SMTP_REPLY_LINE_MAX */
};

/* Kept from call to call while a reply comes in pieces. */
struct smtp_reply {
	int	ehlo;		/* the caller's: this answers EHLO */
	int	nlines;		/* lines of this reply so far */
	int	code;		/* the last line's */
	int	ext;		/* EHLO: the SMTP_EXT_ keywords listed */
	char	text[SMTP_REPLY_LINE_MAX];	/* the last line, printable */
};

/*
 * Read reply lines (CRLF or LF ended) from in[0..len), up to the end of
 * a reply: returns the octets used (whole lines only), *status says what
 * stopped it. The caller keeps the octets not used and calls again with
 * them and more.
 */
size_t	smtp_reply_parse(struct smtp_reply *, const char *in, size_t len,
	    enum smtp_reply_status *status);

/* runner.c, for outbound */
void	runner_attempt_done(struct envelope *);

/* bounce.c */
void	bounce_failed(struct envelope *);

#endif
