/*
 * The SPF evaluator (common/spf.c) on hostile input, answered from a
 * zone in memory: include cycles, CNAMEs in answers, records far too
 * long, macro bombs, a hundred DNS terms, NUL bytes. Each must end in a
 * result after a bounded number of questions, which are counted. Also
 * the macro examples of RFC 7208 7.4.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"
#include "unit.h"

#define TEMPFAIL	(-1)	/* a zone entry: the name times out */

struct zrr {
	const char	*name;
	int		 type;
	const char	*text;	/* TXT, MX/PTR name, or the address */
	size_t		 len;	/* of text; 0: strlen */
};

static struct spf	 s;
static int		 drive_loops;

static size_t
fill(const struct zrr *z, size_t nz, const struct spf_question *q,
    struct spf_rr *rr, size_t max, enum spf_dns *st)
{
	size_t	i, n = 0;
	int	exists = 0;

	for (i = 0; i < nz; i++) {
		if (strcasecmp(z[i].name, q->name) != 0)
			continue;
		exists = 1;
		if (z[i].type == TEMPFAIL) {
			*st = SPF_DNS_TEMPERROR;
			return 0;
		}
		/* Other types come along (a CNAME), as a resolver gives. */
		if (n == max || (z[i].type != q->type && z[i].type != 5))
			continue;
		memset(&rr[n], 0, sizeof(rr[n]));
		rr[n].type = z[i].type;
		rr[n].text = z[i].text;
		rr[n].len = z[i].len ? z[i].len : strlen(z[i].text);
		if (z[i].type == SPF_T_A)
			inet_pton(AF_INET, z[i].text, &rr[n].a);
		if (z[i].type == SPF_T_AAAA)
			inet_pton(AF_INET6, z[i].text, &rr[n].aaaa);
		n++;
	}
	*st = exists ? SPF_DNS_OK : SPF_DNS_NXDOMAIN;
	return n;
}

/* Runs a check against the zone; the longest name asked in *longest. */
static enum spf_result
drive(const struct zrr *z, size_t nz, const char *ip, const char *sender,
    size_t *longest)
{
	static struct spf_rr	rr[2048];
	enum spf_dns		st;
	size_t			n;

	if (longest != NULL)
		*longest = 0;
	if (spf_begin(&s, ip, sender, "helo.test", "us.test") == -1)
		return -1;
	for (drive_loops = 0; drive_loops < 1000; drive_loops++) {
		if (spf_step(&s) == SPF_DONE)
			return spf_result(&s);
		if (longest != NULL && strlen(spf_question(&s)->name) > *longest)
			*longest = strlen(spf_question(&s)->name);
		n = fill(z, nz, spf_question(&s), rr, 2048, &st);
		spf_answer(&s, st, rr, n);
	}
	return -1;
}

#define NZ(z)	(sizeof(z) / sizeof((z)[0]))

static void
test_include_cycle(void)
{
	static const struct zrr z[] = {
		{ "a.test", SPF_T_TXT, "v=spf1 include:b.test -all", 0 },
		{ "b.test", SPF_T_TXT, "v=spf1 include:a.test -all", 0 },
		{ "self.test", SPF_T_TXT, "v=spf1 redirect=self.test", 0 },
	};

	CHECK("include cycle: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@a.test", NULL) == SPF_PERMERROR);
	/* The first TXT, then one per include until the 11th term. */
	CHECK("include cycle: 11 questions", spf_questions(&s) == 11);
	CHECK("redirect to itself: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@self.test", NULL) ==
	    SPF_PERMERROR);
	CHECK("redirect to itself: 11 questions", spf_questions(&s) == 11);
}

static void
test_cname(void)
{
	static const struct zrr z[] = {
		/* What a resolver hands back for a chain it followed. */
		{ "c.test", 5, "c1.test.", 0 },
		{ "c.test", 5, "c2.test.", 0 },
		{ "c.test", 5, "c3.test.", 0 },
		{ "c.test", SPF_T_TXT, "v=spf1 ip4:192.0.2.0/24 -all", 0 },
		/* A chain that leads nowhere: only CNAMEs. */
		{ "loop.test", 5, "loop.test.", 0 },
		{ "inc.test", SPF_T_TXT, "v=spf1 include:loop.test -all", 0 },
		/* A loop the resolver gave up on. */
		{ "broken.test", TEMPFAIL, "", 0 },
	};

	CHECK("cname chain: the TXT behind it counts",
	    drive(z, NZ(z), "192.0.2.9", "x@c.test", NULL) == SPF_PASS);
	CHECK("cname only: none",
	    drive(z, NZ(z), "192.0.2.9", "x@loop.test", NULL) == SPF_NONE);
	CHECK("include of a cname loop: permerror",
	    drive(z, NZ(z), "192.0.2.9", "x@inc.test", NULL) ==
	    SPF_PERMERROR);
	CHECK("cname loop the resolver gave up on: temperror",
	    drive(z, NZ(z), "192.0.2.9", "x@broken.test", NULL) ==
	    SPF_TEMPERROR);
}

static char *
repeat(const char *head, const char *term, int n, const char *tail)
{
	size_t	 len = strlen(head) + strlen(term) * n + strlen(tail) + 1;
	char	*p = malloc(len);
	int	 i;

	if (p == NULL)
		abort();
	strlcpy(p, head, len);
	for (i = 0; i < n; i++)
		strlcat(p, term, len);
	strlcat(p, tail, len);
	return p;
}

static void
test_long_records(void)
{
	char		*huge = repeat("v=spf1", " ?all", 10000, "");
	char		*big = repeat("v=spf1", " ip4:198.51.100.7", 240, " -all");
	char		*many_a = repeat("v=spf1", " a", 100, " +all");
	struct zrr	 z[] = {
		{ "huge.test", SPF_T_TXT, huge, 0 },
		{ "big.test", SPF_T_TXT, big, 0 },
		{ "a.test", SPF_T_TXT, many_a, 0 },
		{ "a.test", SPF_T_A, "198.51.100.1", 0 },
	};

	CHECK("record of 10,000 terms: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@huge.test", NULL) ==
	    SPF_PERMERROR);
	CHECK("record of 10,000 terms: one question",
	    spf_questions(&s) == 1);
	CHECK("TXT of 4,000 octets is evaluated", strlen(big) > 4000 &&
	    drive(z, NZ(z), "192.0.2.1", "x@big.test", NULL) == SPF_FAIL);
	CHECK("TXT of 4,000 octets: its ip4 matches",
	    drive(z, NZ(z), "198.51.100.7", "x@big.test", NULL) == SPF_PASS);
	CHECK("100 a terms: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@a.test", NULL) == SPF_PERMERROR);
	CHECK("100 a terms: nothing asked after the 11th",
	    spf_questions(&s) == 11);
	free(huge);
	free(big);
	free(many_a);
}

static int
labels_ok(const char *name)
{
	const char	*dot;

	for (;;) {
		dot = strchr(name, '.');
		if ((dot ? (size_t)(dot - name) : strlen(name)) > 63)
			return 0;
		if (dot == NULL)
			return 1;
		name = dot + 1;
	}
}

static void
test_macro_bombs(void)
{
	char		*bomb = repeat("v=spf1 exists:", "%{l}", 200,
			    ".x.test -all");
	char		*deep = repeat("v=spf1 exists:", "%{d50r}.%{s}.", 100,
			    "y.test -all");
	char		 local[80];
	size_t		 longest;
	struct zrr	 z[] = {
		{ "bomb.test", SPF_T_TXT, bomb, 0 },
		{ "deep.test", SPF_T_TXT, deep, 0 },
		{ "big.test", SPF_T_TXT,
		  "v=spf1 exists:%{d99999999999999999999r}.z.test -all", 0 },
		{ "zero.test", SPF_T_TXT, "v=spf1 exists:%{d0}.z.test -all", 0 },
		{ "open.test", SPF_T_TXT, "v=spf1 exists:%{d.z.test -all", 0 },
	};

	memset(local, 'q', 60);
	strlcpy(local + 60, "@bomb.test", sizeof(local) - 60);
	CHECK("%{l} x 200: a result", drive(z, NZ(z), "192.0.2.1", local,
	    &longest) == SPF_FAIL);
	/* One label of 12,000 octets: cut whole, as labels are. */
	CHECK("%{l} x 200: the name asked is cut label by label",
	    longest <= 253 && strcmp(s.q.name, "x.test") == 0);
	CHECK("%{l} x 200: two questions", spf_questions(&s) == 2);
	CHECK("%{d50r} bomb: a result", drive(z, NZ(z), "192.0.2.1",
	    "someone@deep.test", &longest) == SPF_FAIL && longest <= 253);
	CHECK("%{d50r} bomb: labels of 63 at most", labels_ok(s.q.name));
	CHECK("huge digit transformer: no overflow", drive(z, NZ(z),
	    "192.0.2.1", "x@big.test", NULL) == SPF_FAIL &&
	    strcmp(s.q.name, "test.big.z.test") == 0);
	CHECK("zero digit transformer: permerror", drive(z, NZ(z),
	    "192.0.2.1", "x@zero.test", NULL) == SPF_PERMERROR);
	CHECK("unclosed macro: permerror", drive(z, NZ(z), "192.0.2.1",
	    "x@open.test", NULL) == SPF_PERMERROR);
	free(bomb);
	free(deep);
}

static void
test_nul(void)
{
	static const char	nul_spf[] = "v=spf1 +all\0 -all";
	static const char	nul_other[] = "x\0y";
	static const char	nul_mx[] = "mx1.test\0.evil";
	const struct zrr	z[] = {
		{ "n.test", SPF_T_TXT, nul_spf, sizeof(nul_spf) - 1 },
		{ "o.test", SPF_T_TXT, nul_other, sizeof(nul_other) - 1 },
		{ "o.test", SPF_T_TXT, "v=spf1 mx -all", 0 },
		{ "o.test", SPF_T_MX, nul_mx, sizeof(nul_mx) - 1 },
		{ "o.test", SPF_T_MX, "mx2.test.", 0 },
		{ "mx1.test", SPF_T_A, "192.0.2.1", 0 },
		{ "mx2.test", SPF_T_A, "192.0.2.2", 0 },
	};

	CHECK("NUL in the SPF record: permerror, not pass",
	    drive(z, NZ(z), "192.0.2.1", "x@n.test", NULL) == SPF_PERMERROR);
	CHECK("NUL in an MX name: that name is skipped",
	    drive(z, NZ(z), "192.0.2.1", "x@o.test", NULL) == SPF_FAIL);
	CHECK("NUL in another TXT: ignored, the mx still matches",
	    drive(z, NZ(z), "192.0.2.2", "x@o.test", NULL) == SPF_PASS);
}

static void
test_limits(void)
{
	static const struct zrr z[] = {
		{ "v.test", SPF_T_TXT,
		  "v=spf1 a:n1.test a:n2.test a:n3.test a:n4.test +all", 0 },
		{ "mx.test", SPF_T_TXT, "v=spf1 mx -all", 0 },
		{ "mx.test", SPF_T_MX, "m1.test", 0 }, { "mx.test", SPF_T_MX, "m2.test", 0 },
		{ "mx.test", SPF_T_MX, "m3.test", 0 }, { "mx.test", SPF_T_MX, "m4.test", 0 },
		{ "mx.test", SPF_T_MX, "m5.test", 0 }, { "mx.test", SPF_T_MX, "m6.test", 0 },
		{ "mx.test", SPF_T_MX, "m7.test", 0 }, { "mx.test", SPF_T_MX, "m8.test", 0 },
		{ "mx.test", SPF_T_MX, "m9.test", 0 }, { "mx.test", SPF_T_MX, "m10.test", 0 },
		{ "mx.test", SPF_T_MX, "m11.test", 0 },
		{ "mods.test", SPF_T_TXT, "v=spf1 a:n1.test a:n2.test "
		  "exp=x%{l}y.test foo=a..b bar=%{l}.. +all", 0 },
		{ "pmod.test", SPF_T_TXT, "v=spf1 foo=%{p} exp=%{p}.x.test "
		  "redirect=%{p}.x.test ip4:192.0.2.0/24 -all", 0 },
		{ "two.test", SPF_T_TXT, "v=spf1 -all", 0 },
		{ "two.test", SPF_T_TXT, "v=spf1 +all", 0 },
		{ "deep0.test", SPF_T_TXT, "v=spf1 include:deep1.test -all", 0 },
		{ "deep1.test", SPF_T_TXT, "v=spf1 include:deep2.test -all", 0 },
		{ "deep2.test", SPF_T_TXT, "v=spf1 include:deep3.test -all", 0 },
		{ "deep3.test", SPF_T_TXT, "v=spf1 include:deep4.test -all", 0 },
		{ "deep4.test", SPF_T_TXT, "v=spf1 include:deep5.test -all", 0 },
		{ "deep5.test", SPF_T_TXT, "v=spf1 include:deep6.test -all", 0 },
		{ "deep6.test", SPF_T_TXT, "v=spf1 include:deep7.test -all", 0 },
		{ "deep7.test", SPF_T_TXT, "v=spf1 include:deep8.test -all", 0 },
		{ "deep8.test", SPF_T_TXT, "v=spf1 include:deep9.test -all", 0 },
		{ "deep9.test", SPF_T_TXT, "v=spf1 include:deep10.test -all", 0 },
		{ "deep10.test", SPF_T_TXT, "v=spf1 include:deep11.test -all", 0 },
		{ "deep11.test", SPF_T_TXT, "v=spf1 +all", 0 },
	};

	CHECK("third void lookup: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@v.test", NULL) == SPF_PERMERROR &&
	    spf_questions(&s) == 4);
	CHECK("modifiers are no lookups, void or not",
	    drive(z, NZ(z), "192.0.2.1", "x@mods.test", NULL) == SPF_PASS &&
	    spf_questions(&s) == 3);
	CHECK("%{p} in a modifier passed over: no PTR lookup",
	    drive(z, NZ(z), "192.0.2.1", "x@pmod.test", NULL) == SPF_PASS &&
	    spf_questions(&s) == 1);
	CHECK("11 MX names: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@mx.test", NULL) == SPF_PERMERROR &&
	    spf_questions(&s) == 2);
	CHECK("two SPF records: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@two.test", NULL) == SPF_PERMERROR);
	CHECK("includes 10 deep: pass",
	    drive(z, NZ(z), "192.0.2.1", "x@deep1.test", NULL) == SPF_PASS);
	CHECK("includes 11 deep: permerror",
	    drive(z, NZ(z), "192.0.2.1", "x@deep0.test", NULL) ==
	    SPF_PERMERROR);
}

static void
test_answers(void)
{
	struct spf_rr	rr[3];

	memset(rr, 0, sizeof(rr));
	spf_begin(&s, "192.0.2.1", "x@q.test", "helo.test", "us.test");
	CHECK("first question: TXT of the sender's domain",
	    spf_step(&s) == SPF_NEED_DNS && s.q.type == SPF_T_TXT &&
	    strcmp(s.q.name, "q.test") == 0);
	/* Records of the wrong type, a TXT without text. */
	rr[0].type = SPF_T_A;
	rr[1].type = SPF_T_TXT;
	rr[2].type = SPF_T_MX;
	spf_answer(&s, SPF_DNS_OK, rr, 3);
	CHECK("junk answer: none", spf_step(&s) == SPF_DONE &&
	    spf_result(&s) == SPF_NONE);
	spf_answer(&s, SPF_DNS_OK, rr, 3);
	CHECK("an answer after the end changes nothing",
	    spf_result(&s) == SPF_NONE);
	CHECK("not an address: -1", spf_begin(&s, "192.0.2", "x@q.test",
	    "h", "u") == -1);
	CHECK("null sender: the HELO name", spf_begin(&s, "::1", "",
	    "Mail.Example.ORG", "u") == 0 && spf_step(&s) == SPF_NEED_DNS &&
	    strcmp(s.q.name, "Mail.Example.ORG") == 0 &&
	    strcmp(s.sender, "postmaster@Mail.Example.ORG") == 0);
	CHECK("no domain: none", spf_begin(&s, "::1", "x@localhost", "h",
	    "u") == 0 && spf_step(&s) == SPF_DONE &&
	    spf_result(&s) == SPF_NONE && spf_questions(&s) == 0);
}

static void
test_explain(void)
{
	static const struct zrr z[] = {
		{ "e.test", SPF_T_TXT, "v=spf1 include:i.test -all", 0 },
		{ "i.test", SPF_T_TXT, "v=spf1 ip4:192.0.2.1 -all", 0 },
		{ "h.test", SPF_T_TXT, "v=spf1 include:%{l}.x.test -all", 0 },
		{ "(x)\\\".x.test", SPF_T_TXT, "v=spf1 +all", 0 },
	};
	const char	*e;

	CHECK("explanation: the include that matched",
	    drive(z, NZ(z), "192.0.2.1", "x@e.test", NULL) == SPF_PASS &&
	    strcmp(spf_explain(&s), "include:i.test matched in e.test") == 0);
	/* A name with what ends a header comment in it. */
	CHECK("explanation of a hostile name: pass",
	    drive(z, NZ(z), "192.0.2.9", "(x)\\\"@h.test", NULL) == SPF_PASS);
	e = spf_explain(&s);
	CHECK("explanation: nothing that ends a header comment",
	    strpbrk(e, "()\\\"") == NULL &&
	    strcmp(e, "include:?x???.x.test matched in h.test") == 0);
}

static void
expands(const char *ip, const char *macro, const char *want)
{
	char	out[SPF_NAME_MAX + 1], name[300];
	int	ok;

	spf_begin(&s, ip, "strong-bad@email.example.com", "h.test", "u.test");
	ok = spf_expand(&s, macro, strlen(macro), out, sizeof(out)) == 0 &&
	    strcmp(out, want) == 0;
	snprintf(name, sizeof(name), "%s -> %s", macro, want);
	CHECK(name, ok);
	if (!ok)
		printf("  got %s\n", out);
}

static void
test_rfc_examples(void)
{
	const char	*ip = "192.0.2.3";

	expands(ip, "%{s}", "strong-bad@email.example.com");
	expands(ip, "%{o}", "email.example.com");
	expands(ip, "%{d}", "email.example.com");
	expands(ip, "%{d4}", "email.example.com");
	expands(ip, "%{d3}", "email.example.com");
	expands(ip, "%{d2}", "example.com");
	expands(ip, "%{d1}", "com");
	expands(ip, "%{dr}", "com.example.email");
	expands(ip, "%{d2r}", "example.email");
	expands(ip, "%{l}", "strong-bad");
	expands(ip, "%{l-}", "strong.bad");
	expands(ip, "%{lr}", "strong-bad");
	expands(ip, "%{lr-}", "bad.strong");
	expands(ip, "%{l1r-}", "strong");
	expands(ip, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com");
	expands(ip, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com");
	expands(ip, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
	    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expands(ip, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
	    "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expands(ip, "%{d2}.trusted-domains.example.net",
	    "example.com.trusted-domains.example.net");
	expands("2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
	    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
	    ".ip6._spf.example.com");
	expands(ip, "%{S}.x", "strong-bad%40email.example.com.x");
	expands(ip, "a%%b%_c%-d.x", "a%b c%20d.x");
}

int
main(void)
{
	test_include_cycle();
	test_cname();
	test_long_records();
	test_macro_bombs();
	test_nul();
	test_limits();
	test_answers();
	test_explain();
	test_rfc_examples();
	CHECK("every drive ended within its loop bound", drive_loops < 1000);
	UNIT_EXIT();
}
