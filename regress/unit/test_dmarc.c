/*
 * DMARC records, discovery and verdicts (common/dmarc.c), with the
 * organizational domain from Debian's Public Suffix List.
 */
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"
#include "unit.h"

static int
parses(const char *txt, struct dmarc_record *r)
{
	return dmarc_parse(txt, strlen(txt), r) == 0;
}

static void
test_records(void)
{
	struct dmarc_record	r;

	CHECK("plain reject", parses("v=DMARC1; p=reject", &r) &&
	    r.p == DMARC_P_REJECT && r.sp == DMARC_P_REJECT &&
	    r.pct == 100 && !r.adkim_strict && !r.aspf_strict);
	CHECK("spaces, case of values, sp, alignment, pct",
	    parses("v=DMARC1 ;p = Quarantine; sp=none;adkim=s; aspf=s; "
	    "pct=20; rua=mailto:d@example.org", &r) &&
	    r.p == DMARC_P_QUARANTINE && r.sp == DMARC_P_NONE &&
	    r.adkim_strict && r.aspf_strict && r.pct == 20);
	CHECK("version must come first", !parses("p=reject; v=DMARC1", &r));
	CHECK("version is exact", !parses("v=DMARC2; p=reject", &r) &&
	    !parses("v=dmarc1; p=reject", &r) &&
	    !parses("v=DMARC1x; p=reject", &r));
	CHECK("no p, no rua: no record", !parses("v=DMARC1; sp=reject", &r));
	CHECK("bad p with rua: p=none", parses("v=DMARC1; p=bogus; "
	    "rua=mailto:a@b.example", &r) && r.p == DMARC_P_NONE);
	CHECK("bad p without rua: no record",
	    !parses("v=DMARC1; p=bogus", &r));
	CHECK("two p tags: as a bad p", !parses("v=DMARC1; p=none; p=reject",
	    &r));
	CHECK("bad pct ignored", parses("v=DMARC1; p=reject; pct=101", &r) &&
	    r.pct == 100 && parses("v=DMARC1; p=reject; pct=-1", &r) &&
	    r.pct == 100 && parses("v=DMARC1; p=reject; pct=1x", &r));
	CHECK("pct=0", parses("v=DMARC1; p=reject; pct=0", &r) && r.pct == 0);
	CHECK("unknown tags and junk skipped",
	    parses("v=DMARC1; p=reject; zz=1; junk; ;;; fo=1", &r) &&
	    r.p == DMARC_P_REJECT);
	CHECK("NUL refused", dmarc_parse("v=DMARC1; p=reject\0x", 20, &r) ==
	    -1);
}

static void
test_org_domains(void)
{
	char	org[256];

	CHECK("org of a subdomain",
	    dmarc_org_domain("mail.Example.COM.", org, sizeof(org)) == 0 &&
	    strcmp(org, "example.com") == 0);
	CHECK("org under a two-label suffix",
	    dmarc_org_domain("a.b.example.co.uk", org, sizeof(org)) == 0 &&
	    strcmp(org, "example.co.uk") == 0);
	CHECK("a public suffix is its own",
	    dmarc_org_domain("co.uk", org, sizeof(org)) == 0 &&
	    strcmp(org, "co.uk") == 0);
	CHECK("not a domain", dmarc_org_domain("a..b", org, sizeof(org)) ==
	    -1 && dmarc_org_domain("", org, sizeof(org)) == -1 &&
	    dmarc_org_domain("b\xc3\xa4" "d.example", org, sizeof(org)) == -1);
}

static void
answer1(struct dmarc_lookup *l, enum dmarc_dns st, const char *txt)
{
	const char	*v[1] = { txt };
	size_t		 n[1] = { txt ? strlen(txt) : 0 };

	dmarc_answer(l, st, v, n, txt ? 1 : 0);
}

static void
test_discovery(void)
{
	struct dmarc_lookup	l;
	const char		*two[2] = { "v=DMARC1; p=reject",
				    "v=DMARC1; p=none" };
	size_t			 twolen[2] = { 18, 16 };

	CHECK("asks _dmarc.FROM first",
	    dmarc_begin(&l, "News.Example.com") == 0 &&
	    strcmp(dmarc_question(&l), "_dmarc.news.example.com") == 0);
	answer1(&l, DMARC_DNS_NXDOMAIN, NULL);
	CHECK("then _dmarc.ORG", dmarc_question(&l) != NULL &&
	    strcmp(dmarc_question(&l), "_dmarc.example.com") == 0);
	answer1(&l, DMARC_DNS_OK, "v=DMARC1; p=reject; sp=quarantine");
	CHECK("found at the organization", dmarc_question(&l) == NULL &&
	    l.found && l.at_org && l.rec.sp == DMARC_P_QUARANTINE);

	dmarc_begin(&l, "example.com");
	answer1(&l, DMARC_DNS_NODATA, NULL);
	CHECK("an organizational domain is asked once",
	    dmarc_question(&l) == NULL && !l.found && !l.tempfail);

	dmarc_begin(&l, "a.example.com");
	answer1(&l, DMARC_DNS_TEMPFAIL, NULL);
	CHECK("a failed lookup ends discovery as a temporary error",
	    dmarc_question(&l) == NULL && l.tempfail);

	dmarc_begin(&l, "example.com");
	dmarc_answer(&l, DMARC_DNS_OK, two, twolen, 2);
	CHECK("two records: none", dmarc_question(&l) == NULL && !l.found);

	dmarc_begin(&l, "a.example.com");
	answer1(&l, DMARC_DNS_OK, "v=spf1 -all");
	CHECK("a TXT that is not DMARC: on to the organization",
	    dmarc_question(&l) != NULL);
	CHECK("not a domain", dmarc_begin(&l, "a b.example") == -1 &&
	    dmarc_begin(&l, "x..y") == -1);
}

static void
verdict(const char *from, const char *rec, int at_org,
    const struct dmarc_auth *a, unsigned int roll, struct dmarc_verdict *v)
{
	struct dmarc_lookup	l;

	dmarc_begin(&l, from);
	if (at_org)
		answer1(&l, DMARC_DNS_NXDOMAIN, NULL);
	answer1(&l, DMARC_DNS_OK, rec);
	dmarc_evaluate(&l, a, roll, v);
}

static void
test_verdicts(void)
{
	struct dmarc_auth	a;
	struct dmarc_verdict	v;

	memset(&a, 0, sizeof(a));
	a.spf_domain = "bounce.example.com";
	a.spf_pass = 1;
	verdict("example.com", "v=DMARC1; p=reject", 0, &a, 0, &v);
	CHECK("relaxed SPF alignment passes", v.result == DMARC_PASS &&
	    v.spf_aligned && !v.dkim_aligned);
	verdict("example.com", "v=DMARC1; p=reject; aspf=s", 0, &a, 0, &v);
	CHECK("strict SPF alignment fails, reject applies",
	    v.result == DMARC_FAIL && v.disposition == DMARC_P_REJECT);
	a.spf_pass = 0;
	verdict("example.com", "v=DMARC1; p=reject", 0, &a, 0, &v);
	CHECK("an aligned domain whose SPF failed does not count",
	    v.result == DMARC_FAIL);

	memset(&a, 0, sizeof(a));
	a.dkim_domain[0] = "other.example";
	a.dkim_domain[1] = "Mail.Example.COM";
	a.ndkim = 2;
	verdict("example.com", "v=DMARC1; p=reject", 0, &a, 0, &v);
	CHECK("any aligned DKIM signature passes", v.result == DMARC_PASS &&
	    v.dkim_aligned);
	verdict("example.com", "v=DMARC1; p=reject; adkim=s", 0, &a, 0, &v);
	CHECK("strict DKIM alignment wants the same name",
	    v.result == DMARC_FAIL);

	memset(&a, 0, sizeof(a));
	a.dkim_domain[0] = "example.co.uk";
	a.ndkim = 1;
	verdict("evil.co.uk", "v=DMARC1; p=reject", 0, &a, 0, &v);
	CHECK("a public suffix aligns nothing across organizations",
	    v.result == DMARC_FAIL);

	memset(&a, 0, sizeof(a));
	verdict("sub.example.com", "v=DMARC1; p=reject; sp=none", 1, &a, 0,
	    &v);
	CHECK("a subdomain gets sp=", v.result == DMARC_FAIL &&
	    v.policy == DMARC_P_NONE);
	verdict("example.com", "v=DMARC1; p=reject; pct=10", 0, &a, 9, &v);
	CHECK("pct: inside the sample", v.disposition == DMARC_P_REJECT);
	verdict("example.com", "v=DMARC1; p=reject; pct=10", 0, &a, 10, &v);
	CHECK("pct: outside, reject becomes quarantine",
	    v.disposition == DMARC_P_QUARANTINE && v.policy ==
	    DMARC_P_REJECT);
	verdict("example.com", "v=DMARC1; p=quarantine; pct=0", 0, &a, 0, &v);
	CHECK("pct: outside, quarantine becomes none",
	    v.disposition == DMARC_P_NONE);
}

int
main(void)
{
	CHECK("the Public Suffix List loads", dmarc_psl_load() == 0);
	test_records();
	test_org_domains();
	test_discovery();
	test_verdicts();
	dmarc_psl_free();
	UNIT_EXIT();
}
