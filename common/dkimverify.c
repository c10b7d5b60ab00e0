/*
 * DKIM verification (dkimverify.h). The header is read once, at begin:
 * each signature's header hash is computed then, so the header need not
 * be kept while the body streams by. The body goes through one hasher
 * per distinct (canonicalization, l=) pair. A signature is settled when
 * both its body hash and its key are there.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"
#include "dkimverify.h"
#include "util.h"

#define RSA_BITS_MIN	1024	/* RFC 8301 3.2 */
#define RSA_BITS_MAX	8192	/* b= holds no more (DKIMSIG_B_MAX) */
#define ED25519_KEYLEN	32
#define CANON_STACK	4096	/* a field canonicalized without malloc */

static void
settle(struct dkimv_sig *s, enum dkimv_res res, const char *reason)
{
	s->res = res;
	(void)snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static int
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The field's value: past the colon, without the final CRLF (or LF). */
static void
field_value(const char *hdr, const struct dkim_field *f, size_t *voff,
    size_t *vlen)
{
	size_t	end = f->off + f->len;
	const char *colon = memchr(hdr + f->off, ':', f->len);

	*voff = (size_t)(colon - hdr) + 1;
	if (end > *voff && hdr[end - 1] == '\n')
		end--;
	if (end > *voff && hdr[end - 1] == '\r')
		end--;
	*vlen = end - *voff;
}

/*
 * Feed one field to md, canonicalized as c says; strip_crlf drops the
 * final CRLF (the signature field itself is hashed without it).
 */
static int
digest_field(EVP_MD_CTX *md, int canon, const char *field, size_t len,
    int strip_crlf)
{
	char	 stack[CANON_STACK], *buf = stack;
	size_t	 need;
	int	 r;

	if (canon == DKIMSIG_SIMPLE) {
		if (strip_crlf && len >= 2 && field[len - 2] == '\r' &&
		    field[len - 1] == '\n')
			len -= 2;
		return EVP_DigestUpdate(md, field, len) == 1 ? 0 : -1;
	}
	/* the header is capped (DKIM_HEADER_MAX), and so is this */
	need = dkim_canon_header(field, len, NULL, 0);
	if (need > sizeof(stack))
		buf = xmalloc(need);
	dkim_canon_header(field, len, buf, need);
	r = EVP_DigestUpdate(md, buf, need - (strip_crlf ? 2 : 0));
	if (buf != stack)
		free(buf);
	return r == 1 ? 0 : -1;
}

/*
 * The field h[k] of the signature stands for: the n-th field of that
 * name counted from the bottom, n being how often the name came before
 * in h= (RFC 6376 5.4.2). -1: none left, an empty field.
 */
static int
pick_field(const char *hdr, const struct dkim_field *f, int nf,
    const struct dkimsig *sig, size_t k)
{
	size_t	i, seen = 0;
	int	j;

	for (i = 0; i < k; i++)
		if (strcasecmp(sig->h[i], sig->h[k]) == 0)
			seen++;
	for (j = nf - 1; j >= 0; j--) {
		if (!dkim_field_is(hdr, &f[j], sig->h[k]))
			continue;
		if (seen-- == 0)
			return j;
	}
	return -1;
}

/* The signature field with b= emptied, hashed last (RFC 6376 3.7). */
static int
digest_self(EVP_MD_CTX *md, const char *hdr, const struct dkim_field *f,
    int canon)
{
	char	buf[DKIMSIG_VALUE_MAX + 256];
	size_t	voff, vlen, namelen, n;

	field_value(hdr, f, &voff, &vlen);
	namelen = voff - f->off;
	if (namelen > 200)
		return -1;
	memcpy(buf, hdr + f->off, namelen);
	n = dkimsig_strip_b(hdr + voff, vlen, buf + namelen,
	    sizeof(buf) - namelen - 2);
	if (n == (size_t)-1)
		return -1;
	n += namelen;
	/* canonicalization wants a whole field; the CRLF goes again */
	memcpy(buf + n, "\r\n", 2);
	return digest_field(md, canon, buf, n + 2, 1);
}

static int
header_hash(struct dkimv_sig *s, const char *hdr, const struct dkim_field *f,
    int nf, int self)
{
	EVP_MD_CTX	*md;
	unsigned int	 n = 0;
	size_t		 k;
	int		 j, ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (k = 0; ok && k < s->sig.nh; k++) {
		if ((j = pick_field(hdr, f, nf, &s->sig, k)) == -1)
			continue;
		ok = digest_field(md, s->sig.hcanon, hdr + f[j].off,
		    f[j].len, 0) == 0;
	}
	ok = ok && digest_self(md, hdr, &f[self], s->sig.hcanon) == 0 &&
	    EVP_DigestFinal_ex(md, s->hhash, &n) == 1 && n == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/*
 * The value of the one-letter tag name in a signature's value, trimmed
 * of FWS, as [*vs, *ve); 0 when there is none.
 */
static int
find_tag(const char *v, size_t len, char name, size_t *vs, size_t *ve)
{
	size_t	i = 0, start, end, eq;

	while (i < len) {
		for (start = i; start < len && is_fws(v[start]); start++)
			;
		for (end = start; end < len && v[end] != ';'; end++)
			;
		i = end + 1;
		if (end - start < 2 || v[start] != name)
			continue;
		for (eq = start + 1; eq < end && is_fws(v[eq]); eq++)
			;
		if (eq == end || v[eq] != '=')
			continue;
		for (eq++; eq < end && is_fws(v[eq]); eq++)
			;
		while (end > eq && is_fws(v[end - 1]))
			end--;
		*vs = eq;
		*ve = end;
		return 1;
	}
	return 0;
}

/* i= given and its domain other than d=: a t=s key refuses it. */
static int
i_is_d(const char *v, size_t len, const char *d)
{
	size_t	vs, ve, at;

	if (!find_tag(v, len, 'i', &vs, &ve))
		return 1;
	for (at = ve; at > vs && v[at - 1] != '@'; at--)
		;
	if (ve > at && v[ve - 1] == '.')
		ve--;
	return ve - at == strlen(d) && strncasecmp(v + at, d, ve - at) == 0;
}

/*
 * d= and s= of a signature that did not parse, when they look like
 * names: the result can still say whose it claimed to be.
 */
static void
salvage_name(const char *v, size_t len, char name, char *out, size_t outlen)
{
	size_t	vs, ve, i;

	out[0] = '\0';
	if (!find_tag(v, len, name, &vs, &ve) || ve == vs ||
	    ve - vs >= outlen)
		return;
	for (i = vs; i < ve; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr(".-_", v[i]))
			return;
	for (i = vs; i < ve; i++)
		out[i - vs] = tolower((unsigned char)v[i]);
	out[ve - vs] = '\0';
}

/* The body hasher for s: one already there of the same kind, or new. */
static int
body_hasher(struct dkimv *v, const struct dkimsig *sig, size_t *idx)
{
	struct dkimv_bodyh	*h;
	size_t			 i;

	for (i = 0; i < v->nbh; i++) {
		h = &v->bh[i];
		if (h->bcanon == sig->bcanon && h->has_l == sig->has_l &&
		    (!h->has_l || h->l == sig->l)) {
			*idx = i;
			return 0;
		}
	}
	h = &v->bh[v->nbh];
	memset(h, 0, sizeof(*h));
	if (dkim_body_init(&h->b) == -1)
		return -1;
	if (sig->bcanon == DKIMSIG_SIMPLE)
		dkim_body_simple(&h->b);
	if (sig->has_l)
		dkim_body_limit(&h->b, sig->l);
	h->bcanon = sig->bcanon;
	h->has_l = sig->has_l;
	h->l = sig->l;
	*idx = v->nbh++;
	return 0;
}

/* s._domainkey.d, within a DNS name's length. */
static int
key_name(const char *sel, const char *dom, char *out, size_t outlen)
{
	static const char	mid[] = "._domainkey.";
	size_t			sl = strlen(sel), dl = strlen(dom);

	if (sl + sizeof(mid) - 1 + dl > DKIMSIG_DOMAIN_MAX ||
	    sl + sizeof(mid) + dl > outlen)
		return -1;
	memcpy(out, sel, sl);
	memcpy(out + sl, mid, sizeof(mid) - 1);
	memcpy(out + sl + sizeof(mid) - 1, dom, dl + 1);
	return 0;
}

static void
begin_one(struct dkimv *v, const char *hdr, const struct dkim_field *f,
    int nf, int self, time_t now)
{
	struct dkimv_sig	*s = &v->sig[v->nsig++];
	char			 why[DKIMV_REASON_MAX];
	size_t			 voff, vlen;

	memset(s, 0, sizeof(*s));
	field_value(hdr, &f[self], &voff, &vlen);
	if (dkimsig_parse(hdr + voff, vlen, now, &s->sig, why,
	    sizeof(why)) == -1) {
		memset(&s->sig, 0, sizeof(s->sig));
		salvage_name(hdr + voff, vlen, 'd', s->sig.d, sizeof(s->sig.d));
		salvage_name(hdr + voff, vlen, 's', s->sig.s, sizeof(s->sig.s));
		settle(s, DKIMV_PERMERROR, why);
		return;
	}
	/*
	 * RFC 6376 3.5 lets a verifier ignore a signature made in the
	 * future. Beyond a clock's drift it is no mistake: a signer that
	 * stamps its mail ahead wants it to outlive a key rotation or an
	 * x= it could not have set. Well formed, so not neutral; refused
	 * by our rule, so policy (RFC 8601 2.7.1); no key is asked.
	 */
	if (s->sig.has_t && s->sig.t > (int64_t)now + DKIMV_FUTURE_MAX) {
		settle(s, DKIMV_POLICY, "t= is in the future");
		return;
	}
	/* header.b: b= re-encoded gives its first characters back */
	if (base64_encode(s->sig.b, s->sig.blen < 6 ? s->sig.blen : 6,
	    s->b8, sizeof(s->b8)) == -1)
		s->b8[0] = '\0';
	s->iexact = i_is_d(hdr + voff, vlen, s->sig.d);
	if (key_name(s->sig.s, s->sig.d, s->qname, sizeof(s->qname)) == -1) {
		settle(s, DKIMV_PERMERROR, "the key name is too long");
		return;
	}
	if (header_hash(s, hdr, f, nf, self) == -1) {
		settle(s, DKIMV_PERMERROR, "the header could not be hashed");
		return;
	}
	if (body_hasher(v, &s->sig, &s->body) == -1)
		settle(s, DKIMV_TEMPERROR, "out of memory");
}

int
dkimv_begin(struct dkimv *v, const char *hdr, size_t len, time_t now)
{
	struct dkim_field	*f;
	size_t			 bodyoff;
	int			 nf, i;

	memset(v, 0, sizeof(*v));
	f = xreallocarray(NULL, DKIMV_FIELDS_MAX, sizeof(*f));
	nf = dkim_header_split(hdr, len, f, DKIMV_FIELDS_MAX, &bodyoff);
	for (i = 0; i < nf; i++) {
		if (!dkim_field_is(hdr, &f[i], "dkim-signature"))
			continue;
		v->nfound++;
		if (v->nsig < DKIM_VERIFY_MAX)
			begin_one(v, hdr, f, nf, i, now);
	}
	free(f);
	return (int)v->nsig;
}

void
dkimv_body(struct dkimv *v, const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < v->nbh && !v->bodydone; i++)
		if (!v->bh[i].failed &&
		    dkim_body_update(&v->bh[i].b, p, len) == -1)
			v->bh[i].failed = 1;
}

/*
 * Keys decoded lately, by their octets. OpenSSL's decoder takes about
 * 190 us for a 2048-bit key, six times the signature check itself, and
 * a sender signs message after message with one key. A key is found
 * here only by all of its octets, so one changed or revoked in the DNS
 * (another p=) is decoded anew. Only what the checks below accepted is
 * kept; a flood of other keys only pushes entries out. smtpd checks on
 * its one thread.
 */
#define KEY_CACHE_SLOTS	16

struct cached_key {
	int		 alg;
	size_t		 plen;
	unsigned char	 p[DKIMSIG_KEY_MAX];
	EVP_PKEY	*pk;
};

static struct cached_key	key_cache[KEY_CACHE_SLOTS];
static size_t			key_cache_next;

/* A reference to the decoded key of s, or NULL. */
static EVP_PKEY *
key_cache_find(const struct dkimv_sig *s)
{
	size_t	i;

	for (i = 0; i < KEY_CACHE_SLOTS; i++)
		if (key_cache[i].pk != NULL &&
		    key_cache[i].alg == s->key.alg &&
		    key_cache[i].plen == s->key.plen &&
		    memcmp(key_cache[i].p, s->key.p, s->key.plen) == 0 &&
		    EVP_PKEY_up_ref(key_cache[i].pk) == 1)
			return key_cache[i].pk;
	return NULL;
}

static void
key_cache_add(const struct dkimv_sig *s, EVP_PKEY *pk)
{
	struct cached_key	*k = &key_cache[key_cache_next];

	if (s->key.plen > sizeof(k->p) || EVP_PKEY_up_ref(pk) != 1)
		return;
	EVP_PKEY_free(k->pk);
	k->alg = s->key.alg;
	k->plen = s->key.plen;
	memcpy(k->p, s->key.p, s->key.plen);
	k->pk = pk;
	key_cache_next = (key_cache_next + 1) % KEY_CACHE_SLOTS;
}

/* RSA (SubjectPublicKeyInfo DER) or Ed25519 (the raw 32 octets). */
static EVP_PKEY *
decode_key(struct dkimv_sig *s)
{
	const unsigned char	*p = s->key.p;
	EVP_PKEY		*pk;
	int			 bits;

	if (s->key.alg == DKIMSIG_ED25519_SHA256) {
		if (s->key.plen != ED25519_KEYLEN) {
			settle(s, DKIMV_PERMERROR, "p= is not an Ed25519 key");
			return NULL;
		}
		if ((pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		    s->key.p, s->key.plen)) == NULL)
			settle(s, DKIMV_PERMERROR, "p= is not an Ed25519 key");
		return pk;
	}
	/* SubjectPublicKeyInfo as everyone publishes it, or the bare
	 * RSAPublicKey that RFC 6376 3.6.1's text names (erratum 3017) */
	if ((pk = d2i_PUBKEY(NULL, &p, (long)s->key.plen)) == NULL) {
		p = s->key.p;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)s->key.plen);
	}
	if (pk == NULL || p != s->key.p + s->key.plen ||
	    EVP_PKEY_base_id(pk) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pk);
		settle(s, DKIMV_PERMERROR, "p= is not an RSA key");
		return NULL;
	}
	bits = EVP_PKEY_bits(pk);
	if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX) {
		EVP_PKEY_free(pk);
		settle(s, DKIMV_PERMERROR, bits < RSA_BITS_MIN ?
		    "the RSA key is shorter than 1024 bits" :
		    "the RSA key is longer than 8192 bits");
		return NULL;
	}
	return pk;
}

/* The key of s: a reference the caller frees, or NULL (s settled). */
static EVP_PKEY *
load_key(struct dkimv_sig *s)
{
	EVP_PKEY	*pk;

	if ((pk = key_cache_find(s)) != NULL)
		return pk;
	if ((pk = decode_key(s)) != NULL)
		key_cache_add(s, pk);
	return pk;
}

static int
sig_verifies(struct dkimv_sig *s, EVP_PKEY *pk)
{
	EVP_PKEY_CTX	*pc = NULL;
	EVP_MD_CTX	*md = NULL;
	int		 ok;

	if (s->key.alg == DKIMSIG_ED25519_SHA256) {
		/* RFC 8463 3: PureEdDSA over the SHA-256 of the header */
		ok = (md = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
		    EVP_DigestVerify(md, s->sig.b, s->sig.blen, s->hhash,
		    sizeof(s->hhash)) == 1;
		EVP_MD_CTX_free(md);
		return ok;
	}
	ok = (pc = EVP_PKEY_CTX_new(pk, NULL)) != NULL &&
	    EVP_PKEY_verify_init(pc) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
	    EVP_PKEY_verify(pc, s->sig.b, s->sig.blen, s->hhash,
	    sizeof(s->hhash)) == 1;
	EVP_PKEY_CTX_free(pc);
	return ok;
}

/* The verdict once the key and the body hash are both there. */
static void
verify(struct dkimv *v, struct dkimv_sig *s)
{
	struct dkimv_bodyh	*h = &v->bh[s->body];
	EVP_PKEY		*pk;
	int			 ok;

	if (s->res != DKIMV_PENDING || !s->keyed || !v->bodydone)
		return;
	if (h->failed) {
		settle(s, DKIMV_TEMPERROR, "the body could not be hashed");
		return;
	}
	if (s->sig.has_l && s->sig.l > h->b.count) {
		settle(s, DKIMV_FAIL, "l= is longer than the body");
		return;
	}
	if (memcmp(h->hash, s->sig.bh, sizeof(h->hash)) != 0) {
		settle(s, s->key.testing ? DKIMV_NEUTRAL : DKIMV_FAIL,
		    "the body hash did not verify");
		return;
	}
	if ((pk = load_key(s)) == NULL)
		return;
	ok = sig_verifies(s, pk);
	EVP_PKEY_free(pk);
	if (!ok) {
		settle(s, s->key.testing ? DKIMV_NEUTRAL : DKIMV_FAIL,
		    "the signature did not verify");
		return;
	}
	if (s->sig.has_l && s->sig.l < h->b.count) {
		settle(s, DKIMV_POLICY, "body length limit: content was "
		    "added after the signed part");
		return;
	}
	settle(s, DKIMV_PASS, "good signature");
}

void
dkimv_body_end(struct dkimv *v)
{
	size_t	i;

	if (v->bodydone)
		return;
	for (i = 0; i < v->nbh; i++) {
		if (v->bh[i].failed)
			dkim_body_free(&v->bh[i].b);
		else if (dkim_body_final(&v->bh[i].b, v->bh[i].hash) == -1)
			v->bh[i].failed = 1;
	}
	v->bodydone = 1;
	for (i = 0; i < v->nsig; i++)
		verify(v, &v->sig[i]);
}

const char *
dkimv_question(struct dkimv *v, size_t *idx)
{
	size_t	i;

	for (i = 0; i < v->nsig; i++) {
		if (v->sig[i].res != DKIMV_PENDING || v->sig[i].asked)
			continue;
		v->sig[i].asked = 1;
		*idx = i;
		return v->sig[i].qname;
	}
	return NULL;
}

/* The one key record among the TXT records at the name. */
static void
take_key(struct dkimv_sig *s, const struct dkimv_txt *txt, size_t n)
{
	EVP_PKEY	*pk;
	char		 why[DKIMV_REASON_MAX];

	if (n == 0) {
		settle(s, DKIMV_PERMERROR, "no key");
		return;
	}
	if (n > 1) {
		settle(s, DKIMV_PERMERROR, "more than one key record");
		return;
	}
	if (dkimkey_parse(txt[0].text, txt[0].len, &s->key, why,
	    sizeof(why)) == -1) {
		settle(s, DKIMV_PERMERROR, why);
		return;
	}
	/* RFC 6376 6.1.2: an empty p= is a key that was revoked */
	if (s->key.plen == 0) {
		settle(s, DKIMV_PERMERROR, "key revoked");
		return;
	}
	if (s->key.alg != s->sig.alg) {
		settle(s, DKIMV_PERMERROR, "the key does not match a=");
		return;
	}
	if (s->key.strict && !s->iexact) {
		settle(s, DKIMV_PERMERROR, "the key (t=s) wants i= to be d=");
		return;
	}
	/* a key that is no key is a permerror whatever the body says
	 * (RFC 6376 6.1.2 comes before 6.1.3) */
	if ((pk = load_key(s)) == NULL)
		return;
	EVP_PKEY_free(pk);
	s->keyed = 1;
}

void
dkimv_answer(struct dkimv *v, size_t idx, enum dkimv_dns st,
    const struct dkimv_txt *txt, size_t n)
{
	struct dkimv_sig	*s;

	if (idx >= v->nsig)
		return;
	s = &v->sig[idx];
	if (s->res != DKIMV_PENDING || !s->asked || s->keyed)
		return;
	switch (st) {
	case DKIMV_DNS_OK:
		take_key(s, txt, n);
		break;
	case DKIMV_DNS_NXDOMAIN:
		settle(s, DKIMV_PERMERROR, "no key");
		break;
	case DKIMV_DNS_PERMERROR:
		settle(s, DKIMV_PERMERROR, "the key answer is too large");
		break;
	default:
		settle(s, DKIMV_TEMPERROR, "the key lookup failed");
		break;
	}
	verify(v, s);
}

size_t
dkimv_count(const struct dkimv *v)
{
	return v->nsig;
}

size_t
dkimv_found(const struct dkimv *v)
{
	return v->nfound;
}

void
dkimv_result(const struct dkimv *v, size_t idx, struct dkimv_result *r)
{
	const struct dkimv_sig	*s;

	memset(r, 0, sizeof(*r));
	if (idx >= v->nsig) {
		r->res = DKIMV_PERMERROR;
		r->d = r->s = r->b8 = r->reason = "";
		return;
	}
	s = &v->sig[idx];
	r->res = s->res;
	r->d = s->sig.d;
	r->s = s->sig.s;
	r->b8 = s->b8;
	r->reason = s->res == DKIMV_PENDING ? "not settled" : s->reason;
}

const char *
dkimv_result_name(enum dkimv_res r)
{
	switch (r) {
	case DKIMV_PASS:
		return "pass";
	case DKIMV_FAIL:
		return "fail";
	case DKIMV_NEUTRAL:
		return "neutral";
	case DKIMV_POLICY:
		return "policy";
	case DKIMV_TEMPERROR:
		return "temperror";
	case DKIMV_PERMERROR:
		return "permerror";
	default:
		return "none";
	}
}

void
dkimv_free(struct dkimv *v)
{
	size_t	i;

	if (!v->bodydone)
		for (i = 0; i < v->nbh; i++)
			dkim_body_free(&v->bh[i].b);
	v->nbh = 0;
}
