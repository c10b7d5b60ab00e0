/*
 * SMTP command parsing: pure functions over one command line (CRLF
 * already removed), so they can be unit-tested and fuzzed alone.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd.h"

static const struct {
	const char	*name;
	enum smtp_cmd	 cmd;
} commands[] = {
	{ "HELO", CMD_HELO }, { "EHLO", CMD_EHLO }, { "MAIL", CMD_MAIL },
	{ "RCPT", CMD_RCPT }, { "DATA", CMD_DATA }, { "RSET", CMD_RSET },
	{ "NOOP", CMD_NOOP }, { "QUIT", CMD_QUIT }, { "VRFY", CMD_VRFY },
	{ "EXPN", CMD_EXPN }, { "HELP", CMD_HELP }, { "AUTH", CMD_AUTH },
	{ "STARTTLS", CMD_STARTTLS }, { "BDAT", CMD_BDAT },
	{ NULL, CMD_UNKNOWN }
};

enum smtp_cmd
smtp_parse_command(char *line, char **arg)
{
	size_t	n, i;

	n = strcspn(line, " ");
	*arg = line + n;
	while (**arg == ' ')
		(*arg)++;
	for (i = 0; commands[i].name; i++) {
		if (strlen(commands[i].name) == n &&
		    strncasecmp(line, commands[i].name, n) == 0)
			return commands[i].cmd;
	}
	return CMD_UNKNOWN;
}

/*
 * "FROM:<a@b> SIZE=10". A space after the colon is tolerated: many
 * clients send one although RFC 5321 has none.
 */
const char *
smtp_parse_path_arg(char *arg, const char *keyword, int flags,
    struct mailaddr *a, char **params)
{
	size_t		 klen = strlen(keyword);
	const char	*rest, *why;

	if (strncasecmp(arg, keyword, klen) != 0 || arg[klen] != ':')
		return klen == 4 ? "501 5.5.4 Syntax: MAIL FROM:<address>" :
		    "501 5.5.4 Syntax: RCPT TO:<address>";
	arg += klen + 1;
	while (*arg == ' ')
		arg++;
	if (strcasecmp(arg, "<postmaster>") == 0 && !(flags & ADDR_ALLOW_NULL)) {
		memset(a, 0, sizeof(*a));
		strlcpy(a->local, "postmaster", sizeof(a->local));
		*params = arg + strlen(arg);
		return NULL;
	}
	if (addr_parse_path(arg, flags, a, &rest, &why) == -1)
		return "501 5.1.3 Bad address syntax";
	if (*rest != '\0' && *rest != ' ')
		return "501 5.1.3 Bad address syntax";
	while (*rest == ' ')
		rest++;
	*params = (char *)rest;
	return NULL;
}

static const char *
mail_param(char *kv, struct mailparams *mp)
{
	char		*val = strchr(kv, '=');
	const char	*errstr;

	if (val)
		*val++ = '\0';
	if (strcasecmp(kv, "SIZE") == 0) {
		if (val == NULL)
			return "501 5.5.4 SIZE needs a value";
		mp->size = strtonum(val, 0, LLONG_MAX, &errstr);
		if (errstr != NULL)
			return "501 5.5.4 Bad SIZE value";
		return NULL;
	}
	if (strcasecmp(kv, "BODY") == 0) {
		if (val && strcasecmp(val, "7BIT") == 0)
			return NULL;
		if (val && strcasecmp(val, "8BITMIME") == 0) {
			mp->body8bit = 1;
			return NULL;
		}
		return "555 5.5.4 Unsupported BODY type";
	}
	if (strcasecmp(kv, "SMTPUTF8") == 0 && val == NULL) {
		mp->smtputf8 = 1;
		return NULL;
	}
	if (strcasecmp(kv, "AUTH") == 0 && val != NULL)
		return NULL;	/* RFC 4954 5: we may ignore it */
	return "555 5.5.4 Unsupported parameter";
}

const char *
smtp_parse_mail_params(char *params, struct mailparams *mp)
{
	char		*kv;
	const char	*err;

	mp->size = -1;
	mp->body8bit = mp->smtputf8 = 0;
	while ((kv = strsep(&params, " ")) != NULL) {
		if (*kv == '\0')
			continue;
		if ((err = mail_param(kv, mp)) != NULL)
			return err;
	}
	return NULL;
}

const char *
smtp_parse_rcpt_params(char *params)
{
	char	*kv;

	while ((kv = strsep(&params, " ")) != NULL)
		if (*kv != '\0')
			return "555 5.5.4 Unsupported parameter";
	return NULL;
}
