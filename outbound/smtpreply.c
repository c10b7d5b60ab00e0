/*
 * The outbound client's reply parser (RFC 5321 4.2): the octets a remote
 * server sent, into replies. Pure: no I/O, no session; smtpc.c moves the
 * octets and acts on each reply.
 *
 * Everything is bounded: a line is at most SMTP_REPLY_LINE_MAX octets
 * without its line end, a reply at most SMTP_REPLY_LINES_MAX lines.
 */
#include <string.h>
#include <strings.h>

#include "smtpreply.h"
#include "util.h"

static int
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/*
 * An EHLO keyword we act on, at the start of kw[0..len): a whole word,
 * ended by the line's end or a space (or a NUL, which ended the line for
 * the string functions that once read it).
 */
static int
keyword_is(const char *kw, size_t len, const char *name)
{
	size_t	n = strlen(name);

	if (len < n || strncasecmp(kw, name, n) != 0)
		return 0;
	return len == n || kw[n] == ' ' || kw[n] == '\0';
}

/* "AUTH PLAIN LOGIN ...": the mechanisms we know, whole words. */
static void
auth_mechanisms(struct smtp_reply *r, const char *p, size_t len)
{
	size_t	i = 0, start;

	while (i < len) {
		while (i < len && p[i] == ' ')
			i++;
		start = i;
		while (i < len && p[i] != ' ' && p[i] != '\0')
			i++;
		if (keyword_is(p + start, i - start, "PLAIN"))
			r->ext |= SMTP_EXT_AUTH_PLAIN;
		if (keyword_is(p + start, i - start, "LOGIN"))
			r->ext |= SMTP_EXT_AUTH_LOGIN;
		if (i < len && p[i] == '\0')
			break;
	}
}

static void
ehlo_keyword(struct smtp_reply *r, const char *kw, size_t len)
{
	if (keyword_is(kw, len, "AUTH") && len > 4)
		auth_mechanisms(r, kw + 5, len - 5);
	if (keyword_is(kw, len, "PIPELINING"))
		r->ext |= SMTP_EXT_PIPELINING;
	if (keyword_is(kw, len, "SIZE"))
		r->ext |= SMTP_EXT_SIZE;
	if (keyword_is(kw, len, "STARTTLS"))
		r->ext |= SMTP_EXT_STARTTLS;
}

/* One reply line without its line end. */
static enum smtp_reply_status
reply_line(struct smtp_reply *r, const char *line, size_t len)
{
	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) ||
	    !is_digit(line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-'))
		return SMTP_REPLY_GARBLED;
	if (r->nlines == 0)
		r->ext = 0;
	if (++r->nlines > SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_GARBLED;
	/* The first line of EHLO's reply greets; the others are keywords. */
	if (r->ehlo && r->nlines > 1 && len > 4)
		ehlo_keyword(r, line + 4, len - 4);
	/* The last line carries the final code and, usually, the why; it
	 * goes into envelopes, logs and bounces, so only printable text. */
	text_printable(r->text, sizeof(r->text), line, len);
	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
	    (line[2] - '0');
	r->nlines = 0;
	return SMTP_REPLY_DONE;
}

/*
 * Can the line that starts these octets, no LF among them yet, still be
 * short enough? The verdict must not depend on where the network cut it:
 * a CR right after the limit may be the first half of the line's CRLF.
 */
static int
line_may_end(const char *p, size_t n)
{
	if (n <= SMTP_REPLY_LINE_MAX)
		return 1;
	return n == SMTP_REPLY_LINE_MAX + 1 && p[n - 1] == '\r';
}

size_t
smtp_reply_parse(struct smtp_reply *r, const char *in, size_t len,
    enum smtp_reply_status *status)
{
	const char	*nl;
	size_t		 used = 0, linelen;

	*status = SMTP_REPLY_MORE;
	while (used < len) {
		if ((nl = memchr(in + used, '\n', len - used)) == NULL) {
			if (!line_may_end(in + used, len - used))
				*status = SMTP_REPLY_TOOLONG;
			break;
		}
		linelen = nl - (in + used);
		if (linelen > 0 && nl[-1] == '\r')
			linelen--;
		if (linelen > SMTP_REPLY_LINE_MAX) {
			*status = SMTP_REPLY_TOOLONG;
			break;
		}
		*status = reply_line(r, in + used, linelen);
		if (*status == SMTP_REPLY_GARBLED)
			break;
		used = nl - in + 1;
		if (*status == SMTP_REPLY_DONE)
			break;
	}
	return used;
}
