/*
 * Messages the journal holds: acknowledged, queued, and not yet in files
 * of their own.
 *
 * Once its journal record is synced, a message goes to the runner at
 * once; its data stays in incoming/ID, queued's copy made at the commit,
 * and it gets no envelope file. Most local mail is delivered within
 * milliseconds, and is then simply given back to the file pool: no
 * envelope written, no renames, nothing more for the next sync to
 * write. A message still queued after HOLD_MS (a deferral, a slow remote
 * server) gets its files then: env/ID, and the data renamed to msg/ID.
 * Either way its journal record is no longer needed, which lets the
 * journal reuse its segment.
 *
 * All of this runs on the event loop, so a message is never half
 * written while the runner opens or removes it.
 */
#include <sys/tree.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define HOLD_MS		500	/* then it gets its files */
#define HOLD_TICK_MS	250
/* memfds kept for outbound: a burst, or files that cannot be written
 * (the journal then holds messages for long), must not take every
 * descriptor queued may open; past this, relaying copies as before. */
#define HELD_MEMFD_MAX	1024

struct held {
	RB_ENTRY(held)		 byid;
	TAILQ_ENTRY(held)	 entry;		/* oldest first */
	char			 id[QUEUE_ID_LEN + 1];
	struct envelope		*env;		/* the runner's */
	int			 seg;		/* its journal segment */
	struct timespec		 since;
	int			 warned;
	int			 memfd;		/* what smtpd wrote, sealed */
};

RB_HEAD(heldtree, held);
int	held_cmp(struct held *, struct held *);
RB_PROTOTYPE(heldtree, held, byid, held_cmp);

int
held_cmp(struct held *a, struct held *b)
{
	return strcmp(a->id, b->id);
}

RB_GENERATE(heldtree, held, byid, held_cmp);

static struct heldtree		 byid = RB_INITIALIZER(&byid);
static TAILQ_HEAD(, held)	 oldest = TAILQ_HEAD_INITIALIZER(oldest);
static struct event		 ev_tick;
static int			 ticking;
static int			 nmemfd;

static struct held *
held_find(const char *id)
{
	struct held	key;

	strlcpy(key.id, id, sizeof(key.id));
	return RB_FIND(heldtree, &byid, &key);
}

static void
held_free(struct held *h)
{
	RB_REMOVE(heldtree, &byid, h);
	TAILQ_REMOVE(&oldest, h, entry);
	journal_finalized(h->seg);
	if (h->memfd != -1) {
		close(h->memfd);
		nmemfd--;
	}
	free(h);
}

static long
age_ms(const struct held *h, const struct timespec *now)
{
	return (now->tv_sec - h->since.tv_sec) * 1000 +
	    (now->tv_nsec - h->since.tv_nsec) / 1000000;
}

/* Write h's envelope and move both files into the queue. */
static int
held_write(struct held *h)
{
	char	*text, path[64];
	int	 r;

	snprintf(path, sizeof(path), "incoming/%s.env", h->id);
	if ((text = envelope_format(h->env)) == NULL) {
		errno = EOVERFLOW;
		return -1;
	}
	r = spool_write_env(fpool_take(path), text, 0);
	free(text);
	if (r == -1 || spool_files_commit(h->id) == -1) {
		fpool_give(path, 0);
		return -1;
	}
	return 0;
}

/* Give e its files now, if it is held; -1 when that failed. */
int
held_finalize(const struct envelope *e)
{
	struct held	*h;

	if ((h = held_find(e->id)) == NULL)
		return 0;
	if (held_write(h) == -1) {
		if (!h->warned)
			log_warn("spool: cannot write the files of %s; the "
			    "journal keeps it meanwhile", h->id);
		h->warned = 1;
		return -1;
	}
	held_free(h);
	return 0;
}

static void
tick(int fd, short ev, void *arg)
{
	struct timeval	 tv = { 0, HOLD_TICK_MS * 1000 };
	struct timespec	 now;
	struct held	*h, *next;

	ticking = 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (h = TAILQ_FIRST(&oldest); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (age_ms(h, &now) < HOLD_MS)
			break;
		held_finalize(h->env);
	}
	if (!TAILQ_EMPTY(&oldest)) {
		evtimer_add(&ev_tick, &tv);
		ticking = 1;
	}
}

/*
 * A message durable in journal segment seg, its data in incoming/ID and
 * in memfd, the sealed memfd smtpd wrote it into (ours now), kept until
 * the message gets its files (HELD_MEMFD_MAX at most): the relaying of a
 * fresh message reads it from there.
 */
void
held_add(struct envelope *e, int seg, int memfd)
{
	struct timeval	 tv = { 0, HOLD_TICK_MS * 1000 };
	struct held	*h = xcalloc(1, sizeof(*h));

	strlcpy(h->id, e->id, sizeof(h->id));
	h->env = e;
	h->seg = seg;
	h->memfd = -1;
	if (nmemfd < HELD_MEMFD_MAX) {
		h->memfd = memfd;
		nmemfd++;
	} else
		close(memfd);
	clock_gettime(CLOCK_MONOTONIC, &h->since);
	RB_INSERT(heldtree, &byid, h);
	TAILQ_INSERT_TAIL(&oldest, h, entry);
	if (!ticking) {
		evtimer_add(&ev_tick, &tv);
		ticking = 1;
	}
}

/* Where e's data is: incoming/ID while held, else msg/ID. */
void
held_data_path(const struct envelope *e, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", held_find(e->id) ? "incoming" : "msg",
	    e->id);
}

/* The sealed memfd holding e's data while e is held, else -1. */
int
held_memfd(const struct envelope *e)
{
	struct held	*h;

	if ((h = held_find(e->id)) == NULL)
		return -1;
	return h->memfd;
}

/* e is done: if held, its data file goes back to the pool. 1 if it was. */
int
held_remove(const struct envelope *e)
{
	struct held	*h;
	char		 path[64];

	if ((h = held_find(e->id)) == NULL)
		return 0;
	snprintf(path, sizeof(path), "incoming/%s", h->id);
	if (fpool_give_data(path, e) == -1 && errno != ENOENT)
		log_warn("spool: unlink %s", path);
	held_free(h);
	return 1;
}

/*
 * At a clean stop, and before pymailadm lists the spool: every held
 * message gets its files. -1 when one could not (the journal keeps it).
 */
int
held_finalize_all(void)
{
	struct held	*h, *next;
	int		 r = 0;

	for (h = TAILQ_FIRST(&oldest); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (held_finalize(h->env) == -1)
			r = -1;
	}
	return r;
}

void
held_init(void)
{
	evtimer_set(&ev_tick, tick, NULL);
	event_base_set(proc->base, &ev_tick);
}
