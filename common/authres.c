/*
 * Authentication-Results (RFC 8601): reading the authserv-id of a field
 * that arrived, writing the field we add.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authres.h"

#define COMMENT_DEPTH_MAX	8
#define VALUE_MAX		255	/* a property value we write */
#define LINE_SOFT_MAX		78

static int
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip folding white space and comments; -1 on a comment that does not
 * end, or nests deeper than anyone writes. */
static int
skip_cfws(const char *v, size_t len, size_t *i)
{
	int	depth = 0;

	while (*i < len) {
		char	c = v[*i];

		if (depth == 0 && is_fws(c)) {
			(*i)++;
			continue;
		}
		if (c == '(') {
			if (++depth > COMMENT_DEPTH_MAX)
				return -1;
		} else if (depth > 0 && c == ')')
			depth--;
		else if (depth > 0 && c == '\\' && *i + 1 < len)
			(*i)++;
		else if (depth == 0)
			return 0;
		(*i)++;
	}
	return depth == 0 ? 0 : -1;
}

/* RFC 2045 token characters. */
static int
is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* The authserv-id (token or quoted-string) into id; -1 if unreadable. */
static int
read_id(const char *v, size_t len, size_t *i, char *id, size_t idlen)
{
	size_t	n = 0;

	if (*i < len && v[*i] == '"') {
		for ((*i)++; *i < len && v[*i] != '"'; (*i)++) {
			if (v[*i] == '\\' && *i + 1 < len)
				(*i)++;
			if (n + 1 >= idlen)
				return -1;
			id[n++] = v[*i];
		}
		if (*i == len)
			return -1;
		(*i)++;
	} else {
		for (; *i < len && is_token_char(v[*i]); (*i)++) {
			if (n + 1 >= idlen)
				return -1;
			id[n++] = v[*i];
		}
	}
	id[n] = '\0';
	return n > 0 ? 0 : -1;
}

static int
mentions(const char *v, size_t len, const char *id)
{
	size_t	idlen = strlen(id), i;

	for (i = 0; idlen > 0 && i + idlen <= len; i++)
		if (strncasecmp(v + i, id, idlen) == 0)
			return 1;
	return 0;
}

int
authres_is_ours(const char *v, size_t len, const char *authserv_id)
{
	char	id[256];
	size_t	i = 0;

	if (skip_cfws(v, len, &i) == -1 ||
	    read_id(v, len, &i, id, sizeof(id)) == -1)
		goto unreadable;
	/* An optional version after the id, then ';' or the end. */
	if (skip_cfws(v, len, &i) == -1)
		goto unreadable;
	while (i < len && isdigit((unsigned char)v[i]))
		i++;
	if (skip_cfws(v, len, &i) == -1 || (i < len && v[i] != ';'))
		goto unreadable;
	return strcasecmp(id, authserv_id) == 0;
unreadable:
	/* Nobody's verdict can be read in it; if it names us, it goes. */
	return mentions(v, len, authserv_id);
}

/* ---- writing --------------------------------------------------------- */

static void
put(struct authres *ar, const char *s, size_t n)
{
	if (ar->overflow || ar->len + n + 3 > sizeof(ar->buf)) {
		ar->overflow = 1;
		return;
	}
	memcpy(ar->buf + ar->len, s, n);
	ar->len += n;
	ar->linelen += n;
}

static void
puts_(struct authres *ar, const char *s)
{
	put(ar, s, strlen(s));
}

static void
fold(struct authres *ar)
{
	put(ar, "\r\n\t", 3);
	ar->linelen = 1;
}

/* A value as it may stand bare: dot-atom-ish text, maybe one '@'. */
static int
plain_value(const char *v)
{
	size_t	i;

	if (*v == '\0' || strlen(v) > VALUE_MAX)
		return 0;
	for (i = 0; v[i] != '\0'; i++)
		if (!isalnum((unsigned char)v[i]) &&
		    strchr(".-_+@", v[i]) == NULL)
			return 0;
	return 1;
}

/* value as a quoted-string: '"' and '\' escaped, controls and 8-bit
 * octets shown as '?', at most VALUE_MAX octets of it. */
static void
put_quoted(struct authres *ar, const char *v)
{
	char	q[2 * VALUE_MAX + 3];
	size_t	n = 0, i;

	q[n++] = '"';
	for (i = 0; v[i] != '\0' && i < VALUE_MAX; i++) {
		unsigned char	c = v[i];

		if (c == '"' || c == '\\')
			q[n++] = '\\';
		q[n++] = (c < ' ' || c >= 0x7f) ? '?' : c;
	}
	q[n++] = '"';
	put(ar, q, n);
}

static void
put_value(struct authres *ar, const char *v)
{
	if (plain_value(v))
		puts_(ar, v);
	else
		put_quoted(ar, v);
}

void
authres_begin(struct authres *ar, const char *authserv_id)
{
	memset(ar, 0, sizeof(*ar));
	puts_(ar, "Authentication-Results: ");
	put_value(ar, authserv_id);
}

void
authres_method(struct authres *ar, const char *method, const char *result,
    const char *reason)
{
	put(ar, ";", 1);
	fold(ar);
	puts_(ar, method);
	put(ar, "=", 1);
	puts_(ar, result);
	if (reason != NULL) {
		puts_(ar, " reason=");
		put_quoted(ar, reason);
	}
	ar->nresults++;
}

void
authres_prop(struct authres *ar, const char *name, const char *value)
{
	size_t	want = strlen(name) + 2 + strlen(value);

	if (ar->linelen + want > LINE_SOFT_MAX)
		fold(ar);
	else
		put(ar, " ", 1);
	puts_(ar, name);
	put(ar, "=", 1);
	put_value(ar, value);
}

const char *
authres_end(struct authres *ar, size_t *len)
{
	if (ar->nresults == 0)
		puts_(ar, "; none");
	if (ar->overflow)
		return NULL;
	memcpy(ar->buf + ar->len, "\r\n", 3);
	ar->len += 2;
	*len = ar->len;
	return ar->buf;
}

/* ---- checking and storing --------------------------------------------- */

#define AUTHRES_NAME	"Authentication-Results: "

int
authres_field_ok(const char *f)
{
	size_t	i, len = strlen(f);

	if (len >= AUTHRES_FIELD_MAX || len < sizeof(AUTHRES_NAME) + 2 ||
	    strncmp(f, AUTHRES_NAME, sizeof(AUTHRES_NAME) - 1) != 0 ||
	    strcmp(f + len - 2, "\r\n") != 0)
		return 0;
	for (i = 0; i < len - 2; i++) {
		unsigned char	c = f[i];

		if (c == '\r') {
			if (f[i + 1] != '\n' || f[i + 2] != '\t')
				return 0;
			i += 2;		/* the fold's TAB */
			continue;
		}
		if (c < ' ' || c >= 0x7f)
			return 0;
	}
	return 1;
}
