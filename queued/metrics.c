/*
 * pymailadm stats, queued's part: counters bumped where each event
 * happens (an increment, nothing more on any path a message takes), and
 * gauges of the queue worked out only when asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "child.h"
#include "log.h"
#include "queued.h"
#include "util.h"

/* From the 250 to the delivery: local ones take milliseconds, relayed
 * ones seconds, deferred ones minutes to days. */
static const uint64_t delivery_bounds[] = {
	10000, 50000, 100000, 500000, 1000000, 5000000, 30000000, 60000000,
	300000000, 900000000, 3600000000ULL, 14400000000ULL, 86400000000ULL
};

struct qcounters	qcount = {
	.delivery = { delivery_bounds, sizeof(delivery_bounds) /
	    sizeof(delivery_bounds[0]) }
};

static int64_t
wall_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
metrics_committed(struct envelope *e)
{
	e->committed_us = wall_us();
}

/* A message read back after a restart knows its second only. */
void
metrics_delivered(const struct envelope *e)
{
	int64_t	from, us;

	from = e->committed_us ? e->committed_us :
	    (int64_t)e->created * 1000000;
	us = wall_us() - from;
	hist_observe(&qcount.delivery, us > 0 ? (uint64_t)us : 0);
}

struct gauges {
	size_t		total, fresh, deferred, held, active;
	long long	oldest;		/* seconds */
};

static void
measure(struct gauges *g)
{
	struct envelope	**v;
	size_t		  n, i;
	time_t		  now = time(NULL);

	memset(g, 0, sizeof(*g));
	runner_collect(&v, &n);
	/* a message under way may be counted by each of its attempts */
	if (n > 0)
		qsort(v, n, sizeof(*v), envelope_ptr_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && v[i] == v[i - 1])
			continue;
		g->total++;
		if (v[i]->held)
			g->held++;
		else if (v[i]->attempts > 0)
			g->deferred++;
		else
			g->fresh++;
		if (v[i]->inflight > 0)
			g->active++;
		if (now - v[i]->created > g->oldest)
			g->oldest = now - v[i]->created;
	}
	free(v);
}

int
metrics_dispatch(struct imsg *im)
{
	struct gauges	g;
	struct msgbuild	mb;
	char		text[METRICS_TEXT_MAX];
	struct mtext	t;
	size_t		len;

	if (im->datalen != 0 || im->fd != -1)
		return -1;
	measure(&g);
	snprintf(text, sizeof(text),
	    "messages_accepted_total %llu\n"
	    "delivered_local_total %llu\n"
	    "relayed_total %llu\n"
	    "recipients_failed_total %llu\n"
	    "deferred_total %llu\n"
	    "bounced_total %llu\n"
	    "removed_total %llu\n"
	    "queue_messages %zu\n"
	    "queue_new %zu\n"
	    "queue_deferred %zu\n"
	    "queue_held %zu\n"
	    "queue_active %zu\n"
	    "queue_oldest_age_seconds %lld\n",
	    (unsigned long long)qcount.accepted,
	    (unsigned long long)qcount.delivered_local,
	    (unsigned long long)qcount.relayed,
	    (unsigned long long)qcount.failed,
	    (unsigned long long)qcount.deferred,
	    (unsigned long long)qcount.bounced,
	    (unsigned long long)qcount.removed,
	    g.total, g.fresh, g.deferred, g.held, g.active, g.oldest);
	len = strlen(text);
	mtext_init(&t, text + len, sizeof(text) - len);
	mtext_hist(&t, "delivery_seconds", &qcount.delivery);
	mb_init(&mb);
	mb_str(&mb, text);
	if (chan_send(&proc->parent, &mb, IMSG_METRICS_REPLY,
	    im->hdr.peerid, -1) == -1)
		fatalx("cannot answer the parent");
	return 0;
}
