#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxfile.h"
#include "util.h"

#define LINE_MAX_LEN	1024
#define MAX_WORDS	5

static const struct {
	int		 status;
	const char	*name;
	const char	*reason;
} statuses[] = {
	{ MX_OK,	"ok",		"" },
	{ MX_TEMPFAIL,	"tempfail",	"temporary DNS failure" },
	{ MX_NXDOMAIN,	"nxdomain",	"no such domain" },
	{ MX_NULLMX,	"nullmx",	"the domain accepts no mail (null MX)" },
	{ MX_NOHOSTS,	"nohosts",	"no address for any mail server of the "
	    "domain" },
};

const char *
mx_status_name(int status)
{
	size_t	i;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].status == status)
			return statuses[i].name;
	return "?";
}

const char *
mx_status_reason(int status)
{
	size_t	i;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].status == status)
			return statuses[i].reason;
	return "";
}

/* The statuses a file may hold: never a temporary failure. */
static int
status_parse(const char *s)
{
	if (strcmp(s, "ok") == 0)
		return MX_OK;
	if (strcmp(s, "nxdomain") == 0)
		return MX_NXDOMAIN;
	if (strcmp(s, "nullmx") == 0)
		return MX_NULLMX;
	if (strcmp(s, "nohosts") == 0)
		return MX_NOHOSTS;
	return -1;
}

int
mx_domain_normalize(const char *in, char out[MX_NAME_MAX + 1])
{
	size_t	i, len = strlen(in), label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > MX_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char	c = in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isascii(c) && (isalnum(c) || c == '-' ||
		    c == '_')) {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = tolower(c);
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

struct mxentry *
mxset_add(struct mxset *set)
{
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 16;
		set->v = xreallocarray(set->v, set->cap, sizeof(*set->v));
	}
	memset(&set->v[set->n], 0, sizeof(set->v[0]));
	return &set->v[set->n++];
}

struct mxentry *
mxset_find(const struct mxset *set, const char *domain)
{
	size_t	i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->v[i].domain, domain) == 0)
			return &set->v[i];
	return NULL;
}

void
mxentry_free(struct mxentry *e)
{
	free(e->rr);
	e->rr = NULL;
	e->n = 0;
}

void
mxentry_copy(struct mxentry *dst, const struct mxentry *src)
{
	*dst = *src;
	dst->rr = xreallocarray(NULL, src->n, sizeof(*src->rr));
	if (src->n)
		memcpy(dst->rr, src->rr, src->n * sizeof(*src->rr));
}

void
mxset_free(struct mxset *set)
{
	size_t	i;

	for (i = 0; i < set->n; i++)
		mxentry_free(&set->v[i]);
	free(set->v);
	memset(set, 0, sizeof(*set));
}

/* 9999-12-31T23:59:59Z: past it, a number is not a time but garbage
 * (whatever lies between is clamped by mxset_clamp). */
#define MXFILE_EXPIRES_MAX	253402300799LL

/* Digits only: strtonum alone would take " +5" or "-0". */
static int
number(const char *s, long long max, long long *out)
{
	const char	*errstr;

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return -1;
	*out = strtonum(s, 0, max, &errstr);
	return errstr ? -1 : 0;
}

static int
address_ok(const char *s)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	if (strlen(s) >= INET6_ADDRSTRLEN)
		return -1;
	if (inet_pton(AF_INET, s, buf) == 1 ||
	    (strchr(s, ':') && inet_pton(AF_INET6, s, buf) == 1))
		return 0;
	return -1;
}

struct parser {
	struct mxset	*set;
	struct mxentry	*cur;
	int		 have_expires, have_status;
	size_t		 cap;		/* of cur->rr */
	char		*err;
	size_t		 errlen;
	size_t		 line;
};

static int
perr(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
perr(struct parser *p, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	n = snprintf(p->err, p->errlen, "line %zu: ", p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The block being read is complete and consistent. */
static int
block_end(struct parser *p)
{
	struct mxentry	*e = p->cur;

	if (e == NULL)
		return 0;
	if (!p->have_expires || !p->have_status)
		return perr(p, "domain %s lacks %s", e->domain,
		    p->have_expires ? "status" : "expires");
	if (e->status == MX_OK && e->n == 0)
		return perr(p, "domain %s: status ok without mx lines",
		    e->domain);
	p->cur = NULL;
	return 0;
}

static int
word_domain(struct parser *p, char **w)
{
	if (block_end(p) == -1)
		return -1;
	p->cur = mxset_add(p->set);
	p->have_expires = p->have_status = 0;
	p->cap = 0;
	if (mx_domain_normalize(w[1], p->cur->domain) == -1 ||
	    strcmp(w[1], p->cur->domain) != 0)
		return perr(p, "bad domain name");
	return 0;
}

static int
word_expires(struct parser *p, char **w)
{
	long long	v;

	if (p->have_expires++)
		return perr(p, "expires given twice");
	if (number(w[1], MXFILE_EXPIRES_MAX, &v) == -1)
		return perr(p, "bad expires '%.32s': want a Unix time before "
		    "the year 10000", w[1]);
	p->cur->expires = (time_t)v;
	return 0;
}

static int
word_status(struct parser *p, char **w)
{
	if (p->have_status++)
		return perr(p, "status given twice");
	if ((p->cur->status = status_parse(w[1])) == -1)
		return perr(p, "unknown status '%.32s'", w[1]);
	if (p->cur->n && p->cur->status != MX_OK)
		return perr(p, "mx lines with status %s", w[1]);
	return 0;
}

static int
word_mx(struct parser *p, char **w)
{
	struct mxentry	*e = p->cur;
	struct mxrr	*rr;
	long long	 pref;

	if (p->have_status && e->status != MX_OK)
		return perr(p, "mx line with status %s",
		    mx_status_name(e->status));
	if (e->n == MX_MAX_HOSTS)
		return perr(p, "more than %d mx lines", MX_MAX_HOSTS);
	if (number(w[1], UINT16_MAX, &pref) == -1)
		return perr(p, "bad preference");
	if (e->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		e->rr = xreallocarray(e->rr, p->cap, sizeof(*e->rr));
	}
	rr = &e->rr[e->n];
	rr->pref = (uint16_t)pref;
	if (mx_domain_normalize(w[2], rr->host) == -1 ||
	    strcmp(w[2], rr->host) != 0)
		return perr(p, "bad host name");
	if (address_ok(w[3]) == -1)
		return perr(p, "bad address");
	strlcpy(rr->addr, w[3], sizeof(rr->addr));
	if (e->n > 0 && rr->pref < e->rr[e->n - 1].pref)
		return perr(p, "mx lines out of preference order");
	e->n++;
	return 0;
}

static const struct keyword {
	const char	*name;
	int		 words;
	int		 (*fn)(struct parser *, char **);
} keywords[] = {
	{ "domain",	2, word_domain },
	{ "expires",	2, word_expires },
	{ "status",	2, word_status },
	{ "mx",		4, word_mx },
};

static int
split(char *line, char **w)
{
	int	n = 0;
	char	*s;

	while ((s = strsep(&line, " \t")) != NULL) {
		if (*s == '\0')
			continue;
		if (n == MAX_WORDS)
			return -1;
		w[n++] = s;
	}
	return n;
}

static int
parse_line(struct parser *p, char *line)
{
	char	*w[MAX_WORDS];
	size_t	 i;
	int	 n;

	if (line[0] == '#')
		return 0;
	if ((n = split(line, w)) == 0)
		return block_end(p);
	if (n == -1)
		return perr(p, "too many words");
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strcmp(w[0], keywords[i].name) != 0)
			continue;
		if (n != keywords[i].words)
			return perr(p, "%s takes %d values", w[0],
			    keywords[i].words - 1);
		if (p->cur == NULL && keywords[i].fn != word_domain)
			return perr(p, "%s before any domain line", w[0]);
		return keywords[i].fn(p, w);
	}
	return perr(p, "unknown keyword '%.32s'", w[0]);
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct mxentry	*x = a, *y = b;

	return strcmp(x->domain, y->domain);
}

/* A domain twice would make the result depend on the order. */
static int
check_unique(struct parser *p)
{
	struct mxentry	*v;
	size_t		 i;
	int		 r = 0;

	if (p->set->n < 2)
		return 0;
	v = xreallocarray(NULL, p->set->n, sizeof(*v));
	memcpy(v, p->set->v, p->set->n * sizeof(*v));
	qsort(v, p->set->n, sizeof(*v), entry_cmp);
	for (i = 1; i < p->set->n && r == 0; i++)
		if (strcmp(v[i - 1].domain, v[i].domain) == 0) {
			snprintf(p->err, p->errlen, "domain %s appears "
			    "twice", v[i].domain);
			r = -1;
		}
	free(v);
	return r;
}

int
mxfile_parse(const char *text, size_t len, struct mxset *set, char *err,
    size_t errlen)
{
	struct parser	 p;
	const char	*s = text, *end = text + len, *nl;
	char		 line[LINE_MAX_LEN + 1];
	size_t		 n;

	memset(set, 0, sizeof(*set));
	memset(&p, 0, sizeof(p));
	p.set = set;
	p.err = err;
	p.errlen = errlen;
	while (s < end) {
		p.line++;
		nl = memchr(s, '\n', end - s);
		n = (nl ? nl : end) - s;
		if (n > LINE_MAX_LEN || memchr(s, '\0', n) != NULL) {
			perr(&p, n > LINE_MAX_LEN ? "line too long" :
			    "NUL byte");
			goto fail;
		}
		memcpy(line, s, n);
		line[n] = '\0';
		if (parse_line(&p, line) == -1)
			goto fail;
		s = nl ? nl + 1 : end;
	}
	if (block_end(&p) == 0 && check_unique(&p) == 0)
		return 0;
fail:
	mxset_free(set);
	return -1;
}

size_t
mxset_clamp(struct mxset *set, time_t now, time_t maxttl)
{
	size_t	i, n = 0;

	for (i = 0; i < set->n; i++)
		if (set->v[i].expires > now + maxttl) {
			set->v[i].expires = now + maxttl;
			n++;
		}
	return n;
}

void
mxfile_print_header(FILE *fp)
{
	fprintf(fp, "# pymaild MX cache, rewritten by pymaild and `pymailadm "
	    "updatemx`.\n# One block per domain; expires is a Unix time. "
	    "Safe to delete.\n\n");
}

void
mxfile_print(FILE *fp, const struct mxentry *e)
{
	size_t	i;

	fprintf(fp, "domain %s\nexpires %lld\nstatus %s\n", e->domain,
	    (long long)e->expires, mx_status_name(e->status));
	for (i = 0; i < e->n; i++)
		fprintf(fp, "mx %u %s %s\n", e->rr[i].pref, e->rr[i].host,
		    e->rr[i].addr);
	fputc('\n', fp);
}

int
mxfile_read_fd(int fd, size_t max, char **text, size_t *len)
{
	struct stat	 st;
	char		*buf;
	size_t		 have = 0;
	ssize_t		 n;

	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_size < 0 || (size_t)st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (have < (size_t)st.st_size) {
		n = pread(fd, buf + have, st.st_size - have, have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			errno = n == 0 ? EIO : errno;
			return -1;
		}
		have += n;
	}
	buf[have] = '\0';
	*text = buf;
	*len = have;
	return 0;
}
