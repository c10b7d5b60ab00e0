#include <sys/param.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "log.h"
#include "mxlookup.h"
#include "util.h"

/*
 * Two tries per server 2.5 s apart, as a stub resolver does; a resolver
 * that is down then costs a lookup 5 s, and the message waits in the
 * queue rather than bouncing.
 */
#define DNS_TIMEOUT_MS		2500
#define DNS_TRIES		2	/* per server */
#define DNS_MAX_SERVERS		3	/* as MAXNS in resolv.h */
#define DNS_MAX_INFLIGHT	128	/* queries on the wire; others wait */
#define CNAME_MAX_HOPS		8
#define RESOLV_CONF		"/etc/resolv.conf"

struct server {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

struct mxresolver {
	struct event_base	*base;
	struct server		 srv[DNS_MAX_SERVERS];
	size_t			 nsrv;
	struct server		 sys[DNS_MAX_SERVERS];	/* resolv.conf */
	size_t			 nsys;
	char			 name[INET6_ADDRSTRLEN + 16];
	int			 inflight;
	TAILQ_HEAD(, dnsq)	 waiting;
	struct event		 pump;		/* sends what waits */
	int			 pumpset;
};

typedef void	(*dnsq_done)(void *arg, ldns_pkt *answer, const char *err);

/* One question to the resolver, with its retries. */
struct dnsq {
	TAILQ_ENTRY(dnsq)	 entry;
	struct mxresolver	*res;
	ldns_rdf		*qname;
	ldns_rr_type		 qtype;
	uint16_t		 id;
	uint8_t			*wire;		/* 2-byte TCP length first */
	size_t			 wirelen;	/* without it */
	int			 fd;
	struct event		 ev, timer;
	int			 evset, timerset;
	int			 tries;
	int			 tcp;
	int			 connected;	/* TCP */
	size_t			 off;		/* TCP: written, then read */
	uint8_t			*rbuf;		/* TCP answer, length first */
	char			 err[MX_REASON_MAX];
	dnsq_done		 done;
	void			*arg;
};

static uint8_t	udpbuf[65536];

/* ------------------------------------------------------------------ */
/* The resolver's addresses. */

static int
server_set(struct server *s, const char *addr, int port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&s->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&s->ss;

	memset(s, 0, sizeof(*s));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		s->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		s->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void
server_text(const struct server *s, char *buf, size_t len)
{
	const struct sockaddr_in	*sin = (const void *)&s->ss;
	const struct sockaddr_in6	*sin6 = (const void *)&s->ss;
	char				 a[INET6_ADDRSTRLEN];

	if (s->ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%d", a, ntohs(sin->sin_port));
	} else {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%d", a, ntohs(sin6->sin6_port));
	}
}

/* Only the nameserver lines matter to us; a scoped IPv6 address
 * (fe80::1%eth0) is skipped. */
static void
read_resolv_conf(struct mxresolver *res)
{
	FILE	*fp;
	char	*line = NULL, *p, *word, *addr;
	size_t	 cap = 0;

	if ((fp = fopen(RESOLV_CONF, "re")) == NULL)
		return;
	while (getline(&line, &cap, fp) != -1 && res->nsys < DNS_MAX_SERVERS) {
		p = line;
		word = strsep(&p, " \t\r\n");
		if (word == NULL || strcmp(word, "nameserver") != 0 ||
		    p == NULL)
			continue;
		p += strspn(p, " \t");
		addr = strsep(&p, " \t\r\n");
		if (addr && server_set(&res->sys[res->nsys], addr, 53) == 0)
			res->nsys++;
	}
	free(line);
	fclose(fp);
}

void
mxresolver_reconfigure(struct mxresolver *res, const struct config *conf)
{
	if (conf->resolverhost != NULL &&
	    server_set(&res->srv[0], conf->resolverhost,
	    conf->resolverport) == 0)
		res->nsrv = 1;
	else if (res->nsys > 0) {
		memcpy(res->srv, res->sys, sizeof(res->srv));
		res->nsrv = res->nsys;
	} else {
		server_set(&res->srv[0], "127.0.0.1", 53);
		res->nsrv = 1;
	}
	server_text(&res->srv[0], res->name, sizeof(res->name));
}

static void	dnsq_pump(struct mxresolver *);

static void
pump_event(int fd, short what, void *arg)
{
	dnsq_pump(arg);
}

struct mxresolver *
mxresolver_new(struct event_base *base, const struct config *conf,
    char *warn, size_t warnlen)
{
	struct mxresolver	*res = xcalloc(1, sizeof(*res));

	res->base = base;
	TAILQ_INIT(&res->waiting);
	evtimer_set(&res->pump, pump_event, res);
	event_base_set(base, &res->pump);
	/* Even with `resolver` set: a reload may empty it later, and
	 * resolv.conf cannot be read from the chroot. */
	read_resolv_conf(res);
	mxresolver_reconfigure(res, conf);
	warn[0] = '\0';
	if (conf->resolverhost == NULL && res->nsys == 0)
		snprintf(warn, warnlen, "no nameserver in %s: using %s",
		    RESOLV_CONF, res->name);
	return res;
}

void
mxresolver_free(struct mxresolver *res)
{
	if (res->inflight > 0 || !TAILQ_EMPTY(&res->waiting))
		fatalx("mxresolver_free with queries under way");
	if (res->pumpset)
		event_del(&res->pump);
	free(res);
}

const char *
mxresolver_name(const struct mxresolver *res)
{
	return res->name;
}

/* ------------------------------------------------------------------ */
/* One query: UDP, TCP when truncated, retries, a timeout per try. */

static void	dnsq_send(struct dnsq *);
static void	dnsq_event(int, short, void *);

static void
dnsq_close(struct dnsq *q)
{
	if (q->evset)
		event_del(&q->ev);
	q->evset = 0;
	if (q->timerset)
		evtimer_del(&q->timer);
	q->timerset = 0;
	if (q->fd != -1)
		close(q->fd);
	q->fd = -1;
}

static int
dnsq_max_tries(const struct dnsq *q)
{
	return (int)q->res->nsrv * DNS_TRIES;
}

static void
dnsq_pump(struct mxresolver *res)
{
	struct dnsq	*q;

	res->pumpset = 0;
	while (res->inflight < DNS_MAX_INFLIGHT &&
	    (q = TAILQ_FIRST(&res->waiting)) != NULL) {
		TAILQ_REMOVE(&res->waiting, q, entry);
		res->inflight++;
		dnsq_send(q);
	}
}

/* The end of a query: answer is NULL on failure, the callee frees it. */
static void
dnsq_finish(struct dnsq *q, ldns_pkt *answer)
{
	struct mxresolver	*res = q->res;

	dnsq_close(q);
	res->inflight--;
	q->done(q->arg, answer, answer ? "" : q->err);
	ldns_rdf_deep_free(q->qname);
	free(q->wire);
	free(q->rbuf);
	free(q);
	dnsq_pump(res);
}

static void
dnsq_fail(struct dnsq *q, const char *fmt)
{
	dnsq_close(q);
	/* Keep the first reason: later ones are mostly timeouts. */
	if (q->err[0] == '\0' || strncmp(q->err, "no answer", 9) == 0)
		snprintf(q->err, sizeof(q->err), fmt, q->res->name);
	if (++q->tries >= dnsq_max_tries(q)) {
		dnsq_finish(q, NULL);
		return;
	}
	q->tcp = 0;
	dnsq_send(q);
}

static void
dnsq_wait(struct dnsq *q, short what)
{
	if (q->evset)
		event_del(&q->ev);
	event_set(&q->ev, q->fd, what, dnsq_event, q);
	event_base_set(q->res->base, &q->ev);
	event_add(&q->ev, NULL);
	q->evset = 1;
}

int
mxanswer_matches(const ldns_pkt *p, uint16_t id, ldns_rr_type type,
    const ldns_rdf *qname)
{
	ldns_rr_list	*qs = ldns_pkt_question(p);
	ldns_rr		*rr;

	if (ldns_pkt_id(p) != id || !ldns_pkt_qr(p) || qs == NULL ||
	    ldns_rr_list_rr_count(qs) != 1)
		return 0;
	rr = ldns_rr_list_rr(qs, 0);
	return ldns_rr_get_type(rr) == type &&
	    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
	    ldns_dname_compare(ldns_rr_owner(rr), qname) == 0;
}

/* Is this the answer to our question? Anything else is ignored. */
static int
dnsq_matches(const struct dnsq *q, const ldns_pkt *p)
{
	return mxanswer_matches(p, q->id, q->qtype, q->qname);
}

/* A server that fails to answer this question: another may know. */
static int
rcode_try_next(ldns_pkt_rcode rc)
{
	return rc == LDNS_RCODE_SERVFAIL || rc == LDNS_RCODE_REFUSED ||
	    rc == LDNS_RCODE_NOTIMPL;
}

/* 1 when the query is over or moved on, 0 to keep waiting. */
static int
dnsq_answer(struct dnsq *q, const uint8_t *buf, size_t len)
{
	ldns_pkt	*p = NULL;

	if (!q->tcp && len >= LDNS_HEADER_SIZE && LDNS_TC_WIRE(buf) &&
	    LDNS_ID_WIRE(buf) == q->id) {
		/* Cut short, maybe in the middle of a record: ask over TCP
		 * before trying to parse it. */
		dnsq_close(q);
		q->tcp = 1;
		dnsq_send(q);
		return 1;
	}
	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK) {
		dnsq_fail(q, "garbled answer from resolver %s");
		return 1;
	}
	if (!dnsq_matches(q, p)) {
		ldns_pkt_free(p);
		if (!q->tcp)
			return 0;	/* spoofed or stray: wait on */
		dnsq_fail(q, "mismatched answer from resolver %s");
		return 1;
	}
	if (rcode_try_next(ldns_pkt_get_rcode(p)) && q->res->nsrv > 1 &&
	    q->tries + 1 < dnsq_max_tries(q)) {
		ldns_pkt_free(p);
		dnsq_fail(q, "resolver %s failed to answer");
		return 1;
	}
	dnsq_finish(q, p);
	return 1;
}

static void
udp_read(struct dnsq *q)
{
	ssize_t	n;

	for (;;) {
		n = recv(q->fd, udpbuf, sizeof(udpbuf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n == -1) {
			/* ICMP port unreachable: nobody listens there. */
			dnsq_fail(q, "no answer from resolver %s");
			return;
		}
		if (dnsq_answer(q, udpbuf, n))
			return;
	}
	dnsq_wait(q, EV_READ);
}

static int
tcp_write(struct dnsq *q)
{
	ssize_t	n;
	size_t	total = q->wirelen + 2;
	int	soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (!q->connected) {
		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1 ||
		    soerr != 0)
			return -1;
		q->connected = 1;
	}
	while (q->off < total) {
		n = send(q->fd, q->wire + q->off, total - q->off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			dnsq_wait(q, EV_WRITE);
			return 0;
		}
		if (n <= 0)
			return -1;
		q->off += n;
	}
	q->off = 0;
	dnsq_wait(q, EV_READ);
	return 0;
}

/* The answer: a 2-byte length, then that many bytes. */
static void
tcp_read(struct dnsq *q)
{
	size_t	want;
	ssize_t	n;

	if (q->rbuf == NULL)
		q->rbuf = xmalloc(2 + 65535);
	for (;;) {
		want = q->off < 2 ? 2 : 2 + ((size_t)q->rbuf[0] << 8 |
		    q->rbuf[1]);
		if (q->off == want && want > 2) {
			dnsq_answer(q, q->rbuf + 2, want - 2);
			return;
		}
		n = recv(q->fd, q->rbuf + q->off, want - q->off, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			dnsq_wait(q, EV_READ);
			return;
		}
		if (n <= 0) {
			dnsq_fail(q, "resolver %s closed the TCP connection");
			return;
		}
		q->off += n;
	}
}

static void
dnsq_event(int fd, short what, void *arg)
{
	struct dnsq	*q = arg;

	q->evset = 0;
	if (!q->tcp)
		udp_read(q);
	else if (what & EV_WRITE) {
		if (tcp_write(q) == -1)
			dnsq_fail(q, "no TCP connection to resolver %s");
	} else
		tcp_read(q);
}

static void
dnsq_timeout(int fd, short what, void *arg)
{
	dnsq_fail(arg, "no answer from resolver %s");
}

static void
dnsq_send(struct dnsq *q)
{
	struct server	*s = &q->res->srv[q->tries % q->res->nsrv];
	struct timeval	 tv = { DNS_TIMEOUT_MS / 1000,
	    (DNS_TIMEOUT_MS % 1000) * 1000 };
	int		 type = q->tcp ? SOCK_STREAM : SOCK_DGRAM;

	q->off = 0;
	q->connected = 0;
	evtimer_set(&q->timer, dnsq_timeout, q);
	event_base_set(q->res->base, &q->timer);
	evtimer_add(&q->timer, &tv);
	q->timerset = 1;
	q->fd = socket(s->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (q->fd == -1) {
		snprintf(q->err, sizeof(q->err), "socket: %s",
		    strerror(errno));
		dnsq_finish(q, NULL);
		return;
	}
	/* Connected, so only the server's address and port can answer. */
	if (connect(q->fd, (struct sockaddr *)&s->ss, s->len) == -1 &&
	    errno != EINPROGRESS) {
		dnsq_fail(q, "no answer from resolver %s");
		return;
	}
	if (q->tcp) {
		dnsq_wait(q, EV_WRITE);
		return;
	}
	if (send(q->fd, q->wire + 2, q->wirelen, 0) != (ssize_t)q->wirelen) {
		dnsq_fail(q, "no answer from resolver %s");
		return;
	}
	dnsq_wait(q, EV_READ);
}

/*
 * Ask the resolver; done runs later, never from in here. dnssec sets
 * the DO bit, without which a validating resolver never sets AD.
 */
static void
dnsq_start_flags(struct mxresolver *res, const char *name,
    ldns_rr_type type, int dnssec, dnsq_done done, void *arg)
{
	struct dnsq	*q = xcalloc(1, sizeof(*q));
	ldns_pkt	*p;
	uint8_t		*wire;

	q->res = res;
	q->fd = -1;
	q->qtype = type;
	q->done = done;
	q->arg = arg;
	q->id = (uint16_t)arc4random_uniform(65536);
	if ((q->qname = ldns_dname_new_frm_str(name)) == NULL)
		fatalx("ldns: cannot make a name of %s", name);
	p = ldns_pkt_query_new(ldns_rdf_clone(q->qname), type,
	    LDNS_RR_CLASS_IN, LDNS_RD);
	if (p == NULL)
		fatalx("ldns: cannot make a query");
	ldns_pkt_set_id(p, q->id);
	if (dnssec) {
		/* The size RFC 9715 advises against fragmentation. */
		ldns_pkt_set_edns_udp_size(p, 1232);
		ldns_pkt_set_edns_do(p, 1);
	}
	if (ldns_pkt2wire(&wire, p, &q->wirelen) != LDNS_STATUS_OK ||
	    q->wirelen > 65535)
		fatalx("ldns: cannot encode a query for %s", name);
	ldns_pkt_free(p);
	/* Room for the TCP length in front, so both share one buffer. */
	q->wire = xmalloc(q->wirelen + 2);
	q->wire[0] = q->wirelen >> 8;
	q->wire[1] = q->wirelen & 0xff;
	memcpy(q->wire + 2, wire, q->wirelen);
	free(wire);
	TAILQ_INSERT_TAIL(&res->waiting, q, entry);
	if (!res->pumpset) {
		event_active(&res->pump, EV_TIMEOUT, 1);
		res->pumpset = 1;
	}
}

static void
dnsq_start(struct mxresolver *res, const char *name, ldns_rr_type type,
    dnsq_done done, void *arg)
{
	dnsq_start_flags(res, name, type, 0, done, arg);
}

/* ------------------------------------------------------------------ */
/* The MX lookup: MX first, then A and AAAA of every host at once. */

struct mxlookup;

struct hostq {
	struct mxhost	*h;
	int		 v6;
};

struct mxhost {
	struct mxlookup	*lk;
	uint16_t	 pref;
	char		 name[MX_NAME_MAX + 1];
	uint32_t	 ttl;
	int		 tempfail;
	size_t		 n4, n6;
	char		 a4[MX_MAX_HOSTS][INET6_ADDRSTRLEN];
	char		 a6[MX_MAX_HOSTS][INET6_ADDRSTRLEN];
	struct hostq	 q[2];
};

struct mxlookup {
	struct mxresolver	*res;
	char			 domain[MX_NAME_MAX + 1];
	mxlookup_done		 done;
	void			*arg;
	uint32_t		 ttl;		/* of the MX answer */
	struct mxhost		*hosts;
	size_t			 nhosts;
	int			 pending;	/* host queries */
	char			 reason[MX_REASON_MAX];
	int			 status;	/* of an early end */
	struct event		 ev;		/* for that early end */
};

static time_t
expiry(int status, uint32_t ttl)
{
	if (status != MX_OK)
		ttl = MX_TTL_NEG;
	else if (ttl < MX_TTL_MIN)
		ttl = MX_TTL_MIN;
	else if (ttl > MX_TTL_MAX)
		ttl = MX_TTL_MAX;
	return time(NULL) + ttl;
}

static void
lookup_free(struct mxlookup *lk)
{
	free(lk->hosts);
	free(lk);
}

/* Report and free; e's records, if any, are freed here too. */
static void
lookup_done(struct mxlookup *lk, struct mxentry *e, const char *reason)
{
	strlcpy(e->domain, lk->domain, sizeof(e->domain));
	if (e->status == MX_TEMPFAIL)
		e->n = 0;
	lk->done(e, reason[0] ? reason : mx_status_reason(e->status),
	    lk->arg);
	mxentry_free(e);
	lookup_free(lk);
}

static void
lookup_fail(struct mxlookup *lk, int status, const char *reason)
{
	struct mxentry	e;

	memset(&e, 0, sizeof(e));
	e.status = status;
	e.expires = expiry(status, 0);
	lookup_done(lk, &e, reason);
}

static void
early_end(int fd, short what, void *arg)
{
	struct mxlookup	*lk = arg;

	lookup_fail(lk, lk->status, lk->reason);
}

/* End a lookup from the loop, not from inside mxlookup_start. */
static void
lookup_fail_later(struct mxlookup *lk, int status, const char *reason)
{
	lk->status = status;
	strlcpy(lk->reason, reason, sizeof(lk->reason));
	evtimer_set(&lk->ev, early_end, lk);
	event_base_set(lk->res->base, &lk->ev);
	event_active(&lk->ev, EV_TIMEOUT, 1);
}

/* Where a chain of CNAMEs in the answer leads from name. */
static const ldns_rdf *
follow_cnames(const ldns_rr_list *an, const ldns_rdf *name, uint32_t *ttl)
{
	const ldns_rr	*rr;
	size_t		 i, hops;
	int		 found = 1;

	for (hops = 0; hops < CNAME_MAX_HOPS && found; hops++) {
		found = 0;
		for (i = 0; i < ldns_rr_list_rr_count(an) && !found; i++) {
			rr = ldns_rr_list_rr(an, i);
			if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME ||
			    ldns_rr_rd_count(rr) != 1 ||
			    ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
				continue;
			name = ldns_rr_rdf(rr, 0);
			*ttl = MIN(*ttl, ldns_rr_ttl(rr));
			found = 1;
		}
	}
	return name;
}

/* The records of the answer for name (after CNAMEs) of this type. */
static int
answer_rr(const ldns_rr *rr, const ldns_rdf *name, ldns_rr_type type)
{
	return ldns_rr_get_type(rr) == type &&
	    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
	    ldns_dname_compare(ldns_rr_owner(rr), name) == 0;
}

/* A name from the wire as our text form; -1 when it is not a host name
 * we could write down (escapes, odd characters). */
static int
dname_text(const ldns_rdf *rdf, char out[MX_NAME_MAX + 1])
{
	char	*s;
	int	 r;

	if (ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME ||
	    (s = ldns_rdf2str(rdf)) == NULL)
		return -1;
	r = mx_domain_normalize(s, out);
	free(s);
	return r;
}

size_t
mxanswer_addresses(const ldns_pkt *p, int v6,
    char (*addr)[INET6_ADDRSTRLEN], size_t max, uint32_t *ttl)
{
	ldns_rr_list	*an = ldns_pkt_answer(p);
	const ldns_rdf	*name, *rdf;
	ldns_rr		*rr;
	size_t		 i, n = 0;

	/* The caller checked there is exactly our question. */
	name = follow_cnames(an, ldns_rr_owner(ldns_rr_list_rr(
	    ldns_pkt_question(p), 0)), ttl);
	for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
		rr = ldns_rr_list_rr(an, i);
		if (!answer_rr(rr, name, v6 ? LDNS_RR_TYPE_AAAA :
		    LDNS_RR_TYPE_A) || ldns_rr_rd_count(rr) != 1)
			continue;
		rdf = ldns_rr_rdf(rr, 0);
		if (n < max && ldns_rdf_size(rdf) == (v6 ? 16 : 4))
			inet_ntop(v6 ? AF_INET6 : AF_INET, ldns_rdf_data(rdf),
			    addr[n++], INET6_ADDRSTRLEN);
		*ttl = MIN(*ttl, ldns_rr_ttl(rr));
	}
	return n;
}

static void
host_addresses(struct mxhost *h, ldns_pkt *p, int v6)
{
	uint32_t	 ttl = UINT32_MAX;

	if (v6)
		h->n6 += mxanswer_addresses(p, 1, h->a6 + h->n6,
		    MX_MAX_HOSTS - h->n6, &ttl);
	else
		h->n4 += mxanswer_addresses(p, 0, h->a4 + h->n4,
		    MX_MAX_HOSTS - h->n4, &ttl);
	h->ttl = MIN(h->ttl, ttl);
}

static void
rcode_reason(char *buf, size_t len, struct mxresolver *res, ldns_pkt *p,
    const char *name, const char *type)
{
	ldns_lookup_table	*lt;
	const char		*rc = "an error";

	lt = ldns_lookup_by_id(ldns_rcodes, ldns_pkt_get_rcode(p));
	if (lt != NULL && lt->name != NULL)
		rc = lt->name;
	snprintf(buf, len, "resolver %s answered %s for %.80s %s",
	    mxresolver_name(res), rc, name, type);
}

/* Every host answered: the addresses in the order to try. */
static void
lookup_assemble(struct mxlookup *lk)
{
	struct mxentry	 e;
	struct mxhost	*h;
	uint32_t	 ttl = lk->ttl;
	size_t		 i, j;
	int		 tempfail = 0;

	memset(&e, 0, sizeof(e));
	e.rr = xcalloc(MX_MAX_HOSTS, sizeof(*e.rr));
	for (i = 0; i < lk->nhosts; i++) {
		h = &lk->hosts[i];
		tempfail |= h->tempfail;
		if (h->n4 + h->n6 == 0 || e.n == MX_MAX_HOSTS)
			continue;
		ttl = MIN(ttl, h->ttl);
		for (j = 0; j < h->n4 + h->n6 && e.n < MX_MAX_HOSTS; j++) {
			e.rr[e.n].pref = h->pref;
			strlcpy(e.rr[e.n].host, h->name, sizeof(e.rr[0].host));
			strlcpy(e.rr[e.n].addr, j < h->n4 ? h->a4[j] :
			    h->a6[j - h->n4], sizeof(e.rr[0].addr));
			e.n++;
		}
	}
	if (e.n == 0)
		e.status = tempfail ? MX_TEMPFAIL : MX_NOHOSTS;
	else if (tempfail)
		ttl = MX_TTL_MIN;	/* partial: ask again soon */
	e.expires = expiry(e.status, ttl);
	lookup_done(lk, &e, e.status == MX_TEMPFAIL ? lk->reason : "");
}

static void
host_answer(void *arg, ldns_pkt *p, const char *err)
{
	struct hostq	*hq = arg;
	struct mxhost	*h = hq->h;
	struct mxlookup	*lk = h->lk;

	if (p == NULL) {
		h->tempfail = 1;
		if (lk->reason[0] == '\0')
			strlcpy(lk->reason, err, sizeof(lk->reason));
	} else if (ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR)
		host_addresses(h, p, hq->v6);
	else if (ldns_pkt_get_rcode(p) != LDNS_RCODE_NXDOMAIN) {
		h->tempfail = 1;
		if (lk->reason[0] == '\0')
			rcode_reason(lk->reason, sizeof(lk->reason), lk->res,
			    p, h->name, hq->v6 ? "AAAA" : "A");
	}
	if (p != NULL)
		ldns_pkt_free(p);
	if (--lk->pending == 0)
		lookup_assemble(lk);
}

static void
ask_hosts(struct mxlookup *lk)
{
	struct mxhost	*h;
	size_t		 i;
	int		 v6;

	for (i = 0; i < lk->nhosts; i++) {
		h = &lk->hosts[i];
		h->lk = lk;
		h->ttl = UINT32_MAX;
		for (v6 = 0; v6 < 2; v6++) {
			h->q[v6].h = h;
			h->q[v6].v6 = v6;
			lk->pending++;
			dnsq_start(lk->res, h->name, v6 ? LDNS_RR_TYPE_AAAA :
			    LDNS_RR_TYPE_A, host_answer, &h->q[v6]);
		}
	}
}

/*
 * Keep the MX_MAX_HOSTS best in preference order, each name once with
 * its best preference, the one seen first ahead among equals (mxcache
 * shuffles those for each reply). Bounded whatever the answer holds.
 */
static void
keep_best(struct mxname *best, size_t *n, uint16_t pref, const char *name)
{
	size_t	i, at;

	for (i = 0; i < *n; i++) {
		if (strcmp(best[i].name, name) != 0)
			continue;
		if (best[i].pref <= pref)
			return;
		memmove(&best[i], &best[i + 1], (*n - i - 1) * sizeof(*best));
		(*n)--;
		break;
	}
	for (at = *n; at > 0 && best[at - 1].pref > pref; at--)
		;
	if (at == MX_MAX_HOSTS)
		return;
	if (*n == MX_MAX_HOSTS)
		(*n)--;
	memmove(&best[at + 1], &best[at], (*n - at) * sizeof(*best));
	best[at].pref = pref;
	strlcpy(best[at].name, name, sizeof(best[at].name));
	(*n)++;
}

size_t
mxanswer_hosts(const ldns_pkt *p, struct mxname *best, size_t *n,
    uint32_t *ttl, int *nullmx)
{
	ldns_rr_list	*an = ldns_pkt_answer(p);
	const ldns_rdf	*name;
	ldns_rr		*rr;
	char		 host[MX_NAME_MAX + 1];
	size_t		 i, nmx = 0;

	*n = 0;
	name = follow_cnames(an, ldns_rr_owner(ldns_rr_list_rr(
	    ldns_pkt_question(p), 0)), ttl);
	for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
		rr = ldns_rr_list_rr(an, i);
		if (!answer_rr(rr, name, LDNS_RR_TYPE_MX) ||
		    ldns_rr_rd_count(rr) != 2)
			continue;
		nmx++;
		*ttl = MIN(*ttl, ldns_rr_ttl(rr));
		if (ldns_rdf_size(ldns_rr_mx_exchange(rr)) == 1)
			*nullmx = 1;
		else if (dname_text(ldns_rr_mx_exchange(rr), host) == 0)
			keep_best(best, n, ldns_rdf2native_int16(
			    ldns_rr_mx_preference(rr)), host);
	}
	return nmx;
}

/*
 * The hosts of the MX records, best first. Returns how many MX records
 * there were at all; *nullmx when one of them is ".".
 */
static size_t
collect_hosts(struct mxlookup *lk, ldns_pkt *p, int *nullmx)
{
	struct mxname	*best;
	size_t		 i, nmx, n;

	best = xcalloc(MX_MAX_HOSTS, sizeof(*best));
	nmx = mxanswer_hosts(p, best, &n, &lk->ttl, nullmx);
	/* One at least: the implicit MX uses it. */
	lk->hosts = xcalloc(n ? n : 1, sizeof(*lk->hosts));
	for (i = 0; i < n; i++) {
		lk->hosts[i].pref = best[i].pref;
		strlcpy(lk->hosts[i].name, best[i].name,
		    sizeof(lk->hosts[i].name));
	}
	lk->nhosts = n;
	free(best);
	return nmx;
}

static void
mx_answer(void *arg, ldns_pkt *p, const char *err)
{
	struct mxlookup	*lk = arg;
	size_t		 nmx;
	int		 nullmx = 0;

	if (p == NULL) {
		lookup_fail(lk, MX_TEMPFAIL, err);
		return;
	}
	switch (ldns_pkt_get_rcode(p)) {
	case LDNS_RCODE_NOERROR:
		break;
	case LDNS_RCODE_NXDOMAIN:
		ldns_pkt_free(p);
		lookup_fail(lk, MX_NXDOMAIN, "");
		return;
	default:
		rcode_reason(lk->reason, sizeof(lk->reason), lk->res, p,
		    lk->domain, "MX");
		ldns_pkt_free(p);
		lookup_fail(lk, MX_TEMPFAIL, lk->reason);
		return;
	}
	nmx = collect_hosts(lk, p, &nullmx);
	ldns_pkt_free(p);
	if (nullmx && lk->nhosts == 0) {
		lookup_fail(lk, MX_NULLMX, "");
		return;
	}
	if (nmx == 0) {
		/* RFC 5321 5.1: the domain itself, preference 0. */
		lk->nhosts = 1;
		lk->hosts[0].pref = 0;
		strlcpy(lk->hosts[0].name, lk->domain,
		    sizeof(lk->hosts[0].name));
	}
	if (lk->nhosts == 0) {
		lookup_fail(lk, MX_NOHOSTS, "");
		return;
	}
	ask_hosts(lk);
}

void
mxlookup_start(struct mxresolver *res, const char *domain,
    mxlookup_done done, void *arg)
{
	struct mxlookup	*lk = xcalloc(1, sizeof(*lk));

	lk->res = res;
	lk->done = done;
	lk->arg = arg;
	lk->ttl = UINT32_MAX;
	if (mx_domain_normalize(domain, lk->domain) == -1) {
		strlcpy(lk->domain, "-", sizeof(lk->domain));
		lookup_fail_later(lk, MX_NXDOMAIN, "invalid domain name");
		return;
	}
	dnsq_start(res, lk->domain, LDNS_RR_TYPE_MX, mx_answer, lk);
}

/* A host's run of addresses in an entry. */
struct group {
	size_t	 start, len;
};

static int
same_host(const struct mxrr *a, const struct mxrr *b)
{
	return a->pref == b->pref && strcmp(a->host, b->host) == 0;
}

size_t
mx_try_order(const struct mxentry *e, size_t order[MX_MAX_HOSTS])
{
	struct group	g[MX_MAX_HOSTS], t;
	size_t		ng = 0, n = 0, i, j, k, a, b;
	size_t		max = e->n < MX_MAX_HOSTS ? e->n : MX_MAX_HOSTS;

	for (i = 0; i < max; i++) {
		if (i > 0 && same_host(&e->rr[i], &e->rr[i - 1])) {
			g[ng - 1].len++;
			continue;
		}
		g[ng].start = i;
		g[ng++].len = 1;
	}
	for (a = 0; a < ng; a = b) {
		for (b = a + 1; b < ng && e->rr[g[b].start].pref ==
		    e->rr[g[a].start].pref; b++)
			;
		for (j = b - 1; j > a; j--) {
			k = a + arc4random_uniform(j - a + 1);
			t = g[j];
			g[j] = g[k];
			g[k] = t;
		}
	}
	for (a = 0; a < ng; a++)
		for (i = 0; i < g[a].len; i++)
			order[n++] = g[a].start + i;
	return n;
}

int
mxrefresh_summary(char *buf, size_t len, unsigned ndomains,
    unsigned nfailed, const char *reason)
{
	if (nfailed == 0) {
		snprintf(buf, len, "MX cache refreshed: %u domain%s.\n",
		    ndomains, ndomains == 1 ? "" : "s");
		return 0;
	}
	if (nfailed == ndomains)
		snprintf(buf, len, "updatemx: %s", reason);
	else
		snprintf(buf, len, "updatemx: %u of %u domains not refreshed: "
		    "%s", nfailed, ndomains, reason);
	return -1;
}

/* ------------------------------------------------------------------ */
/*
 * The TLSA lookup of an MX host (RFC 7672 2.2): _PORT._tcp.HOST with the
 * DO bit. When it fails, the host's address is asked too, again with DO:
 * an authentic address means a signed zone, where a failed TLSA lookup
 * may be an attacker hiding the records, so outbound must not downgrade.
 */
struct tlsalookup {
	struct mxresolver	*res;
	char			 host[MX_NAME_MAX + 1];
	struct tlsa_reply	 r;
	uint32_t		 ttl;		/* how long r holds; 0: ask again */
	tlsalookup_done		 done;
	void			*arg;
};

static void
tlsa_rr_take(const ldns_rr *rr, struct tlsa_reply *r)
{
	const ldns_rdf	*data;
	struct tlsa_rr	*t;

	if (ldns_rr_rd_count(rr) != 4 || r->n == TLSA_RECORDS_MAX)
		return;
	data = ldns_rr_rdf(rr, 3);
	if (ldns_rdf_size(ldns_rr_rdf(rr, 0)) != 1 ||
	    ldns_rdf_size(ldns_rr_rdf(rr, 1)) != 1 ||
	    ldns_rdf_size(ldns_rr_rdf(rr, 2)) != 1 ||
	    ldns_rdf_size(data) == 0 || ldns_rdf_size(data) > TLSA_DATA_MAX)
		return;
	t = &r->rr[r->n++];
	t->usage = ldns_rdf2native_int8(ldns_rr_rdf(rr, 0));
	t->selector = ldns_rdf2native_int8(ldns_rr_rdf(rr, 1));
	t->mtype = ldns_rdf2native_int8(ldns_rr_rdf(rr, 2));
	t->len = ldns_rdf_size(data);
	memcpy(t->data, ldns_rdf_data(data), t->len);
}

size_t
tlsanswer_records(const ldns_pkt *p, struct tlsa_reply *r)
{
	ldns_rr_list	*an = ldns_pkt_answer(p);
	const ldns_rdf	*name;
	uint32_t	 ttl = UINT32_MAX;
	size_t		 i, ntlsa = 0;

	r->n = 0;
	name = follow_cnames(an, ldns_rr_owner(ldns_rr_list_rr(
	    ldns_pkt_question(p), 0)), &ttl);
	for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
		if (!answer_rr(ldns_rr_list_rr(an, i), name,
		    LDNS_RR_TYPE_TLSA))
			continue;
		ntlsa++;
		tlsa_rr_take(ldns_rr_list_rr(an, i), r);
	}
	return ntlsa;
}

/* The smallest TTL of the records (and CNAMEs) that made the answer. */
static uint32_t
tlsanswer_ttl(const ldns_pkt *p)
{
	ldns_rr_list	*an = ldns_pkt_answer(p);
	const ldns_rdf	*name;
	uint32_t	 ttl = UINT32_MAX;
	size_t		 i;

	name = follow_cnames(an, ldns_rr_owner(ldns_rr_list_rr(
	    ldns_pkt_question(p), 0)), &ttl);
	for (i = 0; i < ldns_rr_list_rr_count(an); i++)
		if (answer_rr(ldns_rr_list_rr(an, i), name, LDNS_RR_TYPE_TLSA))
			ttl = MIN(ttl, ldns_rr_ttl(ldns_rr_list_rr(an, i)));
	return ttl;
}

static void
tlsa_finish(struct tlsalookup *tl)
{
	tl->done(&tl->r, tl->ttl, tl->arg);
	free(tl);
}

static void
tlsa_host_answer(void *arg, ldns_pkt *p, const char *err)
{
	struct tlsalookup	*tl = arg;

	tl->r.authentic = p != NULL && ldns_pkt_ad(p) &&
	    ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR;
	if (p != NULL)
		ldns_pkt_free(p);
	tlsa_finish(tl);
}

static void
tlsa_failed(struct tlsalookup *tl, const char *why)
{
	tl->r.status = TLSA_TEMPFAIL;
	tl->r.n = 0;
	tl->ttl = 0;
	text_printable(tl->r.reason, sizeof(tl->r.reason), why, strlen(why));
	dnsq_start_flags(tl->res, tl->host, LDNS_RR_TYPE_A, 1,
	    tlsa_host_answer, tl);
}

static void
tlsa_answer(void *arg, ldns_pkt *p, const char *err)
{
	struct tlsalookup	*tl = arg;
	char			 why[MX_REASON_MAX];

	if (p == NULL) {
		tlsa_failed(tl, err);
		return;
	}
	switch (ldns_pkt_get_rcode(p)) {
	case LDNS_RCODE_NOERROR:
		tl->r.status = tlsanswer_records(p, &tl->r) > 0 ?
		    TLSA_FOUND : TLSA_NONE;
		tl->ttl = tl->r.status == TLSA_FOUND ? tlsanswer_ttl(p) :
		    MX_TTL_NEG;
		break;
	case LDNS_RCODE_NXDOMAIN:
		tl->r.status = TLSA_NONE;
		tl->ttl = MX_TTL_NEG;
		break;
	default:
		rcode_reason(why, sizeof(why), tl->res, p, tl->host, "TLSA");
		ldns_pkt_free(p);
		tlsa_failed(tl, why);
		return;
	}
	tl->r.authentic = ldns_pkt_ad(p) ? 1 : 0;
	ldns_pkt_free(p);
	tlsa_finish(tl);
}

int
tlsalookup_start(struct mxresolver *res, uint32_t req, const char *host,
    int port, tlsalookup_done done, void *arg)
{
	struct tlsalookup	*tl;
	char			 norm[MX_NAME_MAX + 1], name[MX_NAME_MAX + 1];
	int			 len;

	if (port < 1 || port > 65535 || mx_domain_normalize(host, norm) == -1)
		return -1;
	len = snprintf(name, sizeof(name), "_%d._tcp.%s", port, norm);
	/* 253: the longest name DNS holds, written without the root dot */
	if (len < 0 || len > 253)
		return -1;
	tl = xcalloc(1, sizeof(*tl));
	tl->res = res;
	tl->done = done;
	tl->arg = arg;
	tl->r.req = req;
	strlcpy(tl->host, norm, sizeof(tl->host));
	dnsq_start_flags(res, name, LDNS_RR_TYPE_TLSA, 1, tlsa_answer, tl);
	return 0;
}

/* ------------------------------------------------------------------ */
/*
 * One question for a helper (dnsmsg.h): A, AAAA, TXT, PTR or MX of a name,
 * the records of the answer as text. CNAMEs are followed only inside
 * the answer (the resolver chases them; a loop there ends the walk
 * after CNAME_MAX_HOPS and finds no record), so one question is one
 * query on the wire whatever the answer says.
 */
struct dnslookup {
	struct mxresolver	*res;
	struct dns_answer	 a;
	char			 qname[MX_NAME_MAX + 1];
	dnslookup_done		 done;
	void			*arg;
};

static ldns_rr_type
ldns_type_of(uint32_t qtype)
{
	switch (qtype) {
	case DNS_T_A:
		return LDNS_RR_TYPE_A;
	case DNS_T_AAAA:
		return LDNS_RR_TYPE_AAAA;
	case DNS_T_TXT:
		return LDNS_RR_TYPE_TXT;
	case DNS_T_MX:
		return LDNS_RR_TYPE_MX;
	default:
		return LDNS_RR_TYPE_PTR;
	}
}

/* A TXT record's character-strings, joined (RFC 7208 3.3). */
static int
txt_join(const ldns_rr *rr, char *out, size_t *len)
{
	const ldns_rdf	*rdf;
	const uint8_t	*d;
	size_t		 i, n = 0;

	for (i = 0; i < ldns_rr_rd_count(rr); i++) {
		rdf = ldns_rr_rdf(rr, i);
		d = ldns_rdf_data(rdf);
		if (ldns_rdf_size(rdf) < 1 || d[0] != ldns_rdf_size(rdf) - 1)
			return -1;
		if (d[0] > DNS_RECORD_MAX - n)
			return -1;
		memcpy(out + n, d + 1, d[0]);
		n += d[0];
	}
	*len = n;
	return 0;
}

/* The record as text in out (DNS_RECORD_MAX + 1 octets): 0, -1 when it
 * is malformed, 1 when it is to be skipped (a PTR name we cannot
 * write down). */
static int
record_text(const ldns_rr *rr, uint32_t qtype, char *out, size_t *len)
{
	const ldns_rdf	*rdf;

	if (qtype == DNS_T_TXT)
		return txt_join(rr, out, len);
	/* MX: the exchange; a null MX's "." is no name, and skipped. */
	if (ldns_rr_rd_count(rr) != (qtype == DNS_T_MX ? 2 : 1))
		return -1;
	rdf = ldns_rr_rdf(rr, qtype == DNS_T_MX ? 1 : 0);
	switch (qtype) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (ldns_rdf_size(rdf) != (qtype == DNS_T_A ? 4 : 16))
			return -1;
		inet_ntop(qtype == DNS_T_A ? AF_INET : AF_INET6,
		    ldns_rdf_data(rdf), out, INET6_ADDRSTRLEN);
		break;
	default:
		if (dname_text(rdf, out) == -1)
			return 1;
		break;
	}
	*len = strlen(out);
	return 0;
}

int
dnsanswer_records(const ldns_pkt *p, uint32_t qtype, struct dns_answer *a,
    uint32_t *ttl)
{
	ldns_rr_list	*an = ldns_pkt_answer(p);
	const ldns_rdf	*name;
	ldns_rr		*rr;
	char		 text[DNS_RECORD_MAX + 1];
	size_t		 i, len;
	int		 r;

	a->n = 0;
	a->used = 0;
	name = follow_cnames(an, ldns_rr_owner(ldns_rr_list_rr(
	    ldns_pkt_question(p), 0)), ttl);
	for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
		rr = ldns_rr_list_rr(an, i);
		if (!answer_rr(rr, name, ldns_type_of(qtype)))
			continue;
		if ((r = record_text(rr, qtype, text, &len)) == 1)
			continue;
		/* Over a bound: a cut list could say something else than
		 * the whole one (an SPF record set), so none of it. */
		if (r == -1 || dns_answer_add(a, text, len) == -1) {
			a->n = 0;
			a->used = 0;
			return DNS_PERMFAIL;
		}
		*ttl = MIN(*ttl, ldns_rr_ttl(rr));
	}
	return a->n > 0 ? DNS_OK : DNS_NODATA;
}

static void
dnslookup_answer(void *arg, ldns_pkt *p, const char *err)
{
	struct dnslookup	*dl = arg;
	uint32_t		 ttl = UINT32_MAX;
	char			 why[MX_REASON_MAX];

	why[0] = '\0';
	if (p == NULL) {
		dl->a.status = DNS_TEMPFAIL;
		strlcpy(why, err, sizeof(why));
	} else if (ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN)
		dl->a.status = DNS_NXDOMAIN;
	else if (ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR)
		dl->a.status = dnsanswer_records(p, dl->a.qtype, &dl->a, &ttl);
	else {
		dl->a.status = DNS_TEMPFAIL;
		rcode_reason(why, sizeof(why), dl->res, p, dl->qname,
		    dns_qtype_name(dl->a.qtype));
	}
	if (p != NULL)
		ldns_pkt_free(p);
	if (dl->a.status == DNS_OK)
		dl->a.ttl = expiry(MX_OK, ttl) - time(NULL);
	else if (dl->a.status != DNS_TEMPFAIL)
		dl->a.ttl = MX_TTL_NEG;
	dl->done(&dl->a, why[0] ? why : dns_status_name(dl->a.status),
	    dl->arg);
	free(dl);
}

void
dnslookup_start(struct mxresolver *res, const char *qname, uint32_t qtype,
    dnslookup_done done, void *arg)
{
	struct dnslookup	*dl = xcalloc(1, sizeof(*dl));

	if (mx_domain_normalize(qname, dl->qname) == -1 ||
	    !dns_qtype_ok(qtype))
		fatalx("dnslookup_start: a question not checked");
	dl->res = res;
	dl->a.qtype = qtype;
	dl->done = done;
	dl->arg = arg;
	dnsq_start(res, dl->qname, ldns_type_of(qtype), dnslookup_answer, dl);
}
