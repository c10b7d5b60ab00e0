/*
 * common/dkimverify.c and the body canonicalizations under it: the edge
 * cases of simple and relaxed (empty body, a body of only CRLFs,
 * trailing white space, a last line without CRLF, a CR that is no line
 * end), l= counting, bare header names, and the state machine itself on
 * a message our own signer signed (answers given by hand). Messages of
 * other signers are in regress/auth/test_dkim_verify.py.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base64.h"
#include "dkim.h"
#include "dkimverify.h"
#include "unit.h"

/* The body of s canonicalized (simple or not) and hashed, limit octets
 * at most, fed step octets at a time; its count too. */
static void
body_hash(const char *s, int simple, uint64_t limit, size_t step,
    unsigned char h[32], uint64_t *count)
{
	struct dkim_body	b;
	size_t			off, n, len = strlen(s);

	dkim_body_init(&b);
	if (simple)
		dkim_body_simple(&b);
	dkim_body_limit(&b, limit);
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		dkim_body_update(&b, s + off, n);
	}
	dkim_body_final(&b, h);
	/* final may add a CRLF: count after it */
	*count = b.count;
}

static void
sha256(const char *s, size_t len, unsigned char h[32])
{
	unsigned int	n;

	EVP_Digest(s, len, h, &n, EVP_sha256(), NULL);
}

/* body canonicalizes to want (any chunking), want's length counted. */
static int
canon_is(const char *body, int simple, const char *want)
{
	static const size_t	steps[] = { 1, 2, 3, 7, 1000 };
	unsigned char		h[32], w[32];
	uint64_t		count;
	size_t			i;

	sha256(want, strlen(want), w);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		body_hash(body, simple, UINT64_MAX, steps[i], h, &count);
		if (memcmp(h, w, 32) != 0 || count != strlen(want))
			return 0;
	}
	return 1;
}

static void
test_simple_body(void)
{
	CHECK("simple: empty body is one CRLF", canon_is("", 1, "\r\n"));
	CHECK("simple: only CRLFs is one CRLF",
	    canon_is("\r\n\r\n\r\n", 1, "\r\n"));
	CHECK("simple: trailing empty lines dropped",
	    canon_is("a\r\n\r\n\r\n", 1, "a\r\n"));
	CHECK("simple: inner empty lines kept",
	    canon_is("a\r\n\r\n\r\nb\r\n", 1, "a\r\n\r\n\r\nb\r\n"));
	CHECK("simple: trailing WSP kept",
	    canon_is("a \t\r\n  \r\n", 1, "a \t\r\n  \r\n"));
	CHECK("simple: a last line without CRLF gets one",
	    canon_is("a\r\nb", 1, "a\r\nb\r\n"));
	CHECK("simple: a CR alone at the end",
	    canon_is("a\r\n\r\n\r", 1, "a\r\n\r\n\r\r\n"));
	CHECK("simple: a CR starting a line is content",
	    canon_is("\r\n\rx\r\n", 1, "\r\n\rx\r\n"));
	CHECK("simple: a line of WSP is not empty",
	    canon_is("a\r\n \r\n", 1, "a\r\n \r\n"));
}

static void
test_relaxed_body(void)
{
	CHECK("relaxed: empty body is empty", canon_is("", 0, ""));
	CHECK("relaxed: only CRLFs is empty", canon_is("\r\n\r\n", 0, ""));
	CHECK("relaxed: trailing WSP dropped",
	    canon_is("a \t\r\nb\t\r\n", 0, "a\r\nb\r\n"));
	CHECK("relaxed: inner WSP one space",
	    canon_is("a \t b\r\n", 0, "a b\r\n"));
	CHECK("relaxed: lines of WSP at the end dropped",
	    canon_is("a\r\n  \r\n\t\r\n", 0, "a\r\n"));
	CHECK("relaxed: a last line without CRLF gets one",
	    canon_is("a  ", 0, "a\r\n"));
	CHECK("relaxed: runs of octets across chunks",
	    canon_is("abc def\tghi  \r\nxyz", 0, "abc def ghi\r\nxyz\r\n"));
}

/* Bodies longer than the buffer the hasher gathers octets in. */
static void
test_long_body(void)
{
	static char	body[5000], want[5000];

	memset(body, 'x', 3000);
	memcpy(body + 3000, " \t y\r\n\r\n", 9);
	memcpy(want, body, 3000);
	memcpy(want + 3000, " y\r\n", 5);
	CHECK("relaxed: a long line", canon_is(body, 0, want));
	memcpy(want + 3000, " \t y\r\n", 7);
	CHECK("simple: a long line", canon_is(body, 1, want));
}

static void
test_limit(void)
{
	unsigned char	h[32], w[32];
	uint64_t	count;

	body_hash("hello\r\nworld\r\n", 0, 7, 3, h, &count);
	sha256("hello\r\n", 7, w);
	CHECK("limit: the first octets hashed", memcmp(h, w, 32) == 0);
	CHECK("limit: all counted", count == 14);
	body_hash("", 1, 0, 1, h, &count);
	sha256("", 0, w);
	CHECK("limit 0: nothing hashed", memcmp(h, w, 32) == 0 &&
	    count == 2);
	body_hash("a\r\n\r\n\r\n", 1, 100, 1, h, &count);
	CHECK("limit: held-back lines not counted", count == 3);
}

#define SIGNED_AT	1700000000	/* t= of signed_message */

/* A message signed by our signer with a new Ed25519 key. */
static EVP_PKEY *
signed_message(const char *msg, char *out, size_t outlen, char *rec,
    size_t reclen)
{
	struct dkim_key	 k;
	EVP_PKEY_CTX	*pc;
	unsigned char	 raw[32];
	size_t		 rawlen = sizeof(raw), n;
	char		 sigs[4096], b64[64];

	memset(&k, 0, sizeof(k));
	strlcpy(k.domain, "example.test", sizeof(k.domain));
	strlcpy(k.selector, "sel", sizeof(k.selector));
	k.alg = DKIM_ALG_ED25519;
	pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY_keygen_init(pc);
	EVP_PKEY_keygen(pc, &k.pkey);
	EVP_PKEY_CTX_free(pc);
	dkim_sign(msg, strlen(msg), &k, 1, SIGNED_AT, sigs, sizeof(sigs));
	n = dkim_fold(sigs, out, outlen);
	strlcpy(out + n, msg, outlen - n);
	EVP_PKEY_get_raw_public_key(k.pkey, raw, &rawlen);
	base64_encode(raw, rawlen, b64, sizeof(b64));
	snprintf(rec, reclen, "v=DKIM1; k=ed25519; p=%s", b64);
	return k.pkey;
}

/* Verify m at now with rec as the answer (NULL: NXDOMAIN), the body in
 * one go. */
static enum dkimv_res
verify_at(const char *m, const char *rec, enum dkimv_dns st,
    struct dkimv_result *r, time_t now)
{
	static struct dkimv	v;
	struct dkimv_txt	txt;
	const char		*body = strstr(m, "\r\n\r\n");
	size_t			 i;

	dkimv_begin(&v, m, strlen(m), now);
	dkimv_body(&v, body + 4, strlen(body + 4));
	dkimv_body_end(&v);
	if (dkimv_question(&v, &i) != NULL) {
		txt.text = rec;
		txt.len = rec ? strlen(rec) : 0;
		dkimv_answer(&v, i, st, &txt, rec ? 1 : 0);
	}
	dkimv_result(&v, 0, r);
	dkimv_free(&v);
	return r->res;
}

static enum dkimv_res
verify_with(const char *m, const char *rec, enum dkimv_dns st,
    struct dkimv_result *r)
{
	return verify_at(m, rec, st, r, SIGNED_AT);
}

/* m with " x=X;" put after its t= (the signature no longer verifies,
 * but what is looked at first is that it contradicts itself). */
static void
add_x(char *m, size_t size, long long x)
{
	char	*t = strstr(m, "t="), *semi, tail[8192];

	semi = strchr(t, ';') + 1;
	strlcpy(tail, semi, sizeof(tail));
	snprintf(semi, size - (semi - m), " x=%lld;%s", x, tail);
}

/* RFC 6376 3.5: t= from the future, x= before t=. */
static void
test_time(void)
{
	static const char	msg[] = "From: a@example.test\r\n"
	    "Subject: t\r\nTo: b@other.test\r\n\r\nbody\r\n";
	static struct dkimv	v;
	static char		m[8192], rec[256];
	struct dkimv_result	r;
	EVP_PKEY		*pk;
	size_t			i;

	pk = signed_message(msg, m, sizeof(m), rec, sizeof(rec));
	CHECK("time: t= 300 s ahead passes (clocks drift)",
	    verify_at(m, rec, DKIMV_DNS_OK, &r, SIGNED_AT - 300) ==
	    DKIMV_PASS);
	CHECK("time: t= 301 s ahead is not used",
	    verify_at(m, rec, DKIMV_DNS_OK, &r, SIGNED_AT - 301) ==
	    DKIMV_POLICY && strstr(r.reason, "future") != NULL);
	CHECK("time: a day ahead is not used",
	    verify_at(m, rec, DKIMV_DNS_OK, &r, SIGNED_AT - 86400) ==
	    DKIMV_POLICY);
	dkimv_begin(&v, m, strlen(m), SIGNED_AT - 301);
	CHECK("time: no key asked for a signature not used",
	    dkimv_question(&v, &i) == NULL);
	dkimv_free(&v);
	CHECK("time: an hour old passes",
	    verify_at(m, rec, DKIMV_DNS_OK, &r, SIGNED_AT + 3600) ==
	    DKIMV_PASS);
	add_x(m, sizeof(m), SIGNED_AT - 1);
	CHECK("time: x= before t= is permerror",
	    verify_at(m, rec, DKIMV_DNS_OK, &r, SIGNED_AT - 10) ==
	    DKIMV_PERMERROR && strstr(r.reason, "x=") != NULL);
	EVP_PKEY_free(pk);
}

static void
test_verify(void)
{
	static const char	msg[] = "From: a@example.test\r\n"
	    "Subject:\r\nTo: b@other.test\r\n\r\nbody\r\n";
	static struct dkimv	v;
	static char		m[8192], rec[256];
	struct dkimv_result	r;
	EVP_PKEY		*pk;
	size_t			 i;

	pk = signed_message(msg, m, sizeof(m), rec, sizeof(rec));
	/* a bare "Subject:" is signed as "subject:" */
	CHECK("verify: pass, our own signature",
	    verify_with(m, rec, DKIMV_DNS_OK, &r) == DKIMV_PASS);
	CHECK("verify: d= and s=", strcmp(r.d, "example.test") == 0 &&
	    strcmp(r.s, "sel") == 0 && strlen(r.b8) == 8);
	CHECK("verify: no key", verify_with(m, NULL, DKIMV_DNS_NXDOMAIN,
	    &r) == DKIMV_PERMERROR && strcmp(r.reason, "no key") == 0);
	CHECK("verify: temperror", verify_with(m, NULL, DKIMV_DNS_TEMPERROR,
	    &r) == DKIMV_TEMPERROR);
	CHECK("verify: an answer past the bounds is permerror",
	    verify_with(m, NULL, DKIMV_DNS_PERMERROR, &r) ==
	    DKIMV_PERMERROR && strstr(r.reason, "too large") != NULL);
	CHECK("verify: revoked", verify_with(m, "v=DKIM1; k=ed25519; p=",
	    DKIMV_DNS_OK, &r) == DKIMV_PERMERROR &&
	    strcmp(r.reason, "key revoked") == 0);
	CHECK("verify: short Ed25519 key", verify_with(m,
	    "v=DKIM1; k=ed25519; p=AAAA", DKIMV_DNS_OK, &r) ==
	    DKIMV_PERMERROR);
	memcpy(strstr(m, "body"), "Body", 4);
	CHECK("verify: changed body fails", verify_with(m, rec,
	    DKIMV_DNS_OK, &r) == DKIMV_FAIL);

	/* the key before the body, an answer twice, a bad index */
	memcpy(strstr(m, "Body"), "body", 4);
	dkimv_begin(&v, m, strlen(m), SIGNED_AT);
	CHECK("state: one question", dkimv_question(&v, &i) != NULL &&
	    i == 0 && dkimv_question(&v, &i) == NULL);
	{
		struct dkimv_txt t = { rec, strlen(rec) };

		dkimv_answer(&v, 7, DKIMV_DNS_OK, &t, 1);
		dkimv_answer(&v, 0, DKIMV_DNS_OK, &t, 1);
		dkimv_result(&v, 0, &r);
		CHECK("state: pending without the body",
		    r.res == DKIMV_PENDING);
		dkimv_answer(&v, 0, DKIMV_DNS_NXDOMAIN, NULL, 0);
		dkimv_body(&v, "bo", 2);
		dkimv_body(&v, "dy\r\n", 4);
		dkimv_body_end(&v);
		dkimv_result(&v, 0, &r);
		CHECK("state: second answer ignored, pass",
		    r.res == DKIMV_PASS);
	}
	dkimv_free(&v);
	CHECK("no signature: nothing to do",
	    dkimv_begin(&v, msg, strlen(msg), 0) == 0 &&
	    dkimv_question(&v, &i) == NULL);
	dkimv_free(&v);
	EVP_PKEY_free(pk);
}

/*
 * Decoded keys are kept by their octets: a key changed in the DNS is
 * never answered from what was decoded before, and a flood of other
 * keys only pushes entries out.
 */
static void
test_key_cache(void)
{
	static const char	msg[] = "From: a@example.test\r\n"
	    "Subject: c\r\n\r\nbody\r\n";
	static char		ma[8192], mb[8192], ra[256], rb[256];
	static char		mx[8192], rx[256];
	struct dkimv_result	r;
	EVP_PKEY		*a, *b, *x;
	int			i, flood_fails = 1;

	a = signed_message(msg, ma, sizeof(ma), ra, sizeof(ra));
	b = signed_message(msg, mb, sizeof(mb), rb, sizeof(rb));
	CHECK("cache: A passes", verify_with(ma, ra, DKIMV_DNS_OK, &r) ==
	    DKIMV_PASS);
	CHECK("cache: A passes again (cached)", verify_with(ma, ra,
	    DKIMV_DNS_OK, &r) == DKIMV_PASS);
	CHECK("cache: A's message with B's record fails",
	    verify_with(ma, rb, DKIMV_DNS_OK, &r) == DKIMV_FAIL);
	CHECK("cache: B passes", verify_with(mb, rb, DKIMV_DNS_OK, &r) ==
	    DKIMV_PASS);
	CHECK("cache: B's message with A's record fails",
	    verify_with(mb, ra, DKIMV_DNS_OK, &r) == DKIMV_FAIL);
	CHECK("cache: A revoked", verify_with(ma,
	    "v=DKIM1; k=ed25519; p=", DKIMV_DNS_OK, &r) == DKIMV_PERMERROR);
	for (i = 0; i < 40; i++) {
		x = signed_message(msg, mx, sizeof(mx), rx, sizeof(rx));
		if (verify_with(ma, rx, DKIMV_DNS_OK, &r) != DKIMV_FAIL)
			flood_fails = 0;
		EVP_PKEY_free(x);
	}
	CHECK("cache: 40 other keys, each fails", flood_fails);
	CHECK("cache: A still passes after the flood", verify_with(ma, ra,
	    DKIMV_DNS_OK, &r) == DKIMV_PASS);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

int
main(void)
{
	test_simple_body();
	test_relaxed_body();
	test_long_body();
	test_limit();
	test_verify();
	test_time();
	test_key_cache();
	UNIT_EXIT();
}
