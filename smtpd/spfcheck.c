/*
 * SPF (RFC 7208) of mail received on the SMTP port: check_host() for the
 * MAIL FROM domain (the HELO name for the null sender), started when MAIL
 * is accepted and run while the client sends its recipients and data;
 * the end of DATA waits for the verdict if it is not in yet, at most
 * SPF_WAIT_MAX seconds (then temperror), and refuses a fail there when
 * `spfreject` is set. Its questions go to mxcache like
 * the blocklists' (common/spf.c asks, this file carries). Not for
 * submission, authenticated clients or noauthhosts: their mail is ours.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "child.h"
#include "dnsmsg.h"
#include "log.h"
#include "mxfile.h"
#include "smtpd.h"
#include "spf.h"
#include "util.h"

/* However slow the DNS: the 250 waits for SPF this long at most. */
#define SPF_WAIT_MAX_SEC	15

struct spfcheck {
	struct spf	 spf;		/* about 55 KB: only while needed */
	struct event	 ev_cap;
	uint32_t	 tag;		/* of the open question, or 0 */
	uint32_t	 qtype;
	uint32_t	 seq;
	int		 done;
	enum spf_result	 result;
	char		 explain[SPF_EXPLAIN_MAX];
};

static void	spf_run(struct session *);

static int
applies(const struct session *s)
{
	return proc->conf.authchecks && s->kind == LISTEN_SMTP &&
	    !s->noauth_ok && !s->authenticated;
}

static void
finish(struct session *s, enum spf_result r, const char *explain)
{
	struct spfcheck	*c = s->spfc;

	c->done = 1;
	c->tag = 0;
	c->result = r;
	strlcpy(c->explain, explain, sizeof(c->explain));
	evtimer_del(&c->ev_cap);
	session_on_checks_done(s);
}

static void
cap_reached(int fd, short what, void *arg)
{
	struct session	*s = arg;

	log_info("smtp-in session=%s client=%s spf=timeout", s->sid,
	    s->peeraddr);
	finish(s, SPF_TEMPERROR, "DNS too slow");
}

/* The address of s->from, without the angle brackets ("" for <>). */
static void
sender_of(const struct session *s, char *out, size_t len)
{
	size_t	n = strlen(s->from);

	if (n >= 2 && s->from[0] == '<' && s->from[n - 1] == '>') {
		n -= 2;
		if (n >= len)
			n = len - 1;
		memcpy(out, s->from + 1, n);
		out[n] = '\0';
	} else
		strlcpy(out, s->from, len);
}

void
spfcheck_start(struct session *s)
{
	struct spfcheck	*c;
	struct timeval	 tv = { SPF_WAIT_MAX_SEC, 0 };
	char		 sender[ADDR_PATH_MAX];

	spfcheck_free(s);
	if (!applies(s))
		return;
	c = s->spfc = xcalloc(1, sizeof(*c));
	evtimer_set(&c->ev_cap, cap_reached, s);
	event_base_set(proc->base, &c->ev_cap);
	evtimer_add(&c->ev_cap, &tv);
	sender_of(s, sender, sizeof(sender));
	if (spf_begin(&c->spf, s->peeraddr, sender, s->helo,
	    proc->conf.serverhostname) == -1) {
		finish(s, SPF_NONE, "no client address");
		return;
	}
	spf_run(s);
}

/* Ask mxcache; 0 when the name cannot be asked (it answers nothing). */
static int
ask(struct session *s, const struct spf_question *q)
{
	struct spfcheck	*c = s->spfc;
	char		 norm[MX_NAME_MAX + 1];

	if (!dns_qtype_ok(q->type) || mx_domain_normalize(q->name, norm) == -1)
		return 0;
	c->seq = (c->seq + 1) & DNS_TAG_SEQ;
	c->tag = DNS_TAG_SPF | c->seq;
	c->qtype = q->type;
	smtpd_dns_ask(s->id, c->tag, c->qtype, norm);
	return 1;
}

static void
spf_run(struct session *s)
{
	struct spfcheck	*c = s->spfc;

	while (spf_step(&c->spf) == SPF_NEED_DNS) {
		if (ask(s, spf_question(&c->spf)))
			return;
		/* A name no resolver could ask (a macro made it): none. */
		spf_answer(&c->spf, SPF_DNS_NXDOMAIN, NULL, 0);
	}
	finish(s, spf_result(&c->spf), spf_explain(&c->spf));
}

static size_t
records_of(const struct dns_answer *a, struct spf_rr *rr)
{
	size_t	i, n = 0;

	for (i = 0; i < a->n && n < DNS_RECORDS_MAX; i++) {
		memset(&rr[n], 0, sizeof(rr[n]));
		rr[n].type = a->qtype;
		rr[n].text = a->data + a->off[i];
		rr[n].len = a->len[i];
		if (a->qtype == DNS_T_A &&
		    inet_pton(AF_INET, rr[n].text, &rr[n].a) != 1)
			continue;
		if (a->qtype == DNS_T_AAAA &&
		    inet_pton(AF_INET6, rr[n].text, &rr[n].aaaa) != 1)
			continue;
		n++;
	}
	return n;
}

void
spfcheck_on_answer(const struct dns_answer *a)
{
	struct spf_rr	 rr[DNS_RECORDS_MAX];
	struct session	*s;
	struct spfcheck	*c;

	if ((s = session_find(a->req)) == NULL || (c = s->spfc) == NULL ||
	    c->done || a->tag != c->tag || a->qtype != c->qtype)
		return;		/* the check or the session is over */
	c->tag = 0;
	switch (a->status) {
	case DNS_OK:
		spf_answer(&c->spf, SPF_DNS_OK, rr, records_of(a, rr));
		break;
	case DNS_NODATA:
		spf_answer(&c->spf, SPF_DNS_OK, NULL, 0);
		break;
	case DNS_NXDOMAIN:
		spf_answer(&c->spf, SPF_DNS_NXDOMAIN, NULL, 0);
		break;
	default:
		spf_answer(&c->spf, SPF_DNS_TEMPERROR, NULL, 0);
		break;
	}
	spf_run(s);
}

int
spfcheck_pending(const struct session *s)
{
	return s->spfc != NULL && !s->spfc->done;
}

/* "pass", ... for the log and Authentication-Results; NULL: not checked. */
const char *
spfcheck_result(const struct session *s)
{
	if (s->spfc == NULL || !s->spfc->done)
		return NULL;
	return spf_result_name(s->spfc->result);
}

const char *
spfcheck_explain(const struct session *s)
{
	return s->spfc != NULL && s->spfc->done ? s->spfc->explain : "";
}

/*
 * The SPF result as a method of our Authentication-Results field: the
 * identity checked (the MAIL FROM address, or the HELO name for <>) and
 * our short reason. Nothing when the check did not run.
 */
void
spfcheck_authres(const struct session *s, struct authres *ar)
{
	struct spfcheck	*c = s->spfc;
	char		 sender[ADDR_PATH_MAX];

	if (c == NULL || !c->done)
		return;
	authres_method(ar, "spf", spf_result_name(c->result),
	    c->explain[0] ? c->explain : NULL);
	sender_of(s, sender, sizeof(sender));
	if (sender[0] != '\0')
		authres_prop(ar, "smtp.mailfrom", sender);
	else
		authres_prop(ar, "smtp.helo", s->helo);
}

/*
 * With `spfreject`, an SPF fail (and only a fail: a DNS failure or a
 * record that does not parse says nothing about the client) refuses the
 * message: the reply for it in reply, 1. It names the domain and the
 * client, never the domain's exp= text, which anyone with a zone could
 * make say anything in our name.
 */
int
spfcheck_refusal(const struct session *s, char *reply, size_t len)
{
	const char	*dom;
	int		 pass;

	if (!proc->conf.spfreject || s->spfc == NULL || !s->spfc->done ||
	    s->spfc->result != SPF_FAIL)
		return 0;
	if ((dom = spfcheck_domain(s, &pass)) == NULL)
		return 0;
	snprintf(reply, len, "550 5.7.23 Message refused: the SPF record of "
	    "%.255s does not allow %s to send its mail", dom, s->peeraddr);
	return 1;
}

/* The domain SPF checked (the MAIL FROM's, else HELO), for DMARC. */
const char *
spfcheck_domain(const struct session *s, int *pass)
{
	const char	*at;

	*pass = s->spfc != NULL && s->spfc->done &&
	    s->spfc->result == SPF_PASS;
	if (s->spfc == NULL)
		return NULL;
	if ((at = strrchr(s->from, '@')) != NULL) {
		static char	dom[ADDR_PATH_MAX];

		strlcpy(dom, at + 1, sizeof(dom));
		dom[strcspn(dom, ">")] = '\0';
		return dom;
	}
	return s->helo;
}

void
spfcheck_free(struct session *s)
{
	if (s->spfc == NULL)
		return;
	evtimer_del(&s->spfc->ev_cap);
	free(s->spfc);
	s->spfc = NULL;
}
