/*
 * The configuration (common/config.c), from text in memory: what loads
 * is within the documented ranges, what fails says why on one line.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define CONFIG_TEXT_MAX	(64 * 1024)

static void
check_loaded(const struct config *c)
{
	size_t	i;

	FUZZ_ASSERT(c->smtpserverport >= 1 && c->smtpserverport <= 65535);
	FUZZ_ASSERT(c->pop3serverport >= 1 && c->pop3serverport <= 65535);
	FUZZ_ASSERT(c->outboundport >= 1 && c->outboundport <= 65535);
	FUZZ_ASSERT(c->loglevel >= 0 && c->loglevel <= 3);
	FUZZ_ASSERT(c->smtpmaxmailsize >= 1);
	FUZZ_ASSERT(c->retrymin >= 1 && c->retrymax >= c->retrymin);
	FUZZ_ASSERT(c->maildir != NULL && c->maildir[0] == '/');
	FUZZ_ASSERT(c->spooldir != NULL && c->spooldir[0] == '/');
	FUZZ_ASSERT(c->pidfile != NULL && c->pidfile[0] == '/');
	FUZZ_ASSERT(c->serverhostname != NULL);
	FUZZ_ASSERT(!c->usesmtprelay || c->relayhost != NULL);
	for (i = 0; i < c->nnoauthhosts; i++) {
		FUZZ_ASSERT(c->noauthhosts[i].bits >= 0);
		FUZZ_ASSERT(c->noauthhosts[i].bits <=
		    (c->noauthhosts[i].af == AF_INET ? 32 : 128));
	}
	for (i = 0; i < c->nlocaldomains; i++)
		FUZZ_ASSERT(config_is_localdomain(c, c->localdomains[i]));
}

FUZZ_ENTRY(config)
{
	struct config	 c;
	struct netmask	 nm;
	char		 err[1024], *text;

	if (size > CONFIG_TEXT_MAX)
		return 0;
	text = fuzz_cstr(data, size);
	memset(err, 'x', sizeof(err));
	if (config_load_string(text, "/etc/pymaild.conf", &c, err,
	    sizeof(err)) == 0) {
		check_loaded(&c);
		config_free(&c);
	} else {
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
	}
	if (netmask_parse(text, &nm) == 0)
		FUZZ_ASSERT(nm.bits >= 0 &&
		    nm.bits <= (nm.af == AF_INET ? 32 : 128));
	free(text);
	return 0;
}
