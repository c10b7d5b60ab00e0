/*
 * SPF check_host() (RFC 7208) as a state machine; see spf.h.
 *
 * The record of every domain on the include chain is kept in a frame of
 * a fixed stack: an include pushes a frame, a redirect replaces the top
 * one, so a hostile record cannot deepen anything beyond SPF_DEPTH_MAX
 * (each include is one of the ten DNS-querying terms). A record is
 * checked whole for syntax before any of it is evaluated (4.6), then
 * evaluated term by term; a term that needs DNS leaves a question and
 * resumes in spf_answer().
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "spf.h"

/* What the open question is for. */
enum { W_NONE, W_TXT, W_ADDR, W_MX, W_MXHOST, W_PTR, W_PTRHOST, W_EXISTS };

/* Terms. */
enum {
	T_ALL = 1, T_INCLUDE, T_A, T_MX, T_PTR, T_IP4, T_IP6, T_EXISTS,
	T_REDIRECT, T_EXP, T_UNKNOWN
};

struct term {
	int		 qual;
	int		 kind;
	const char	*arg;		/* domain-spec, address or value */
	size_t		 arglen;	/* 0: none given */
	int		 cidr4, cidr6;
	uint8_t		 net[16];	/* ip4:, ip6: */
};

/* The expansion buffer keeps the rightmost octets when it overflows:
 * only the right end of a name survives the cut to SPF_NAME_MAX. */
#define XBUF_MAX	1024

struct xbuf {
	char	b[XBUF_MAX];
	size_t	n;
};

static const struct {
	const char	*name;
	int		 kind;
} mechs[] = {
	{ "all", T_ALL }, { "include", T_INCLUDE }, { "a", T_A },
	{ "mx", T_MX }, { "ptr", T_PTR }, { "ip4", T_IP4 }, { "ip6", T_IP6 },
	{ "exists", T_EXISTS },
};

static void	run_term(struct spf *);
static void	end_of_record(struct spf *);

/* ---- small helpers ------------------------------------------------- */

/*
 * The result, and our comment on it. The comment quotes terms and names
 * from DNS, which anyone can write: whatever could end or escape a
 * header comment (parentheses, backslash, quotes) or is no printable
 * ASCII is replaced, so the caller can put it in a header as it is.
 */
static void
finish(struct spf *s, enum spf_result r, const char *fmt, ...)
{
	va_list	 ap;
	char	*p;

	s->done = 1;
	s->result = r;
	s->wait = W_NONE;
	va_start(ap, fmt);
	(void)vsnprintf(s->explain, sizeof(s->explain), fmt, ap);
	va_end(ap);
	for (p = s->explain; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p > '~' ||
		    strchr("()\\\"", *p) != NULL)
			*p = '?';
}

static struct spf_frame *
top(struct spf *s)
{
	return &s->stack[s->depth - 1];
}

static void
ask(struct spf *s, int wait, const char *name, int type)
{
	if (s->nq >= SPF_QUESTIONS_MAX) {
		finish(s, SPF_PERMERROR, "too many DNS lookups");
		return;
	}
	s->nq++;
	s->wait = wait;
	s->q.type = type;
	(void)strlcpy(s->q.name, name, sizeof(s->q.name));
}

static int
ci_prefix(const char *p, size_t len, const char *word)
{
	size_t	n = strlen(word);

	return len >= n && strncasecmp(p, word, n) == 0;
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* "in x": x equals name or is one of its parents. */
static int
name_within(const char *name, const char *parent)
{
	size_t	n = strlen(name), m = strlen(parent);

	if (n == m)
		return strcasecmp(name, parent) == 0;
	return n > m && name[n - m - 1] == '.' &&
	    strcasecmp(name + n - m, parent) == 0;
}

/*
 * A name we may look up: labels of 1 to 63 octets, at most
 * SPF_NAME_MAX in all, a final dot dropped. multi: at least two labels
 * (the domain check_host starts from, 4.3).
 */
static int
name_ok(char *name, int multi)
{
	size_t	len = strlen(name), lab = 0, i;
	int	labels = 0;

	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	if (len == 0 || len > SPF_NAME_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (lab == 0 || lab > 63)
				return 0;
			labels++;
			lab = 0;
			continue;
		}
		/* A label may hold any octet; a macro can put a space in
		 * one (%_), never a control character. */
		if ((unsigned char)name[i] < ' ' ||
		    (unsigned char)name[i] >= 0x7f)
			return 0;
		lab++;
	}
	return !multi || labels >= 2;
}

/* The client's address as the first `bits` bits of net, in family. */
static int
ip_in(const struct spf *s, int family, const uint8_t *net, int bits)
{
	int	bytes = bits / 8, rest = bits % 8;
	uint8_t	mask;

	if (family != s->family)
		return 0;
	if (memcmp(s->ip, net, bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (s->ip[bytes] & mask) == (net[bytes] & mask);
}

static int
rr_matches(const struct spf *s, const struct spf_rr *rr, int c4, int c6)
{
	if (rr->type == SPF_T_A)
		return ip_in(s, AF_INET, (const uint8_t *)&rr->a, c4);
	if (rr->type == SPF_T_AAAA)
		return ip_in(s, AF_INET6, rr->aaaa.s6_addr, c6);
	return 0;
}

static int
addr_type(const struct spf *s)
{
	return s->family == AF_INET ? SPF_T_A : SPF_T_AAAA;
}

/* A name from an MX or PTR answer, bounded, without the final dot. */
static int
rr_name(const struct spf_rr *rr, char *out)
{
	size_t	len = rr->len;

	if (rr->text == NULL || len > SPF_NAME_MAX + 1 ||
	    memchr(rr->text, '\0', len) != NULL)
		return -1;
	memcpy(out, rr->text, len);
	out[len] = '\0';
	return name_ok(out, 0) ? 0 : -1;
}

/* ---- macros (RFC 7208 7) ------------------------------------------- */

static void
xput(struct xbuf *x, char c)
{
	if (x->n == sizeof(x->b)) {
		memmove(x->b, x->b + sizeof(x->b) / 2, sizeof(x->b) / 2);
		x->n = sizeof(x->b) / 2;
	}
	x->b[x->n++] = c;
}

static void
xputs(struct xbuf *x, const char *p, size_t len, int escape)
{
	static const char	hex[] = "0123456789ABCDEF";
	size_t			i;
	unsigned char		c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)p[i];
		if (!escape || is_alpha(c) || is_digit(c) || c == '-' ||
		    c == '.' || c == '_' || c == '~') {
			xput(x, (char)c);
			continue;
		}
		xput(x, '%');
		xput(x, hex[c >> 4]);
		xput(x, hex[c & 15]);
	}
}

static void
ip_dotted(const struct spf *s, char *out, size_t outlen)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i, n = 0;

	if (s->family == AF_INET) {
		(void)snprintf(out, outlen, "%u.%u.%u.%u", s->ip[0], s->ip[1],
		    s->ip[2], s->ip[3]);
		return;
	}
	for (i = 0; i < 16 && n + 4 < outlen; i++) {
		out[n++] = hex[s->ip[i] >> 4];
		out[n++] = '.';
		out[n++] = hex[s->ip[i] & 15];
		out[n++] = i == 15 ? '\0' : '.';
	}
	out[outlen - 1] = '\0';
}

/* The validated name for %{p} (7.3): one within domain, else any. */
static const char *
ptr_value(const struct spf *s, const char *domain)
{
	int	i;

	for (i = 0; i < s->nptr; i++)
		if (s->ptrok[i] && name_within(s->ptrnames[i], domain))
			return s->ptrnames[i];
	for (i = 0; i < s->nptr; i++)
		if (s->ptrok[i])
			return s->ptrnames[i];
	return "unknown";
}

static const char *
macro_value(const struct spf *s, const char *domain, int letter, char *tmp,
    size_t tmplen)
{
	switch (letter) {
	case 's':
		return s->sender;
	case 'l':
		return s->local;
	case 'o':
		return s->sdomain;
	case 'd':
		return domain;
	case 'i':
		ip_dotted(s, tmp, tmplen);
		return tmp;
	case 'p':
		return ptr_value(s, domain);
	case 'v':
		return s->family == AF_INET ? "in-addr" : "ip6";
	case 'h':
		return s->helo;
	case 'c':
		(void)inet_ntop(s->family, s->ip, tmp, tmplen);
		return tmp;
	case 'r':
		return s->ourhost;
	case 't':
		return "0";
	}
	return NULL;
}

#define PARTS_MAX	(SPF_SENDER_MAX + 2)

/* One %{...} body: letter, digits, "r", delimiters; appended to x. */
static int
expand_one(const struct spf *s, const char *domain, const char *p,
    size_t len, int exp, struct xbuf *x)
{
	char		 tmp[80], delim[8];
	const char	*v, *parts[PARTS_MAX];
	size_t		 plen[PARTS_MAX], i = 1, nd = 0, np = 0, keep = 0, vl;
	size_t		 k, first;
	int		 letter, rev = 0, digits = 0;

	delim[0] = '\0';
	if (len == 0)
		return -1;
	letter = tolower((unsigned char)p[0]);
	if (strchr(exp ? "slodipvhcrt" : "slodipvh", letter) == NULL)
		return -1;
	for (; i < len && is_digit(p[i]); i++) {
		digits = 1;
		if (keep < 100000)
			keep = keep * 10 + (size_t)(p[i] - '0');
	}
	if (digits && keep == 0)
		return -1;
	if (i < len && (p[i] == 'r' || p[i] == 'R')) {
		rev = 1;
		i++;
	}
	for (; i < len; i++) {
		if (strchr(".-+,/_=", p[i]) == NULL || p[i] == '\0')
			return -1;
		if (nd < sizeof(delim) - 1 && strchr(delim, p[i]) == NULL)
			delim[nd++] = p[i];
		delim[nd] = '\0';
	}
	if (nd == 0)
		(void)strlcpy(delim, ".", sizeof(delim));
	if ((v = macro_value(s, domain, letter, tmp, sizeof(tmp))) == NULL)
		return -1;
	/* Split on the delimiters; keep the rightmost parts, reversed or
	 * not, joined with dots. */
	vl = strlen(v);
	for (k = 0, first = 0; k <= vl && np < PARTS_MAX; k++) {
		if (k < vl && strchr(delim, v[k]) == NULL)
			continue;
		parts[np] = v + first;
		plen[np++] = k - first;
		first = k + 1;
	}
	if (!digits || keep > np)
		keep = np;
	for (k = 0; k < keep; k++) {
		/* Reversed, the rightmost parts are the first ones. */
		i = rev ? keep - 1 - k : np - keep + k;
		if (k > 0)
			xput(x, '.');
		xputs(x, parts[i], plen[i], isupper((unsigned char)p[0]));
	}
	return 0;
}

/*
 * Expands a macro-string into x; -1 on a syntax error. *endmacro says
 * whether it ends with a macro-expand (the domain-end rule).
 */
static int
expand_x(const struct spf *s, const char *domain, const char *p, size_t len,
    int exp, struct xbuf *x, int *endmacro)
{
	const char	*close;
	size_t		 i = 0;
	unsigned char	 c;

	x->n = 0;
	*endmacro = 0;
	while (i < len) {
		c = (unsigned char)p[i];
		*endmacro = 0;
		if (c != '%') {
			if (c < 0x21 || c > 0x7e)
				return -1;
			xput(x, (char)c);
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		*endmacro = 1;
		switch (p[i + 1]) {
		case '%':
			xput(x, '%');
			i += 2;
			continue;
		case '_':
			xput(x, ' ');
			i += 2;
			continue;
		case '-':
			xputs(x, "%20", 3, 0);
			i += 2;
			continue;
		case '{':
			break;
		default:
			return -1;
		}
		close = memchr(p + i + 2, '}', len - i - 2);
		if (close == NULL || expand_one(s, domain, p + i + 2,
		    (size_t)(close - (p + i + 2)), exp, x) == -1)
			return -1;
		i = (size_t)(close - p) + 1;
	}
	return 0;
}

/* The last label of a literal domain-spec: a toplabel after a dot. */
static int
toplabel_ok(const char *p, size_t len)
{
	size_t	i, end = len;
	int	alpha = 0;

	if (end > 0 && p[end - 1] == '.')
		end--;
	for (i = end; i > 0 && p[i - 1] != '.'; i--)
		;
	if (i == 0 || i == end)
		return 0;
	if (p[i] == '-' || p[end - 1] == '-')
		return 0;
	for (; i < end; i++) {
		if (is_alpha((unsigned char)p[i]))
			alpha = 1;
		else if (!is_digit((unsigned char)p[i]) && p[i] != '-')
			return 0;
	}
	return alpha;
}

/* A domain-spec expanded to a name to look up; -1 when it is no name. */
static int
expand_name(const struct spf *s, const char *domain, const char *p,
    size_t len, char *out, size_t outlen)
{
	struct xbuf	 x;
	const char	*b;
	size_t		 n;
	int		 endmacro;

	if (expand_x(s, domain, p, len, 0, &x, &endmacro) == -1)
		return -1;
	b = x.b;
	n = x.n;
	if (n > 0 && b[n - 1] == '.')
		n--;
	/* Too long: drop labels from the left (7.3). */
	while (n > SPF_NAME_MAX) {
		const char *dot = memchr(b, '.', n);

		if (dot == NULL)
			return -1;
		n -= (size_t)(dot - b) + 1;
		b = dot + 1;
	}
	if (n + 1 > outlen)
		return -1;
	memcpy(out, b, n);
	out[n] = '\0';
	return name_ok(out, 0) ? 0 : -1;
}

int
spf_expand(const struct spf *s, const char *p, size_t len, char *out,
    size_t outlen)
{
	const char	*d = s->depth > 0 ? s->stack[s->depth - 1].domain :
			    s->sdomain;

	return expand_name(s, d, p, len, out, outlen);
}

/* ---- terms (RFC 7208 4.6.1, 5, 6) ---------------------------------- */

/* A CIDR length: "0" or a number without leading zero, at most max. */
static int
cidr_num(const char *p, size_t len, int max)
{
	int	 n = 0;
	size_t	 i;

	if (len == 0 || len > 3 || (len > 1 && p[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (!is_digit((unsigned char)p[i]))
			return -1;
		n = n * 10 + p[i] - '0';
	}
	return n <= max ? n : -1;
}

/* Splits a trailing dual-cidr-length off [arg, arglen). */
static int
dual_cidr(struct term *t)
{
	const char	*p = t->arg;
	size_t		 n = t->arglen, i;

	t->cidr4 = 32;
	t->cidr6 = 128;
	for (i = n; i > 0 && is_digit((unsigned char)p[i - 1]); i--)
		;
	if (i == n || i == 0 || p[i - 1] != '/')
		return 0;
	if (i >= 2 && p[i - 2] == '/') {
		if ((t->cidr6 = cidr_num(p + i, n - i, 128)) == -1)
			return -1;
		n = i - 2;
		for (i = n; i > 0 && is_digit((unsigned char)p[i - 1]); i--)
			;
		if (i == n || i == 0 || p[i - 1] != '/') {
			t->arglen = n;
			return 0;
		}
	}
	if ((t->cidr4 = cidr_num(p + i, n - i, 32)) == -1)
		return -1;
	t->arglen = i - 1;
	return 0;
}

/* An address with an optional "/len", for ip4: and ip6:. */
static int
ip_net(struct term *t, int family)
{
	char		 buf[INET6_ADDRSTRLEN + 1];
	const char	*slash = memchr(t->arg, '/', t->arglen);
	size_t		 alen = slash ? (size_t)(slash - t->arg) : t->arglen;
	int		 max = family == AF_INET ? 32 : 128;
	int		 bits = max;

	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	if (slash != NULL && (bits = cidr_num(slash + 1,
	    t->arglen - alen - 1, max)) == -1)
		return -1;
	memcpy(buf, t->arg, alen);
	buf[alen] = '\0';
	if (inet_pton(family, buf, t->net) != 1)
		return -1;
	if (family == AF_INET)
		t->cidr4 = bits;
	else
		t->cidr6 = bits;
	return 0;
}

static int
modifier_name(const char *p, size_t len)
{
	size_t	i;

	if (len == 0 || !is_alpha((unsigned char)p[0]))
		return 0;
	for (i = 1; i < len; i++)
		if (!is_alpha((unsigned char)p[i]) &&
		    !is_digit((unsigned char)p[i]) && strchr("-_.", p[i]) == NULL)
			return 0;
	return 1;
}

/* The syntax of a domain-spec: macros, and a literal end (4.6.1). */
static int
domain_spec_ok(const struct spf *s, const char *p, size_t len, int exp)
{
	struct xbuf	x;
	int		endmacro;

	if (expand_x(s, "d", p, len, exp, &x, &endmacro) == -1)
		return 0;
	return exp || endmacro || toplabel_ok(p, len);
}

static int
parse_mech(const struct spf *s, const char *p, size_t len, struct term *t)
{
	size_t	i, nl;
	int	colon;

	for (nl = 0; nl < len && p[nl] != ':' && p[nl] != '/'; nl++)
		;
	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == nl &&
		    strncasecmp(p, mechs[i].name, nl) == 0)
			break;
	if (i == sizeof(mechs) / sizeof(mechs[0]))
		return -1;
	t->kind = mechs[i].kind;
	t->arg = p + nl;
	t->arglen = len - nl;
	colon = t->arglen > 0 && p[nl] == ':';
	if (colon) {
		t->arg++;
		if (--t->arglen == 0)
			return -1;
	} else if (t->arglen > 0 && (t->kind != T_A && t->kind != T_MX))
		return -1;
	switch (t->kind) {
	case T_ALL:
		return t->arglen == 0 ? 0 : -1;
	case T_IP4:
		return t->arglen ? ip_net(t, AF_INET) : -1;
	case T_IP6:
		return t->arglen ? ip_net(t, AF_INET6) : -1;
	case T_A:
	case T_MX:
		if (dual_cidr(t) == -1)
			return -1;
		/* "a/24" has no domain-spec, "a:/24" an empty one. */
		if (colon != (t->arglen > 0))
			return -1;
		break;
	case T_INCLUDE:
	case T_EXISTS:
		if (t->arglen == 0)
			return -1;
		break;
	}
	if (t->arglen > 0 && !domain_spec_ok(s, t->arg, t->arglen, 0))
		return -1;
	return 0;
}

/* One term [p, p + len); -1 on a syntax error. */
static int
parse_term(const struct spf *s, const char *p, size_t len, struct term *t)
{
	size_t	i;

	memset(t, 0, sizeof(*t));
	t->qual = '+';
	for (i = 0; i < len && p[i] != '=' && p[i] != ':' && p[i] != '/'; i++)
		;
	if (i < len && p[i] == '=') {
		if (!modifier_name(p, i))
			return -1;
		t->arg = p + i + 1;
		t->arglen = len - i - 1;
		if (i == 8 && strncasecmp(p, "redirect", 8) == 0) {
			t->kind = T_REDIRECT;
			return t->arglen > 0 &&
			    domain_spec_ok(s, t->arg, t->arglen, 0) ? 0 : -1;
		}
		t->kind = i == 3 && strncasecmp(p, "exp", 3) == 0 ? T_EXP :
		    T_UNKNOWN;
		if (t->kind == T_EXP && t->arglen == 0)
			return -1;
		return domain_spec_ok(s, t->arg, t->arglen,
		    t->kind == T_UNKNOWN) ? 0 : -1;
	}
	if (len > 0 && strchr("+-~?", p[0]) != NULL) {
		t->qual = p[0];
		p++;
		len--;
	}
	return parse_mech(s, p, len, t);
}

/* The next term of the frame at *pos: its bounds, or 0 at the end. */
static int
next_term(const struct spf_frame *f, size_t pos, size_t *start, size_t *end)
{
	const char	*r = f->rec;

	while (r[pos] == ' ')
		pos++;
	if (r[pos] == '\0')
		return 0;
	*start = pos;
	while (r[pos] != ' ' && r[pos] != '\0')
		pos++;
	*end = pos;
	return 1;
}

/* The whole record, before any of it counts (4.6). */
static int
check_record(struct spf *s, struct spf_frame *f)
{
	struct term	t;
	size_t		pos = 6, start, end;
	int		exps = 0;

	f->redirect = 0;
	while (next_term(f, pos, &start, &end)) {
		if (parse_term(s, f->rec + start, end - start, &t) == -1)
			return -1;
		if (t.kind == T_EXP && exps++ > 0)
			return -1;
		if (t.kind == T_REDIRECT) {
			if (f->redirect != 0)
				return -1;
			f->redirect = start;
		}
		pos = end;
	}
	return 0;
}

/* ---- evaluation ---------------------------------------------------- */

static enum spf_result
qual_result(int qual)
{
	switch (qual) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	}
	return SPF_PASS;
}

static void
advance(struct spf *s)
{
	top(s)->pos = s->tend;
	s->counted = 0;
	s->wait = W_NONE;
}

/*
 * The record of the top frame came to result r (a match or the end):
 * an included record gives its result to the include term (5.2).
 */
static void
frame_done(struct spf *s, enum spf_result r, const char *why)
{
	struct spf_frame	*f;
	char			 incwhy[SPF_EXPLAIN_MAX];

	while (s->depth > 1) {
		f = top(s);
		if (r == SPF_TEMPERROR || r == SPF_PERMERROR) {
			finish(s, r, "%s", why);
			return;
		}
		if (r == SPF_NONE) {
			finish(s, SPF_PERMERROR, "include:%s: %s", f->domain,
			    why);
			return;
		}
		s->depth--;
		s->counted = 0;
		s->wait = W_NONE;
		if (r != SPF_PASS)
			return;		/* no match: the parent goes on */
		r = qual_result(f->included);
		(void)snprintf(incwhy, sizeof(incwhy),
		    "include:%s matched in %s", f->domain, top(s)->domain);
		why = incwhy;
	}
	finish(s, r, "%s", why);
}

static void
matched(struct spf *s)
{
	struct spf_frame	*f = top(s);
	char			 why[SPF_EXPLAIN_MAX];
	int			 n = (int)(s->tend - s->tstart);

	(void)snprintf(why, sizeof(why), "%.*s%s matched in %s",
	    n > 120 ? 120 : n, f->rec + s->tstart, n > 120 ? "..." : "",
	    f->domain);
	frame_done(s, qual_result(s->qual), why);
}

/* A lookup that found nothing; the third one is an error (4.6.4). */
static int
void_lookup(struct spf *s)
{
	if (++s->voids > SPF_VOID_MAX) {
		finish(s, SPF_PERMERROR, "too many void DNS lookups");
		return -1;
	}
	return 0;
}

static void
fetch_record(struct spf *s, const char *domain)
{
	struct spf_frame	*f = top(s);

	(void)strlcpy(f->domain, domain, sizeof(f->domain));
	f->rec[0] = '\0';
	f->pos = 0;
	f->redirect = 0;
	ask(s, W_TXT, f->domain, SPF_T_TXT);
}

static int
dns_term(int kind)
{
	return kind == T_INCLUDE || kind == T_A || kind == T_MX ||
	    kind == T_PTR || kind == T_EXISTS || kind == T_REDIRECT;
}

static int
needs_ptr(const struct term *t)
{
	size_t	i;

	if (t->kind == T_PTR)
		return 1;
	for (i = 0; i + 2 < t->arglen; i++)
		if (t->arg[i] == '%' && t->arg[i + 1] == '{' &&
		    (t->arg[i + 2] == 'p' || t->arg[i + 2] == 'P'))
			return 1;
	return 0;
}

/* Looks up the client's host names, once (5.5): PTR, then each name's
 * addresses. The term that needed them runs again afterwards. */
static void
start_ptr(struct spf *s)
{
	char	name[SPF_NAME_MAX + 1];
	size_t	i, n = 0;
	static const char hex[] = "0123456789abcdef";

	s->ptrstate = 1;
	if (s->family == AF_INET)
		(void)snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa",
		    s->ip[3], s->ip[2], s->ip[1], s->ip[0]);
	else {
		for (i = 16; i > 0; i--) {
			name[n++] = hex[s->ip[i - 1] & 15];
			name[n++] = '.';
			name[n++] = hex[s->ip[i - 1] >> 4];
			name[n++] = '.';
		}
		(void)strlcpy(name + n, "ip6.arpa", sizeof(name) - n);
	}
	ask(s, W_PTR, name, SPF_T_PTR);
}

/* Mechanisms that need no DNS (any more): match or go on. */
static void
match_local(struct spf *s, const struct term *t)
{
	int	i, hit = 0;

	switch (t->kind) {
	case T_ALL:
		hit = 1;
		break;
	case T_IP4:
		hit = ip_in(s, AF_INET, t->net, t->cidr4);
		break;
	case T_IP6:
		hit = ip_in(s, AF_INET6, t->net, t->cidr6);
		break;
	case T_PTR:
		/* The names were validated before (start_ptr). */
		for (i = 0; i < s->nptr && !hit; i++)
			hit = s->ptrok[i] &&
			    name_within(s->ptrnames[i], s->target);
		break;
	}
	if (hit)
		matched(s);
	else
		advance(s);
}

static void
push_include(struct spf *s, int qual)
{
	/* The term limit keeps includes to SPF_DEPTH_MAX - 1. */
	if (s->depth == SPF_DEPTH_MAX) {
		finish(s, SPF_PERMERROR, "includes too deep");
		return;
	}
	advance(s);
	s->stack[s->depth].included = qual;
	s->stack[s->depth].redirected = 0;
	s->depth++;
	fetch_record(s, s->target);
}

/*
 * The name a term works on, in s->target; -1 when the evaluation went
 * on without it (an error, or no match for a name that cannot exist).
 */
static int
term_target(struct spf *s, const struct term *t)
{
	struct spf_frame	*f = top(s);

	if (!dns_term(t->kind))
		return 0;
	if (t->arglen == 0) {
		(void)strlcpy(s->target, f->domain, sizeof(s->target));
		return 0;
	}
	if (expand_name(s, f->domain, t->arg, t->arglen, s->target,
	    sizeof(s->target)) == 0)
		return 0;
	if (t->kind == T_INCLUDE)
		finish(s, SPF_PERMERROR, "include of a bad name");
	else if (void_lookup(s) == 0)
		advance(s);
	return -1;
}

/* Evaluates the term [tstart, tend) of the top frame. */
static void
eval_term(struct spf *s, const struct term *t)
{
	/* Modifiers are passed over: redirect= is for the end (where it
	 * counts), exp= and the unknown ones are never looked up. */
	if (t->kind == T_REDIRECT || t->kind == T_EXP ||
	    t->kind == T_UNKNOWN) {
		advance(s);
		return;
	}
	if (!s->counted && dns_term(t->kind) &&
	    ++s->terms > SPF_TERMS_MAX) {
		finish(s, SPF_PERMERROR, "more than %d DNS-querying terms",
		    SPF_TERMS_MAX);
		return;
	}
	s->counted = 1;
	if (needs_ptr(t) && s->ptrstate == 0) {
		start_ptr(s);
		return;
	}
	s->qual = t->qual;
	s->cidr4 = t->cidr4;
	s->cidr6 = t->cidr6;
	if (term_target(s, t) == -1)
		return;
	switch (t->kind) {
	case T_A:
		ask(s, W_ADDR, s->target, addr_type(s));
		break;
	case T_MX:
		ask(s, W_MX, s->target, SPF_T_MX);
		break;
	case T_EXISTS:
		ask(s, W_EXISTS, s->target, SPF_T_A);
		break;
	case T_INCLUDE:
		push_include(s, t->qual);
		break;
	default:
		match_local(s, t);
		break;
	}
}

static void
run_term(struct spf *s)
{
	struct spf_frame	*f = top(s);
	struct term		 t;

	if (!next_term(f, f->pos, &s->tstart, &s->tend)) {
		end_of_record(s);
		return;
	}
	if (parse_term(s, f->rec + s->tstart, s->tend - s->tstart, &t) == -1) {
		/* check_record() saw it first; kept for safety. */
		finish(s, SPF_PERMERROR, "syntax error in %s", f->domain);
		return;
	}
	eval_term(s, &t);
}

/* No term matched: redirect= if any (6.1), else neutral (4.7). */
static void
end_of_record(struct spf *s)
{
	struct spf_frame	*f = top(s);
	struct term		 t;
	char			 target[SPF_NAME_MAX + 1];
	size_t			 start = 0, end = 0;

	if (f->redirect == 0) {
		frame_done(s, SPF_NEUTRAL, "no term matched");
		return;
	}
	(void)next_term(f, f->redirect, &start, &end);
	if (parse_term(s, f->rec + start, end - start, &t) == -1) {
		finish(s, SPF_PERMERROR, "bad redirect in %s", f->domain);
		return;
	}
	if (!s->counted && ++s->terms > SPF_TERMS_MAX) {
		finish(s, SPF_PERMERROR, "more than %d DNS-querying terms",
		    SPF_TERMS_MAX);
		return;
	}
	s->counted = 1;
	if (needs_ptr(&t) && s->ptrstate == 0) {
		start_ptr(s);
		return;
	}
	if (expand_name(s, f->domain, t.arg, t.arglen, target,
	    sizeof(target)) == -1) {
		finish(s, SPF_PERMERROR, "redirect to a bad name");
		return;
	}
	s->counted = 0;
	f->redirected = 1;
	fetch_record(s, target);
}

/* ---- answers ------------------------------------------------------- */

static int
record_chars_ok(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
			return 0;
	return 1;
}

static void
got_txt(struct spf *s, enum spf_dns st, const struct spf_rr *rr, size_t n)
{
	struct spf_frame	*f = top(s);
	const struct spf_rr	*rec = NULL;
	size_t			 i, found = 0;

	if (st == SPF_DNS_TEMPERROR) {
		finish(s, SPF_TEMPERROR, "DNS error for %s", f->domain);
		return;
	}
	for (i = 0; st == SPF_DNS_OK && i < n; i++) {
		if (rr[i].type != SPF_T_TXT || rr[i].text == NULL ||
		    !ci_prefix(rr[i].text, rr[i].len, "v=spf1") ||
		    (rr[i].len > 6 && rr[i].text[6] != ' '))
			continue;
		found++;
		rec = &rr[i];
	}
	if (found == 0) {
		if (f->redirected || f->included)
			finish(s, SPF_PERMERROR, "no SPF record at %s",
			    f->domain);
		else
			finish(s, SPF_NONE, "no SPF record at %s", f->domain);
		return;
	}
	if (found > 1) {
		finish(s, SPF_PERMERROR, "several SPF records at %s",
		    f->domain);
		return;
	}
	if (rec->len > SPF_RECORD_MAX || !record_chars_ok(rec->text,
	    rec->len)) {
		finish(s, SPF_PERMERROR, "SPF record at %s too long or not "
		    "ASCII", f->domain);
		return;
	}
	memcpy(f->rec, rec->text, rec->len);
	f->rec[rec->len] = '\0';
	f->pos = 6;
	s->wait = W_NONE;
	s->counted = 0;
	if (check_record(s, f) == -1)
		finish(s, SPF_PERMERROR, "syntax error in the SPF record of %s",
		    f->domain);
}

static void
got_addr(struct spf *s, enum spf_dns st, const struct spf_rr *rr, size_t n)
{
	size_t	i, seen = 0;

	if (st == SPF_DNS_TEMPERROR) {
		finish(s, SPF_TEMPERROR, "DNS error for %s", s->q.name);
		return;
	}
	for (i = 0; st == SPF_DNS_OK && i < n; i++) {
		if (rr[i].type != s->q.type)
			continue;
		seen++;
		if (s->wait == W_EXISTS || rr_matches(s, &rr[i], s->cidr4,
		    s->cidr6)) {
			matched(s);
			return;
		}
	}
	if (s->wait == W_MXHOST) {
		if (++s->iname < s->nnames)
			ask(s, W_MXHOST, s->names[s->iname], addr_type(s));
		else
			advance(s);
		return;
	}
	if (seen == 0 && void_lookup(s) == -1)
		return;
	advance(s);
}

static void
got_mx(struct spf *s, enum spf_dns st, const struct spf_rr *rr, size_t n)
{
	char	name[SPF_NAME_MAX + 2];
	size_t	i;

	if (st == SPF_DNS_TEMPERROR) {
		finish(s, SPF_TEMPERROR, "DNS error for %s", s->q.name);
		return;
	}
	s->nnames = 0;
	s->iname = 0;
	for (i = 0; st == SPF_DNS_OK && i < n; i++) {
		if (rr[i].type != SPF_T_MX || rr_name(&rr[i], name) == -1)
			continue;
		if (s->nnames == SPF_MXNAMES_MAX) {
			finish(s, SPF_PERMERROR, "more than %d MX names for %s",
			    SPF_MXNAMES_MAX, s->q.name);
			return;
		}
		(void)strlcpy(s->names[s->nnames++], name, sizeof(s->names[0]));
	}
	if (s->nnames == 0) {
		if (void_lookup(s) == 0)
			advance(s);
		return;
	}
	ask(s, W_MXHOST, s->names[0], addr_type(s));
}

static void
got_ptr(struct spf *s, enum spf_dns st, const struct spf_rr *rr, size_t n)
{
	char	name[SPF_NAME_MAX + 2];
	size_t	i;

	s->nptr = 0;
	s->iptr = 0;
	/* A DNS error here is no match, not an error (5.5). */
	for (i = 0; st == SPF_DNS_OK && i < n; i++) {
		if (rr[i].type != SPF_T_PTR || rr_name(&rr[i], name) == -1)
			continue;
		if (s->nptr == SPF_PTRNAMES_MAX)
			break;		/* the rest is ignored (4.6.4) */
		(void)strlcpy(s->ptrnames[s->nptr], name,
		    sizeof(s->ptrnames[0]));
		s->ptrok[s->nptr++] = 0;
	}
	if (s->nptr == 0) {
		s->ptrstate = 2;
		s->wait = W_NONE;
		return;
	}
	ask(s, W_PTRHOST, s->ptrnames[0], addr_type(s));
}

static void
got_ptrhost(struct spf *s, enum spf_dns st, const struct spf_rr *rr,
    size_t n)
{
	size_t	i;

	for (i = 0; st == SPF_DNS_OK && i < n; i++)
		if (rr[i].type == s->q.type && rr_matches(s, &rr[i], 32, 128))
			s->ptrok[s->iptr] = 1;
	if (++s->iptr < s->nptr) {
		ask(s, W_PTRHOST, s->ptrnames[s->iptr], addr_type(s));
		return;
	}
	s->ptrstate = 2;
	s->wait = W_NONE;	/* the term that asked runs again */
}

void
spf_answer(struct spf *s, enum spf_dns st, const struct spf_rr *rr, size_t n)
{
	if (s->done)
		return;
	if (rr == NULL)
		n = 0;
	switch (s->wait) {
	case W_TXT:
		got_txt(s, st, rr, n);
		break;
	case W_ADDR:
	case W_MXHOST:
	case W_EXISTS:
		got_addr(s, st, rr, n);
		break;
	case W_MX:
		got_mx(s, st, rr, n);
		break;
	case W_PTR:
		got_ptr(s, st, rr, n);
		break;
	case W_PTRHOST:
		got_ptrhost(s, st, rr, n);
		break;
	}
}

/* ---- the interface ------------------------------------------------- */

static int
set_ip(struct spf *s, const char *ip)
{
	static const uint8_t	mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				    0xff, 0xff };
	uint8_t			v6[16];

	if (inet_pton(AF_INET, ip, s->ip) == 1) {
		s->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, v6) != 1)
		return -1;
	if (memcmp(v6, mapped, sizeof(mapped)) == 0) {
		s->family = AF_INET;
		memcpy(s->ip, v6 + 12, 4);
		return 0;
	}
	s->family = AF_INET6;
	memcpy(s->ip, v6, 16);
	return 0;
}

/* The sender's parts (4.3): no local-part is "postmaster"; the null
 * sender is postmaster@helo. */
static int
set_sender(struct spf *s, const char *sender, const char *helo)
{
	const char	*at;
	int		 n;

	if (sender[0] == '\0')
		n = snprintf(s->sender, sizeof(s->sender), "postmaster@%s",
		    helo);
	else if ((at = strrchr(sender, '@')) == NULL)
		n = snprintf(s->sender, sizeof(s->sender), "postmaster@%s",
		    sender);
	else if (at == sender)
		n = snprintf(s->sender, sizeof(s->sender), "postmaster%s",
		    sender);
	else
		n = snprintf(s->sender, sizeof(s->sender), "%s", sender);
	if (n < 0 || (size_t)n >= sizeof(s->sender))
		return -1;
	at = strrchr(s->sender, '@');
	(void)snprintf(s->local, sizeof(s->local), "%.*s",
	    (int)(at - s->sender), s->sender);
	if (strlcpy(s->sdomain, at + 1, sizeof(s->sdomain)) >=
	    sizeof(s->sdomain))
		return -1;
	return 0;
}

int
spf_begin(struct spf *s, const char *ip, const char *sender,
    const char *helo, const char *ourhost)
{
	char	domain[SPF_NAME_MAX + 1];

	memset(s, 0, sizeof(*s));
	if (set_ip(s, ip) == -1)
		return -1;
	(void)strlcpy(s->helo, helo, sizeof(s->helo));
	(void)strlcpy(s->ourhost, ourhost, sizeof(s->ourhost));
	s->depth = 1;
	if (set_sender(s, sender, helo) == -1 ||
	    strlcpy(domain, s->sdomain, sizeof(domain)) >= sizeof(domain) ||
	    !name_ok(domain, 1) || !toplabel_ok(domain, strlen(domain))) {
		(void)strlcpy(s->stack[0].domain, s->sdomain,
		    sizeof(s->stack[0].domain));
		finish(s, SPF_NONE, "no domain to check");
		return 0;
	}
	(void)strlcpy(s->sdomain, domain, sizeof(s->sdomain));
	fetch_record(s, domain);
	return 0;
}

int
spf_step(struct spf *s)
{
	while (!s->done && s->wait == W_NONE)
		run_term(s);
	return s->done ? SPF_DONE : SPF_NEED_DNS;
}

const struct spf_question *
spf_question(const struct spf *s)
{
	return &s->q;
}

enum spf_result
spf_result(const struct spf *s)
{
	return s->result;
}

const char *
spf_explain(const struct spf *s)
{
	return s->explain;
}

int
spf_questions(const struct spf *s)
{
	return s->nq;
}

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
		"none", "neutral", "pass", "fail", "softfail", "temperror",
		"permerror"
	};

	if ((unsigned)r >= sizeof(names) / sizeof(names[0]))
		return "permerror";
	return names[r];
}
