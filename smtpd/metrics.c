/*
 * smtpd's part of pymailadm stats: integers bumped where each event
 * happens, written out as lines only when the parent asks.
 */
#include <string.h>

#include "child.h"
#include "listener.h"
#include "metrics.h"
#include "proto.h"
#include "smtpd.h"

/* End of DATA to the 250: a journal sync is a few milliseconds. */
static const uint64_t data_bounds[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};

struct smtp_counters	smtpcount = {
	.data_latency = { data_bounds, sizeof(data_bounds) /
	    sizeof(data_bounds[0]) }
};

/*
 * Why a connection, a command or a message was refused: the words of
 * the log (result= or reason= of the smtp-in line) where it has one,
 * in the same style otherwise. Order is the output's.
 */
static const char *const refusal_names[] = {
	"maxsessions", "maxsessionsperip", "too-many-errors",
	"too-many-auth-failures", "auth-required", "tls-required", "size",
	"relay-denied",
	"unknown-user", "mailbox-disabled", "mailbox-full", "too-big",
	"tempfail", "too-many-recipients", "rejected-bare-lf",
	"rejected-long-line", "rejected-nul", "rejected-size",
	"rejected-loop", "rejected-disabled", "rejected-quota",
	"rejected-queue", "tempfail-write", "tempfail-queue", "dnsbl",
	"pregreet", "rejected-dmarc", "rejected-spf",
	"rejected-from",
	"other"	/* last: what no word above names */
};
#define REFUSAL_COUNT	(sizeof(refusal_names) / sizeof(refusal_names[0]))

static uint64_t	refusals[REFUSAL_COUNT];

/* A refusal path only, never the path of an accepted message. */
void
smtp_refused(const char *reason)
{
	size_t	i;

	for (i = 0; i < REFUSAL_COUNT - 1; i++)
		if (strcmp(refusal_names[i], reason) == 0)
			break;
	refusals[i]++;
}

/* The mailbox policy's verdicts (RCPT_* of proto.h), in those words. */
void
smtp_refused_verdict(uint32_t verdict)
{
	switch (verdict) {
	case RCPT_NOUSER:
		smtp_refused("unknown-user");
		break;
	case RCPT_DISABLED:
		smtp_refused("mailbox-disabled");
		break;
	case RCPT_OVERQUOTA:
		smtp_refused("mailbox-full");
		break;
	case RCPT_TOOBIG:
		smtp_refused("too-big");
		break;
	default:
		smtp_refused("tempfail");
		break;
	}
}

void
smtp_connected(int kind)
{
	if (kind == LISTEN_SUBMISSION)
		smtpcount.connections[1]++;
	else if (kind == LISTEN_SMTPS)
		smtpcount.connections[2]++;
	else
		smtpcount.connections[0]++;
}

void
smtpd_metrics(struct mtext *t)
{
	static const char *const kinds[] = { "smtp", "submission", "smtps" };
	size_t	i;

	for (i = 0; i < 3; i++)
		mtext_labeled(t, "smtp_connections_total", "listener",
		    kinds[i], smtpcount.connections[i]);
	mtext_value(t, "smtp_sessions_open", listener_sessions());
	for (i = 0; i < REFUSAL_COUNT; i++)
		mtext_labeled(t, "smtp_refusals_total", "reason",
		    refusal_names[i], refusals[i]);
	mtext_labeled(t, "smtp_auth_total", "result", "ok",
	    smtpcount.auth_ok);
	mtext_labeled(t, "smtp_auth_total", "result", "failed",
	    smtpcount.auth_failed);
	mtext_labeled(t, "smtp_auth_total", "result", "blocked",
	    smtpcount.auth_blocked);
	mtext_value(t, "smtp_messages_accepted_total", smtpcount.accepted);
	mtext_hist(t, "smtp_data_reply_seconds", &smtpcount.data_latency);
}
