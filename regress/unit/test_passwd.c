/*
 * Unit tests for common/passwd.c: yescrypt hashes for new passwords,
 * bcrypt accepted, PyMaild 0.2's md5 hex accepted (DESIGN.md A3).
 */

#include <crypt.h>
#include <md5.h>
#include <stdlib.h>
#include <string.h>

#include "userdb.h"
#include "unit.h"

#define LEGACY_SECRET	"5ebe2294ecd0e0f08eab7690d2a6ee69"	/* md5("secret") */

static void
test_yescrypt(void)
{
	char	h1[USER_HASH_MAX + 1], h2[USER_HASH_MAX + 1];
	char	cut[USER_HASH_MAX + 1], tiny[8], exact[USER_HASH_MAX + 1];
	size_t	len;
	int	ok1, ok2;

	ok1 = password_hash("secret", h1, sizeof(h1)) == 0;
	ok2 = password_hash("secret", h2, sizeof(h2)) == 0;
	CHECK("password_hash succeeds", ok1 && ok2);
	CHECK("password_hash gives $y$", ok1 && strncmp(h1, "$y$", 3) == 0 &&
	    ok2 && strncmp(h2, "$y$", 3) == 0);
	CHECK("hash fits the users file", ok1 && strlen(h1) <= USER_HASH_MAX &&
	    strchr(h1, ':') == NULL && strchr(h1, '\n') == NULL);
	CHECK("salts differ each time", ok1 && ok2 && strcmp(h1, h2) != 0 &&
	    strncmp(h1, h2, strrchr(h1, '$') - h1) != 0);
	CHECK("not a legacy hash", ok1 && !password_is_legacy(h1));

	CHECK("verify right password", password_verify("secret", h1) == 1);
	CHECK("verify right password, 2nd hash",
	    password_verify("secret", h2) == 1);
	CHECK("verify wrong password", password_verify("Secret", h1) == 0 &&
	    password_verify("secret ", h1) == 0 &&
	    password_verify("secre", h1) == 0);
	CHECK("verify empty password", password_verify("", h1) == 0);

	len = strlen(h1);
	strlcpy(cut, h1, sizeof(cut));
	cut[len - 1] = '\0';
	CHECK("truncated hash (one char) fails",
	    password_verify("secret", cut) == 0);
	strlcpy(cut, h1, sizeof(cut));
	*(strrchr(cut, '$') + 1) = '\0';
	CHECK("hash cut to its setting fails",
	    password_verify("secret", cut) == 0);
	strlcpy(cut, h1, sizeof(cut));
	cut[len - 5] = cut[len - 5] == 'A' ? 'B' : 'A';
	CHECK("hash with one char changed fails",
	    password_verify("secret", cut) == 0);
	strlcpy(cut, h1, sizeof(cut));
	strlcat(cut, "x", sizeof(cut));
	CHECK("hash with a char added fails",
	    password_verify("secret", cut) == 0);
	CHECK("corrupt hashes fail", password_verify("secret", "") == 0 &&
	    password_verify("secret", "$") == 0 &&
	    password_verify("secret", "$y$") == 0 &&
	    password_verify("secret", "$y$zzzz") == 0 &&
	    password_verify("secret", "*0") == 0 &&
	    password_verify("secret", "*") == 0 &&
	    password_verify("", "") == 0 &&
	    password_verify("secret", "$y$j9T$$") == 0);
	CHECK("hash without $ fails", password_verify("secret", h1 + 1) == 0);
	CHECK("DES-style hash not accepted",
	    password_verify("secret", "abJnggxhB/yWI") == 0);

	CHECK("empty password hashes and verifies",
	    password_hash("", h2, sizeof(h2)) == 0 &&
	    password_verify("", h2) == 1 && password_verify("x", h2) == 0);
	CHECK("long password", password_hash("a very long password that goes "
	    "on and on past seventy-two bytes, where bcrypt would stop looking",
	    h2, sizeof(h2)) == 0 && password_verify("a very long password that "
	    "goes on and on past seventy-two bytes, where bcrypt would stop "
	    "looking", h2) == 1 && password_verify("a very long password that "
	    "goes on and on past seventy-two bytes, where bcrypt would stop "
	    "lookinG", h2) == 0);

	CHECK("out buffer too small refused",
	    password_hash("secret", tiny, sizeof(tiny)) == -1);
	CHECK("out buffer exactly large enough",
	    password_hash("secret", exact, len + 1) == 0 &&
	    strlen(exact) == len);
	CHECK("out buffer one short refused",
	    password_hash("secret", exact, len) == -1);
}

static void
test_bcrypt(void)
{
	struct crypt_data	*cd;
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	char			 h[USER_HASH_MAX + 1], cut[USER_HASH_MAX + 1];
	const char		*r = NULL;
	int			 ok;

	cd = calloc(1, sizeof(*cd));
	ok = cd != NULL && crypt_gensalt_rn("$2b$", 4, NULL, 0, salt,
	    sizeof(salt)) != NULL && (r = crypt_r("secret", salt, cd)) != NULL &&
	    r[0] == '$';
	CHECK("bcrypt hash generated", ok && strncmp(r, "$2b$04$", 7) == 0);
	if (ok)
		strlcpy(h, r, sizeof(h));
	else
		h[0] = '\0';
	CHECK("bcrypt verifies", ok && password_verify("secret", h) == 1);
	CHECK("bcrypt wrong password", password_verify("Secret", h) == 0 &&
	    password_verify("", h) == 0);
	strlcpy(cut, h, sizeof(cut));
	if (*cut)
		cut[strlen(cut) - 1] = '\0';
	CHECK("bcrypt truncated fails", password_verify("secret", cut) == 0);
	CHECK("bcrypt is not legacy", !password_is_legacy(h));

	ok = crypt_gensalt_rn("$2b$", 0, NULL, 0, salt, sizeof(salt)) != NULL &&
	    (r = crypt_r("pässwörd", salt, cd)) != NULL && r[0] == '$';
	if (ok)
		strlcpy(h, r, sizeof(h));
	CHECK("bcrypt default cost, UTF-8 password",
	    ok && password_verify("pässwörd", h) == 1 &&
	    password_verify("passwort", h) == 0);
	free(cd);
}

static void
test_legacy(void)
{
	char	hex[MD5_DIGEST_STRING_LENGTH], up[33];
	size_t	i;

	MD5Data((const unsigned char *)"secret", 6, hex);
	CHECK("md5(secret) constant", strcmp(hex, LEGACY_SECRET) == 0);
	for (i = 0; i < 32; i++)
		up[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i];
	up[32] = '\0';

	CHECK("legacy md5 verifies", password_verify("secret",
	    LEGACY_SECRET) == 1);
	CHECK("legacy md5 upper-case verifies", password_verify("secret",
	    up) == 1);
	CHECK("legacy md5 mixed case verifies", password_verify("secret",
	    "5EBE2294ecd0e0f08eab7690d2a6EE69") == 1);
	CHECK("legacy md5 wrong password", password_verify("Secret",
	    LEGACY_SECRET) == 0 && password_verify("secret ",
	    LEGACY_SECRET) == 0 && password_verify("", LEGACY_SECRET) == 0);
	CHECK("legacy md5 one digit off", password_verify("secret",
	    "5ebe2294ecd0e0f08eab7690d2a6ee68") == 0);
	CHECK("legacy md5 31 chars fails", password_verify("secret",
	    "5ebe2294ecd0e0f08eab7690d2a6ee6") == 0);
	CHECK("legacy md5 33 chars fails", password_verify("secret",
	    LEGACY_SECRET "9") == 0);
	MD5Data((const unsigned char *)"", 0, hex);
	CHECK("legacy md5 of another password", password_verify("",
	    hex) == 1 && password_verify("secret", hex) == 0);

	CHECK("is_legacy 32 lower hex", password_is_legacy(LEGACY_SECRET));
	CHECK("is_legacy 32 upper hex", password_is_legacy(up));
	CHECK("is_legacy all digits",
	    password_is_legacy("01234567890123456789012345678901"));
	CHECK("is_legacy 31 chars", !password_is_legacy(
	    "5ebe2294ecd0e0f08eab7690d2a6ee6"));
	CHECK("is_legacy 33 chars", !password_is_legacy(LEGACY_SECRET "0"));
	CHECK("is_legacy non-hex g", !password_is_legacy(
	    "5ebe2294ecd0e0f08eab7690d2a6ee6g"));
	CHECK("is_legacy space", !password_is_legacy(
	    "5ebe2294ecd0e0f08eab7690d2a6ee6 "));
	CHECK("is_legacy 0x prefix", !password_is_legacy(
	    "0x5ebe2294ecd0e0f08eab7690d2a6ee"));
	CHECK("is_legacy empty", !password_is_legacy(""));
	CHECK("is_legacy $y$", !password_is_legacy("$y$j9T$abc$def"));
	CHECK("is_legacy 32 chars with $", !password_is_legacy(
	    "$1$5ebe2294ecd0e0f08eab7690d2a6e"));
}

int
main(void)
{
	test_yescrypt();
	test_bcrypt();
	test_legacy();
	UNIT_EXIT();
}
