/*
 * The queue runner: hands local recipients to the parent for delivery,
 * retries temporary failures with growing intervals, bounces what failed
 * for good, and removes a message once nothing is left to do.
 *
 * Remote recipients go to the outbound process (outbound.c); deferred
 * ones expire after maxqueuetime like any deferral.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define MAX_INFLIGHT	512	/* deliveries handed to the parent */
#define TICK_SEC	1

struct delivery {
	struct envelope	*env;
	size_t		 rcpt;
};

static struct envlist	ready = TAILQ_HEAD_INITIALIZER(ready);
static struct envlist	waiting = TAILQ_HEAD_INITIALIZER(waiting);
/* Mail for a domain whose sessions are all busy: runs again when any
 * outbound attempt ends. */
static struct envlist	blocked = TAILQ_HEAD_INITIALIZER(blocked);
/* Held by pymailadm hold: never attempted, never expired, until
 * released. */
static struct envlist	onhold = TAILQ_HEAD_INITIALIZER(onhold);
static struct delivery	*inflight[MAX_INFLIGHT];
static int		 ninflight;
/*
 * The envelope runner_run is starting. A delivery may end before its
 * start returns (a connect that fails at once): its message settles
 * once, when runner_run is done with it, never from inside.
 */
static struct envelope	*running;
static struct event	 ev_run, ev_tick, ev_stop;
static int		 run_scheduled;
static int		 stopping;
static time_t		 last_flush;	/* pymailadm flush */

static void	runner_run(int, short, void *);
static void	tick(int, short, void *);

static void
schedule(void)
{
	if (run_scheduled)
		return;
	run_scheduled = 1;
	event_active(&ev_run, EV_TIMEOUT, 1);
}

void
runner_add(struct envelope *e)
{
	e->ready = 1;
	TAILQ_INSERT_TAIL(&ready, e, entry);
	schedule();
}

static void
park(struct envelope *e)
{
	e->parked = 1;
	TAILQ_INSERT_TAIL(&onhold, e, entry);
}

/* From the spool at start: deferred mail keeps its schedule. */
void
runner_restore(struct envelope *e)
{
	if (e->held) {
		park(e);
		return;
	}
	if (e->next_attempt > time(NULL)) {
		e->waiting = 1;
		TAILQ_INSERT_TAIL(&waiting, e, entry);
		return;
	}
	runner_add(e);
}

static int
slot_free(void)
{
	int	i;

	for (i = 0; i < MAX_INFLIGHT; i++)
		if (inflight[i] == NULL)
			return i;
	return -1;
}

static int
start_delivery(struct envelope *e, size_t i)
{
	struct msgbuild	 mb;
	struct delivery	*d;
	int		 slot, fd;

	if ((slot = slot_free()) == -1)
		return 0;	/* all slots busy: wait for a reply */
	if ((fd = spool_open_data(e)) == -1) {
		log_warn("runner: cannot open the data of %s", e->id);
		snprintf(e->lasterror, sizeof(e->lasterror),
		    "451 4.3.0 queued message unreadable");
		return -1;
	}
	d = xcalloc(1, sizeof(*d));
	d->env = e;
	d->rcpt = i;
	inflight[slot] = d;
	ninflight++;
	e->inflight++;
	e->rcpts[i].inflight = 1;
	mb_init(&mb);
	mb_u32(&mb, slot);
	mb_str(&mb, e->id);
	mb_str(&mb, e->rcpts[i].user);
	mb_str(&mb, e->sender);
	mb_str(&mb, e->rcpts[i].address);
	mb_str(&mb, e->authres ? e->authres : "");
	queued_send_parent(IMSG_DELIVER, &mb, fd);
	return 1;
}

static int
has_status(const struct envelope *e, enum rcpt_status st, int local_only)
{
	size_t	i;

	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].status == st &&
		    (!local_only || e->rcpts[i].user[0]))
			return 1;
	return 0;
}

static void
expire(struct envelope *e)
{
	size_t	i;

	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].status != RS_PENDING)
			continue;
		e->rcpts[i].status = RS_FAILED;
		strlcpy(e->rcpts[i].reason, "554 5.4.7 Delivery time expired",
		    sizeof(e->rcpts[i].reason));
		if (e->lasterror[0] == '\0')
			continue;
		strlcat(e->rcpts[i].reason, "; last error: ",
		    sizeof(e->rcpts[i].reason));
		strlcat(e->rcpts[i].reason, e->lasterror,
		    sizeof(e->rcpts[i].reason));
	}
}

/* retrymin, doubling with each attempt, at most retrymax. */
static int
retry_delay(int attempts)
{
	long long	delay = proc->conf.retrymin;

	while (--attempts > 0 && delay < proc->conf.retrymax)
		delay *= 2;
	return delay > proc->conf.retrymax ? proc->conf.retrymax : delay;
}

/* On a list twice, a TAILQ loops for ever: refuse the impossible. */
static void
wait_retry(struct envelope *e)
{
	if (e->waiting || e->ready)
		fatalx("runner: %s is already scheduled", e->id);
	e->waiting = 1;
	TAILQ_INSERT_TAIL(&waiting, e, entry);
}

/*
 * Nothing of this message is under way: decide what comes next.
 * Returns 1 when the envelope was freed.
 */
static int
settle(struct envelope *e)
{
	time_t	now = time(NULL);
	int	delay;

	if (e->removed) {
		/* Whatever came back, the administrator wants it gone. */
		log_info("queue id=%s result=removed", e->id);
		spool_remove(e);
		envelope_free(e);
		return 1;
	}
	/* Held mail waits for the administrator, not for the clock. */
	if (!e->held && has_status(e, RS_PENDING, 0) &&
	    now - e->created >= proc->conf.maxqueuetime)
		expire(e);
	if (has_status(e, RS_FAILED, 0)) {
		qcount.bounced++;
		bounce_failed(e);
	}
	if (!has_status(e, RS_PENDING, 0) && !has_status(e, RS_FAILED, 0)) {
		log_info("queue id=%s result=done", e->id);
		spool_remove(e);
		envelope_free(e);
		return 1;
	}
	/* Pending recipients, or a bounce that could not be queued. */
	qcount.deferred++;
	e->attempts++;
	delay = retry_delay(e->attempts);
	/* A flush while this attempt ran: it still counts, so no wait. */
	if (last_flush != 0 && last_flush >= e->runstart)
		delay = 0;
	e->next_attempt = now + delay;
	if (e->next_attempt > e->created + proc->conf.maxqueuetime)
		e->next_attempt = e->created + proc->conf.maxqueuetime;
	spool_update(e);
	log_info("queue id=%s result=deferred attempts=%d retry=%llds "
	    "error=\"%s\"", e->id, e->attempts,
	    (long long)(e->next_attempt - now), e->lasterror);
	if (e->held)
		park(e);
	else
		wait_retry(e);
	return 0;
}

/*
 * The one way in to settle(): nothing of e under way, e on no list, and
 * runner_run not in the middle of starting it.
 */
static void
settle_if_idle(struct envelope *e)
{
	if (e->inflight == 0 && !e->ready && !e->waiting && e != running)
		settle(e);
}

/*
 * Start what can start. 0: out of slots, run this again once a reply
 * frees one; 1: everything that can run is under way (or failed);
 * 2: as 1, but some recipients wait for a busy domain.
 */
static int
run_one(struct envelope *e)
{
	size_t	i;
	int	r, out;

	if ((out = outbound_start(e)) == 0)
		return 0;
	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].status != RS_PENDING ||
		    e->rcpts[i].user[0] == '\0' || e->rcpts[i].inflight)
			continue;
		if ((r = start_delivery(e, i)) == 0)
			return 0;
		if (r == -1)
			break;	/* settle() defers the message */
	}
	return out;
}

static void
runner_run(int fd, short ev, void *arg)
{
	struct envelope	*e;
	int		 r;

	run_scheduled = 0;
	while (!stopping && (e = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, e, entry);
		e->ready = 0;
		e->runstart = time(NULL);
		running = e;
		r = run_one(e);
		running = NULL;
		if (r == 0) {
			/* Out of slots: the rest waits for replies. */
			e->ready = 1;
			TAILQ_INSERT_HEAD(&ready, e, entry);
			return;
		}
		if (r == 2) {
			e->ready = 1;	/* not settled while it waits */
			TAILQ_INSERT_TAIL(&blocked, e, entry);
			continue;
		}
		settle_if_idle(e);
	}
}

int
runner_deliver_reply(struct imsg *im)
{
	struct msgread	 mr;
	struct delivery	*d;
	struct envelope	*e;
	struct envrcpt	*r;
	char		 reason[256];
	uint32_t	 slot, result;

	mr_init(&mr, im);
	slot = mr_u32(&mr);
	result = mr_u32(&mr);
	mr_str(&mr, reason, sizeof(reason));
	if (mr_end(&mr) == -1 || slot >= MAX_INFLIGHT ||
	    (d = inflight[slot]) == NULL || result > DELIVER_CANCELLED ||
	    !envelope_field_ok(reason, sizeof(reason)))
		return -1;
	inflight[slot] = NULL;
	ninflight--;
	e = d->env;
	r = &e->rcpts[d->rcpt];
	free(d);
	r->inflight = 0;
	e->inflight--;
	if (result == DELIVER_OK) {
		r->status = RS_DONE;
		qcount.delivered_local++;
		metrics_delivered(e);
	} else if (result == DELIVER_PERM) {
		qcount.failed++;
		r->status = RS_FAILED;
		strlcpy(r->reason, reason, sizeof(r->reason));
	} else if (result == DELIVER_CANCELLED) {
		/* Asked for a removed message only: it leaves unsent. */
		log_info("queue id=%s to=<%s> result=cancelled", e->id,
		    r->address);
		if (!e->removed)
			strlcpy(e->lasterror, "451 4.3.0 local delivery "
			    "cancelled", sizeof(e->lasterror));
	} else
		strlcpy(e->lasterror, reason, sizeof(e->lasterror));
	/* Before settle() may free it: the remover's answer waits. */
	if (e->removed)
		qops_local_result(e, r->address, result,
		    runner_local_inflight(e));
	/* On the run list, it settles after its next run instead. */
	settle_if_idle(e);
	if (stopping && ninflight == 0 && !outbound_busy())
		spool_exit();
	schedule();
	return 0;
}

/* outbound went away: nothing under way there will answer. */
void
runner_outbound_gone(void)
{
	if (stopping && ninflight == 0)
		spool_exit();
}

/* An outbound attempt of e is over. */
/*
 * One slot of domain is free: the first message that waits for it runs
 * again. Only that one: waking every blocked message at each attempt's
 * end made a queue of N messages to one domain cost N runs per attempt.
 * The tick wakes them all once a second, should a woken message no
 * longer need the slot.
 */
void
runner_attempt_done(struct envelope *e, const char *domain)
{
	struct envelope	*b;

	settle_if_idle(e);
	TAILQ_FOREACH(b, &blocked, entry)
		if (strcasecmp(b->blocked_on, domain) == 0)
			break;
	if (b != NULL) {
		TAILQ_REMOVE(&blocked, b, entry);
		TAILQ_INSERT_TAIL(&ready, b, entry);
	}
	if (stopping && ninflight == 0 && !outbound_busy())
		spool_exit();
	schedule();
}

static void
stop_anyway(int fd, short ev, void *arg)
{
	log_warnx("runner: %d deliveries still under way at stop; they "
	    "are retried at the next start", ninflight);
	spool_exit();
}

/* Start nothing new; leave once the deliveries under way answered. */
void
runner_shutdown(void)
{
	struct timeval	tv = { 10, 0 };

	stopping = 1;
	if (ninflight == 0 && !outbound_busy())
		spool_exit();
	evtimer_set(&ev_stop, stop_anyway, NULL);
	event_base_set(proc->base, &ev_stop);
	evtimer_add(&ev_stop, &tv);
}

/* pymailadm flush: every waiting message is due now. */
void
runner_flush(void)
{
	struct envelope	*e;
	int		 n = 0;

	last_flush = time(NULL);
	TAILQ_FOREACH(e, &waiting, entry) {
		e->next_attempt = 0;
		n++;
	}
	log_info("queue flush: %d deferred messages retried now", n);
	tick(-1, 0, NULL);
}

static void
tick(int fd, short ev, void *arg)
{
	struct envelope	*e, *next;
	struct timeval	 tv = { TICK_SEC, 0 };
	time_t		 now = time(NULL);

	if (evtimer_pending(&ev_tick, NULL))
		evtimer_del(&ev_tick);
	TAILQ_FOREACH_SAFE(e, &waiting, entry, next) {
		if (e->next_attempt > now)
			continue;
		TAILQ_REMOVE(&waiting, e, entry);
		e->waiting = 0;
		e->ready = 1;
		TAILQ_INSERT_TAIL(&ready, e, entry);
		schedule();
	}
	if (!TAILQ_EMPTY(&blocked)) {
		TAILQ_CONCAT(&ready, &blocked, entry);
		schedule();
	}
	evtimer_add(&ev_tick, &tv);
}

void
runner_init(void)
{
	struct timeval	tv = { TICK_SEC, 0 };

	event_set(&ev_run, -1, 0, runner_run, NULL);
	event_base_set(proc->base, &ev_run);
	evtimer_set(&ev_tick, tick, NULL);
	event_base_set(proc->base, &ev_tick);
	evtimer_add(&ev_tick, &tv);
}

/* ---- pymailadm remove, hold, release (qops.c) ------------------------- */

static int
on_list(struct envlist *l, const struct envelope *e)
{
	struct envelope	*x;

	TAILQ_FOREACH(x, l, entry)
		if (x == e)
			return 1;
	return 0;
}

/* Take e off whichever list it is on. */
static void
unlist(struct envelope *e)
{
	if (e->parked)
		TAILQ_REMOVE(&onhold, e, entry);
	else if (e->waiting)
		TAILQ_REMOVE(&waiting, e, entry);
	else if (e->ready && on_list(&ready, e))
		TAILQ_REMOVE(&ready, e, entry);
	else if (e->ready)
		TAILQ_REMOVE(&blocked, e, entry);
	e->parked = e->waiting = e->ready = 0;
}

static void
collect_list(struct envlist *l, struct envelope ***v, size_t *n,
    size_t *cap)
{
	struct envelope	*e;

	TAILQ_FOREACH(e, l, entry)
		runner_collect_one(e, v, n, cap);
}

void
runner_collect_one(struct envelope *e, struct envelope ***v, size_t *n,
    size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = e;
}

/*
 * Every queued message once it has an envelope here: on a list, or
 * with deliveries under way (then maybe on no list at all). The caller
 * removes the duplicates; *v is its to free.
 */
void
runner_collect(struct envelope ***v, size_t *n)
{
	size_t	cap = 0, i;

	*v = NULL;
	*n = 0;
	collect_list(&ready, v, n, &cap);
	collect_list(&waiting, v, n, &cap);
	collect_list(&blocked, v, n, &cap);
	collect_list(&onhold, v, n, &cap);
	for (i = 0; i < MAX_INFLIGHT; i++)
		if (inflight[i] != NULL)
			runner_collect_one(inflight[i]->env, v, n, &cap);
	outbound_collect(v, n, &cap);
}

/* Local deliveries of e the parent has now. */
int
runner_local_inflight(const struct envelope *e)
{
	size_t	i;
	int	n = 0;

	for (i = 0; i < e->nrcpts; i++)
		n += e->rcpts[i].inflight && e->rcpts[i].user[0];
	return n;
}

/* The parent drops what it has of e not yet in a mailbox. */
static void
cancel_local(struct envelope *e)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_str(&mb, e->id);
	queued_send_parent(IMSG_DELIVER_CANCEL, &mb, -1);
}

/*
 * Remove e. Nothing under way: at once. Else its envelope goes now (a
 * restart does not bring it back), relaying and local deliveries are
 * cancelled, and settle() drops it when the last result is in, bouncing
 * nothing. Returns the local deliveries the parent has: each answers
 * "cancelled", or "delivered" if it reached the mailbox first.
 */
int
runner_remove(struct envelope *e)
{
	int	local;

	unlist(e);
	if (e->inflight == 0) {
		spool_remove(e);
		envelope_free(e);
		return 0;
	}
	e->removed = 1;
	spool_forget(e);
	outbound_cancel(e);
	if ((local = runner_local_inflight(e)) > 0)
		cancel_local(e);
	return local;
}

/* 0 done, 1 it was held already, -1 the envelope could not be kept. */
int
runner_hold(struct envelope *e)
{
	if (e->held || e->removed)
		return 1;
	e->held = 1;
	if (spool_update(e) == -1) {
		e->held = 0;
		return -1;
	}
	/* Under way: settle() parks it once the results are in. */
	if (e->inflight == 0) {
		unlist(e);
		park(e);
	}
	return 0;
}

/* 0 done (and due at once), 1 it was not held, -1 as runner_hold. */
int
runner_release(struct envelope *e)
{
	if (!e->held || e->removed)
		return 1;
	e->held = 0;
	e->next_attempt = 0;
	if (spool_update(e) == -1) {
		e->held = 1;
		return -1;
	}
	if (e->parked) {
		unlist(e);
		runner_add(e);
	}
	return 0;
}
