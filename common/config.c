/*
 * Configuration (DESIGN.md A2).
 *
 * libconfig only parses; every key is then checked here, one handler a key,
 * so that each mistake is reported as "FILE:LINE: key 'NAME': reason" and
 * the daemon never starts (or reloads) with half a configuration.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "dkim.h"

#define CONFIG_FILE_MAX		(1024 * 1024)	/* a config is a few lines */
#define CONFIG_MAILSIZE_MAX	(1LL << 40)
#define HOSTNAME_MAX		255		/* RFC 1035 2.3.4 */
#define LABEL_MAX		63
#define ACCOUNT_MAX		32		/* useradd's limit */
#define MAILBOX_MAX		64		/* A1: user names */

/* State of one load; nothing outlives it but the struct config. */
struct loader {
	const char	*path;		/* as the caller wrote it */
	config_setting_t *root;
	struct config	*conf;
	char		*err;
	size_t		 errlen;
	/* 64-bit keys written without L: their true values (see
	 * check_big_integers). Duplicate keys are a parse error, so each
	 * 64-bit key appears here at most once. */
	struct {
		const struct keydef	*key;
		long long		 value;
	}		 big[4];
	size_t		 nbig;
};

struct keydef;
typedef int (*keyfn)(struct loader *, const config_setting_t *,
    const struct keydef *);

struct keydef {
	const char	*name;
	keyfn		 set;
	size_t		 off;		/* the field in struct config */
	long long	 min, max;	/* integers only */
};

#define FIELD(c, k, type)	((type *)(void *)((char *)(c) + (k)->off))

static int	lerr(struct loader *, const config_setting_t *, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static int	set_int(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_llong(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_bool(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_hostname(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_account(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_mailbox(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_path(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_logfile(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_relay(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_resolver(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_domains(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_listen(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_noauth(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_tls(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_relaytls(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_relayauth(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_dnsbl(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	set_dkim(struct loader *, const config_setting_t *,
		    const struct keydef *);
static int	dkim_finish(struct loader *);

#define OFF(f)	offsetof(struct config, f)

static const struct keydef keys[] = {
	{ "serverhostname",	set_hostname,	OFF(serverhostname), 0, 0 },
	{ "localdomains",	set_domains,	0, 0, 0 },
	{ "listen",		set_listen,	0, 0, 0 },
	{ "smtpserverport",	set_int,	OFF(smtpserverport), 1, 65535 },
	{ "pop3serverport",	set_int,	OFF(pop3serverport), 1, 65535 },
	{ "requireauth",	set_bool,	OFF(requireauth), 0, 0 },
	{ "noauthhosts",	set_noauth,	0, 0, 0 },
	{ "usesmtprelay",	set_bool,	OFF(usesmtprelay), 0, 0 },
	{ "smtprelay",		set_relay,	0, 0, 0 },
	{ "smtpmaxmailsize",	set_llong,	OFF(smtpmaxmailsize),
	    1, CONFIG_MAILSIZE_MAX },
	{ "maildir",		set_path,	OFF(maildir), 0, 0 },
	{ "spooldir",		set_path,	OFF(spooldir), 0, 0 },
	{ "pidfile",		set_path,	OFF(pidfile), 0, 0 },
	{ "controlsocket",	set_path,	OFF(controlsocket), 0, 0 },
	{ "postmaster",		set_mailbox,	OFF(postmaster), 0, 0 },
	{ "logfile",		set_logfile,	0, 0, 0 },
	{ "loglevel",		set_int,	OFF(loglevel), 0, 3 },
	{ "user",		set_account,	OFF(user), 0, 0 },
	{ "queueuser",		set_account,	OFF(queueuser), 0, 0 },
	{ "outbounduser",	set_account,	OFF(outbounduser), 0, 0 },
	{ "resolver",		set_resolver,	0, 0, 0 },
	{ "outboundport",	set_int,	OFF(outboundport), 1, 65535 },
	/* A7: tests use 1 s; no RFC figure is a floor. */
	{ "maxqueuetime",	set_llong,	OFF(maxqueuetime), 1, INT_MAX },
	{ "maxsessions",	set_int,	OFF(maxsessions), 1, INT_MAX },
	{ "maxsessionsperip",	set_int,	OFF(maxsessionsperip),
	    1, INT_MAX },
	{ "timeout",		set_int,	OFF(timeout), 1, INT_MAX },
	/* Deferred mail: the first retry after retrymin, doubling, at most
	 * retrymax apart. */
	{ "retrymin",		set_int,	OFF(retrymin), 1, INT_MAX },
	{ "retrymax",		set_int,	OFF(retrymax), 1, INT_MAX },
	{ "tls",		set_tls,	0, 0, 0 },
	/* Opened only when tls is set; 0 leaves one closed. */
	{ "submissionport",	set_int,	OFF(submissionport), 0, 65535 },
	{ "smtpsport",		set_int,	OFF(smtpsport), 0, 65535 },
	{ "pop3sport",		set_int,	OFF(pop3sport), 0, 65535 },
	{ "smtprelaytls",	set_relaytls,	0, 0, 0 },
	{ "smtprelaycafile",	set_path,	OFF(relaycafile), 0, 0 },
	{ "smtprelayauth",	set_relayauth,	0, 0, 0 },
	{ "sharedstore",	set_bool,	OFF(sharedstore), 0, 0 },
	{ "authchecks",		set_bool,	OFF(authchecks), 0, 0 },
	{ "dmarcreject",	set_bool,	OFF(dmarcreject), 0, 0 },
	{ "spfreject",		set_bool,	OFF(spfreject), 0, 0 },
	{ "mxcachefile",	set_path,	OFF(mxcachefile), 0, 0 },
	{ "dnsbl",		set_dnsbl,	0, 0, 0 },
	{ "greetdelay",		set_int,	OFF(greetdelay),
	    0, CONFIG_GREETDELAY_MAX },
	{ "dkim",		set_dkim,	0, 0, 0 },
};

static const char *const default_listen[] = { "127.0.0.1", "::1" };
static const char *const default_noauth[] = { "127.0.0.1", "::1" };

/* Names pymaild keeps in MAILDIR; no mailbox may take them (A1). */
static const char *const reserved_names[] = {
	"users", "default_options", "mxservers", "queue",
};

/*
 * Errors
 */

/* Values come from the file; a control character must not break the
 * one-line promise of the error message. */
static void
one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static int
lerr(struct loader *ld, const config_setting_t *s, const char *key,
    const char *fmt, ...)
{
	char		 where[PATH_MAX + 16], reason[512];
	unsigned int	 line = 0;
	va_list		 ap;

	va_start(ap, fmt);
	(void)vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);

	if (s != NULL)
		line = config_setting_source_line(s);
	if (line > 0)
		(void)snprintf(where, sizeof(where), "%s:%u", ld->path, line);
	else
		(void)strlcpy(where, ld->path, sizeof(where));

	if (key != NULL)
		(void)snprintf(ld->err, ld->errlen, "%s: key '%s': %s", where,
		    key, reason);
	else
		(void)snprintf(ld->err, ld->errlen, "%s: %s", where, reason);
	one_line(ld->err);
	return -1;
}

static int
nomem(struct loader *ld)
{
	return lerr(ld, NULL, NULL, "out of memory");
}

/*
 * Small syntax checks
 */

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static void
lowercase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

/* Letters, digits and hyphens in dot-separated labels of 1-63 (RFC 1123). */
static int
hostname_valid(const char *s)
{
	const char	*p;
	size_t		 label = 0;

	if (*s == '\0' || strlen(s) > HOSTNAME_MAX)
		return 0;
	for (p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > LABEL_MAX || p[-1] == '-')
				return 0;
			if (*p == '\0')
				return 1;
			label = 0;
			continue;
		}
		if (*p == '-' && label == 0)
			return 0;
		if (!is_alnum((unsigned char)*p) && *p != '-')
			return 0;
		label++;
	}
}

static int
is_ipv4(const char *s)
{
	struct in_addr	 a;

	return inet_pton(AF_INET, s, &a) == 1;
}

static int
is_ipv6(const char *s)
{
	struct in6_addr	 a;

	return inet_pton(AF_INET6, s, &a) == 1;
}

/* Digits only: strtonum alone would let " +25" through. */
static int
port_parse(const char *s, int *port)
{
	const char	*errstr;
	size_t		 i;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	*port = (int)strtonum(s, 1, 65535, &errstr);
	return errstr == NULL ? 0 : -1;
}

/*
 * Split "host", "host:port", "[addr]" or "[addr]:port" into host and
 * port. A bare IPv6 address is taken whole: its colons are no port.
 * When numeric, the host must be an IP address. On failure *why says why.
 */
static int
hostport_parse(const char *s, int numeric, char *host, size_t hostlen,
    int *port, const char **why)
{
	const char	*end, *colon;
	size_t		 len;

	*why = "must be host[:port] or [address]:port";
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		len = end - (s + 1);
		if (len == 0 || len >= hostlen)
			return -1;
		memcpy(host, s + 1, len);
		host[len] = '\0';
		if (!is_ipv6(host) && !is_ipv4(host)) {
			*why = "brackets must hold a numeric IP address";
			return -1;
		}
		if (end[1] == '\0')
			return 0;
		if (end[1] != ':' || port_parse(end + 2, port) == -1) {
			*why = "port must be a number from 1 to 65535";
			return -1;
		}
		return 0;
	}

	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		if (!is_ipv6(s) || strlcpy(host, s, hostlen) >= hostlen) {
			*why = "an IPv6 address with a port needs brackets: "
			    "[address]:port";
			return -1;
		}
		return 0;
	}

	len = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (colon != NULL && port_parse(colon + 1, port) == -1) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	if (numeric && !is_ipv4(host)) {
		*why = "must be a numeric IP address[:port]";
		return -1;
	}
	if (!is_ipv4(host) && !hostname_valid(host)) {
		*why = "not a valid host name";
		return -1;
	}
	return 0;
}

/*
 * Values
 */

static void
strv_free(char **v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Replace *field with a copy of v. */
static int
store(struct loader *ld, char **field, const char *v)
{
	char	*copy;

	if ((copy = strdup(v)) == NULL)
		return nomem(ld);
	free(*field);
	*field = copy;
	return 0;
}

static int
get_string(struct loader *ld, const config_setting_t *s, const char *key,
    const char **out)
{
	const char	*v, *p;

	*out = NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return lerr(ld, s, key, "must be a string");
	v = config_setting_get_string(s);
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return lerr(ld, s, key,
			    "must not contain control characters");
	*out = v;
	return 0;
}

/* Turn a clean absolute path into its lexical form without "." and "//":
 * ".." is kept, since only the kernel knows where it leads. */
static void
path_clean(char *path)
{
	char	*r = path, *w = path;
	size_t	 len;

	while (*r != '\0') {
		while (*r == '/')
			r++;
		if (*r == '\0')
			break;
		len = strcspn(r, "/");
		if (len == 1 && r[0] == '.') {
			r++;
			continue;
		}
		*w++ = '/';
		memmove(w, r, len);
		w += len;
		r += len;
	}
	if (w == path)
		*w++ = '/';
	*w = '\0';
}

/* p made absolute against base; NULL when out of memory. */
static char *
path_resolve(const char *base, const char *p)
{
	char	*out;
	size_t	 len;

	if (p[0] == '/') {
		if ((out = strdup(p)) == NULL)
			return NULL;
	} else {
		len = strlen(base) + 1 + strlen(p) + 1;
		if ((out = malloc(len)) == NULL)
			return NULL;
		(void)snprintf(out, len, "%s/%s", base, p);
	}
	path_clean(out);
	return out;
}

static int
get_path(struct loader *ld, const config_setting_t *s, const char *key,
    char **field)
{
	const char	*v;
	char		*abs;

	if (get_string(ld, s, key, &v) == -1)
		return -1;
	if (*v == '\0')
		return lerr(ld, s, key, "must not be empty");
	if ((abs = path_resolve(ld->conf->basedir, v)) == NULL)
		return nomem(ld);
	free(*field);
	*field = abs;
	return 0;
}

static int
get_integer(struct loader *ld, const config_setting_t *s,
    const struct keydef *k, long long *out)
{
	long long	 v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		v = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		break;
	default:
		goto bad;
	}
	if (v < k->min || v > k->max)
		goto bad;
	*out = v;
	return 0;
 bad:
	return lerr(ld, s, k->name, "must be an integer from %lld to %lld",
	    k->min, k->max);
}

/* Check that s is a list or array of strings and return its length. */
static int
get_strlist(struct loader *ld, const config_setting_t *s, const char *key,
    size_t *n)
{
	const config_setting_t	*e;
	const char		*v;
	int			 i, len, t;

	t = config_setting_type(s);
	if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
		return lerr(ld, s, key, "must be a list of strings");
	len = config_setting_length(s);
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(s, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return lerr(ld, e, key, "must be a list of strings");
		if (get_string(ld, e, key, &v) == -1)
			return -1;
	}
	*n = len;
	return 0;
}

/*
 * Key handlers
 */

static int
set_int(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	long long	 v = 0;

	if (get_integer(ld, s, k, &v) == -1)
		return -1;
	*FIELD(ld->conf, k, int) = (int)v;
	return 0;
}

static int
set_llong(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	long long	 v = 0;
	size_t		 i;

	for (i = 0; i < ld->nbig; i++) {
		if (ld->big[i].key == k &&
		    config_setting_type(s) == CONFIG_TYPE_INT) {
			*FIELD(ld->conf, k, long long) = ld->big[i].value;
			return 0;
		}
	}
	if (get_integer(ld, s, k, &v) == -1)
		return -1;
	*FIELD(ld->conf, k, long long) = v;
	return 0;
}

static int
set_bool(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return lerr(ld, s, k->name, "must be true or false");
	*FIELD(ld->conf, k, int) = config_setting_get_bool(s) ? 1 : 0;
	return 0;
}

static int
set_hostname(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	const char	*v;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	if (!hostname_valid(v))
		return lerr(ld, s, k->name, "'%.64s' is not a valid host name",
		    v);
	return store(ld, FIELD(ld->conf, k, char *), v);
}

/* A system account: the portable user name set, as useradd takes it. */
static int
set_account(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	const char	*v, *p;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	if (*v == '\0' || strlen(v) > ACCOUNT_MAX || *v == '-')
		goto bad;
	for (p = v; *p != '\0'; p++)
		if (!is_alnum((unsigned char)*p) && strchr("._-", *p) == NULL)
			goto bad;
	return store(ld, FIELD(ld->conf, k, char *), v);
 bad:
	return lerr(ld, s, k->name, "must be an account name of 1 to %d "
	    "letters, digits, '.', '_' or '-'", ACCOUNT_MAX);
}

/* A mailbox user name, by the rules of A1; stored lower-case. */
static int
set_mailbox(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	const char	*v, *p;
	char		**field = FIELD(ld->conf, k, char *);
	size_t		 i;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	if (*v == '\0' || strlen(v) > MAILBOX_MAX || *v == '.' || *v == '-')
		goto bad;
	for (p = v; *p != '\0'; p++)
		if (!is_alnum((unsigned char)*p) && strchr("._-", *p) == NULL)
			goto bad;
	for (i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]);
	    i++)
		if (strcasecmp(v, reserved_names[i]) == 0)
			return lerr(ld, s, k->name, "'%s' is a reserved name",
			    reserved_names[i]);
	if (store(ld, field, v) == -1)
		return -1;
	lowercase(*field);
	return 0;
 bad:
	return lerr(ld, s, k->name, "must be a user name of 1 to %d "
	    "letters, digits, '.', '_' or '-'", MAILBOX_MAX);
}

static int
set_path(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	return get_path(ld, s, k->name, FIELD(ld->conf, k, char *));
}

static int
set_logfile(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	const char	*v;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	if (strcmp(v, "syslog") == 0)
		return store(ld, &ld->conf->logfile, v);
	return get_path(ld, s, k->name, &ld->conf->logfile);
}

static int
set_relay(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	struct config	*c = ld->conf;
	const char	*v, *why;
	char		 host[HOSTNAME_MAX + 1];
	int		 port = 25;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	if (store(ld, &c->smtprelay, v) == -1)
		return -1;
	free(c->relayhost);
	c->relayhost = NULL;
	c->relayport = 25;
	if (*v == '\0')
		return 0;
	if (hostport_parse(v, 0, host, sizeof(host), &port, &why) == -1)
		return lerr(ld, s, k->name, "'%.64s': %s", v, why);
	c->relayport = port;
	return store(ld, &c->relayhost, host);
}

static int
set_relaytls(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	static const char *const names[] = { "may", "verify", "none" };
	const char	*v;
	int		 i;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	for (i = 0; i < 3; i++)
		if (strcmp(v, names[i]) == 0) {
			ld->conf->relaytls = i;	/* RELAYTLS_* in this order */
			return 0;
		}
	return lerr(ld, s, k->name, "must be \"may\", \"verify\" or "
	    "\"none\"");
}

/* "" (no AUTH to the smarthost) or the file of its credentials. */
static int
set_relayauth(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	const char	*v;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	free(ld->conf->relayauth);
	ld->conf->relayauth = NULL;
	if (*v == '\0')
		return 0;
	return get_path(ld, s, k->name, &ld->conf->relayauth);
}

static int
set_resolver(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	struct config	*c = ld->conf;
	const char	*v, *why;
	char		 host[HOSTNAME_MAX + 1];
	int		 port = 53;

	if (get_string(ld, s, k->name, &v) == -1)
		return -1;
	if (store(ld, &c->resolver, v) == -1)
		return -1;
	free(c->resolverhost);
	c->resolverhost = NULL;
	c->resolverport = 53;
	if (*v == '\0')
		return 0;
	if (hostport_parse(v, 1, host, sizeof(host), &port, &why) == -1)
		return lerr(ld, s, k->name, "'%.64s': %s", v, why);
	c->resolverport = port;
	return store(ld, &c->resolverhost, host);
}

/* The n strings of list setting s, lower-cased, in place of *list. */
static int
take_lowered(struct loader *ld, const config_setting_t *s, size_t n,
    char ***list, size_t *nlist)
{
	char	**v;
	size_t	  i;

	if ((v = calloc(n ? n : 1, sizeof(*v))) == NULL)
		return nomem(ld);
	for (i = 0; i < n; i++) {
		if ((v[i] = strdup(config_setting_get_string_elem(s, i))) ==
		    NULL) {
			strv_free(v, i);
			return nomem(ld);
		}
		lowercase(v[i]);
	}
	strv_free(*list, *nlist);
	*list = v;
	*nlist = n;
	return 0;
}

/* Every one of the n names of s a domain name of at most max octets. */
static int
check_names(struct loader *ld, const config_setting_t *s,
    const struct keydef *k, size_t n, size_t max, const char *what)
{
	const char	*v;
	size_t		 i;

	for (i = 0; i < n; i++) {
		v = config_setting_get_string_elem(s, i);
		if (!hostname_valid(v) || strlen(v) > max)
			return lerr(ld, config_setting_get_elem(s, i), k->name,
			    "'%.64s' is not a valid %s", v, what);
	}
	return 0;
}

static int
set_domains(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	struct config	*c = ld->conf;
	size_t		 n;

	if (get_strlist(ld, s, k->name, &n) == -1)
		return -1;
	if (n == 0)
		return lerr(ld, s, k->name, "must list at least one domain");
	if (check_names(ld, s, k, n, SIZE_MAX, "domain name") == -1)
		return -1;
	return take_lowered(ld, s, n, &c->localdomains, &c->nlocaldomains);
}

/* Blocklist zones: domain names, a handful (each costs a query per
 * client). */
static int
set_dnsbl(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	struct config	*c = ld->conf;
	size_t		 n;

	if (get_strlist(ld, s, k->name, &n) == -1)
		return -1;
	if (n > CONFIG_DNSBL_MAX)
		return lerr(ld, s, k->name, "at most %d zones",
		    CONFIG_DNSBL_MAX);
	/* Room for the 64 octets of an IPv6 client's nibbles in a name of
	 * at most 253. */
	if (check_names(ld, s, k, n, 253 - 64, "DNS zone name") == -1)
		return -1;
	return take_lowered(ld, s, n, &c->dnsbl, &c->ndnsbl);
}

static int
strv_copy(const char *const *src, size_t n, char ***out)
{
	char	**v;
	size_t	 i;

	if ((v = calloc(n, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((v[i] = strdup(src[i])) == NULL) {
			strv_free(v, i);
			return -1;
		}
	}
	*out = v;
	return 0;
}

static int
set_listen(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	struct config	*c = ld->conf;
	const char	*v;
	const char	**src;
	char		**list;
	size_t		 i, n;
	int		 rv;

	if (get_strlist(ld, s, k->name, &n) == -1)
		return -1;
	if (n == 0)
		return lerr(ld, s, k->name, "must list at least one address");
	if ((src = calloc(n, sizeof(*src))) == NULL)
		return nomem(ld);
	for (i = 0; i < n; i++) {
		v = src[i] = config_setting_get_string_elem(s, i);
		if (!is_ipv4(v) && !is_ipv6(v)) {
			free(src);
			return lerr(ld, config_setting_get_elem(s, i), k->name,
			    "'%.64s' is not a numeric IP address", v);
		}
	}
	rv = strv_copy(src, n, &list);
	free(src);
	if (rv == -1)
		return nomem(ld);
	strv_free(c->listen, c->nlisten);
	c->listen = list;
	c->nlisten = n;
	return 0;
}

static int
set_noauth(struct loader *ld, const config_setting_t *s,
    const struct keydef *k)
{
	struct config	*c = ld->conf;
	struct netmask	*list = NULL;
	const char	*v;
	size_t		 i, n;

	if (get_strlist(ld, s, k->name, &n) == -1)
		return -1;
	/* An empty list is fine: every relay then needs AUTH. */
	if (n > 0 && (list = calloc(n, sizeof(*list))) == NULL)
		return nomem(ld);
	for (i = 0; i < n; i++) {
		v = config_setting_get_string_elem(s, i);
		if (netmask_parse(v, &list[i]) == -1) {
			free(list);
			return lerr(ld, config_setting_get_elem(s, i), k->name,
			    "'%.64s' is not an address or address/prefix", v);
		}
	}
	free(c->noauthhosts);
	c->noauthhosts = list;
	c->nnoauthhosts = n;
	return 0;
}

/*
 * One of tls.cert and tls.key: a path, or a list of up to
 * CONFIG_TLS_PAIRS paths (one pair per key type, paired by position).
 * An empty string alone means "unset".
 */
static int
tls_paths(struct loader *ld, const config_setting_t *e, const char *key,
    char **field, size_t *n)
{
	const char	*v;
	size_t		 i, len;

	for (i = 0; i < CONFIG_TLS_PAIRS; i++) {
		free(field[i]);
		field[i] = NULL;
	}
	*n = 0;
	if (config_setting_type(e) == CONFIG_TYPE_STRING) {
		if (get_string(ld, e, key, &v) == -1)
			return -1;
		if (*v == '\0')
			return 0;
		*n = 1;
		return get_path(ld, e, key, &field[0]);
	}
	if (config_setting_type(e) != CONFIG_TYPE_LIST &&
	    config_setting_type(e) != CONFIG_TYPE_ARRAY)
		return lerr(ld, e, key, "must be a string or a list of "
		    "strings");
	if (get_strlist(ld, e, key, &len) == -1)
		return -1;
	if (len == 0 || len > CONFIG_TLS_PAIRS)
		return lerr(ld, e, key, "must be a path or a list of 1 to %d "
		    "paths", CONFIG_TLS_PAIRS);
	for (i = 0; i < len; i++)
		if (get_path(ld, config_setting_get_elem(e, i), key,
		    &field[i]) == -1)
			return -1;
	*n = len;
	return 0;
}

static int
set_tls(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	struct config		*c = ld->conf;
	const config_setting_t	*e;
	const char		*name;
	char			 key[32];
	size_t			 ncert = 0, nkey = 0;
	int			 i, len;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return lerr(ld, s, k->name,
		    "must be a group: { cert = \"...\"; key = \"...\"; }");
	len = config_setting_length(s);
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(s, i);
		name = config_setting_name(e);
		(void)snprintf(key, sizeof(key), "tls.%s", name);
		if (strcmp(name, "cert") == 0) {
			if (tls_paths(ld, e, key, c->tls_cert, &ncert) == -1)
				return -1;
		} else if (strcmp(name, "key") == 0) {
			if (tls_paths(ld, e, key, c->tls_key, &nkey) == -1)
				return -1;
		} else
			return lerr(ld, e, NULL, "unknown key 'tls.%s'", name);
	}
	if ((ncert == 0) != (nkey == 0))
		return lerr(ld, s, k->name,
		    "cert and key must be set together, or neither");
	if (ncert != nkey)
		return lerr(ld, s, k->name, "cert and key must list as many "
		    "files each (they are paired by position)");
	c->ntls = ncert;
	return 0;
}

/*
 * dkim = ( { domain = "example.org"; selector = "s1"; key = "file"; },
 * ... ): whether a file holds a key, and of which type, is the parent's
 * to find out (it alone reads them); here the shape of the list.
 */
static int
dkim_entry(struct loader *ld, const config_setting_t *g,
    struct config_dkim *d)
{
	const config_setting_t	*e;
	const char		*name, *v;
	char			**field;
	int			 i, len;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return lerr(ld, g, "dkim", "each entry must be a group { "
		    "domain = \"...\"; selector = \"...\"; key = \"...\"; }");
	len = config_setting_length(g);
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(g, i);
		name = config_setting_name(e);
		if (strcmp(name, "key") == 0) {
			if (get_path(ld, e, "dkim.key", &d->key) == -1)
				return -1;
			continue;
		}
		if (strcmp(name, "domain") == 0)
			field = &d->domain;
		else if (strcmp(name, "selector") == 0)
			field = &d->selector;
		else
			return lerr(ld, e, NULL, "unknown key 'dkim.%s'", name);
		if (get_string(ld, e, name, &v) == -1 ||
		    store(ld, field, v) == -1)
			return -1;
		lowercase(*field);
	}
	if (d->domain == NULL || d->selector == NULL || d->key == NULL)
		return lerr(ld, g, "dkim", "each entry needs domain, selector "
		    "and key");
	if (!hostname_valid(d->domain))
		return lerr(ld, g, "dkim.domain", "'%.64s' is not a domain "
		    "name", d->domain);
	if (!dkim_selector_ok(d->selector))
		return lerr(ld, g, "dkim.selector", "'%.64s' is not a DNS "
		    "label (letters, digits, '-', at most 63)", d->selector);
	return 0;
}

static int
set_dkim(struct loader *ld, const config_setting_t *s, const struct keydef *k)
{
	struct config	*c = ld->conf;
	int		 i, len;

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return lerr(ld, s, k->name, "must be a list of groups: ( { "
		    "domain = \"...\"; selector = \"...\"; key = \"...\"; } )");
	len = config_setting_length(s);
	if (len > CONFIG_DKIM_MAX)
		return lerr(ld, s, k->name, "at most %d entries",
		    CONFIG_DKIM_MAX);
	if ((c->dkim = calloc(len ? len : 1, sizeof(*c->dkim))) == NULL)
		return nomem(ld);
	for (i = 0; i < len; i++) {
		c->ndkim = i + 1;	/* freed with the config on failure */
		if (dkim_entry(ld, config_setting_get_elem(s, i),
		    &c->dkim[i]) == -1)
			return -1;
	}
	return 0;
}

/* Only our own domains are signed for; a selector is named once. */
static int
dkim_finish(struct loader *ld)
{
	struct config		*c = ld->conf;
	const config_setting_t	*s;
	size_t			 i, j;

	s = config_setting_get_member(ld->root, "dkim");
	for (i = 0; i < c->ndkim; i++) {
		if (!config_is_localdomain(c, c->dkim[i].domain))
			return lerr(ld, s, "dkim.domain", "'%s' is not one of "
			    "localdomains", c->dkim[i].domain);
		for (j = 0; j < i; j++)
			if (strcmp(c->dkim[i].domain, c->dkim[j].domain) ==
			    0 && strcmp(c->dkim[i].selector,
			    c->dkim[j].selector) == 0)
				return lerr(ld, s, "dkim.selector", "'%s' is "
				    "named twice for %s", c->dkim[i].selector,
				    c->dkim[i].domain);
	}
	return 0;
}

/*
 * Loading
 */

static int
set_defaults(struct loader *ld)
{
	struct config	*c = ld->conf;

	c->smtpserverport = 25;
	c->pop3serverport = 110;
	c->requireauth = 1;
	c->usesmtprelay = 0;
	c->relayport = 25;
	c->smtpmaxmailsize = 10000000;
	c->loglevel = 2;
	c->resolverport = 53;
	c->greetdelay = -1;	/* finish() picks it */
	c->authchecks = 1;
	c->dmarcreject = 1;
	c->outboundport = 25;
	c->maxqueuetime = 345600;
	c->maxsessions = 1000;
	c->maxsessionsperip = 50;
	c->timeout = 300;
	c->retrymin = 300;
	c->retrymax = 3600;
	c->submissionport = 587;
	c->smtpsport = 465;
	c->pop3sport = 995;

	if (store(ld, &c->smtprelay, "") == -1 ||
	    store(ld, &c->maildir, "/var/pymaild") == -1 ||
	    store(ld, &c->pidfile, "/var/run/pymaild.pid") == -1 ||
	    store(ld, &c->controlsocket, "/var/run/pymaild.sock") == -1 ||
	    store(ld, &c->postmaster, "root") == -1 ||
	    store(ld, &c->logfile, "syslog") == -1 ||
	    store(ld, &c->user, "_pymaild") == -1 ||
	    store(ld, &c->queueuser, "_pymailq") == -1 ||
	    store(ld, &c->outbounduser, "_pymailout") == -1 ||
	    store(ld, &c->resolver, "") == -1 ||
	    store(ld, &c->relaycafile,
	    "/etc/ssl/certs/ca-certificates.crt") == -1)
		return -1;

	if (strv_copy(default_listen, 2, &c->listen) == -1)
		return nomem(ld);
	c->nlisten = 2;
	if ((c->noauthhosts = calloc(2, sizeof(*c->noauthhosts))) == NULL)
		return nomem(ld);
	c->nnoauthhosts = 2;
	if (netmask_parse(default_noauth[0], &c->noauthhosts[0]) == -1 ||
	    netmask_parse(default_noauth[1], &c->noauthhosts[1]) == -1)
		return lerr(ld, NULL, NULL, "bad built-in noauthhosts");
	return 0;
}

/* Defaults that follow other keys, and checks across keys. */
static int
finish(struct loader *ld)
{
	struct config	*c = ld->conf;
	char		 host[HOSTNAME_MAX + 1];
	size_t		 len;

	if (c->serverhostname == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			return lerr(ld, NULL, "serverhostname",
			    "gethostname: %s", strerror(errno));
		host[sizeof(host) - 1] = '\0';
		if (!hostname_valid(host))
			return lerr(ld, NULL, "serverhostname", "the system "
			    "host name '%.64s' is not valid; set it here",
			    host);
		if (store(ld, &c->serverhostname, host) == -1)
			return -1;
	}
	if (c->localdomains == NULL) {
		if ((c->localdomains = calloc(1, sizeof(char *))) == NULL)
			return nomem(ld);
		c->nlocaldomains = 1;
		if (store(ld, &c->localdomains[0], c->serverhostname) == -1)
			return -1;
		lowercase(c->localdomains[0]);
	}
	if (c->spooldir == NULL) {
		len = strlen(c->maildir) + sizeof("/queue");
		if ((c->spooldir = malloc(len)) == NULL)
			return nomem(ld);
		(void)snprintf(c->spooldir, len, "%s/queue", c->maildir);
		path_clean(c->spooldir);
	}
	if (c->mxcachefile == NULL) {
		len = strlen(c->maildir) + sizeof("/mxservers");
		if ((c->mxcachefile = malloc(len)) == NULL)
			return nomem(ld);
		(void)snprintf(c->mxcachefile, len, "%s/mxservers",
		    c->maildir);
		path_clean(c->mxcachefile);
	}
	if (c->usesmtprelay && c->relayhost == NULL)
		return lerr(ld, config_setting_get_member(ld->root,
		    "usesmtprelay"), "usesmtprelay",
		    "true needs smtprelay to be set");
	/* Credentials go only where TLS checked the smarthost, or in
	 * plaintext to a loopback one: "may" would hand them to anyone in
	 * the middle. */
	if (c->relayauth != NULL && c->relaytls == RELAYTLS_MAY)
		return lerr(ld, config_setting_get_member(ld->root,
		    "smtprelayauth"), "smtprelayauth", "needs smtprelaytls "
		    "\"verify\" (or \"none\" for a smarthost on a loopback "
		    "address)");
	if (c->retrymax < c->retrymin)
		return lerr(ld, config_setting_get_member(ld->root,
		    "retrymax"), "retrymax", "must not be less than retrymin");
	/* The lookups run during the delay, and a client that talks
	 * before the greeting is a robot: both come with a blocklist. */
	if (c->greetdelay == -1)
		c->greetdelay = c->ndnsbl > 0 ? 2 : 0;
	return dkim_finish(ld);
}

/*
 * An @include would be read again from disk by every child the parent
 * hands this text to, maybe after chroot; the text must be all there is.
 * libconfig only honours the directive at the start of a line.
 */
static int
check_include(struct loader *ld, const char *text)
{
	const char	*p = text;
	unsigned int	 line = 1;

	for (;;) {
		p += strspn(p, " \t");
		if (strncmp(p, "@include", 8) == 0) {
			(void)snprintf(ld->err, ld->errlen,
			    "%s:%u: @include is not supported", ld->path, line);
			one_line(ld->err);
			return -1;
		}
		if ((p = strchr(p, '\n')) == NULL)
			return 0;
		p++;
		line++;
	}
}

/* Store the absolute config path and its folder. */
static int
set_location(struct loader *ld)
{
	struct config	*c = ld->conf;
	char		 cwd[PATH_MAX], *slash;

	if (ld->path[0] == '/')
		c->path = path_resolve("/", ld->path);
	else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return lerr(ld, NULL, NULL, "cannot find the current "
			    "folder: %s", strerror(errno));
		c->path = path_resolve(cwd, ld->path);
	}
	if (c->path == NULL || (c->basedir = strdup(c->path)) == NULL)
		return nomem(ld);
	slash = strrchr(c->basedir, '/');
	if (slash == c->basedir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

static const struct keydef *
key_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/*
 * The big-integer trap. libconfig 1.5 reads an integer without the L
 * suffix with atoi(), so "smtpmaxmailsize = 10000000000;" arrives as
 * 1410065408 and "smtpserverport = 4294967321;" as 25, both in range.
 * So before the walk, the text (which libconfig accepted) is scanned for
 * such literals, and the key they follow is found by name.
 */

static int
is_name_char(int c)
{
	return is_alnum(c) || c == '-' || c == '_' || c == '*';
}

static int
is_word(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

/* libconfig reads "010" as ten: no octal. */
static long long
integer_value(const char *num, char **end)
{
	const char	*q = num;

	errno = 0;
	if (*q == '-' || *q == '+')
		q++;
	if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
		return strtoll(num, end, 16);
	return strtoll(num, end, 10);
}

/* Skip a comment or a string at *pp, counting lines; 0 if none is there. */
static int
skip_noise(const char **pp, unsigned int *line)
{
	const char	*p = *pp;

	if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
		p += strcspn(p, "\n");
	} else if (p[0] == '/' && p[1] == '*') {
		for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
			if (*p == '\n')
				(*line)++;
		if (*p != '\0')
			p += 2;
	} else if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (*p == '\n')
				(*line)++;
		}
		if (*p != '\0')
			p++;
	} else
		return 0;
	*pp = p;
	return 1;
}

/* Length of the number at p, as libconfig's scanner would take it. */
static size_t
number_len(const char *p, int *isint)
{
	const char	*q = p;
	int		 hex;

	if (*q == '-' || *q == '+')
		q++;
	hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
	*isint = 1;
	for (; is_alnum((unsigned char)*q) || *q == '.'; q++) {
		if (*q == '.' || (!hex && (*q == 'e' || *q == 'E'))) {
			*isint = 0;
			if ((*q == 'e' || *q == 'E') &&
			    (q[1] == '-' || q[1] == '+'))
				q++;
		}
	}
	if (q > p && q[-1] == 'L')	/* 1L, 1LL: already 64 bits */
		*isint = 0;
	return q - p;
}

/*
 * A literal outside int's range: a 64-bit key takes its true value, a
 * 32-bit key is refused. Any other key is left to the walk, which refuses
 * an integer there anyway.
 */
static int
big_integer(struct loader *ld, const char *name, const char *num,
    unsigned int line)
{
	const struct keydef	*k = NULL;
	long long		 v;

	if (*name != '\0')
		k = key_find(name);
	if (k == NULL || (k->set != set_int && k->set != set_llong))
		return 0;
	v = integer_value(num, NULL);
	if (errno != 0 || v < k->min || v > k->max || k->set != set_llong ||
	    ld->nbig == sizeof(ld->big) / sizeof(ld->big[0])) {
		(void)snprintf(ld->err, ld->errlen, "%s:%u: key '%s': must be "
		    "an integer from %lld to %lld", ld->path, line, k->name,
		    k->min, k->max);
		one_line(ld->err);
		return -1;
	}
	ld->big[ld->nbig].key = k;
	ld->big[ld->nbig].value = v;
	ld->nbig++;
	return 0;
}

static int
check_big_integers(struct loader *ld, const char *text)
{
	const char	*p = text;
	char		 name[64] = "", num[32];
	unsigned int	 line = 1;
	long long	 v;
	size_t		 len;
	int		 isint;

	while (*p != '\0') {
		if (skip_noise(&p, &line))
			continue;
		if (*p == '\n')
			line++;
		if (*p == '*' || (is_alnum((unsigned char)*p) &&
		    !(*p >= '0' && *p <= '9'))) {
			/* A setting name: the key of the numbers after it. */
			len = 0;
			while (is_name_char((unsigned char)p[len]))
				len++;
			if (len < sizeof(name) && !is_word(p, len, "true") &&
			    !is_word(p, len, "false"))
				(void)strlcpy(name, p, len + 1);
			p += len;
			continue;
		}
		if ((*p >= '0' && *p <= '9') || *p == '.' || ((*p == '-' ||
		    *p == '+') && ((p[1] >= '0' && p[1] <= '9') ||
		    p[1] == '.'))) {
			len = number_len(p, &isint);
			if (isint) {
				(void)strlcpy(num, p, len < sizeof(num) ?
				    len + 1 : sizeof(num));
				v = integer_value(num, NULL);
				if ((len >= sizeof(num) || errno != 0 ||
				    v > INT_MAX || v < INT_MIN) &&
				    big_integer(ld, name, num, line) == -1)
					return -1;
			}
			p += len;
			continue;
		}
		p++;
	}
	return 0;
}

static int
load(struct loader *ld, config_t *cf, const char *text)
{
	const config_setting_t	*s;
	const struct keydef	*k;
	int			 i, len;

	if (check_include(ld, text) == -1)
		return -1;
	if (set_location(ld) == -1 || set_defaults(ld) == -1)
		return -1;
	if (config_read_string(cf, text) != CONFIG_TRUE) {
		(void)snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path,
		    config_error_line(cf), config_error_text(cf) != NULL ?
		    config_error_text(cf) : "syntax error");
		one_line(ld->err);
		return -1;
	}
	if (check_big_integers(ld, text) == -1)
		return -1;
	ld->root = config_root_setting(cf);
	len = config_setting_length(ld->root);
	for (i = 0; i < len; i++) {
		s = config_setting_get_elem(ld->root, i);
		if ((k = key_find(config_setting_name(s))) == NULL)
			return lerr(ld, s, NULL, "unknown key '%s'",
			    config_setting_name(s));
		if (k->set(ld, s, k) == -1)
			return -1;
	}
	return finish(ld);
}

int
config_load_string(const char *text, const char *path, struct config *conf,
    char *err, size_t errlen)
{
	struct loader	 ld;
	struct config	 c;
	config_t	 cf;
	char		 none[1];
	int		 rv;

	memset(conf, 0, sizeof(*conf));
	if (err == NULL || errlen == 0) {
		err = none;
		errlen = sizeof(none);
	}
	err[0] = '\0';
	if (path == NULL || *path == '\0') {
		(void)snprintf(err, errlen, "no configuration file name");
		return -1;
	}

	memset(&c, 0, sizeof(c));
	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.conf = &c;
	ld.err = err;
	ld.errlen = errlen;

	config_init(&cf);
	rv = load(&ld, &cf, text);
	config_destroy(&cf);
	if (rv == -1) {
		config_free(&c);
		return -1;
	}
	*conf = c;
	return 0;
}

/* The whole file, NUL-terminated; bounded so a wrong -f cannot eat memory. */
static char *
read_text(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, saved;

	/* O_NONBLOCK: a FIFO given by mistake must not hang us. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		goto fail;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	if ((buf = malloc(CONFIG_FILE_MAX + 1)) == NULL)
		goto fail;
	while (len <= CONFIG_FILE_MAX) {
		n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			free(buf);
			errno = saved;
			goto fail;
		}
		if (n == 0)
			break;
		len += n;
	}
	(void)close(fd);
	if (len > CONFIG_FILE_MAX) {
		free(buf);
		(void)snprintf(err, errlen, "%s: cannot read: larger than %d "
		    "bytes", path, CONFIG_FILE_MAX);
		one_line(err);
		return NULL;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		free(buf);
		(void)snprintf(err, errlen, "%s: contains a NUL byte", path);
		one_line(err);
		return NULL;
	}
	return buf;

 fail:
	saved = errno;
	if (fd != -1)
		(void)close(fd);
	(void)snprintf(err, errlen, "%s: cannot read: %s", path,
	    strerror(saved));
	one_line(err);
	return NULL;
}

int
config_load_file(const char *path, struct config *conf, char *err,
    size_t errlen)
{
	char	*text, none[1];
	int	 rv;

	memset(conf, 0, sizeof(*conf));
	if (err == NULL || errlen == 0) {
		err = none;
		errlen = sizeof(none);
	}
	if ((text = read_text(path, err, errlen)) == NULL)
		return -1;
	rv = config_load_string(text, path, conf, err, errlen);
	free(text);
	return rv;
}

void
config_free(struct config *c)
{
	size_t	i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->basedir);
	free(c->serverhostname);
	strv_free(c->localdomains, c->nlocaldomains);
	strv_free(c->listen, c->nlisten);
	free(c->noauthhosts);
	free(c->smtprelay);
	free(c->relayhost);
	free(c->maildir);
	free(c->spooldir);
	free(c->pidfile);
	free(c->controlsocket);
	free(c->postmaster);
	free(c->logfile);
	free(c->user);
	free(c->queueuser);
	free(c->outbounduser);
	free(c->resolver);
	free(c->resolverhost);
	free(c->mxcachefile);
	for (i = 0; i < CONFIG_TLS_PAIRS; i++) {
		free(c->tls_cert[i]);
		free(c->tls_key[i]);
	}
	free(c->relaycafile);
	free(c->relayauth);
	strv_free(c->dnsbl, c->ndnsbl);
	for (i = 0; i < c->ndkim; i++) {
		free(c->dkim[i].domain);
		free(c->dkim[i].selector);
		free(c->dkim[i].key);
	}
	free(c->dkim);
	memset(c, 0, sizeof(*c));
}

/*
 * Queries
 */

int
config_is_localdomain(const struct config *c, const char *domain)
{
	size_t	 i;

	if (c == NULL || domain == NULL)
		return 0;
	for (i = 0; i < c->nlocaldomains; i++)
		if (strcasecmp(c->localdomains[i], domain) == 0)
			return 1;
	return 0;
}

int
config_noauth_match(const struct config *c, const struct sockaddr *sa)
{
	size_t	 i;

	if (c == NULL || sa == NULL)
		return 0;
	for (i = 0; i < c->nnoauthhosts; i++)
		if (netmask_match(&c->noauthhosts[i], sa))
			return 1;
	return 0;
}

/* Clear the bits past the prefix, so matching compares whole bytes. */
static void
mask_bits(uint8_t *addr, size_t len, int bits)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		if (bits >= 8)
			bits -= 8;
		else if (bits > 0) {
			addr[i] &= (uint8_t)(0xff << (8 - bits));
			bits = 0;
		} else
			addr[i] = 0;
	}
}

int
netmask_parse(const char *s, struct netmask *out)
{
	char		 buf[INET6_ADDRSTRLEN + 1];
	const char	*slash, *errstr;
	size_t		 len, i;
	int		 max, bits;

	if (s == NULL || out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';

	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->af = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->af = AF_INET6;
		max = 128;
	} else
		return -1;

	bits = max;
	if (slash != NULL) {
		/* Digits only: no sign, no blanks, no "/". */
		if (slash[1] == '\0' || strlen(slash + 1) > 3)
			goto bad;
		for (i = 1; slash[i] != '\0'; i++)
			if (slash[i] < '0' || slash[i] > '9')
				goto bad;
		bits = (int)strtonum(slash + 1, 0, max, &errstr);
		if (errstr != NULL)
			goto bad;
	}
	out->bits = bits;
	mask_bits(out->addr, max / 8, bits);
	return 0;
 bad:
	memset(out, 0, sizeof(*out));
	return -1;
}

static const uint8_t v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int
netmask_match(const struct netmask *nm, const struct sockaddr *sa)
{
	uint8_t		 peer[16];
	size_t		 len;
	int		 af;

	if (nm == NULL || sa == NULL)
		return 0;
	memset(peer, 0, sizeof(peer));
	if (sa->sa_family == AF_INET) {
		af = AF_INET;
		memcpy(peer,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    4);
	} else if (sa->sa_family == AF_INET6) {
		af = AF_INET6;
		memcpy(peer,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    16);
	} else
		return 0;

	/* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the
	 * admin wrote them as a.b.c.d. Compare in the entry's family. */
	if (af == AF_INET6 && nm->af == AF_INET &&
	    memcmp(peer, v4mapped_prefix, 12) == 0) {
		memmove(peer, peer + 12, 4);
		memset(peer + 4, 0, 12);
		af = AF_INET;
	} else if (af == AF_INET && nm->af == AF_INET6) {
		memmove(peer + 12, peer, 4);
		memcpy(peer, v4mapped_prefix, 12);
		af = AF_INET6;
	}
	if (af != nm->af)
		return 0;

	len = af == AF_INET ? 4 : 16;
	mask_bits(peer, len, nm->bits);
	return memcmp(peer, nm->addr, len) == 0;
}
