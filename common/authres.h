/*
 * Authentication-Results header fields (RFC 8601): whose verdict a field
 * is (its authserv-id), so that one claiming to be ours is removed from
 * what arrives, and a builder for the one we add, which quotes whatever
 * came from the network so no value can end the field or add another.
 */
#ifndef PYMAILD_AUTHRES_H
#define PYMAILD_AUTHRES_H

#include <stddef.h>

#define AUTHRES_FIELD_MAX	2048	/* the whole field we write */

/*
 * Is the value of an Authentication-Results field (what follows the
 * colon, folding included) a verdict in the name of authserv_id? The
 * comparison ignores case, comments and folding, and a version number
 * after the id. A value we cannot read is not ours (and stays).
 */
int	authres_is_ours(const char *value, size_t len, const char *authserv_id);

struct authres {
	char	buf[AUTHRES_FIELD_MAX];
	size_t	len;
	size_t	linelen;	/* of the line being written, for folding */
	int	nresults;
	int	overflow;
};

void	authres_begin(struct authres *, const char *authserv_id);
/* "method=result" and its properties, e.g. ("spf", "pass", NULL) then
 * authres_prop(ar, "smtp.mailfrom", domain). reason may be NULL. */
void	authres_method(struct authres *, const char *method,
	    const char *result, const char *reason);
void	authres_prop(struct authres *, const char *name, const char *value);
/* The whole field, "Authentication-Results: ...\r\n"; NULL when it did
 * not fit (then the caller writes "...; none" from authres_begin alone). */
const char *authres_end(struct authres *, size_t *len);

/*
 * Is field one that authres_end could have written: the field name,
 * printable ASCII, line breaks only as CRLF TAB folds, one final CRLF,
 * under AUTHRES_FIELD_MAX? What another process hands over is checked
 * with it before it goes into a message.
 */
int	authres_field_ok(const char *field);

#endif
