/*
 * POP3 command lines (pop3d/parse.c), as session.c hands them over: the
 * octets before a LF, one CR before it dropped, at most what the input
 * buffer holds, NUL-terminated at their length (NULs inside too).
 * Checked: the verdict agrees with its fields; every string points into
 * the line, which changes only where a space became the NUL ending a
 * word; numbers are the digits written; answers are short printable
 * texts; the verb's case changes nothing; the line parsed again (as the
 * look-ahead does on its copy) gives the same command; a SASL response
 * line, and AUTH's initial response, go through the PLAIN decoder.
 *
 * The parser links alone: it needs nothing but libcommon.
 */
#include <ctype.h>
#include <string.h>

#include "pop3d.h"
#include "sasl.h"
#include "fuzz.h"

#define ANSWER_MAX	64	/* an -ERR text, CRLF aside */

static int
answer_ok(const char *s)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return i > 0 && i <= ANSWER_MAX;
}

/* A string starting in line[0..len], ending at or before line[len]. */
static int
inside(const char *p, const char *line, size_t len)
{
	return p >= line && p <= line + len &&
	    memchr(p, '\0', line + len + 1 - p) != NULL;
}

/* The words of the original line after its verb, split at spaces. */
static int
words_of(char *copy, char **w, int max)
{
	char	*p, *last;
	int	 n = 0;

	if ((p = strchr(copy, ' ')) == NULL)
		return 0;
	for (p = strtok_r(p, " ", &last); p != NULL;
	    p = strtok_r(NULL, " ", &last))
		if (n++ < max)
			w[n - 1] = p;
	return n;
}

/* What a word of digits says, written as the parser must read it. */
static void
check_number(const char *word, uint64_t got, int msgno)
{
	uint64_t	v = 0;
	size_t		i, n = strlen(word);

	FUZZ_ASSERT(n >= 1 && n <= POP3_NUMBER_DIGITS);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(word[i] >= '0' && word[i] <= '9');
		v = v * 10 + (uint64_t)(word[i] - '0');
	}
	FUZZ_ASSERT(got == (msgno && n > POP3_MSGNO_DIGITS ? 0 : v));
}

/* Written here, not taken from the parser, so a wrong entry in its
 * table shows. */
static const char *const verb_names[POP3_RESPONSE] = {
	[POP3_CAPA] = "CAPA", [POP3_USER] = "USER", [POP3_PASS] = "PASS",
	[POP3_AUTH] = "AUTH", [POP3_QUIT] = "QUIT", [POP3_NOOP] = "NOOP",
	[POP3_STAT] = "STAT", [POP3_LIST] = "LIST", [POP3_UIDL] = "UIDL",
	[POP3_RETR] = "RETR", [POP3_TOP] = "TOP", [POP3_DELE] = "DELE",
	[POP3_RSET] = "RSET", [POP3_STLS] = "STLS",
};

static void
check_fields(const struct pop3_cmd *c, int r, const char *orig,
    const char *line, size_t len)
{
	const char		*name;
	char			 copy[POP3_IBUF], *w[POP3_ARGS_MAX + 1];
	size_t			 n;
	int			 nw;

	FUZZ_ASSERT(r == 0 || r == -1);
	FUZZ_ASSERT((r == 0) == (c->verb != POP3_NONE && c->error == NULL &&
	    c->argerror == NULL));
	FUZZ_ASSERT(c->verb >= POP3_NONE && c->verb < POP3_RESPONSE);
	if (c->verb == POP3_NONE)
		FUZZ_ASSERT(c->error != NULL && c->argerror == NULL);
	if (c->error != NULL)
		FUZZ_ASSERT(answer_ok(c->error));
	if (c->argerror != NULL)
		FUZZ_ASSERT(answer_ok(c->argerror));
	if (memchr(orig, '\0', len) != NULL) {
		FUZZ_ASSERT(strcmp(c->error, "NUL in command") == 0);
		return;
	}
	if (len > POP3_CMD_MAX) {
		FUZZ_ASSERT(strcmp(c->error, "line too long") == 0);
		return;
	}
	if (c->verb == POP3_NONE)
		return;
	/* The verb is the line's first word, in any case. */
	FUZZ_ASSERT((name = verb_names[c->verb]) != NULL);
	n = strlen(name);
	FUZZ_ASSERT(strncasecmp(orig, name, n) == 0 &&
	    (orig[n] == ' ' || orig[n] == '\0'));
	if (c->arg != NULL)
		FUZZ_ASSERT(inside(c->arg, line, len));
	if (c->resp != NULL)
		FUZZ_ASSERT(inside(c->resp, line, len) && c->verb == POP3_AUTH);
	if (c->verb == POP3_PASS) {
		/* The rest of the line, spaces and all. */
		FUZZ_ASSERT(c->arg == NULL || (c->arg == line + 5 &&
		    strcmp(c->arg, orig + 5) == 0));
		return;
	}
	memcpy(copy, orig, len + 1);
	nw = words_of(copy, w, POP3_ARGS_MAX + 1);
	FUZZ_ASSERT(c->nargs == (nw > POP3_ARGS_MAX ? POP3_ARGS_MAX + 1 :
	    nw));
	if (r == -1)
		return;
	if (c->arg != NULL)
		FUZZ_ASSERT(strcmp(c->arg, w[0]) == 0);
	if (c->resp != NULL)
		FUZZ_ASSERT(strcmp(c->resp, w[1]) == 0);
	switch (c->verb) {
	case POP3_LIST:
	case POP3_UIDL:
		if (nw == 0)
			break;
		/* FALLTHROUGH */
	case POP3_RETR:
	case POP3_DELE:
		check_number(w[0], c->msgno, 1);
		break;
	case POP3_TOP:
		check_number(w[0], c->msgno, 1);
		check_number(w[1], c->lines, 0);
		break;
	default:
		FUZZ_ASSERT(c->msgno == 0 && c->lines == 0);
		break;
	}
}

static int
same_cmd(const struct pop3_cmd *a, const struct pop3_cmd *b)
{
	return a->verb == b->verb && a->error == b->error &&
	    a->argerror == b->argerror && a->nargs == b->nargs &&
	    a->msgno == b->msgno && a->lines == b->lines &&
	    (a->arg == NULL) == (b->arg == NULL) &&
	    (a->resp == NULL) == (b->resp == NULL);
}

/* What AUTH and the SASL state hand to the PLAIN decoder. */
static void
check_plain(const char *b64)
{
	struct sasl_cred	cred;

	if (sasl_plain(b64, &cred) == 0)
		FUZZ_ASSERT(cred.user[0] != '\0' && cred.pass[0] != '\0');
	sasl_cred_wipe(&cred);
}

static void
check_response(const char *orig, size_t len)
{
	struct pop3_cmd	c;
	int		r;

	r = pop3_parse_response(orig, len, &c);
	if (memchr(orig, '\0', len) != NULL) {
		FUZZ_ASSERT(r == -1 && c.verb == POP3_NONE &&
		    answer_ok(c.error));
		return;
	}
	FUZZ_ASSERT(r == 0 && c.error == NULL);
	if (len == 1 && orig[0] == '*') {
		FUZZ_ASSERT(c.verb == POP3_CANCEL);
		return;
	}
	FUZZ_ASSERT(c.verb == POP3_RESPONSE && c.arg == orig);
	check_plain(c.arg);
}

FUZZ_ENTRY(pop3)
{
	struct pop3_cmd	 c, again;
	const uint8_t	*nl;
	char		*orig, *line, *copy;
	size_t		 len, i;
	int		 r;

	if ((nl = memchr(data, '\n', size)) != NULL)
		size = nl - data;
	if (size > 0 && data[size - 1] == '\r')
		size--;
	if (size > POP3_IBUF - 1)
		return 0;
	len = size;
	orig = fuzz_cstr(data, len);
	/* Exactly the line and its NUL: ASan sees a read past it. */
	line = fuzz_cstr(data, len);
	copy = fuzz_cstr(data, len);

	r = pop3_parse(line, len, &c);
	check_fields(&c, r, orig, line, len);
	for (i = 0; i < len; i++)
		FUZZ_ASSERT(line[i] == orig[i] ||
		    (orig[i] == ' ' && line[i] == '\0'));
	FUZZ_ASSERT(line[len] == '\0');
	if (c.resp != NULL)
		check_plain(c.resp);

	/* The verb in upper case: the same command. */
	for (i = 0; i < len && copy[i] != ' '; i++)
		copy[i] = toupper((unsigned char)copy[i]);
	FUZZ_ASSERT(pop3_parse(copy, len, &again) == r);
	FUZZ_ASSERT(same_cmd(&c, &again));

	check_response(orig, len);
	free(copy);
	free(line);
	free(orig);
	return 0;
}
