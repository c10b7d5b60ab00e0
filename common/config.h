/*
 * pymaild configuration (DESIGN.md A2), read with libconfig.
 */
#ifndef PYMAILD_CONFIG_H
#define PYMAILD_CONFIG_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

/* One entry of noauthhosts: an address with a prefix length. */
struct netmask {
	int		af;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network byte order, masked */
	int		bits;		/* prefix length */
};

#define CONFIG_TLS_PAIRS	2

struct config {
	char		*path;		/* the file this came from */
	char		*basedir;	/* its folder: relative paths start here */

	char		*serverhostname;
	char		**localdomains;	/* lower-cased */
	size_t		 nlocaldomains;
	char		**listen;	/* numeric addresses */
	size_t		 nlisten;
	int		 smtpserverport;
	int		 pop3serverport;
	int		 requireauth;
	struct netmask	*noauthhosts;
	size_t		 nnoauthhosts;
	int		 usesmtprelay;
	char		*smtprelay;	/* as written; "" when unset */
	char		*relayhost;	/* host part of smtprelay, NULL when unset */
	int		 relayport;	/* port part, default 25 */
	long long	 smtpmaxmailsize;
	char		*maildir;	/* absolute */
	char		*spooldir;	/* absolute */
	char		*pidfile;	/* absolute */
	char		*controlsocket;	/* absolute */
	char		*postmaster;
	char		*logfile;	/* "syslog" or an absolute path */
	int		 loglevel;
	char		*user;
	char		*queueuser;
	char		*outbounduser;	/* the outbound client's: owns nothing */
	char		*resolver;	/* as written; "" = /etc/resolv.conf */
	char		*resolverhost;	/* numeric address, NULL when unset */
	int		 resolverport;	/* default 53 */
	int		 outboundport;
	long long	 maxqueuetime;
	int		 maxsessions;
	int		 maxsessionsperip;
	int		 timeout;
	int		 retrymin;	/* first retry of deferred mail, s */
	int		 retrymax;	/* longest interval between retries */
	/* TLS: up to CONFIG_TLS_PAIRS certificate chains with their keys
	 * (say one RSA and one ECDSA), paired by position; absolute paths.
	 * ntls == 0: no TLS, and none of the TLS ports is opened. */
	char		*tls_cert[CONFIG_TLS_PAIRS];
	char		*tls_key[CONFIG_TLS_PAIRS];
	size_t		 ntls;
	int		 submissionport;	/* STARTTLS, AUTH needed; 0: off */
	int		 smtpsport;	/* implicit TLS, AUTH needed; 0: off */
	int		 pop3sport;	/* implicit TLS; 0: off */
	/* TLS to the smarthost: RELAYTLS_MAY (opportunistic, as to any
	 * MX), _VERIFY (STARTTLS required, the certificate must chain to
	 * relaycafile and name relayhost) or _NONE (never STARTTLS). */
	int		 relaytls;
	char		*relaycafile;	/* absolute; read by outbound */
	char		*relayauth;	/* absolute, NULL: no AUTH; parent's */
	/* Several hosts share maildir: -n checks what must stay local. */
	int		 sharedstore;
	/* SPF (and to come, DKIM and DMARC) of mail received on the SMTP
	 * port from others: on unless set false. */
	int		 authchecks;
	/* DMARC p=reject honoured with 550 5.7.1 (default on). */
	int		 dmarcreject;
	/* An SPF fail refused with 550 5.7.23 (default off: marked). */
	int		 spfreject;
	char		*mxcachefile;	/* absolute; default maildir/mxservers */
	/* DNS blocklists asked at connect on the SMTP port (lower-cased
	 * zones, at most CONFIG_DNSBL_MAX), and the wait before the 220
	 * that catches clients talking first: seconds, 0 = none; 2 by
	 * default when dnsbl is set, else 0. */
	char		**dnsbl;
	size_t		 ndnsbl;
	int		 greetdelay;
	/* DKIM signing keys: at most one RSA and one Ed25519 per domain
	 * (the parent reads the files and tells which is which). */
	struct config_dkim	*dkim;
	size_t		 ndkim;
};

#define CONFIG_DNSBL_MAX	8
#define CONFIG_GREETDELAY_MAX	60

/* One entry of the dkim list. */
struct config_dkim {
	char		*domain;	/* lower-cased, a local domain */
	char		*selector;	/* a DNS label, lower-cased */
	char		*key;		/* absolute; the parent's to read */
};
#define CONFIG_DKIM_MAX	64

#define RELAYTLS_MAY	0
#define RELAYTLS_VERIFY	1
#define RELAYTLS_NONE	2

/*
 * Load and validate. On failure return -1 and write one line to err naming
 * the file, the line (when known) and the key, e.g.
 *   "/etc/pymaild.conf:7: unknown key 'smtpport'"
 * On success fill *conf (every key defaulted) and return 0.
 */
int	 config_load_file(const char *path, struct config *conf,
	    char *err, size_t errlen);
/* Same, from text already read; path names the file in messages and gives
 * the folder relative paths are resolved from. */
int	 config_load_string(const char *text, const char *path,
	    struct config *conf, char *err, size_t errlen);
void	 config_free(struct config *conf);

int	 config_is_localdomain(const struct config *conf, const char *domain);
/* Does this peer address match noauthhosts? */
int	 config_noauth_match(const struct config *conf,
	    const struct sockaddr *sa);
/* Parse "a.b.c.d/n" or "v6/n" or a plain address (full-length prefix). */
int	 netmask_parse(const char *s, struct netmask *out);
int	 netmask_match(const struct netmask *nm, const struct sockaddr *sa);

#endif
