/*
 * pymailadm [-f file] [--json] COMMAND ...
 * Exit 0 on success, 1 on failure (one line on stderr), 2 on usage error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymailadm.h"

struct adm	adm;

static const struct command {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*args;
	int		 needconf;
} commands[] = {
	{ "start",	 cmd_start,	  "",				1 },
	{ "stop",	 cmd_stop,	  "",				1 },
	{ "status",	 cmd_status,	  "",				1 },
	{ "reload",	 cmd_reload,	  "",				1 },
	{ "adduser",	 cmd_adduser,	  "[user [password|-]]",	1 },
	{ "rmuser",	 cmd_rmuser,	  "user",			1 },
	{ "chpasswd",	 cmd_chpasswd,	  "user [password|-]",		1 },
	{ "chopt",	 cmd_chopt,	  "user option value",		1 },
	{ "chdefaultopt", cmd_chdefaultopt, "option value",		1 },
	{ "getinfo",	 cmd_getinfo,	  "user",			1 },
	{ "users",	 cmd_users,	  "",				1 },
	{ "queue",	 cmd_queue,	  "[--json] [--state new|deferred|held] "
	    "[--from PATTERN] [--to PATTERN] [--min-age T] [--max-age T]", 1 },
	{ "flush",	 cmd_flush,	  "",				1 },
	{ "show",	 cmd_show,	  "ID",				1 },
	{ "stats",	 cmd_stats,	  "[--json | --prometheus]",	1 },
	{ "remove",	 cmd_remove,	  "ID... | --from PATTERN | --to PATTERN", 1 },
	{ "hold",	 cmd_hold,	  "ID... | --from PATTERN | --to PATTERN", 1 },
	{ "release",	 cmd_release,	  "ID... | --from PATTERN | --to PATTERN", 1 },
	{ "updatemx",	 cmd_updatemx,	  "",				1 },
	{ "import",	 cmd_import,	  "DIR",			1 },
	{ "dnsrecords",	 cmd_dnsrecords,  "DOMAIN",			1 },
	{ "dkimkey",	 cmd_dkimkey,	  "DOMAIN [SELECTOR] [--ed25519] [-o FILE]",
	    1 },
	{ NULL, NULL, NULL, 0 }
};

void
die(const char *fmt, ...)
{
	va_list	ap;

	/* The bare message: A1's texts ("No such user.") are matched. */
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Asked for (help, --help): standard output and success; a wrong or
 * missing command gets it on standard error and status 2. */
static __attribute__((noreturn)) void
usage_all(FILE *out, int status)
{
	const struct command	*c;

	fprintf(out, "usage: pymailadm [-f file] [--json] command ...\n"
	    "       pymailadm --help | --version\n"
	    "commands:\n");
	for (c = commands; c->name; c++)
		fprintf(out, "  %s%s%s\n", c->name, *c->args ? " " : "",
		    c->args);
	fprintf(out, "  help\n");
	exit(status);
}

void
usage_error(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "pymailadm: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
load_config(void)
{
	char	err[512];

	if (config_load_file(adm.confpath, &adm.conf, err, sizeof(err)) == -1)
		die("%s", err);
}

int
main(int argc, char *argv[])
{
	const struct command	*c;
	int			 i;

	adm.confpath = "/etc/pymaild.conf";
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			adm.json = 1;
		else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			adm.confpath = argv[++i];
		else if (strcmp(argv[i], "-f") == 0)
			usage_error("-f needs an argument: the configuration "
			    "file");
		else if (strncmp(argv[i], "-f", 2) == 0)
			adm.confpath = argv[i] + 2;
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			usage_all(stdout, 0);
		else if (strcmp(argv[i], "--version") == 0 && i + 1 == argc) {
			printf("pymailadm %s\n", PYMAILD_VERSION);
			return 0;
		} else
			usage_error("unknown option %s", argv[i]);
	}
	if (i == argc) {
		fprintf(stderr, "pymailadm: no command given\n");
		usage_all(stderr, 2);
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 != argc)
			usage_error("usage: help");
		usage_all(stdout, 0);
	}
	for (c = commands; c->name; c++) {
		if (strcmp(c->name, argv[i]) != 0)
			continue;
		if (c->needconf)
			load_config();
		return c->fn(argc - i - 1, argv + i + 1);
	}
	usage_error("unknown command '%s' (try pymailadm --help)", argv[i]);
}
