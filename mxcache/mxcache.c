/*
 * mxcache: MX resolution with ldns. The resolver is set up before the
 * chroot, since /etc/resolv.conf is not there afterwards; from then on
 * the process only talks DNS to it and imsg to outbound and the parent.
 */
#include <sys/param.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "mxcache.h"
#include "proc.h"
#include "sandbox.h"
#include "tlsamsg.h"
#include "util.h"

#define DNS_ASKER_BACKLOG_MAX	(4 * 1024 * 1024)	/* octets */

static struct chan		 outbound, smtpd;
static struct mxresolver	*resolver;
static struct dns_asker		 smtpd_asker = { .name = "smtpd", .chan = &smtpd };

void
reply_lookup(uint32_t req, const struct mxentry *e, const char *reason)
{
	struct msgbuild	mb;
	size_t		order[MX_MAX_HOSTS], n = 0, i;
	const struct mxrr *rr;

	if (e->status == MX_OK)
		n = mx_try_order(e, order);
	mb_init(&mb);
	mb_u32(&mb, req);
	mb_u32(&mb, e->status);
	mb_str(&mb, reason);
	mb_u32(&mb, n);
	for (i = 0; i < n; i++) {
		rr = &e->rr[order[i]];
		mb_u32(&mb, rr->pref);
		mb_str(&mb, rr->host);
		mb_str(&mb, rr->addr);
	}
	if (chan_send(&outbound, &mb, IMSG_MX_REPLY, 0, -1) == -1)
		log_warnx("mx reply req=%u not sent", req);
}

void
reply_dns(struct dns_asker *asker, const struct dns_answer *a)
{
	struct msgbuild	mb;

	dns_build_answer(&mb, a);
	if (chan_send(asker->chan, &mb, IMSG_DNS_REPLY, 0, -1) == -1)
		log_warnx("dns reply to %s req=%u not sent", asker->name,
		    a->req);
}

/*
 * A compromised smtpd may ask anything: a payload out of shape closes
 * the channel, and what it may ask is bounded in dns.c. One that asks
 * and does not read its answers would grow our memory: past a backlog
 * no working smtpd reaches (thousands of answers), it is treated as
 * hostile too.
 */
static int
smtpd_dispatch(struct chan *c, struct imsg *im)
{
	struct dns_query	q;

	if (im->hdr.type != IMSG_DNS_QUERY || im->fd != -1 ||
	    dns_read_query(im->data, im->datalen, &q) == -1)
		return -1;
	if (c->ib.wqueued > DNS_ASKER_BACKLOG_MAX) {
		log_warnx("smtpd does not read its DNS answers (%zu octets "
		    "waiting)", c->ib.wqueued);
		return -1;
	}
	dns_query(&smtpd_asker, &q);
	return 0;
}

/* smtpd sent what it must not: it is compromised, so stop everything
 * (the parent sees us exit). Its plain exit is the parent's business. */
static void
smtpd_closed(struct chan *c)
{
	if (c->failure != NULL)
		fatalx("smtpd: %s; failing closed", c->failure);
	log_debug("mxcache: channel to smtpd closed");
}

void
reply_refresh(uint32_t peerid, unsigned ndomains, unsigned nfailed,
    const char *reason)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, ndomains);
	mb_u32(&mb, nfailed);
	mb_str(&mb, reason);
	chan_send(&proc->parent, &mb, IMSG_MX_REFRESH_DONE, peerid, -1);
}

void
send_save(int fd)
{
	chan_compose(&proc->parent, IMSG_MX_SAVE, 0, fd, NULL, 0);
}

/*
 * TLSA answers, kept for their TTL (at most TLSA_TTL_MAX) as MX answers
 * are: outbound asks before every session, and one question to the
 * resolver per message cost a round trip ahead of each session and a
 * third of mxcache's work. A failure is never kept. The records of a
 * rollover reach us once the old ones' TTL is over, as they would
 * through any caching resolver. Bounded: past TLSA_CACHE_MAX entries
 * the one that expires first makes room.
 */
#define TLSA_CACHE_MAX	256
#define TLSA_TTL_MAX	3600

struct tlsa_cached {
	char			 key[MX_NAME_MAX + 8];	/* host:port */
	time_t			 expires;
	struct tlsa_reply	 r;
};

static struct tlsa_cached	*tlsa_cache[TLSA_CACHE_MAX];

static void
tlsa_key(char *key, size_t len, const char *host, uint32_t port)
{
	char	norm[MX_NAME_MAX + 1];

	if (mx_domain_normalize(host, norm) == -1)
		strlcpy(norm, host, sizeof(norm));
	snprintf(key, len, "%s:%u", norm, port);
}

static struct tlsa_cached *
tlsa_cache_find(const char *key)
{
	time_t	now = time(NULL);
	size_t	i;

	for (i = 0; i < TLSA_CACHE_MAX; i++)
		if (tlsa_cache[i] != NULL && tlsa_cache[i]->expires > now &&
		    strcmp(tlsa_cache[i]->key, key) == 0)
			return tlsa_cache[i];
	return NULL;
}

static void
tlsa_cache_put(const char *key, const struct tlsa_reply *r, uint32_t ttl)
{
	struct tlsa_cached	*c;
	size_t			 i, slot = 0;

	if (ttl == 0 || r->status == TLSA_TEMPFAIL)
		return;
	for (i = 0; i < TLSA_CACHE_MAX; i++) {
		if (tlsa_cache[i] == NULL ||
		    strcmp(tlsa_cache[i]->key, key) == 0) {
			slot = i;
			break;
		}
		if (tlsa_cache[i]->expires < tlsa_cache[slot]->expires)
			slot = i;
	}
	if ((c = tlsa_cache[slot]) == NULL)
		c = tlsa_cache[slot] = xcalloc(1, sizeof(*c));
	strlcpy(c->key, key, sizeof(c->key));
	c->expires = time(NULL) + MIN(ttl, TLSA_TTL_MAX);
	c->r = *r;
}

static void
tlsa_send(const struct tlsa_reply *r)
{
	struct msgbuild	mb;

	if (r->status != TLSA_NONE)
		log_debug("tlsa req=%u status=%u authentic=%u records=%u "
		    "reason=\"%s\"", r->req, r->status, r->authentic, r->n,
		    r->reason);
	tlsa_build_reply(&mb, r);
	if (chan_send(&outbound, &mb, IMSG_TLSA_REPLY, 0, -1) == -1)
		log_warnx("tlsa reply req=%u not sent", r->req);
}

static void
tlsa_reply(const struct tlsa_reply *r, uint32_t ttl, void *arg)
{
	char	*key = arg;

	tlsa_cache_put(key, r, ttl);
	free(key);
	tlsa_send(r);
}

static int
tlsa_lookup(struct imsg *im)
{
	struct msgread		 mr;
	struct tlsa_reply	 r;
	struct tlsa_cached	*c;
	char			 host[1024], key[MX_NAME_MAX + 8], *arg;
	uint32_t		 req, port;

	mr_init(&mr, im);
	req = mr_u32(&mr);
	port = mr_u32(&mr);
	mr_str(&mr, host, sizeof(host));
	if (mr_end(&mr) == -1)
		return -1;
	tlsa_key(key, sizeof(key), host, port);
	if ((c = tlsa_cache_find(key)) != NULL) {
		log_debug("tlsa key=%s source=cache", key);
		r = c->r;
		r.req = req;
		tlsa_send(&r);
		return 0;
	}
	log_debug("tlsa key=%s source=dns", key);
	arg = xstrdup(key);
	if (tlsalookup_start(resolver, req, host, port > 65535 ? 0 : port,
	    tlsa_reply, arg) == 0)
		return 0;
	free(arg);
	memset(&r, 0, sizeof(r));
	r.req = req;
	r.status = TLSA_NONE;
	tlsa_send(&r);
	return 0;
}

static int
outbound_dispatch(struct chan *c, struct imsg *im)
{
	struct msgread	mr;
	char		domain[1024];
	uint32_t	req;

	if (im->hdr.type == IMSG_TLSA_LOOKUP && im->fd == -1)
		return tlsa_lookup(im);
	if (im->hdr.type != IMSG_MX_LOOKUP || im->fd != -1)
		return -1;
	mr_init(&mr, im);
	req = mr_u32(&mr);
	mr_str(&mr, domain, sizeof(domain));
	if (mr_end(&mr) == -1)
		return -1;
	cache_lookup(req, domain);
	return 0;
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	int	r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	switch (im->hdr.type) {
	case IMSG_MX_LOAD:
		if (im->fd == -1 || im->datalen != 0)
			return -1;
		cache_load(im->fd);
		close(im->fd);
		return 0;
	case IMSG_MX_REFRESH:
		if (im->fd != -1 || im->datalen != 0)
			return -1;
		cache_refresh(im->hdr.peerid);
		return 0;
	default:
		return -1;
	}
}

static void
reloaded(void)
{
	mxresolver_reconfigure(resolver, &proc->conf);
	log_debug("mxcache: resolver %s", mxresolver_name(resolver));
}

static void
shutdown_now(void)
{
	/* Best effort: the parent may be gone before it reads this. */
	cache_flush();
	imsgbuf_flush_all(&proc->parent.ib);
	exit(0);
}

int
main(int argc, char *argv[])
{
	char	warn[256];

	child_start(argc, argv, PROC_MXCACHE);
	resolver = mxresolver_new(proc->base, &proc->conf, warn,
	    sizeof(warn));
	if (warn[0])
		log_warnx("mxcache: %s", warn);
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_peer(&outbound, PROC_OUTBOUND, outbound_dispatch);
	child_peer(&smtpd, PROC_SMTPD, smtpd_dispatch);
	smtpd.closed = smtpd_closed;
	cache_init(resolver);
	dns_init(resolver);
	proc->reloaded = reloaded;
	proc->shutdown = shutdown_now;
	child_ready(parent_dispatch);
	sandbox_enter(PROC_MXCACHE);
	log_debug("mxcache: resolver %s", mxresolver_name(resolver));
	event_base_dispatch(proc->base);
	return 0;
}
