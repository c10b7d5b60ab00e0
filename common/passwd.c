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
	MD5_CTX	ctx;
	uint8_t	digest[MD5_DIGEST_LENGTH];
	char	hex[33], want[33];
	size_t	i;
	int	ok;

	/* By hand rather than MD5Data, so that no copy of the password
	 * (the context's buffer) nor its digest outlives the check. */
	MD5Init(&ctx);
	MD5Update(&ctx, (const unsigned char *)password, strlen(password));
	MD5Final(digest, &ctx);
	for (i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	for (i = 0; i < 32; i++)
		want[i] = tolower((unsigned char)hash[i]);
	ok = ct_memeq(hex, want, 32);
	explicit_bzero(&ctx, sizeof(ctx));
	explicit_bzero(digest, sizeof(digest));
	explicit_bzero(hex, sizeof(hex));
	explicit_bzero(want, sizeof(want));
	return ok;
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
