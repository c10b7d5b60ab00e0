/*
 * Who a message says it is from: the domains of its From: field (RFC
 * 5322 3.6.2), for DMARC (RFC 7489 3.1) and for choosing a DKIM key.
 *
 * A mail reader shows the From: it finds; DMARC must judge the same
 * one. So the field is read as a reader would: display names, quoted
 * strings and comments may hold any of , < > @ : ; and are skipped, an
 * angle address is the one taken, and a message with two From: fields
 * or several authors of different domains is reported as such rather
 * than half read, for the caller to refuse.
 */
#include <ctype.h>
#include <string.h>

#include "msgfrom.h"

struct fscan {
	const char	*v;
	size_t		 len, i;
	int		 nmbox;		/* mailboxes found */
	int		 same;		/* all of them in dom's domain */
	int		 utf8;		/* a domain in UTF-8 (RFC 6532) */
	char		 dom[MSGFROM_DOMAIN_MAX + 1];
	/* the mailbox being read */
	int		 text;		/* anything but blanks so far */
	int		 inangle, angled;
	char		 plain[MSGFROM_DOMAIN_MAX + 1];
	char		 inside[MSGFROM_DOMAIN_MAX + 1];
};

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* An octet of a host name, or of a UTF-8 one (RFC 6532 mail). */
static int
is_domain_char(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c >= 0x80;
}

/* Past a quoted string or a (nested) comment opened at f->i, which is
 * left on its closing octet; -1 when it does not close. */
static int
skip_quoted(struct fscan *f)
{
	int	depth = 1, quote = f->v[f->i] == '"';
	char	c;

	for (f->i++; f->i < f->len; f->i++) {
		c = f->v[f->i];
		if (c == '\\') {
			f->i++;
			continue;
		}
		if (quote) {
			if (c == '"')
				return 0;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0)
			return 0;
	}
	return -1;
}

/* The domain after an @ at f->i, lower-cased; -1 when there is none or
 * it runs into an octet no host name holds (a domain literal, _). */
static int
read_domain(struct fscan *f, char *out)
{
	size_t	n = 0;
	int	c;

	for (f->i++; f->i < f->len && is_domain_char((unsigned char)
	    f->v[f->i]); f->i++) {
		if (n == MSGFROM_DOMAIN_MAX)
			return -1;
		if ((unsigned char)f->v[f->i] >= 0x80)
			f->utf8 = 1;
		out[n++] = tolower((unsigned char)f->v[f->i]);
	}
	out[n] = '\0';
	if (f->i < f->len) {
		c = f->v[f->i];
		if (!is_blank(c) && c != '>' && c != ',' && c != '(' &&
		    c != ';')
			return -1;
	}
	f->i--;		/* the caller's loop reads the octet after it */
	if (n > 1 && out[n - 1] == '.')
		out[--n] = '\0';	/* the root's dot */
	return n > 0 && out[0] != '.' && out[0] != '-' ? 0 : -1;
}

static void
mailbox_reset(struct fscan *f)
{
	f->text = f->inangle = f->angled = 0;
	f->plain[0] = f->inside[0] = '\0';
}

/* A mailbox ends (a comma, a group's end, the value's end). */
static int
mailbox_end(struct fscan *f)
{
	const char	*d = f->angled ? f->inside : f->plain;

	if (f->inangle)
		return -1;
	if (d[0] == '\0') {
		mailbox_reset(f);
		/* an empty list entry is allowed; words without an
		 * address are not a mailbox anyone can check */
		return f->text ? -1 : 0;
	}
	if (f->nmbox++ == 0)
		strlcpy(f->dom, d, sizeof(f->dom));
	else if (strcmp(f->dom, d) != 0)
		f->same = 0;
	mailbox_reset(f);
	return 0;
}

/* One octet outside quotes and comments. */
static int
scan_one(struct fscan *f, int *ingroup)
{
	int	c = (unsigned char)f->v[f->i];

	switch (c) {
	case '"':
	case '(':
		f->text |= c == '"';
		return skip_quoted(f);
	case '<':
		if (f->inangle || f->angled)
			return -1;
		f->inangle = f->text = 1;
		return 0;
	case '>':
		if (!f->inangle)
			return -1;
		f->inangle = 0;
		f->angled = 1;
		return 0;
	case '@':
		f->text = 1;
		if (f->angled)
			return -1;	/* after the address: not a mailbox */
		if (f->inangle)
			return read_domain(f, f->inside);
		return read_domain(f, f->plain);
	case ',':
		return f->inangle ? -1 : mailbox_end(f);
	case ':':
		/* a group's name: what came before names no mailbox */
		if (f->inangle || *ingroup)
			return -1;
		*ingroup = 1;
		mailbox_reset(f);
		return 0;
	case ';':
		if (!*ingroup || f->inangle)
			return -1;
		*ingroup = 0;
		return mailbox_end(f);
	default:
		if (!is_blank(c))
			f->text = 1;
		return 0;
	}
}

int
msgfrom_scan(const char *value, size_t len, struct msgfrom *out)
{
	struct fscan	f;
	int		ingroup = 0;

	memset(&f, 0, sizeof(f));
	f.v = value;
	f.len = len;
	f.same = 1;
	for (f.i = 0; f.i < f.len; f.i++)
		if (scan_one(&f, &ingroup) == -1)
			return -1;
	if (ingroup || mailbox_end(&f) == -1)
		return -1;
	out->nmbox = f.nmbox;
	out->same = f.same;
	out->utf8 = f.utf8;
	strlcpy(out->domain, f.dom, sizeof(out->domain));
	return 0;
}

int
msgfrom_domain(const char *value, size_t len, char *dom, size_t domlen)
{
	struct msgfrom	m;

	if (msgfrom_scan(value, len, &m) == -1 || m.nmbox != 1 || m.utf8 ||
	    strlcpy(dom, m.domain, domlen) >= domlen)
		return -1;
	return 0;
}

/* The end of the line at p (past its LF), or len. */
static size_t
next_line(const char *msg, size_t p, size_t len)
{
	const char	*lf = memchr(msg + p, '\n', len - p);

	return lf == NULL ? len : (size_t)(lf - msg) + 1;
}

/* Is the line at p a field named "From" (any case, blanks before the
 * colon)? Its value's offset in *vo. */
static int
is_from_field(const char *msg, size_t p, size_t end, size_t *vo)
{
	size_t	i = p + 4;

	if (end - p < 5 || strncasecmp(msg + p, "from", 4) != 0)
		return 0;
	while (i < end && (msg[i] == ' ' || msg[i] == '\t'))
		i++;
	if (i == end || msg[i] != ':')
		return 0;
	*vo = i + 1;
	return 1;
}

enum msgfrom_result
msgfrom_message(const char *msg, size_t len, char *dom, size_t domlen)
{
	struct msgfrom	m;
	size_t		p, end, vo = 0, vstart = 0, vend = 0;
	int		nfields = 0, infrom = 0;

	/* Every field, however many: a long header must not hide one. */
	for (p = 0; p < len; p = end) {
		end = next_line(msg, p, len);
		if (msg[p] == '\r' || msg[p] == '\n')
			break;		/* the empty line: the body follows */
		if (msg[p] == ' ' || msg[p] == '\t') {
			if (infrom)
				vend = end;	/* the From: value goes on */
			continue;
		}
		infrom = is_from_field(msg, p, end, &vo);
		if (infrom && nfields++ == 0) {
			vstart = vo;
			vend = end;
		}
	}
	if (nfields == 0)
		return MSGFROM_NONE;
	if (nfields > 1)
		return MSGFROM_FIELDS;
	if (msgfrom_scan(msg + vstart, vend - vstart, &m) == -1 ||
	    m.nmbox == 0)
		return MSGFROM_UNCLEAR;
	if (!m.same)
		return MSGFROM_MANY;
	if (m.utf8)
		return MSGFROM_UTF8;
	if (strlcpy(dom, m.domain, domlen) >= domlen)
		return MSGFROM_UNCLEAR;
	return MSGFROM_ONE;
}
