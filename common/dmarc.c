/*
 * DMARC policy records, discovery and verdict (RFC 7489 6.3, 6.6).
 *
 * The record is read as the RFC's receiver rules say: it must begin with
 * v=DMARC1; tags are name=value pairs apart by ';'; tags we do not know
 * (and the reporting ones, rua, ruf, fo, rf, ri: we send no reports) are
 * skipped; a missing or bad p= makes the record p=none when it asks for
 * aggregate reports (rua=), else no record at all. More than one record
 * at a name is no record (6.6.3).
 *
 * The organizational domain is the registrable domain by the Public
 * Suffix List, loaded once through libpsl before the caller's sandbox.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpsl.h>

#include "dmarc.h"
#include "mxfile.h"

static psl_ctx_t	*psl;

int
dmarc_psl_load(void)
{
	if (psl != NULL)
		return 0;
	/* The newer of the list built into libpsl and Debian's file. */
	if ((psl = psl_latest(NULL)) == NULL)
		psl = (psl_ctx_t *)psl_builtin();
	return psl == NULL ? -1 : 0;
}

void
dmarc_psl_free(void)
{
	if (psl != NULL && psl != psl_builtin())
		psl_free(psl);
	psl = NULL;
}

int
dmarc_org_domain(const char *domain, char *org, size_t orglen)
{
	char		 norm[MX_NAME_MAX + 1];
	const char	*reg;

	if (psl == NULL || mx_domain_normalize(domain, norm) == -1)
		return -1;
	/* A public suffix itself (co.uk) has no organization above it. */
	if ((reg = psl_registrable_domain(psl, norm)) == NULL)
		reg = norm;
	if (strlcpy(org, reg, orglen) >= orglen)
		return -1;
	return 0;
}

/* ---- the record ------------------------------------------------------ */

struct tag {
	const char	*name, *value;
	size_t		 namelen, valuelen;
};

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next "name = value" of txt[*pos..len), trimmed; 0 when none left. */
static int
next_tag(const char *txt, size_t len, size_t *pos, struct tag *t)
{
	size_t	i = *pos, end, eq;

	while (i < len && (is_wsp(txt[i]) || txt[i] == ';'))
		i++;
	if (i == len)
		return 0;
	for (end = i; end < len && txt[end] != ';'; end++)
		;
	*pos = end;
	for (eq = i; eq < end && txt[eq] != '='; eq++)
		;
	t->name = txt + i;
	t->namelen = eq - i;
	while (t->namelen > 0 && is_wsp(t->name[t->namelen - 1]))
		t->namelen--;
	if (eq == end) {
		t->value = txt + end;
		t->valuelen = 0;
		return -1;		/* a tag without '=' */
	}
	t->value = txt + eq + 1;
	t->valuelen = end - eq - 1;
	while (t->valuelen > 0 && is_wsp(t->value[0])) {
		t->value++;
		t->valuelen--;
	}
	while (t->valuelen > 0 && is_wsp(t->value[t->valuelen - 1]))
		t->valuelen--;
	return 1;
}

static int
tag_is(const struct tag *t, const char *name)
{
	return t->namelen == strlen(name) &&
	    strncasecmp(t->name, name, t->namelen) == 0;
}

static int
value_is(const struct tag *t, const char *v)
{
	return t->valuelen == strlen(v) &&
	    strncasecmp(t->value, v, t->valuelen) == 0;
}

static int
parse_policy(const struct tag *t, enum dmarc_policy *p)
{
	if (value_is(t, "none"))
		*p = DMARC_P_NONE;
	else if (value_is(t, "quarantine"))
		*p = DMARC_P_QUARANTINE;
	else if (value_is(t, "reject"))
		*p = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

static int
parse_alignment(const struct tag *t, int *strict)
{
	if (value_is(t, "r"))
		*strict = 0;
	else if (value_is(t, "s"))
		*strict = 1;
	else
		return -1;
	return 0;
}

static int
parse_pct(const struct tag *t, int *pct)
{
	size_t	i;
	int	n = 0;

	if (t->valuelen == 0 || t->valuelen > 3)
		return -1;
	for (i = 0; i < t->valuelen; i++) {
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
		n = n * 10 + (t->value[i] - '0');
	}
	if (n > 100)
		return -1;
	*pct = n;
	return 0;
}

/* Does the record begin with v=DMARC1 (the only version there is)? */
static int
is_dmarc(const char *txt, size_t len, size_t *pos)
{
	struct tag	t;

	*pos = 0;
	if (next_tag(txt, len, pos, &t) != 1 || t.namelen != 1 ||
	    t.name[0] != 'v' || t.valuelen != 6 ||
	    memcmp(t.value, "DMARC1", 6) != 0)
		return 0;
	return 1;
}

int
dmarc_parse(const char *txt, size_t len, struct dmarc_record *r)
{
	struct tag	t;
	size_t		pos;
	int		got_p = 0, bad_p = 0, got_sp = 0, rua = 0, k;

	if (len > DMARC_TXT_MAX || memchr(txt, '\0', len) != NULL ||
	    !is_dmarc(txt, len, &pos))
		return -1;
	memset(r, 0, sizeof(*r));
	r->pct = 100;
	while ((k = next_tag(txt, len, &pos, &t)) != 0) {
		if (k == -1)
			continue;	/* no '=': not a tag, skipped */
		if (tag_is(&t, "p")) {
			if (got_p++ || parse_policy(&t, &r->p) == -1)
				bad_p = 1;
		} else if (tag_is(&t, "sp")) {
			if (got_sp++ || parse_policy(&t, &r->sp) == -1)
				bad_p = 1;
		} else if (tag_is(&t, "adkim"))
			(void)parse_alignment(&t, &r->adkim_strict);
		else if (tag_is(&t, "aspf"))
			(void)parse_alignment(&t, &r->aspf_strict);
		else if (tag_is(&t, "pct"))
			(void)parse_pct(&t, &r->pct);
		else if (tag_is(&t, "rua") && t.valuelen > 0)
			rua = 1;
	}
	if (!got_p || bad_p) {
		if (!rua)
			return -1;
		r->p = r->sp = DMARC_P_NONE;
		return 0;
	}
	if (!got_sp)
		r->sp = r->p;
	return 0;
}

/* ---- discovery ------------------------------------------------------- */

static void
ask(struct dmarc_lookup *l, int which)
{
	l->asking = which;
	(void)snprintf(l->qname, sizeof(l->qname), "_dmarc.%s",
	    which == 1 ? l->from : l->org);
}

int
dmarc_begin(struct dmarc_lookup *l, const char *from)
{
	memset(l, 0, sizeof(*l));
	if (mx_domain_normalize(from, l->from) == -1 ||
	    dmarc_org_domain(l->from, l->org, sizeof(l->org)) == -1)
		return -1;
	ask(l, 1);
	return 0;
}

const char *
dmarc_question(const struct dmarc_lookup *l)
{
	return l->asking ? l->qname : NULL;
}

/* Exactly one DMARC record among the TXT records: 0, else -1. */
static int
one_record(const char *const *txt, const size_t *txtlen, size_t n,
    struct dmarc_record *r)
{
	struct dmarc_record	one;
	size_t			i, pos, seen = 0, good = 0;

	for (i = 0; i < n; i++) {
		if (txtlen[i] > DMARC_TXT_MAX || !is_dmarc(txt[i], txtlen[i],
		    &pos))
			continue;
		seen++;
		if (dmarc_parse(txt[i], txtlen[i], &one) == 0) {
			*r = one;
			good++;
		}
	}
	return seen == 1 && good == 1 ? 0 : -1;
}

void
dmarc_answer(struct dmarc_lookup *l, enum dmarc_dns status,
    const char *const *txt, const size_t *txtlen, size_t n)
{
	int	which = l->asking;

	if (which == 0)
		return;
	l->asking = 0;
	if (status == DMARC_DNS_TEMPFAIL) {
		l->tempfail = 1;
		return;
	}
	if (status == DMARC_DNS_OK &&
	    one_record(txt, txtlen, n, &l->rec) == 0) {
		l->found = 1;
		l->at_org = which == 2;
		return;
	}
	if (which == 1 && strcmp(l->from, l->org) != 0)
		ask(l, 2);
}

/* ---- verdict --------------------------------------------------------- */

static int
aligned(const char *from, const char *authd, int strict)
{
	char	a[MX_NAME_MAX + 1], oa[MX_NAME_MAX + 1], of[MX_NAME_MAX + 1];

	if (authd == NULL || mx_domain_normalize(authd, a) == -1)
		return 0;
	if (strict)
		return strcmp(from, a) == 0;
	return dmarc_org_domain(from, of, sizeof(of)) == 0 &&
	    dmarc_org_domain(a, oa, sizeof(oa)) == 0 && strcmp(of, oa) == 0;
}

void
dmarc_evaluate(const struct dmarc_lookup *l, const struct dmarc_auth *a,
    unsigned int roll, struct dmarc_verdict *v)
{
	size_t	i;

	memset(v, 0, sizeof(*v));
	v->policy = v->disposition = DMARC_P_NONE;
	if (!l->found) {
		/* A failed lookup may hide a policy: never a "none". */
		v->result = l->tempfail ? DMARC_TEMPERROR : DMARC_NONE;
		return;
	}
	v->spf_aligned = a->spf_pass &&
	    aligned(l->from, a->spf_domain, l->rec.aspf_strict);
	for (i = 0; i < a->ndkim && i < DMARC_DKIM_MAX; i++)
		if (aligned(l->from, a->dkim_domain[i], l->rec.adkim_strict))
			v->dkim_aligned = 1;
	/* A subdomain's policy is sp= of the organization's record. */
	v->policy = l->at_org ? l->rec.sp : l->rec.p;
	if (v->spf_aligned || v->dkim_aligned) {
		v->result = DMARC_PASS;
		return;
	}
	v->result = DMARC_FAIL;
	/* pct=: the policy applies to that share of failing mail; the rest
	 * gets the next milder treatment (RFC 7489 6.6.4). */
	if (roll % 100 < (unsigned int)l->rec.pct)
		v->disposition = v->policy;
	else if (v->policy == DMARC_P_REJECT)
		v->disposition = DMARC_P_QUARANTINE;
	else
		v->disposition = DMARC_P_NONE;
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	default:
		return "none";
	}
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_REJECT:
		return "reject";
	case DMARC_P_QUARANTINE:
		return "quarantine";
	default:
		return "none";
	}
}
