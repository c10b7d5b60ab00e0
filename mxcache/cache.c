/*
 * The MX cache: answers by domain, with the lookups under way and who
 * waits for them. A domain is looked up once however many ask for it;
 * a temporary failure is passed on but never stored.
 */
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "mxcache.h"
#include "util.h"

#define CACHE_MAX_DOMAINS	10000	/* bounds memory and the file */
#define PENDING_MAX		10000	/* lookups under way */
#define SAVE_DELAY_SEC		1	/* many changes, one save */

struct node {
	RB_ENTRY(node)	 entry;
	struct mxentry	 e;		/* e.domain is the key */
};

/* One IMSG_MX_REFRESH: answered when its last domain is done. */
struct batch {
	uint32_t	peerid;
	unsigned	ndomains, left, nfailed;
	char		reason[MX_REASON_MAX];
};

struct waiter {
	TAILQ_ENTRY(waiter)	 entry;
	uint32_t		 req;
	struct batch		*batch;		/* NULL: outbound asked */
};

struct pending {
	RB_ENTRY(pending)	 entry;
	char			 domain[MX_NAME_MAX + 1];
	TAILQ_HEAD(, waiter)	 waiters;
};

RB_HEAD(nodes, node);
RB_HEAD(pendings, pending);
int	node_cmp(struct node *, struct node *);
int	pending_cmp(struct pending *, struct pending *);
RB_PROTOTYPE(nodes, node, entry, node_cmp);
RB_PROTOTYPE(pendings, pending, entry, pending_cmp);

int
node_cmp(struct node *a, struct node *b)
{
	return strcmp(a->e.domain, b->e.domain);
}

int
pending_cmp(struct pending *a, struct pending *b)
{
	return strcmp(a->domain, b->domain);
}

RB_GENERATE(nodes, node, entry, node_cmp);
RB_GENERATE(pendings, pending, entry, pending_cmp);

static struct nodes		 cache = RB_INITIALIZER(&cache);
static struct pendings		 pending = RB_INITIALIZER(&pending);
static size_t			 ncache, npending;
static struct mxresolver	*resolver;
static struct event		 ev_save;
static int			 dirty;

static void	save_now(void);

static void
save_timer(int fd, short what, void *arg)
{
	save_now();
}

void
cache_init(struct mxresolver *res)
{
	resolver = res;
	evtimer_set(&ev_save, save_timer, NULL);
	event_base_set(proc->base, &ev_save);
}

static void
changed(void)
{
	struct timeval	tv = { SAVE_DELAY_SEC, 0 };

	dirty = 1;
	if (!evtimer_pending(&ev_save, NULL))
		evtimer_add(&ev_save, &tv);
}

static struct node *
node_find(const char *domain)
{
	struct node	key;

	strlcpy(key.e.domain, domain, sizeof(key.e.domain));
	return RB_FIND(nodes, &cache, &key);
}

static void
node_remove(struct node *n)
{
	RB_REMOVE(nodes, &cache, n);
	mxentry_free(&n->e);
	free(n);
	ncache--;
}

static void
purge_expired(void)
{
	struct node	*n, *next;
	time_t		 now = time(NULL);

	RB_FOREACH_SAFE(n, nodes, &cache, next)
		if (n->e.expires <= now)
			node_remove(n);
}

/* Full: the expired go, else the one that would expire first. */
static void
make_room(void)
{
	struct node	*n, *first = NULL;

	purge_expired();
	if (ncache < CACHE_MAX_DOMAINS)
		return;
	RB_FOREACH(n, nodes, &cache)
		if (first == NULL || n->e.expires < first->e.expires)
			first = n;
	if (first)
		node_remove(first);
}

static void
store(const struct mxentry *e)
{
	struct node	*n = node_find(e->domain);

	if (e->status == MX_TEMPFAIL) {
		/* Keep a still valid answer; drop a stale one. */
		if (n != NULL && n->e.expires <= time(NULL)) {
			node_remove(n);
			changed();
		}
		return;
	}
	if (n == NULL) {
		if (ncache >= CACHE_MAX_DOMAINS)
			make_room();
		n = xcalloc(1, sizeof(*n));
		strlcpy(n->e.domain, e->domain, sizeof(n->e.domain));
		RB_INSERT(nodes, &cache, n);
		ncache++;
	} else
		mxentry_free(&n->e);
	mxentry_copy(&n->e, e);
	changed();
}

static void
batch_done(struct batch *b, int failed, const char *reason)
{
	if (failed && b->nfailed++ == 0)
		strlcpy(b->reason, reason, sizeof(b->reason));
	if (--b->left > 0)
		return;
	/* Saved before the answer, so the file is written by the time
	 * pymailadm says so. */
	save_now();
	reply_refresh(b->peerid, b->ndomains, b->nfailed, b->reason);
	free(b);
}

static void
looked_up(const struct mxentry *e, const char *reason, void *arg)
{
	struct pending	*p = arg;
	struct waiter	*w;

	RB_REMOVE(pendings, &pending, p);
	npending--;
	if (e->status == MX_OK)
		log_debug("mx domain=%s result=ok addresses=%zu ttl=%lld",
		    p->domain, e->n, (long long)(e->expires - time(NULL)));
	else
		log_info("mx domain=%s result=%s reason=\"%s\"", p->domain,
		    mx_status_name(e->status), reason);
	store(e);
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		TAILQ_REMOVE(&p->waiters, w, entry);
		if (w->batch)
			batch_done(w->batch, e->status == MX_TEMPFAIL, reason);
		else
			reply_lookup(w->req, e, reason);
		free(w);
	}
	free(p);
}

/* Join the lookup of domain, starting it if need be. -1 when too many
 * are under way. */
static int
wait_for(const char *domain, uint32_t req, struct batch *b)
{
	struct pending	 key, *p;
	struct waiter	*w;

	strlcpy(key.domain, domain, sizeof(key.domain));
	if ((p = RB_FIND(pendings, &pending, &key)) == NULL) {
		if (npending >= PENDING_MAX)
			return -1;
		p = xcalloc(1, sizeof(*p));
		strlcpy(p->domain, domain, sizeof(p->domain));
		TAILQ_INIT(&p->waiters);
		RB_INSERT(pendings, &pending, p);
		npending++;
		mxlookup_start(resolver, domain, looked_up, p);
	}
	w = xcalloc(1, sizeof(*w));
	w->req = req;
	w->batch = b;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
	return 0;
}

void
cache_lookup(uint32_t req, const char *domain)
{
	struct mxentry	 e;
	struct node	*n;
	char		 name[MX_NAME_MAX + 1];

	memset(&e, 0, sizeof(e));
	if (mx_domain_normalize(domain, name) == -1) {
		e.status = MX_NXDOMAIN;
		reply_lookup(req, &e, "invalid domain name");
		return;
	}
	if ((n = node_find(name)) != NULL && n->e.expires > time(NULL)) {
		reply_lookup(req, &n->e, mx_status_reason(n->e.status));
		return;
	}
	if (wait_for(name, req, NULL) == -1) {
		e.status = MX_TEMPFAIL;
		reply_lookup(req, &e, "too many MX lookups under way");
	}
}

void
cache_refresh(uint32_t peerid)
{
	struct batch	*b = xcalloc(1, sizeof(*b));
	struct node	*n;

	b->peerid = peerid;
	b->ndomains = ncache;
	/* One more, dropped at the end, so the batch cannot finish
	 * while the domains are still being handed out. */
	b->left = ncache + 1;
	RB_FOREACH(n, nodes, &cache)
		if (wait_for(n->e.domain, 0, b) == -1)
			batch_done(b, 1, "too many MX lookups under way");
	batch_done(b, 0, "");
}

void
cache_load(int fd)
{
	struct mxset	 set;
	struct node	*n;
	char		*text, err[256];
	size_t		 len, i, kept = 0;
	time_t		 now = time(NULL);

	if (mxfile_read_fd(fd, MXFILE_MAX, &text, &len) == -1) {
		log_warn("%s: cannot read it; starting with an empty MX "
		    "cache", proc->conf.mxcachefile);
		return;
	}
	if (mxfile_parse(text, len, &set, err, sizeof(err)) == -1) {
		log_warnx("%s: corrupt, %s; starting with an empty MX "
		    "cache", proc->conf.mxcachefile, err);
		free(text);
		return;
	}
	free(text);
	if ((i = mxset_clamp(&set, now, MX_TTL_MAX)) > 0)
		log_warnx("%s: %zu entries expired more than %d s from "
		    "now; they expire then", proc->conf.mxcachefile, i,
		    MX_TTL_MAX);
	for (i = 0; i < set.n && ncache < CACHE_MAX_DOMAINS; i++) {
		/* What was looked up meanwhile is newer. */
		if (set.v[i].expires <= now || node_find(set.v[i].domain))
			continue;
		n = xcalloc(1, sizeof(*n));
		mxentry_copy(&n->e, &set.v[i]);
		RB_INSERT(nodes, &cache, n);
		ncache++;
		kept++;
	}
	log_info("mx cache loaded: domains=%zu expired=%zu", kept,
	    set.n - kept);
	mxset_free(&set);
}

static void
save_now(void)
{
	struct node	*n;
	FILE		*fp;
	char		*text = NULL;
	size_t		 len = 0;
	int		 fd;

	evtimer_del(&ev_save);
	if (!dirty)
		return;
	dirty = 0;
	purge_expired();
	if ((fp = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	mxfile_print_header(fp);
	RB_FOREACH(n, nodes, &cache)
		mxfile_print(fp, &n->e);
	if (fclose(fp) != 0)
		fatal("open_memstream");
	if (len > MXFILE_MAX) {
		log_warnx("mx cache too large to save (%zu bytes)", len);
		free(text);
		return;
	}
	if ((fd = memfd_create(MXFILE_NAME, MFD_CLOEXEC)) == -1 ||
	    write(fd, text, len) != (ssize_t)len) {
		log_warn("mx cache not saved: memfd");
		if (fd != -1)
			close(fd);
	} else
		send_save(fd);
	free(text);
}

void
cache_flush(void)
{
	save_now();
}
