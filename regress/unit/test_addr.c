/*
 * Unit tests for common/addr.c: one check per rule of RFC 5321 4.1.2 and
 * 4.5.3.1, plus the SMTPUTF8 additions of RFC 6531.
 */

#include <string.h>

#include "addr.h"
#include "unit.h"

static struct mailaddr	a;
static const char	*rest, *why;

/* Parse s as a path; 1 when it succeeds. */
static int
ok(const char *s, int flags)
{
	return addr_parse_path(s, flags, &a, &rest, &why) == 0;
}

/* 1 when s is refused as a path for the given reason. */
static int
bad(const char *s, int flags, const char *reason)
{
	if (addr_parse_path(s, flags, &a, &rest, &why) != -1)
		return 0;
	if (why == NULL || strcmp(why, reason) != 0) {
		printf("# \"%s\": got \"%s\", want \"%s\"\n", s,
		    why ? why : "(null)", reason);
		return 0;
	}
	return 1;
}

/* "<" + local + "@" + domain + ">" with runs of 'a' of the given sizes. */
static const char *
mkpath(char *buf, size_t len, size_t nlocal, const char *domain)
{
	size_t	i = 0;

	buf[i++] = '<';
	memset(buf + i, 'a', nlocal);
	i += nlocal;
	snprintf(buf + i, len - i, "@%s>", domain);
	return buf;
}

/* n octets of dot-separated 63-octet labels (the last may be shorter). */
static const char *
mkdomain(char *buf, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		buf[i] = (i % 64 == 63) ? '.' : 'b';
	buf[n] = '\0';
	return buf;
}

static void
test_basic(void)
{
	CHECK("plain address", ok("<user@example.com>", 0) &&
	    strcmp(a.local, "user") == 0 &&
	    strcmp(a.domain, "example.com") == 0 &&
	    !a.quoted && !a.literal && !a.had_route && !a.null);
	CHECK("plain: rest at end", ok("<user@example.com>", 0) &&
	    *rest == '\0');
	CHECK("rest after '>' points at params",
	    ok("<user@example.com> SIZE=100", 0) &&
	    strcmp(rest, " SIZE=100") == 0);
	CHECK("rest: text glued to '>' is left to the caller",
	    ok("<u@example.com>x", 0) && strcmp(rest, "x") == 0);
	CHECK("single-label domain", ok("<u@localhost>", 0));
	CHECK("atext specials in dot-string",
	    ok("<!#$%&'*+-/=?^_`{|}~@example.com>", 0));
	CHECK("dot-string with dots", ok("<first.middle.last@x.org>", 0) &&
	    strcmp(a.local, "first.middle.last") == 0);
	CHECK("rest and why may be NULL",
	    addr_parse_path("<u@x.org>", 0, &a, NULL, NULL) == 0 &&
	    addr_parse_path("<u@>", 0, &a, NULL, NULL) == -1);
	CHECK("failure leaves out zeroed",
	    !ok("<Foo@example.com", 0) && a.local[0] == '\0' &&
	    a.domain[0] == '\0');
}

static void
test_null(void)
{
	CHECK("null path with ADDR_ALLOW_NULL",
	    ok("<> BODY=8BITMIME", ADDR_ALLOW_NULL) && a.null &&
	    a.local[0] == '\0' && a.domain[0] == '\0' &&
	    strcmp(rest, " BODY=8BITMIME") == 0);
	CHECK("null path without flag", bad("<>", 0, "null path not allowed"));
	CHECK("null path: route chars false", ok("<>", ADDR_ALLOW_NULL) &&
	    !addr_has_route_chars(&a));
}

static void
test_route(void)
{
	CHECK("source route accepted and dropped",
	    ok("<@a.example,@b.example:u@c.example>", 0) && a.had_route &&
	    strcmp(a.local, "u") == 0 && strcmp(a.domain, "c.example") == 0);
	CHECK("single-hop source route", ok("<@relay.org:u@x.org>", 0) &&
	    a.had_route);
	CHECK("source route: bad separator",
	    bad("<@a.example;u@c.example>", 0, "bad character in domain"));
	CHECK("source route: missing ':'",
	    bad("<@a.example>", 0, "bad source route"));
	CHECK("source route: empty at-domain",
	    bad("<@a.example,@:u@c.example>", 0, "empty domain"));
	CHECK("source route: bad at-domain",
	    bad("<@-a.example:u@c.example>", 0,
	    "domain label starts or ends with hyphen"));
	CHECK("source route: no literal",
	    bad("<@[192.0.2.1]:u@c.example>", 0,
	    "address literal in source route"));
	CHECK("source route: no mailbox",
	    bad("<@a.example:>", 0, "empty local part"));
}

static void
test_quoted(void)
{
	CHECK("quoted local part with escaped quote",
	    ok("<\"a\\\"b\"@example.com>", 0) && a.quoted &&
	    strcmp(a.local, "\"a\\\"b\"") == 0);
	CHECK("quoted local part with '@' inside",
	    ok("<\"a@b\"@example.com>", 0) && a.quoted &&
	    strcmp(a.local, "\"a@b\"") == 0 &&
	    strcmp(a.domain, "example.com") == 0);
	CHECK("quoted '@' flagged as route chars",
	    ok("<\"a@b\"@example.com>", 0) && addr_has_route_chars(&a));
	CHECK("quoted local part with space and '>'",
	    ok("<\"john >smith\"@example.com>", 0) &&
	    strcmp(a.domain, "example.com") == 0);
	CHECK("quoted: empty string is grammatical",
	    ok("<\"\"@example.com>", 0) && strcmp(a.local, "\"\"") == 0);
	CHECK("quoted: escaped backslash",
	    ok("<\"a\\\\\"@example.com>", 0));
	CHECK("quoted: unterminated",
	    bad("<\"abc@example.com>", 0, "unterminated quoted local part"));
	CHECK("quoted: escape of a control char",
	    bad("<\"a\\\tb\"@example.com>", 0,
	    "bad escape in quoted local part"));
	CHECK("quoted: text after closing quote",
	    bad("<\"a\"b@example.com>", 0, "bad character in local part"));
}

static void
test_routechars(void)
{
	CHECK("percent hack flagged",
	    ok("<u%other.org@example.com>", 0) && addr_has_route_chars(&a));
	CHECK("bang path flagged",
	    ok("<host!u@example.com>", 0) && addr_has_route_chars(&a));
	CHECK("plain address not flagged",
	    ok("<u.v-w+x@example.com>", 0) && !addr_has_route_chars(&a));
}

static void
test_dotstring(void)
{
	CHECK("local: leading dot",
	    bad("<.u@example.com>", 0, "empty atom in local part"));
	CHECK("local: trailing dot",
	    bad("<u.@example.com>", 0, "empty atom in local part"));
	CHECK("local: double dot",
	    bad("<u..v@example.com>", 0, "empty atom in local part"));
	CHECK("local: '<@>' is an empty route", bad("<@>", 0, "empty domain"));
	CHECK("mailbox: empty local part",
	    addr_parse_mailbox("@example.com", 0, &a, &why) == -1 &&
	    strcmp(why, "empty local part") == 0);
	CHECK("local: non-atext char",
	    bad("<u(v)@example.com>", 0, "bad character in local part"));
	CHECK("no domain: <postmaster>",
	    bad("<postmaster>", 0, "missing domain"));
	CHECK("no domain: '@' then '>'", bad("<u@>", 0, "empty domain"));
}

static void
test_lengths(void)
{
	char	buf[1024], dom[512];

	CHECK("local part of 64 octets",
	    ok(mkpath(buf, sizeof(buf), 64, "x.org"), 0) &&
	    strlen(a.local) == 64);
	CHECK("local part of 65 octets",
	    bad(mkpath(buf, sizeof(buf), 65, "x.org"), 0,
	    "local part too long"));
	snprintf(buf, sizeof(buf), "<\"%062d\"@x.org>", 0);
	CHECK("quoted local part of 64 octets", ok(buf, 0));
	snprintf(buf, sizeof(buf), "<\"%063d\"@x.org>", 0);
	CHECK("quoted local part of 65 octets",
	    bad(buf, 0, "local part too long"));

	memset(dom, 'b', 63);
	strlcpy(dom + 63, ".org", sizeof(dom) - 63);
	CHECK("domain label of 63 octets",
	    ok(mkpath(buf, sizeof(buf), 1, dom), 0));
	memset(dom, 'b', 64);
	strlcpy(dom + 64, ".org", sizeof(dom) - 64);
	CHECK("domain label of 64 octets",
	    bad(mkpath(buf, sizeof(buf), 1, dom), 0,
	    "domain label too long"));

	CHECK("domain of 255 octets", addr_domain_valid(mkdomain(dom, 255),
	    0));
	CHECK("domain of 256 octets", !addr_domain_valid(mkdomain(dom, 256),
	    0));
	CHECK("domain of 400 octets", !addr_domain_valid(mkdomain(dom, 400),
	    0));

	/* "<" + 1 + "@" + 252 + ">" = 256 */
	CHECK("path of 256 octets",
	    ok(mkpath(buf, sizeof(buf), 1, mkdomain(dom, 252)), 0) &&
	    *rest == '\0');
	CHECK("path of 257 octets",
	    bad(mkpath(buf, sizeof(buf), 1, mkdomain(dom, 253)), 0,
	    "path too long"));
	CHECK("path of 256 octets with params after",
	    (snprintf(buf, sizeof(buf), "<a@%s> SIZE=1",
	    mkdomain(dom, 252)), ok(buf, 0)) && strcmp(rest, " SIZE=1") == 0);
	CHECK("long path without '>'",
	    (snprintf(buf, sizeof(buf), "<a@%s", mkdomain(dom, 400)),
	    bad(buf, 0, "path too long")));
	CHECK("source route counts toward the path length",
	    (snprintf(buf, sizeof(buf), "<@%s:a@b.org>", mkdomain(dom, 250)),
	    bad(buf, 0, "path too long")));
}

static void
test_domains(void)
{
	CHECK("domain: leading hyphen",
	    bad("<u@-x.org>", 0, "domain label starts or ends with hyphen"));
	CHECK("domain: trailing hyphen",
	    bad("<u@x-.org>", 0, "domain label starts or ends with hyphen"));
	CHECK("domain: inner hyphen", ok("<u@x--y.org>", 0));
	CHECK("domain: digits", ok("<u@123.example>", 0));
	CHECK("domain: double dot",
	    bad("<u@x..org>", 0, "empty label in domain"));
	CHECK("domain: leading dot",
	    bad("<u@.x.org>", 0, "empty label in domain"));
	CHECK("domain: trailing dot",
	    bad("<u@x.org.>", 0, "trailing dot in domain"));
	CHECK("domain: underscore",
	    bad("<u@x_y.org>", 0, "bad character in domain"));
	CHECK("domain: space before '>'",
	    bad("<u@x.org >", 0, "bad character in domain"));
	CHECK("domain: case folded, local part kept",
	    ok("<Foo.Bar@ExAmPle.COM>", 0) &&
	    strcmp(a.local, "Foo.Bar") == 0 &&
	    strcmp(a.domain, "example.com") == 0);
	CHECK("addr_domain_valid: good", addr_domain_valid("mail.x.org", 0));
	CHECK("addr_domain_valid: empty", !addr_domain_valid("", 0));
	CHECK("addr_domain_valid: literal",
	    addr_domain_valid("[192.0.2.1]", 0));
}

static void
test_literals(void)
{
	CHECK("IPv4 literal", ok("<u@[192.0.2.1]>", 0) && a.literal &&
	    strcmp(a.domain, "[192.0.2.1]") == 0);
	CHECK("IPv4 literal: octet > 255",
	    bad("<u@[256.0.2.1]>", 0, "bad IPv4 address literal"));
	CHECK("IPv4 literal: three octets",
	    bad("<u@[192.0.2]>", 0, "bad IPv4 address literal"));
	CHECK("IPv4 literal: five octets",
	    bad("<u@[192.0.2.1.5]>", 0, "bad IPv4 address literal"));
	CHECK("IPv4 literal: empty", bad("<u@[]>", 0, "bad address literal"));
	CHECK("literal: missing ']'",
	    bad("<u@[192.0.2.1>", 0, "bad address literal"));
	CHECK("literal: text after ']'",
	    bad("<u@[192.0.2.1]x>", 0, "bad address literal"));
	CHECK("IPv6 literal", ok("<u@[IPv6:2001:DB8::1]>", 0) && a.literal &&
	    strcmp(a.domain, "[ipv6:2001:db8::1]") == 0);
	CHECK("IPv6 literal: tag case-insensitive",
	    ok("<u@[iPV6:::1]>", 0) && a.literal);
	CHECK("IPv6 literal: IPv4-mapped form",
	    ok("<u@[IPv6:::ffff:192.0.2.1]>", 0));
	CHECK("IPv6 literal: bad address",
	    bad("<u@[IPv6:2001:db8:::1]>", 0, "bad IPv6 address literal"));
	CHECK("IPv6 literal: IPv4 after tag",
	    bad("<u@[IPv6:192.0.2.1]>", 0, "bad IPv6 address literal"));
	CHECK("IPv6 literal: no tag",
	    bad("<u@[2001:db8::1]>", 0,
	    "general address literal not supported"));
	CHECK("general address literal refused",
	    bad("<u@[x400:c=us]>", 0,
	    "general address literal not supported"));
	CHECK("literal: too long for an address",
	    bad("<u@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000:"
	    "0000:0000]>", 0,
	    "bad address literal"));
}

static void
test_utf8(void)
{
	/* "用户@例子.测试" and "jöran@bücher.de" */
	const char *cjk = "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90."
	    "\xe6\xb5\x8b\xe8\xaf\x95>";
	const char *de = "<j\xc3\xb6ran@B\xc3\xbc" "cher.DE>";

	CHECK("UTF-8 with ADDR_UTF8", ok(cjk, ADDR_UTF8));
	CHECK("UTF-8 domain folded in its ASCII part only",
	    ok(de, ADDR_UTF8) && strcmp(a.domain, "b\xc3\xbc" "cher.de") == 0 &&
	    strcmp(a.local, "j\xc3\xb6ran") == 0);
	CHECK("UTF-8 local part without flag",
	    bad(cjk, 0, "8-bit local part requires SMTPUTF8"));
	CHECK("UTF-8 domain without flag",
	    bad("<u@b\xc3\xbc" "cher.de>", 0,
	    "8-bit domain requires SMTPUTF8"));
	CHECK("UTF-8 in quoted local part",
	    ok("<\"j\xc3\xb6 r\"@x.org>", ADDR_UTF8) && a.quoted);
	CHECK("UTF-8 in quoted local part without flag",
	    bad("<\"j\xc3\xb6 r\"@x.org>", 0,
	    "8-bit local part requires SMTPUTF8"));
	CHECK("UTF-8: overlong NUL refused",
	    bad("<a\xc0\x80@x.org>", ADDR_UTF8, "bad UTF-8 in local part"));
	CHECK("UTF-8: lone continuation byte refused",
	    bad("<u@x\x80.org>", ADDR_UTF8, "bad UTF-8 in domain"));
	CHECK("UTF-8: truncated sequence refused",
	    bad("<u\xe4\xbe@x.org>", ADDR_UTF8, "bad UTF-8 in local part"));
	CHECK("UTF-8: surrogate refused",
	    bad("<u\xed\xa0\x80@x.org>", ADDR_UTF8, "bad UTF-8 in local part"));
	CHECK("UTF-8: C1 control (NEL) refused",
	    bad("<u\xc2\x85@x.org>", ADDR_UTF8, "bad UTF-8 in local part"));
	CHECK("UTF-8: hyphen rule holds for U-labels",
	    bad("<u@-b\xc3\xbc.de>", ADDR_UTF8,
	    "domain label starts or ends with hyphen"));
	CHECK("UTF-8: control chars still refused",
	    bad("<u\r@x.org>", ADDR_UTF8, "control character in local part"));
}

static void
test_controls(void)
{
	static const char early[] = "<u@x.org\0>";

	CHECK("CR in local part",
	    bad("<u\r@x.org>", 0, "control character in local part"));
	CHECK("LF in domain", bad("<u@x\n.org>", 0, "bad character in domain"));
	CHECK("CRLF after path is the caller's",
	    ok("<u@x.org>\r\n", 0) && strcmp(rest, "\r\n") == 0);
	CHECK("NUL ends the input early", bad(early, 0, "missing '>'"));
	CHECK("TAB in local part",
	    bad("<u\tv@x.org>", 0, "control character in local part"));
	CHECK("TAB in quoted local part",
	    bad("<\"u\tv\"@x.org>", 0, "control character in local part"));
	CHECK("DEL in local part",
	    bad("<u\x7f@x.org>", 0, "control character in local part"));
	CHECK("CR in quoted local part",
	    bad("<\"u\r\"@x.org>", 0, "control character in local part"));
}

static void
test_syntax(void)
{
	CHECK("missing '>'", bad("<u@x.org", 0, "missing '>'"));
	CHECK("missing '<'", bad("u@x.org>", 0, "missing '<'"));
	CHECK("empty input", bad("", 0, "missing '<'"));
	CHECK("lone '<'", bad("<", 0, "empty local part"));
	CHECK("space after '<'",
	    bad("< u@x.org>", 0, "bad character in local part"));
	CHECK("space before '@'",
	    bad("<u @x.org>", 0, "bad character in local part"));
	CHECK("space before '<' is the caller's",
	    bad(" <u@x.org>", 0, "missing '<'"));
	CHECK("garbage inside brackets",
	    bad("<u@x.org junk>", 0, "bad character in domain"));
	CHECK("two '@'", bad("<u@v@x.org>", 0, "bad character in domain"));
	CHECK("second '>' left in rest", ok("<u@x.org>>", 0) &&
	    strcmp(rest, ">") == 0);
}

static void
test_mailbox(void)
{
	char	buf[600], dom[512];

	CHECK("mailbox: plain",
	    addr_parse_mailbox("User@Example.COM", 0, &a, &why) == 0 &&
	    strcmp(a.local, "User") == 0 &&
	    strcmp(a.domain, "example.com") == 0);
	CHECK("mailbox: literal",
	    addr_parse_mailbox("u@[192.0.2.1]", 0, &a, &why) == 0 &&
	    a.literal);
	CHECK("mailbox: brackets refused",
	    addr_parse_mailbox("<u@x.org>", 0, &a, &why) == -1);
	CHECK("mailbox: garbage after",
	    addr_parse_mailbox("u@x.org>", 0, &a, &why) == -1 &&
	    addr_parse_mailbox("u@x.org extra", 0, &a, &why) == -1);
	CHECK("mailbox: no domain",
	    addr_parse_mailbox("postmaster", 0, &a, &why) == -1 &&
	    strcmp(why, "missing domain") == 0);
	CHECK("mailbox: empty",
	    addr_parse_mailbox("", 0, &a, &why) == -1);
	CHECK("mailbox: '>' in local part",
	    addr_parse_mailbox("u>v@x.org", 0, &a, &why) == -1 &&
	    strcmp(why, "bad character in local part") == 0);
	snprintf(buf, sizeof(buf), "a@%s", mkdomain(dom, 252));
	CHECK("mailbox: 254 octets", addr_parse_mailbox(buf, 0, &a, &why) == 0);
	snprintf(buf, sizeof(buf), "a@%s", mkdomain(dom, 253));
	CHECK("mailbox: 255 octets", addr_parse_mailbox(buf, 0, &a, &why) ==
	    -1 && strcmp(why, "address too long") == 0);
	CHECK("mailbox: null not possible",
	    addr_parse_mailbox("", ADDR_ALLOW_NULL, &a, &why) == -1);
}

static void
test_format(void)
{
	char	buf[64], path[600], big[ADDR_PATH_MAX], dom[512];

	ok("<User@Example.COM>", 0);
	CHECK("format: local@domain",
	    addr_format(&a, buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "User@example.com") == 0);
	CHECK("format: exact fit",
	    addr_format(&a, buf, strlen("User@example.com") + 1) == 0 &&
	    strcmp(buf, "User@example.com") == 0);
	CHECK("format: one short",
	    addr_format(&a, buf, strlen("User@example.com")) == -1 &&
	    buf[0] == '\0');
	CHECK("format: zero length", addr_format(&a, buf, 0) == -1);
	ok("<>", ADDR_ALLOW_NULL);
	CHECK("format: null path", (buf[0] = 'x', addr_format(&a, buf,
	    sizeof(buf))) == 0 && buf[0] == '\0');
	CHECK("format: null path, zero length",
	    addr_format(&a, buf, 0) == -1);
	snprintf(path, sizeof(path), "<a@%s>", mkdomain(dom, 252));
	CHECK("format: longest path fits ADDR_PATH_MAX",
	    ok(path, 0) && addr_format(&a, big, sizeof(big)) == 0 &&
	    strlen(big) == 254);
	memset(&a, 'x', sizeof(a));
	a.null = 0;
	CHECK("format: unterminated struct bounded",
	    addr_format(&a, buf, sizeof(buf)) == -1);
	CHECK("route chars: unterminated struct bounded",
	    !addr_has_route_chars(&a));
}

/* Parse path s, then write it: the canonical form the server keeps. */
static const char *
canon(const char *s, int flags)
{
	static char	buf[ADDR_PATH_MAX];

	if (addr_parse_path(s, flags, &a, &rest, &why) == -1)
		return why;
	if (addr_format(&a, buf, sizeof(buf)) == -1)
		return "(does not format)";
	return buf;
}

static int
canon_is(const char *s, int flags, const char *want)
{
	const char	*got = canon(s, flags);

	if (strcmp(got, want) != 0) {
		printf("# %s: got '%s', want '%s'\n", s, got, want);
		return 0;
	}
	return 1;
}

static void
test_canonical(void)
{
	CHECK("canonical: needless quotes dropped",
	    canon_is("<\"alice\"@x.org>", 0, "alice@x.org") && !a.quoted);
	CHECK("canonical: needless escape dropped",
	    canon_is("<\"al\\ice\"@x.org>", 0, "alice@x.org") && !a.quoted);
	CHECK("canonical: dotted atoms unquoted",
	    canon_is("<\"a.b.c\"@x.org>", 0, "a.b.c@x.org"));
	CHECK("canonical: atext specials unquoted",
	    canon_is("<\"a+b=c\"@x.org>", 0, "a+b=c@x.org"));
	CHECK("canonical: space keeps the quotes",
	    canon_is("<\"a b\"@x.org>", 0, "\"a b\"@x.org") && a.quoted);
	CHECK("canonical: escaped space is a space",
	    canon_is("<\"a\\ b\"@x.org>", 0, "\"a b\"@x.org"));
	CHECK("canonical: backslash stays escaped",
	    canon_is("<\"a\\\\b\"@x.org>", 0, "\"a\\\\b\"@x.org"));
	CHECK("canonical: quote stays escaped",
	    canon_is("<\"a\\\"b\"@x.org>", 0, "\"a\\\"b\"@x.org"));
	CHECK("canonical: '@' keeps the quotes",
	    canon_is("<\"a@b\"@x.org>", 0, "\"a@b\"@x.org"));
	CHECK("canonical: escaped '@' is an '@'",
	    canon_is("<\"a\\@b\"@x.org>", 0, "\"a@b\"@x.org"));
	CHECK("canonical: empty quoted string stays",
	    canon_is("<\"\"@x.org>", 0, "\"\"@x.org"));
	CHECK("canonical: leading dot keeps the quotes",
	    canon_is("<\".a\"@x.org>", 0, "\".a\"@x.org"));
	CHECK("canonical: trailing dot keeps the quotes",
	    canon_is("<\"a.\"@x.org>", 0, "\"a.\"@x.org"));
	CHECK("canonical: double dot keeps the quotes",
	    canon_is("<\"a..b\"@x.org>", 0, "\"a..b\"@x.org"));
	CHECK("canonical: UTF-8 atom unquoted",
	    canon_is("<\"j\xc3\xb6ran\"@x.org>", ADDR_UTF8,
	    "j\xc3\xb6ran@x.org"));
	CHECK("canonical: UTF-8 with space stays quoted",
	    canon_is("<\"j\xc3\xb6 r\"@x.org>", ADDR_UTF8,
	    "\"j\xc3\xb6 r\"@x.org"));
	CHECK("canonical: quoted postmaster is postmaster",
	    canon_is("<\"Postmaster\"@x.org>", 0, "Postmaster@x.org") &&
	    !a.quoted);
	CHECK("canonical: mailbox parser agrees",
	    addr_parse_mailbox("\"a\\ b\"@X.org", 0, &a, &why) == 0 &&
	    strcmp(a.local, "\"a b\"") == 0 && a.quoted);
}

/*
 * Every address the server accepts is kept in one written form, which
 * the queue's check takes and which parses back to itself.
 */
static void
test_stored(void)
{
	static const char *const paths[] = {
		"<u@x.org>", "<\"a b\"@x.org>", "<\"a\\ b\"@x.org>",
		"<\"a\\\\b\"@x.org>", "<\"a\\\"b\"@x.org>", "<\"a@b\"@x.org>",
		"<\"\"@x.org>", "<\"alice\"@x.org>", "<\" \"@x.org>",
		"<\"a\\\\\\\"\\ \"@x.org>", "<u@[192.0.2.1]>",
		"<u@[IPv6:2001:DB8::1]>", "<@r.example:u@x.org>",
		"<\"j\xc3\xb6 r\"@b\xc3\xbc" "cher.de>",
		"<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b>",
		"<!#$%&'*+-/=?^_`{|}~@x.org>", "<\"<>()[]:;,\"@x.org>",
	};
	char		buf[ADDR_PATH_MAX], again[ADDR_PATH_MAX];
	size_t		i;
	int		good;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		good = addr_parse_path(paths[i], ADDR_UTF8, &a, &rest,
		    &why) == 0 && addr_format(&a, buf, sizeof(buf)) == 0 &&
		    addr_stored_ok(buf) &&
		    addr_parse_mailbox(buf, ADDR_UTF8, &a, &why) == 0 &&
		    addr_format(&a, again, sizeof(again)) == 0 &&
		    strcmp(buf, again) == 0;
		if (!good)
			printf("# %s\n", paths[i]);
		CHECK("stored form round-trips", good);
	}
	CHECK("stored: null path", addr_stored_ok(""));
	CHECK("stored: needless quotes refused",
	    !addr_stored_ok("\"alice\"@x.org"));
	CHECK("stored: needless escape refused",
	    !addr_stored_ok("\"a\\ b\"@x.org"));
	CHECK("stored: upper-case domain refused",
	    !addr_stored_ok("u@X.org"));
	CHECK("stored: brackets refused", !addr_stored_ok("<u@x.org>"));
	CHECK("stored: control character refused",
	    !addr_stored_ok("u\n@x.org"));
	CHECK("stored: junk after refused", !addr_stored_ok("u@x.org> X=1"));
	CHECK("stored: no domain refused", !addr_stored_ok("postmaster"));
}

static void
test_stored_domain(void)
{
	CHECK("domain of a stored address",
	    strcmp(addr_stored_domain("u@Example.org"), "Example.org") == 0);
	CHECK("domain after an '@' quoted in the local part",
	    strcmp(addr_stored_domain("\"a@b\"@x.org"), "x.org") == 0);
	CHECK("null path: no domain", strcmp(addr_stored_domain(""), "") == 0);
	CHECK("address literal",
	    strcmp(addr_stored_domain("u@[192.0.2.1]"), "[192.0.2.1]") == 0);
}

int
main(void)
{
	test_basic();
	test_null();
	test_route();
	test_quoted();
	test_routechars();
	test_dotstring();
	test_lengths();
	test_domains();
	test_literals();
	test_utf8();
	test_controls();
	test_syntax();
	test_mailbox();
	test_format();
	test_canonical();
	test_stored();
	test_stored_domain();
	UNIT_EXIT();
}
