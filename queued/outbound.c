/*
 * Remote recipients: for each message, one attempt per destination
 * domain, handed to the outbound process (a read-only descriptor of the
 * message and the domain's recipients) which answers one result per
 * recipient. The schedule, the retries, the bounces and the hop count
 * stay here; outbound never sees the spool.
 *
 * outbound parses what any server in the world says: what it sends back
 * is bounded and checked. A result for an attempt not under way, for a
 * recipient not in it or for one twice, an end before every recipient
 * has a result: each is a compromised peer, and queued fails closed
 * (the parent then stops the daemon; the queue is intact on disk and
 * every attempt under way runs again at the next start).
 */
#include <sys/mman.h>
#include <sys/param.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "child.h"
#include "hops.h"
#include "log.h"
#include "outmsg.h"
#include "queued.h"
#include "util.h"

/* Hop counting reads the header this far at most, a chunk at a time. */
#define HOPS_READ_MAX		(256 * 1024)
#define HOPS_READ_CHUNK		(16 * 1024)

TAILQ_HEAD(attemptlist, attempt);

static struct attemptlist	attempts = TAILQ_HEAD_INITIALIZER(attempts);
static int			nattempts;
static uint32_t			next_id = 1;
static int			outbound_gone;	/* its channel closed */

static int
domain_busy(const char *domain)
{
	struct attempt	*at;
	int		 n = 0;

	TAILQ_FOREACH(at, &attempts, entry)
		if (strcasecmp(at->domain, domain) == 0)
			n++;
	return n >= OUT_PER_DOMAIN_MAX;
}

static void
attempt_free(struct attempt *at)
{
	free(at->rcpts);
	free(at->answered);
	free(at);
}

/* Every recipient answered: the runner decides what comes next. */
static void
attempt_finish(struct attempt *at)
{
	struct envelope	*e = at->env;
	size_t		 i;

	for (i = 0; i < at->nrcpts; i++)
		e->rcpts[at->rcpts[i]].inflight = 0;
	TAILQ_REMOVE(&attempts, at, entry);
	nattempts--;
	e->inflight--;
	runner_attempt_done(e, at->domain);
	attempt_free(at);
}

/* Settled here, without outbound: every recipient fails for good. */
static void
fail_all(struct attempt *at, const char *why)
{
	struct envrcpt	*r;
	size_t		 i;

	for (i = 0; i < at->nrcpts; i++) {
		r = &at->env->rcpts[at->rcpts[i]];
		r->status = RS_FAILED;
		strlcpy(r->reason, why, sizeof(r->reason));
	}
	attempt_finish(at);
}

/* Defer every recipient of an attempt that could not be handed over. */
static void
defer_all(struct attempt *at, const char *why)
{
	strlcpy(at->env->lasterror, why, sizeof(at->env->lasterror));
	log_info("outbound id=%s domain=%s result=deferred reason=\"%s\"",
	    at->env->id, at->domain, why);
	attempt_finish(at);
}

/*
 * The Received: lines of the header in fd, read from its start a chunk
 * at a time, HOPS_READ_MAX octets at most (a loop adds lines, not
 * length). buf keeps what was read: a small message whole.
 */
static int
read_hops(int fd, char *buf, size_t size, size_t *got)
{
	size_t	 len = 0;
	ssize_t	 n;
	int	 hops = 0, complete = 0;

	while (len < size && !complete && hops <= HOPS_MAX) {
		n = pread(fd, buf + len, MIN(HOPS_READ_CHUNK, size - len), len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		hops = header_hops(buf, len, &complete);
	}
	*got = len;
	return hops;
}

/* A sealed copy in memory of the size octets of buf, or -1. */
static int
message_copy(const char *buf, size_t size)
{
	int	mfd;

	if ((mfd = memfd_create("pymaild-out", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		return -1;
	if (write(mfd, buf, size) != (ssize_t)size ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
	    F_SEAL_SHRINK | F_SEAL_SEAL) == -1) {
		close(mfd);
		return -1;
	}
	return mfd;
}

/*
 * A fresh message (held.c) is still in the memfd smtpd wrote it into,
 * sealed at its commit and made for it alone: outbound gets a
 * descriptor of that one, as it would get a copy, and the spool file
 * goes back to the pool as usual. No file opened, nothing copied.
 */
static int
sealed_original(int memfd, int *hops)
{
	static char	 buf[HOPS_READ_MAX];
	size_t		 got;

	if ((*hops = read_hops(memfd, buf, sizeof(buf), &got)) > HOPS_MAX)
		return -1;
	return fcntl(memfd, F_DUPFD_CLOEXEC, 0);
}

/*
 * What outbound gets of the message, read once for both jobs: its hop
 * count first, then the descriptor. Never a descriptor that could one
 * day show another message: a small message (the spool reuses its
 * files) goes as a sealed copy in memory, which nothing else shares,
 * made from the octets the hop count read; a larger one as its spool
 * file, read-only, and that file is removed when the message is done
 * instead of going back to the pool. -1: unreadable.
 */
static int
message_for_outbound(struct envelope *e, int *hops)
{
	static char	 buf[MAX(HOPS_READ_MAX, FPOOL_FILE_MAX)];
	size_t		 got;
	int		 fd, complete;

	*hops = 0;
	if (e->datasize > 0 && e->datasize <= FPOOL_FILE_MAX &&
	    (fd = held_memfd(e)) != -1)
		return sealed_original(fd, hops);
	if ((fd = spool_open_data(e)) == -1)
		return -1;
	if (e->datasize > 0 && e->datasize <= FPOOL_FILE_MAX) {
		/* the whole of it: the copy needs every octet anyway */
		got = pread(fd, buf, e->datasize, 0);
		close(fd);
		if (got != (size_t)e->datasize)
			return -1;
		*hops = header_hops(buf, got, &complete);
		if (*hops > HOPS_MAX)
			return -1;
		return message_copy(buf, got);
	}
	*hops = read_hops(fd, buf, HOPS_READ_MAX, &got);
	if (*hops > HOPS_MAX) {
		close(fd);
		return -1;
	}
	e->handed_out = 1;
	return fd;
}

/*
 * A message that went round too often is in a loop: relaying it once
 * more would feed the loop, so it fails here (RFC 5321 6.3).
 */
static void
hop_limit(struct attempt *at, int hops)
{
	char	why[128];

	snprintf(why, sizeof(why), "554 5.4.6 too many hops (%d Received: "
	    "lines), a mail loop", hops);
	log_info("outbound id=%s domain=%s error=\"%s\"", at->env->id,
	    at->domain, why);
	fail_all(at, why);
}

/* The signature fields made at the commit, folded the same way at
 * every attempt; their length. */
static size_t
dkim_prefix(const struct envelope *e, char *out, size_t outlen)
{
	size_t	n;

	out[0] = '\0';
	if (e->dkim == NULL)
		return 0;
	if ((n = dkim_fold(e->dkim, out, outlen)) == 0)
		log_warnx("outbound: %s: its DKIM signature does not fold; "
		    "sent unsigned", e->id);
	return n;
}

static void
hand_over(struct attempt *at)
{
	struct envelope			*e = at->env;
	struct out_attempt		 oa;
	struct out_attempt_build	 b;
	size_t				 i;
	int				 fd, hops;

	if ((fd = message_for_outbound(e, &hops)) == -1) {
		if (hops > HOPS_MAX) {
			hop_limit(at, hops);
			return;
		}
		log_warn("outbound: cannot read the data of %s", e->id);
		defer_all(at, "451 4.3.0 queued message unreadable");
		return;
	}
	memset(&oa, 0, sizeof(oa));
	oa.id = at->id;
	strlcpy(oa.qid, e->id, sizeof(oa.qid));
	strlcpy(oa.sender, e->sender, sizeof(oa.sender));
	strlcpy(oa.domain, at->domain, sizeof(oa.domain));
	oa.size = (e->datasize > 0 ? e->datasize : e->size) +
	    dkim_prefix(e, oa.dkim, sizeof(oa.dkim));
	out_attempt_begin(&b, &oa);
	for (i = 0; i < at->nrcpts; i++)
		out_attempt_add(&b, e->rcpts[at->rcpts[i]].address);
	if (out_send_attempt(&outbound_chan, &b, fd) == -1)
		defer_all(at, "451 4.3.0 outbound client unavailable");
}

/*
 * The pending recipients of domain, as many as one OUT_ATTEMPT holds;
 * the others wait for another attempt.
 */
static struct attempt *
attempt_new(struct envelope *e, const char *domain)
{
	struct attempt			*at = xcalloc(1, sizeof(*at));
	struct out_attempt_build	 b;
	struct out_attempt		 oa;
	struct envrcpt			*r;
	size_t				 i;

	/* only the size counts here: the same fields as hand_over's */
	memset(&oa, 0, sizeof(oa));
	strlcpy(oa.qid, e->id, sizeof(oa.qid));
	strlcpy(oa.sender, e->sender, sizeof(oa.sender));
	strlcpy(oa.domain, domain, sizeof(oa.domain));
	dkim_prefix(e, oa.dkim, sizeof(oa.dkim));
	out_attempt_begin(&b, &oa);
	at->env = e;
	at->id = next_id++;
	if (next_id == 0)
		next_id = 1;
	strlcpy(at->domain, domain, sizeof(at->domain));
	at->rcpts = xcalloc(e->nrcpts, sizeof(*at->rcpts));
	at->answered = xcalloc(e->nrcpts, sizeof(*at->answered));
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		if (r->status != RS_PENDING || r->user[0] || r->inflight ||
		    strcasecmp(addr_stored_domain(r->address), domain) != 0)
			continue;
		if (!out_attempt_fits(&b, r->address))
			break;
		out_attempt_add(&b, r->address);
		r->inflight = 1;
		at->rcpts[at->nrcpts++] = i;
	}
	return at;
}

int
outbound_start(struct envelope *e)
{
	struct attempt	*at;
	struct envrcpt	*r;
	size_t		 i;
	int		 blocked = 0;

	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		if (r->status != RS_PENDING || r->user[0] || r->inflight)
			continue;
		if (nattempts >= OUT_ATTEMPTS_MAX || outbound_gone)
			return 0;
		if (domain_busy(addr_stored_domain(r->address))) {
			/* waits for a slot of the first busy domain */
			if (!blocked)
				e->blocked_on = addr_stored_domain(r->address);
			blocked = 1;
			continue;
		}
		at = attempt_new(e, addr_stored_domain(r->address));
		TAILQ_INSERT_TAIL(&attempts, at, entry);
		nattempts++;
		e->inflight++;
		hand_over(at);
	}
	return blocked ? 2 : 1;
}

static struct attempt *
attempt_by_id(uint32_t id)
{
	struct attempt	*at;

	TAILQ_FOREACH(at, &attempts, entry)
		if (at->id == id)
			return at;
	return NULL;
}

static int
take_result(struct imsg *im)
{
	struct out_result	 or;
	struct attempt		*at;
	struct envelope		*e;
	struct envrcpt		*r;

	if (out_read_result(im->data, im->datalen, &or) == -1) {
		log_warnx("outbound sent a malformed result");
		return -1;
	}
	if ((at = attempt_by_id(or.id)) == NULL || or.index >= at->nrcpts ||
	    at->answered[or.index]) {
		log_warnx("outbound sent a result for attempt %u recipient "
		    "%u, which is not waiting for one", or.id, or.index);
		return -1;
	}
	if (or.last != (at->nanswered + 1 == at->nrcpts)) {
		log_warnx("outbound %s attempt %u at recipient %u", or.last ?
		    "ended" : "did not end", or.id, or.index);
		return -1;
	}
	at->answered[or.index] = 1;
	at->nanswered++;
	e = at->env;
	r = &e->rcpts[at->rcpts[or.index]];
	switch (or.result) {
	case OUT_DELIVERED:
		r->status = RS_DONE;
		qcount.relayed++;
		metrics_delivered(e);
		break;
	case OUT_FAILED:
		qcount.failed++;
		r->status = RS_FAILED;
		strlcpy(r->reason, or.text, sizeof(r->reason));
		break;
	default:
		strlcpy(e->lasterror, or.text, sizeof(e->lasterror));
		break;
	}
	if (or.last)
		attempt_finish(at);
	return 0;
}

int
outbound_dispatch(struct chan *c, struct imsg *im)
{
	if (im->fd != -1)
		return -1;	/* outbound never sends us descriptors */
	switch (im->hdr.type) {
	case IMSG_OUT_RESULT:
		return take_result(im);
	default:
		log_warnx("outbound sent a message of type %u",
		    im->hdr.type);
		return -1;
	}
}

/*
 * A peer that broke the rules is not ours any more: exit non-zero, so
 * the parent stops the daemon. A plain close is outbound going away (the
 * parent stops us too): the attempts under way stay unsettled, queued
 * on disk, and run again at the next start.
 */
void
outbound_closed(struct chan *c)
{
	if (c->failure != NULL)
		fatalx("outbound: %s; failing closed", c->failure);
	log_warnx("outbound: its channel closed with %d attempts under way",
	    nattempts);
	outbound_gone = 1;
	runner_outbound_gone();
}

int
outbound_busy(void)
{
	return nattempts > 0 && !outbound_gone;
}

/* The messages of the attempts under way, for runner_collect. */
void
outbound_collect(struct envelope ***v, size_t *n, size_t *cap)
{
	struct attempt	*at;

	TAILQ_FOREACH(at, &attempts, entry)
		runner_collect_one(at->env, v, n, cap);
}

/*
 * e was removed: outbound stops relaying it, before the final dot if it
 * has not sent it yet. Its results still come, and end the attempts as
 * usual. Returns the attempts told.
 */
int
outbound_cancel(struct envelope *e)
{
	struct attempt	*at;
	struct msgbuild	 mb;
	int		 n = 0;

	if (outbound_gone)
		return 0;
	TAILQ_FOREACH(at, &attempts, entry) {
		if (at->env != e)
			continue;
		mb_init(&mb);
		mb_u32(&mb, at->id);
		if (chan_send(&outbound_chan, &mb, IMSG_OUT_CANCEL, 0, -1) == 0)
			n++;
	}
	return n;
}
