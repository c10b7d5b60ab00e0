#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "util.h"

static void	chan_event(int, short, void *);

#define CHAN_READS_MAX	64	/* reads per wake-up, to stay fair */

void
chan_kick(struct chan *c)
{
	short	want = EV_READ | EV_PERSIST;

	if (!c->active)
		return;
	if (c->ib.whead != NULL)
		want |= EV_WRITE;
	if (want == c->events)
		return;
	if (c->events)
		event_del(&c->ev);
	event_set(&c->ev, c->ib.fd, want, chan_event, c);
	event_base_set(c->base, &c->ev);
	event_add(&c->ev, NULL);
	c->events = want;
}

void
chan_init(struct chan *c, struct event_base *base, int fd, const char *name,
    chan_dispatch_fn dispatch, chan_closed_fn closed, void *arg)
{
	memset(c, 0, sizeof(*c));
	imsgbuf_init(&c->ib, fd);
	set_nonblock(fd);
	c->base = base;
	c->name = name;
	c->dispatch = dispatch;
	c->closed = closed;
	c->arg = arg;
	c->active = 1;
	c->im = xmalloc(sizeof(*c->im));
	chan_kick(c);
}

void
chan_close(struct chan *c)
{
	if (!c->active)
		return;
	if (c->flush_set)
		event_del(&c->flush_ev);
	c->flush_set = 0;
	if (c->events)
		event_del(&c->ev);
	c->events = 0;
	c->active = 0;
	imsgbuf_clear(&c->ib);
	close(c->ib.fd);
	c->ib.fd = -1;
	free(c->im);
	c->im = NULL;
}

static void
chan_fail(struct chan *c, const char *why)
{
	if (why)
		log_warnx("channel %s: %s; closing it", c->name, why);
	c->failure = why;
	chan_close(c);
	if (c->closed)
		c->closed(c);
}

/* Hand every whole message in the buffer to dispatch; -1: closed. */
static int
chan_dispatch_all(struct chan *c)
{
	int	r;

	for (;;) {
		if ((r = imsg_get(&c->ib, c->im)) == 0)
			return 0;
		if (r == -1) {
			chan_fail(c, "bad message framing");
			return -1;
		}
		if (c->im->fd != -1 && c->takes_fd != NULL &&
		    !c->takes_fd(c->im->hdr.type)) {
			close(c->im->fd);
			log_warnx("channel %s: message type %u carries a "
			    "descriptor it does not take", c->name,
			    c->im->hdr.type);
			chan_fail(c, "unexpected descriptor");
			return -1;
		}
		if (c->dispatch(c, c->im) == -1) {
			if (c->im->fd != -1)
				close(c->im->fd);
			chan_fail(c, "malformed message");
			return -1;
		}
		if (!c->active)
			return -1;
	}
}

/* chan_dispatch_all between the burst calls; c may be freed after. */
static int
chan_dispatch_burst(struct chan *c)
{
	void	(*burst)(int) = c->burst;
	int	  r;

	if (burst == NULL)
		return chan_dispatch_all(c);
	burst(1);
	r = chan_dispatch_all(c);
	burst(0);
	return r;
}

static void
chan_event(int fd, short ev, void *arg)
{
	struct chan	*c = arg;
	ssize_t		 n;
	int		 i;

	if (ev & EV_WRITE) {
		if (imsgbuf_flush(&c->ib) == -1) {
			chan_fail(c, errno == EPIPE ? NULL : "write failed");
			return;
		}
	}
	/*
	 * The kernel ends a read at each message that carries a descriptor,
	 * so read on (a bounded number of times) while data is there rather
	 * than wait for one wake-up per message.
	 */
	for (i = 0; (ev & EV_READ) && i < CHAN_READS_MAX; i++) {
		n = imsgbuf_read(&c->ib);
		if (n == -1 && errno == EAGAIN && c->ib.rlen < IMSG_MAX)
			break;
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			chan_fail(c, NULL);
			return;
		}
		if (chan_dispatch_burst(c) == -1)
			return;
	}
	chan_kick(c);
}

/*
 * The one error policy: a message this process cannot queue is one its
 * peer never gets, so a request never answered or an answer never read;
 * no caller can go on from that. Say which peer and why, and end: the
 * parent, or the supervisor of the parent, starts again from a clean
 * state (fail closed).
 */
static __attribute__((noreturn)) void
send_failed(struct chan *c, uint32_t type, size_t len, int overflow)
{
	log_warnx("channel %s: cannot queue a message of type %u (%zu "
	    "bytes%s): %s; exiting (fail closed)", c->name, type, len,
	    overflow ? ", overflowed" : "", strerror(errno));
	exit(1);
}

int
chan_queue(struct chan *c, struct msgbuild *mb, uint32_t type,
    uint32_t peerid, int fd)
{
	if (!c->active) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (mb_send(mb, &c->ib, type, peerid, fd) == -1)
		send_failed(c, type, mb->len, mb->overflow);
	return 0;
}

static void
chan_write_now(int fd, short ev, void *arg)
{
	chan_flush(arg);
}

/*
 * Write what is queued once the callbacks of this loop turn have run:
 * every message of the turn in one write, and most often no watch for
 * writability at all. Watching for it per message cost two epoll_ctl
 * calls to arm it, two to disarm it, and a turn of the loop, for a
 * socket that nearly always had room. What the socket does not take
 * now waits for writability, as before.
 */
static void
chan_write_soon(struct chan *c)
{
	if (!c->flush_set) {
		event_assign(&c->flush_ev, c->base, -1, 0, chan_write_now, c);
		c->flush_set = 1;
	}
	event_active(&c->flush_ev, EV_TIMEOUT, 0);
}

int
chan_compose(struct chan *c, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	if (!c->active) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (imsg_compose(&c->ib, type, peerid, fd, data, len) == -1)
		send_failed(c, type, len, 0);
	chan_write_soon(c);
	return 0;
}

int
chan_send(struct chan *c, struct msgbuild *mb, uint32_t type, uint32_t peerid,
    int fd)
{
	if (chan_queue(c, mb, type, peerid, fd) == -1)
		return -1;
	chan_write_soon(c);
	return 0;
}

void
chan_flush(struct chan *c)
{
	if (!c->active)
		return;
	/*
	 * A write that fails leaves the message queued: the write event
	 * meets the error again and closes the channel, so closed()
	 * decides, as it does for every other broken channel.
	 */
	if (imsgbuf_flush(&c->ib) == -1)
		log_debug("channel %s: write: %s", c->name, strerror(errno));
	chan_kick(c);
}
