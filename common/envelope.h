/*
 * Queue envelopes: the plain-text file format of the queue, shared by
 * queued (which writes them) and pymailadm (which lists them, even with
 * the daemon stopped).
 */
#ifndef PYMAILD_ENVELOPE_H
#define PYMAILD_ENVELOPE_H

#include <sys/queue.h>

#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "proto.h"
#include "userdb.h"

#define ENV_MAX_RCPTS	1000
#define ENV_TEXT_MAX	(256 * 1024)

enum rcpt_status {
	RS_PENDING,	/* to be delivered */
	RS_DONE,	/* delivered */
	RS_FAILED,	/* failed for good, bounce not yet sent */
	RS_BOUNCED	/* failed for good, bounce sent (or none due) */
};

struct envrcpt {
	char		 address[ADDR_PATH_MAX];
	char		 user[USER_NAME_MAX + 1];	/* "" = remote */
	enum rcpt_status status;
	char		 reason[256];
	int		 inflight;
};

struct envelope {
	TAILQ_ENTRY(envelope)	 entry;
	char			 id[QUEUE_ID_LEN + 1];
	time_t			 created;
	char			 sender[ADDR_PATH_MAX];	/* "" = <> */
	char			 helo[256];
	char			 client[64];
	char			 protocol[16];
	char			 session[17];
	long long		 size;
	long long		 datasize;	/* octets of msg/ID once committed */
	int			 attempts;
	time_t			 next_attempt;
	char			 lasterror[256];
	struct envrcpt		*rcpts;
	size_t			 nrcpts;
	int			 inflight;	/* deliveries under way */
	int			 waiting;	/* on the retry list */
	int			 ready;		/* on the run list */
	const char		*blocked_on;	/* on the blocked list: the
						 * domain (in rcpts) whose
						 * slots are all taken */
	time_t			 runstart;	/* when it last ran */
	int			 handed_out;	/* outbound got a descriptor */
	int			 held;		/* pymailadm hold: no attempt
						 * until released (kept) */
	int			 parked;	/* on the runner's hold list */
	int			 removed;	/* pymailadm remove, while
						 * something was under way */
	int64_t			 committed_us;	/* wall clock of the 250, for
						 * stats; 0 once read back
						 * from disk (then created) */
	char			*dkim;		/* DKIM-Signature lines made
						 * at the commit ('\n' apart,
						 * unfolded), or NULL */
	char			*authres;	/* smtpd's Authentication-
						 * Results field, folded, no
						 * final CRLF; or NULL */
};

TAILQ_HEAD(envlist, envelope);

struct envelope *envelope_new(const char *id);
void	envelope_free(struct envelope *);
struct envrcpt *envelope_add_rcpt(struct envelope *, const char *address,
	    const char *user);
/* Text form; returns a malloc'd NUL-terminated string. */
char	*envelope_format(const struct envelope *);
/* Parse; -1 with a reason in why. Addresses must be ones smtpd accepts;
 * they are kept in the canonical form addr_format writes. */
int	 envelope_parse(const char *text, struct envelope *, char *why,
	    size_t whylen);
/* Safe to store in the text form: no control characters, bounded. */
int	 envelope_field_ok(const char *s, size_t max);

#endif
