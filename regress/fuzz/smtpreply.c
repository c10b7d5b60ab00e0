/*
 * The outbound client's reply parser (outbound/smtpreply.c): what a remote
 * server sends, read whole and again in the pieces the first byte sizes
 * (as smtpc.c gets it from the network, keeping what was not used).
 * Checked: the pieces change nothing (replies, codes, keywords, text,
 * the final verdict); only whole lines are used; a reply's code is the
 * digits its last line starts with; its text is printable and bounded;
 * keywords come only for EHLO; every state is bounded by the limits.
 *
 * The parser links alone: it needs nothing but libcommon.
 */
#include <string.h>

#include "smtpreply.h"
#include "fuzz.h"

struct seen {
	uint32_t	*sums;		/* per reply: code, ext, text */
	size_t		 n, cap;
	enum smtp_reply_status last;
	size_t		 used;
};

static uint32_t
sum_of(const struct smtp_reply *r)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; r->text[i] != '\0'; i++)
		h = (h ^ (unsigned char)r->text[i]) * 16777619u;
	return h ^ (uint32_t)r->code << 8 ^ (uint32_t)r->ext;
}

static void
check_reply(const struct smtp_reply *r, int ehlo)
{
	size_t	i, n = strlen(r->text);

	FUZZ_ASSERT(r->code >= 0 && r->code <= 999 && r->nlines == 0);
	FUZZ_ASSERT(n >= 3 && n < SMTP_REPLY_LINE_MAX);
	FUZZ_ASSERT(r->text[0] - '0' == r->code / 100 &&
	    r->text[1] - '0' == r->code / 10 % 10 &&
	    r->text[2] - '0' == r->code % 10);
	FUZZ_ASSERT(n == 3 || r->text[3] == ' ');
	for (i = 0; i < n; i++)
		FUZZ_ASSERT(r->text[i] >= 0x20 && r->text[i] < 0x7f);
	FUZZ_ASSERT((r->ext & ~(SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
	    SMTP_EXT_STARTTLS | SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN)) ==
	    0);
	FUZZ_ASSERT(ehlo || r->ext == 0);
}

static void
record(struct seen *s, const struct smtp_reply *r)
{
	uint32_t	*n;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		if ((n = realloc(s->sums, s->cap * sizeof(*n))) == NULL)
			abort();
		s->sums = n;
	}
	s->sums[s->n++] = sum_of(r);
}

/* One call, with what a caller may expect of it. */
static size_t
parse(struct smtp_reply *r, const uint8_t *in, size_t len,
    enum smtp_reply_status *st, struct seen *s)
{
	size_t	used;

	used = smtp_reply_parse(r, (const char *)in, len, st);
	FUZZ_ASSERT(used <= len);
	FUZZ_ASSERT(used == 0 || in[used - 1] == '\n');
	FUZZ_ASSERT(memchr(in, '\n', len) != NULL || used == 0);
	switch (*st) {
	case SMTP_REPLY_DONE:
		FUZZ_ASSERT(used > 0);
		check_reply(r, r->ehlo);
		record(s, r);
		break;
	case SMTP_REPLY_MORE:
		/* Only an unfinished line is left, within the limit. */
		FUZZ_ASSERT(memchr(in + used, '\n', len - used) == NULL);
		FUZZ_ASSERT(len - used <= SMTP_REPLY_LINE_MAX + 1);
		FUZZ_ASSERT(r->nlines >= 0 &&
		    r->nlines <= SMTP_REPLY_LINES_MAX);
		break;
	case SMTP_REPLY_GARBLED:
	case SMTP_REPLY_TOOLONG:
		break;
	default:
		FUZZ_ASSERT(!"status out of range");
	}
	return used;
}

static void
whole(const uint8_t *in, size_t len, int ehlo, struct seen *s)
{
	struct smtp_reply	r;
	enum smtp_reply_status	st = SMTP_REPLY_MORE;
	size_t			off = 0;

	memset(&r, 0, sizeof(r));
	r.ehlo = ehlo;
	while (off < len) {
		off += parse(&r, in + off, len - off, &st, s);
		if (st != SMTP_REPLY_DONE)
			break;
	}
	s->last = st;
	s->used = off;
}

static void
pieces(const uint8_t *in, size_t len, int ehlo, size_t piece,
    struct seen *s)
{
	struct smtp_reply	r;
	enum smtp_reply_status	st = SMTP_REPLY_MORE;
	size_t			off = 0, have = 0, used;

	memset(&r, 0, sizeof(r));
	r.ehlo = ehlo;
	while (off < len) {
		/* More has come, unless all has, and the last call only
		 * ended a reply: then what is left is read again. */
		if (st != SMTP_REPLY_DONE || have == 0)
			have = have + piece < len - off ? have + piece :
			    len - off;
		used = parse(&r, in + off, have, &st, s);
		off += used;
		have -= used;
		if (st == SMTP_REPLY_GARBLED || st == SMTP_REPLY_TOOLONG)
			break;
		if (st == SMTP_REPLY_MORE && off + have == len)
			break;
	}
	s->last = st;
	s->used = off;
}

FUZZ_ENTRY(smtpreply)
{
	struct seen	a, b;
	size_t		piece;
	int		ehlo;

	if (size < 1)
		return 0;
	ehlo = data[0] & 1;
	piece = (data[0] >> 1) + 1;
	data++;
	size--;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	whole(data, size, ehlo, &a);
	pieces(data, size, ehlo, piece, &b);
	FUZZ_ASSERT(a.n == b.n && a.used == b.used);
	FUZZ_ASSERT(a.n == 0 || memcmp(a.sums, b.sums,
	    a.n * sizeof(*a.sums)) == 0);
	FUZZ_ASSERT(a.last == b.last);
	free(a.sums);
	free(b.sums);
	return 0;
}
