/*
 * Queue operations: their payload and their matching (qop.h).
 */
#include <fnmatch.h>
#include <string.h>

#include "qop.h"
#include "util.h"

int
qop_id_ok(const char *id)
{
	return strlen(id) == QUEUE_ID_LEN &&
	    strspn(id, "0123456789abcdef") == QUEUE_ID_LEN;
}

int
qop_pattern_ok(const char *p)
{
	return envelope_field_ok(p, QOP_PATTERN_MAX + 1);
}

static void
reader_begin(struct msgread *mr, const void *payload, size_t len)
{
	mr->p = payload;
	mr->len = len;
	mr->off = 0;
	mr->err = 0;
}

/* The ids to the end of the payload: at least one, at most IDS_MAX. */
static int
read_ids(struct msgread *mr, struct qop *q)
{
	q->nids = 0;
	while (mr->off < mr->len && !mr->err && q->nids < QOP_IDS_MAX) {
		mr_str(mr, q->ids[q->nids], sizeof(q->ids[0]));
		if (mr->err || !qop_id_ok(q->ids[q->nids]))
			return -1;
		q->nids++;
	}
	return q->nids == 0 ? -1 : mr_end(mr);
}

int
qop_read(const void *payload, size_t len, int withuid, struct qop *q)
{
	struct msgread	mr;

	memset(q, 0, sizeof(*q));
	reader_begin(&mr, payload, len);
	if (withuid)
		q->uid = mr_u32(&mr);
	q->op = mr_u32(&mr);
	q->match = mr_u32(&mr);
	if (mr.err || q->op < QOP_REMOVE || q->op > QOP_SYNC)
		return -1;
	if ((q->op == QOP_SYNC) != (q->match == QMATCH_NONE))
		return -1;
	switch (q->match) {
	case QMATCH_NONE:
		return mr_end(&mr);
	case QMATCH_ID:
		return read_ids(&mr, q);
	case QMATCH_FROM:
	case QMATCH_TO:
		mr_str(&mr, q->pattern, sizeof(q->pattern));
		if (mr_end(&mr) == -1 || !qop_pattern_ok(q->pattern))
			return -1;
		return 0;
	default:
		return -1;
	}
}

void
qop_build(struct msgbuild *mb, const struct qop *q, int withuid)
{
	size_t	i;

	mb_init(mb);
	if (withuid)
		mb_u32(mb, q->uid);
	mb_u32(mb, q->op);
	mb_u32(mb, q->match);
	if (q->match == QMATCH_NONE)
		return;
	if (q->match != QMATCH_ID) {
		mb_str(mb, q->pattern);
		return;
	}
	for (i = 0; i < q->nids; i++)
		mb_str(mb, q->ids[i]);
}

static int
address_matches(const char *pattern, const char *address)
{
	/* The null sender has no text to match: "<>" names it. */
	if (address[0] == '\0')
		return pattern[0] == '\0' || strcmp(pattern, "<>") == 0;
	return fnmatch(pattern, address, FNM_CASEFOLD) == 0;
}

int
qop_matches(const struct qop *q, const struct envelope *e)
{
	size_t	i;

	if (q->match == QMATCH_FROM)
		return address_matches(q->pattern, e->sender);
	if (q->match != QMATCH_TO)
		return 0;
	for (i = 0; i < e->nrcpts; i++)
		if (address_matches(q->pattern, e->rcpts[i].address))
			return 1;
	return 0;
}

const char *
qop_verb(uint32_t op)
{
	switch (op) {
	case QOP_REMOVE:
		return "removed";
	case QOP_HOLD:
		return "held";
	case QOP_SYNC:
		return "synced";
	default:
		return "released";
	}
}
