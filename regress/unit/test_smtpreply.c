/*
 * The outbound client's reply parser (outbound/smtpreply.c): one-line and
 * multi-line replies, their codes, the EHLO keywords we act on, the line
 * length and line count limits, replies cut anywhere, printable text.
 *
 * The parser is linked alone (UNIT_EXTRA_* in the Makefile): it needs
 * nothing but libcommon.a, which is the point.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpreply.h"
#include "unit.h"

static struct smtp_reply	r;
static enum smtp_reply_status	st;

/* Parse s whole, as one reply (ehlo: it answers EHLO). */
static size_t
feed(const char *s, size_t len, int ehlo)
{
	memset(&r, 0, sizeof(r));
	r.ehlo = ehlo;
	return smtp_reply_parse(&r, s, len, &st);
}

#define FEED(lit, ehlo)	feed(lit, sizeof(lit) - 1, ehlo)

static int
done(const char *lit, size_t len, int code, const char *text)
{
	return feed(lit, len, 0) == len && st == SMTP_REPLY_DONE &&
	    r.code == code && strcmp(r.text, text) == 0;
}

#define DONE(lit, code, text)	done(lit, sizeof(lit) - 1, code, text)

static int
status_is(const char *lit, size_t len, enum smtp_reply_status want)
{
	feed(lit, len, 0);
	return st == want;
}

#define STATUS(lit, want)	status_is(lit, sizeof(lit) - 1, want)

static void
test_lines(void)
{
	CHECK("one line", DONE("250 ok\r\n", 250, "250 ok"));
	CHECK("LF alone ends a line", DONE("250 ok\n", 250, "250 ok"));
	CHECK("code alone", DONE("354\r\n", 354, "354"));
	CHECK("code and a space", DONE("221 \r\n", 221, "221 "));
	CHECK("multi-line", DONE("250-mx.example\r\n250-SIZE\r\n250 HELP\r\n",
	    250, "250 HELP"));
	CHECK("multi-line, code of the last line",
	    DONE("250-a\r\n451 b\r\n", 451, "451 b"));
	CHECK("text made printable", DONE("550 a\x01" "b\x7f\xff\tc\r\n", 550,
	    "550 a?b???c"));
	CHECK("CR inside a line", DONE("550 a\rb\r\n", 550, "550 a?b"));
	CHECK("NUL inside a line", done("550 a\0b\r\n", 9, 550, "550 a?b"));
	CHECK("not a reply line", STATUS("25 x\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("abc\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("2500\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("250x\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("250\tok\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS(" 250 ok\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("+50 ok\r\n", SMTP_REPLY_GARBLED) &&
	    STATUS("2\xd9\xa1" "0 ok\r\n", SMTP_REPLY_GARBLED));
	CHECK("garbled after good lines",
	    STATUS("250-a\r\n250-b\r\nxyz\r\n", SMTP_REPLY_GARBLED));
	CHECK("cut: more wanted, whole lines used",
	    FEED("250-a\r\n250 b", 0) == 7 && st == SMTP_REPLY_MORE);
	CHECK("nothing yet", feed("", 0, 0) == 0 && st == SMTP_REPLY_MORE);
	CHECK("a lone CR", FEED("250 ok\r", 0) == 0 && st == SMTP_REPLY_MORE);
}

static void
test_limits(void)
{
	char	*big = malloc(SMTP_REPLY_LINE_MAX + 16);
	char	*many = malloc((SMTP_REPLY_LINES_MAX + 1) * 8 + 1);
	size_t	 n;
	int	 i;

	memset(big, 'x', SMTP_REPLY_LINE_MAX + 16);
	memcpy(big, "250 ", 4);
	memcpy(big + SMTP_REPLY_LINE_MAX, "\r\n", 2);
	CHECK("4096 octets", feed(big, SMTP_REPLY_LINE_MAX + 2, 0) ==
	    SMTP_REPLY_LINE_MAX + 2 && st == SMTP_REPLY_DONE &&
	    strlen(r.text) == SMTP_REPLY_LINE_MAX - 1);
	memcpy(big + SMTP_REPLY_LINE_MAX, "\n", 1);
	CHECK("4096 octets, LF", feed(big, SMTP_REPLY_LINE_MAX + 1, 0) ==
	    SMTP_REPLY_LINE_MAX + 1 && st == SMTP_REPLY_DONE);
	memcpy(big + SMTP_REPLY_LINE_MAX, "x\r\n", 3);
	CHECK("4097 octets", feed(big, SMTP_REPLY_LINE_MAX + 3, 0) == 0 &&
	    st == SMTP_REPLY_TOOLONG);
	CHECK("4096 octets and no line end yet",
	    feed(big, SMTP_REPLY_LINE_MAX, 0) == 0 && st == SMTP_REPLY_MORE);
	CHECK("4097 octets and no line end",
	    feed(big, SMTP_REPLY_LINE_MAX + 1, 0) == 0 &&
	    st == SMTP_REPLY_TOOLONG);
	/* The verdict on a line must not depend on where the network cut
	 * it: a CR after 4096 octets may be the start of their CRLF. */
	memcpy(big + SMTP_REPLY_LINE_MAX, "\r\n", 2);
	CHECK("4096 octets and a CR, its LF to come",
	    feed(big, SMTP_REPLY_LINE_MAX + 1, 0) == 0 &&
	    st == SMTP_REPLY_MORE &&
	    feed(big, SMTP_REPLY_LINE_MAX + 2, 0) ==
	    SMTP_REPLY_LINE_MAX + 2 && st == SMTP_REPLY_DONE);
	memcpy(big + SMTP_REPLY_LINE_MAX, "x\r", 2);
	CHECK("4097 octets and a CR",
	    feed(big, SMTP_REPLY_LINE_MAX + 2, 0) == 0 &&
	    st == SMTP_REPLY_TOOLONG);
	memcpy(big + SMTP_REPLY_LINE_MAX, "\r\r", 2);
	CHECK("4096 octets and two CRs",
	    feed(big, SMTP_REPLY_LINE_MAX + 2, 0) == 0 &&
	    st == SMTP_REPLY_TOOLONG);
	free(big);

	for (n = 0, i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		n += sprintf(many + n, "250-%02d\r\n", i);
	n += sprintf(many + n, "250 ok\r\n");
	CHECK("100 lines", feed(many, n, 0) == n && st == SMTP_REPLY_DONE &&
	    r.code == 250);
	n -= 8;
	n += sprintf(many + n, "250-99\r\n250 ok\r\n");
	CHECK("101 lines", feed(many, n, 0) < n && st == SMTP_REPLY_GARBLED);
	free(many);
}

static void
test_ehlo(void)
{
	static const char	ehlo[] = "250-mx.example greets you\r\n"
	    "250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

	CHECK("EHLO keywords", FEED(ehlo, 1) == sizeof(ehlo) - 1 &&
	    st == SMTP_REPLY_DONE &&
	    r.ext == (SMTP_EXT_PIPELINING | SMTP_EXT_SIZE));
	CHECK("keywords only for EHLO", FEED(ehlo, 0) == sizeof(ehlo) - 1 &&
	    r.ext == 0);
	CHECK("keywords ignore case", FEED("250-x\r\n250-pipelining\r\n"
	    "250 Size\r\n", 1) && r.ext == (SMTP_EXT_PIPELINING |
	    SMTP_EXT_SIZE));
	CHECK("the first line is the greeting",
	    FEED("250 PIPELINING\r\n", 1) && r.ext == 0 &&
	    FEED("250-SIZE\r\n250 x\r\n", 1) && r.ext == 0);
	CHECK("a keyword is a whole word",
	    FEED("250-x\r\n250-PIPELININGX\r\n250-SIZES\r\n250 SIZ\r\n",
	    1) && r.ext == 0);
	CHECK("SIZE with its number, PIPELINING with a word",
	    FEED("250-x\r\n250-SIZE 1\r\n250 PIPELINING x\r\n", 1) &&
	    r.ext == (SMTP_EXT_PIPELINING | SMTP_EXT_SIZE));
	CHECK("STARTTLS", FEED("250-x\r\n250-STARTTLS\r\n250 SIZE\r\n", 1) &&
	    r.ext == (SMTP_EXT_STARTTLS | SMTP_EXT_SIZE));
	CHECK("STARTTLS a whole word", FEED("250-x\r\n250 STARTTLSX\r\n",
	    1) && r.ext == 0);
	CHECK("no keyword in a short line", FEED("250-x\r\n250\r\n", 1) &&
	    st == SMTP_REPLY_DONE && r.ext == 0);
	CHECK("keywords of a refused EHLO too",
	    FEED("550-x\r\n550 PIPELINING\r\n", 1) && r.code == 550 &&
	    r.ext == SMTP_EXT_PIPELINING);
	/* A reply's keywords are its own. */
	memset(&r, 0, sizeof(r));
	r.ehlo = 1;
	smtp_reply_parse(&r, "250-x\r\n250 SIZE\r\n", 17, &st);
	smtp_reply_parse(&r, "250-y\r\n250 z\r\n", 14, &st);
	CHECK("keywords start anew", st == SMTP_REPLY_DONE && r.ext == 0);
}

static void
test_auth(void)
{
	CHECK("AUTH PLAIN LOGIN", FEED("250-x\r\n250 AUTH PLAIN LOGIN\r\n",
	    1) && r.ext == (SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN));
	CHECK("AUTH, other mechanisms around", FEED("250-x\r\n"
	    "250 auth CRAM-MD5 login XOAUTH2\r\n", 1) &&
	    r.ext == SMTP_EXT_AUTH_LOGIN);
	CHECK("AUTH mechanisms are whole words",
	    FEED("250-x\r\n250 AUTH PLAINX LOGINS XPLAIN\r\n", 1) &&
	    r.ext == 0);
	CHECK("AUTH= (old style) is not AUTH",
	    FEED("250-x\r\n250 AUTH=PLAIN LOGIN\r\n", 1) && r.ext == 0);
	CHECK("AUTH only in EHLO", FEED("250 AUTH PLAIN\r\n", 0) &&
	    r.ext == 0);
	CHECK("AUTH mechanisms, several spaces",
	    FEED("250-x\r\n250 AUTH  PLAIN\r\n", 1) &&
	    r.ext == SMTP_EXT_AUTH_PLAIN);
}

/* The same input cut in every possible way gives the same replies. */
static void
test_pieces(void)
{
	static const char	in[] = "220-mx.example\r\n220 ready\r\n"
	    "250-mx\r\n250-PIPELINING\n250 SIZE\r\n354 go\r\n250 ok\r\n";
	char			 got[512], want[512];
	size_t			 piece, off, have, used, n;

	/* Whole: one reply per call. */
	memset(&r, 0, sizeof(r));
	r.ehlo = 1;
	for (n = 0, off = 0; off < sizeof(in) - 1; off += used) {
		used = smtp_reply_parse(&r, in + off, sizeof(in) - 1 - off,
		    &st);
		if (st != SMTP_REPLY_DONE)
			break;
		n += snprintf(want + n, sizeof(want) - n, "%d %d %s|",
		    r.code, r.ext, r.text);
	}
	CHECK("five replies", st == SMTP_REPLY_DONE && off == sizeof(in) - 1);
	for (piece = 1; piece < sizeof(in); piece++) {
		memset(&r, 0, sizeof(r));
		r.ehlo = 1;
		n = off = 0;
		got[0] = '\0';
		/* The caller keeps what was not used, and adds to it. */
		for (have = 0; off < sizeof(in) - 1;) {
			have = have + piece > sizeof(in) - 1 - off ?
			    sizeof(in) - 1 - off : have + piece;
			used = smtp_reply_parse(&r, in + off, have, &st);
			off += used;
			have -= used;
			if (st == SMTP_REPLY_DONE)
				n += snprintf(got + n, sizeof(got) - n,
				    "%d %d %s|", r.code, r.ext, r.text);
			else if (st != SMTP_REPLY_MORE)
				break;
		}
		if (strcmp(got, want) != 0)
			break;
	}
	CHECK("cut anywhere", piece == sizeof(in));
}

int
main(void)
{
	test_lines();
	test_limits();
	test_ehlo();
	test_auth();
	test_pieces();
	UNIT_EXIT();
}
