/*
 * The MX cache file (common/mxfile.c): the text form round-trips, and a
 * damaged file is refused whole with a reason, never half-read. Also the
 * order addresses are tried in (common/mxlookup.c).
 */
#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxfile.h"
#include "mxlookup.h"
#include "unit.h"

static void
add_rr(struct mxentry *e, uint16_t pref, const char *host, const char *addr)
{
	e->rr = realloc(e->rr, (e->n + 1) * sizeof(*e->rr));
	e->rr[e->n].pref = pref;
	strlcpy(e->rr[e->n].host, host, sizeof(e->rr[0].host));
	strlcpy(e->rr[e->n].addr, addr, sizeof(e->rr[0].addr));
	e->n++;
}

static void
sample(struct mxset *set)
{
	struct mxentry	*e;

	memset(set, 0, sizeof(*set));
	e = mxset_add(set);
	strlcpy(e->domain, "example.com", sizeof(e->domain));
	e->expires = 1764003600;
	e->status = MX_OK;
	add_rr(e, 10, "mx1.example.com", "192.0.2.1");
	add_rr(e, 10, "mx1.example.com", "2001:db8::1");
	add_rr(e, 20, "mx2.example.com", "192.0.2.2");
	e = mxset_add(set);
	strlcpy(e->domain, "gone.example", sizeof(e->domain));
	e->expires = 1764000300;
	e->status = MX_NXDOMAIN;
	e = mxset_add(set);
	strlcpy(e->domain, "null.example", sizeof(e->domain));
	e->expires = 1;
	e->status = MX_NULLMX;
	e = mxset_add(set);
	strlcpy(e->domain, "nohosts.example", sizeof(e->domain));
	e->expires = 99;
	e->status = MX_NOHOSTS;
}

static char *
format(const struct mxset *set, size_t *len)
{
	FILE	*fp;
	char	*text = NULL;
	size_t	 i;

	fp = open_memstream(&text, len);
	mxfile_print_header(fp);
	for (i = 0; i < set->n; i++)
		mxfile_print(fp, &set->v[i]);
	fclose(fp);
	return text;
}

static int
same_entry(const struct mxentry *a, const struct mxentry *b)
{
	size_t	i;

	if (strcmp(a->domain, b->domain) != 0 || a->expires != b->expires ||
	    a->status != b->status || a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->rr[i].pref != b->rr[i].pref ||
		    strcmp(a->rr[i].host, b->rr[i].host) != 0 ||
		    strcmp(a->rr[i].addr, b->rr[i].addr) != 0)
			return 0;
	return 1;
}

static void
test_roundtrip(void)
{
	struct mxset	 a, b;
	char		*text, err[256];
	size_t		 len, i;
	int		 same = 1;

	sample(&a);
	text = format(&a, &len);
	CHECK("roundtrip: header is a comment", text[0] == '#');
	CHECK("roundtrip: parses", mxfile_parse(text, len, &b, err,
	    sizeof(err)) == 0);
	CHECK("roundtrip: same count", b.n == a.n);
	for (i = 0; i < a.n && i < b.n; i++)
		same &= same_entry(&a.v[i], &b.v[i]);
	CHECK("roundtrip: same entries", same);
	CHECK("roundtrip: find", mxset_find(&b, "null.example") != NULL &&
	    mxset_find(&b, "null.example")->status == MX_NULLMX &&
	    mxset_find(&b, "nope.example") == NULL);
	CHECK("roundtrip: documented form", strstr(text, "domain example.com\n"
	    "expires 1764003600\nstatus ok\nmx 10 mx1.example.com 192.0.2.1\n"
	    "mx 10 mx1.example.com 2001:db8::1\nmx 20 mx2.example.com "
	    "192.0.2.2\n\n") != NULL);
	mxset_free(&b);
	free(text);
	mxset_free(&a);
}

static void
test_memfd(void)
{
	struct mxset	 a;
	char		*text, *back = NULL;
	size_t		 len, blen = 0;
	int		 fd;

	sample(&a);
	text = format(&a, &len);
	fd = memfd_create("t", MFD_CLOEXEC);
	CHECK("memfd: written", write(fd, text, len) == (ssize_t)len);
	/* The offset is shared with the sender: reading starts at 0. */
	CHECK("memfd: read back", mxfile_read_fd(fd, MXFILE_MAX, &back,
	    &blen) == 0 && blen == len && memcmp(back, text, len) == 0);
	free(back);
	CHECK("memfd: too large refused", mxfile_read_fd(fd, len - 1, &back,
	    &blen) == -1);
	close(fd);
	free(text);
	mxset_free(&a);
}

static int
parses(const char *text)
{
	struct mxset	set;
	char		err[256];
	int		r;

	r = mxfile_parse(text, strlen(text), &set, err, sizeof(err));
	if (r == -1 && (set.n != 0 || set.v != NULL || err[0] == '\0'))
		return -2;	/* refused, but not cleanly */
	mxset_free(&set);
	return r;
}

#define BLOCK(body)	"domain a.example\nexpires 5\n" body

static void
test_good_files(void)
{
	CHECK("good: empty file", parses("") == 0);
	CHECK("good: comments and blanks", parses("# x\n\n\n# y\n") == 0);
	CHECK("good: no final newline", parses(BLOCK("status nxdomain")) == 0);
	CHECK("good: tabs and spaces", parses("domain\ta.example\nexpires  5\n"
	    "status ok\nmx 0  a.example\t127.0.0.1\n") == 0);
	CHECK("good: blocks without blank lines", parses(BLOCK(
	    "status nxdomain\n") "domain b.example\nexpires 1\n"
	    "status nullmx\n") == 0);
}

static void
test_corrupt_files(void)
{
	static const struct {
		const char	*name;
		const char	*text;
	} bad[] = {
		{ "unknown keyword", BLOCK("status ok\nttl 5\n") },
		{ "no expires", "domain a.example\nstatus nxdomain\n" },
		{ "no status", "domain a.example\nexpires 5\n\n" },
		{ "ok without mx", BLOCK("status ok\n") },
		{ "mx with nxdomain", BLOCK("status nxdomain\n"
		    "mx 1 a.example 192.0.2.1\n") },
		{ "mx before nullmx", BLOCK("mx 1 a.example 192.0.2.1\n"
		    "status nullmx\n") },
		{ "tempfail stored", BLOCK("status tempfail\n") },
		{ "unknown status", BLOCK("status maybe\n") },
		{ "preference too big", BLOCK("status ok\n"
		    "mx 65536 a.example 192.0.2.1\n") },
		{ "negative preference", BLOCK("status ok\n"
		    "mx -1 a.example 192.0.2.1\n") },
		{ "preference with sign", BLOCK("status ok\n"
		    "mx +1 a.example 192.0.2.1\n") },
		{ "bad IPv4", BLOCK("status ok\nmx 1 a.example 192.0.2\n") },
		{ "bad IPv6", BLOCK("status ok\nmx 1 a.example 2001:db8::g\n") },
		{ "host name", BLOCK("status ok\nmx 1 a.example mx.example\n") },
		{ "bad host", BLOCK("status ok\nmx 1 a..example 192.0.2.1\n") },
		{ "upper-case domain", "domain A.example\nexpires 5\n"
		    "status nxdomain\n" },
		{ "domain with dot", "domain a.example.\nexpires 5\n"
		    "status nxdomain\n" },
		{ "bad domain", "domain a/b\nexpires 5\nstatus nxdomain\n" },
		{ "expires twice", BLOCK("expires 6\nstatus nxdomain\n") },
		{ "status twice", BLOCK("status nxdomain\nstatus nxdomain\n") },
		{ "expires not a number", "domain a.example\nexpires soon\n"
		    "status nxdomain\n" },
		{ "expires negative", "domain a.example\nexpires -5\n"
		    "status nxdomain\n" },
		{ "expires huge", "domain a.example\n"
		    "expires 99999999999999999999999\nstatus nxdomain\n" },
		{ "expires past the year 9999", "domain a.example\n"
		    "expires 253402300800\nstatus nxdomain\n" },
		{ "expires far past", "domain a.example\n"
		    "expires 9223372036854775807\nstatus nxdomain\n" },
		{ "mx before domain", "mx 1 a.example 192.0.2.1\n" },
		{ "expires before domain", "expires 5\n" },
		{ "duplicate domain", BLOCK("status nxdomain\n\n")
		    BLOCK("status nohosts\n") },
		{ "missing value", BLOCK("status\n") },
		{ "extra value", BLOCK("status ok extra\n") },
		{ "mx out of order", BLOCK("status ok\n"
		    "mx 20 a.example 192.0.2.1\nmx 10 b.example 192.0.2.2\n") },
		{ "many words", BLOCK("status ok\nmx 1 2 3 4 5 6 7\n") },
		{ "python dict (PyMaild 0.2)", "{'a.example': [('mx.a.example', "
		    "'192.0.2.1', 10)]}\n" },
	};
	char	 text[64 * 1024], *p;
	size_t	 i;
	int	 n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char	name[128];

		snprintf(name, sizeof(name), "corrupt: %s", bad[i].name);
		CHECK(name, parses(bad[i].text) == -1);
	}
	/* More addresses than a reply can hold. */
	p = text + snprintf(text, sizeof(text), BLOCK("status ok\n"));
	for (n = 0; n <= MX_MAX_HOSTS; n++)
		p += snprintf(p, text + sizeof(text) - p,
		    "mx 1 a.example 192.0.2.%d\n", n + 1);
	CHECK("corrupt: too many mx lines", parses(text) == -1);
	/* Exactly the maximum is fine. */
	text[strlen(text) - 1] = '\0';
	*(strrchr(text, '\n') + 1) = '\0';
	CHECK("good: MX_MAX_HOSTS mx lines", parses(text) == 0);
	memset(text, 'a', 2000);
	text[2000] = '\0';
	CHECK("corrupt: long line", parses(text) == -1);
	{
		struct mxset	set;
		char		err[256];
		const char	nul[] = "domain a.example\0\nexpires 5\n";

		CHECK("corrupt: NUL byte", mxfile_parse(nul, sizeof(nul) - 1,
		    &set, err, sizeof(err)) == -1 && set.n == 0);
		CHECK("corrupt: reason names the line", mxfile_parse(
		    "# x\n" BLOCK("status ok\n"), strlen("# x\n"
		    BLOCK("status ok\n")), &set, err, sizeof(err)) == -1 &&
		    strncmp(err, "line ", 5) == 0);
	}
}

static void
test_normalize(void)
{
	char	out[MX_NAME_MAX + 1], big[300];

	CHECK("normalize: lower-case, final dot", mx_domain_normalize(
	    "Mail.Example.COM.", out) == 0 && strcmp(out,
	    "mail.example.com") == 0);
	CHECK("normalize: underscore, hyphen, digits", mx_domain_normalize(
	    "_a-1.b2", out) == 0);
	CHECK("normalize: empty", mx_domain_normalize("", out) == -1);
	CHECK("normalize: root", mx_domain_normalize(".", out) == -1);
	CHECK("normalize: empty label", mx_domain_normalize("a..b", out) ==
	    -1);
	CHECK("normalize: leading dot", mx_domain_normalize(".a", out) == -1);
	CHECK("normalize: space", mx_domain_normalize("a b", out) == -1);
	CHECK("normalize: bracket literal", mx_domain_normalize("[1.2.3.4]",
	    out) == -1);
	CHECK("normalize: UTF-8", mx_domain_normalize("caf\xc3\xa9.example",
	    out) == -1);
	memset(big, 'a', 64);
	big[64] = '\0';
	CHECK("normalize: 64-octet label", mx_domain_normalize(big, out) ==
	    -1);
	big[63] = '\0';
	CHECK("normalize: 63-octet label", mx_domain_normalize(big, out) ==
	    0);
	memset(big, 'a', 254);
	for (int i = 50; i < 254; i += 50)
		big[i] = '.';
	big[254] = '\0';
	CHECK("normalize: 254 octets", mx_domain_normalize(big, out) == -1);
	big[253] = '\0';
	CHECK("normalize: 253 octets", mx_domain_normalize(big, out) == 0);
}

/* Preference 10: hosts a (2 addresses), b, c; preference 20: d (2). */
static void
test_try_order(void)
{
	struct mxentry	e;
	size_t		order[MX_MAX_HOSTS], n, i;
	int		firsts[3] = { 0, 0, 0 }, ok = 1, run;

	memset(&e, 0, sizeof(e));
	add_rr(&e, 10, "a.example", "192.0.2.1");
	add_rr(&e, 10, "a.example", "2001:db8::1");
	add_rr(&e, 10, "b.example", "192.0.2.2");
	add_rr(&e, 10, "c.example", "192.0.2.3");
	add_rr(&e, 20, "d.example", "192.0.2.4");
	add_rr(&e, 20, "d.example", "2001:db8::4");
	for (run = 0; run < 300; run++) {
		n = mx_try_order(&e, order);
		if (n != 6) {
			ok = 0;
			break;
		}
		/* Preference order, every address once. */
		for (i = 1; i < n; i++)
			if (e.rr[order[i]].pref < e.rr[order[i - 1]].pref)
				ok = 0;
		for (i = 0; i < n; i++)
			if (order[i] == 0 && (i + 1 == n || order[i + 1] != 1))
				ok = 0;	/* a's addresses together, in order */
		if (order[4] != 4 || order[5] != 5)
			ok = 0;
		firsts[order[0] == 0 ? 0 : order[0] == 2 ? 1 : 2]++;
	}
	CHECK("order: preference, hosts kept together", ok);
	CHECK("order: each equal host comes first sometimes", firsts[0] > 0 &&
	    firsts[1] > 0 && firsts[2] > 0);
	mxentry_free(&e);
}

static void
test_summary(void)
{
	char	buf[512];

	CHECK("summary: ok", mxrefresh_summary(buf, sizeof(buf), 3, 0, "") ==
	    0 && strcmp(buf, "MX cache refreshed: 3 domains.\n") == 0);
	CHECK("summary: one", mxrefresh_summary(buf, sizeof(buf), 1, 0, "") ==
	    0 && strcmp(buf, "MX cache refreshed: 1 domain.\n") == 0);
	CHECK("summary: all failed", mxrefresh_summary(buf, sizeof(buf), 2, 2,
	    "no answer from resolver 127.0.0.1:53") == -1 && strcmp(buf,
	    "updatemx: no answer from resolver 127.0.0.1:53") == 0);
	CHECK("summary: some failed", mxrefresh_summary(buf, sizeof(buf), 3,
	    1, "x") == -1 && strcmp(buf,
	    "updatemx: 1 of 3 domains not refreshed: x") == 0);
}

/*
 * A1 clamps TTLs to a day: an entry that would live longer (a clock that
 * went back, a hand-edited file, the year 5138) expires a day from now.
 */
static void
test_clamp(void)
{
	struct mxset	 set;
	char		 err[256];
	const time_t	 now = 1764000000;
	const char	 text[] =
	    "domain far.example\nexpires 99999999999\nstatus nxdomain\n\n"
	    "domain near.example\nexpires 1764000300\nstatus nxdomain\n\n"
	    "domain day.example\nexpires 1764086400\nstatus nxdomain\n\n"
	    "domain past.example\nexpires 5\nstatus nxdomain\n";

	CHECK("clamp: year 5138 parses", mxfile_parse(text, strlen(text),
	    &set, err, sizeof(err)) == 0 && set.n == 4);
	CHECK("clamp: one entry clamped",
	    mxset_clamp(&set, now, MX_TTL_MAX) == 1);
	CHECK("clamp: to now + 1 day", set.v[0].expires == now + MX_TTL_MAX);
	CHECK("clamp: a near one kept", set.v[1].expires == 1764000300);
	CHECK("clamp: exactly a day kept", set.v[2].expires == 1764086400);
	CHECK("clamp: an expired one kept", set.v[3].expires == 5);
	CHECK("clamp: twice is nothing more",
	    mxset_clamp(&set, now, MX_TTL_MAX) == 0);
	mxset_free(&set);
	CHECK("clamp: year 9999 is not garbage", parses("domain a.example\n"
	    "expires 253402300799\nstatus nxdomain\n") == 0);
}

int
main(void)
{
	test_roundtrip();
	test_memfd();
	test_good_files();
	test_corrupt_files();
	test_normalize();
	test_try_order();
	test_summary();
	test_clamp();
	UNIT_EXIT();
}
