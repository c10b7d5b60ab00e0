/*
 * DKIM (RFC 6376) and DMARC (RFC 7489) of a message received on the
 * SMTP port from others. The message is checked as smtpd writes it to
 * the spool, so nothing is read back and no loop turn hashes more than
 * one write's worth: the header is gathered (growing up to
 * DKIM_HEADER_MAX, freed at its end), the signatures are parsed and
 * their keys and the From: domain's policy asked of mxcache there, and
 * every body chunk goes to the body hashers as it is written. The end
 * of DATA closes the body hash and waits for the answers still out, as
 * it waits for SPF. The verdicts join SPF's in our
 * Authentication-Results field; a DMARC failure under p=reject is
 * refused with 550 5.7.1 when `dmarcreject` is on.
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
#include "msgfrom.h"
#include "mxfile.h"
#include "smtpd.h"
#include "util.h"

#define HDR_FIRST	4096	/* the header buffer's first size */

struct msgcheck {
	struct dkimv		*v;		/* some 46 KB: only if signed */
	int			 nsig;
	off_t			 skip;		/* our Received: still to pass */
	char			*hdr;		/* the header, while it comes */
	size_t			 hdrlen, hdrcap;
	int			 inbody;	/* the header is parsed */
	int			 hdrcut;	/* longer than we read */
	uint32_t		 askedkeys;	/* bit i: key i asked */
	uint32_t		 waitkeys;	/* bit i: its answer awaited */
	enum msgfrom_result	 fromres;
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

static const char *
from_problem(const struct msgcheck *mc)
{
	if (mc->hdrcut)
		return "its header is longer than 256 KiB";
	switch (mc->fromres) {
	case MSGFROM_NONE:
		return "it has no From: field";
	case MSGFROM_FIELDS:
		return "it has more than one From: field";
	case MSGFROM_MANY:
		return "its From: names authors of more than one domain";
	case MSGFROM_UTF8:
		return "its From: domain is in UTF-8, which is not checked";
	default:
		return "its From: field holds no address with a domain";
	}
}

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
			dkimv_answer(mc->v, i, DKIMV_DNS_TEMPERROR, NULL, 0);
	mc->waitkeys = 0;
	if (mc->dmarc_asking) {
		mc->dmarc_asking = 0;
		dmarc_answer(&mc->dl, DMARC_DNS_TEMPFAIL, NULL, NULL, 0);
	}
	mc->done = 1;
	session_on_checks_done(s);
}

/*
 * At the 354: the checks follow the message as it is written from now
 * on, past skip octets (our Received: field).
 */
void
msgcheck_data_begin(struct session *s, off_t skip)
{
	struct msgcheck	*mc;

	msgcheck_free(s);
	if (s->spfc == NULL)	/* the checks do not apply to this mail */
		return;
	mc = s->mc = xcalloc(1, sizeof(*mc));
	mc->skip = skip;
	evtimer_set(&mc->ev_cap, cap_reached, s);
	event_base_set(proc->base, &mc->ev_cap);
}

/*
 * The header [hdr, hdr + len) is complete: parse the signatures, hash
 * their header data, and ask for their keys and for the policy now,
 * while the body is still on its way.
 */
static void
header_done(struct session *s, const char *hdr, size_t len)
{
	struct msgcheck	*mc = s->mc;

	mc->inbody = 1;
	mc->v = xcalloc(1, sizeof(*mc->v));
	mc->nsig = dkimv_begin(mc->v, hdr, len, time(NULL));
	if (mc->nsig <= 0) {
		/* nothing to hash or ask: keep no verifier */
		dkimv_free(mc->v);
		free(mc->v);
		mc->v = NULL;
		mc->nsig = 0;
	}
	/* a From: past what we read could be the one a reader shows */
	mc->fromres = mc->hdrcut ? MSGFROM_UNCLEAR :
	    msgfrom_message(hdr, len, mc->from, sizeof(mc->from));
	mc->fromok = mc->fromres == MSGFROM_ONE;
	if (mc->fromok && dmarc_begin(&mc->dl, mc->from) == -1)
		mc->nopsl = 1;
	(void)msgcheck_step(s);
}

/* Where the header ends in hdr (past its empty line), or 0. */
static size_t
header_end(const char *hdr, size_t len, size_t from)
{
	const char	*end;

	if (len >= 2 && hdr[0] == '\r' && hdr[1] == '\n')
		return 2;	/* no header field at all */
	from = from > 3 ? from - 3 : 0;
	if (len < from + 4)
		return 0;
	end = memmem(hdr + from, len - from, "\r\n\r\n", 4);
	return end ? (size_t)(end - hdr) + 4 : 0;
}

static void
body_chunk(struct msgcheck *mc, const char *p, size_t len)
{
	if (mc->v != NULL && len > 0)
		dkimv_body(mc->v, p, len);
}

/*
 * Octets as they were written to the spool. The header is gathered
 * until its empty line (or DKIM_HEADER_MAX octets: a header that long
 * has no signature we check, as dkimv_begin finds); what follows it
 * goes to the body hashers at once.
 */
void
msgcheck_data(struct session *s, const char *p, size_t len)
{
	struct msgcheck	*mc = s->mc;
	size_t		 take, end, old;

	if (mc == NULL)
		return;
	if (mc->skip > 0) {
		take = (off_t)len < mc->skip ? len : (size_t)mc->skip;
		mc->skip -= take;
		p += take;
		len -= take;
	}
	if (mc->inbody) {
		body_chunk(mc, p, len);
		return;
	}
	if (len == 0)
		return;
	take = DKIM_HEADER_MAX - mc->hdrlen;
	if (take > len)
		take = len;
	if (mc->hdrlen + take > mc->hdrcap) {
		mc->hdrcap = mc->hdrcap ? mc->hdrcap : HDR_FIRST;
		while (mc->hdrcap < mc->hdrlen + take)
			mc->hdrcap *= 2;
		if (mc->hdrcap > DKIM_HEADER_MAX)
			mc->hdrcap = DKIM_HEADER_MAX;
		mc->hdr = xreallocarray(mc->hdr, mc->hdrcap, 1);
	}
	old = mc->hdrlen;
	memcpy(mc->hdr + old, p, take);
	mc->hdrlen += take;
	end = header_end(mc->hdr, mc->hdrlen, old);
	if (end == 0 && mc->hdrlen < DKIM_HEADER_MAX)
		return;
	if (end == 0) {
		end = mc->hdrlen;
		mc->hdrcut = 1;
	}
	header_done(s, mc->hdr, end);
	/* what came after the empty line, then the rest of this write */
	body_chunk(mc, mc->hdr + end, mc->hdrlen - end);
	free(mc->hdr);
	mc->hdr = NULL;
	mc->hdrlen = mc->hdrcap = 0;
	body_chunk(mc, p + take, len - take);
}

/*
 * At the end of DATA, all of the message written: close the body hash.
 * Returns 1 when the checks wait for DNS (session_on_checks_done
 * follows), 0 when there is nothing to wait for.
 */
int
msgcheck_start(struct session *s)
{
	struct msgcheck	*mc = s->mc;
	struct timeval	 tv = { CHECK_WAIT_MAX_SEC, 0 };

	if (mc == NULL)
		return 0;
	if (!mc->inbody) {	/* a header without an empty line after */
		header_done(s, mc->hdr != NULL ? mc->hdr : "", mc->hdrlen);
		free(mc->hdr);
		mc->hdr = NULL;
		mc->hdrlen = mc->hdrcap = 0;
	}
	if (mc->v != NULL)
		dkimv_body_end(mc->v);
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

	while (mc->v != NULL && (name = dkimv_question(mc->v, &i)) != NULL) {
		if (i >= DKIM_VERIFY_MAX ||
		    mx_domain_normalize(name, norm) == -1) {
			dkimv_answer(mc->v, i, DKIMV_DNS_NXDOMAIN, NULL, 0);
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
	if (mc->v == NULL || i >= DKIM_VERIFY_MAX ||
	    !(mc->waitkeys & (1u << i)))
		return;
	mc->waitkeys &= ~(1u << i);
	for (k = 0; k < a->n; k++) {
		txt[k].text = a->data + a->off[k];
		txt[k].len = a->len[k];
	}
	if (a->status == DNS_OK)
		dkimv_answer(mc->v, i, DKIMV_DNS_OK, txt, a->n);
	else if (a->status == DNS_NODATA)
		dkimv_answer(mc->v, i, DKIMV_DNS_OK, NULL, 0);
	else if (a->status == DNS_NXDOMAIN)
		dkimv_answer(mc->v, i, DKIMV_DNS_NXDOMAIN, NULL, 0);
	else if (a->status == DNS_PERMFAIL)
		dkimv_answer(mc->v, i, DKIMV_DNS_PERMERROR, NULL, 0);
	else
		dkimv_answer(mc->v, i, DKIMV_DNS_TEMPERROR, NULL, 0);
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
	for (i = 0; mc->v != NULL && i < dkimv_count(mc->v); i++) {
		dkimv_result(mc->v, i, &r);
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
		    from_problem(mc));
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

/*
 * With `dmarcreject`, a message whose author DMARC cannot name is
 * refused: two From: fields, authors of two domains, a From: without a
 * readable domain, or a header too long to read whole. A reader shows
 * one of those authors while the check would have judged none, which
 * is how a forger would step around a domain's p=reject (RFC 7489
 * 6.6.1 leaves the choice to refuse to us). A message with no From: at
 * all names no one to impersonate, and is only marked; so is one whose
 * author's domain is in UTF-8, as a reader shows it (that name has no
 * DMARC record to look up until it is converted to A-labels, which we
 * do not do).
 */
int
msgcheck_from_refusal(const struct session *s, char *reply, size_t len)
{
	const struct msgcheck	*mc = s->mc;

	if (!proc->conf.dmarcreject || mc == NULL ||
	    mc->fromres == MSGFROM_ONE || mc->fromres == MSGFROM_NONE ||
	    mc->fromres == MSGFROM_UTF8)
		return 0;
	snprintf(reply, len, "550 5.7.1 Message refused: %s, so its sender "
	    "cannot be checked (RFC 5322 3.6.2, RFC 7489 6.6.1)",
	    from_problem(mc));
	return 1;
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
	if (s->mc->v != NULL)
		dkimv_free(s->mc->v);
	free(s->mc->v);
	free(s->mc->hdr);
	free(s->mc);
	s->mc = NULL;
}
