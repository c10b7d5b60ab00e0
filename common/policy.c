#include <stdint.h>
#include <stdio.h>

#include "policy.h"
#include "proto.h"
#include "userdb.h"

uint32_t
mbox_policy(const struct mboxopts *o, long long used, long long size,
    int exists)
{
	if (!exists)
		return RCPT_NOUSER;
	if (o == NULL)
		return RCPT_TEMPFAIL;
	if (!o->enabled)
		return RCPT_DISABLED;
	if (size < 0 || size > o->maxmailsize)
		return RCPT_TOOBIG;
	if (used < 0)
		return RCPT_TEMPFAIL;
	/* Subtraction, not used + size: neither may overflow. */
	if (used >= o->mailboxsize || size > o->mailboxsize - used)
		return RCPT_OVERQUOTA;
	return RCPT_OK;
}

/*
 * Over quota is temporary at RCPT (the user may make room before the
 * client tries again) but final once the message is here: it is not
 * kept waiting for a mailbox that may never shrink.
 */
static const struct policy_reply replies[] = {
	[RCPT_OK] =	   { "250 2.1.5", "250 2.0.0", "Ok", 0 },
	[RCPT_NOUSER] =	   { "550 5.1.1", "550 5.1.1", "User unknown", 1 },
	[RCPT_DISABLED] =  { "550 5.2.1", "550 5.2.1", "Mailbox disabled", 1 },
	[RCPT_OVERQUOTA] = { "452 4.2.2", "552 5.2.2", "Mailbox full", 1 },
	[RCPT_TOOBIG] =	   { "552 5.3.4", "552 5.3.4",
			    "Message too big for this mailbox", 1 },
	[RCPT_TEMPFAIL] =  { "451 4.3.0", "451 4.3.0",
			    "Temporary failure, try again later", 0 },
};

const struct policy_reply *
policy_reply(uint32_t verdict)
{
	if (verdict >= sizeof(replies) / sizeof(replies[0]))
		verdict = RCPT_TEMPFAIL;
	return &replies[verdict];
}

int
policy_format(uint32_t verdict, int late, char *buf, size_t len)
{
	const struct policy_reply	*p = policy_reply(verdict);

	return snprintf(buf, len, "%s %s", late ? p->late : p->rcpt, p->text);
}

const char *
policy_summary(unsigned int causes, const char **result)
{
	int	off = (causes & POLICY_CAUSE(RCPT_DISABLED)) != 0;
	int	full = (causes & POLICY_CAUSE(RCPT_OVERQUOTA)) != 0;
	int	big = (causes & POLICY_CAUSE(RCPT_TOOBIG)) != 0;

	*result = off ? "rejected-disabled" : "rejected-quota";
	if (off && (full || big))
		return "550 5.2.0 No recipient can take this message (mailbox "
		    "disabled, full or over its size limit)";
	if (off)
		return "550 5.2.1 Mailbox disabled for every recipient";
	if (full && big)
		return "552 5.2.2 Message exceeds the mailbox quota or size "
		    "limit of every recipient";
	if (big)
		return "552 5.2.2 Message exceeds the size limit of every "
		    "recipient";
	return "552 5.2.2 Mailbox full for every recipient";
}
