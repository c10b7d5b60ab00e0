/*
 * The parsers of `pymailadm import` (PyMaild 0.2 data files): pure
 * functions over text already read, apart from import.c's reading and
 * writing, so they can be unit-tested and fuzzed alone.
 */
#ifndef PYMAILD_IMPPARSE_H
#define PYMAILD_IMPPARSE_H

#include <stddef.h>

#include "userdb.h"

#define IMP_UID_MAX	128
#define IMP_HASH_LEN	32	/* PyMaild's md5, in hex */

/* Next line of a text buffer, without its end; NULL at the end. */
char	*imp_next_line(char **p);
/* Leading and trailing white space cut (in place). */
char	*imp_trim(char *s);
/* A name that stays one component below its folder. */
int	 imp_component_ok(const char *s);
/* A message uid PyMaild could have written (also a safe file name). */
int	 imp_uid_ok(const char *s);
/* A Python literal as the text mboxopts_set() takes; NULL if none. */
const char *imp_py_literal(char *v);

/* What one `key = value` line of an options file came to. */
enum imp_opt {
	IMPOPT_SET,		/* applied */
	IMPOPT_SYNTAX,		/* no '=' */
	IMPOPT_UNKNOWN,		/* *key: an option pymaild does not have */
	IMPOPT_VALUE,		/* *key, *value: not a literal we read */
	IMPOPT_REFUSED		/* err: mboxopts_set's reason */
};
/* A trimmed, non-empty, non-comment line over *o (split in place). */
enum imp_opt imp_option_line(char *line, struct mboxopts *o, char **key,
	    char **value, char *err, size_t errlen);

/* What one line of the users file came to. */
enum imp_user {
	IMPUSER_OK,
	IMPUSER_SYNTAX,		/* no ':' */
	IMPUSER_NAME,		/* *why: not a pymaild user name */
	IMPUSER_HASH		/* not a PyMaild md5 hash */
};
/* A trimmed "name:md5" line (split in place): *src is the name as
 * written, name its normalized form, hash the md5 lower-cased. */
enum imp_user imp_user_line(char *line, char **src,
	    char name[USER_NAME_MAX + 1], char hash[IMP_HASH_LEN + 1],
	    const char **why);

/* The uid of a USER/mail line ("uid" or "uid:size"), NULL if none. */
char	*imp_mail_uid(char *line);
/* A state file line "uid name": 0 with both set, -1 when malformed. */
int	 imp_state_line(char *line, char **uid, char **name);

/* One message as PyMaild stored it (CRLF, dot-stuffed, ".\r\n" at the
 * end) to the LF text a Maildir holds. */
struct imp_conv {
	int		bol, dot, cr, ended;
	long long	size, lfs;
};
/* Convert n bytes into out (room for n + 1: a CR held from the last
 * piece comes out now); -1 when something follows the
 * final "." line. Start from a zeroed state with bol set. */
int	 imp_conv_feed(struct imp_conv *cv, const char *in, size_t n,
	    char *out, size_t *olen);

#endif
