/*
 * outbound: the SMTP client that relays mail to other domains (DESIGN.md
 * B2). queued hands it one attempt at a time: one message (a read-only
 * descriptor) and the recipients of one domain; it asks mxcache for the
 * hosts, speaks SMTP to them, and answers one result per recipient. It
 * holds no file, no spool path and no account that owns one: a process
 * that parses what any server in the world sends must not reach more
 * than the messages it is relaying.
 */
#ifndef PYMAILD_OUTBOUND_H
#define PYMAILD_OUTBOUND_H

#include <sys/queue.h>

#include <limits.h>

#include "chan.h"
#include "outmsg.h"
#include "proto.h"
#include "tlsamsg.h"

/* One address to try: an MX host, a domain's own address, the relay. */
struct host {
	char	host[256];
	char	addr[64];
	int	port;
	int	pref;		/* MX preference; HOST_RELAY: the smarthost */
	int	notls;		/* its handshake failed: plaintext now */
	char	tlserror[96];	/* why, for the last error */
	int	dane;		/* DANE_* */
	struct tlsa_reply *tlsa;	/* DANE_REQUIRED: the records */
};

/* What DNSSEC says of a host's TLS (RFC 7672) */
#define DANE_UNASKED	0	/* its TLSA records not asked yet */
#define DANE_OFF	1	/* no authentic TLSA: opportunistic TLS */
#define DANE_REQUIRED	2	/* TLS, and a certificate matching them */
#define HOST_RELAY	INT_MAX

/* Per recipient of an attempt, while it runs. */
enum attempt_result {
	AR_UNSETTLED,	/* not answered yet, or the host failed */
	AR_ACCEPTED,	/* 2xx to RCPT, waiting for the end of DATA */
	AR_DELIVERED,	/* 2xx after the final dot */
	AR_FINAL,	/* 5xx: failed for good */
	AR_LATER	/* 4xx: try again later */
};

struct smtpc;

/* Delivering one domain's recipients of one message. */
struct attempt {
	TAILQ_ENTRY(attempt)	 entry;
	uint32_t		 id;		/* queued's */
	uint32_t		 req;		/* the MX lookup */
	char			 qid[QUEUE_ID_LEN + 1];
	char			 sender[ADDR_PATH_MAX];
	char			 domain[OUT_DOMAIN_MAX + 1];
	long long		 size;
	int			 datafd;	/* the message, read-only */
	char			*prefix;	/* DKIM-Signature fields sent
						   first, or NULL */
	size_t			 prefixlen;
	char			(*rcpt)[ADDR_PATH_MAX];
	size_t			 nrcpts;
	enum attempt_result	*result;
	char			(*reason)[OUT_TEXT_MAX + 1];
	struct host		 hosts[MX_MAX_HOSTS + 1];
	int			 nhosts;
	int			 cur;
	char			 lasterror[OUT_TEXT_MAX + 1];
	char			 tls[80];	/* how the settling session
						   went: "no", or version
						   and cipher */
	const char		*dane;		/* and DANE: NULL, or
						   "verified", "unusable" */
	uint32_t		 tlsareq;	/* the TLSA lookup */
	struct smtpc		*sess;		/* the session, or NULL */
	int			 cancelled;	/* removed from the queue:
						   no further host */
};

/* outbound.c */
extern struct chan	queued_chan, mxcache_chan;

/* smtpc.c: IMSG_RELAY_CRED_REPLY from the parent; -1 when malformed */
int	smtpc_cred_reply(struct imsg *);

/* attempt.c */
void	attempt_init(void);
void	attempt_reloaded(void);
uint32_t attempt_count(void);
int	attempt_new(struct imsg *);		/* IMSG_OUT_ATTEMPT */
int	attempt_mx_reply(struct imsg *);	/* IMSG_MX_REPLY */
int	attempt_tlsa_reply(struct imsg *);	/* IMSG_TLSA_REPLY */
int	attempt_cancel(struct imsg *);		/* IMSG_OUT_CANCEL */
void	attempt_host_failed(struct attempt *, const char *why);
void	attempt_host_done(struct attempt *);
void	attempt_host_again(struct attempt *);
void	attempt_rcpt_final(struct attempt *, size_t idx, const char *why);
void	attempt_rcpt_later(struct attempt *, size_t idx, const char *why);
void	attempt_all_final(struct attempt *, const char *why);
void	attempt_accepted_result(struct attempt *, int code, const char *why);

/* smtpc.c */
void	smtpc_start(struct attempt *);
void	smtpc_cancel(struct smtpc *);

#endif
