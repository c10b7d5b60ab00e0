/*
 * DATA framing (smtpd/data.c), the smuggling front: the bytes after 354
 * in pieces the first byte sizes, into a buffer the second byte sizes.
 * Checked: the pieces and the buffer size change nothing; the data ends
 * only at <CRLF>.<CRLF>; without a bare CR or LF the text is CRLF lines,
 * "too long" means a line over 998 octets, and the text dot-stuffed
 * again frames back to itself.
 */
#include <string.h>

#include "smtpd.h"
#include "fuzz.h"

struct framed {
	unsigned char	*out;
	size_t		 len, used;
	int		 end, bare, toolong;
};

static void
frame(const uint8_t *in, size_t n, size_t piece, size_t cap,
    struct framed *r)
{
	struct dataread	 dr;
	size_t		 used = 0, chunk, k;
	int		 end = 0;

	smtp_data_start(&dr, malloc(cap));
	if (dr.buf == NULL ||
	    (r->out = malloc(2 * n + 2)) == NULL)
		abort();
	r->len = 0;
	while (used < n && !end) {
		chunk = n - used < piece ? n - used : piece;
		k = smtp_data_frame(&dr, in + used, chunk, cap, &end);
		FUZZ_ASSERT(k <= chunk && dr.buflen <= cap);
		FUZZ_ASSERT(k > 0 || cap - dr.buflen < 2);
		used += k;
		memcpy(r->out + r->len, dr.buf, dr.buflen);
		r->len += dr.buflen;
		dr.buflen = 0;
	}
	FUZZ_ASSERT(dr.size == (long long)r->len);
	r->used = used;
	r->end = end;
	r->bare = dr.bare;
	r->toolong = dr.toolong;
	free(dr.buf);
}

/*
 * As smtpd frames with forged Authentication-Results dropped: what may
 * be written out after each piece; held octets never leave early, so
 * any piece size stores the same text, of the size counted.
 */
static void
frame_held(const uint8_t *in, size_t n, size_t piece, struct framed *r)
{
	struct dataread	 dr;
	size_t		 used = 0, chunk, k, f;
	int		 end = 0;

	smtp_data_start(&dr, malloc(SMTP_DATABUF));
	if (dr.buf == NULL || (r->out = malloc(2 * n + 2)) == NULL)
		abort();
	strlcpy(dr.authserv_id, "mx.example", sizeof(dr.authserv_id));
	r->len = 0;
	while (used < n && !end) {
		chunk = n - used < piece ? n - used : piece;
		k = smtp_data_frame(&dr, in + used, chunk, SMTP_DATABUF, &end);
		used += k;
		if (end)
			smtp_data_end(&dr);
		if (dr.refused)
			break;
		f = smtp_data_flushable(&dr);
		FUZZ_ASSERT(f <= dr.buflen && dr.linestart <= dr.buflen &&
		    dr.ar_start <= dr.buflen);
		FUZZ_ASSERT(k > 0 || f > 0);
		memcpy(r->out + r->len, dr.buf, f);
		r->len += f;
		memmove(dr.buf, dr.buf + f, dr.buflen - f);
		dr.buflen -= f;
		dr.linestart -= dr.linestart < f ? dr.linestart : f;
		dr.ar_start -= dr.ar_start < f ? dr.ar_start : f;
	}
	if (!dr.refused && (end || used == n)) {
		smtp_data_end(&dr);
		memcpy(r->out + r->len, dr.buf, dr.buflen);
		r->len += dr.buflen;
		FUZZ_ASSERT(dr.size == (long long)r->len);
	}
	r->used = used;
	r->end = end;
	r->bare = dr.refused;
	r->toolong = 0;
	free(dr.buf);
}

static int
same(const struct framed *a, const struct framed *b)
{
	return a->len == b->len && a->used == b->used && a->end == b->end &&
	    a->bare == b->bare && a->toolong == b->toolong &&
	    memcmp(a->out, b->out, a->len) == 0;
}

/* Where the first <CRLF>.<CRLF> ends (the data's start counts as a line
 * start), 0 when there is none. */
static size_t
end_marker(const uint8_t *in, size_t n)
{
	size_t	i;

	if (n >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (i = 0; i + 5 <= n; i++)
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

static void
check_lines(const struct framed *r)
{
	size_t	i, start = 0;
	int	longline = 0;

	for (i = 0; i < r->len; i++) {
		if (r->out[i] == '\r')
			FUZZ_ASSERT(i + 1 < r->len && r->out[i + 1] == '\n');
		if (r->out[i] != '\n')
			continue;
		FUZZ_ASSERT(i > 0 && r->out[i - 1] == '\r');
		longline |= i - 1 - start > SMTP_TEXT_MAX;
		start = i + 1;
	}
	longline |= r->len - start > SMTP_TEXT_MAX;
	FUZZ_ASSERT(longline == r->toolong);
}

/* The stored text as a client would send it: stuffed, with the end. */
static void
check_restuffed(const struct framed *r)
{
	struct framed	 again;
	uint8_t		*wire;
	size_t		 i, n = 0;
	int		 bol = 1;

	if ((wire = malloc(2 * r->len + 8)) == NULL)
		abort();
	for (i = 0; i < r->len; i++) {
		if (bol && r->out[i] == '.')
			wire[n++] = '.';
		bol = r->out[i] == '\n';
		wire[n++] = r->out[i];
	}
	if (!bol) {
		wire[n++] = '\r';
		wire[n++] = '\n';
	}
	memcpy(wire + n, ".\r\n", 3);
	n += 3;
	frame(wire, n, n, 4096, &again);
	FUZZ_ASSERT(again.end && again.used == n && !again.bare);
	FUZZ_ASSERT(again.len >= r->len &&
	    memcmp(again.out, r->out, r->len) == 0);
	free(again.out);
	free(wire);
}

FUZZ_ENTRY(data)
{
	struct framed	 whole, cut;
	size_t		 piece, cap, marker;

	if (size < 2)
		return 0;
	piece = data[0] % 64 + 1;
	cap = data[1] % 32 + 2;
	data += 2;
	size -= 2;
	frame(data, size, size ? size : 1, 2 * size + 2, &whole);
	frame(data, size, piece, cap, &cut);
	FUZZ_ASSERT(same(&whole, &cut));
	marker = end_marker(data, size);
	FUZZ_ASSERT(whole.end == (marker != 0));
	FUZZ_ASSERT(!whole.end || whole.used == marker);
	FUZZ_ASSERT(whole.end || whole.used == size);
	if (!whole.bare) {
		check_lines(&whole);
		check_restuffed(&whole);
	}
	free(whole.out);
	free(cut.out);
	frame_held(data, size, size ? size : 1, &whole);
	frame_held(data, size, piece, &cut);
	if (!whole.bare && !cut.bare)
		FUZZ_ASSERT(same(&whole, &cut));
	free(whole.out);
	free(cut.out);
	return 0;
}
