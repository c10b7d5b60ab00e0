/*
 * pymailadm stats: the running daemon's counters, gauges and
 * histograms, as name=value lines, one JSON object (--json), or the
 * Prometheus text exposition format (--prometheus) for node_exporter's
 * textfile collector. Names ending in _total count since the start.
 *
 * The daemon answers "name value" or "name{label=\"v\"} value" lines
 * (proto.h, METRICS_REPLY), a family's lines one after the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "pymailadm.h"
#include "util.h"

#define PROM_PREFIX	"pymaild_"

struct family {
	const char	*name;
	const char	*type;
	const char	*help;
};

/* What each figure means, for the exposition format's HELP lines. */
static const struct family families[] = {
	{ "uptime_seconds", "gauge", "Seconds since pymaild started." },
	{ "outbound_attempts", "gauge", "Relaying attempts under way." },
	{ "smtp_connections_total", "counter",
	    "SMTP connections taken, by listener." },
	{ "smtp_sessions_open", "gauge", "SMTP sessions open now." },
	{ "smtp_refusals_total", "counter",
	    "Connections, commands and messages smtpd refused, by reason." },
	{ "smtp_auth_total", "counter", "SMTP AUTH attempts, by result." },
	{ "smtp_messages_accepted_total", "counter",
	    "Messages smtpd answered 250 at the end of DATA." },
	{ "smtp_data_reply_seconds", "histogram",
	    "Time from the end of DATA read to its 250 written." },
	{ "pop3_connections_total", "counter",
	    "POP3 connections taken, by listener." },
	{ "pop3_sessions_open", "gauge", "POP3 sessions open now." },
	{ "pop3_logins_total", "counter", "POP3 logins, by result." },
	{ "pop3_messages_retrieved_total", "counter",
	    "Messages sent in full by RETR." },
	{ "pop3_retrieved_bytes_total", "counter",
	    "Octets of the messages sent in full by RETR." },
	{ "pop3_messages_deleted_total", "counter",
	    "Messages removed at the end of a POP3 session." },
	{ "messages_accepted_total", "counter",
	    "Messages committed to the queue." },
	{ "delivered_local_total", "counter",
	    "Recipients delivered to a local mailbox." },
	{ "relayed_total", "counter",
	    "Recipients relayed, accepted by the remote server." },
	{ "recipients_failed_total", "counter",
	    "Recipients failed for good." },
	{ "deferred_total", "counter",
	    "Delivery attempts that left recipients to retry." },
	{ "bounced_total", "counter",
	    "Messages whose failures were reported to the sender." },
	{ "removed_total", "counter", "Messages removed by pymailadm." },
	{ "queue_messages", "gauge", "Messages in the queue." },
	{ "queue_new", "gauge", "Queued messages not tried yet." },
	{ "queue_deferred", "gauge", "Queued messages waiting for a retry." },
	{ "queue_held", "gauge", "Queued messages held by pymailadm." },
	{ "queue_active", "gauge", "Queued messages with an attempt under way." },
	{ "queue_oldest_age_seconds", "gauge",
	    "Age of the oldest queued message." },
	{ "delivery_seconds", "histogram",
	    "Time from the 250 to each recipient delivered or relayed." },
};

/* One line of the daemon's: its name alone, and where the rest is. */
struct mline {
	char		 name[72];
	const char	*label;		/* "{...}" or "" */
	const char	*value;
};

static int
cut_line(char *line, struct mline *m)
{
	char	*sp;
	size_t	 len;

	if ((sp = strrchr(line, ' ')) == NULL)
		return -1;
	*sp = '\0';
	m->value = sp + 1;
	len = strcspn(line, "{");
	if (len >= sizeof(m->name))
		return -1;
	memcpy(m->name, line, len);
	m->name[len] = '\0';
	m->label = line + len;
	return 0;
}

static const struct family *
family_of(const char *name, char *base, size_t size)
{
	static const char *const parts[] = { "_bucket", "_sum", "_count" };
	size_t	i, len = strlen(name), plen;

	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strcmp(families[i].name, name) == 0) {
			strlcpy(base, name, size);
			return &families[i];
		}
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		plen = strlen(parts[i]);
		if (len <= plen || strcmp(name + len - plen, parts[i]) != 0)
			continue;
		snprintf(base, size, "%.*s", (int)(len - plen), name);
		return family_of(base, base, size);
	}
	strlcpy(base, name, size);
	return NULL;
}

static void
put_prometheus(const struct mline *m, const char *prev)
{
	const struct family	*f;
	char			 base[128];
	size_t			 len;

	f = family_of(m->name, base, sizeof(base));
	len = strlen(base);
	/* A figure newer than this pymailadm is still exposed. */
	if (prev == NULL || strcmp(prev, base) != 0)
		printf("# HELP " PROM_PREFIX "%s %s\n"
		    "# TYPE " PROM_PREFIX "%s %s\n", base,
		    f ? f->help : "A pymaild figure.", base, f ? f->type :
		    len > 6 && strcmp(base + len - 6, "_total") == 0 ?
		    "counter" : "gauge");
	printf(PROM_PREFIX "%s%s %s\n", m->name, m->label, m->value);
}

/* The label's value: {le="0.5"} -> 0.5 */
static void
label_value(const char *label, char *buf, size_t size)
{
	const char	*q = strchr(label, '"');

	snprintf(buf, size, "%s", q ? q + 1 : label);
	buf[strcspn(buf, "\"")] = '\0';
}

/*
 * Names and label values are of [a-z0-9_.+-I] and values numbers
 * (checked by the daemon): nothing to escape. A labelled figure is an
 * object keyed by its label's value.
 */
static void
put_json(const struct mline *m, const char *prev, int *open)
{
	char	lv[64];

	if (*open && (m->label[0] == '\0' || strcmp(prev, m->name) != 0)) {
		printf("}");
		*open = 0;
	}
	if (m->label[0] == '\0') {
		printf("%s\"%s\": %s", prev ? ", " : "", m->name, m->value);
		return;
	}
	label_value(m->label, lv, sizeof(lv));
	if (*open) {
		printf(", \"%s\": %s", lv, m->value);
		return;
	}
	printf("%s\"%s\": {\"%s\": %s", prev ? ", " : "", m->name, lv,
	    m->value);
	*open = 1;
}

static void
put_all(char *text, int prom)
{
	struct mline	 m;
	char		*line, *prev = NULL, base[128];
	int		 open = 0;

	if (adm.json)
		printf("{");
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (cut_line(line, &m) == -1)
			continue;
		if (prom) {
			put_prometheus(&m, prev);
			family_of(m.name, base, sizeof(base));
			free(prev);
			prev = xstrdup(base);
		} else if (adm.json) {
			put_json(&m, prev, &open);
			free(prev);
			prev = xstrdup(m.name);
		} else
			printf("%s%s=%s\n", m.name, m.label, m.value);
	}
	free(prev);
	if (adm.json)
		printf("%s}\n", open ? "}" : "");
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
	if ((text = strdup(reply)) == NULL)
		die("out of memory");
	put_all(text, prom);
	free(text);
	return 0;
}
