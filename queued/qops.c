/*
 * pymailadm remove, hold and release, relayed by the parent: find the
 * messages a request names, act on each, and answer the lines the
 * administrator reads. Each change is logged with the uid that asked.
 *
 * A removal that finds local deliveries under way asks the parent to
 * cancel them; its answer waits for their results (at most
 * LOCAL_WAIT_SEC), so that it can say when one reached the mailbox
 * first.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "log.h"
#include "qop.h"
#include "queued.h"
#include "util.h"

/* The answer's text: within one message, with room for its header. */
#define REPLY_MAX	8192
/* A writer stuck on a sick disk does not keep pymailadm for ever. */
#define LOCAL_WAIT_SEC	10

struct answer {
	char	text[REPLY_MAX];
	int	ok;
	size_t	untold;		/* lines that did not fit */
};

/* An answer that waits for the local results of the messages it removed. */
struct waiting {
	TAILQ_ENTRY(waiting)	  entry;
	uint32_t		  peerid;	/* the control connection */
	struct answer		  a;
	struct event		  ev;
	struct envelope		**envs;		/* local deliveries out */
	size_t			  nenvs;
};

static TAILQ_HEAD(, waiting)	waitings = TAILQ_HEAD_INITIALIZER(waitings);
/* The messages of the request being answered whose results it awaits. */
static struct envelope		**await;
static size_t			  nawait, capawait;

static void
say(struct answer *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say(struct answer *a, const char *fmt, ...)
{
	char	line[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* keep room for the "N more" line */
	if (a->untold > 0 || strlen(a->text) + strlen(line) + 2 >
	    sizeof(a->text) - 64) {
		a->untold++;
		return;
	}
	strlcat(a->text, line, sizeof(a->text));
	strlcat(a->text, "\n", sizeof(a->text));
}

int
envelope_ptr_cmp(const void *a, const void *b)
{
	const struct envelope	*x = *(struct envelope *const *)a;
	const struct envelope	*y = *(struct envelope *const *)b;

	return x < y ? -1 : x > y;
}

static int
by_id(const void *a, const void *b)
{
	return strcmp((*(struct envelope *const *)a)->id,
	    (*(struct envelope *const *)b)->id);
}

/* Every queued message once, sorted by id. */
static struct envelope **
queued_messages(size_t *n)
{
	struct envelope	**v;
	size_t		  i, k = 0;

	runner_collect(&v, n);
	if (*n == 0)
		return v;
	qsort(v, *n, sizeof(*v), envelope_ptr_cmp);
	for (i = 0; i < *n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*n = k;
	qsort(v, *n, sizeof(*v), by_id);
	return v;
}

/* The slot of id in v, or NULL. */
static struct envelope **
find_id(struct envelope **v, size_t n, const char *id)
{
	struct envelope	key, *kp = &key;

	strlcpy(key.id, id, sizeof(key.id));
	return bsearch(&kp, v, n, sizeof(*v), by_id);
}

static void
act(const struct qop *q, struct envelope *e, struct answer *a)
{
	char	id[QUEUE_ID_LEN + 1];
	int	r, local;

	strlcpy(id, e->id, sizeof(id));	/* e may be freed */
	switch (q->op) {
	case QOP_REMOVE:
		local = runner_remove(e);
		qcount.removed++;
		log_info("queue id=%s result=removed by=uid:%u", id, q->uid);
		say(a, "%s removed", id);
		/* e stays until its results are in: qops_local_result */
		if (local > 0)
			runner_collect_one(e, &await, &nawait, &capawait);
		return;
	case QOP_HOLD:
		r = runner_hold(e);
		break;
	default:
		r = runner_release(e);
		break;
	}
	if (r == -1) {
		say(a, "%s: cannot write its envelope; nothing changed", id);
		a->ok = 0;
		return;
	}
	if (r == 1) {
		say(a, "%s was %s already", id, q->op == QOP_HOLD ? "held" :
		    "not held");
		return;
	}
	log_info("queue id=%s result=%s by=uid:%u", id, qop_verb(q->op),
	    q->uid);
	say(a, "%s %s", id, qop_verb(q->op));
}

/* Each slot is used once, then taken out: act() may free it. */
static void
act_on_ids(const struct qop *q, struct envelope **v, size_t n,
    struct answer *a)
{
	struct envelope	**slot, *e;
	size_t		  i;

	for (i = 0; i < q->nids; i++) {
		if ((slot = find_id(v, n, q->ids[i])) == NULL) {
			say(a, "%s: no such message in the queue", q->ids[i]);
			a->ok = 0;
			continue;
		}
		e = *slot;
		memmove(slot, slot + 1, (v + n - slot - 1) * sizeof(*v));
		n--;
		act(q, e, a);
	}
}

static void
act_on_matches(const struct qop *q, struct envelope **v, size_t n,
    struct answer *a)
{
	size_t	i, hits = 0;

	for (i = 0; i < n; i++) {
		if (v[i]->removed || !qop_matches(q, v[i]))
			continue;
		hits++;
		act(q, v[i], a);
	}
	if (hits == 0) {
		say(a, "No queued message has a %s matching %s.",
		    q->match == QMATCH_FROM ? "sender" : "recipient",
		    q->pattern);
		a->ok = 0;
	}
}

static void
answer_send(uint32_t peerid, struct answer *a)
{
	struct msgbuild	mb;
	char		more[64];

	if (a->untold > 0) {
		snprintf(more, sizeof(more), "... and %zu more\n", a->untold);
		strlcat(a->text, more, sizeof(a->text));
	}
	mb_init(&mb);
	mb_u32(&mb, a->ok);
	mb_str(&mb, a->text);
	if (chan_send(&proc->parent, &mb, IMSG_QUEUE_OP_REPLY, peerid,
	    -1) == -1)
		fatalx("cannot answer the parent");
}

static void
waiting_done(struct waiting *w)
{
	TAILQ_REMOVE(&waitings, w, entry);
	evtimer_del(&w->ev);
	answer_send(w->peerid, &w->a);
	free(w->envs);
	free(w);
}

/* Time is up: what is still out is the log's to tell. */
static void
waiting_timeout(int fd, short ev, void *arg)
{
	struct waiting	*w = arg;
	size_t		 i;

	for (i = 0; i < w->nenvs; i++)
		say(&w->a, "%s: its local delivery has not answered yet; "
		    "the log tells whether it was cancelled",
		    w->envs[i]->id);
	waiting_done(w);
}

/* The answer waits for the local results of the messages in await. */
static void
waiting_start(uint32_t peerid, const struct answer *a)
{
	struct timeval	 tv = { LOCAL_WAIT_SEC, 0 };
	struct waiting	*w = xcalloc(1, sizeof(*w));

	w->peerid = peerid;
	w->a = *a;
	w->envs = await;
	w->nenvs = nawait;
	await = NULL;
	nawait = capawait = 0;
	evtimer_set(&w->ev, waiting_timeout, w);
	event_base_set(proc->base, &w->ev);
	evtimer_add(&w->ev, &tv);
	TAILQ_INSERT_TAIL(&waitings, w, entry);
}

/*
 * A local delivery of the removed message e ended (left: how many are
 * still out). Called before e may be freed; an answer forgets e once
 * none is left.
 */
void
qops_local_result(struct envelope *e, const char *rcpt, uint32_t result,
    int left)
{
	struct waiting	*w, *next;
	size_t		 i;

	TAILQ_FOREACH_SAFE(w, &waitings, entry, next) {
		for (i = 0; i < w->nenvs && w->envs[i] != e; i++)
			;
		if (i == w->nenvs)
			continue;
		if (result == DELIVER_OK)
			say(&w->a, "%s: already delivered to <%s> when the "
			    "removal came", e->id, rcpt);
		if (left > 0)
			continue;
		w->envs[i] = w->envs[--w->nenvs];
		if (w->nenvs == 0)
			waiting_done(w);
	}
}

/* IMSG_QUEUE_OP from the parent; peerid: its control connection. */
int
qops_dispatch(struct imsg *im)
{
	static struct qop	 q;
	static struct answer	 a;
	struct envelope		**v;
	size_t			  n;

	if (im->fd != -1 || qop_read(im->data, im->datalen, 1, &q) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.ok = 1;
	if (q.op == QOP_SYNC) {
		if (held_finalize_all() == -1) {
			say(&a, "the newest messages could not be written to "
			    "the spool (see the log): they are not listed");
			a.ok = 0;
		}
	} else {
		v = queued_messages(&n);
		if (q.match == QMATCH_ID)
			act_on_ids(&q, v, n, &a);
		else
			act_on_matches(&q, v, n, &a);
		free(v);
	}
	if (nawait > 0)
		waiting_start(im->hdr.peerid, &a);
	else
		answer_send(im->hdr.peerid, &a);
	return 0;
}
