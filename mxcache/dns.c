/*
 * The helpers' DNS questions (dnsmsg.h): answers kept for their TTL,
 * one lookup however many ask the same question, and bounds a
 * compromised asker cannot push: lookups it started and answers it
 * waits for (refused with DNS_TEMPFAIL past them, never queued), and
 * the cache's entries and octets. An asker may start at most a quarter
 * of the queries the resolver keeps on the wire, so outbound's MX
 * lookups always find room.
 */
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mxcache.h"
#include "util.h"

#define DNS_CACHE_MAX		20000		/* entries */
#define DNS_CACHE_BYTES		(8 * 1024 * 1024)
#define ASKER_LOOKUPS_MAX	32		/* started and under way */
#define ASKER_WAITERS_MAX	2048		/* questions awaiting answers */

struct dnode {
	RB_ENTRY(dnode)	 entry;
	uint32_t	 qtype;
	char		 qname[MX_NAME_MAX + 1];
	time_t		 expires;
	uint32_t	 status, n;
	uint16_t	 off[DNS_RECORDS_MAX], len[DNS_RECORDS_MAX];
	size_t		 used;
	char		*data;
};

struct dwaiter {
	TAILQ_ENTRY(dwaiter)	 entry;
	struct dns_asker	*asker;
	uint32_t		 req, tag;
};

struct dpending {
	RB_ENTRY(dpending)	 entry;
	uint32_t		 qtype;
	char			 qname[MX_NAME_MAX + 1];
	struct dns_asker	*starter;
	TAILQ_HEAD(, dwaiter)	 waiters;
};

static int
dkey_cmp(uint32_t ta, const char *na, uint32_t tb, const char *nb)
{
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return strcmp(na, nb);
}

static int
dnode_cmp(struct dnode *a, struct dnode *b)
{
	return dkey_cmp(a->qtype, a->qname, b->qtype, b->qname);
}

static int
dpending_cmp(struct dpending *a, struct dpending *b)
{
	return dkey_cmp(a->qtype, a->qname, b->qtype, b->qname);
}

RB_HEAD(dnodes, dnode);
RB_HEAD(dpendings, dpending);
RB_GENERATE_STATIC(dnodes, dnode, entry, dnode_cmp);
RB_GENERATE_STATIC(dpendings, dpending, entry, dpending_cmp);

static struct dnodes		 cache = RB_INITIALIZER(&cache);
static struct dpendings		 pending = RB_INITIALIZER(&pending);
static size_t			 ncache, cachebytes;
static struct mxresolver	*resolver;

void
dns_init(struct mxresolver *res)
{
	resolver = res;
}

static size_t
dnode_cost(const struct dnode *d)
{
	return sizeof(*d) + d->used;
}

static void
dnode_remove(struct dnode *d)
{
	RB_REMOVE(dnodes, &cache, d);
	ncache--;
	cachebytes -= dnode_cost(d);
	free(d->data);
	free(d);
}

/* Room for one more of cost octets: the expired go, then those that
 * would expire first. */
static void
make_room(size_t cost)
{
	struct dnode	*d, *next, *first;
	time_t		 now = time(NULL);

	if (ncache < DNS_CACHE_MAX && cachebytes + cost <= DNS_CACHE_BYTES)
		return;
	RB_FOREACH_SAFE(d, dnodes, &cache, next)
		if (d->expires <= now)
			dnode_remove(d);
	while (ncache > 0 && (ncache >= DNS_CACHE_MAX ||
	    cachebytes + cost > DNS_CACHE_BYTES)) {
		first = NULL;
		RB_FOREACH(d, dnodes, &cache)
			if (first == NULL || d->expires < first->expires)
				first = d;
		dnode_remove(first);
	}
}

static struct dnode *
dnode_find(uint32_t qtype, const char *qname)
{
	struct dnode	key;

	key.qtype = qtype;
	strlcpy(key.qname, qname, sizeof(key.qname));
	return RB_FIND(dnodes, &cache, &key);
}

/* A temporary failure is passed on, never kept. */
static void
store(const struct dpending *p, const struct dns_answer *a)
{
	struct dnode	*d;

	if (a->status == DNS_TEMPFAIL)
		return;
	if ((d = dnode_find(p->qtype, p->qname)) != NULL)
		dnode_remove(d);
	d = xcalloc(1, sizeof(*d));
	d->qtype = p->qtype;
	strlcpy(d->qname, p->qname, sizeof(d->qname));
	d->expires = time(NULL) + a->ttl;
	d->status = a->status;
	d->n = a->n;
	memcpy(d->off, a->off, sizeof(d->off));
	memcpy(d->len, a->len, sizeof(d->len));
	d->used = a->used;
	d->data = xmalloc(a->used ? a->used : 1);
	memcpy(d->data, a->data, a->used);
	make_room(dnode_cost(d));
	RB_INSERT(dnodes, &cache, d);
	ncache++;
	cachebytes += dnode_cost(d);
}

static void
answer_from(struct dns_answer *a, const struct dnode *d, time_t now)
{
	a->status = d->status;
	a->ttl = d->expires - now;
	a->n = d->n;
	memcpy(a->off, d->off, sizeof(a->off));
	memcpy(a->len, d->len, sizeof(a->len));
	a->used = d->used;
	memcpy(a->data, d->data, d->used);
}

static void
reply(struct dns_asker *asker, uint32_t req, uint32_t tag,
    struct dns_answer *a)
{
	a->req = req;
	a->tag = tag;
	reply_dns(asker, a);
}

/* One line a second at most: a flood must not fill the disk. */
static void
refuse(struct dns_asker *asker, const struct dns_query *q, const char *why)
{
	struct dns_answer	*a = xcalloc(1, sizeof(*a));
	time_t			 now = time(NULL);

	if (now != asker->refused_at) {
		log_info("dns asker=%s qname=%s qtype=%s result=refused "
		    "reason=\"%s\" refused_unlogged=%u", asker->name, q->qname,
		    dns_qtype_name(q->qtype), why, asker->refused_quiet);
		asker->refused_at = now;
		asker->refused_quiet = 0;
	} else
		asker->refused_quiet++;
	a->qtype = q->qtype;
	a->status = DNS_TEMPFAIL;
	reply(asker, q->req, q->tag, a);
	free(a);
}

static void
looked_up(const struct dns_answer *res, const char *reason, void *arg)
{
	struct dpending		*p = arg;
	struct dwaiter		*w;
	struct dns_answer	*a = xmalloc(sizeof(*a));

	RB_REMOVE(dpendings, &pending, p);
	p->starter->lookups--;
	log_debug("dns qname=%s qtype=%s result=%s records=%u ttl=%u%s%s%s",
	    p->qname, dns_qtype_name(p->qtype), dns_status_name(res->status),
	    res->n, res->ttl, res->status == DNS_TEMPFAIL ? " reason=\"" : "",
	    res->status == DNS_TEMPFAIL ? reason : "",
	    res->status == DNS_TEMPFAIL ? "\"" : "");
	store(p, res);
	memcpy(a, res, sizeof(*a));
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		TAILQ_REMOVE(&p->waiters, w, entry);
		w->asker->waiters--;
		reply(w->asker, w->req, w->tag, a);
		free(w);
	}
	free(a);
	free(p);
}

void
dns_query(struct dns_asker *asker, const struct dns_query *q)
{
	struct dpending		 key, *p;
	struct dwaiter		*w;
	struct dnode		*d;
	struct dns_answer	*a;
	time_t			 now = time(NULL);

	if ((d = dnode_find(q->qtype, q->qname)) != NULL) {
		if (d->expires > now) {
			a = xcalloc(1, sizeof(*a));
			a->qtype = q->qtype;
			answer_from(a, d, now);
			reply(asker, q->req, q->tag, a);
			free(a);
			return;
		}
		dnode_remove(d);
	}
	if (asker->waiters >= ASKER_WAITERS_MAX) {
		refuse(asker, q, "too many questions under way");
		return;
	}
	key.qtype = q->qtype;
	strlcpy(key.qname, q->qname, sizeof(key.qname));
	if ((p = RB_FIND(dpendings, &pending, &key)) == NULL) {
		if (asker->lookups >= ASKER_LOOKUPS_MAX) {
			refuse(asker, q, "too many lookups under way");
			return;
		}
		p = xcalloc(1, sizeof(*p));
		p->qtype = q->qtype;
		strlcpy(p->qname, q->qname, sizeof(p->qname));
		p->starter = asker;
		TAILQ_INIT(&p->waiters);
		RB_INSERT(dpendings, &pending, p);
		asker->lookups++;
		dnslookup_start(resolver, p->qname, p->qtype, looked_up, p);
	}
	w = xcalloc(1, sizeof(*w));
	w->asker = asker;
	w->req = q->req;
	w->tag = q->tag;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
	asker->waiters++;
}
