/*
 * pymailadm queue: list the queue from its envelope files, so it works
 * with the daemon stopped too.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "pymailadm.h"
#include "util.h"

static const char *const status_words[] = {
	"pending", "delivered", "failed", "bounced"
};

/*
 * An envelope may hold a remote server's words as they came (one written
 * by an older version, or edited by hand): what reaches the terminal, or
 * a JSON reader, is printable. buf holds the cleaned copy.
 */
static const char *
clean(char *buf, size_t len, const char *s)
{
	return text_printable(buf, len, s, strlen(s));
}

static void
print_text(const struct envelope *e, time_t now)
{
	char	a[ADDR_PATH_MAX], b[sizeof(e->lasterror)];
	size_t	i;

	printf("%s  age %llds  attempts %d  from <%s>\n", e->id,
	    (long long)(now - e->created), e->attempts,
	    clean(a, sizeof(a), e->sender));
	for (i = 0; i < e->nrcpts; i++)
		printf("    to <%s> %s%s%s\n",
		    clean(a, sizeof(a), e->rcpts[i].address),
		    status_words[e->rcpts[i].status],
		    e->rcpts[i].reason[0] ? ": " : "",
		    clean(b, sizeof(b), e->rcpts[i].reason));
	if (e->lasterror[0])
		printf("    last error: %s\n",
		    clean(b, sizeof(b), e->lasterror));
}

/* Addresses keep their UTF-8 here (json_str escapes the controls); the
 * texts from remote servers are cleaned. */
static void
print_json(const struct envelope *e, time_t now, int first)
{
	char	b[sizeof(e->lasterror)];
	size_t	i;

	printf("%s\n  ", first ? "" : ",");
	json_begin();
	json_str("id", e->id);
	json_num("age", now - e->created);
	json_str("sender", e->sender);
	json_num("attempts", e->attempts);
	json_str("lasterror", clean(b, sizeof(b), e->lasterror));
	printf(", \"recipients\": [");
	for (i = 0; i < e->nrcpts; i++) {
		printf("%s", i ? ", " : "");
		json_begin();
		json_str("address", e->rcpts[i].address);
		json_str("status", status_words[e->rcpts[i].status]);
		json_str("reason", clean(b, sizeof(b), e->rcpts[i].reason));
		printf("}");
	}
	printf("]}");
}

static int
load(const char *id, struct envelope *e)
{
	char	path[PATH_MAX], why[256], *text;
	int	r;

	snprintf(path, sizeof(path), "%s/env/%s", adm.conf.spooldir, id);
	if (file_read_all(path, ENV_TEXT_MAX, &text, NULL) == -1)
		return -1;	/* delivered meanwhile */
	r = envelope_parse(text, e, why, sizeof(why));
	free(text);
	if (r == -1)
		fprintf(stderr, "warning: %s: %s\n", path, why);
	return r;
}

int
cmd_queue(int argc, char **argv)
{
	struct envelope	*e;
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX];
	time_t		 now = time(NULL);
	int		 n = 0;

	if (argc != 0)
		usage_error("usage: queue");
	snprintf(path, sizeof(path), "%s/env", adm.conf.spooldir);
	if ((d = opendir(path)) == NULL && errno != ENOENT)
		die("cannot read the queue %s: %s", path, strerror(errno));
	if (adm.json)
		printf("[");
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != QUEUE_ID_LEN)
			continue;
		e = envelope_new("");
		if (load(de->d_name, e) == 0) {
			if (adm.json)
				print_json(e, now, n == 0);
			else
				print_text(e, now);
			n++;
		}
		envelope_free(e);
	}
	if (d != NULL)
		closedir(d);
	if (adm.json)
		printf("%s]\n", n ? "\n" : "");
	else if (n == 0)
		printf("Queue is empty.\n");
	return 0;
}
