/*
 * mxcache: MX resolution with ldns. The resolver is set up before the
 * chroot, since /etc/resolv.conf is not there afterwards; from then on
 * the process only talks DNS to it and imsg to outbound and the parent.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "mxcache.h"
#include "proc.h"
#include "sandbox.h"
#include "tlsamsg.h"

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

static void
tlsa_reply(const struct tlsa_reply *r, void *arg)
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

/* Not cached: a validating resolver, which DANE needs anyway, caches. */
static int
tlsa_lookup(struct imsg *im)
{
	struct msgread		mr;
	struct tlsa_reply	r;
	char			host[1024];
	uint32_t		req, port;

	mr_init(&mr, im);
	req = mr_u32(&mr);
	port = mr_u32(&mr);
	mr_str(&mr, host, sizeof(host));
	if (mr_end(&mr) == -1)
		return -1;
	if (tlsalookup_start(resolver, req, host, port > 65535 ? 0 : port,
	    tlsa_reply, NULL) == 0)
		return 0;
	memset(&r, 0, sizeof(r));
	r.req = req;
	r.status = TLSA_NONE;
	tlsa_reply(&r, NULL);
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
