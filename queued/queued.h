/*
 * queued: the durable queue (DESIGN.md B2), chrooted in SPOOLDIR.
 *
 * Layout, relative to the chroot:
 *   incoming/ID        message being received (smtpd writes it)
 *   incoming/ID.env    its envelope, before the commit renames
 *   msg/ID             committed message data (CRLF lines, dot-unstuffed)
 *   env/ID             committed envelope: its presence is the commit
 *   corrupt/           envelopes that could not be read, set aside
 */
#ifndef PYMAILD_QUEUED_H
#define PYMAILD_QUEUED_H

#include <sys/queue.h>

#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "chan.h"
#include "proto.h"
#include "userdb.h"

#define ENV_MAX_RCPTS	1000
#define ENV_TEXT_MAX	(256 * 1024)

enum rcpt_status {
	RS_PENDING,	/* to be delivered */
	RS_DONE,	/* delivered */
	RS_FAILED,	/* failed for good, bounce not yet sent */
	RS_BOUNCED	/* failed for good, bounce sent (or none due) */
};

struct envrcpt {
	char		 address[ADDR_PATH_MAX];
	char		 user[USER_NAME_MAX + 1];	/* "" = remote */
	enum rcpt_status status;
	char		 reason[256];
	int		 inflight;
};

struct envelope {
	TAILQ_ENTRY(envelope)	 entry;
	char			 id[QUEUE_ID_LEN + 1];
	time_t			 created;
	char			 sender[ADDR_PATH_MAX];	/* "" = <> */
	char			 helo[256];
	char			 client[64];
	char			 protocol[16];
	char			 session[17];
	long long		 size;
	int			 attempts;
	time_t			 next_attempt;
	char			 lasterror[256];
	struct envrcpt		*rcpts;
	size_t			 nrcpts;
	int			 inflight;	/* deliveries under way */
	int			 waiting;	/* on the retry list */
};

TAILQ_HEAD(envlist, envelope);

/* queued.c */
extern struct chan	smtpd_chan, mxcache_chan;
void	queued_send_parent(uint32_t type, struct msgbuild *, int fd);

/* envelope.c */
struct envelope *envelope_new(const char *id);
void	envelope_free(struct envelope *);
struct envrcpt *envelope_add_rcpt(struct envelope *, const char *address,
	    const char *user);
/* Text form; returns a malloc'd NUL-terminated string. */
char	*envelope_format(const struct envelope *);
/* Parse; -1 with a reason in why. */
int	 envelope_parse(const char *text, struct envelope *, char *why,
	    size_t whylen);
/* Safe to store in the text form: no control characters, bounded. */
int	 envelope_field_ok(const char *s, size_t max);

/* spool.c */
void	spool_init(void);
int	spool_dispatch(struct imsg *);
/* Write a message and its envelope straight into the queue (bounces). */
int	spool_inject(struct envelope *, const char *data, size_t len);
/* Rewrite a queued envelope (after a deferral). */
int	spool_update(struct envelope *);
/* The message is done: remove it from disk. */
void	spool_remove(struct envelope *);
int	spool_open_data(const struct envelope *);
void	spool_new_id(char *id);
size_t	spool_count(void);

/* runner.c */
void	runner_init(void);
void	runner_add(struct envelope *);
int	runner_deliver_reply(struct imsg *);
size_t	runner_count(void);

/* bounce.c */
void	bounce_failed(struct envelope *);

#endif
