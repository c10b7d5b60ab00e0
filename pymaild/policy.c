/*
 * The store's facts about a mailbox, put to the one mailbox policy
 * (common/policy.c): smtpd's RCPT and end-of-DATA checks and the
 * delivery of a message ask here, so they cannot disagree.
 */
#include <sys/types.h>

#include <stdint.h>

#include "log.h"
#include "policy.h"
#include "pymaild.h"

uint32_t
store_mbox_verdict(const char *user, long long size)
{
	struct mboxopts	 o;
	char		 err[512];
	long long	 used;

	/*
	 * An unknown name stops here, before the store keeps anything
	 * about it: a client's guesses must not grow the store's cache.
	 */
	if (!store_user_exists(user))
		return mbox_policy(NULL, -1, size, 0);
	if (store_mboxopts(user, &o, err, sizeof(err)) == -1) {
		log_warnx("mailbox of %s: %s", user, err);
		return mbox_policy(NULL, -1, size, 1);
	}
	/* Counted once, then kept up to date: a cheap look-up after. */
	if ((used = store_usage(user, o.mailboxsize)) < 0)
		log_warn("mailbox of %s: size", user);
	return mbox_policy(&o, used, size, 1);
}
