/*
 * DKIM-Signature fields and key records, as a verifier reads them: the
 * tag=value lists of RFC 6376 3.2, then the rules of 3.5 and 3.6.1.
 * What the RFCs leave open is decided for safety: rsa-sha1 is refused
 * (RFC 8301), an i= outside d= is refused, a duplicate tag is refused.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "dkimsig.h"

struct tagval {
	char		 name[16];
	const char	*v;
	size_t		 vlen;
};

struct taglist {
	struct tagval	t[DKIMSIG_TAGS_MAX];
	size_t		n;
};

static int
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
fail(char *why, size_t whylen, const char *text)
{
	(void)snprintf(why, whylen, "%s", text);
}

/*
 * Split value into tags. Names: ALPHA *(ALPHA / DIGIT / "_"); values:
 * trimmed of FWS at both ends (FWS inside is kept, for b= and h=). -1 on
 * a tag without '=', a bad name, a duplicate, or too many tags.
 */
static int
split_tags(const char *v, size_t len, struct taglist *tl, char *why,
    size_t whylen)
{
	size_t	i = 0, start, eq, end, nlen, k;

	tl->n = 0;
	while (i < len) {
		start = i;
		for (end = i; end < len && v[end] != ';'; end++)
			;
		i = end < len ? end + 1 : end;
		while (start < end && is_fws(v[start]))
			start++;
		if (start == end)
			continue;	/* empty, as after a final ';' */
		for (eq = start; eq < end && v[eq] != '='; eq++)
			;
		if (eq == end) {
			fail(why, whylen, "a tag without '='");
			return -1;
		}
		nlen = eq - start;
		while (nlen > 0 && is_fws(v[start + nlen - 1]))
			nlen--;
		if (nlen == 0 || nlen >= sizeof(tl->t[0].name) ||
		    !isalpha((unsigned char)v[start])) {
			fail(why, whylen, "a bad tag name");
			return -1;
		}
		for (k = 0; k < nlen; k++)
			if (!isalnum((unsigned char)v[start + k]) &&
			    v[start + k] != '_') {
				fail(why, whylen, "a bad tag name");
				return -1;
			}
		if (tl->n == DKIMSIG_TAGS_MAX) {
			fail(why, whylen, "too many tags");
			return -1;
		}
		memcpy(tl->t[tl->n].name, v + start, nlen);
		tl->t[tl->n].name[nlen] = '\0';
		for (k = 0; k < tl->n; k++)
			if (strcmp(tl->t[k].name, tl->t[tl->n].name) == 0) {
				fail(why, whylen, "a tag given twice");
				return -1;
			}
		eq++;
		while (eq < end && is_fws(v[eq]))
			eq++;
		while (end > eq && is_fws(v[end - 1]))
			end--;
		tl->t[tl->n].v = v + eq;
		tl->t[tl->n].vlen = end - eq;
		tl->n++;
	}
	return 0;
}

static const struct tagval *
tag(const struct taglist *tl, const char *name)
{
	size_t	i;

	for (i = 0; i < tl->n; i++)
		if (strcmp(tl->t[i].name, name) == 0)
			return &tl->t[i];
	return NULL;
}

static int
value_is(const struct tagval *t, const char *s)
{
	return t->vlen == strlen(s) && memcmp(t->v, s, t->vlen) == 0;
}

/* Base64 with folding white space anywhere in it. */
static int
decode_b64(const struct tagval *t, unsigned char *out, size_t outmax,
    size_t *outlen)
{
	char	buf[2 * DKIMSIG_KEY_MAX + 8];
	size_t	i, n = 0;
	int	r;

	for (i = 0; i < t->vlen; i++) {
		if (is_fws(t->v[i]))
			continue;
		if (n + 1 >= sizeof(buf))
			return -1;
		buf[n++] = t->v[i];
	}
	buf[n] = '\0';
	if (n == 0) {
		*outlen = 0;
		return 0;
	}
	if ((r = base64_decode(buf, out, outmax)) < 0)
		return -1;
	*outlen = r;
	return 0;
}

/* A decimal of at most 18 digits (RFC 6376 allows 76; none is needed). */
static int
decimal(const struct tagval *t, int64_t *out)
{
	size_t	i;
	int64_t	n = 0;

	if (t->vlen == 0 || t->vlen > 18)
		return -1;
	for (i = 0; i < t->vlen; i++) {
		if (!isdigit((unsigned char)t->v[i]))
			return -1;
		n = n * 10 + (t->v[i] - '0');
	}
	*out = n;
	return 0;
}

/* A domain or selector: labels of letters, digits, '-' and '_'. */
static int
copy_name(const char *v, size_t len, char *out, size_t outmax)
{
	size_t	i, label = 0;

	if (len > 0 && v[len - 1] == '.')
		len--;
	if (len == 0 || len >= outmax)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char	c = v[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = tolower(c);
	}
	out[len] = '\0';
	return label == 0 ? -1 : 0;
}

static int
parse_canon(const struct tagval *t, struct dkimsig *s)
{
	const char	*slash = memchr(t->v, '/', t->vlen);
	size_t		 hl = slash ? (size_t)(slash - t->v) : t->vlen;
	int		*which[2] = { &s->hcanon, &s->bcanon };
	const char	*part[2] = { t->v, slash ? slash + 1 : NULL };
	size_t		 plen[2] = { hl, slash ? t->vlen - hl - 1 : 0 };
	int		 i;

	s->hcanon = s->bcanon = DKIMSIG_SIMPLE;
	for (i = 0; i < 2 && part[i] != NULL; i++) {
		if (plen[i] == 6 && memcmp(part[i], "simple", 6) == 0)
			*which[i] = DKIMSIG_SIMPLE;
		else if (plen[i] == 7 && memcmp(part[i], "relaxed", 7) == 0)
			*which[i] = DKIMSIG_RELAXED;
		else
			return -1;
	}
	return 0;
}

/*
 * The next ':'-separated item of t from *i, trimmed of FWS, as
 * [*start, *end); 0 when t has no more.
 */
static int
next_item(const struct tagval *t, size_t *i, size_t *start, size_t *end)
{
	if (*i > t->vlen)
		return 0;
	*start = *i;
	for (*end = *i; *end < t->vlen && t->v[*end] != ':'; (*end)++)
		;
	*i = *end + 1;
	while (*start < *end && is_fws(t->v[*start]))
		(*start)++;
	while (*end > *start && is_fws(t->v[*end - 1]))
		(*end)--;
	return 1;
}

/* h=: names apart by ':', FWS around each; From must be among them. */
static int
parse_h(const struct tagval *t, struct dkimsig *s)
{
	size_t	i = 0, start, end;
	int	from = 0;

	s->nh = 0;
	while (next_item(t, &i, &start, &end)) {
		if (start == end || end - start > DKIMSIG_NAME_MAX ||
		    s->nh == DKIMSIG_H_MAX)
			return -1;
		memcpy(s->h[s->nh], t->v + start, end - start);
		s->h[s->nh][end - start] = '\0';
		if (strcasecmp(s->h[s->nh], "from") == 0)
			from = 1;
		s->nh++;
	}
	return from ? 0 : -1;
}

/* i=: [local]@domain, the domain d= or one under it. */
static int
i_within_d(const struct tagval *t, const char *d)
{
	const char	*at = memchr(t->v, '@', t->vlen);
	char		 dom[DKIMSIG_DOMAIN_MAX + 1];
	size_t		 dl, n;

	if (at == NULL || copy_name(at + 1, t->vlen - (at + 1 - t->v), dom,
	    sizeof(dom)) == -1)
		return 0;
	dl = strlen(d);
	n = strlen(dom);
	if (n == dl)
		return strcmp(dom, d) == 0;
	return n > dl && dom[n - dl - 1] == '.' && strcmp(dom + n - dl, d) ==
	    0;
}

/* Is word one of the ':'-separated items of t (FWS around them)? */
static int
list_has(const struct tagval *t, const char *word)
{
	size_t	i = 0, start, end, wl = strlen(word);

	while (next_item(t, &i, &start, &end))
		if (end - start == wl && memcmp(t->v + start, word, wl) == 0)
			return 1;
	return 0;
}

static int
sig_required(const struct taglist *tl, struct dkimsig *s, char *why,
    size_t whylen)
{
	const struct tagval	*t;

	if ((t = tag(tl, "v")) == NULL || !value_is(t, "1"))
		return fail(why, whylen, "v= is not 1"), -1;
	if ((t = tag(tl, "a")) == NULL)
		return fail(why, whylen, "no a="), -1;
	if (value_is(t, "rsa-sha256"))
		s->alg = DKIMSIG_RSA_SHA256;
	else if (value_is(t, "ed25519-sha256"))
		s->alg = DKIMSIG_ED25519_SHA256;
	else if (value_is(t, "rsa-sha1"))
		return fail(why, whylen, "rsa-sha1 is not accepted"), -1;
	else
		return fail(why, whylen, "an unknown algorithm"), -1;
	if ((t = tag(tl, "b")) == NULL ||
	    decode_b64(t, s->b, sizeof(s->b), &s->blen) == -1 ||
	    s->blen == 0)
		return fail(why, whylen, "b= missing or not base64"), -1;
	if ((t = tag(tl, "bh")) == NULL ||
	    decode_b64(t, s->bh, sizeof(s->bh), &s->bhlen) == -1 ||
	    s->bhlen != 32)
		return fail(why, whylen, "bh= missing or not a SHA-256"), -1;
	if ((t = tag(tl, "d")) == NULL ||
	    copy_name(t->v, t->vlen, s->d, sizeof(s->d)) == -1)
		return fail(why, whylen, "d= missing or not a domain"), -1;
	if ((t = tag(tl, "s")) == NULL ||
	    copy_name(t->v, t->vlen, s->s, sizeof(s->s)) == -1)
		return fail(why, whylen, "s= missing or not a selector"), -1;
	if ((t = tag(tl, "h")) == NULL || parse_h(t, s) == -1)
		return fail(why, whylen, "h= missing, too long or without "
		    "From"), -1;
	return 0;
}

static int
sig_optional(const struct taglist *tl, time_t now, struct dkimsig *s,
    char *why, size_t whylen)
{
	const struct tagval	*t;
	int64_t			 n;

	if ((t = tag(tl, "c")) != NULL && parse_canon(t, s) == -1)
		return fail(why, whylen, "an unknown c="), -1;
	if ((t = tag(tl, "i")) != NULL && !i_within_d(t, s->d))
		return fail(why, whylen, "i= is not within d="), -1;
	if ((t = tag(tl, "q")) != NULL && !list_has(t, "dns/txt"))
		return fail(why, whylen, "q= has no dns/txt"), -1;
	if ((t = tag(tl, "l")) != NULL) {
		if (decimal(t, &n) == -1)
			return fail(why, whylen, "a bad l="), -1;
		s->has_l = 1;
		s->l = (uint64_t)n;
	}
	if ((t = tag(tl, "t")) != NULL) {
		if (decimal(t, &s->t) == -1)
			return fail(why, whylen, "a bad t="), -1;
		s->has_t = 1;
	}
	if ((t = tag(tl, "x")) != NULL) {
		if (decimal(t, &s->x) == -1 || (s->has_t && s->x < s->t))
			return fail(why, whylen, "a bad x="), -1;
		s->has_x = 1;
		if (s->x < (int64_t)now)
			return fail(why, whylen, "the signature has expired"),
			    -1;
	}
	return 0;
}

int
dkimsig_parse(const char *value, size_t len, time_t now, struct dkimsig *s,
    char *why, size_t whylen)
{
	struct taglist	tl;

	memset(s, 0, sizeof(*s));
	if (len > DKIMSIG_VALUE_MAX || memchr(value, '\0', len) != NULL) {
		fail(why, whylen, "the field is too long or holds a NUL");
		return -1;
	}
	if (split_tags(value, len, &tl, why, whylen) == -1 ||
	    sig_required(&tl, s, why, whylen) == -1 ||
	    sig_optional(&tl, now, s, why, whylen) == -1)
		return -1;
	return 0;
}

int
dkimkey_parse(const char *txt, size_t len, struct dkimkey *k, char *why,
    size_t whylen)
{
	struct taglist		 tl;
	const struct tagval	*t;

	memset(k, 0, sizeof(*k));
	if (len > 2 * DKIMSIG_KEY_MAX + 512 || memchr(txt, '\0', len) !=
	    NULL) {
		fail(why, whylen, "the key record is too long or holds a NUL");
		return -1;
	}
	if (split_tags(txt, len, &tl, why, whylen) == -1)
		return -1;
	if ((t = tag(&tl, "v")) != NULL && (t != &tl.t[0] ||
	    !value_is(t, "DKIM1")))
		return fail(why, whylen, "v= is not DKIM1 first"), -1;
	k->alg = DKIMSIG_RSA_SHA256;
	if ((t = tag(&tl, "k")) != NULL) {
		if (value_is(t, "ed25519"))
			k->alg = DKIMSIG_ED25519_SHA256;
		else if (!value_is(t, "rsa"))
			return fail(why, whylen, "an unknown key type"), -1;
	}
	if ((t = tag(&tl, "h")) != NULL && !list_has(t, "sha256"))
		return fail(why, whylen, "h= does not allow sha256"), -1;
	if ((t = tag(&tl, "s")) != NULL && !list_has(t, "*") &&
	    !list_has(t, "email"))
		return fail(why, whylen, "the key is not for email"), -1;
	if ((t = tag(&tl, "t")) != NULL) {
		k->testing = list_has(t, "y");
		k->strict = list_has(t, "s");
	}
	if ((t = tag(&tl, "p")) == NULL ||
	    decode_b64(t, k->p, sizeof(k->p), &k->plen) == -1)
		return fail(why, whylen, "p= missing or not base64"), -1;
	return 0;
}

size_t
dkimsig_strip_b(const char *value, size_t len, char *out, size_t outlen)
{
	size_t	i = 0, start, eq, end, n = 0, name;

	while (i < len) {
		start = i;
		for (end = i; end < len && value[end] != ';'; end++)
			;
		for (eq = start; eq < end && value[eq] != '='; eq++)
			;
		for (name = start; name < eq && is_fws(value[name]); name++)
			;
		/* the b= tag: its name alone, with FWS around it */
		if (eq < end && value[name] == 'b' && (name + 1 == eq ||
		    is_fws(value[name + 1]))) {
			if (n + (eq + 1 - start) > outlen)
				return (size_t)-1;
			memcpy(out + n, value + start, eq + 1 - start);
			n += eq + 1 - start;
		} else {
			if (n + (end - start) > outlen)
				return (size_t)-1;
			memcpy(out + n, value + start, end - start);
			n += end - start;
		}
		if (end < len) {
			if (n + 1 > outlen)
				return (size_t)-1;
			out[n++] = ';';
		}
		i = end + 1;
	}
	return n;
}
