/*
 * RFC 5321 address parsing: pure functions over bounded strings.
 */
#ifndef PYMAILD_ADDR_H
#define PYMAILD_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, brackets included */

struct mailaddr {
	/* Canonical: a quoted local part keeps its quotes only when its
	 * content is no Dot-string, and escapes only '"' and '\\'. */
	char	local[ADDR_LOCAL_MAX + 1];
	/* Lower-cased; an address literal keeps its brackets "[1.2.3.4]". */
	char	domain[ADDR_DOMAIN_MAX + 1];
	int	quoted;		/* local part was a quoted-string */
	int	literal;	/* domain is an address literal */
	int	had_route;	/* an "@a,@b:" source route was given (ignored) */
	int	null;		/* the null path "<>" */
};

/* Flags for addr_parse_path. */
#define ADDR_ALLOW_NULL	0x01	/* accept "<>" (MAIL FROM) */
#define ADDR_UTF8	0x02	/* accept UTF-8 octets (SMTPUTF8) */

/*
 * Parse an RFC 5321 Reverse-path / Forward-path: "<" [A-d-l ":"] Mailbox ">"
 * at s. On success fill *out, set *rest to the first character after ">"
 * and return 0. On failure return -1 with a short reason in *why (a static
 * string). Never reads past the terminating NUL.
 */
int	addr_parse_path(const char *s, int flags, struct mailaddr *out,
	    const char **rest, const char **why);

/* Parse a bare "local@domain" (no brackets) over the whole string. */
int	addr_parse_mailbox(const char *s, int flags, struct mailaddr *out,
	    const char **why);

/* A Domain (dot-separated sub-domains, LDH, each label 1-63) or an address
 * literal ("[1.2.3.4]", "[IPv6:...]"). */
int	addr_domain_valid(const char *s, int flags);

/* True when the local part carries a routing trick that must never be
 * honoured: '%', '!', or '@' (inside quotes). */
int	addr_has_route_chars(const struct mailaddr *a);

/* Write "local@domain" (or "" for the null path) into buf; -1 if it does
 * not fit. */
int	addr_format(const struct mailaddr *a, char *buf, size_t len);

/*
 * The one rule for an address kept anywhere (the queue, the messages
 * between processes): "" for the null path, or a mailbox that
 * addr_parse_mailbox takes (SMTPUTF8 allowed) written exactly as
 * addr_format writes it, so every address smtpd accepts is kept as is
 * and nothing else is.
 */
int	addr_stored_ok(const char *s);

/*
 * The domain of a stored address (what follows its last '@'; a quoted
 * local part may hold '@' but a domain never does), "" for the null
 * path.
 */
const char *addr_stored_domain(const char *s);

#endif
