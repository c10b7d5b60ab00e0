/*
 * SMTP command lines (smtpd/parse.c), as session.c hands them over: one
 * line without its CRLF, at most SMTP_CMD_MAX octets, no NUL. The first
 * byte of the input picks the MAIL FROM flags.
 */
#include <string.h>

#include "sasl.h"
#include "smtpd.h"
#include "fuzz.h"

static void
check_path_arg(char *arg, const char *keyword, int flags, int mail)
{
	struct mailaddr	 a;
	struct mailparams mp;
	char		*params, text[ADDR_PATH_MAX + 8];
	const char	*err;

	err = smtp_parse_path_arg(arg, keyword, flags, &a, &params);
	if (err != NULL) {
		/* Every refusal is a whole SMTP reply line. */
		FUZZ_ASSERT(strlen(err) > 4 && err[0] >= '4' &&
		    err[0] <= '5' && err[3] == ' ');
		return;
	}
	FUZZ_ASSERT(params >= arg && params <= arg + strlen(arg));
	FUZZ_ASSERT(strlen(a.local) <= ADDR_LOCAL_MAX);
	(void)addr_format(&a, text, sizeof(text));
	if (mail) {
		err = smtp_parse_mail_params(params, &mp);
		if (err == NULL)
			FUZZ_ASSERT(mp.size >= -1);
		else
			FUZZ_ASSERT(err[0] == '5');
	} else
		(void)smtp_parse_rcpt_params(params);
}

static void
check_auth(const char *arg)
{
	struct sasl_cred	c;
	char			login[SASL_PASS_MAX + 1];

	/* "PLAIN <base64>" or a bare base64 response line. */
	if (strncasecmp(arg, "PLAIN ", 6) == 0)
		arg += 6;
	memset(&c, 'U', sizeof(c));
	if (sasl_plain(arg, &c) == 0) {
		FUZZ_ASSERT(memchr(c.user, '\0', sizeof(c.user)) != NULL);
		FUZZ_ASSERT(memchr(c.pass, '\0', sizeof(c.pass)) != NULL);
		FUZZ_ASSERT(c.user[0] != '\0' && c.pass[0] != '\0');
	}
	sasl_cred_wipe(&c);
	if (sasl_login(arg, login, sizeof(login)) == 0)
		FUZZ_ASSERT(login[0] != '\0' &&
		    memchr(login, '\0', sizeof(login)) != NULL);
}

FUZZ_ENTRY(smtp)
{
	char		*line, *copy, *arg;
	enum smtp_cmd	 cmd;
	int		 flags;

	if (size < 1 || size > SMTP_CMD_MAX)
		return 0;
	flags = data[0] & ADDR_UTF8;
	line = fuzz_cstr(data + 1, size - 1);
	copy = strdup(line);
	cmd = smtp_parse_command(line, &arg);
	FUZZ_ASSERT(arg >= line && arg <= line + strlen(line));
	FUZZ_ASSERT(*arg != ' ');
	switch (cmd) {
	case CMD_MAIL:
		check_path_arg(arg, "FROM", flags | ADDR_ALLOW_NULL, 1);
		break;
	case CMD_RCPT:
		check_path_arg(arg, "TO", flags, 0);
		break;
	case CMD_AUTH:
		check_auth(arg);
		break;
	default:
		break;
	}
	/* Whatever the command, its argument parses without a crash the
	 * way every other command would take it. */
	check_path_arg(copy, "FROM", flags | ADDR_ALLOW_NULL, 1);
	free(copy);
	check_auth(line);
	free(line);
	return 0;
}
