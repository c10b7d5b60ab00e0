/*
 * pymailadm remove, hold and release, relayed by the parent: find the
 * messages a request names, act on each, and answer the lines the
 * administrator reads. Each change is logged with the uid that asked.
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

struct answer {
	char	text[REPLY_MAX];
	int	ok;
	size_t	untold;		/* lines that did not fit */
};

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
		if (local > 0)
			say(a, "%s removed; its delivery to %d local "
			    "mailbox%s was already under way", id, local,
			    local == 1 ? "" : "es");
		else
			say(a, "%s removed", id);
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

/* IMSG_QUEUE_OP from the parent; peerid: its control connection. */
int
qops_dispatch(struct imsg *im)
{
	static struct qop	 q;
	static struct answer	 a;
	struct envelope		**v;
	struct msgbuild		  mb;
	size_t			  n;
	char			  more[64];

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
	if (a.untold > 0) {
		snprintf(more, sizeof(more), "... and %zu more\n", a.untold);
		strlcat(a.text, more, sizeof(a.text));
	}
	mb_init(&mb);
	mb_u32(&mb, a.ok);
	mb_str(&mb, a.text);
	if (chan_send(&proc->parent, &mb, IMSG_QUEUE_OP_REPLY,
	    im->hdr.peerid, -1) == -1)
		fatalx("cannot answer the parent");
	return 0;
}
