/*
 * SASL for SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034): the PLAIN
 * (RFC 4616) and LOGIN mechanisms' client responses, decoded from base64
 * into a user name and a password. Pure: no I/O, bounded buffers, and
 * every scratch copy of a password is wiped before returning.
 */
#ifndef PYMAILD_SASL_H
#define PYMAILD_SASL_H

#include <stddef.h>

#define SASL_USER_MAX	255	/* octets of an authcid */
#define SASL_PASS_MAX	1023	/* octets of a password (what the parent takes) */

struct sasl_cred {
	char	user[SASL_USER_MAX + 1];
	char	pass[SASL_PASS_MAX + 1];
};

/*
 * PLAIN: b64 is the client's response ("=" is the empty one). It holds
 * authzid NUL authcid NUL passwd; authcid and passwd are not empty and
 * hold no NUL, and an authzid, when given, names the authcid itself
 * (ignoring case: user names are stored lower-case), so nobody logs in
 * as somebody else. 0 and *c filled, or -1 and *c wiped.
 */
int	sasl_plain(const char *b64, struct sasl_cred *c);
/*
 * LOGIN: one response (the user name, then the password), base64 of a
 * non-empty string without NUL. 0 and out filled, or -1 and out wiped.
 */
int	sasl_login(const char *b64, char *out, size_t outlen);
/* The authzid rule alone, on counted strings: 1 when acceptable. */
int	sasl_authz_ok(const char *authz, size_t zlen, const char *authc,
	    size_t clen);
void	sasl_cred_wipe(struct sasl_cred *);

#endif
