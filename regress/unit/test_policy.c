/*
 * The mailbox policy (common/policy.c): the order of its checks, the
 * quota's edges and its arithmetic at the extremes, and the table of
 * replies that smtpd and the parent's delivery both read.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "../../common/policy.h"
#include "../../common/proto.h"
#include "../../common/userdb.h"
#include "unit.h"

static struct mboxopts
opts(int enabled, long long maxmailsize, long long mailboxsize)
{
	struct mboxopts	o;

	memset(&o, 0, sizeof(o));
	o.enabled = enabled;
	o.maxmailsize = maxmailsize;
	o.mailboxsize = mailboxsize;
	return o;
}

static void
test_order(void)
{
	struct mboxopts	off = opts(0, 10, 100), on = opts(1, 10, 100);

	/* Each check wins over every later one. */
	CHECK("unknown before unreadable", mbox_policy(NULL, -1, 0, 0) ==
	    RCPT_NOUSER);
	CHECK("unknown before disabled", mbox_policy(&off, 100, 50, 0) ==
	    RCPT_NOUSER);
	CHECK("unreadable options", mbox_policy(NULL, 0, 1, 1) ==
	    RCPT_TEMPFAIL);
	CHECK("disabled before too big", mbox_policy(&off, 100, 50, 1) ==
	    RCPT_DISABLED);
	CHECK("disabled before unknown usage", mbox_policy(&off, -1, 1, 1) ==
	    RCPT_DISABLED);
	CHECK("too big before full", mbox_policy(&on, 100, 11, 1) ==
	    RCPT_TOOBIG);
	CHECK("too big before unknown usage", mbox_policy(&on, -1, 11, 1) ==
	    RCPT_TOOBIG);
	CHECK("unknown usage", mbox_policy(&on, -1, 10, 1) == RCPT_TEMPFAIL);
	CHECK("fits", mbox_policy(&on, 0, 10, 1) == RCPT_OK);
}

static void
test_quota(void)
{
	struct mboxopts	o = opts(1, 1000, 100), huge;

	CHECK("exactly to the quota", mbox_policy(&o, 90, 10, 1) == RCPT_OK);
	CHECK("one octet over", mbox_policy(&o, 91, 10, 1) == RCPT_OVERQUOTA);
	CHECK("size unknown, room left", mbox_policy(&o, 99, 0, 1) ==
	    RCPT_OK);
	CHECK("size unknown, at the quota", mbox_policy(&o, 100, 0, 1) ==
	    RCPT_OVERQUOTA);
	CHECK("already over", mbox_policy(&o, 500, 1, 1) == RCPT_OVERQUOTA);
	CHECK("maxmailsize exactly", mbox_policy(&o, 0, 1000, 1) ==
	    RCPT_OVERQUOTA);
	o.mailboxsize = 5000;
	CHECK("maxmailsize exactly fits", mbox_policy(&o, 0, 1000, 1) ==
	    RCPT_OK);
	CHECK("maxmailsize + 1", mbox_policy(&o, 0, 1001, 1) == RCPT_TOOBIG);
	CHECK("negative size", mbox_policy(&o, 0, -1, 1) == RCPT_TOOBIG);
	/* No sum may wrap round into "fits". */
	huge = opts(1, LLONG_MAX, LLONG_MAX);
	CHECK("no overflow: full", mbox_policy(&huge, LLONG_MAX - 1, LLONG_MAX,
	    1) == RCPT_OVERQUOTA);
	CHECK("no overflow: fits", mbox_policy(&huge, 1, LLONG_MAX - 1, 1) ==
	    RCPT_OK);
	CHECK("no overflow: one over", mbox_policy(&huge, 2, LLONG_MAX - 1,
	    1) == RCPT_OVERQUOTA);
	o = opts(1, 10, 0);
	CHECK("zero quota", mbox_policy(&o, 0, 0, 1) == RCPT_OVERQUOTA);
}

static int
formats(uint32_t verdict, int late, const char *want)
{
	char	buf[256];
	int	n;

	n = policy_format(verdict, late, buf, sizeof(buf));
	return n == (int)strlen(want) && strcmp(buf, want) == 0;
}

static void
test_table(void)
{
	uint32_t	v;

	/* The texts the clients and the regress tests know. */
	CHECK("rcpt nouser", formats(RCPT_NOUSER, 0, "550 5.1.1 User unknown"));
	CHECK("rcpt disabled", formats(RCPT_DISABLED, 0,
	    "550 5.2.1 Mailbox disabled"));
	CHECK("rcpt full", formats(RCPT_OVERQUOTA, 0, "452 4.2.2 Mailbox full"));
	CHECK("rcpt too big", formats(RCPT_TOOBIG, 0,
	    "552 5.3.4 Message too big for this mailbox"));
	CHECK("rcpt tempfail", formats(RCPT_TEMPFAIL, 0,
	    "451 4.3.0 Temporary failure, try again later"));
	CHECK("late full", formats(RCPT_OVERQUOTA, 1, "552 5.2.2 Mailbox full"));
	CHECK("late too big", formats(RCPT_TOOBIG, 1,
	    "552 5.3.4 Message too big for this mailbox"));
	CHECK("late nouser", formats(RCPT_NOUSER, 1, "550 5.1.1 User unknown"));
	CHECK("out of range is tempfail", policy_reply(99) ==
	    policy_reply(RCPT_TEMPFAIL) && policy_reply(UINT32_MAX) ==
	    policy_reply(RCPT_TEMPFAIL));
	CHECK("format bounded", policy_format(RCPT_TOOBIG, 1, NULL, 0) ==
	    (int)strlen("552 5.3.4 Message too big for this mailbox"));
	/* Every refusal is final or not as its late code says. */
	for (v = RCPT_NOUSER; v <= RCPT_TEMPFAIL; v++)
		CHECK("late code matches perm",
		    (policy_reply(v)->late[0] == '5') == policy_reply(v)->perm &&
		    policy_reply(v)->rcpt[0] != '2' &&
		    policy_reply(v)->late[4] == policy_reply(v)->late[0]);
	CHECK("ok is not a refusal", policy_reply(RCPT_OK)->rcpt[0] == '2' &&
	    !policy_reply(RCPT_OK)->perm);
}

static int
sums(unsigned int causes, const char *want, const char *wantres)
{
	const char	*res = NULL, *s;

	s = policy_summary(causes, &res);
	return strcmp(s, want) == 0 && res != NULL && strcmp(res, wantres) == 0;
}

static void
test_summary(void)
{
	unsigned int	off = POLICY_CAUSE(RCPT_DISABLED);
	unsigned int	full = POLICY_CAUSE(RCPT_OVERQUOTA);
	unsigned int	big = POLICY_CAUSE(RCPT_TOOBIG);

	CHECK("summary full", sums(full, "552 5.2.2 Mailbox full for every "
	    "recipient", "rejected-quota"));
	CHECK("summary big", sums(big, "552 5.2.2 Message exceeds the size "
	    "limit of every recipient", "rejected-quota"));
	CHECK("summary full and big", sums(full | big, "552 5.2.2 Message "
	    "exceeds the mailbox quota or size limit of every recipient",
	    "rejected-quota"));
	CHECK("summary disabled", sums(off, "550 5.2.1 Mailbox disabled for "
	    "every recipient", "rejected-disabled"));
	CHECK("summary disabled and full", sums(off | full, "550 5.2.0 No "
	    "recipient can take this message (mailbox disabled, full or over "
	    "its size limit)", "rejected-disabled"));
	CHECK("summary disabled and big", sums(off | big, "550 5.2.0 No "
	    "recipient can take this message (mailbox disabled, full or over "
	    "its size limit)", "rejected-disabled"));
}

int
main(void)
{
	test_order();
	test_quota();
	test_table();
	test_summary();
	UNIT_EXIT();
}
