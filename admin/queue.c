/*
 * pymailadm queue and show: read the queue from its envelope files, so
 * they work with the daemon stopped too. A message younger than half a
 * second may have no envelope file yet (queued/held.c): it is not seen.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "pymailadm.h"
#include "qop.h"
#include "util.h"

static const char *const status_words[] = {
	"pending", "delivered", "failed", "bounced"
};

/* What queue --state names: held, or attempted at least once, or not. */
static const char *
state_of(const struct envelope *e)
{
	if (e->held)
		return "held";
	return e->attempts > 0 ? "deferred" : "new";
}

struct filter {
	const char	*state;
	struct qop	 from, to;	/* match QMATCH_FROM / _TO when set */
	long long	 minage, maxage;	/* -1: none */
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

	printf("%s  age %llds  attempts %d  from <%s>%s\n", e->id,
	    (long long)(now - e->created), e->attempts,
	    clean(a, sizeof(a), e->sender), e->held ? "  HELD" : "");
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
/* The object's members, its closing brace left to the caller. */
static void
print_json_open(const struct envelope *e, time_t now)
{
	char	b[sizeof(e->lasterror)];
	size_t	i;

	json_begin();
	json_str("id", e->id);
	json_num("age", now - e->created);
	json_str("sender", e->sender);
	json_num("attempts", e->attempts);
	json_str("state", state_of(e));
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
	printf("]");
}

static void
print_json(const struct envelope *e, time_t now, int first)
{
	printf("%s\n  ", first ? "" : ",");
	print_json_open(e, now);
	printf("}");
}

/* env/ID read and parsed; -1 when there is none (or it is corrupt). */
int
queue_load(const char *id, struct envelope *e)
{
	char	path[PATH_MAX], why[256], *text;
	int	r;

	snprintf(path, sizeof(path), "%s/env/%s", adm.conf.spooldir, id);
	if (file_read_all(path, ENV_TEXT_MAX, &text, NULL) == -1) {
		if (errno == EACCES)
			die("cannot read the queue %s: %s", path,
			    strerror(errno));
		return -1;	/* delivered meanwhile */
	}
	r = envelope_parse(text, e, why, sizeof(why));
	free(text);
	if (r == -1)
		fprintf(stderr, "warning: %s: %s\n", path, why);
	return r;
}

/* The ids in env/, each QUEUE_ID_LEN + 1 octets in *ids. */
void
queue_ids(char **ids, size_t *n)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX];
	size_t		 cap = 0;

	*ids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/env", adm.conf.spooldir);
	if ((d = opendir(path)) == NULL && errno != ENOENT)
		die("cannot read the queue %s: %s", path, strerror(errno));
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (!qop_id_ok(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			*ids = xreallocarray(*ids, cap, QUEUE_ID_LEN + 1);
		}
		strlcpy(*ids + *n * (QUEUE_ID_LEN + 1), de->d_name,
		    QUEUE_ID_LEN + 1);
		(*n)++;
	}
	if (d != NULL)
		closedir(d);
}

/* Seconds, or with a unit: 90, 15m, 2h, 4d. */
static long long
parse_age(const char *opt, const char *s)
{
	const char	*errstr;
	char		 num[32];
	size_t		 len = strlen(s);
	long long	 unit = 1, v;

	if (len == 0 || len >= sizeof(num))
		usage_error("queue: %s needs a duration (90, 15m, 2h, 4d)",
		    opt);
	strlcpy(num, s, sizeof(num));
	switch (num[len - 1]) {
	case 's': unit = 1; num[len - 1] = '\0'; break;
	case 'm': unit = 60; num[len - 1] = '\0'; break;
	case 'h': unit = 3600; num[len - 1] = '\0'; break;
	case 'd': unit = 86400; num[len - 1] = '\0'; break;
	}
	v = strtonum(num, 0, 100LL * 365 * 86400 / unit, &errstr);
	if (errstr != NULL)
		usage_error("queue: %s %s: not a duration (90, 15m, 2h, 4d)",
		    opt, s);
	return v * unit;
}

static void
set_pattern(struct qop *q, uint32_t match, const char *opt, const char *p)
{
	q->match = match;
	if (strlcpy(q->pattern, p, sizeof(q->pattern)) >= sizeof(q->pattern)
	    || !qop_pattern_ok(q->pattern))
		usage_error("queue: %s: the pattern is too long or holds "
		    "control characters", opt);
}

static void
parse_filter(int argc, char **argv, struct filter *f)
{
	int	i;

	memset(f, 0, sizeof(*f));
	f->minage = f->maxage = -1;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			adm.json = 1;
			continue;
		}
		if (i + 1 == argc)
			usage_error("usage: queue [--json] [--state new|deferred|"
			    "held] [--from PATTERN] [--to PATTERN] "
			    "[--min-age T] [--max-age T]");
		if (strcmp(argv[i], "--state") == 0) {
			f->state = argv[++i];
			if (strcmp(f->state, "new") != 0 &&
			    strcmp(f->state, "deferred") != 0 &&
			    strcmp(f->state, "held") != 0)
				usage_error("queue: --state is new, deferred or "
				    "held, not %s", f->state);
		} else if (strcmp(argv[i], "--from") == 0) {
			set_pattern(&f->from, QMATCH_FROM, argv[i], argv[i + 1]);
			i++;
		} else if (strcmp(argv[i], "--to") == 0) {
			set_pattern(&f->to, QMATCH_TO, argv[i], argv[i + 1]);
			i++;
		} else if (strcmp(argv[i], "--min-age") == 0) {
			f->minage = parse_age(argv[i], argv[i + 1]);
			i++;
		} else if (strcmp(argv[i], "--max-age") == 0) {
			f->maxage = parse_age(argv[i], argv[i + 1]);
			i++;
		} else
			usage_error("queue: unknown option %s", argv[i]);
	}
}

static int
filter_ok(const struct filter *f, const struct envelope *e, time_t now)
{
	long long	age = now - e->created;

	if (f->state && strcmp(f->state, state_of(e)) != 0)
		return 0;
	if (f->from.match && !qop_matches(&f->from, e))
		return 0;
	if (f->to.match && !qop_matches(&f->to, e))
		return 0;
	if (f->minage >= 0 && age < f->minage)
		return 0;
	return f->maxage < 0 || age <= f->maxage;
}

int
cmd_queue(int argc, char **argv)
{
	static struct filter	 f;
	struct envelope		*e;
	time_t			 now = time(NULL);
	char			*ids;
	size_t			 i, nids;
	int			 n = 0;

	parse_filter(argc, argv, &f);
	queue_sync();
	queue_ids(&ids, &nids);
	if (adm.json)
		printf("[");
	for (i = 0; i < nids; i++) {
		e = envelope_new("");
		if (queue_load(ids + i * (QUEUE_ID_LEN + 1), e) == 0 &&
		    filter_ok(&f, e, now)) {
			if (adm.json)
				print_json(e, now, n == 0);
			else
				print_text(e, now);
			n++;
		}
		envelope_free(e);
	}
	free(ids);
	if (adm.json)
		printf("%s]\n", n ? "\n" : "");
	else if (n == 0)
		printf("Queue is empty.\n");
	return 0;
}

/* The header of msg/ID, at most this much of it. */
#define SHOW_HEADER_MAX	(64 * 1024)

/* The header section (up to the empty line), printable. */
static char *
read_header(const char *id)
{
	char	 path[PATH_MAX], *buf, *out, *end;
	ssize_t	 n;
	size_t	 len;
	int	 fd;

	snprintf(path, sizeof(path), "%s/msg/%s", adm.conf.spooldir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	buf = xmalloc(SHOW_HEADER_MAX + 1);
	for (len = 0; len < SHOW_HEADER_MAX; len += n)
		if ((n = read(fd, buf + len, SHOW_HEADER_MAX - len)) <= 0)
			break;
	close(fd);
	buf[len] = '\0';
	if ((end = strstr(buf, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	len = strlen(buf);
	out = xmalloc(len + 1);
	/* line by line: text_printable would drop the line ends */
	out[0] = '\0';
	for (end = buf; *end; end++)
		if (*end != '\r' && (*end == '\n' || *end == '\t' ||
		    isprint((unsigned char)*end) || (*end & 0x80)))
			strncat(out, end, 1);
	free(buf);
	return out;
}

int
cmd_show(int argc, char **argv)
{
	struct envelope	*e;
	char		 b[sizeof(e->client)], h[sizeof(e->helo)], *hdr;
	time_t		 now = time(NULL);

	if (argc != 1)
		usage_error("usage: show ID");
	if (!qop_id_ok(argv[0]))
		usage_error("show: not a queue id (16 hex digits): %s",
		    argv[0]);
	queue_sync();
	e = envelope_new("");
	if (queue_load(argv[0], e) == -1)
		die("%s: no such message in the queue", argv[0]);
	hdr = read_header(argv[0]);
	if (adm.json) {
		print_json_open(e, now);
		json_str("client", e->client);
		json_str("helo", e->helo);
		json_num("size", e->datasize);
		json_bool("held", e->held);
		json_str("header", hdr ? hdr : "");
		printf("}\n");
	} else {
		print_text(e, now);
		printf("    client %s (helo %s), %s, %lld octets, state %s\n",
		    clean(b, sizeof(b), e->client), clean(h, sizeof(h),
		    e->helo), e->protocol, e->datasize, state_of(e));
		printf("\n%s", hdr ? hdr : "(the message's data is missing)\n");
	}
	free(hdr);
	envelope_free(e);
	return 0;
}
