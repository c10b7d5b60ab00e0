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

#include "chan.h"
#include "envelope.h"
#include "proto.h"

/* queued.c */
extern struct chan	smtpd_chan, mxcache_chan;
void	queued_send_parent(uint32_t type, struct msgbuild *, int fd);

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
void	runner_shutdown(void);
void	runner_flush(void);

/* bounce.c */
void	bounce_failed(struct envelope *);

#endif
