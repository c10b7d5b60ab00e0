/*
 * The POP3 command parser (RFC 1939, 2449, 5034): a client's line into a
 * struct pop3_cmd, with every argument checked for its form and range.
 * Pure: no I/O, no session. What depends on the session (is the verb
 * allowed now, is there such a message) is for commands.c to decide.
 */
#include <string.h>
#include <strings.h>

#include "pop3d.h"

static const struct verb {
	const char	*name;
	enum pop3_verb	 verb;
	int		 min, max;	/* arguments */
	const char	*arity;		/* the answer to other counts */
} verbs[] = {
	{ "CAPA", POP3_CAPA, 0, 0, "CAPA takes no argument" },
	{ "USER", POP3_USER, 1, 1, "USER takes one argument" },
	{ "PASS", POP3_PASS, 1, 1, "PASS takes the password" },
	{ "AUTH", POP3_AUTH, 0, POP3_ARGS_MAX, NULL },
	{ "QUIT", POP3_QUIT, 0, POP3_ARGS_MAX, NULL },
	{ "NOOP", POP3_NOOP, 0, 0, "NOOP takes no argument" },
	{ "STAT", POP3_STAT, 0, 0, "STAT takes no argument" },
	{ "LIST", POP3_LIST, 0, 1, "LIST takes at most one argument" },
	{ "UIDL", POP3_UIDL, 0, 1, "UIDL takes at most one argument" },
	{ "RETR", POP3_RETR, 1, 1, "RETR takes a message number" },
	{ "TOP",  POP3_TOP,  2, 2,
	    "TOP takes a message number and a line count" },
	{ "DELE", POP3_DELE, 1, 1, "DELE takes a message number" },
	{ "RSET", POP3_RSET, 0, 0, "RSET takes no argument" },
	{ "STLS", POP3_STLS, 0, 0, "STLS takes no argument" },
};

static const struct verb *
verb_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcasecmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

/*
 * The words of p, split at runs of spaces in place; -1 past
 * POP3_ARGS_MAX. Only a space separates: RFC 1939 says so, and a tab in
 * an argument makes it invalid rather than something else.
 */
static int
split_words(char *p, char **argv)
{
	int	argc = 0;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (argc == POP3_ARGS_MAX)
			return -1;
		argv[argc++] = p;
		if ((p = strchr(p, ' ')) != NULL)
			*p++ = '\0';
	}
	return argc;
}

/* Decimal digits only, 1 to max of them (no sign, no space): their
 * count, the value in *n; -1 when s is not such a number. */
static int
digits(const char *s, int max, uint64_t *n)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == max || s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	*n = v;
	return i;
}

/* A message number: a number too long to name one names none (0), which
 * the session answers "no such message" like any other out of range. */
static const char *
msgno_arg(const char *s, uint64_t *no)
{
	int	n;

	if ((n = digits(s, POP3_NUMBER_DIGITS, no)) == -1)
		return "invalid message number";
	if (n > POP3_MSGNO_DIGITS)
		*no = 0;
	return NULL;
}

static const char *
auth_args(struct pop3_cmd *c, char **argv)
{
	if (c->nargs == 0)
		return NULL;
	c->arg = argv[0];
	if (strcasecmp(argv[0], "PLAIN") != 0)
		return "unsupported authentication mechanism";
	/* PLAIN's response is base64: one word, never two. */
	if (c->nargs == 3)
		return "too many arguments";
	if (c->nargs == 2)
		c->resp = argv[1];
	return NULL;
}

/* The checks of each verb's arguments, once their count is right. */
static const char *
verb_args(struct pop3_cmd *c, char **argv)
{
	switch (c->verb) {
	case POP3_USER:
		c->arg = argv[0];
		return NULL;
	case POP3_AUTH:
		return auth_args(c, argv);
	case POP3_LIST:
	case POP3_UIDL:
		if (c->nargs == 0)
			return NULL;
		/* FALLTHROUGH */
	case POP3_RETR:
	case POP3_DELE:
		return msgno_arg(argv[0], &c->msgno);
	case POP3_TOP:
		if (digits(argv[1], POP3_NUMBER_DIGITS, &c->lines) == -1)
			return "invalid line count";
		return msgno_arg(argv[0], &c->msgno);
	default:
		return NULL;
	}
}

/* PASS takes the rest of the line as it is: a password may hold
 * spaces, leading and trailing ones too. */
static void
pass_arg(struct pop3_cmd *c, char *rest, const struct verb *v)
{
	c->nargs = rest != NULL;
	c->arg = rest;
	if (rest == NULL || *rest == '\0')
		c->argerror = v->arity;
}

int
pop3_parse(char *line, size_t len, struct pop3_cmd *c)
{
	const struct verb	*v;
	char			*argv[POP3_ARGS_MAX], *rest;

	memset(c, 0, sizeof(*c));
	c->verb = POP3_NONE;
	if (memchr(line, '\0', len) != NULL) {
		c->error = "NUL in command";
		return -1;
	}
	if (len > POP3_CMD_MAX) {
		c->error = "line too long";
		return -1;
	}
	if ((rest = strchr(line, ' ')) != NULL)
		*rest++ = '\0';
	if ((v = verb_find(line)) == NULL) {
		c->error = "unknown command";
		return -1;
	}
	c->verb = v->verb;
	if (c->verb == POP3_PASS) {
		pass_arg(c, rest, v);
		return c->argerror != NULL ? -1 : 0;
	}
	if ((c->nargs = split_words(rest, argv)) == -1) {
		c->nargs = POP3_ARGS_MAX + 1;
		c->error = "too many arguments";
		return -1;
	}
	if (c->nargs < v->min || c->nargs > v->max)
		c->argerror = v->arity;
	else
		c->argerror = verb_args(c, argv);
	return c->argerror != NULL ? -1 : 0;
}

int
pop3_parse_response(const char *line, size_t len, struct pop3_cmd *c)
{
	memset(c, 0, sizeof(*c));
	c->verb = POP3_NONE;
	if (memchr(line, '\0', len) != NULL) {
		c->error = "NUL in command";
		return -1;
	}
	/* RFC 5034 4: a lone "*" cancels the exchange. */
	if (len == 1 && line[0] == '*') {
		c->verb = POP3_CANCEL;
		return 0;
	}
	c->verb = POP3_RESPONSE;
	c->arg = line;
	return 0;
}
