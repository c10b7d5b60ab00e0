/*
 * The mailbox policy (DESIGN.md A3, A7): may this user's mailbox take a
 * message of this size? One decision, made by the parent both when smtpd
 * asks at RCPT (and again at end of DATA, the size then known) and when
 * queued asks it to deliver, so the answer cannot differ between them.
 * Pure: the caller gathers the facts; no I/O.
 *
 * And the one table of what each verdict says: smtpd's RCPT reply, its
 * per-recipient reason and summary at end of DATA, the delivery reason
 * that becomes a DSN.
 */
#ifndef PYMAILD_POLICY_H
#define PYMAILD_POLICY_H

#include <stddef.h>
#include <stdint.h>

struct mboxopts;

/*
 * The verdict (RCPT_* of proto.h), checks in this order: the user
 * exists, its options could be read (o not NULL), the mailbox is
 * enabled, size is within maxmailsize, used + size is within the quota
 * (used < 0: the usage could not be measured). size is 0 when unknown
 * (RCPT without SIZE=): a mailbox already at its quota is full then.
 */
uint32_t	 mbox_policy(const struct mboxopts *o, long long used,
		    long long size, int exists);

struct policy_reply {
	const char	*rcpt;	/* at RCPT: code and enhanced code */
	const char	*late;	/* at end of DATA and at delivery */
	const char	*text;
	int		 perm;	/* at delivery: bounce, or try again later */
};

/* The replies of a verdict; one out of range reads as RCPT_TEMPFAIL. */
const struct policy_reply	*policy_reply(uint32_t verdict);
/* "CODE ENH text" of a verdict, at RCPT or late; snprintf's value. */
int		 policy_format(uint32_t verdict, int late, char *buf,
		    size_t len);

/* A bit per verdict, for policy_summary. */
#define POLICY_CAUSE(verdict)	((verdict) < 32 ? 1u << (verdict) : 0u)

/*
 * The end-of-DATA reply when no recipient can take the message: it
 * names the causes given (POLICY_CAUSE bits of the refused recipients'
 * verdicts) and no other; *result is the word of the session's log line.
 */
const char	*policy_summary(unsigned int causes, const char **result);

#endif
