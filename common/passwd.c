/*
 * Password hashing: yescrypt for new passwords, bcrypt accepted, and
 * PyMaild 0.2's md5 hex for imported users until their next login.
 */
#include <crypt.h>
#include <ctype.h>
#include <md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userdb.h"
#include "util.h"

int
password_hash(const char *password, char *out, size_t outlen)
{
	struct crypt_data	*cd;
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*h;
	int			 r = -1;

	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return -1;
	h = crypt_r(password, salt, cd);
	if (h != NULL && h[0] == '$' && strlen(h) < outlen) {
		strlcpy(out, h, outlen);
		r = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

int
password_is_legacy(const char *hash)
{
	size_t	i;

	if (strlen(hash) != 32)
		return 0;
	for (i = 0; i < 32; i++)
		if (!isxdigit((unsigned char)hash[i]))
			return 0;
	return 1;
}

static int
verify_legacy(const char *password, const char *hash)
{
	char	hex[MD5_DIGEST_STRING_LENGTH], want[33];
	size_t	i;

	MD5Data((const unsigned char *)password, strlen(password), hex);
	for (i = 0; i < 32; i++)
		want[i] = tolower((unsigned char)hash[i]);
	want[32] = '\0';
	return ct_memeq(hex, want, 32);
}

int
password_verify(const char *password, const char *hash)
{
	struct crypt_data	*cd;
	const char		*h;
	size_t			 len = strlen(hash);
	int			 ok = 0;

	if (password_is_legacy(hash))
		return verify_legacy(password, hash);
	if (hash[0] != '$')
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	h = crypt_r(password, hash, cd);
	/* crypt_r answers "*0"/"*1" on failure; lengths differ then. */
	if (h != NULL && strlen(h) == len)
		ok = ct_memeq(h, hash, len);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}
