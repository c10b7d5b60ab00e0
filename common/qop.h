/*
 * Queue operations asked by an administrator (pymailadm remove, hold,
 * release, and the sync before queue and show): the payload of IMSG_CTL_QUEUE and IMSG_QUEUE_OP, and which
 * queued messages a request names. Shared by pymailadm (which also acts
 * on the spool itself when the daemon is stopped), the parent (which
 * checks the shape before passing it on) and queued.
 */
#ifndef PYMAILD_QOP_H
#define PYMAILD_QOP_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "imsg.h"

#define QOP_REMOVE	1
#define QOP_HOLD	2
#define QOP_RELEASE	3
/*
 * Give the messages the journal alone holds (the first half second of
 * a queued message) their files, so that pymailadm's listing of the
 * spool that follows sees every message the daemon has acknowledged.
 */
#define QOP_SYNC	4

#define QMATCH_NONE	0	/* QOP_SYNC: names no message */

#define QMATCH_ID	1	/* the ids listed */
#define QMATCH_FROM	2	/* the sender matches the pattern */
#define QMATCH_TO	3	/* a recipient matches the pattern */

#define QOP_IDS_MAX	256	/* one request; pymailadm sends several */
#define QOP_PATTERN_MAX	512

struct qop {
	uint32_t	op;
	uint32_t	match;
	uint32_t	uid;		/* who asked (IMSG_QUEUE_OP only) */
	char		ids[QOP_IDS_MAX][QUEUE_ID_LEN + 1];
	size_t		nids;
	char		pattern[QOP_PATTERN_MAX + 1];
};

/* 16 lower-case hex digits. */
int	qop_id_ok(const char *);
/* A pattern: printable, bounded; "<>" (or "") names the null sender. */
int	qop_pattern_ok(const char *);
/* Read a payload: withuid for IMSG_QUEUE_OP. 0, or -1 when malformed. */
int	qop_read(const void *payload, size_t len, int withuid, struct qop *);
void	qop_build(struct msgbuild *, const struct qop *, int withuid);
/* For QMATCH_FROM and QMATCH_TO: does e match? Case does not count. */
int	qop_matches(const struct qop *, const struct envelope *);
const char *qop_verb(uint32_t op);	/* "removed", "held", "released" */

#endif
