/*
 * SASL PLAIN and LOGIN responses (RFC 4616, and the LOGIN mechanism of
 * draft-murchison-sasl-login): one implementation for smtpd and pop3d,
 * so the two daemons cannot disagree about who may log in as whom.
 */
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "sasl.h"

/* Room for the longest acceptable PLAIN message, and a NUL. */
#define PLAIN_MAX	(SASL_USER_MAX * 2 + 2 + SASL_PASS_MAX + 1)

int
sasl_authz_ok(const char *authz, size_t zlen, const char *authc,
    size_t clen)
{
	if (zlen == 0)
		return 1;
	return zlen == clen && strncasecmp(authz, authc, clen) == 0;
}

/* "=" stands for an empty response (RFC 4954 §4, RFC 5034 §4). */
static const char *
response_text(const char *b64)
{
	return strcmp(b64, "=") == 0 ? "" : b64;
}

static int
plain_split(const unsigned char *buf, size_t len, struct sasl_cred *c)
{
	const char	*authz = (const char *)buf, *authc, *pw;
	const char	*end = authz + len;
	size_t		 zlen, clen, plen;

	if ((authc = memchr(authz, '\0', len)) == NULL)
		return -1;
	zlen = authc++ - authz;
	if ((pw = memchr(authc, '\0', end - authc)) == NULL)
		return -1;
	clen = pw++ - authc;
	plen = end - pw;
	if (clen == 0 || clen > SASL_USER_MAX || plen == 0 ||
	    plen > SASL_PASS_MAX || memchr(pw, '\0', plen) != NULL)
		return -1;
	if (!sasl_authz_ok(authz, zlen, authc, clen))
		return -1;
	memcpy(c->user, authc, clen);
	c->user[clen] = '\0';
	memcpy(c->pass, pw, plen);
	c->pass[plen] = '\0';
	return 0;
}

int
sasl_plain(const char *b64, struct sasl_cred *c)
{
	unsigned char	buf[PLAIN_MAX];
	int		n, r = -1;

	memset(c, 0, sizeof(*c));
	n = base64_decode(response_text(b64), buf, sizeof(buf));
	if (n > 0)
		r = plain_split(buf, n, c);
	explicit_bzero(buf, sizeof(buf));
	if (r == -1)
		sasl_cred_wipe(c);
	return r;
}

int
sasl_login(const char *b64, char *out, size_t outlen)
{
	int	n;

	if (outlen == 0)
		return -1;
	n = base64_decode(response_text(b64), (unsigned char *)out,
	    outlen - 1);
	if (n <= 0 || memchr(out, '\0', n) != NULL) {
		explicit_bzero(out, outlen);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

void
sasl_cred_wipe(struct sasl_cred *c)
{
	explicit_bzero(c, sizeof(*c));
}
