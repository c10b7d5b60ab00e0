/*
 * DKIM-Signature tags and key records as a verifier reads them
 * (common/dkimsig.c).
 */
#include <string.h>

#include "dkimsig.h"
#include "unit.h"

#define NOW	1700000000
/* 32 zero octets and 3 octets, in base64 */
#define BH	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define B	"AQID"

static struct dkimsig	sig;
static char		why[128];

static int
sig_ok(const char *v)
{
	return dkimsig_parse(v, strlen(v), NOW, &sig, why, sizeof(why)) == 0;
}

static int
sig_refused(const char *v, const char *reason)
{
	return dkimsig_parse(v, strlen(v), NOW, &sig, why, sizeof(why)) ==
	    -1 && strstr(why, reason) != NULL;
}

static void
test_signatures(void)
{
	CHECK("a folded signature",
	    sig_ok(" v=1; a=rsa-sha256; c=relaxed/simple;\r\n\td=Example.COM;"
	    " s=sel1; t=1699999999; x=1700000500;\r\n\th=From : To:Subject;"
	    " bh=" BH ";\r\n\tb=AQ\r\n\t ID") &&
	    sig.alg == DKIMSIG_RSA_SHA256 && sig.hcanon == DKIMSIG_RELAXED &&
	    sig.bcanon == DKIMSIG_SIMPLE && strcmp(sig.d, "example.com") ==
	    0 && strcmp(sig.s, "sel1") == 0 && sig.nh == 3 &&
	    strcmp(sig.h[0], "From") == 0 && strcmp(sig.h[2], "Subject") ==
	    0 && sig.blen == 3 && sig.b[2] == 3 && sig.bhlen == 32);
	CHECK("defaults: simple/simple, no l=",
	    sig_ok("v=1;a=ed25519-sha256;d=a.example;s=s;h=from;bh=" BH
	    ";b=" B ";") && sig.alg == DKIMSIG_ED25519_SHA256 &&
	    sig.hcanon == DKIMSIG_SIMPLE && sig.bcanon == DKIMSIG_SIMPLE &&
	    !sig.has_l);
	CHECK("c=relaxed alone is relaxed/simple",
	    sig_ok("v=1;a=rsa-sha256;c=relaxed;d=a.example;s=s;h=from;bh="
	    BH ";b=" B) && sig.hcanon == DKIMSIG_RELAXED &&
	    sig.bcanon == DKIMSIG_SIMPLE);
	CHECK("l=, i= in a subdomain, q=dns/txt",
	    sig_ok("v=1;a=rsa-sha256;d=a.example;s=s;h=from;l=100;"
	    "i=user@mail.a.example;q=dns/txt;bh=" BH ";b=" B) &&
	    sig.has_l && sig.l == 100);
	CHECK("rsa-sha1 refused", sig_refused("v=1;a=rsa-sha1;d=a.example;"
	    "s=s;h=from;bh=" BH ";b=" B, "rsa-sha1"));
	CHECK("v=2 refused", sig_refused("v=2;a=rsa-sha256;d=a.example;s=s;"
	    "h=from;bh=" BH ";b=" B, "v="));
	CHECK("From not signed", sig_refused("v=1;a=rsa-sha256;d=a.example;"
	    "s=s;h=to:subject;bh=" BH ";b=" B, "From"));
	CHECK("i= outside d=", sig_refused("v=1;a=rsa-sha256;d=a.example;"
	    "s=s;h=from;i=x@evila.example;bh=" BH ";b=" B, "i="));
	CHECK("expired", sig_refused("v=1;a=rsa-sha256;d=a.example;s=s;"
	    "h=from;x=1600000000;bh=" BH ";b=" B, "expired"));
	CHECK("x= before t=", sig_refused("v=1;a=rsa-sha256;d=a.example;s=s;"
	    "h=from;t=1800000000;x=1790000000;bh=" BH ";b=" B, "x="));
	CHECK("a tag twice", sig_refused("v=1;a=rsa-sha256;d=a.example;"
	    "d=b.example;s=s;h=from;bh=" BH ";b=" B, "twice"));
	CHECK("bh of the wrong size", sig_refused("v=1;a=rsa-sha256;"
	    "d=a.example;s=s;h=from;bh=AQID;b=" B, "bh="));
	CHECK("a bad domain", sig_refused("v=1;a=rsa-sha256;d=a..example;s=s;"
	    "h=from;bh=" BH ";b=" B, "d=") && sig_refused("v=1;a=rsa-sha256;"
	    "d=a example;s=s;h=from;bh=" BH ";b=" B, "d="));
	CHECK("no b=", sig_refused("v=1;a=rsa-sha256;d=a.example;s=s;"
	    "h=from;bh=" BH ";b=", "b="));
	CHECK("q= without dns/txt", sig_refused("v=1;a=rsa-sha256;"
	    "d=a.example;s=s;h=from;q=http;bh=" BH ";b=" B, "q="));
	CHECK("a tag without =", sig_refused("v=1;a=rsa-sha256;garbage;"
	    "d=a.example;s=s;h=from;bh=" BH ";b=" B, "'='"));
	CHECK("NUL", dkimsig_parse("v=1;\0", 5, NOW, &sig, why, sizeof(why))
	    == -1);
}

static void
test_long_inputs(void)
{
	static char	v[200000];
	size_t		n;

	n = (size_t)snprintf(v, sizeof(v), "v=1;a=rsa-sha256;d=a.example;"
	    "s=s;h=from;bh=" BH ";b=");
	memset(v + n, 'A', 100000);
	v[n + 100000] = '\0';
	CHECK("a 100,000-octet b= is refused",
	    sig_refused(v, "too long"));
	strcpy(v, "v=1;a=rsa-sha256;d=a.example;s=s;bh=" BH ";b=" B ";h=from");
	for (n = 0; n < 70; n++)
		strcat(v, ":to");
	CHECK("h= of 71 names refused", sig_refused(v, "h="));
}

static void
test_keys(void)
{
	struct dkimkey	k;
	const char	*r;

	r = "v=DKIM1; k=rsa; p=AQID";
	CHECK("an RSA key", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == 0 && k.alg == DKIMSIG_RSA_SHA256 && k.plen == 3);
	r = "k=ed25519; t=y:s; p=" BH;
	CHECK("an Ed25519 key in testing, strict", dkimkey_parse(r, strlen(r),
	    &k, why, sizeof(why)) == 0 && k.alg == DKIMSIG_ED25519_SHA256 &&
	    k.plen == 32 && k.testing && k.strict);
	r = "v=DKIM1; p=";
	CHECK("a revoked key", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == 0 && k.plen == 0);
	r = "k=rsa; v=DKIM1; p=AQID";
	CHECK("v= not first", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == -1);
	r = "v=DKIM1; k=dsa; p=AQID";
	CHECK("an unknown type", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == -1);
	r = "v=DKIM1; h=sha1; p=AQID";
	CHECK("h= without sha256", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == -1);
	r = "v=DKIM1; s=xmpp; p=AQID";
	CHECK("not for email", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == -1);
	r = "v=DKIM1; s=email:*; h=sha1:sha256; p=AQID";
	CHECK("lists", dkimkey_parse(r, strlen(r), &k, why, sizeof(why)) == 0);
	r = "v=DKIM1";
	CHECK("no p=", dkimkey_parse(r, strlen(r), &k, why, sizeof(why)) ==
	    -1);
	r = "this is not a key";
	CHECK("not a key record", dkimkey_parse(r, strlen(r), &k, why,
	    sizeof(why)) == -1);
}

static void
test_strip_b(void)
{
	char		out[256];
	const char	*v = " v=1; bh=" BH "; b=AQ\r\n\tID ;d=a.example";
	size_t		n;

	n = dkimsig_strip_b(v, strlen(v), out, sizeof(out));
	CHECK("b= emptied, bh= and the rest kept", n != (size_t)-1 &&
	    n == strlen(" v=1; bh=" BH "; b=;d=a.example") &&
	    memcmp(out, " v=1; bh=" BH "; b=;d=a.example", n) == 0);
	v = "b=AQID";
	n = dkimsig_strip_b(v, strlen(v), out, sizeof(out));
	CHECK("b= alone", n == 2 && memcmp(out, "b=", 2) == 0);
	CHECK("too small a buffer", dkimsig_strip_b(v, strlen(v), out, 1) ==
	    (size_t)-1);
}

int
main(void)
{
	test_signatures();
	test_long_inputs();
	test_keys();
	test_strip_b();
	UNIT_EXIT();
}
