/*
 * common/msgfrom.c: the From: field's domains as a mail reader would
 * find them, and the cases a forger would use to slip past DMARC.
 */
#include <stdlib.h>
#include <string.h>

#include "msgfrom.h"
#include "unit.h"
#include "util.h"

static void
test_value(void)
{
	char	d[256], name[128];
	struct { const char *v; const char *want; } c[] = {
		{ " Alice <alice@Example.ORG>", "example.org" },
		{ " alice@example.org", "example.org" },
		{ " alice@example.org (Alice)", "example.org" },
		{ " \"a@b\" <x@mail.example.org>", "mail.example.org" },
		/* commas and brackets inside quotes and comments */
		{ " \"Doe, John\" <john@example.org>", "example.org" },
		{ " \"Doe, John <x@evil.example>\" <john@example.org>",
		    "example.org" },
		{ " (Doe, John <x@evil.example>) john@example.org",
		    "example.org" },
		{ " john@example.org (a (nested, one) comment)", "example.org" },
		{ " \"quo\\\"ted, \" <j@example.org>", "example.org" },
		{ "\r\n \"Folded\"\r\n\t<j@example.org>\r\n", "example.org" },
		{ " <j@example.org.>", "example.org" },
		{ " a@x.org, b@y.org", NULL },
		{ " <a@x.org>, <b@y.org>", NULL },
		{ " undisclosed:;", NULL },
		{ " nobody", NULL },
		{ " \"Only a name\"", NULL },
		{ " a@", NULL },
		{ " a@ex_ample.org", NULL },
		{ " <a@evil.example@good.example>", NULL },
		{ " <a@x.org> b@y.org", NULL },
		{ " <a@x.org", NULL },
		{ " \"unclosed <a@x.org>", NULL },
		{ " (unclosed <a@x.org>", NULL },
		{ " a@[192.0.2.1]", NULL },
		{ " a@.example.org", NULL },
		{ " <a@b\xc3\xbc" "cher.example>", NULL },	/* not ASCII */
	};
	size_t	i;
	int	r;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		r = msgfrom_domain(c[i].v, strlen(c[i].v), d, sizeof(d));
		/* the value, printable, names the check */
		snprintf(name, sizeof(name), "value %zu:%s", i, c[i].v);
		name[strcspn(name, "\r\n")] = '\0';
		CHECK(name, c[i].want ? r == 0 && strcmp(d, c[i].want) == 0
		    : r == -1);
	}
}

static void
test_lists(void)
{
	struct msgfrom	m;
	const char	*same = " a@x.org, \"B, b\" <b@X.org>";
	const char	*two = " a@x.org, b@y.org";
	const char	*group = " team: a@x.org, b@x.org;";

	CHECK("same domain", msgfrom_scan(same, strlen(same), &m) == 0 &&
	    m.nmbox == 2 && m.same && strcmp(m.domain, "x.org") == 0);
	CHECK("two domains", msgfrom_scan(two, strlen(two), &m) == 0 &&
	    m.nmbox == 2 && !m.same);
	CHECK("group", msgfrom_scan(group, strlen(group), &m) == 0 &&
	    m.nmbox == 2 && m.same);
}

static enum msgfrom_result
message(const char *hdr, char *d)
{
	return msgfrom_message(hdr, strlen(hdr), d, 256);
}

static void
test_message(void)
{
	char	d[256], *big;
	size_t	i, off;

	CHECK("one", message("To: b@y.org\r\nFrom: A <a@X.org>\r\n\r\nhi\r\n",
	    d) == MSGFROM_ONE && strcmp(d, "x.org") == 0);
	CHECK("name case, blank before colon",
	    message("FROM : a@x.org\r\n\r\n", d) == MSGFROM_ONE);
	CHECK("folded", message("From: \"A\"\r\n <a@x.org>\r\nTo: b\r\n\r\n",
	    d) == MSGFROM_ONE && strcmp(d, "x.org") == 0);
	CHECK("none", message("To: b@y.org\r\n\r\nFrom: a@x.org\r\n", d) ==
	    MSGFROM_NONE);
	CHECK("From-ish names are not From",
	    message("From-X: a@x.org\r\nFromage: b\r\n\r\n", d) ==
	    MSGFROM_NONE);
	CHECK("two fields", message("From: a@x.org\r\nFrom: b@x.org\r\n\r\n",
	    d) == MSGFROM_FIELDS);
	CHECK("two domains", message("From: a@x.org, b@y.org\r\n\r\n", d) ==
	    MSGFROM_MANY);
	CHECK("unclear", message("From: nobody\r\n\r\n", d) ==
	    MSGFROM_UNCLEAR);
	CHECK("empty group", message("From: undisclosed:;\r\n\r\n", d) ==
	    MSGFROM_UNCLEAR);
	CHECK("a UTF-8 domain", message("From: <a@b\xc3\xbc" "cher.example>"
	    "\r\n\r\n", d) == MSGFROM_UTF8);
	/* a second From: behind 2000 other fields is still seen */
	big = xmalloc(2000 * 18 + 128);
	off = 0;
	memcpy(big, "From: a@x.org\r\n", 15);
	off = 15;
	for (i = 0; i < 2000; i++)
		off += snprintf(big + off, 18, "X-F%04zu: 123456\r\n", i);
	strlcpy(big + off, "From: a@evil.example\r\n\r\n", 64);
	CHECK("a From: past 2000 fields", message(big, d) == MSGFROM_FIELDS);
	free(big);
}

int
main(void)
{
	test_value();
	test_lists();
	test_message();
	UNIT_EXIT();
}
