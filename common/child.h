/*
 * What every helper process shares: start-up from the parent, the
 * channel back to it, and the messages every helper answers the same way.
 */
#ifndef PYMAILD_CHILD_H
#define PYMAILD_CHILD_H

#include "chan.h"
#include "config.h"
#include "proto.h"

struct mtext;

struct childproc {
	enum proc_role		 role;
	struct event_base	*base;
	struct config		 conf;
	uint32_t		 flags;
	struct chan		 parent;
	/* The helper's own answer to IMSG_STATS (sessions or queue). */
	uint32_t		(*stats)(void);
	/* Called after a new config was installed by IMSG_RELOAD. */
	void			(*reloaded)(void);
	/* Called on IMSG_SHUTDOWN; NULL means exit at once. */
	void			(*shutdown)(void);
	/* The helper's lines for IMSG_METRICS (metrics.h); NULL: the
	 * helper answers IMSG_METRICS itself, or not at all. */
	void			(*metrics)(struct mtext *);
};

extern struct childproc	*proc;

/* Refuse a hand start, set the title, read the config, make the loop. */
void	child_start(int argc, char **argv, enum proc_role role);
/* After the privilege drop: listen to the parent and say hello. */
void	child_ready(chan_dispatch_fn dispatch);
/* IMSG_RELOAD, IMSG_STATS, IMSG_SHUTDOWN, IMSG_LOG_REOPEN and, with a
 * metrics callback, IMSG_METRICS: 1
 * handled, 0 not ours, -1 malformed. */
int	child_common_dispatch(struct imsg *im);
/* Open a channel to another helper (proto.h's table). */
void	child_peer(struct chan *c, enum proc_role peer, chan_dispatch_fn fn);

#endif
