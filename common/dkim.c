/*
 * DKIM's pure parts (dkim.h). The signer signs what it sends: the
 * signature header is folded first, and the folded text, canonicalized
 * the way a verifier will, is what goes into the header hash. The b=
 * value always starts a line of its own, so the folding of everything
 * before it does not depend on the signature's octets, and the same
 * stored line folds to the same bytes at every retry.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>

#include "base64.h"
#include "dkim.h"
#include "util.h"

/* Signed when present; From once more than present (oversigning), so
 * no From can be added on the way without breaking the signature. */
static const char *const signed_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "reply-to",
	"in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding",
};
#define NSIGNED	(sizeof(signed_headers) / sizeof(signed_headers[0]))

#define FOLD_WIDTH	76	/* octets a folded line aims to stay under */
/* Fields of one name signed at most (the last ones, as a verifier takes
 * them): h= stays bounded whatever the header holds. */
#define SIGN_SAME_MAX	4
#define B64_CHUNK	64	/* octets of b= a line */

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* The end of the line at p (past its LF), or end. */
static size_t
line_end(const char *msg, size_t p, size_t len)
{
	const char	*lf = memchr(msg + p, '\n', len - p);

	return lf == NULL ? len : (size_t)(lf - msg) + 1;
}

static int
line_is_empty(const char *msg, size_t p, size_t len)
{
	return (len - p >= 2 && msg[p] == '\r' && msg[p + 1] == '\n') ||
	    (len - p >= 1 && msg[p] == '\n');
}

/* The name of the field starting at p: 1.. octets of printable ASCII
 * but ':', WSP allowed before the colon only. */
static int
field_name(const char *msg, size_t p, size_t end, size_t *namelen)
{
	size_t	i, n = 0;

	for (i = p; i < end && msg[i] != ':'; i++) {
		if (is_wsp(msg[i])) {
			if (n == 0)
				n = i - p;
			continue;
		}
		if (n != 0 || (unsigned char)msg[i] <= 0x20 ||
		    (unsigned char)msg[i] >= 0x7f)
			return -1;
	}
	if (i == end || i == p)
		return -1;
	*namelen = n ? n : i - p;
	return 0;
}

int
dkim_header_split(const char *msg, size_t len, struct dkim_field *f,
    size_t max, size_t *bodyoff)
{
	size_t	p = 0, end;
	int	n = 0;

	*bodyoff = len;
	while (p < len) {
		if (p > DKIM_HEADER_MAX)
			return -1;
		if (line_is_empty(msg, p, len)) {
			*bodyoff = line_end(msg, p, len);
			return n;
		}
		end = line_end(msg, p, len);
		if (is_wsp(msg[p])) {
			if (n == 0)
				return -1;	/* a continuation first */
			f[n - 1].len = end - f[n - 1].off;
		} else {
			if ((size_t)n == max)
				return -1;
			if (field_name(msg, p, end, &f[n].namelen) == -1)
				return -1;
			f[n].off = p;
			f[n].len = end - p;
			n++;
		}
		p = end;
	}
	return n;
}

int
dkim_field_is(const char *msg, const struct dkim_field *f, const char *name)
{
	return strlen(name) == f->namelen &&
	    strncasecmp(msg + f->off, name, f->namelen) == 0;
}

static void
put(char *out, size_t outlen, size_t *n, char c)
{
	if (*n < outlen)
		out[*n] = c;
	(*n)++;
}

size_t
dkim_canon_header(const char *field, size_t len, char *out, size_t outlen)
{
	size_t	i, n = 0;
	int	wsp = 0, started = 0;

	for (i = 0; i < len && field[i] != ':'; i++)
		if (!is_wsp(field[i]))
			put(out, outlen, &n, tolower((unsigned char)field[i]));
	put(out, outlen, &n, ':');
	for (i++; i < len; i++) {
		if (field[i] == '\r' || field[i] == '\n')
			continue;	/* unfold */
		if (is_wsp(field[i])) {
			wsp = started;
			continue;
		}
		if (wsp)
			put(out, outlen, &n, ' ');
		wsp = 0;
		started = 1;
		put(out, outlen, &n, field[i]);
	}
	put(out, outlen, &n, '\r');
	put(out, outlen, &n, '\n');
	return n;
}

int
dkim_body_init(struct dkim_body *b)
{
	memset(b, 0, sizeof(*b));
	b->limit = UINT64_MAX;
	if ((b->md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		dkim_body_free(b);
		return -1;
	}
	return 0;
}

void
dkim_body_simple(struct dkim_body *b)
{
	b->simple = 1;
}

void
dkim_body_limit(struct dkim_body *b, uint64_t limit)
{
	b->limit = limit;
}

void
dkim_body_free(struct dkim_body *b)
{
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
}

static int
body_flush(struct dkim_body *b)
{
	size_t	n = b->nout;

	b->nout = 0;
	if (n == 0)
		return 0;
	return EVP_DigestUpdate(b->md, b->out, n) == 1 ? 0 : -1;
}

/*
 * Canonical octets: all counted, those within the limit hashed. Relaxed
 * emits an octet at a time: they are gathered first, as a digest call
 * per octet would cost most of the time spent on a body.
 */
static int
body_emit(struct dkim_body *b, const char *p, size_t n)
{
	uint64_t	room = b->count < b->limit ? b->limit - b->count : 0;
	size_t		hashed = room < n ? (size_t)room : n;

	b->count += n;
	if (hashed == 0)
		return 0;
	if (hashed > sizeof(b->out) - b->nout) {
		if (body_flush(b) == -1)
			return -1;
		if (hashed > sizeof(b->out))
			return EVP_DigestUpdate(b->md, p, hashed) == 1 ? 0 :
			    -1;
	}
	memcpy(b->out + b->nout, p, hashed);
	b->nout += hashed;
	return 0;
}

/* A non-WSP octet of a line: what was held back goes out first. */
static int
body_octet(struct dkim_body *b, char c)
{
	for (; b->blank > 0; b->blank--)
		if (body_emit(b, "\r\n", 2) == -1)
			return -1;
	if (b->wsp && body_emit(b, " ", 1) == -1)
		return -1;
	b->wsp = 0;
	b->content = 1;
	return body_emit(b, &c, 1);
}

/* A line ends: an empty one is held back (empty lines at the end of
 * the body are not hashed), another one's CRLF goes out. */
static int
body_eol(struct dkim_body *b)
{
	int	r = 0;

	if (b->content)
		r = body_emit(b, "\r\n", 2);
	else
		b->blank++;
	b->content = b->wsp = 0;
	return r;
}

/*
 * Simple: every line as it is, but empty lines (a bare CRLF) are held
 * back until a line with content follows, as those at the end are not
 * hashed. A CR at the start of a line waits to see whether an LF
 * follows it.
 */
static int
simple_flush(struct dkim_body *b)
{
	for (; b->blank > 0; b->blank--)
		if (body_emit(b, "\r\n", 2) == -1)
			return -1;
	return 0;
}

static int
simple_update(struct dkim_body *b, const char *p, size_t len)
{
	size_t	i, start = 0;

	for (i = 0; i < len; i++) {
		if (b->midline) {
			if (p[i] == '\n')
				b->midline = 0;
			continue;
		}
		/* the start of a line: send what came before it */
		if (i > start && body_emit(b, p + start, i - start) == -1)
			return -1;
		start = i + 1;
		if (b->cr) {
			b->cr = 0;
			if (p[i] == '\n') {
				b->blank++;
				continue;
			}
			if (simple_flush(b) == -1 || body_emit(b, "\r", 1) == -1)
				return -1;
		} else if (p[i] == '\r') {
			b->cr = 1;
			continue;
		} else if (simple_flush(b) == -1)
			return -1;
		start = i;
		b->midline = p[i] != '\n';
	}
	if (i > start && body_emit(b, p + start, i - start) == -1)
		return -1;
	return 0;
}

/* A last line without CRLF gets one; an empty body is one CRLF. */
static int
simple_final(struct dkim_body *b)
{
	if (b->cr) {
		if (simple_flush(b) == -1 || body_emit(b, "\r", 1) == -1)
			return -1;
		b->midline = 1;
	}
	if (b->midline || b->count == 0)
		return body_emit(b, "\r\n", 2);
	return 0;
}

int
dkim_body_update(struct dkim_body *b, const char *p, size_t len)
{
	size_t	i, run;
	int	r = 0;

	if (b->simple)
		return simple_update(b, p, len);

	for (i = 0; i < len && r == 0; i++) {
		if (b->cr) {
			b->cr = 0;
			if (p[i] == '\n') {
				r = body_eol(b);
				continue;
			}
			if ((r = body_octet(b, '\r')) == -1)
				break;
		}
		if (p[i] == '\r')
			b->cr = 1;
		else if (p[i] == '\n')
			r = body_eol(b);	/* a bare LF ends a line too */
		else if (is_wsp(p[i]))
			b->wsp = 1;
		else {
			r = body_octet(b, p[i]);
			/* the octets after it that need no care, at once */
			for (run = i + 1; run < len && !is_wsp(p[run]) &&
			    p[run] != '\r' && p[run] != '\n'; run++)
				;
			if (r == 0 && run > i + 1)
				r = body_emit(b, p + i + 1, run - i - 1);
			i = run - 1;
		}
	}
	return r;
}

int
dkim_body_final(struct dkim_body *b, unsigned char hash[32])
{
	unsigned int	n = 0;
	int		r = 0;

	if (b->simple)
		r = simple_final(b);
	else if (b->cr)
		r = body_octet(b, '\r');
	if (r == 0 && !b->simple && b->content)
		r = body_emit(b, "\r\n", 2);	/* a last line without CRLF */
	if (r == 0)
		r = body_flush(b);
	if (r == 0 && (EVP_DigestFinal_ex(b->md, hash, &n) != 1 || n != 32))
		r = -1;
	dkim_body_free(b);
	return r;
}

int
dkim_selector_ok(const char *s)
{
	size_t	i;

	for (i = 0; s[i]; i++)
		if (!(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return i > 0 && i <= DKIM_SELECTOR_MAX && s[0] != '-' &&
	    s[i - 1] != '-';
}

/* ---- folding ------------------------------------------------------ */

struct outbuf {
	char	*p;
	size_t	 len, cap;
	size_t	 col;		/* octets on the current line */
	int	 over;
};

static void
ob_add(struct outbuf *o, const char *s, size_t n)
{
	if (o->over || o->cap - o->len < n + 1) {
		o->over = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	o->col += n;
}

static void
ob_break(struct outbuf *o)
{
	ob_add(o, "\r\n\t", 3);
	o->col = 1;
}

/* A tag of h=, broken after a colon when it is wider than a line. */
static void
fold_tag(struct outbuf *o, const char *t, size_t n)
{
	const char	*colon;
	size_t		 k;

	while (n > 0) {
		if (o->col + n < FOLD_WIDTH) {
			ob_add(o, t, n);
			return;
		}
		/* the longest piece ending in ':' that fits */
		for (k = 0, colon = t; colon < t + n &&
		    (colon = memchr(colon, ':', t + n - colon)) != NULL;
		    colon++) {
			if (o->col + (colon - t) + 1 >= FOLD_WIDTH)
				break;
			k = colon - t + 1;
		}
		if (k == 0) {
			if (o->col > 1) {
				ob_break(o);
				continue;
			}
			k = n;	/* no colon to break at: a long line */
		}
		ob_add(o, t, k);
		t += k;
		n -= k;
		if (n > 0)
			ob_break(o);
	}
}

static void
fold_b(struct outbuf *o, const char *v, size_t n)
{
	size_t	k;

	ob_break(o);
	ob_add(o, "b=", 2);
	while (n > 0) {
		k = n < B64_CHUNK ? n : B64_CHUNK;
		ob_add(o, v, k);
		v += k;
		n -= k;
		if (n > 0)
			ob_break(o);
	}
}

/* One line "DKIM-Signature: tag; tag; ...; b=..." folded into o. */
static int
fold_one(struct outbuf *o, const char *line, size_t len)
{
	static const char	 name[] = "DKIM-Signature: ";
	const char		*p, *end = line + len, *semi;
	size_t			 n;
	int			 first = 1;

	if (len < sizeof(name) - 1 || memcmp(line, name, sizeof(name) - 1))
		return -1;
	for (n = 0; n < len; n++)
		if ((unsigned char)line[n] < 0x20 ||
		    (unsigned char)line[n] >= 0x7f)
			return -1;
	o->col = 0;
	ob_add(o, name, sizeof(name) - 1);
	for (p = line + sizeof(name) - 1; p < end; p = semi + 2) {
		if ((semi = memmem(p, end - p, "; ", 2)) == NULL)
			semi = end;
		n = semi - p + (semi < end);	/* with its ';' */
		if (n >= 2 && p[0] == 'b' && p[1] == '=') {
			if (semi != end)
				return -1;	/* b= comes last */
			fold_b(o, p + 2, n - 2);
			break;
		}
		if (!first) {
			if (o->col + 1 + n >= FOLD_WIDTH)
				ob_break(o);
			else
				ob_add(o, " ", 1);
		}
		fold_tag(o, p, n);
		first = 0;
		if (semi == end)
			break;
	}
	ob_add(o, "\r\n", 2);
	return o->over ? -1 : 0;
}

size_t
dkim_fold(const char *sigs, char *out, size_t outlen)
{
	struct outbuf	 o = { out, 0, outlen, 0, 0 };
	const char	*p = sigs, *nl;
	size_t		 n;

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	while (*p) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > DKIM_SIG_MAX || fold_one(&o, p, n) == -1)
			return 0;
		p += n + (nl != NULL);
	}
	return o.len;
}

/* ---- signing ------------------------------------------------------ */

static int
body_hash(const char *body, size_t len, unsigned char hash[32])
{
	struct dkim_body	b;
	size_t			off, n;

	if (dkim_body_init(&b) == -1)
		return -1;
	/* in chunks, as a streamed message would come */
	for (off = 0; off < len; off += n) {
		n = len - off < 65536 ? len - off : 65536;
		if (dkim_body_update(&b, body + off, n) == -1) {
			dkim_body_free(&b);
			return -1;
		}
	}
	return dkim_body_final(&b, hash);
}

static int
digest_canon(EVP_MD_CTX *md, const char *field, size_t len, int strip_crlf)
{
	size_t	 need;
	char	*buf;
	int	 r;

	need = dkim_canon_header(field, len, NULL, 0);
	buf = xmalloc(need);
	dkim_canon_header(field, len, buf, need);
	r = EVP_DigestUpdate(md, buf, need - (strip_crlf ? 2 : 0));
	free(buf);
	return r == 1 ? 0 : -1;
}

/* The header fields signed, into md, and their names into h= (hlen). */
static int
digest_headers(EVP_MD_CTX *md, const char *msg, const struct dkim_field *f,
    int nf, char *h, size_t hlen)
{
	size_t	i;
	int	j, count;

	h[0] = '\0';
	for (i = 0; i < NSIGNED; i++) {
		count = 0;
		/* several of a name: the last one first (RFC 6376 5.4.2) */
		for (j = nf - 1; j >= 0 && count < SIGN_SAME_MAX; j--) {
			if (!dkim_field_is(msg, &f[j], signed_headers[i]))
				continue;
			if (digest_canon(md, msg + f[j].off, f[j].len, 0) == -1)
				return -1;
			count++;
		}
		if (i == 0)
			count++;	/* From, oversigned */
		for (; count > 0; count--) {
			if (h[0])
				strlcat(h, ":", hlen);
			if (strlcat(h, signed_headers[i], hlen) >= hlen)
				return -1;
		}
	}
	return 0;
}

static int
sign_digest(const struct dkim_key *k, const unsigned char *hash,
    unsigned char *sig, size_t *siglen)
{
	EVP_PKEY_CTX	*pc = NULL;
	EVP_MD_CTX	*md = NULL;
	int		 ok = 0;

	if (k->alg == DKIM_ALG_ED25519) {
		/* RFC 8463: Ed25519 signs the SHA-256 of the header data */
		ok = (md = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(md, sig, siglen, hash, 32) == 1;
		EVP_MD_CTX_free(md);
		return ok ? 0 : -1;
	}
	ok = (pc = EVP_PKEY_CTX_new(k->pkey, NULL)) != NULL &&
	    EVP_PKEY_sign_init(pc) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(pc, sig, siglen, hash, 32) == 1;
	EVP_PKEY_CTX_free(pc);
	return ok ? 0 : -1;
}

/* One signature, its unfolded line appended to out. */
static int
sign_one(const struct dkim_key *k, const char *msg, const struct dkim_field *f,
    int nf, const char *bh, long long t, char *out, size_t outlen)
{
	EVP_MD_CTX	*md;
	char		 h[1024], line[DKIM_SIG_MAX], folded[DKIM_SIG_MAX * 2];
	unsigned char	 hash[32], sig[1024];
	char		 b64[1400];
	size_t		 siglen = sizeof(sig), flen, used;
	unsigned int	 hn = 0;
	int		 ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    digest_headers(md, msg, f, nf, h, sizeof(h)) == 0;
	if (ok) {
		snprintf(line, sizeof(line), "DKIM-Signature: v=1; a=%s; "
		    "c=relaxed/relaxed; d=%s; s=%s; t=%lld; h=%s; bh=%s; b=",
		    k->alg == DKIM_ALG_ED25519 ? "ed25519-sha256" :
		    "rsa-sha256", k->domain, k->selector, t, h, bh);
		/* what a verifier hashes: the folded header, b= empty */
		flen = dkim_fold(line, folded, sizeof(folded));
		ok = flen > 2 && digest_canon(md, folded, flen, 1) == 0 &&
		    EVP_DigestFinal_ex(md, hash, &hn) == 1 && hn == 32;
	}
	EVP_MD_CTX_free(md);
	if (!ok || sign_digest(k, hash, sig, &siglen) == -1 ||
	    base64_encode(sig, siglen, b64, sizeof(b64)) == -1)
		return -1;
	used = strlen(out);
	if (snprintf(out + used, outlen - used, "%s%s%s", used ? "\n" : "",
	    line, b64) >= (int)(outlen - used))
		return -1;
	return 0;
}

int
dkim_sign(const char *msg, size_t len, const struct dkim_key *keys,
    size_t nkeys, long long t, char *out, size_t outlen)
{
	struct dkim_field	*f;
	unsigned char		 hash[32];
	char			 bh[64];
	size_t			 bodyoff, i;
	int			 nf, r = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	f = xreallocarray(NULL, DKIM_FIELDS_MAX, sizeof(*f));
	if ((nf = dkim_header_split(msg, len, f, DKIM_FIELDS_MAX,
	    &bodyoff)) <= 0 || body_hash(msg + bodyoff, len - bodyoff,
	    hash) == -1 || base64_encode(hash, 32, bh, sizeof(bh)) == -1)
		r = -1;
	for (i = 0; r == 0 && i < nkeys; i++)
		r = sign_one(&keys[i], msg, f, nf, bh, t, out, outlen);
	free(f);
	if (r == -1)
		out[0] = '\0';
	return r;
}
