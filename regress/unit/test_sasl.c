/*
 * Unit tests for common/sasl.c (PLAIN and LOGIN responses, the authzid
 * rule) and the base64 decoder under it.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "sasl.h"
#include "unit.h"

/* base64 of len octets of msg, in a static buffer. */
static const char *
enc(const char *msg, size_t len)
{
	static char	out[4096];

	if (base64_encode((const unsigned char *)msg, len, out,
	    sizeof(out)) == -1)
		abort();
	return out;
}

#define PLAIN(lit)	enc(lit, sizeof(lit) - 1)

static int
plain_is(const char *b64, const char *user, const char *pass)
{
	struct sasl_cred	c;

	if (sasl_plain(b64, &c) == -1)
		return 0;
	return strcmp(c.user, user) == 0 && strcmp(c.pass, pass) == 0;
}

static int
plain_refused(const char *b64)
{
	struct sasl_cred	c;
	static const struct sasl_cred zero;

	memset(&c, 'x', sizeof(c));
	/* A refusal leaves nothing of the response behind. */
	return sasl_plain(b64, &c) == -1 && memcmp(&c, &zero, sizeof(c)) == 0;
}

static void
test_plain(void)
{
	CHECK("plain without authzid", plain_is(PLAIN("\0alice\0alicepw"),
	    "alice", "alicepw"));
	CHECK("plain, authzid = authcid", plain_is(PLAIN("alice\0alice\0pw"),
	    "alice", "pw"));
	CHECK("plain, authzid differs in case only",
	    plain_is(PLAIN("ALICE\0alice\0pw"), "alice", "pw") &&
	    plain_is(PLAIN("alice\0Alice\0pw"), "Alice", "pw"));
	CHECK("plain, authzid names another user",
	    plain_refused(PLAIN("bob\0alice\0pw")));
	CHECK("plain, authzid a prefix or extension of authcid",
	    plain_refused(PLAIN("alic\0alice\0pw")) &&
	    plain_refused(PLAIN("alice2\0alice\0pw")));
	CHECK("plain, password with spaces and high octets",
	    plain_is(PLAIN("\0bob\0two words \xc3\xa9"), "bob",
	    "two words \xc3\xa9"));
	CHECK("plain, empty authcid", plain_refused(PLAIN("\0\0pw")));
	CHECK("plain, empty password", plain_refused(PLAIN("\0alice\0")));
	CHECK("plain, NUL in the password",
	    plain_refused(PLAIN("\0alice\0p\0w")));
	CHECK("plain, two fields only", plain_refused(PLAIN("\0alice")) &&
	    plain_refused(PLAIN("alicepw")));
	CHECK("plain, empty response", plain_refused("=") &&
	    plain_refused(""));
	CHECK("plain, bad base64", plain_refused("!!!notbase64!!!") &&
	    plain_refused("QUJD=") && plain_refused("QQ=A"));
}

static void
test_plain_limits(void)
{
	char	msg[2 + SASL_USER_MAX + 1 + SASL_PASS_MAX + 1];
	char	user[SASL_USER_MAX + 2], pass[SASL_PASS_MAX + 2];
	size_t	len;

	memset(user, 'u', sizeof(user) - 1);
	user[SASL_USER_MAX] = '\0';
	memset(pass, 'p', sizeof(pass) - 1);
	pass[SASL_PASS_MAX] = '\0';
	len = snprintf(msg, sizeof(msg), "%c%s%c%s", 0, user, 0, pass);
	CHECK("plain, longest user and password",
	    plain_is(enc(msg, len), user, pass));
	/* One octet more in either is refused, never cut. */
	msg[len] = 'p';
	CHECK("plain, password one octet too long",
	    plain_refused(enc(msg, len + 1)));
	user[SASL_USER_MAX] = 'u';
	user[SASL_USER_MAX + 1] = '\0';
	pass[10] = '\0';
	len = snprintf(msg, sizeof(msg), "%c%s%c%s", 0, user, 0, pass);
	CHECK("plain, user one octet too long",
	    plain_refused(enc(msg, len)));
}

static int
login_is(const char *b64, size_t outlen, const char *want)
{
	char	out[64];

	if (sasl_login(b64, out, outlen) == -1)
		return 0;
	return strcmp(out, want) == 0;
}

static void
test_login(void)
{
	char	out[8];

	CHECK("login field", login_is(PLAIN("alice"), 64, "alice"));
	CHECK("login field fills the buffer exactly",
	    login_is(PLAIN("1234567"), 8, "1234567"));
	memset(out, 'x', sizeof(out));
	CHECK("login field one octet too long, wiped",
	    sasl_login(PLAIN("12345678"), out, sizeof(out)) == -1 &&
	    memcmp(out, "\0\0\0\0\0\0\0\0", 8) == 0);
	CHECK("login field with NUL", sasl_login(PLAIN("a\0b"), out,
	    sizeof(out)) == -1);
	CHECK("login field empty", sasl_login("", out, sizeof(out)) == -1 &&
	    sasl_login("=", out, sizeof(out)) == -1);
	CHECK("login field bad base64", sasl_login("@@@", out,
	    sizeof(out)) == -1);
}

static void
test_authz_rule(void)
{
	CHECK("authz empty", sasl_authz_ok("", 0, "alice", 5));
	CHECK("authz same", sasl_authz_ok("alice", 5, "alice", 5));
	CHECK("authz case", sasl_authz_ok("aLiCe", 5, "AlIcE", 5));
	CHECK("authz other", !sasl_authz_ok("bob", 3, "alice", 5) &&
	    !sasl_authz_ok("alice", 5, "alicf", 5));
}

static void
test_base64(void)
{
	unsigned char	buf[8];

	CHECK("base64 padding", base64_decode("YQ==", buf, sizeof(buf)) == 1 &&
	    buf[0] == 'a' && base64_decode("YWI=", buf, sizeof(buf)) == 2 &&
	    base64_decode("YWJj", buf, sizeof(buf)) == 3);
	CHECK("base64 bad length or padding inside",
	    base64_decode("YWJ", buf, sizeof(buf)) == -1 &&
	    base64_decode("YQ==YWJj", buf, sizeof(buf)) == -1 &&
	    base64_decode("Y===", buf, sizeof(buf)) == -1);
	CHECK("base64 output bounded",
	    base64_decode("YWJjZGVm", buf, 5) == -1 &&
	    base64_decode("YWJjZGVm", buf, 6) == 6);
}

int
main(void)
{
	test_plain();
	test_plain_limits();
	test_login();
	test_authz_rule();
	test_base64();
	UNIT_EXIT();
}
