/*
 * DKIM (RFC 6376) and DMARC (RFC 7489) of a message received on the
 * SMTP port from others, once its data is in: the header and body are
 * read back from the spool file smtpd wrote (the page cache holds it),
 * the signers' keys and the From: domain's policy are asked of mxcache,
 * and the end of DATA waits for them as it waits for SPF. The verdicts
 * join SPF's in our Authentication-Results field; a DMARC failure under
 * p=reject is refused with 550 5.7.1 when `dmarcreject` is on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authres.h"
#include "child.h"
#include "dkimverify.h"
#include "dmarc.h"
#include "dnsmsg.h"
#include "log.h"
#include "mxfile.h"
#include "smtpd.h"
#include "util.h"

#define READ_CHUNK	(64 * 1024)

struct msgcheck {
	struct dkimv		 v;		/* some 46 KB */
	int			 nsig;
	uint32_t		 askedkeys;	/* bit i: key i asked */
	uint32_t		 waitkeys;	/* bit i: its answer awaited */
	int			 fromok;	/* from holds the From: domain */
	int			 nopsl;		/* no organizational domain */
	char			 from[MX_NAME_MAX + 1];
	struct dmarc_lookup	 dl;
	int			 dmarc_asking;	/* a policy question is out */
	uint32_t		 dmarc_seq;
	int			 done;
	struct event		 ev_cap;
};

/* However slow the DNS: the 250 waits for these this long at most. */
#define CHECK_WAIT_MAX_SEC	15

static int	msgcheck_step(struct session *);

/* The answers not in by now count as temporary DNS failures. */
static void
cap_reached(int fd, short what, void *arg)
{
	struct session	*s = arg;
	struct msgcheck	*mc = s->mc;
	size_t		 i;

	log_info("smtp-in session=%s client=%s dkim=timeout", s->sid,
	    s->peeraddr);
	for (i = 0; i < DKIM_VERIFY_MAX; i++)
		if (mc->waitkeys & (1u << i))
			dkimv_answer(&mc->v, i, DKIMV_DNS_TEMPERROR, NULL, 0);
	mc->waitkeys = 0;
	if (mc->dmarc_asking) {
		mc->dmarc_asking = 0;
		dmarc_answer(&mc->dl, DMARC_DNS_TEMPFAIL, NULL, NULL, 0);
	}
	mc->done = 1;
	session_on_checks_done(s);
}

/* The message as smtpd wrote it, from off (after our Received:). */
static ssize_t
read_at(int fd, char *buf, size_t len, off_t off)
{
	ssize_t	n;

	do
		n = pread(fd, buf, len, off);
	while (n == -1 && errno == EINTR);
	return n;
}

/* The header, up to and with its empty line; its length, or -1. */
static ssize_t
read_header(int fd, off_t start, char *hdr, size_t cap)
{
	ssize_t	n = read_at(fd, hdr, cap, start);
	char	*end;

	if (n <= 0)
		return -1;
	end = memmem(hdr, n, "\r\n\r\n", 4);
	return end ? end - hdr + 4 : n;
}

static void
hash_body(struct msgcheck *mc, int fd, off_t off)
{
	char	*buf = xmalloc(READ_CHUNK);
	ssize_t	 n;

	while ((n = read_at(fd, buf, READ_CHUNK, off)) > 0) {
		dkimv_body(&mc->v, buf, n);
		off += n;
	}
	dkimv_body_end(&mc->v);
	free(buf);
}

/*
 * At the end of DATA, with the spool descriptor still open: start the
 * checks. Returns 1 when they wait for DNS (session_on_checks_done
 * follows), 0 when there is nothing to wait for.
 */
int
msgcheck_start(struct session *s, int fd, off_t msgstart)
{
	struct msgcheck	*mc;
	struct timeval	 tv = { CHECK_WAIT_MAX_SEC, 0 };
	char		*hdr;
	ssize_t		 hlen;

	msgcheck_free(s);
	if (s->spfc == NULL)	/* the checks do not apply to this mail */
		return 0;
	mc = s->mc = xcalloc(1, sizeof(*mc));
	evtimer_set(&mc->ev_cap, cap_reached, s);
	event_base_set(proc->base, &mc->ev_cap);
	hdr = xmalloc(DKIM_HEADER_MAX);
	hlen = read_header(fd, msgstart, hdr, DKIM_HEADER_MAX);
	if (hlen > 0) {
		mc->nsig = dkimv_begin(&mc->v, hdr, hlen, time(NULL));
		if (mc->nsig > 0)
			hash_body(mc, fd, msgstart + hlen);
		mc->fromok = dkim_message_from_domain(hdr, hlen, mc->from,
		    sizeof(mc->from)) == 0;
	}
	free(hdr);
	if (mc->fromok && dmarc_begin(&mc->dl, mc->from) == -1)
		mc->nopsl = 1;
	if (msgcheck_step(s))
		return 0;
	evtimer_add(&mc->ev_cap, &tv);
	return 1;
}

/* Ask what can be asked; 1 when everything is answered. */
static int
msgcheck_step(struct session *s)
{
	struct msgcheck	*mc = s->mc;
	const char	*name;
	char		 norm[MX_NAME_MAX + 1];
	size_t		 i;

	while ((name = dkimv_question(&mc->v, &i)) != NULL) {
		if (i >= DKIM_VERIFY_MAX ||
		    mx_domain_normalize(name, norm) == -1) {
			dkimv_answer(&mc->v, i, DKIMV_DNS_NXDOMAIN, NULL, 0);
			continue;
		}
		mc->waitkeys |= 1u << i;
		smtpd_dns_ask(s->id, DNS_TAG_DKIM | i, DNS_T_TXT, norm);
	}
	if (mc->fromok && !mc->nopsl && !mc->dmarc_asking &&
	    (name = dmarc_question(&mc->dl)) != NULL) {
		if (mx_domain_normalize(name, norm) == -1)
			dmarc_answer(&mc->dl, DMARC_DNS_NXDOMAIN, NULL, NULL, 0);
		else {
			mc->dmarc_asking = 1;
			mc->dmarc_seq = (mc->dmarc_seq + 1) & DNS_TAG_SEQ;
			smtpd_dns_ask(s->id, DNS_TAG_DMARC | mc->dmarc_seq, DNS_T_TXT,
			    norm);
		}
	}
	mc->done = mc->waitkeys == 0 && !mc->dmarc_asking;
	if (mc->done)
		evtimer_del(&mc->ev_cap);
	return mc->done;
}

static void
on_key(struct session *s, const struct dns_answer *a, size_t i)
{
	struct msgcheck		*mc = s->mc;
	struct dkimv_txt	 txt[DNS_RECORDS_MAX];
	size_t			 k;

	/* The tag comes back from mxcache: only an index we asked. */
	if (i >= DKIM_VERIFY_MAX || !(mc->waitkeys & (1u << i)))
		return;
	mc->waitkeys &= ~(1u << i);
	for (k = 0; k < a->n; k++) {
		txt[k].text = a->data + a->off[k];
		txt[k].len = a->len[k];
	}
	if (a->status == DNS_OK)
		dkimv_answer(&mc->v, i, DKIMV_DNS_OK, txt, a->n);
	else if (a->status == DNS_NODATA)
		dkimv_answer(&mc->v, i, DKIMV_DNS_OK, NULL, 0);
	else if (a->status == DNS_NXDOMAIN)
		dkimv_answer(&mc->v, i, DKIMV_DNS_NXDOMAIN, NULL, 0);
	else
		dkimv_answer(&mc->v, i, DKIMV_DNS_TEMPERROR, NULL, 0);
}

static void
on_policy(struct session *s, const struct dns_answer *a)
{
	struct msgcheck	*mc = s->mc;
	const char	*txt[DNS_RECORDS_MAX];
	size_t		 len[DNS_RECORDS_MAX], k;

	if (!mc->dmarc_asking || (a->tag & DNS_TAG_SEQ) != mc->dmarc_seq)
		return;
	mc->dmarc_asking = 0;
	for (k = 0; k < a->n; k++) {
		txt[k] = a->data + a->off[k];
		len[k] = a->len[k];
	}
	if (a->status == DNS_OK)
		dmarc_answer(&mc->dl, DMARC_DNS_OK, txt, len, a->n);
	else if (a->status == DNS_NODATA)
		dmarc_answer(&mc->dl, DMARC_DNS_NODATA, NULL, NULL, 0);
	else if (a->status == DNS_NXDOMAIN)
		dmarc_answer(&mc->dl, DMARC_DNS_NXDOMAIN, NULL, NULL, 0);
	else
		dmarc_answer(&mc->dl, DMARC_DNS_TEMPFAIL, NULL, NULL, 0);
}

void
msgcheck_on_answer(const struct dns_answer *a)
{
	struct session	*s;

	if ((s = session_find(a->req)) == NULL || s->mc == NULL ||
	    s->mc->done || a->qtype != DNS_T_TXT)
		return;
	if ((a->tag & DNS_TAG_DMARC) == DNS_TAG_DMARC)
		on_policy(s, a);
	else
		on_key(s, a, a->tag & 0xff);
	if (msgcheck_step(s))
		session_on_checks_done(s);
}

/* The verdicts as methods of our Authentication-Results field, and
 * the DMARC verdict for the refusal. */
void
msgcheck_authres(const struct session *s, struct authres *ar,
    const char *spf_domain, int spf_pass, struct dmarc_verdict *dv)
{
	const struct msgcheck	*mc = s->mc;
	struct dkimv_result	 r;
	struct dmarc_auth	 da;
	char			 comment[96];
	size_t			 i;

	memset(dv, 0, sizeof(*dv));
	if (mc == NULL)
		return;
	memset(&da, 0, sizeof(da));
	da.spf_domain = spf_domain;
	da.spf_pass = spf_pass;
	if (mc->nsig == 0)
		authres_method(ar, "dkim", "none", NULL);
	for (i = 0; i < dkimv_count(&mc->v); i++) {
		dkimv_result(&mc->v, i, &r);
		authres_method(ar, "dkim", dkimv_result_name(r.res),
		    r.res == DKIMV_PASS ? NULL : r.reason);
		if (r.d[0] != '\0')
			authres_prop(ar, "header.d", r.d);
		if (r.s[0] != '\0')
			authres_prop(ar, "header.s", r.s);
		if (r.b8[0] != '\0')
			authres_prop(ar, "header.b", r.b8);
		if (r.res == DKIMV_PASS && da.ndkim < DMARC_DKIM_MAX)
			da.dkim_domain[da.ndkim++] = r.d;
	}
	if (!mc->fromok || mc->nopsl) {
		authres_method(ar, "dmarc", mc->fromok ? "permerror" : "none",
		    mc->fromok ? "no organizational domain" :
		    "no single From: domain");
		return;
	}
	dmarc_evaluate(&mc->dl, &da, arc4random_uniform(100), dv);
	if (dv->result == DMARC_PASS || dv->result == DMARC_FAIL) {
		snprintf(comment, sizeof(comment), "p=%s dis=%s",
		    dmarc_policy_name(dv->policy),
		    dmarc_policy_name(dv->disposition));
		authres_method(ar, "dmarc", dmarc_result_name(dv->result),
		    comment);
	} else
		authres_method(ar, "dmarc", dmarc_result_name(dv->result),
		    NULL);
	authres_prop(ar, "header.from", mc->from);
}

int
msgcheck_pending(const struct session *s)
{
	return s->mc != NULL && !s->mc->done;
}

void
msgcheck_free(struct session *s)
{
	if (s->mc == NULL)
		return;
	evtimer_del(&s->mc->ev_cap);
	dkimv_free(&s->mc->v);
	free(s->mc);
	s->mc = NULL;
}
