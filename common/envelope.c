/*
 * Envelopes in plain text ("key: value" lines), so an administrator can
 * read and repair the queue by hand and pymailadm can list it offline.
 *
 *   version: 1
 *   id: 0123456789abcdef
 *   created: 1764000000
 *   sender: alice@example.com          (empty for <>)
 *   helo / client / protocol / session / size / attempts
 *   next-attempt: 1764000300
 *   last-error: 451 4.3.0 ...
 *   held: 1                            (only when held by pymailadm)
 *   rcpt: pending bob bob@test.example
 *   rcpt: failed - carol@other.example 550 5.1.1 ...
 *   rcpt: pending - <"dan smith"@other.example>
 *
 * Addresses are kept in the one form addr_stored_ok() takes (the form
 * smtpd writes every address it accepts in). A recipient is one
 * space-delimited field, so one whose quoted local part holds a space is
 * written as a path in angle brackets, read back with the same parser
 * smtpd uses; every other one bare, as always.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "dkim.h"
#include "envelope.h"
#include "util.h"

static const char *const status_names[] = {
	[RS_PENDING] = "pending",
	[RS_DONE] = "done",
	[RS_FAILED] = "failed",
	[RS_BOUNCED] = "bounced",
};

struct envelope *
envelope_new(const char *id)
{
	struct envelope	*e = xcalloc(1, sizeof(*e));

	strlcpy(e->id, id, sizeof(e->id));
	e->created = time(NULL);
	strlcpy(e->protocol, "ESMTP", sizeof(e->protocol));
	return e;
}

void
envelope_free(struct envelope *e)
{
	free(e->dkim);
	free(e->authres);
	free(e->rcpts);
	free(e);
}

struct envrcpt *
envelope_add_rcpt(struct envelope *e, const char *address, const char *user)
{
	struct envrcpt	*r;

	if (e->nrcpts == ENV_MAX_RCPTS)
		return NULL;
	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*r));
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	strlcpy(r->address, address, sizeof(r->address));
	strlcpy(r->user, user, sizeof(r->user));
	return r;
}

int
envelope_field_ok(const char *s, size_t max)
{
	size_t	i;

	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return i < max;
}

/* Room for the fixed lines, and for one recipient line at most. */
#define ENV_HEAD_MAX	(4 * ADDR_PATH_MAX + 1024)
#define ENV_RCPT_MAX	(ADDR_PATH_MAX + USER_NAME_MAX + 300)

/* One "dkim: " line per signature; the room was counted. */
static size_t
format_dkim(const char *sigs, char *buf, size_t room)
{
	const char	*p, *nl;
	size_t		 len = 0, n;

	for (p = sigs; *p && len < room; p += n + (nl != NULL)) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		len += snprintf(buf + len, room - len, "dkim: %.*s\n", (int)n,
		    p);
	}
	return len;
}

/* One "authres: " line per line of the folded field, without the fold's
 * CRLF TAB (the envelope holds no control characters). */
static size_t
format_authres(const char *f, char *buf, size_t room)
{
	const char	*p, *fold;
	size_t		 len = 0, n;

	for (p = f; *p && len < room; p += n + (fold != NULL ? 3 : 0)) {
		fold = strstr(p, "\r\n\t");
		n = fold ? (size_t)(fold - p) : strlen(p);
		len += snprintf(buf + len, room - len, "authres: %.*s\n",
		    (int)n, p);
	}
	return len;
}

char *
envelope_format(const struct envelope *e)
{
	const struct envrcpt	*r;
	size_t			 cap, len, i;
	char			*buf;
	int			 bracket;

	/* Sized to fit: a fixed 256 KiB would cost an mmap per envelope. */
	cap = ENV_HEAD_MAX + e->nrcpts * ENV_RCPT_MAX +
	    (e->dkim ? strlen(e->dkim) + 16 : 0) +
	    (e->authres ? 2 * strlen(e->authres) + 16 : 0);
	if (cap > ENV_TEXT_MAX)
		return NULL;
	buf = xmalloc(cap);
	len = snprintf(buf, cap,
	    "version: 1\nid: %s\ncreated: %lld\nsender: %s\nhelo: %s\n"
	    "client: %s\nprotocol: %s\nsession: %s\nsize: %lld\n"
	    "data-size: %lld\nattempts: %d\nnext-attempt: %lld\n"
	    "last-error: %s\n", e->id, (long long)e->created, e->sender,
	    e->helo, e->client, e->protocol, e->session, e->size,
	    e->datasize, e->attempts, (long long)e->next_attempt,
	    e->lasterror);
	if (e->held && len < cap)
		len += snprintf(buf + len, cap - len, "held: 1\n");
	if (e->dkim != NULL)
		len += format_dkim(e->dkim, buf + len, cap - len);
	if (e->authres != NULL && len < cap)
		len += format_authres(e->authres, buf + len, cap - len);
	for (i = 0; i < e->nrcpts && len < cap; i++) {
		r = &e->rcpts[i];
		bracket = strchr(r->address, ' ') != NULL;
		len += snprintf(buf + len, cap - len, "rcpt: %s %s %s%s%s%s%s\n",
		    status_names[r->status], r->user[0] ? r->user : "-",
		    bracket ? "<" : "", r->address, bracket ? ">" : "",
		    r->reason[0] ? " " : "", r->reason);
	}
	if (len >= cap) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int
parse_status(const char *s, enum rcpt_status *st)
{
	size_t	i;

	for (i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcmp(s, status_names[i]) == 0) {
			*st = i;
			return 0;
		}
	return -1;
}

/*
 * A stored address, as one mailbox: any spelling smtpd accepts is taken
 * and kept canonical (older queues kept quotes as written). "" stays the
 * null path.
 */
static int
addr_read(const char *s, char *out, size_t len)
{
	struct mailaddr	 a;
	const char	*why;

	if (*s == '\0') {
		out[0] = '\0';
		return 0;
	}
	if (addr_parse_mailbox(s, ADDR_UTF8, &a, &why) == -1)
		return -1;
	return addr_format(&a, out, len);
}

/* The address field of a rcpt line at *v, into out; *v moves past it. */
static int
rcpt_addr_read(char **v, char *out, size_t len)
{
	struct mailaddr	 a;
	const char	*rest, *why;
	char		*tok;

	if (*v == NULL)
		return -1;
	if (**v != '<') {
		tok = strsep(v, " ");
		return *tok == '\0' ? -1 : addr_read(tok, out, len);
	}
	if (addr_parse_path(*v, ADDR_UTF8, &a, &rest, &why) == -1 ||
	    (*rest != '\0' && *rest != ' '))
		return -1;
	*v = *rest == ' ' ? (char *)rest + 1 : NULL;
	return addr_format(&a, out, len);
}

static int
parse_rcpt(struct envelope *e, char *v, const char **why)
{
	char		*status, *user;
	enum rcpt_status st;
	struct envrcpt	*r;
	const char	*uwhy;
	char		 norm[USER_NAME_MAX + 1], addr[ADDR_PATH_MAX];

	status = strsep(&v, " ");
	user = strsep(&v, " ");
	if (user == NULL || parse_status(status, &st) == -1) {
		*why = "malformed rcpt line";
		return -1;
	}
	if (rcpt_addr_read(&v, addr, sizeof(addr)) == -1) {
		*why = "bad address in rcpt line";
		return -1;
	}
	if (strcmp(user, "-") == 0)
		user = "";
	else if (user_name_normalize(user, norm, &uwhy) == -1) {
		*why = "bad user in rcpt line";
		return -1;
	} else
		user = norm;	/* "Bob" in a hand-edited envelope is bob */
	if ((r = envelope_add_rcpt(e, addr, user)) == NULL) {
		*why = "bad or too many recipients";
		return -1;
	}
	r->status = st;
	if (v)
		strlcpy(r->reason, v, sizeof(r->reason));
	return 0;
}

static int
parse_num(const char *v, long long max, long long *out)
{
	const char	*errstr;

	*out = strtonum(v, 0, max, &errstr);
	return errstr ? -1 : 0;
}

/* A signature made at the commit: sent as it is at every attempt. */
static int
parse_dkim(struct envelope *e, const char *v, const char **why)
{
	size_t	old = e->dkim ? strlen(e->dkim) : 0, n = strlen(v);

	/* two at most: one RSA, one Ed25519 */
	if (n == 0 || n > DKIM_SIG_MAX || (old && strchr(e->dkim, '\n')) ||
	    strncmp(v, "DKIM-Signature: ", 16) != 0 ||
	    !envelope_field_ok(v, DKIM_SIG_MAX + 1)) {
		*why = "bad dkim line";
		return -1;
	}
	e->dkim = xreallocarray(e->dkim, 1, old + n + 2);
	if (old)
		e->dkim[old++] = '\n';
	memcpy(e->dkim + old, v, n + 1);
	return 0;
}

/* The next line of the Authentication-Results field: its fold again. */
static int
parse_authres(struct envelope *e, const char *v, const char **why)
{
	size_t	old = e->authres ? strlen(e->authres) : 0, n = strlen(v);

	if (n == 0 || old + n + 3 >= AUTHRES_FIELD_MAX ||
	    (old == 0 && strncmp(v, "Authentication-Results: ", 24) != 0) ||
	    !envelope_field_ok(v, AUTHRES_FIELD_MAX)) {
		*why = "bad authres line";
		return -1;
	}
	e->authres = xreallocarray(e->authres, 1, old + n + 4);
	if (old) {
		memcpy(e->authres + old, "\r\n\t", 3);
		old += 3;
	}
	memcpy(e->authres + old, v, n + 1);
	return 0;
}

static int
parse_field(struct envelope *e, const char *key, char *v, const char **why)
{
	long long	n;

	if (strcmp(key, "rcpt") == 0)
		return parse_rcpt(e, v, why);
	if (strcmp(key, "dkim") == 0)
		return parse_dkim(e, v, why);
	if (strcmp(key, "authres") == 0)
		return parse_authres(e, v, why);
	if (strcmp(key, "version") == 0) {
		if (strcmp(v, "1") != 0) {
			*why = "unknown version";
			return -1;
		}
		return 0;
	}
#define STR(name, field)						\
	if (strcmp(key, name) == 0) {					\
		if (strlcpy(field, v, sizeof(field)) >= sizeof(field)) { \
			*why = "field too long";			\
			return -1;					\
		}							\
		return 0;						\
	}
	if (strcmp(key, "sender") == 0) {
		if (addr_read(v, e->sender, sizeof(e->sender)) == -1) {
			*why = "bad sender address";
			return -1;
		}
		return 0;
	}
	STR("id", e->id)
	STR("helo", e->helo)
	STR("client", e->client)
	STR("protocol", e->protocol)
	STR("session", e->session)
	STR("last-error", e->lasterror)
#undef STR
	if (parse_num(v, LLONG_MAX, &n) == -1) {
		*why = "bad number";
		return -1;
	}
	if (strcmp(key, "created") == 0)
		e->created = n;
	else if (strcmp(key, "size") == 0)
		e->size = n;
	else if (strcmp(key, "data-size") == 0)
		e->datasize = n;
	else if (strcmp(key, "attempts") == 0 && n < 1000000)
		e->attempts = n;
	else if (strcmp(key, "next-attempt") == 0)
		e->next_attempt = n;
	else if (strcmp(key, "held") == 0 && n <= 1)
		e->held = n;
	else {
		*why = "unknown key";
		return -1;
	}
	return 0;
}

int
envelope_parse(const char *text, struct envelope *e, char *whybuf,
    size_t whylen)
{
	char		*copy, *line, *next, *v;
	const char	*why = NULL;
	int		 lineno = 0;

	copy = xstrdup(text);
	for (line = copy; line && *line; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((v = strstr(line, ": ")) == NULL &&
		    (v = strchr(line, ':')) == NULL) {
			why = "line without a key";
			break;
		}
		*v++ = '\0';
		while (*v == ' ')
			v++;
		if (parse_field(e, line, v, &why) == -1) {
			if (why == NULL)
				why = "bad value";
			break;
		}
	}
	free(copy);
	if (why == NULL && (strlen(e->id) != QUEUE_ID_LEN || e->nrcpts == 0))
		why = "no id or no recipients";
	if (why != NULL) {
		snprintf(whybuf, whylen, "line %d: %s", lineno, why);
		return -1;
	}
	return 0;
}
