/*
 * The Maildir++ maildirsize parser and line formatter: pure functions
 * over bounded buffers. What they read comes from a file any host on the
 * store, another server (Courier, Dovecot) or a crash may have written:
 * nothing in it is trusted into a refusal or an overflow. Whatever is
 * not exactly the format is reported, and the caller recounts.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "maildirsize.h"

/* A decimal figure, optionally negative, of at most 18 digits. Sets
 * *end past it; -1 when there is none or it is too long. */
static int
figure(const char *p, const char *lim, long long *v, const char **end)
{
	long long	n = 0;
	int		neg = 0, digits = 0;

	if (p < lim && *p == '-') {
		neg = 1;
		p++;
	}
	while (p < lim && *p >= '0' && *p <= '9') {
		if (++digits > 18)
			return -1;
		n = n * 10 + (*p++ - '0');
	}
	if (digits == 0)
		return -1;
	*v = neg ? -n : n;
	*end = p;
	return 0;
}

/* "NS", "NC", "NS,NC", or empty (no limit). */
static int
limit_line(const char *p, const char *lim, struct mdsize *out)
{
	long long	v;

	if (p == lim)
		return 0;
	for (;;) {
		if (figure(p, lim, &v, &p) == -1 || v < 0 || p == lim)
			return -1;
		if (*p == 'S' && out->limit_bytes == -1)
			out->limit_bytes = v;
		else if (*p == 'C' && out->limit_count == -1)
			out->limit_count = v;
		else
			return -1;
		if (++p == lim)
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

static const char *
blanks(const char *p, const char *lim)
{
	while (p < lim && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static int
in_range(long long v)
{
	return v <= MDSIZE_FIGURE_MAX && v >= -MDSIZE_FIGURE_MAX;
}

/* "bytes count"; other writers pad with blanks, so those are allowed. */
static int
usage_line(const char *p, const char *lim, struct mdsize *out)
{
	const char	*q;
	long long	 b, c;

	if (figure(blanks(p, lim), lim, &b, &q) == -1 ||
	    (p = blanks(q, lim)) == q ||
	    figure(p, lim, &c, &p) == -1 || blanks(p, lim) != lim)
		return -1;
	if (!in_range(b) || !in_range(c) ||
	    __builtin_add_overflow(out->bytes, b, &out->bytes) ||
	    __builtin_add_overflow(out->count, c, &out->count))
		return -1;
	out->lines++;
	return 0;
}

int
mdsize_parse(const char *buf, size_t len, struct mdsize *out,
    const char **why)
{
	const char	*p = buf, *lim = buf + len, *nl;
	int		 first = 1;

	memset(out, 0, sizeof(*out));
	out->limit_bytes = out->limit_count = -1;
	if (len == 0) {
		*why = "empty";
		return -1;
	}
	if (len > MDSIZE_READ_MAX) {
		*why = "too long";
		return -1;
	}
	while (p < lim) {
		if ((nl = memchr(p, '\n', lim - p)) == NULL) {
			*why = "last line cut short";
			return -1;
		}
		if (first ? limit_line(p, nl, out) : usage_line(p, nl, out)) {
			*why = first ? "bad limit line" : "bad usage line";
			return -1;
		}
		first = 0;
		p = nl + 1;
	}
	if (out->bytes < 0 || out->count < 0) {
		*why = "negative total";
		return -1;
	}
	if (out->bytes > MDSIZE_FIGURE_MAX || out->count > MDSIZE_FIGURE_MAX) {
		*why = "total too large";
		return -1;
	}
	return 0;
}

int
mdsize_line(char *buf, size_t len, long long bytes, long long count)
{
	int	n = snprintf(buf, len, "%lld %lld\n", bytes, count);

	return n < 0 || (size_t)n >= len ? -1 : n;
}

int
mdsize_limit_line(char *buf, size_t len, long long limit_bytes)
{
	int	n = snprintf(buf, len, "%lldS\n",
	    limit_bytes > 0 ? limit_bytes : 0);

	return n < 0 || (size_t)n >= len ? -1 : n;
}
