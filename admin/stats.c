/*
 * pymailadm stats: the running daemon's counters and gauges, as
 * key=value lines, one JSON object (--json), or the Prometheus text
 * exposition format (--prometheus) for node_exporter's textfile
 * collector. Names ending in _total count since the start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "pymailadm.h"

#define PROM_PREFIX	"pymaild_"

static int
is_counter(const char *name)
{
	size_t	len = strlen(name);

	return len > 6 && strcmp(name + len - 6, "_total") == 0;
}

/* The daemon's lines, "name value"; each one handed to fn. */
static void
each_line(char *text, void (*fn)(const char *, const char *, int),
    int first)
{
	char	*line, *sp;

	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp = '\0';
		fn(line, sp + 1, first);
		first = 0;
	}
}

static void
put_text(const char *name, const char *value, int first)
{
	printf("%s=%s\n", name, value);
}

static void
put_json(const char *name, const char *value, int first)
{
	/* names are [a-z0-9_] and values digits: nothing to escape */
	printf("%s\"%s\": %s", first ? "" : ", ", name, value);
}

static void
put_prometheus(const char *name, const char *value, int first)
{
	printf("# TYPE " PROM_PREFIX "%s %s\n" PROM_PREFIX "%s %s\n", name,
	    is_counter(name) ? "counter" : "gauge", name, value);
}

int
cmd_stats(int argc, char **argv)
{
	const char	*reply;
	char		*text;
	int		 fd, ok, prom = 0;

	if (argc == 1 && strcmp(argv[0], "--prometheus") == 0)
		prom = 1;
	else if (argc == 1 && strcmp(argv[0], "--json") == 0)
		adm.json = 1;
	else if (argc != 0)
		usage_error("usage: stats [--json | --prometheus]");
	if ((fd = ctl_connect()) == -1)
		die("pymaild is not running.");
	reply = ctl_request(fd, IMSG_CTL_METRICS, &ok);
	close(fd);
	if (!ok)
		die("%s", reply);
	text = strdup(reply);
	if (text == NULL)
		die("out of memory");
	if (prom)
		each_line(text, put_prometheus, 1);
	else if (adm.json) {
		printf("{");
		each_line(text, put_json, 1);
		printf("}\n");
	} else
		each_line(text, put_text, 1);
	free(text);
	return 0;
}
