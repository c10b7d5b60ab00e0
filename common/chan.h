/*
 * An imsg channel on a libevent loop: reads, splits into messages, hands
 * each to the dispatch function, and writes what is queued when it can.
 */
#ifndef PYMAILD_CHAN_H
#define PYMAILD_CHAN_H

#include <event.h>

#include "imsg.h"

struct chan;
/* Return -1 when the message is malformed: the channel is then closed. */
typedef int	(*chan_dispatch_fn)(struct chan *, struct imsg *);
typedef void	(*chan_closed_fn)(struct chan *);

struct chan {
	struct imsgbuf	 	 ib;
	struct event		 ev;
	struct event_base	*base;
	short			 events;
	int			 active;
	const char		*name;
	chan_dispatch_fn	 dispatch;
	chan_closed_fn		 closed;
	void			*arg;
	struct imsg		*im;	/* scratch, 16 KiB: not on the stack */
	/* Why the channel failed, for closed(); NULL at a plain EOF. */
	const char		*failure;
	/* When set: may a message of this type carry a descriptor? One
	 * that may not is closed and breaks the channel. */
	int			(*takes_fd)(uint32_t type);
	/* When set: called with 1 before the messages of one read are
	 * dispatched, with 0 after (the channel may be gone by then). */
	void			(*burst)(int begin);
	/* chan_send's write at the end of the loop turn (chan_write_soon) */
	struct event		 flush_ev;
	int			 flush_set;
};

void	chan_init(struct chan *, struct event_base *, int fd, const char *name,
	    chan_dispatch_fn, chan_closed_fn, void *arg);
/*
 * The one way to send to a peer. A message that cannot be queued (it
 * does not fit a frame) logs the peer and why and exits 1: fail closed.
 * A channel closed already takes nothing: -1, the descriptor is closed
 * (its closed() handler has dealt with the peer). A write that fails
 * later closes the channel like a read that fails. What is sent goes
 * out once the callbacks of the current loop turn have run.
 */
int	chan_send(struct chan *, struct msgbuild *, uint32_t type,
	    uint32_t peerid, int fd);
/* The same without watching for writability: several messages go out
 * in one write, at chan_flush. */
int	chan_queue(struct chan *, struct msgbuild *, uint32_t type,
	    uint32_t peerid, int fd);
/* The same for a payload that is already bytes. */
int	chan_compose(struct chan *, uint32_t type, uint32_t peerid, int fd,
	    const void *data, size_t len);
/* Write what is queued now rather than at the next writable event. */
void	chan_flush(struct chan *);
/* Watch for writability after messages were queued on c->ib directly. */
void	chan_kick(struct chan *);
/* Close the socket and free the buffers; does not call closed(). */
void	chan_close(struct chan *);

#endif
