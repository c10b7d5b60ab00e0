/*
 * Unit tests for common/config.c: defaults, every key, path resolution,
 * one-line errors naming file, line and key, and address matching.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

#define PATH	"/etc/t/pymaild.conf"

static int
is_zero(const struct config *c)
{
	struct config	 z;

	memset(&z, 0, sizeof(z));
	return memcmp(c, &z, sizeof(z)) == 0;
}

static int
load(const char *text, struct config *c, char *err, size_t errlen)
{
	return config_load_string(text, PATH, c, err, errlen);
}

/* The text must be refused with exactly this message, leaving c zeroed. */
static void
check_error(const char *name, const char *text, const char *want)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	memset(&c, 0xa5, sizeof(c));
	rv = load(text, &c, err, sizeof(err));
	if (rv != -1 || strcmp(err, want) != 0)
		printf("# %s: got \"%s\", want \"%s\"\n", name,
		    rv == -1 ? err : "(accepted)", want);
	CHECK(name, rv == -1 && strcmp(err, want) == 0 && is_zero(&c));
	if (rv == 0)
		config_free(&c);
}

static int
strv_is(char **v, size_t n, const char *a, const char *b)
{
	if (b == NULL)
		return n == 1 && strcmp(v[0], a) == 0;
	return n == 2 && strcmp(v[0], a) == 0 && strcmp(v[1], b) == 0;
}

static void
test_minimal(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load("serverhostname = \"mail.example.com\";\n"
	    "localdomains = [ \"Example.COM\" ];\n"
	    "maildir = \"/srv/mail\";\n", &c, err, sizeof(err));
	CHECK("minimal loads", rv == 0);
	if (rv != 0) {
		printf("# %s\n", err);
		return;
	}
	CHECK("minimal path", strcmp(c.path, PATH) == 0);
	CHECK("minimal basedir", strcmp(c.basedir, "/etc/t") == 0);
	CHECK("minimal serverhostname",
	    strcmp(c.serverhostname, "mail.example.com") == 0);
	CHECK("minimal localdomains lower-cased",
	    strv_is(c.localdomains, c.nlocaldomains, "example.com", NULL));
	CHECK("default listen",
	    strv_is(c.listen, c.nlisten, "127.0.0.1", "::1"));
	CHECK("default smtpserverport", c.smtpserverport == 25);
	CHECK("default pop3serverport", c.pop3serverport == 110);
	CHECK("default requireauth", c.requireauth == 1);
	CHECK("default noauthhosts", c.nnoauthhosts == 2 &&
	    c.noauthhosts[0].af == AF_INET && c.noauthhosts[0].bits == 32 &&
	    c.noauthhosts[1].af == AF_INET6 && c.noauthhosts[1].bits == 128);
	CHECK("default usesmtprelay", c.usesmtprelay == 0);
	CHECK("default smtprelay", strcmp(c.smtprelay, "") == 0 &&
	    c.relayhost == NULL && c.relayport == 25);
	CHECK("default smtpmaxmailsize", c.smtpmaxmailsize == 10000000);
	CHECK("minimal maildir", strcmp(c.maildir, "/srv/mail") == 0);
	CHECK("spooldir follows maildir",
	    strcmp(c.spooldir, "/srv/mail/queue") == 0);
	CHECK("default pidfile", strcmp(c.pidfile,
	    "/var/run/pymaild.pid") == 0);
	CHECK("default controlsocket", strcmp(c.controlsocket,
	    "/var/run/pymaild.sock") == 0);
	CHECK("default postmaster", strcmp(c.postmaster, "root") == 0);
	CHECK("default logfile", strcmp(c.logfile, "syslog") == 0);
	CHECK("default loglevel", c.loglevel == 2);
	CHECK("default user", strcmp(c.user, "_pymaild") == 0);
	CHECK("default queueuser", strcmp(c.queueuser, "_pymailq") == 0);
	CHECK("default resolver", strcmp(c.resolver, "") == 0 &&
	    c.resolverhost == NULL && c.resolverport == 53);
	CHECK("default outboundport", c.outboundport == 25);
	CHECK("default maxqueuetime", c.maxqueuetime == 345600);
	CHECK("default maxsessions", c.maxsessions == 1000);
	CHECK("default maxsessionsperip", c.maxsessionsperip == 50);
	CHECK("default timeout", c.timeout == 300);
	CHECK("default tls", c.ntls == 0 && c.tls_cert[0] == NULL &&
	    c.tls_key[0] == NULL);
	CHECK("default tls ports", c.submissionport == 587 &&
	    c.smtpsport == 465 && c.pop3sport == 995);
	config_free(&c);
	CHECK("config_free zeroes", is_zero(&c));
}

static void
test_empty(void)
{
	struct config	 c;
	char		 err[512], host[256];
	int		 rv;

	rv = load("", &c, err, sizeof(err));
	CHECK("empty file loads", rv == 0);
	if (rv != 0) {
		printf("# %s\n", err);
		return;
	}
	memset(host, 0, sizeof(host));
	(void)gethostname(host, sizeof(host) - 1);
	CHECK("default serverhostname is gethostname",
	    strcmp(c.serverhostname, host) == 0);
	CHECK("default localdomains is serverhostname",
	    c.nlocaldomains == 1 &&
	    strcasecmp(c.localdomains[0], host) == 0);
	CHECK("default maildir", strcmp(c.maildir, "/var/pymaild") == 0);
	CHECK("default spooldir",
	    strcmp(c.spooldir, "/var/pymaild/queue") == 0);
	config_free(&c);
}

static const char every_key[] =
    "# every key of A2\n"
    "serverhostname = \"mx1.example.org\";\n"
    "localdomains = [ \"example.org\", \"Mail.Example.NET\" ];\n"
    "listen = ( \"0.0.0.0\", \"2001:db8::1\" );\n"
    "smtpserverport = 2525;\n"
    "pop3serverport = 1110;\n"
    "requireauth = false;\n"
    "noauthhosts = [ \"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\" ];\n"
    "usesmtprelay = true;\n"
    "smtprelay = \"relay.example.org:587\";\n"
    "smtpmaxmailsize = 20000000000L;\n"
    "maildir = \"/srv/pymaild\";\n"
    "spooldir = \"/srv/spool\";\n"
    "pidfile = \"/run/p.pid\";\n"
    "controlsocket = \"/run/p.sock\";\n"
    "postmaster = \"Admin\";\n"
    "logfile = \"/var/log/pymaild.log\";\n"
    "loglevel = 3;\n"
    "user = \"mail1\";\n"
    "queueuser = \"mail2\";\n"
    "resolver = \"127.0.0.1:5353\";\n"
    "outboundport = 2526;\n"
    "maxqueuetime = 1;\n"
    "maxsessions = 10;\n"
    "maxsessionsperip = 2;\n"
    "timeout = 1;\n"
    "tls = { cert = \"/etc/ssl/c.pem\"; key = \"/etc/ssl/k.pem\"; };\n";

static void
test_every_key(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load(every_key, &c, err, sizeof(err));
	CHECK("every key loads", rv == 0);
	if (rv != 0) {
		printf("# %s\n", err);
		return;
	}
	CHECK("set serverhostname",
	    strcmp(c.serverhostname, "mx1.example.org") == 0);
	CHECK("set localdomains", strv_is(c.localdomains, c.nlocaldomains,
	    "example.org", "mail.example.net"));
	CHECK("set listen (a list)",
	    strv_is(c.listen, c.nlisten, "0.0.0.0", "2001:db8::1"));
	CHECK("set smtpserverport", c.smtpserverport == 2525);
	CHECK("set pop3serverport", c.pop3serverport == 1110);
	CHECK("set requireauth", c.requireauth == 0);
	CHECK("set noauthhosts", c.nnoauthhosts == 3 &&
	    c.noauthhosts[0].bits == 8 && c.noauthhosts[1].bits == 32 &&
	    c.noauthhosts[2].bits == 32);
	CHECK("set usesmtprelay", c.usesmtprelay == 1);
	CHECK("set smtprelay", strcmp(c.smtprelay,
	    "relay.example.org:587") == 0 &&
	    strcmp(c.relayhost, "relay.example.org") == 0 &&
	    c.relayport == 587);
	CHECK("set smtpmaxmailsize (int64)",
	    c.smtpmaxmailsize == 20000000000LL);
	CHECK("set maildir", strcmp(c.maildir, "/srv/pymaild") == 0);
	CHECK("set spooldir", strcmp(c.spooldir, "/srv/spool") == 0);
	CHECK("set pidfile", strcmp(c.pidfile, "/run/p.pid") == 0);
	CHECK("set controlsocket", strcmp(c.controlsocket, "/run/p.sock") == 0);
	CHECK("set postmaster lower-cased", strcmp(c.postmaster, "admin") == 0);
	CHECK("set logfile", strcmp(c.logfile, "/var/log/pymaild.log") == 0);
	CHECK("set loglevel", c.loglevel == 3);
	CHECK("set user", strcmp(c.user, "mail1") == 0);
	CHECK("set queueuser", strcmp(c.queueuser, "mail2") == 0);
	CHECK("set resolver", strcmp(c.resolver, "127.0.0.1:5353") == 0 &&
	    strcmp(c.resolverhost, "127.0.0.1") == 0 &&
	    c.resolverport == 5353);
	CHECK("set outboundport", c.outboundport == 2526);
	CHECK("set maxqueuetime 1 s", c.maxqueuetime == 1);
	CHECK("set maxsessions", c.maxsessions == 10);
	CHECK("set maxsessionsperip", c.maxsessionsperip == 2);
	CHECK("set timeout 1 s", c.timeout == 1);
	CHECK("set tls", c.ntls == 1 && strcmp(c.tls_cert[0], "/etc/ssl/c.pem") == 0 &&
	    strcmp(c.tls_key[0], "/etc/ssl/k.pem") == 0);
	config_free(&c);
}

static void
test_paths(void)
{
	struct config	 c;
	char		 err[512], cwd[PATH_MAX], want[PATH_MAX + 64];
	int		 rv;

	rv = load("maildir = \"mail\";\n"
	    "pidfile = \"./run//pymaild.pid\";\n"
	    "controlsocket = \"run/pymaild.sock\";\n"
	    "logfile = \"log/pymaild.log\";\n"
	    "tls = { cert = \"tls/cert.pem\"; key = \"../k.pem\"; };\n",
	    &c, err, sizeof(err));
	CHECK("relative paths load", rv == 0);
	if (rv != 0) {
		printf("# %s\n", err);
		return;
	}
	CHECK("relative maildir", strcmp(c.maildir, "/etc/t/mail") == 0);
	CHECK("relative spooldir follows maildir",
	    strcmp(c.spooldir, "/etc/t/mail/queue") == 0);
	CHECK("relative pidfile cleaned",
	    strcmp(c.pidfile, "/etc/t/run/pymaild.pid") == 0);
	CHECK("relative controlsocket",
	    strcmp(c.controlsocket, "/etc/t/run/pymaild.sock") == 0);
	CHECK("relative logfile",
	    strcmp(c.logfile, "/etc/t/log/pymaild.log") == 0);
	CHECK("relative tls cert",
	    strcmp(c.tls_cert[0], "/etc/t/tls/cert.pem") == 0);
	CHECK("relative tls key keeps ..",
	    strcmp(c.tls_key[0], "/etc/t/../k.pem") == 0);
	config_free(&c);

	rv = load("tls = { cert = [ \"rsa.pem\", \"/e/ec.pem\" ];\n"
	    "  key = [ \"rsa.key\", \"/e/ec.key\" ]; };\n"
	    "submissionport = 0; smtpsport = 10465; pop3sport = 10995;\n",
	    &c, err, sizeof(err));
	CHECK("two tls pairs load", rv == 0);
	if (rv == 0) {
		CHECK("two tls pairs, by position", c.ntls == 2 &&
		    strcmp(c.tls_cert[0], "/etc/t/rsa.pem") == 0 &&
		    strcmp(c.tls_key[0], "/etc/t/rsa.key") == 0 &&
		    strcmp(c.tls_cert[1], "/e/ec.pem") == 0 &&
		    strcmp(c.tls_key[1], "/e/ec.key") == 0);
		CHECK("tls ports set", c.submissionport == 0 &&
		    c.smtpsport == 10465 && c.pop3sport == 10995);
		config_free(&c);
	}

	rv = load("maildir = \"m\"; spooldir = \"s\";\n", &c, err,
	    sizeof(err));
	CHECK("relative spooldir", rv == 0 &&
	    strcmp(c.spooldir, "/etc/t/s") == 0);
	if (rv == 0)
		config_free(&c);

	/* A relative config path is made absolute from the current folder. */
	rv = config_load_string("maildir = \"mail\";", "sub/pymaild.conf",
	    &c, err, sizeof(err));
	CHECK("relative config path loads", rv == 0);
	if (rv != 0 || getcwd(cwd, sizeof(cwd)) == NULL) {
		if (rv == 0)
			config_free(&c);
		return;
	}
	(void)snprintf(want, sizeof(want), "%s/sub", strcmp(cwd, "/") == 0 ?
	    "" : cwd);
	CHECK("relative config basedir", strcmp(c.basedir, want) == 0);
	(void)snprintf(want, sizeof(want), "%s/sub/mail",
	    strcmp(cwd, "/") == 0 ? "" : cwd);
	CHECK("relative config maildir", strcmp(c.maildir, want) == 0);
	config_free(&c);

	rv = config_load_string("maildir = \"mail\";", "/pymaild.conf", &c,
	    err, sizeof(err));
	CHECK("config in /", rv == 0 && strcmp(c.basedir, "/") == 0 &&
	    strcmp(c.maildir, "/mail") == 0);
	if (rv == 0)
		config_free(&c);
}

static void
test_errors(void)
{
	check_error("unknown key",
	    "maildir = \"/x\";\n\nsmtpport = 25;\n",
	    PATH ":3: unknown key 'smtpport'");
	check_error("int wrong type (string)",
	    "smtpserverport = \"25\";\n",
	    PATH ":1: key 'smtpserverport': must be an integer from 1 "
	    "to 65535");
	check_error("int wrong type (float)",
	    "\ntimeout = 1.5;\n",
	    PATH ":2: key 'timeout': must be an integer from 1 to 2147483647");
	check_error("port 0",
	    "# c\n\nsmtpserverport = 0;\n",
	    PATH ":3: key 'smtpserverport': must be an integer from 1 "
	    "to 65535");
	check_error("port 70000",
	    "pop3serverport = 70000;\n",
	    PATH ":1: key 'pop3serverport': must be an integer from 1 "
	    "to 65535");
	check_error("outboundport 0",
	    "outboundport = 0;\n",
	    PATH ":1: key 'outboundport': must be an integer from 1 "
	    "to 65535");
	check_error("loglevel 4",
	    "loglevel = 4;\n",
	    PATH ":1: key 'loglevel': must be an integer from 0 to 3");
	check_error("loglevel -1",
	    "loglevel = -1;\n",
	    PATH ":1: key 'loglevel': must be an integer from 0 to 3");
	check_error("timeout 0",
	    "timeout = 0;\n",
	    PATH ":1: key 'timeout': must be an integer from 1 to 2147483647");
	check_error("maxqueuetime 0",
	    "maxqueuetime = 0;\n",
	    PATH ":1: key 'maxqueuetime': must be an integer from 1 to "
	    "2147483647");
	check_error("maxsessions 0",
	    "maxsessions = 0;\n",
	    PATH ":1: key 'maxsessions': must be an integer from 1 to "
	    "2147483647");
	check_error("maxsessionsperip 0",
	    "maxsessionsperip = 0;\n",
	    PATH ":1: key 'maxsessionsperip': must be an integer from 1 to "
	    "2147483647");
	check_error("smtpmaxmailsize 0",
	    "smtpmaxmailsize = 0;\n",
	    PATH ":1: key 'smtpmaxmailsize': must be an integer from 1 to "
	    "1099511627776");
	check_error("smtpmaxmailsize over 2^40",
	    "smtpmaxmailsize = 2000000000000L;\n",
	    PATH ":1: key 'smtpmaxmailsize': must be an integer from 1 to "
	    "1099511627776");
	check_error("bool wrong type",
	    "requireauth = 1;\n",
	    PATH ":1: key 'requireauth': must be true or false");
	check_error("bool wrong type (string)",
	    "usesmtprelay = \"yes\";\n",
	    PATH ":1: key 'usesmtprelay': must be true or false");
	check_error("string wrong type",
	    "maildir = 5;\n",
	    PATH ":1: key 'maildir': must be a string");
	check_error("empty path",
	    "pidfile = \"\";\n",
	    PATH ":1: key 'pidfile': must not be empty");
	check_error("control character",
	    "user = \"a\\nb\";\n",
	    PATH ":1: key 'user': must not contain control characters");
	check_error("empty user",
	    "user = \"\";\n",
	    PATH ":1: key 'user': must be an account name of 1 to 32 letters, "
	    "digits, '.', '_' or '-'");
	check_error("empty queueuser",
	    "queueuser = \"\";\n",
	    PATH ":1: key 'queueuser': must be an account name of 1 to 32 "
	    "letters, digits, '.', '_' or '-'");
	check_error("bad postmaster",
	    "postmaster = \"a b\";\n",
	    PATH ":1: key 'postmaster': must be a user name of 1 to 64 "
	    "letters, digits, '.', '_' or '-'");
	check_error("list wrong type",
	    "listen = \"127.0.0.1\";\n",
	    PATH ":1: key 'listen': must be a list of strings");
	check_error("list element wrong type",
	    "noauthhosts = (\n  \"127.0.0.1\",\n  5 );\n",
	    PATH ":3: key 'noauthhosts': must be a list of strings");
	check_error("empty listen",
	    "listen = [];\n",
	    PATH ":1: key 'listen': must list at least one address");
	check_error("bad listen address",
	    "listen = [ \"127.0.0.1\",\n  \"localhost\" ];\n",
	    PATH ":2: key 'listen': 'localhost' is not a numeric IP address");
	check_error("bad listen address (bracketed)",
	    "listen = [ \"[::1]\" ];\n",
	    PATH ":1: key 'listen': '[::1]' is not a numeric IP address");
	check_error("bad CIDR bits",
	    "noauthhosts = [ \"10.0.0.0/33\" ];\n",
	    PATH ":1: key 'noauthhosts': '10.0.0.0/33' is not an address or "
	    "address/prefix");
	check_error("bad CIDR v6 bits",
	    "noauthhosts = [ \"::1/129\" ];\n",
	    PATH ":1: key 'noauthhosts': '::1/129' is not an address or "
	    "address/prefix");
	check_error("bad CIDR garbage",
	    "noauthhosts = [ \"10.0.0.0/8x\" ];\n",
	    PATH ":1: key 'noauthhosts': '10.0.0.0/8x' is not an address or "
	    "address/prefix");
	check_error("bad domain",
	    "localdomains = [ \"example.com\", \"bad_domain.com\" ];\n",
	    PATH ":1: key 'localdomains': 'bad_domain.com' is not a valid "
	    "domain name");
	check_error("bad domain (empty label)",
	    "localdomains = [ \"example..com\" ];\n",
	    PATH ":1: key 'localdomains': 'example..com' is not a valid "
	    "domain name");
	check_error("bad domain (hyphen)",
	    "localdomains = [ \"-example.com\" ];\n",
	    PATH ":1: key 'localdomains': '-example.com' is not a valid "
	    "domain name");
	check_error("empty localdomains",
	    "localdomains = [];\n",
	    PATH ":1: key 'localdomains': must list at least one domain");
	check_error("bad serverhostname",
	    "serverhostname = \"mail example\";\n",
	    PATH ":1: key 'serverhostname': 'mail example' is not a valid "
	    "host name");
	check_error("empty serverhostname",
	    "serverhostname = \"\";\n",
	    PATH ":1: key 'serverhostname': '' is not a valid host name");
	check_error("tls only cert",
	    "maildir = \"/x\";\ntls = { cert = \"c.pem\"; };\n",
	    PATH ":2: key 'tls': cert and key must be set together, or "
	    "neither");
	check_error("tls only key, cert empty",
	    "tls = { cert = \"\"; key = \"k.pem\"; };\n",
	    PATH ":1: key 'tls': cert and key must be set together, or "
	    "neither");
	check_error("tls not a group",
	    "tls = \"c.pem\";\n",
	    PATH ":1: key 'tls': must be a group: { cert = \"...\"; "
	    "key = \"...\"; }");
	check_error("unknown key inside tls",
	    "tls = {\n  cert = \"c\";\n  key = \"k\";\n  ca = \"x\";\n};\n",
	    PATH ":4: unknown key 'tls.ca'");
	check_error("tls cert wrong type",
	    "tls = { cert = 1; key = \"k\"; };\n",
	    PATH ":1: key 'tls.cert': must be a string or a list of "
	    "strings");
	check_error("tls lists of different lengths",
	    "tls = { cert = [ \"a\", \"b\" ]; key = [ \"k\" ]; };\n",
	    PATH ":1: key 'tls': cert and key must list as many files each "
	    "(they are paired by position)");
	check_error("tls three pairs",
	    "tls = { cert = [ \"a\", \"b\", \"c\" ];\n"
	    "  key = [ \"k\", \"l\", \"m\" ]; };\n",
	    PATH ":1: key 'tls.cert': must be a path or a list of 1 to 2 "
	    "paths");
	check_error("tls empty list",
	    "tls = { cert = [ ]; key = [ ]; };\n",
	    PATH ":1: key 'tls.cert': must be a path or a list of 1 to 2 "
	    "paths");
	check_error("submissionport out of range",
	    "submissionport = 70000;\n",
	    PATH ":1: key 'submissionport': must be an integer from 0 to "
	    "65535");
	check_error("usesmtprelay without smtprelay",
	    "maildir = \"/x\";\nusesmtprelay = true;\n",
	    PATH ":2: key 'usesmtprelay': true needs smtprelay to be set");
	check_error("smtprelay bad port",
	    "smtprelay = \"relay:0\";\n",
	    PATH ":1: key 'smtprelay': 'relay:0': port must be a number from "
	    "1 to 65535");
	check_error("smtprelay bad host",
	    "smtprelay = \"re lay:25\";\n",
	    PATH ":1: key 'smtprelay': 're lay:25': not a valid host name");
	check_error("smtprelay v6 without brackets and port",
	    "smtprelay = \"2001:db8::1:25x\";\n",
	    PATH ":1: key 'smtprelay': '2001:db8::1:25x': an IPv6 address with "
	    "a port needs brackets: [address]:port");
	check_error("smtprelay unclosed bracket",
	    "smtprelay = \"[::1:25\";\n",
	    PATH ":1: key 'smtprelay': '[::1:25': must be host[:port] or "
	    "[address]:port");
	check_error("resolver not numeric",
	    "resolver = \"dns.example.com\";\n",
	    PATH ":1: key 'resolver': 'dns.example.com': must be a numeric IP "
	    "address[:port]");
	check_error("resolver port 70000",
	    "resolver = \"[::1]:70000\";\n",
	    PATH ":1: key 'resolver': '[::1]:70000': port must be a number "
	    "from 1 to 65535");
	check_error("syntax error reports a line",
	    "maildir = \"/x\";\nsmtpserverport = ;\n",
	    PATH ":2: syntax error");
	check_error("duplicate key",
	    "timeout = 5;\ntimeout = 6;\n",
	    PATH ":2: duplicate setting name");
	check_error("@include refused",
	    "maildir = \"/x\";\n  @include \"/etc/passwd\"\n",
	    PATH ":2: @include is not supported");
	/* libconfig 1.5 would read these as 25 and 1410065408 (atoi). */
	check_error("32-bit overflow is not a valid port",
	    "# 2^32 + 25\nsmtpserverport = 4294967321;\n",
	    PATH ":2: key 'smtpserverport': must be an integer from 1 "
	    "to 65535");
	check_error("hex overflow is not a valid port",
	    "smtpserverport = 0x100000019;\n",
	    PATH ":1: key 'smtpserverport': must be an integer from 1 "
	    "to 65535");
	check_error("32-bit overflow over 2^40",
	    "smtpmaxmailsize = 99999999999999999999;\n",
	    PATH ":1: key 'smtpmaxmailsize': must be an integer from 1 to "
	    "1099511627776");
}

static void
test_big_integers(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load("# 10000000000 here is a comment\n"
	    "maildir = \"/x/10000000000\"; /* 99999999999 */\n"
	    "smtpmaxmailsize = 10000000000;\n", &c, err, sizeof(err));
	CHECK("size without L takes its true value",
	    rv == 0 && c.smtpmaxmailsize == 10000000000LL);
	if (rv == 0)
		config_free(&c);
	else
		printf("# %s\n", err);

	rv = load("smtpmaxmailsize = 0xffffffff;\n", &c, err, sizeof(err));
	CHECK("hex size without L", rv == 0 &&
	    c.smtpmaxmailsize == 0xffffffffLL);
	if (rv == 0)
		config_free(&c);

	rv = load("smtpmaxmailsize = 010;\nloglevel = 03;\n", &c, err,
	    sizeof(err));
	CHECK("leading zeros are decimal", rv == 0 &&
	    c.smtpmaxmailsize == 10 && c.loglevel == 3);
	if (rv == 0)
		config_free(&c);
}

static void
test_hostport(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load("smtprelay = \"relay.example.com\";\n", &c, err,
	    sizeof(err));
	CHECK("smtprelay host, default port", rv == 0 &&
	    strcmp(c.relayhost, "relay.example.com") == 0 &&
	    c.relayport == 25);
	if (rv == 0)
		config_free(&c);

	rv = load("smtprelay = \"192.0.2.1:2525\";\n", &c, err, sizeof(err));
	CHECK("smtprelay v4:port", rv == 0 &&
	    strcmp(c.relayhost, "192.0.2.1") == 0 && c.relayport == 2525);
	if (rv == 0)
		config_free(&c);

	rv = load("smtprelay = \"[2001:db8::1]:587\";\nusesmtprelay = true;\n",
	    &c, err, sizeof(err));
	CHECK("smtprelay [v6]:port", rv == 0 &&
	    strcmp(c.relayhost, "2001:db8::1") == 0 && c.relayport == 587 &&
	    c.usesmtprelay == 1);
	if (rv == 0)
		config_free(&c);

	rv = load("smtprelay = \"[::1]\";\n", &c, err, sizeof(err));
	CHECK("smtprelay [v6] default port", rv == 0 &&
	    strcmp(c.relayhost, "::1") == 0 && c.relayport == 25);
	if (rv == 0)
		config_free(&c);

	rv = load("smtprelay = \"::1\";\n", &c, err, sizeof(err));
	CHECK("smtprelay bare v6", rv == 0 &&
	    strcmp(c.relayhost, "::1") == 0 && c.relayport == 25);
	if (rv == 0)
		config_free(&c);

	rv = load("resolver = \"127.0.0.1\";\n", &c, err, sizeof(err));
	CHECK("resolver v4, default port", rv == 0 &&
	    strcmp(c.resolverhost, "127.0.0.1") == 0 &&
	    c.resolverport == 53);
	if (rv == 0)
		config_free(&c);

	rv = load("resolver = \"[::1]:5300\";\n", &c, err, sizeof(err));
	CHECK("resolver [v6]:port", rv == 0 &&
	    strcmp(c.resolverhost, "::1") == 0 && c.resolverport == 5300);
	if (rv == 0)
		config_free(&c);

	rv = load("resolver = \"\";\n", &c, err, sizeof(err));
	CHECK("resolver empty", rv == 0 && c.resolverhost == NULL &&
	    strcmp(c.resolver, "") == 0);
	if (rv == 0)
		config_free(&c);
}

static struct sockaddr_storage *
sa_of(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	return ss;
}

static int
match(const char *net, const char *addr)
{
	struct netmask		 nm;
	struct sockaddr_storage	 ss;

	if (netmask_parse(net, &nm) == -1)
		return -1;
	return netmask_match(&nm, (struct sockaddr *)sa_of(addr, &ss));
}

static void
test_netmask(void)
{
	struct netmask		 nm;
	struct config		 c;
	struct sockaddr_storage	 ss;
	char			 err[512];
	int			 rv;

	CHECK("v4 /8 in", match("10.0.0.0/8", "10.200.3.4") == 1);
	CHECK("v4 /8 out", match("10.0.0.0/8", "11.0.0.1") == 0);
	CHECK("v4 /32 in", match("192.0.2.7/32", "192.0.2.7") == 1);
	CHECK("v4 /32 out", match("192.0.2.7/32", "192.0.2.8") == 0);
	CHECK("v4 plain is /32", match("192.0.2.7", "192.0.2.7") == 1 &&
	    match("192.0.2.7", "192.0.2.6") == 0);
	CHECK("v4 /0 matches all v4", match("0.0.0.0/0", "203.0.113.9") == 1);
	CHECK("v4 /0 matches mapped",
	    match("0.0.0.0/0", "::ffff:203.0.113.9") == 1);
	CHECK("v4 /0 not plain v6", match("0.0.0.0/0", "2001:db8::1") == 0);
	CHECK("v4 /12 odd prefix",
	    match("172.16.0.0/12", "172.31.255.1") == 1 &&
	    match("172.16.0.0/12", "172.32.0.1") == 0);
	CHECK("v4 host bits masked", match("10.1.2.3/8", "10.9.9.9") == 1);
	CHECK("v6 /32 in", match("2001:db8::/32", "2001:db8:ffff::1") == 1);
	CHECK("v6 /32 out", match("2001:db8::/32", "2001:db9::1") == 0);
	CHECK("v6 /128", match("::1", "::1") == 1 && match("::1", "::2") == 0);
	CHECK("v6 /0", match("::/0", "2001:db8::5") == 1);
	CHECK("v6 /127", match("2001:db8::/127", "2001:db8::1") == 1 &&
	    match("2001:db8::/127", "2001:db8::2") == 0);
	CHECK("mapped peer matches v4 entry",
	    match("127.0.0.1", "::ffff:127.0.0.1") == 1);
	CHECK("mapped peer matches v4 CIDR",
	    match("127.0.0.0/8", "::ffff:127.3.4.5") == 1);
	CHECK("mapped peer outside v4 entry",
	    match("127.0.0.1", "::ffff:127.0.0.2") == 0);
	CHECK("v4 peer matches mapped entry",
	    match("::ffff:10.0.0.0/104", "10.1.1.1") == 1);
	CHECK("v4 entry does not match v6 peer",
	    match("127.0.0.1", "::1") == 0);
	CHECK("v6 entry does not match v4 peer",
	    match("::1", "127.0.0.1") == 0);
	CHECK("parse v4 bits", netmask_parse("10.0.0.0/8", &nm) == 0 &&
	    nm.af == AF_INET && nm.bits == 8);
	CHECK("parse v6 bits", netmask_parse("fe80::/10", &nm) == 0 &&
	    nm.af == AF_INET6 && nm.bits == 10);
	CHECK("parse rejects /33", netmask_parse("1.2.3.4/33", &nm) == -1);
	CHECK("parse rejects /129", netmask_parse("::/129", &nm) == -1);
	CHECK("parse rejects empty bits", netmask_parse("1.2.3.4/", &nm) == -1);
	CHECK("parse rejects signed bits",
	    netmask_parse("1.2.3.4/+8", &nm) == -1 &&
	    netmask_parse("1.2.3.4/-1", &nm) == -1 &&
	    netmask_parse("1.2.3.4/ 8", &nm) == -1);
	CHECK("parse rejects name", netmask_parse("localhost", &nm) == -1);
	CHECK("parse rejects empty", netmask_parse("", &nm) == -1 &&
	    netmask_parse("/8", &nm) == -1);
	CHECK("parse rejects two slashes",
	    netmask_parse("1.2.3.4/8/8", &nm) == -1);
	CHECK("parse rejects short v4", netmask_parse("10.0/8", &nm) == -1);

	rv = load("noauthhosts = [ \"192.0.2.0/24\", \"2001:db8::/48\" ];\n",
	    &c, err, sizeof(err));
	CHECK("noauthhosts loads", rv == 0);
	if (rv != 0)
		return;
	CHECK("noauth v4", config_noauth_match(&c,
	    (struct sockaddr *)sa_of("192.0.2.99", &ss)) == 1);
	CHECK("noauth mapped", config_noauth_match(&c,
	    (struct sockaddr *)sa_of("::ffff:192.0.2.1", &ss)) == 1);
	CHECK("noauth v6", config_noauth_match(&c,
	    (struct sockaddr *)sa_of("2001:db8:0:1::1", &ss)) == 1);
	CHECK("noauth no match", config_noauth_match(&c,
	    (struct sockaddr *)sa_of("127.0.0.1", &ss)) == 0 &&
	    config_noauth_match(&c,
	    (struct sockaddr *)sa_of("2001:db8:1::1", &ss)) == 0);
	config_free(&c);

	rv = load("noauthhosts = [];\n", &c, err, sizeof(err));
	CHECK("empty noauthhosts matches nothing", rv == 0 &&
	    c.nnoauthhosts == 0 && config_noauth_match(&c,
	    (struct sockaddr *)sa_of("127.0.0.1", &ss)) == 0);
	if (rv == 0)
		config_free(&c);

	rv = load("", &c, err, sizeof(err));
	CHECK("default noauthhosts: loopback", rv == 0 &&
	    config_noauth_match(&c,
	    (struct sockaddr *)sa_of("127.0.0.1", &ss)) == 1 &&
	    config_noauth_match(&c,
	    (struct sockaddr *)sa_of("::1", &ss)) == 1 &&
	    config_noauth_match(&c,
	    (struct sockaddr *)sa_of("::ffff:127.0.0.1", &ss)) == 1 &&
	    config_noauth_match(&c,
	    (struct sockaddr *)sa_of("127.0.0.2", &ss)) == 0);
	if (rv == 0)
		config_free(&c);
}

static void
test_localdomain(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load("localdomains = [ \"Example.com\", \"mail.example.net\" ];\n",
	    &c, err, sizeof(err));
	CHECK("localdomains loads", rv == 0);
	if (rv != 0)
		return;
	CHECK("localdomain exact", config_is_localdomain(&c, "example.com"));
	CHECK("localdomain case-insensitive",
	    config_is_localdomain(&c, "EXAMPLE.COM") &&
	    config_is_localdomain(&c, "Mail.Example.Net"));
	CHECK("localdomain other", !config_is_localdomain(&c, "example.org"));
	CHECK("localdomain no suffix match",
	    !config_is_localdomain(&c, "sub.example.com") &&
	    !config_is_localdomain(&c, "xample.com"));
	CHECK("localdomain NULL", !config_is_localdomain(&c, NULL));
	config_free(&c);
}

static void
test_files(void)
{
	struct config	 c;
	char		 err[512], path[] = "/tmp/test_config.XXXXXX";
	char		 big[64];
	FILE		*f;
	int		 fd, rv, i;

	memset(&c, 0xa5, sizeof(c));
	rv = config_load_file("/nonexistent/pymaild.conf", &c, err,
	    sizeof(err));
	CHECK("missing file", rv == -1 && strcmp(err,
	    "/nonexistent/pymaild.conf: cannot read: No such file or "
	    "directory") == 0 && is_zero(&c));

	rv = config_load_file("/tmp", &c, err, sizeof(err));
	CHECK("folder is not a file", rv == -1 &&
	    strcmp(err, "/tmp: cannot read: Is a directory") == 0);

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		CHECK("mkstemp", 0);
		return;
	}
	fputs("maildir = \"mail\";\nloglevel = 9;\n", f);
	fclose(f);
	rv = config_load_file(path, &c, err, sizeof(err));
	(void)snprintf(big, sizeof(big), "%s:2: key 'loglevel'", path);
	CHECK("file error names the file", rv == -1 &&
	    strncmp(err, big, strlen(big)) == 0);

	f = fopen(path, "w");
	fputs("maildir = \"mail\";\n", f);
	fclose(f);
	rv = config_load_file(path, &c, err, sizeof(err));
	CHECK("file loads", rv == 0 &&
	    strcmp(c.maildir, "/tmp/mail") == 0 &&
	    strcmp(c.path, path) == 0 && strcmp(c.basedir, "/tmp") == 0);
	if (rv == 0)
		config_free(&c);

	f = fopen(path, "w");
	fputs("maildir = \"m\";", f);
	fputc('\0', f);
	fputs("loglevel = 9;\n", f);
	fclose(f);
	rv = config_load_file(path, &c, err, sizeof(err));
	CHECK("NUL byte refused", rv == -1 && strstr(err, "NUL") != NULL);

	f = fopen(path, "w");
	for (i = 0; i < 70000; i++)
		fputs("# padding padding\n", f);
	fclose(f);
	rv = config_load_file(path, &c, err, sizeof(err));
	CHECK("over 1 MiB refused", rv == -1 &&
	    strstr(err, "larger than") != NULL);
	(void)unlink(path);

	rv = config_load_string("", "", &c, err, sizeof(err));
	CHECK("empty config path", rv == -1);
	rv = config_load_string("loglevel = 9;", PATH, &c, NULL, 0);
	CHECK("no error buffer", rv == -1 && is_zero(&c));
	rv = load("loglevel = 9;", &c, err, 8);
	CHECK("short error buffer", rv == -1 && strlen(err) == 7);
}

/* The smarthost's TLS policy and CA bundle. */
static void
test_relaytls(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load("", &c, err, sizeof(err));
	CHECK("default smtprelaytls may", rv == 0 &&
	    c.relaytls == RELAYTLS_MAY);
	CHECK("default smtprelaycafile", rv == 0 && strcmp(c.relaycafile,
	    "/etc/ssl/certs/ca-certificates.crt") == 0);
	config_free(&c);
	rv = load("smtprelaytls = \"verify\";\n"
	    "smtprelaycafile = \"/etc/pymaild/ca.pem\";\n",
	    &c, err, sizeof(err));
	CHECK("smtprelaytls verify", rv == 0 &&
	    c.relaytls == RELAYTLS_VERIFY &&
	    strcmp(c.relaycafile, "/etc/pymaild/ca.pem") == 0);
	config_free(&c);
	rv = load("smtprelaytls = \"none\";\n", &c, err, sizeof(err));
	CHECK("smtprelaytls none", rv == 0 && c.relaytls == RELAYTLS_NONE);
	config_free(&c);
	CHECK("default smtprelayauth none", load("", &c, err,
	    sizeof(err)) == 0 && c.relayauth == NULL);
	config_free(&c);
	rv = load("smtprelaytls = \"verify\";\n"
	    "smtprelayauth = \"/etc/pymaild/relay.auth\";\n",
	    &c, err, sizeof(err));
	CHECK("smtprelayauth with verify", rv == 0 && c.relayauth != NULL &&
	    strcmp(c.relayauth, "/etc/pymaild/relay.auth") == 0);
	config_free(&c);
	rv = load("smtprelaytls = \"none\";\nsmtprelayauth = \"\";\n",
	    &c, err, sizeof(err));
	CHECK("smtprelayauth empty: none", rv == 0 && c.relayauth == NULL);
	config_free(&c);
	check_error("smtprelayauth with may",
	    "smtprelayauth = \"/etc/pymaild/relay.auth\";\n",
	    PATH ":1: key 'smtprelayauth': needs smtprelaytls \"verify\" "
	    "(or \"none\" for a smarthost on a loopback address)");
	check_error("smtprelaytls unknown",
	    "smtprelaytls = \"yes\";\n",
	    PATH ":1: key 'smtprelaytls': must be \"may\", \"verify\" "
	    "or \"none\"");
}

static void
test_dnsbl(void)
{
	struct config	 c;
	char		 err[512];
	int		 rv;

	rv = load("", &c, err, sizeof(err));
	CHECK("default: no dnsbl, no greetdelay", rv == 0 && c.ndnsbl == 0 &&
	    c.greetdelay == 0);
	config_free(&c);
	rv = load("dnsbl = [ \"Zen.Example\", \"bl.example.org\" ];\n",
	    &c, err, sizeof(err));
	CHECK("dnsbl lower-cased, greetdelay 2", rv == 0 && c.ndnsbl == 2 &&
	    strcmp(c.dnsbl[0], "zen.example") == 0 && c.greetdelay == 2);
	config_free(&c);
	rv = load("dnsbl = [ \"zen.example\" ];\ngreetdelay = 0;\n", &c,
	    err, sizeof(err));
	CHECK("greetdelay 0 with dnsbl", rv == 0 && c.greetdelay == 0);
	config_free(&c);
	rv = load("greetdelay = 5;\n", &c, err, sizeof(err));
	CHECK("greetdelay alone", rv == 0 && c.ndnsbl == 0 &&
	    c.greetdelay == 5);
	config_free(&c);
	check_error("dnsbl not a name", "dnsbl = [ \"bad zone\" ];\n",
	    PATH ":1: key 'dnsbl': 'bad zone' is not a valid DNS zone name");
	check_error("dnsbl too many", "dnsbl = [ \"a.x\", \"b.x\", \"c.x\", "
	    "\"d.x\", \"e.x\", \"f.x\", \"g.x\", \"h.x\", \"i.x\" ];\n",
	    PATH ":1: key 'dnsbl': at most 8 zones");
	check_error("greetdelay too long", "greetdelay = 61;\n",
	    PATH ":1: key 'greetdelay': must be an integer from 0 to 60");
}

int
main(void)
{
	test_minimal();
	test_empty();
	test_every_key();
	test_paths();
	test_errors();
	test_big_integers();
	test_hostport();
	test_netmask();
	test_localdomain();
	test_files();
	test_relaytls();
	test_dnsbl();
	UNIT_EXIT();
}
