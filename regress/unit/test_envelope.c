/*
 * Queue envelopes: the text form round-trips, and damaged files are
 * refused with a reason rather than half-read.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "unit.h"

static struct envelope *
sample(void)
{
	struct envelope	*e = envelope_new("0123456789abcdef");
	struct envrcpt	*r;

	strlcpy(e->sender, "alice@example.org", sizeof(e->sender));
	strlcpy(e->helo, "client.example", sizeof(e->helo));
	strlcpy(e->client, "127.0.0.1", sizeof(e->client));
	strlcpy(e->session, "feedfacefeedface", sizeof(e->session));
	e->size = 4242;
	e->attempts = 3;
	e->next_attempt = 1800000000;
	envelope_add_rcpt(e, "bob@test.example", "bob");
	r = envelope_add_rcpt(e, "carol@other.example", "");
	r->status = RS_FAILED;
	strlcpy(r->reason, "550 5.1.1 no such user", sizeof(r->reason));
	return e;
}

static int
parses(const char *text, char *why, size_t len)
{
	struct envelope	*e = envelope_new("");
	int		 r = envelope_parse(text, e, why, len);

	envelope_free(e);
	return r == 0;
}

static void
replace_line(char *text, const char *key, const char *newline)
{
	char	*p = strstr(text, key), *end, rest[4096];

	end = strchr(p, '\n');
	strlcpy(rest, end, sizeof(rest));
	strcpy(p, newline);
	strcat(p, rest);
}

/* Addresses as smtpd keeps them (canonical), including the RFC 5321
 * corner cases; each must come back from the text form unchanged. */
static const char *const odd_addrs[] = {
	"\"a b\"@example.org", "\"a\\\\b\"@example.org",
	"\"a@b\"@example.org", "\"a\\\"b\"@example.org",
	"\"x y 550 5.1.1\"@example.org", "\" \"@example.org",
	"\"\"@example.org", "\"j\xc3\xb6 r\"@b\xc3\xbc" "cher.example",
	"j\xc3\xb6ran@b\xc3\xbc" "cher.example", "\"<a> b\"@[192.0.2.1]",
	"\"a  b\"@x.example",
};

static void
test_odd_addresses(void)
{
	struct envelope	*e, *f;
	struct envrcpt	*r;
	char		*text, why[256];
	size_t		 i, n = sizeof(odd_addrs) / sizeof(odd_addrs[0]);
	int		 good;

	for (i = 0; i < n; i++) {
		e = envelope_new("0123456789abcdef");
		f = envelope_new("");
		strlcpy(e->sender, odd_addrs[i], sizeof(e->sender));
		envelope_add_rcpt(e, odd_addrs[i], "");
		r = envelope_add_rcpt(e, odd_addrs[(i + 1) % n], "");
		r->status = RS_FAILED;
		strlcpy(r->reason, "550 5.1.1 <x y>: no", sizeof(r->reason));
		envelope_add_rcpt(e, "plain@example.org", "");
		text = envelope_format(e);
		good = text != NULL &&
		    envelope_parse(text, f, why, sizeof(why)) == 0 &&
		    strcmp(f->sender, e->sender) == 0 && f->nrcpts == 3 &&
		    strcmp(f->rcpts[0].address, e->rcpts[0].address) == 0 &&
		    strcmp(f->rcpts[1].address, e->rcpts[1].address) == 0 &&
		    strcmp(f->rcpts[1].reason, "550 5.1.1 <x y>: no") == 0 &&
		    f->rcpts[1].status == RS_FAILED &&
		    strcmp(f->rcpts[2].address, "plain@example.org") == 0;
		if (!good)
			printf("# %s\n%s", odd_addrs[i], text ? text : "");
		CHECK("odd address round trip", good);
		free(text);
		envelope_free(e);
		envelope_free(f);
	}
}

static void
test_address_lines(void)
{
	static const char head[] = "version: 1\nid: 0123456789abcdef\n";
	struct envelope	*e = sample(), *f;
	char		 buf[1024], why[256], *text;

	text = envelope_format(e);
	CHECK("plain address written bare",
	    strstr(text, "rcpt: pending bob bob@test.example\n") != NULL);
	free(text);
	envelope_free(e);

	f = envelope_new("");
	snprintf(buf, sizeof(buf), "%ssender: \"carol\"@x.example\n"
	    "rcpt: pending - \"bob\"@Y.example\n", head);
	CHECK("older spellings read canonical",
	    envelope_parse(buf, f, why, sizeof(why)) == 0 &&
	    strcmp(f->sender, "carol@x.example") == 0 &&
	    strcmp(f->rcpts[0].address, "bob@y.example") == 0);
	envelope_free(f);

	f = envelope_new("");
	snprintf(buf, sizeof(buf), "%ssender: c@x.example\n"
	    "rcpt: pending Bob bob@test.example\n", head);
	CHECK("a local user is read lower-case",
	    envelope_parse(buf, f, why, sizeof(why)) == 0 &&
	    strcmp(f->rcpts[0].user, "bob") == 0);
	envelope_free(f);

#define REFUSED(name, lines) do {					\
	snprintf(buf, sizeof(buf), "%s%s", head, lines);		\
	CHECK(name, !parses(buf, why, sizeof(why)));			\
} while (0)
	REFUSED("sender not an address",
	    "sender: not an address\nrcpt: pending - a@b.example\n");
	REFUSED("sender in brackets", "sender: <a@b.example>\n"
	    "rcpt: pending - a@b.example\n");
	REFUSED("rcpt not an address", "rcpt: pending - nobody\n");
	REFUSED("rcpt bracket unterminated",
	    "rcpt: pending - <\"a b\"@b.example\n");
	REFUSED("rcpt junk glued to bracket",
	    "rcpt: pending - <\"a b\"@b.example>x\n");
	REFUSED("rcpt empty brackets", "rcpt: pending - <>\n");
	REFUSED("rcpt bare with a quote cut at a space",
	    "rcpt: pending - \"a b\"@b.example\n");
#undef REFUSED
}

/* The Authentication-Results field, folded, survives the envelope. */
static void
test_authres(void)
{
	struct envelope	*e = sample();
	struct envelope	*f = envelope_new("");
	const char	*field = "Authentication-Results: mx.example;\r\n"
			    "\tspf=pass reason=\"a b\"\r\n\tsmtp.mailfrom=a@b.example";
	char		*text, why[256];

	e->authres = strdup(field);
	text = envelope_format(e);
	CHECK("authres: one line per folded line", text != NULL &&
	    strstr(text, "authres: Authentication-Results: mx.example;\n"
	    "authres: spf=pass reason=\"a b\"\nauthres: "
	    "smtp.mailfrom=a@b.example\n") != NULL);
	CHECK("authres round trip", text != NULL &&
	    envelope_parse(text, f, why, sizeof(why)) == 0 &&
	    f->authres != NULL && strcmp(f->authres, field) == 0);
	free(text);
	envelope_free(e);
	envelope_free(f);
	e = envelope_new("");
	CHECK("authres must start with the field name", envelope_parse(
	    "version: 1\nid: 0123456789abcdef\nauthres: X-Evil: 1\n", e, why,
	    sizeof(why)) == -1);
	envelope_free(e);
}

int
main(void)
{
	struct envelope	*e = sample(), *f = envelope_new("");
	char		*text = envelope_format(e), buf[8192], why[256];

	test_authres();
	CHECK("format gives text", text != NULL);
	CHECK("round trip parses", envelope_parse(text, f, why,
	    sizeof(why)) == 0);
	CHECK("round trip id", strcmp(f->id, e->id) == 0);
	CHECK("round trip sender", strcmp(f->sender, e->sender) == 0);
	CHECK("round trip size", f->size == 4242);
	CHECK("round trip attempts", f->attempts == 3);
	CHECK("round trip next attempt", f->next_attempt == 1800000000);
	CHECK("round trip recipients", f->nrcpts == 2);
	CHECK("round trip local user", strcmp(f->rcpts[0].user, "bob") == 0);
	CHECK("round trip remote user", f->rcpts[1].user[0] == '\0');
	CHECK("round trip status", f->rcpts[1].status == RS_FAILED);
	CHECK("round trip reason", strcmp(f->rcpts[1].reason,
	    "550 5.1.1 no such user") == 0);
	CHECK("empty last error parses", strstr(text, "last-error: \n"));

	strlcpy(buf, text, sizeof(buf));
	replace_line(buf, "size:", "size: 12x");
	CHECK("bad number refused", !parses(buf, why, sizeof(why)));
	CHECK("bad number reason", strstr(why, "bad number") != NULL);

	strlcpy(buf, text, sizeof(buf));
	replace_line(buf, "version:", "version: 2");
	CHECK("unknown version refused", !parses(buf, why, sizeof(why)));

	strlcpy(buf, text, sizeof(buf));
	replace_line(buf, "attempts:", "colour: blue");
	CHECK("unknown key refused", !parses(buf, why, sizeof(why)));

	strlcpy(buf, text, sizeof(buf));
	replace_line(buf, "rcpt: pending", "rcpt: lost bob bob@test.example");
	CHECK("unknown status refused", !parses(buf, why, sizeof(why)));

	strlcpy(buf, text, sizeof(buf));
	replace_line(buf, "rcpt: pending", "rcpt: pending ../x bob@t.example");
	CHECK("bad user refused", !parses(buf, why, sizeof(why)));

	CHECK("no recipients refused", !parses("version: 1\n"
	    "id: 0123456789abcdef\n", why, sizeof(why)));
	CHECK("no id refused", !parses("version: 1\n"
	    "rcpt: pending - a@b.example\n", why, sizeof(why)));
	CHECK("garbage refused", !parses("\x01\x02 nonsense\n", why,
	    sizeof(why)));
	CHECK("truncated file refused", !parses("version: 1\nid: 01234",
	    why, sizeof(why)));

	CHECK("field check: control char", !envelope_field_ok("a\nb", 10));
	CHECK("field check: too long", !envelope_field_ok("abcdef", 6));
	CHECK("field check: fine", envelope_field_ok("abcde", 6));

	free(text);
	envelope_free(e);
	envelope_free(f);
	test_odd_addresses();
	test_address_lines();
	UNIT_EXIT();
}
