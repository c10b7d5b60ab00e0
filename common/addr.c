/*
 * RFC 5321 address parsing (section 4.1.2, limits from 4.5.3.1), with the
 * SMTPUTF8 extensions of RFC 6531 behind ADDR_UTF8.
 *
 * Every parser works on a cursor [p, e) where e never lies beyond the
 * terminating NUL, so nothing here can read past the end of its input, and
 * every copy is checked against the size of its destination. No globals, no
 * allocation: these functions are fuzzed and called from the unprivileged
 * SMTP session.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include "addr.h"

/* A mailbox must fit in a path once the brackets are added. */
#define MAILBOX_MAX	(ADDR_PATH_MAX - 2)
#define LABEL_MAX	63	/* RFC 1035 2.3.4 */

struct cursor {
	const char	*p;
	const char	*e;	/* one past the last usable octet */
};

static int	peek(const struct cursor *);
static int	lc(int);
static int	is_alpha(int);
static int	is_digit(int);
static int	is_atext(int);
static int	is_qtext(int);
static size_t	utf8_seq(const unsigned char *, size_t);
static const char *literal_check(const char *, size_t);
static const char *domain_check(const char *, size_t, int);
static const char *route_parse(struct cursor *, int);
static const char *local_put(struct mailaddr *, size_t *, const char *,
	    size_t);
static const char *local_bad(int);
static const char *quoted_parse(struct cursor *, int, struct mailaddr *);
static int	is_dotstring(const char *, size_t);
static void	quoted_canonical(struct mailaddr *);
static const char *dotstring_parse(struct cursor *, int, struct mailaddr *);
static const char *mailbox_parse(struct cursor *, int, int,
	    struct mailaddr *);
static int	fail(struct mailaddr *, const char **, const char *);

/* The octet under the cursor, or 0 at the end of the view. */
static int
peek(const struct cursor *c)
{
	if (c->p >= c->e)
		return 0;
	return (unsigned char)*c->p;
}

/* ASCII only: tolower(3) depends on the locale and would touch UTF-8. */
static int
lc(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 'a';
	return ch;
}

static int
is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int
is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* RFC 5322 3.2.3 atext, ASCII part. */
static int
is_atext(int ch)
{
	if (is_alpha(ch) || is_digit(ch))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* RFC 5321 qtextSMTP: printable ASCII and space, but not '"' or '\'. */
static int
is_qtext(int ch)
{
	return ch >= 32 && ch <= 126 && ch != '"' && ch != '\\';
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629 UTF8-2/3/4,
 * which RFC 6531 calls UTF8-non-ascii), or 0. The grammar already excludes
 * overlong forms, surrogates and values past U+10FFFF; we also refuse the
 * C1 controls U+0080..U+009F, since no control character belongs in an
 * address.
 */
static size_t
utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char	lo = 0x80, hi = 0xbf;
	size_t		n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xc2)
		lo = 0xa0;		/* C1 controls */
	else if (s[0] == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (s[0] == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f;		/* past U+10FFFF */
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * An address literal "[...]" of length n (RFC 5321 4.1.3). The
 * General-address-literal form is refused: nothing routes to it.
 */
static const char *
literal_check(const char *s, size_t n)
{
	static const char tag[] = "ipv6:";
	const char	*in;
	char		 buf[INET6_ADDRSTRLEN];
	unsigned char	 bin[sizeof(struct in6_addr)];
	size_t		 m, i;
	int		 af = AF_INET;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return "bad address literal";
	in = s + 1;
	m = n - 2;
	if (m >= sizeof(tag) - 1) {
		for (i = 0; i < sizeof(tag) - 1; i++)
			if (lc((unsigned char)in[i]) != tag[i])
				break;
		if (i == sizeof(tag) - 1) {
			af = AF_INET6;
			in += i;
			m -= i;
		}
	}
	if (af == AF_INET && memchr(in, ':', m) != NULL)
		return "general address literal not supported";
	/* inet_pton wants a C string; anything this long is invalid anyway. */
	if (m >= sizeof(buf))
		return "bad address literal";
	memcpy(buf, in, m);
	buf[m] = '\0';
	if (inet_pton(af, buf, bin) != 1)
		return af == AF_INET6 ? "bad IPv6 address literal" :
		    "bad IPv4 address literal";
	return NULL;
}

/*
 * A Domain (RFC 5321 4.1.2, sub-domain = Let-dig [Ldh-str]; with ADDR_UTF8
 * also U-labels, RFC 6531 3.3) or an address literal, n octets at s.
 * Returns NULL when valid, else the reason.
 */
static const char *
domain_check(const char *s, size_t n, int flags)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i = 0, start = 0, k;

	if (n == 0)
		return "empty domain";
	if (n > ADDR_DOMAIN_MAX)
		return "domain too long";
	if (s[0] == '[')
		return literal_check(s, n);

	for (;;) {
		if (i == n || u[i] == '.') {
			if (i == start)
				return i == n ? "trailing dot in domain" :
				    "empty label in domain";
			if (i - start > LABEL_MAX)
				return "domain label too long";
			if (u[start] == '-' || u[i - 1] == '-')
				return "domain label starts or ends with hyphen";
			if (i == n)
				return NULL;
			start = ++i;
			continue;
		}
		if (u[i] >= 0x80) {
			if (!(flags & ADDR_UTF8))
				return "8-bit domain requires SMTPUTF8";
			if ((k = utf8_seq(u + i, n - i)) == 0)
				return "bad UTF-8 in domain";
			i += k;
			continue;
		}
		if (!is_alpha(u[i]) && !is_digit(u[i]) && u[i] != '-')
			return "bad character in domain";
		i++;
	}
}

/*
 * A-d-l ":" — the source route "@a,@b:" of RFC 5321 4.1.2. Checked so that
 * garbage is not waved through, then dropped (RFC 5321 appendix C).
 */
static const char *
route_parse(struct cursor *c, int flags)
{
	const char	*d, *why;

	for (;;) {
		if (peek(c) != '@')
			return "bad source route";
		d = ++c->p;
		while (c->p < c->e && *c->p != ',' && *c->p != ':' &&
		    *c->p != '>')
			c->p++;
		/* At-domain is a Domain only, never a literal. */
		if (c->p > d && *d == '[')
			return "address literal in source route";
		if ((why = domain_check(d, c->p - d, flags)) != NULL)
			return why;
		if (peek(c) == ':') {
			c->p++;
			return NULL;
		}
		if (peek(c) != ',')
			return "bad source route";
		c->p++;
	}
}

/* Append n octets to the local part, within RFC 5321 4.5.3.1.1. */
static const char *
local_put(struct mailaddr *a, size_t *len, const char *s, size_t n)
{
	if (n > ADDR_LOCAL_MAX - *len)
		return "local part too long";
	memcpy(a->local + *len, s, n);
	*len += n;
	a->local[*len] = '\0';
	return NULL;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE, kept as written. */
static const char *
quoted_parse(struct cursor *c, int flags, struct mailaddr *a)
{
	const char	*why;
	size_t		 len = 0, k;
	int		 ch;

	a->quoted = 1;
	if ((why = local_put(a, &len, c->p++, 1)) != NULL)
		return why;
	for (;;) {
		ch = peek(c);
		if (ch == '"')
			return local_put(a, &len, c->p++, 1);
		if (ch == '\\') {
			/* quoted-pairSMTP = "\" %d32-126 */
			if (c->e - c->p < 2 || (unsigned char)c->p[1] < 32 ||
			    (unsigned char)c->p[1] > 126)
				return "bad escape in quoted local part";
			k = 2;
		} else if (is_qtext(ch)) {
			k = 1;
		} else if (ch >= 0x80) {
			if (!(flags & ADDR_UTF8))
				return "8-bit local part requires SMTPUTF8";
			k = utf8_seq((const unsigned char *)c->p, c->e - c->p);
			if (k == 0)
				return "bad UTF-8 in local part";
		} else if (ch == '\0')
			return "unterminated quoted local part";
		else if (ch < 32 || ch == 127)
			return "control character in local part";
		else
			return "bad character in quoted local part";
		if ((why = local_put(a, &len, c->p, k)) != NULL)
			return why;
		c->p += k;
	}
}

/* n octets at s form a Dot-string: atoms (atext, or UTF-8 already
 * checked by the caller) between single dots. */
static int
is_dotstring(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
			continue;
		}
		if (!is_atext((unsigned char)s[i]) &&
		    (unsigned char)s[i] < 0x80)
			return 0;
	}
	return 1;
}

/*
 * A quoted local part names the same mailbox as its content unquoted
 * (RFC 5321 4.1.2), and "a\ b" the same as "a b". Keep one spelling of
 * each mailbox, so that "alice" finds the user alice and the queue and
 * the logs see one form: the Dot-string when the content is one, else
 * the content quoted again with only '"' and '\' escaped. Neither is
 * longer than what was written.
 */
static void
quoted_canonical(struct mailaddr *a)
{
	char	text[ADDR_LOCAL_MAX + 1];
	size_t	len, n = 0, i, o = 0;

	/* quoted_parse left '"' ... '"' with every escape whole. */
	len = strlen(a->local);
	for (i = 1; i + 1 < len; i++) {
		if (a->local[i] == '\\')
			i++;
		text[n++] = a->local[i];
	}
	if (is_dotstring(text, n)) {
		memcpy(a->local, text, n);
		a->local[n] = '\0';
		a->quoted = 0;
		return;
	}
	a->local[o++] = '"';
	for (i = 0; i < n; i++) {
		if (text[i] == '"' || text[i] == '\\')
			a->local[o++] = '\\';
		a->local[o++] = text[i];
	}
	a->local[o++] = '"';
	a->local[o] = '\0';
}

/* Why the local part cannot go on at octet ch. */
static const char *
local_bad(int ch)
{
	if (ch < 32 || ch == 127)
		return "control character in local part";
	return "bad character in local part";
}

/* Dot-string = Atom *("." Atom), kept as written. */
static const char *
dotstring_parse(struct cursor *c, int flags, struct mailaddr *a)
{
	const char	*why, *atom;
	size_t		 len = 0, k;
	int		 ch;

	for (;;) {
		atom = c->p;
		for (;;) {
			ch = peek(c);
			if (is_atext(ch))
				k = 1;
			else if (ch >= 0x80) {
				if (!(flags & ADDR_UTF8))
					return "8-bit local part requires "
					    "SMTPUTF8";
				k = utf8_seq((const unsigned char *)c->p,
				    c->e - c->p);
				if (k == 0)
					return "bad UTF-8 in local part";
			} else
				break;
			if ((why = local_put(a, &len, c->p, k)) != NULL)
				return why;
			c->p += k;
		}
		if (c->p == atom) {
			/* A leading, trailing or doubled dot. */
			if (ch == '.' || len > 0)
				return "empty atom in local part";
			if (ch == '@' || ch == '>' || ch == '\0')
				return "empty local part";
			return local_bad(ch);
		}
		if (ch != '.')
			return NULL;
		if ((why = local_put(a, &len, c->p++, 1)) != NULL)
			return why;
	}
}

/*
 * Mailbox = Local-part "@" ( Domain / address-literal ). The domain runs up
 * to term ('>' in a path) or the end of the view.
 */
static const char *
mailbox_parse(struct cursor *c, int flags, int term, struct mailaddr *a)
{
	const char	*why, *d;
	size_t		 n, i;
	int		 ch;

	if (peek(c) == '"') {
		if ((why = quoted_parse(c, flags, a)) == NULL)
			quoted_canonical(a);
	} else
		why = dotstring_parse(c, flags, a);
	if (why != NULL)
		return why;
	if ((ch = peek(c)) != '@') {
		if (ch == '\0' || ch == term)
			return "missing domain";
		return local_bad(ch);
	}
	d = ++c->p;
	while (c->p < c->e && *c->p != term)
		c->p++;
	n = c->p - d;
	if ((why = domain_check(d, n, flags)) != NULL)
		return why;
	a->literal = d[0] == '[';
	for (i = 0; i < n; i++)
		a->domain[i] = lc((unsigned char)d[i]);
	a->domain[n] = '\0';
	return NULL;
}

/* Leave *out in a known state: a caller that ignores -1 sees nothing. */
static int
fail(struct mailaddr *out, const char **why, const char *reason)
{
	memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = reason;
	return -1;
}

int
addr_parse_path(const char *s, int flags, struct mailaddr *out,
    const char **rest, const char **why)
{
	struct cursor	 c;
	const char	*r;
	size_t		 lim;
	int		 truncated;

	memset(out, 0, sizeof(*out));
	/* The path is at most ADDR_PATH_MAX octets: look no further. */
	lim = strnlen(s, ADDR_PATH_MAX);
	truncated = lim == ADDR_PATH_MAX && s[lim] != '\0';
	c.p = s;
	c.e = s + lim;

	if (peek(&c) != '<')
		return fail(out, why, "missing '<'");
	c.p++;
	if (peek(&c) == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return fail(out, why, "null path not allowed");
		out->null = 1;
		goto done;
	}
	if (peek(&c) == '@') {
		if ((r = route_parse(&c, flags)) != NULL)
			goto bad;
		out->had_route = 1;
	}
	if ((r = mailbox_parse(&c, flags, '>', out)) != NULL)
		goto bad;
	if (peek(&c) != '>') {
		r = "missing '>'";
		goto bad;
	}
 done:
	if (rest != NULL)
		*rest = c.p + 1;
	if (why != NULL)
		*why = NULL;
	return 0;
 bad:
	/* Whatever failed at the edge of the view, the real fault is length. */
	if (truncated && c.p >= c.e)
		r = "path too long";
	return fail(out, why, r);
}

int
addr_parse_mailbox(const char *s, int flags, struct mailaddr *out,
    const char **why)
{
	struct cursor	 c;
	const char	*r;
	size_t		 lim;

	memset(out, 0, sizeof(*out));
	lim = strnlen(s, MAILBOX_MAX + 1);
	if (lim > MAILBOX_MAX)
		return fail(out, why, "address too long");
	c.p = s;
	c.e = s + lim;
	if ((r = mailbox_parse(&c, flags, '\0', out)) != NULL)
		return fail(out, why, r);
	if (why != NULL)
		*why = NULL;
	return 0;
}

int
addr_domain_valid(const char *s, int flags)
{
	size_t	n;

	n = strnlen(s, ADDR_DOMAIN_MAX + 1);
	return domain_check(s, n, flags) == NULL;
}

int
addr_has_route_chars(const struct mailaddr *a)
{
	size_t	n, i;

	if (a->null)
		return 0;
	n = strnlen(a->local, sizeof(a->local));
	for (i = 0; i < n; i++)
		if (a->local[i] == '%' || a->local[i] == '!' ||
		    a->local[i] == '@')
			return 1;
	return 0;
}

int
addr_format(const struct mailaddr *a, char *buf, size_t len)
{
	size_t	ln, dn;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (a->null)
		return 0;
	/* The struct may come from elsewhere: trust no terminator. */
	ln = strnlen(a->local, sizeof(a->local));
	dn = strnlen(a->domain, sizeof(a->domain));
	if (ln + 1 + dn >= len)
		return -1;
	memcpy(buf, a->local, ln);
	buf[ln] = '@';
	memcpy(buf + ln + 1, a->domain, dn);
	buf[ln + 1 + dn] = '\0';
	return 0;
}

int
addr_stored_ok(const char *s)
{
	struct mailaddr	 a;
	const char	*why;
	char		 buf[ADDR_PATH_MAX];

	if (*s == '\0')
		return 1;
	if (addr_parse_mailbox(s, ADDR_UTF8, &a, &why) == -1 ||
	    addr_format(&a, buf, sizeof(buf)) == -1)
		return 0;
	return strcmp(s, buf) == 0;
}

const char *
addr_stored_domain(const char *s)
{
	const char	*at = strrchr(s, '@');

	return at != NULL ? at + 1 : "";
}
