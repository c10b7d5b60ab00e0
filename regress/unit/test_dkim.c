/*
 * common/dkim.c: canonicalization (RFC 6376 3.4.6's example), header
 * splitting, folding (the From: domain: test_msgfrom). The signatures
 * themselves are checked against other implementations in regress/auth.
 */
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "unit.h"

static void
hex(const unsigned char *h, char *out)
{
	int	i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* The relaxed body hash of s, fed in chunks of step octets. */
static void
body_hex(const char *s, size_t step, char *out)
{
	struct dkim_body	b;
	unsigned char		h[32];
	size_t			off, n, len = strlen(s);

	dkim_body_init(&b);
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		dkim_body_update(&b, s + off, n);
	}
	dkim_body_final(&b, h);
	hex(h, out);
}

static void
test_canon(void)
{
	const char	*msg = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n";
	struct dkim_field f[4];
	char		 out[64], a[65], b[65];
	size_t		 bodyoff, n;
	int		 nf;

	nf = dkim_header_split(msg, strlen(msg), f, 4, &bodyoff);
	CHECK("split: two fields", nf == 2);
	CHECK("split: body offset", bodyoff == strlen(msg));
	n = dkim_canon_header(msg + f[0].off, f[0].len, out, sizeof(out));
	CHECK("canon: a:X", n == 5 && memcmp(out, "a:X\r\n", 5) == 0);
	n = dkim_canon_header(msg + f[1].off, f[1].len, out, sizeof(out));
	CHECK("canon: b:Y Z", n == 7 && memcmp(out, "b:Y Z\r\n", 7) == 0);
	CHECK("canon: size asked with no room",
	    dkim_canon_header(msg + f[1].off, f[1].len, NULL, 0) == 7);
	CHECK("field_is: case", dkim_field_is(msg, &f[1], "b"));

	/* RFC 6376 3.4.6: " C \r\nD \t E\r\n\r\n\r\n" is " C\r\nD E\r\n" */
	body_hex(" C \r\nD \t E\r\n\r\n\r\n", 1, a);
	body_hex(" C\r\nD E\r\n", 1000, b);
	CHECK("body: RFC example, one octet at a time", strcmp(a, b) == 0);
	body_hex(" C \r\nD \t E\r\n\r\n\r\n", 3, a);
	CHECK("body: RFC example, in threes", strcmp(a, b) == 0);
	body_hex("", 1, a);
	CHECK("body: empty is the hash of nothing", strcmp(a,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	    == 0);
	body_hex("x", 1, a);
	body_hex("x\r\n\r\n", 1, b);
	CHECK("body: CRLF added, blank lines dropped", strcmp(a, b) == 0);
	body_hex("a\r\n \r\nb\r\n", 2, a);
	body_hex("a\r\n\r\nb\r\n", 2, b);
	CHECK("body: a line of WSP inside is kept empty", strcmp(a, b) == 0);
}

static void
test_split_bad(void)
{
	struct dkim_field f[2];
	size_t		 off;

	CHECK("split: continuation first",
	    dkim_header_split(" x\r\nA: b\r\n", 10, f, 2, &off) == -1);
	CHECK("split: no colon", dkim_header_split("Ab\r\n", 4, f, 2, &off)
	    == -1);
	CHECK("split: empty name", dkim_header_split(":b\r\n", 4, f, 2, &off)
	    == -1);
	CHECK("split: too many", dkim_header_split("a:1\r\nb:2\r\nc:3\r\n",
	    15, f, 2, &off) == -1);
	CHECK("split: no body", dkim_header_split("a:1\r\n", 5, f, 2, &off)
	    == 1 && off == 5);
}

static void
test_fold(void)
{
	const char	*line = "DKIM-Signature: v=1; a=rsa-sha256; "
	    "c=relaxed/relaxed; d=example.org; s=s1; t=1; h=from:from:to:"
	    "subject:date:message-id:mime-version:content-type:"
	    "content-transfer-encoding; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJW"
	    "ZG3hSuFU=; b=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	char		 out[1024], *p, *nl;
	size_t		 n;
	int		 longest = 0;

	n = dkim_fold(line, out, sizeof(out));
	CHECK("fold: done", n > 0 && n == strlen(out));
	CHECK("fold: ends in CRLF", n > 2 && memcmp(out + n - 2, "\r\n", 2) == 0);
	for (p = out; (nl = strstr(p, "\r\n")) != NULL; p = nl + 2)
		if (nl - p > longest)
			longest = nl - p;
	CHECK("fold: lines under 80", longest < 80);
	CHECK("fold: b= on a line of its own", strstr(out, "\r\n\tb=AAAA")
	    != NULL);
	CHECK("fold: too small a buffer", dkim_fold(line, out, 40) == 0);
	CHECK("fold: not ours", dkim_fold("X-Other: a", out, sizeof(out))
	    == 0);
	CHECK("fold: b= not last", dkim_fold("DKIM-Signature: b=x; v=1",
	    out, sizeof(out)) == 0);
	CHECK("fold: control octet", dkim_fold("DKIM-Signature: v=1\r; b=",
	    out, sizeof(out)) == 0);
}

/* A header with 300 To: fields still signs, h= naming the last few. */
static void
test_many_fields(void)
{
	static char	msg[16384], sigs[4096];
	struct dkim_key	k;
	EVP_PKEY_CTX	*pc;
	size_t		len = 0;
	int		i;

	len += snprintf(msg + len, sizeof(msg) - len, "From: a@example.org\r\n");
	for (i = 0; i < 300; i++)
		len += snprintf(msg + len, sizeof(msg) - len, "To: r%d@x\r\n", i);
	len += snprintf(msg + len, sizeof(msg) - len, "\r\nbody\r\n");
	memset(&k, 0, sizeof(k));
	strlcpy(k.domain, "example.org", sizeof(k.domain));
	strlcpy(k.selector, "s1", sizeof(k.selector));
	k.alg = DKIM_ALG_ED25519;
	pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY_keygen_init(pc);
	EVP_PKEY_keygen(pc, &k.pkey);
	EVP_PKEY_CTX_free(pc);
	CHECK("many fields: signed", dkim_sign(msg, len, &k, 1, 1, sigs,
	    sizeof(sigs)) == 0);
	CHECK("many fields: h= names at most 4 To", strstr(sigs,
	    "h=from:from:to:to:to:to;") != NULL);
	CHECK("too small an output: refused", dkim_sign(msg, len, &k, 1, 1,
	    sigs, 100) == -1 && sigs[0] == '\0');
	EVP_PKEY_free(k.pkey);
}

int
main(void)
{
	test_canon();
	test_split_bad();
	test_fold();
	test_many_fields();
	UNIT_EXIT();
}
