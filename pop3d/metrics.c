/*
 * pop3d's part of pymailadm stats: integers bumped where each event
 * happens, written out as lines only when the parent asks.
 */
#include "child.h"
#include "listener.h"
#include "metrics.h"
#include "pop3d.h"

struct pop3_counters	pop3count;

void
pop3_connected(int kind)
{
	pop3count.connections[kind == LISTEN_POP3S]++;
}

/* The parent's verdict on a login (POP3_LOGIN_*), in the log's words. */
void
pop3_login_counted(uint32_t result)
{
	switch (result) {
	case POP3_LOGIN_OK:
		pop3count.logins[0]++;
		break;
	case POP3_LOGIN_FAIL:
		pop3count.logins[1]++;
		break;
	case POP3_LOGIN_BLOCKED:
		pop3count.logins[2]++;
		break;
	case POP3_LOGIN_INUSE:
		pop3count.logins[3]++;
		break;
	default:
		pop3count.logins[4]++;
		break;
	}
}

void
pop3d_metrics(struct mtext *t)
{
	static const char *const kinds[] = { "pop3", "pop3s" };
	static const char *const results[] = { "ok", "failed", "blocked",
	    "in-use", "tempfail" };
	size_t	i;

	for (i = 0; i < 2; i++)
		mtext_labeled(t, "pop3_connections_total", "listener",
		    kinds[i], pop3count.connections[i]);
	mtext_value(t, "pop3_sessions_open", listener_sessions());
	for (i = 0; i < 5; i++)
		mtext_labeled(t, "pop3_logins_total", "result", results[i],
		    pop3count.logins[i]);
	mtext_value(t, "pop3_messages_retrieved_total", pop3count.retrieved);
	mtext_value(t, "pop3_retrieved_bytes_total", pop3count.bytes);
	mtext_value(t, "pop3_messages_deleted_total", pop3count.deleted);
}
