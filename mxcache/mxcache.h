/*
 * mxcache: answers outbound's MX lookups from memory, asks the resolver
 * (common/mxlookup.c) for what is missing or expired, and hands the
 * whole cache to the parent to keep in MAILDIR/mxservers.
 */
#ifndef PYMAILD_MXCACHE_H
#define PYMAILD_MXCACHE_H

#include <stdint.h>
#include <time.h>

#include "chan.h"
#include "dnsmsg.h"

#include "mxfile.h"
#include "mxlookup.h"

/* cache.c */
void	cache_init(struct mxresolver *);
/* outbound's IMSG_MX_LOOKUP: answered now from memory, or later. */
void	cache_lookup(uint32_t req, const char *domain);
/* The parent's IMSG_MX_REFRESH: every cached domain again, then
 * IMSG_MX_REFRESH_DONE with this peerid. */
void	cache_refresh(uint32_t peerid);
/* The parent's IMSG_MX_LOAD: the file as a descriptor. */
void	cache_load(int fd);
/* Stopping: hand over what was not saved yet. */
void	cache_flush(void);

/* dns.c: the helpers' questions (IMSG_DNS_QUERY) */
struct dns_asker {
	const char	*name;		/* for the log */
	struct chan	*chan;
	unsigned	 lookups;	/* started for it, under way */
	unsigned	 waiters;	/* its questions not answered yet */
	time_t		 refused_at;	/* the last refusal logged */
	unsigned	 refused_quiet;	/* refused since, not logged */
};
void	dns_init(struct mxresolver *);
/* Answered now from memory or a refusal, or later; exactly once. */
void	dns_query(struct dns_asker *, const struct dns_query *);

/* mxcache.c: the messages out */
void	reply_dns(struct dns_asker *, const struct dns_answer *);
void	reply_lookup(uint32_t req, const struct mxentry *e,
	    const char *reason);
void	reply_refresh(uint32_t peerid, unsigned ndomains, unsigned nfailed,
	    const char *reason);
void	send_save(int fd);

#endif
