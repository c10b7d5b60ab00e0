/*
 * Every request the parent takes from a helper, in one table: which roles
 * may send it, whether a descriptor may come with it, and who answers.
 * A type not listed here, or sent by a role not listed for it, is a
 * compromised helper: the channel closes and pymaild stops (fail closed).
 */
#include "log.h"
#include "pymaild.h"

#define ROLE(r)		(1u << (r))
/* Every helper, those added later too. */
#define ROLE_HELPERS	(((1u << PROC_COUNT) - 1) & ~ROLE(PROC_PARENT))

struct request {
	uint32_t	 roles;		/* ROLE() bits of who may send it */
	int		 takes_fd;	/* may carry a descriptor */
	int		(*handler)(struct child *, struct imsg *);
};

/* Indexed by type, so a lookup is one bounds check and one load. */
static const struct request requests[IMSG_TYPE_MAX] = {
	[IMSG_HELLO] = { ROLE(PROC_SMTPD) | ROLE(PROC_POP3D) |
	    ROLE(PROC_QUEUED) | ROLE(PROC_MXCACHE) | ROLE(PROC_OUTBOUND), 0,
	    parent_hello },
	/* mxcache is never asked (control.c asks the others). */
	[IMSG_STATS_REPLY] = { ROLE(PROC_SMTPD) | ROLE(PROC_POP3D) |
	    ROLE(PROC_QUEUED) | ROLE(PROC_OUTBOUND), 0, control_stats },
	[IMSG_AUTH] = { ROLE(PROC_SMTPD) | ROLE(PROC_POP3D), 0,
	    store_auth },
	[IMSG_RCPT_CHECK] = { ROLE(PROC_SMTPD), 0, store_rcpt_check },
	[IMSG_POP3_LOGIN] = { ROLE(PROC_POP3D), 0, mailbox_login },
	[IMSG_POP3_OPEN] = { ROLE(PROC_POP3D), 0, mailbox_open },
	[IMSG_POP3_UPDATE] = { ROLE(PROC_POP3D), 0, mailbox_update },
	[IMSG_POP3_RELEASE] = { ROLE(PROC_POP3D), 0, mailbox_release },
	/* The message to deliver, read-only. */
	[IMSG_DELIVER] = { ROLE(PROC_QUEUED), 1, deliver_request },
	/* The whole cache, a memfd. */
	[IMSG_MX_SAVE] = { ROLE(PROC_MXCACHE), 1, mxstore_save },
	[IMSG_MX_REFRESH_DONE] = { ROLE(PROC_MXCACHE), 0,
	    mxstore_refresh_done },
	/* The answer to a pymailadm remove, hold or release. */
	[IMSG_QUEUE_OP_REPLY] = { ROLE(PROC_QUEUED), 0, control_queue_reply },
	/* The helpers' figures for pymailadm stats. */
	[IMSG_METRICS_REPLY] = { ROLE(PROC_SMTPD) | ROLE(PROC_POP3D) |
	    ROLE(PROC_QUEUED), 0, control_metrics_reply },
	/* Each helper moved to the new log file. */
	[IMSG_LOG_REOPENED] = { ROLE_HELPERS, 0, logfile_confirmed },
	/* A removed message: its local deliveries are not to finish. */
	[IMSG_DELIVER_CANCEL] = { ROLE(PROC_QUEUED), 0, deliver_cancel },
	/* The smarthost's credentials, for one session. */
	[IMSG_RELAY_CRED] = { ROLE(PROC_OUTBOUND), 0, relayauth_request },
	/*
	 * Not here: IMSG_TLS_SIGN, which smtpd and pop3d send on their
	 * signing socket only, where pymaild/tlskeys.c takes it and nothing
	 * else; on this channel it is hostile like any type not listed.
	 */
};

static const struct request *
request_find(uint32_t type)
{
	if (type >= IMSG_TYPE_MAX || requests[type].handler == NULL)
		return NULL;
	return &requests[type];
}

int
request_takes_fd(uint32_t type)
{
	const struct request	*rq = request_find(type);

	return rq != NULL && rq->takes_fd;
}

int
request_dispatch(struct child *c, struct imsg *im)
{
	const struct request	*rq = request_find(im->hdr.type);

	if (rq == NULL || !(rq->roles & ROLE(c->role))) {
		log_warnx("%s sent a request it may not send (type %u)",
		    proc_names[c->role], im->hdr.type);
		return -1;
	}
	return rq->handler(c, im);
}
