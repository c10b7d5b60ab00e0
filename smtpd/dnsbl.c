/*
 * DNS blocklists and the greeting delay, on the SMTP port only (RFC 5782
 * for the lists). The client's address is asked of every zone through
 * mxcache while the 220 waits `greetdelay` seconds; a client that talks
 * in that time is a robot that does not wait for its turn, and goes.
 * A listed client gets 554 instead of the 220 and then, as RFC 5321 3.1
 * asks, 503 to everything but QUIT. A lookup that fails lets the client
 * in: a DNS problem never refuses mail.
 */
#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "dnsmsg.h"
#include "log.h"
#include "smtpd.h"
#include "util.h"

/* However slow the DNS, the greeting comes by then (mxcache answers a
 * lookup the resolver did not within about 5 s). */
#define DNSBL_WAIT_MAX_SEC	10
#define DNSBL_REASON_MAX	200
#define TAG_TXT			0x100	/* tag = zone index | TAG_TXT */

struct dnsbl_check {
	struct event	 ev_delay, ev_cap;
	int		 delaying;	/* greetdelay not over yet */
	/* Answers awaited: bit i the A of zone i, bit 16 + i its TXT. */
	uint32_t	 awaited;
	size_t		 nzones;
	/* The zones as at connect: a reload may change the config. */
	char		 zone[CONFIG_DNSBL_MAX][MX_NAME_MAX + 1];
	char		 qname[MX_NAME_MAX + 1];	/* of the listed zone */
	int		 listed;	/* zone index, or -1 */
	char		 code[INET6_ADDRSTRLEN];	/* its A record */
	char		 reason[DNSBL_REASON_MAX + 1];	/* its TXT */
};

static void	check_done(struct session *);

static int
applies(const struct session *s)
{
	return s->kind == LISTEN_SMTP && !s->noauth_ok &&
	    (proc->conf.ndnsbl > 0 || proc->conf.greetdelay > 0);
}

static void
delay_over(int fd, short what, void *arg)
{
	struct session	*s = arg;

	s->bl->delaying = 0;
	check_done(s);
}

/* The lists did not all answer in time: they count as not listing. */
static void
cap_reached(int fd, short what, void *arg)
{
	struct session	*s = arg;

	log_info("smtp-in session=%s client=%s dnsbl=timeout", s->sid,
	    s->peeraddr);
	s->bl->awaited = 0;
	s->bl->delaying = 0;
	check_done(s);
}

static void
timer_start(struct session *s, struct event *ev,
    void (*fn)(int, short, void *), int sec)
{
	struct timeval	tv = { sec, 0 };

	evtimer_set(ev, fn, s);
	event_base_set(proc->base, ev);
	evtimer_add(ev, &tv);
}

int
dnsbl_start(struct session *s)
{
	struct dnsbl_check	*bl;
	char			 qname[MX_NAME_MAX + 1];
	size_t			 i;

	if (!applies(s))
		return 0;
	bl = s->bl = xcalloc(1, sizeof(*bl));
	bl->listed = -1;
	s->wait = WAIT_GREET;
	for (i = 0; i < proc->conf.ndnsbl; i++) {
		strlcpy(bl->zone[bl->nzones], proc->conf.dnsbl[i],
		    sizeof(bl->zone[0]));
		if (dns_reverse_name((struct sockaddr *)&s->peer,
		    bl->zone[bl->nzones], qname, sizeof(qname)) == -1)
			continue;
		bl->awaited |= 1u << bl->nzones;
		smtpd_dns_ask(s->id, bl->nzones, DNS_T_A, qname);
		bl->nzones++;
	}
	if (proc->conf.greetdelay > 0) {
		bl->delaying = 1;
		timer_start(s, &bl->ev_delay, delay_over,
		    proc->conf.greetdelay);
	}
	timer_start(s, &bl->ev_cap, cap_reached, DNSBL_WAIT_MAX_SEC);
	/* With nothing to wait for, the greeting goes from the loop. */
	if (!bl->delaying && bl->awaited == 0)
		event_active(&bl->ev_cap, EV_TIMEOUT, 1);
	return 1;
}

void
dnsbl_free(struct session *s)
{
	if (s->bl == NULL)
		return;
	evtimer_del(&s->bl->ev_delay);
	evtimer_del(&s->bl->ev_cap);
	free(s->bl);
	s->bl = NULL;
}

/*
 * Listed: an A record in 127.0.0.0/8 (RFC 5782 2.1), except
 * 127.255.255.0/24, which large lists answer to say they refuse the
 * query (an open resolver, too many queries), not that the client is
 * listed.
 */
static int
listing_code(const struct dns_answer *a, char *code, size_t len)
{
	struct in_addr	in;
	uint32_t	i, v;

	if (a->status != DNS_OK)
		return 0;
	for (i = 0; i < a->n; i++) {
		if (inet_pton(AF_INET, a->data + a->off[i], &in) != 1)
			continue;
		v = ntohl(in.s_addr);
		if ((v >> 24) != 127 || (v >> 8) == 0x7fffff)
			continue;
		strlcpy(code, a->data + a->off[i], len);
		return 1;
	}
	return 0;
}

static void
on_a(struct session *s, size_t zone, const struct dns_answer *a)
{
	struct dnsbl_check	*bl = s->bl;

	if (a->status == DNS_TEMPFAIL || a->status == DNS_PERMFAIL)
		log_info("smtp-in session=%s client=%s dnsbl=%s zone=%s",
		    s->sid, s->peeraddr, dns_status_name(a->status),
		    bl->zone[zone]);
	if (bl->listed != -1 || !listing_code(a, bl->code, sizeof(bl->code)))
		return;
	bl->listed = zone;
	/* The others no longer matter; the list's reason does. */
	bl->awaited = 1u << (16 + zone);
	if (dns_reverse_name((struct sockaddr *)&s->peer, bl->zone[zone],
	    bl->qname, sizeof(bl->qname)) == 0)
		smtpd_dns_ask(s->id, zone | TAG_TXT, DNS_T_TXT, bl->qname);
}

/* The list's words go to a client and the log: printable, bounded. */
static void
on_txt(struct session *s, const struct dns_answer *a)
{
	if (a->status != DNS_OK)
		return;
	text_printable(s->bl->reason, sizeof(s->bl->reason),
	    a->data + a->off[0], a->len[0]);
}

void
dnsbl_on_answer(const struct dns_answer *a)
{
	struct session	*s;
	uint32_t	 zone = a->tag & ~TAG_TXT, bit;
	int		 txt = (a->tag & TAG_TXT) != 0;

	if ((s = session_find(a->req)) == NULL || s->bl == NULL ||
	    zone >= s->bl->nzones)
		return;		/* the session or its check is over */
	bit = 1u << (txt ? 16 + zone : zone);
	if (!(s->bl->awaited & bit) ||
	    a->qtype != (txt ? DNS_T_TXT : DNS_T_A))
		return;
	s->bl->awaited &= ~bit;
	if (txt)
		on_txt(s, a);
	else
		on_a(s, zone, a);
	check_done(s);
}

static void
refuse_listed(struct session *s)
{
	struct dnsbl_check	*bl = s->bl;
	const char		*zone = bl->zone[bl->listed];

	log_info("smtp-in session=%s client=%s result=refused reason=dnsbl "
	    "zone=%s code=%s", s->sid, s->peeraddr, zone, bl->code);
	smtp_refused("dnsbl");
	s->blocked = 1;
	if (bl->reason[0] != '\0')
		session_reply(s, "554 5.7.1 %s Service unavailable; client "
		    "[%s] blocked using %s: %s", proc->conf.serverhostname,
		    s->peeraddr, zone, bl->reason);
	else
		session_reply(s, "554 5.7.1 %s Service unavailable; client "
		    "[%s] blocked using %s", proc->conf.serverhostname,
		    s->peeraddr, zone);
}

static void
check_done(struct session *s)
{
	struct dnsbl_check	*bl = s->bl;

	if (bl->delaying || bl->awaited != 0)
		return;
	s->wait = WAIT_NONE;
	if (s->state == ST_CLOSING) {
		dnsbl_free(s);
		return;
	}
	if (bl->listed != -1)
		refuse_listed(s);
	else
		session_reply(s, "220 %s ESMTP pymaild",
		    proc->conf.serverhostname);
	dnsbl_free(s);
	session_greeted(s);
}

/* Input before the greeting: a robot that does not wait its turn, or a
 * client that gave up. */
void
dnsbl_talked_first(struct session *s)
{
	dnsbl_free(s);
	s->wait = WAIT_NONE;
	if (s->inlen == 0) {
		session_end(s);
		return;
	}
	log_info("smtp-in session=%s client=%s result=refused "
	    "reason=pregreet", s->sid, s->peeraddr);
	smtp_refused("pregreet");
	session_close_with(s, "554 5.5.1 %s Protocol error: talking before "
	    "the greeting", proc->conf.serverhostname);
}
