#include "proto.h"

const char *const proc_names[PROC_COUNT] = {
	"parent", "smtpd", "pop3d", "queued", "mxcache", "outbound"
};

/* The channels between children; the parent talks to every child. */
static const int peers[PROC_COUNT][PROC_COUNT] = {
	[PROC_SMTPD][PROC_QUEUED] = 1,
	[PROC_QUEUED][PROC_SMTPD] = 1,
	/* The outbound SMTP client: attempts from queued, hosts from
	 * mxcache. queued itself needs no DNS. */
	[PROC_QUEUED][PROC_OUTBOUND] = 1,
	[PROC_OUTBOUND][PROC_QUEUED] = 1,
	[PROC_OUTBOUND][PROC_MXCACHE] = 1,
	[PROC_MXCACHE][PROC_OUTBOUND] = 1,
	/* DNS questions of the sessions (blocklists, later SPF, DKIM,
	 * DMARC): mxcache alone holds a resolver socket. */
	[PROC_SMTPD][PROC_MXCACHE] = 1,
	[PROC_MXCACHE][PROC_SMTPD] = 1,
};

int
proc_may_talk(enum proc_role a, enum proc_role b)
{
	if (a == PROC_PARENT || b == PROC_PARENT)
		return a != b;
	return peers[a][b];
}

int
proc_peer_fd(enum proc_role self, enum proc_role peer)
{
	int	fd = PROC_PARENT_FD, r;

	if (peer == PROC_PARENT)
		return PROC_PARENT_FD;
	for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
		if (r == (int)self || !peers[self][r])
			continue;
		fd++;
		if (r == (int)peer)
			return fd;
	}
	return -1;
}
