/*
 * Attempts: one message to one domain, that domain's recipients, as
 * queued hands it over (one IMSG_OUT_ATTEMPT, recipients included).
 * An attempt asks mxcache for the hosts (or goes straight to the
 * smarthost), tries them in order until one settles the recipients,
 * then falls back to the smarthost when one is set (A6, A7), and answers
 * queued with one result per recipient, the last marked as the end.
 *
 * What queued sends is checked as hostile input would be: an attempt id
 * in use, one attempt too many (queued keeps to the same limits), a
 * descriptor that is not a read-only regular file, a recipient of
 * another domain: each closes the channel.
 */
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "child.h"
#include "log.h"
#include "outbound.h"
#include "util.h"

TAILQ_HEAD(attemptlist, attempt);

static struct attemptlist	attempts = TAILQ_HEAD_INITIALIZER(attempts);
static uint32_t			nattempts;
static uint32_t			next_req = 1;

/*
 * A smarthost given by name is resolved through mxcache like any domain
 * (its MX, else its own addresses) and kept here; lookup 0 is this one.
 */
#define RELAY_REQ	0
#define RELAY_TTL	300
static struct host		relay_hosts[MX_MAX_HOSTS];
static int			nrelay;
static time_t			relay_asked;

static int
domain_busy(const char *domain)
{
	struct attempt	*at;
	int		 n = 0;

	TAILQ_FOREACH(at, &attempts, entry)
		if (strcasecmp(at->domain, domain) == 0)
			n++;
	return n >= OUT_PER_DOMAIN_MAX;
}

static void
add_host(struct attempt *at, const char *host, const char *addr, int port,
    int pref)
{
	struct host	*h;

	if (at->nhosts == MX_MAX_HOSTS + 1)
		return;
	h = &at->hosts[at->nhosts++];
	strlcpy(h->host, host, sizeof(h->host));
	strlcpy(h->addr, addr, sizeof(h->addr));
	h->port = port;
	h->pref = pref;
	/* DANE is for MX hosts (and a domain's own name), not for the
	 * smarthost nor an address literal, which DNS does not name. */
	h->dane = pref == HOST_RELAY || host[0] == '[' ? DANE_OFF :
	    DANE_UNASKED;
	h->tlsa = NULL;
}

static int
is_numeric(const char *s)
{
	unsigned char	buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

static void
relay_lookup(int force)
{
	struct msgbuild	 mb;
	const char	*relay = proc->conf.relayhost;
	time_t		 now = time(NULL);

	if (relay == NULL || is_numeric(relay))
		return;
	if (!force && now - relay_asked < (nrelay ? RELAY_TTL : 5))
		return;
	relay_asked = now;
	mb_init(&mb);
	mb_u32(&mb, RELAY_REQ);
	mb_str(&mb, relay);
	chan_send(&mxcache_chan, &mb, IMSG_MX_LOOKUP, 0, -1);
}

/* The smarthost goes last: through it all, or as the fallback. */
static void
add_relay(struct attempt *at)
{
	const char	*relay = proc->conf.relayhost;
	int		 i;

	if (relay == NULL)
		return;
	if (is_numeric(relay)) {
		add_host(at, relay, relay, proc->conf.relayport, HOST_RELAY);
		return;
	}
	relay_lookup(0);
	if (nrelay == 0)
		snprintf(at->lasterror, sizeof(at->lasterror),
		    "smtprelay %.200s: no address known yet", relay);
	for (i = 0; i < nrelay; i++)
		add_host(at, relay, relay_hosts[i].addr,
		    proc->conf.relayport, HOST_RELAY);
}

/* The answer to lookup 0: the smarthost's addresses. */
static int
relay_reply(struct msgread *mr, uint32_t status, uint32_t n)
{
	char		host[256], addr[64];
	uint32_t	i;

	nrelay = 0;
	for (i = 0; i < n; i++) {
		(void)mr_u32(mr);
		mr_str(mr, host, sizeof(host));
		mr_str(mr, addr, sizeof(addr));
		if (mr->err || !is_numeric(addr))
			return -1;
		strlcpy(relay_hosts[nrelay].addr, addr,
		    sizeof(relay_hosts[nrelay].addr));
		nrelay++;
	}
	if (mr_end(mr) == -1)
		return -1;
	if (status != MX_OK || nrelay == 0)
		log_warnx("outbound: smtprelay %s does not resolve (status "
		    "%u)", proc->conf.relayhost, status);
	return 0;
}

/* After a reload: the smarthost may have changed. */
void
attempt_reloaded(void)
{
	nrelay = 0;
	relay_lookup(1);
}

static void
attempt_free(struct attempt *at)
{
	size_t	i;

	for (i = 0; i < sizeof(at->hosts) / sizeof(at->hosts[0]); i++)
		free(at->hosts[i].tlsa);
	if (at->datafd != -1)
		close(at->datafd);
	free(at->rcpt);
	free(at->prefix);
	free(at->result);
	free(at->reason);
	free(at);
}

/* What queued is told for recipient i. */
static uint32_t
rcpt_outcome(const struct attempt *at, size_t i, const char **text)
{
	switch (at->result[i]) {
	case AR_DELIVERED:
		*text = at->reason[i];
		log_info("outbound id=%s to=<%s> result=sent tls=%s%s%s "
		    "reply=\"%s\"", at->qid, at->rcpt[i],
		    at->tls[0] ? at->tls : "no", at->dane ? " dane=" : "",
		    at->dane ? at->dane : "", at->reason[i]);
		return OUT_DELIVERED;
	case AR_FINAL:
		*text = at->reason[i];
		return OUT_FAILED;
	default:
		*text = at->reason[i][0] ? at->reason[i] : at->lasterror;
		log_info("outbound id=%s to=<%s> result=deferred "
		    "reason=\"%s\"", at->qid, at->rcpt[i], *text);
		return OUT_DEFERRED;
	}
}

/*
 * Everything settled or tried: one result per recipient, then the end.
 * The descriptor is closed before queued hears of it, so the message's
 * file is out of our hands once queued may remove it.
 */
static void
attempt_finish(struct attempt *at)
{
	const char	*text;
	uint32_t	 result;
	size_t		 i;

	close(at->datafd);
	at->datafd = -1;
	for (i = 0; i < at->nrcpts; i++) {
		result = rcpt_outcome(at, i, &text);
		out_send_result(&queued_chan, at->id, i, result,
		    i + 1 == at->nrcpts, text);
	}
	TAILQ_REMOVE(&attempts, at, entry);
	nattempts--;
	attempt_free(at);
}

static int
unsettled(const struct attempt *at)
{
	size_t	i;

	for (i = 0; i < at->nrcpts; i++)
		if (at->result[i] == AR_UNSETTLED ||
		    at->result[i] == AR_ACCEPTED)
			return 1;
	return 0;
}

void
attempt_host_failed(struct attempt *at, const char *why)
{
	struct host	*h = &at->hosts[at->cur];

	snprintf(at->lasterror, sizeof(at->lasterror), "%.100s[%s]:%d: %.100s"
	    "%s%.80s", h->host, h->addr, h->port, why,
	    h->notls ? " (in plaintext after TLS failed: " : "",
	    h->notls ? h->tlserror : "");
	if (h->notls)
		strlcat(at->lasterror, ")", sizeof(at->lasterror));
	log_info("outbound id=%s host=%s[%s] error=\"%s\"", at->qid,
	    h->host, h->addr, why);
}

/*
 * The current host: its TLSA records first (RFC 7672), from mxcache,
 * once per address tried; then the session.
 */
static void
host_connect(struct attempt *at)
{
	struct host	*h = &at->hosts[at->cur];
	struct msgbuild	 mb;

	if (h->dane != DANE_UNASKED) {
		smtpc_start(at);
		return;
	}
	if (next_req == RELAY_REQ)
		next_req++;
	at->tlsareq = next_req++;
	mb_init(&mb);
	mb_u32(&mb, at->tlsareq);
	mb_u32(&mb, h->port);
	mb_str(&mb, h->host);
	if (chan_send(&mxcache_chan, &mb, IMSG_TLSA_LOOKUP, 0, -1) == -1) {
		attempt_host_failed(at, "DANE: TLSA lookup unavailable");
		attempt_host_done(at);
	}
}

/* A session ended: the next host for what is not settled, or done. */
void
attempt_host_done(struct attempt *at)
{
	size_t	i;

	for (i = 0; i < at->nrcpts; i++)
		if (at->result[i] == AR_ACCEPTED)
			at->result[i] = AR_UNSETTLED;	/* no final dot */
	if (unsettled(at) && !at->cancelled && ++at->cur < at->nhosts) {
		host_connect(at);
		return;
	}
	attempt_finish(at);
}

/* The same host again: its TLS handshake failed, now in plaintext. */
void
attempt_host_again(struct attempt *at)
{
	size_t	i;

	for (i = 0; i < at->nrcpts; i++)
		if (at->result[i] == AR_ACCEPTED)
			at->result[i] = AR_UNSETTLED;
	smtpc_start(at);
}

void
attempt_rcpt_final(struct attempt *at, size_t idx, const char *why)
{
	at->result[idx] = AR_FINAL;
	strlcpy(at->reason[idx], why, sizeof(at->reason[idx]));
}

void
attempt_rcpt_later(struct attempt *at, size_t idx, const char *why)
{
	at->result[idx] = AR_LATER;
	strlcpy(at->reason[idx], why, sizeof(at->reason[idx]));
}

void
attempt_all_final(struct attempt *at, const char *why)
{
	size_t	i;

	for (i = 0; i < at->nrcpts; i++)
		if (at->result[i] == AR_UNSETTLED)
			attempt_rcpt_final(at, i, why);
}

/* The answer to the final dot (or to DATA) for the accepted ones. */
void
attempt_accepted_result(struct attempt *at, int code, const char *why)
{
	size_t	i;

	for (i = 0; i < at->nrcpts; i++) {
		if (at->result[i] != AR_ACCEPTED)
			continue;
		if (code / 100 == 2) {
			at->result[i] = AR_DELIVERED;
			strlcpy(at->reason[i], why, sizeof(at->reason[i]));
		} else if (code / 100 == 5)
			attempt_rcpt_final(at, i, why);
		else
			attempt_rcpt_later(at, i, why);
	}
}

static void
fail_all(struct attempt *at, int permanent, const char *why)
{
	size_t	i;

	for (i = 0; i < at->nrcpts; i++)
		if (permanent)
			attempt_rcpt_final(at, i, why);
		else
			attempt_rcpt_later(at, i, why);
}

/* An address in binary, an IPv4-mapped IPv6 address as IPv4. */
struct ipaddr {
	int		af;
	unsigned char	a[16];
};

static int
ipaddr_parse(const char *s, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->a) == 1) {
		ip->af = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip->a) != 1)
		return -1;
	ip->af = AF_INET6;
	if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)ip->a)) {
		memmove(ip->a, ip->a + 12, 4);
		memset(ip->a + 4, 0, 12);
		ip->af = AF_INET;
	}
	return 0;
}

static int
ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b)
{
	return a->af == b->af && memcmp(a->a, b->a, sizeof(a->a)) == 0;
}

static int
ipaddr_unspecified(const struct ipaddr *ip)
{
	static const unsigned char	zero[16];

	return memcmp(ip->a, zero, sizeof(zero)) == 0;
}

static int
ipaddr_loopback(const struct ipaddr *ip)
{
	if (ip->af == AF_INET)
		return ip->a[0] == 127;
	return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)ip->a);
}

static socklen_t
ipaddr_sockaddr(const struct ipaddr *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (ip->af == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(9);
		memcpy(&sin->sin_addr, ip->a, 4);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(9);
	memcpy(&sin6->sin6_addr, ip->a, 16);
	return sizeof(*sin6);
}

/*
 * Is ip an address of this host, today? The kernel knows: a datagram
 * socket connected to a local address (nothing is sent) takes that very
 * address as its source, to any other address the outgoing interface's.
 */
static int
ipaddr_local(const struct ipaddr *ip)
{
	struct sockaddr_storage	 ss, me;
	struct ipaddr		 src;
	socklen_t		 len, melen = sizeof(me);
	int			 s, local = 0;

	if (ipaddr_loopback(ip))
		return 1;
	len = ipaddr_sockaddr(ip, &ss);
	if ((s = socket(ip->af, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	if (connect(s, (struct sockaddr *)&ss, len) == 0 &&
	    getsockname(s, (struct sockaddr *)&me, &melen) == 0 &&
	    me.ss_family == ip->af) {
		src.af = ip->af;
		memset(src.a, 0, sizeof(src.a));
		if (ip->af == AF_INET)
			memcpy(src.a, &((struct sockaddr_in *)&me)->sin_addr, 4);
		else
			memcpy(src.a, &((struct sockaddr_in6 *)&me)->sin6_addr,
			    16);
		local = ipaddr_equal(ip, &src);
	}
	close(s);
	return local;
}

/*
 * Would a connection to addr:port reach our own SMTP server? The
 * unspecified address reaches this host (Linux takes it so) whatever
 * the port; on our SMTP port, so does an address we listen on, or any
 * address of this host when we listen on a wildcard.
 */
static int
points_to_us(const char *addr, int port)
{
	struct ipaddr	ip, l;
	size_t		i;
	int		wildcard = 0;

	if (ipaddr_parse(addr, &ip) == -1)
		return 0;	/* smtpc refuses it as a bad address */
	if (ipaddr_unspecified(&ip))
		return 1;
	if (port != proc->conf.smtpserverport)
		return 0;
	for (i = 0; i < proc->conf.nlisten; i++) {
		if (ipaddr_parse(proc->conf.listen[i], &l) == -1)
			continue;
		if (ipaddr_unspecified(&l))
			wildcard = 1;
		else if (ipaddr_equal(&ip, &l))
			return 1;
	}
	return wildcard && ipaddr_local(&ip);
}

/*
 * A host that leads back to us is never tried, and neither are those
 * at its preference or worse, nor the smarthost after them: they would
 * hand the mail back to us, the better MX (Postfix does the same). The
 * host that loops, or NULL.
 */
static const struct host *
drop_loops(struct attempt *at, struct host *loop)
{
	int	i, cut;

	for (cut = 0; cut < at->nhosts; cut++)
		if (points_to_us(at->hosts[cut].addr, at->hosts[cut].port))
			break;
	if (cut == at->nhosts)
		return NULL;
	*loop = at->hosts[cut];
	for (i = 0; i < cut; i++)
		if (at->hosts[i].pref >= loop->pref)
			break;
	at->nhosts = i;
	log_info("outbound id=%s host=%s[%s]:%d error=\"points back to us\"",
	    at->qid, loop->host, loop->addr, loop->port);
	return loop;
}

static void
run_hosts(struct attempt *at)
{
	struct host	loop;
	char		why[256];

	at->cur = 0;
	if (at->cancelled) {
		attempt_finish(at);
		return;
	}
	if (drop_loops(at, &loop) != NULL && at->nhosts == 0) {
		snprintf(why, sizeof(why), "554 5.4.6 mail for %.60s loops "
		    "back to us: %.60s[%.46s] points back to us", at->domain,
		    loop.host, loop.addr);
		fail_all(at, 1, why);
		attempt_finish(at);
		return;
	}
	if (at->nhosts == 0) {
		attempt_finish(at);
		return;
	}
	host_connect(at);
}

static void
ask_mxcache(struct attempt *at)
{
	struct msgbuild	mb;

	at->req = next_req++;
	mb_init(&mb);
	mb_u32(&mb, at->req);
	mb_str(&mb, at->domain);
	if (chan_send(&mxcache_chan, &mb, IMSG_MX_LOOKUP, 0, -1) == -1) {
		fail_all(at, 0, "451 4.4.3 MX lookup unavailable");
		attempt_finish(at);
	}
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" */
static int
literal_host(struct attempt *at)
{
	char	addr[64];
	size_t	len = strlen(at->domain);

	if (at->domain[0] != '[' || len < 3 || len - 2 >= sizeof(addr))
		return 0;
	snprintf(addr, sizeof(addr), "%.*s", (int)len - 2, at->domain + 1);
	if (strncasecmp(addr, "ipv6:", 5) == 0)
		memmove(addr, addr + 5, strlen(addr + 5) + 1);
	if (!is_numeric(addr))
		return 0;
	add_host(at, at->domain, addr, proc->conf.outboundport, 0);
	return 1;
}

static void
attempt_begin(struct attempt *at)
{
	if (proc->conf.usesmtprelay) {
		add_relay(at);
		run_hosts(at);
		return;
	}
	if (literal_host(at)) {
		add_relay(at);
		run_hosts(at);
		return;
	}
	ask_mxcache(at);
}

static struct attempt *
attempt_by_id(uint32_t id)
{
	struct attempt	*at;

	TAILQ_FOREACH(at, &attempts, entry)
		if (at->id == id)
			return at;
	return NULL;
}

/*
 * A regular file we can only read: a spool file opened read-only, or a
 * memfd sealed against any change. We read the message, never more.
 */
static int
message_fd_ok(int fd)
{
	struct stat	st;
	int		fl, seals;

	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		return 0;
	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return 0;
	if ((fl & O_ACCMODE) == O_RDONLY)
		return 1;
	seals = fcntl(fd, F_GET_SEALS);
	return seals != -1 && (seals & F_SEAL_WRITE) && (seals & F_SEAL_SEAL);
}

/* Every recipient is of the attempt's domain. */
static int
rcpts_ok(const struct out_attempt *oa)
{
	uint32_t	i;

	for (i = 0; i < oa->nrcpts; i++)
		if (strcasecmp(addr_stored_domain(oa->rcpt[i]), oa->domain) != 0)
			return 0;
	return 1;
}

/* IMSG_OUT_ATTEMPT: a message, its recipients of one domain. */
int
attempt_new(struct imsg *im)
{
	struct out_attempt	 oa;
	struct attempt		*at;

	if (out_read_attempt(im->data, im->datalen, &oa) == -1) {
		log_warnx("outbound: queued sent a malformed attempt");
		return -1;
	}
	if (!rcpts_ok(&oa) || !message_fd_ok(im->fd) ||
	    attempt_by_id(oa.id) != NULL || nattempts >= OUT_ATTEMPTS_MAX ||
	    domain_busy(oa.domain) || oa.size > LLONG_MAX) {
		out_attempt_clear(&oa);
		log_warnx("outbound: queued sent a bad attempt");
		return -1;
	}
	at = xcalloc(1, sizeof(*at));
	at->id = oa.id;
	strlcpy(at->qid, oa.qid, sizeof(at->qid));
	strlcpy(at->sender, oa.sender, sizeof(at->sender));
	strlcpy(at->domain, oa.domain, sizeof(at->domain));
	at->size = (long long)oa.size;
	at->datafd = im->fd;
	if ((at->prefixlen = strlen(oa.dkim)) > 0)
		at->prefix = xstrdup(oa.dkim);
	at->nrcpts = oa.nrcpts;
	at->rcpt = oa.rcpt;		/* ours now */
	at->result = xcalloc(oa.nrcpts, sizeof(*at->result));
	at->reason = xcalloc(oa.nrcpts, sizeof(*at->reason));
	TAILQ_INSERT_TAIL(&attempts, at, entry);
	nattempts++;
	attempt_begin(at);
	return 0;
}

uint32_t
attempt_count(void)
{
	return nattempts;
}

static struct attempt *
attempt_by_req(uint32_t req)
{
	struct attempt	*at;

	TAILQ_FOREACH(at, &attempts, entry)
		if (at->req == req)
			return at;
	return NULL;
}

static void
mx_failed(struct attempt *at, uint32_t status, const char *dnsreason)
{
	char	why[256], reason[64];

	/* mxcache's words may quote what a DNS server said. */
	text_printable(reason, sizeof(reason), dnsreason, strlen(dnsreason));

	if (status == MX_TEMPFAIL && proc->conf.relayhost != NULL) {
		/* DNS trouble is what the fallback is for. */
		add_relay(at);
		run_hosts(at);
		return;
	}
	switch (status) {
	case MX_NULLMX:
		snprintf(why, sizeof(why), "556 5.1.10 %.200s does not accept "
		    "mail (null MX)", at->domain);
		break;
	case MX_NXDOMAIN:
		snprintf(why, sizeof(why), "550 5.1.2 %.200s: no such domain",
		    at->domain);
		break;
	case MX_NOHOSTS:
		snprintf(why, sizeof(why), "550 5.4.4 %.200s: no address for its "
		    "mail servers", at->domain);
		break;
	default:
		snprintf(why, sizeof(why), "451 4.4.3 %.150s: DNS lookup failed%s%.60s",
		    at->domain, reason[0] ? ": " : "", reason);
		break;
	}
	fail_all(at, status != MX_TEMPFAIL, why);
	attempt_finish(at);
}

int
attempt_mx_reply(struct imsg *im)
{
	struct msgread	 mr;
	struct attempt	*at;
	char		 reason[256], host[256], addr[64];
	uint32_t	 req, status, n, i, pref;

	mr_init(&mr, im);
	req = mr_u32(&mr);
	status = mr_u32(&mr);
	mr_str(&mr, reason, sizeof(reason));
	n = mr_u32(&mr);
	if (mr.err || n > MX_MAX_HOSTS || status > MX_NOHOSTS)
		return -1;
	if (req == RELAY_REQ)
		return relay_reply(&mr, status, n);
	if ((at = attempt_by_req(req)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		pref = mr_u32(&mr);
		mr_str(&mr, host, sizeof(host));
		mr_str(&mr, addr, sizeof(addr));
		if (mr.err || !is_numeric(addr))
			return -1;
		/* mxcache sends them in the order to try */
		add_host(at, host, addr, proc->conf.outboundport,
		    pref > INT_MAX - 1 ? INT_MAX - 1 : (int)pref);
	}
	if (mr_end(&mr) == -1)
		return -1;
	if (status != MX_OK || n == 0) {
		mx_failed(at, status == MX_OK ? MX_NOHOSTS : status, reason);
		return 0;
	}
	add_relay(at);
	run_hosts(at);
	return 0;
}

static struct attempt *
attempt_by_tlsareq(uint32_t req)
{
	struct attempt	*at;

	TAILQ_FOREACH(at, &attempts, entry)
		if (at->tlsareq == req && at->cur < at->nhosts &&
		    at->hosts[at->cur].dane == DANE_UNASKED)
			return at;
	return NULL;
}

/*
 * What the TLSA answer means for the host (RFC 7672 2.2): authentic
 * records make TLS and a matching certificate mandatory; a failed lookup
 * in a signed zone makes the host unusable for now (an attacker may be
 * hiding the records); anything else leaves TLS opportunistic.
 */
int
attempt_tlsa_reply(struct imsg *im)
{
	struct tlsa_reply	 r;
	struct attempt		*at;
	struct host		*h;
	char			 why[OUT_TEXT_MAX + 1];

	if (tlsa_read_reply(im->data, im->datalen, &r) == -1 ||
	    (at = attempt_by_tlsareq(r.req)) == NULL) {
		log_warnx("outbound: mxcache sent a bad TLSA reply");
		return -1;
	}
	h = &at->hosts[at->cur];
	at->tlsareq = 0;
	/* Removed from the queue while we asked: no session at all. */
	if (at->cancelled) {
		attempt_finish(at);
		return 0;
	}
	if (r.authentic && r.status == TLSA_TEMPFAIL) {
		h->dane = DANE_OFF;
		snprintf(why, sizeof(why), "DANE: TLSA lookup failed in a "
		    "signed zone: %.150s", r.reason);
		attempt_host_failed(at, why);
		attempt_host_done(at);
		return 0;
	}
	if (r.authentic && r.status == TLSA_FOUND) {
		h->dane = DANE_REQUIRED;
		h->tlsa = xmalloc(sizeof(*h->tlsa));
		*h->tlsa = r;
	} else {
		h->dane = DANE_OFF;
		if (r.status == TLSA_FOUND)
			log_info("outbound id=%s host=%s[%s] dane=insecure "
			    "(TLSA records without AD): opportunistic TLS",
			    at->qid, h->host, h->addr);
	}
	smtpc_start(at);
	return 0;
}

/*
 * IMSG_OUT_CANCEL: queued removed the message. An attempt already over
 * is no error: its results and this crossed.
 */
int
attempt_cancel(struct imsg *im)
{
	struct msgread	 mr;
	struct attempt	*at;
	uint32_t	 id;

	mr_init(&mr, im);
	id = mr_u32(&mr);
	if (mr_end(&mr) == -1 || im->fd != -1)
		return -1;
	if ((at = attempt_by_id(id)) == NULL || at->cancelled)
		return 0;
	at->cancelled = 1;
	log_info("outbound id=%s domain=%s result=cancelled", at->qid,
	    at->domain);
	if (at->sess != NULL)
		smtpc_cancel(at->sess);
	return 0;
}

void
attempt_init(void)
{
	TAILQ_INIT(&attempts);
	relay_lookup(1);
}
