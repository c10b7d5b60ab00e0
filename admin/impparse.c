/*
 * The parsers of `pymailadm import`, apart from the reading and writing.
 */
#include <ctype.h>
#include <string.h>

#include "impparse.h"

char *
imp_next_line(char **p)
{
	char	*line = *p, *end;

	if (line == NULL || *line == '\0')
		return NULL;
	if ((end = strchr(line, '\n')) != NULL)
		*end++ = '\0';
	*p = end;
	return line;
}

char *
imp_trim(char *s)
{
	size_t	len;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

int
imp_component_ok(const char *s)
{
	return *s != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0;
}

int
imp_uid_ok(const char *s)
{
	size_t	i, len = strlen(s);

	if (len == 0 || len > IMP_UID_MAX || s[0] == '.' ||
	    strcmp(s, "mail") == 0 || strcmp(s, "options") == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._-", s[i]) == NULL)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Options: `key = value` lines of Python literals */

const char *
imp_py_literal(char *v)
{
	size_t	len = strlen(v);
	char	*p;

	if (strcmp(v, "True") == 0)
		return "true";
	if (strcmp(v, "False") == 0)
		return "false";
	if (len >= 2 && (v[0] == '\'' || v[0] == '"') && v[len - 1] == v[0] &&
	    memchr(v + 1, '\\', len - 2) == NULL) {
		v[len - 1] = '\0';
		return v + 1;
	}
	if (len > 1 && (v[len - 1] == 'L' || v[len - 1] == 'l'))
		v[--len] = '\0';	/* Python 2's long */
	for (p = v + (*v == '-' || *v == '+'); isdigit((unsigned char)*p); p++)
		;
	return len > 0 && *p == '\0' && p > v + (*v == '-' || *v == '+') ?
	    v + (*v == '+') : NULL;
}

enum imp_opt
imp_option_line(char *line, struct mboxopts *o, char **key, char **value,
    char *err, size_t errlen)
{
	struct mboxopts	 probe;
	const char	*lit;
	char		*eq, *v;

	if ((eq = strchr(line, '=')) == NULL)
		return IMPOPT_SYNTAX;
	*eq = '\0';
	*key = imp_trim(line);
	v = imp_trim(eq + 1);
	if (*v != '\'' && *v != '"') {
		v[strcspn(v, "#")] = '\0';	/* a trailing comment */
		v = imp_trim(v);
	}
	*value = v;
	/* Every option takes 0 (a size, or false): a refusal means the key
	 * is one pymaild does not have. */
	mboxopts_defaults(&probe);
	if (mboxopts_set(&probe, *key, "0", err, errlen) == -1)
		return IMPOPT_UNKNOWN;
	if ((lit = imp_py_literal(v)) == NULL)
		return IMPOPT_VALUE;
	if (mboxopts_set(o, *key, lit, err, errlen) == -1)
		return IMPOPT_REFUSED;
	return IMPOPT_SET;
}

/* ------------------------------------------------------------------ */
/* Users, message lists, the state file */

enum imp_user
imp_user_line(char *line, char **src, char name[USER_NAME_MAX + 1],
    char hash[IMP_HASH_LEN + 1], const char **why)
{
	char	*colon, *h;
	size_t	 i;

	*src = line;
	if ((colon = strchr(line, ':')) == NULL)
		return IMPUSER_SYNTAX;
	*colon = '\0';
	*src = imp_trim(line);
	h = imp_trim(colon + 1);
	if (user_name_normalize(*src, name, why) == -1)
		return IMPUSER_NAME;
	if (!password_is_legacy(h))
		return IMPUSER_HASH;
	for (i = 0; i < IMP_HASH_LEN; i++)
		hash[i] = tolower((unsigned char)h[i]);
	hash[IMP_HASH_LEN] = '\0';
	return IMPUSER_OK;
}

char *
imp_mail_uid(char *line)
{
	line[strcspn(line, ":")] = '\0';
	line = imp_trim(line);
	return imp_uid_ok(line) ? line : NULL;
}

int
imp_state_line(char *line, char **uid, char **name)
{
	char	*sp = strchr(line, ' ');

	if (sp == NULL)
		return -1;
	*sp = '\0';
	if (!imp_uid_ok(line) || !imp_component_ok(sp + 1))
		return -1;
	*uid = line;
	*name = sp + 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One message: CRLF, dot-stuffed, ".\r\n" at the end -> LF, as sent */

int
imp_conv_feed(struct imp_conv *cv, const char *in, size_t n, char *out, size_t *olen)
{
	size_t	i;
	char	c;

	for (*olen = 0, i = 0; i < n; i++) {
		c = in[i];
		if (cv->ended)
			return -1;
		if (cv->cr) {
			cv->cr = 0;
			if (c == '\n' && cv->dot) {
				cv->ended = 1;
				continue;
			}
			if (c == '\n') {
				out[(*olen)++] = '\n';
				cv->lfs++;
				cv->bol = 1;
				continue;
			}
			cv->dot = 0;
			out[(*olen)++] = '\r';	/* a lone CR stays */
		}
		if (cv->dot && c == '\n') {
			cv->ended = 1;		/* ".\n": a sloppy client */
			continue;
		}
		if (cv->dot && c != '\r')
			cv->dot = 0;		/* it was stuffing: dropped */
		if (cv->bol && c == '.') {
			cv->bol = 0;
			cv->dot = 1;
			continue;
		}
		cv->bol = 0;
		if (c == '\r') {
			cv->cr = 1;
			continue;
		}
		if (c == '\n') {
			cv->lfs++;
			cv->bol = 1;
		}
		out[(*olen)++] = c;
	}
	cv->size += *olen;
	return 0;
}
