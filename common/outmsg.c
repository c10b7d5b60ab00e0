/*
 * IMSG_OUT_* payloads (outmsg.h). Every string that crosses here ends up
 * in an SMTP command, an envelope, a log line or a bounce: the readers
 * refuse control characters outright rather than clean them, since a
 * peer that sends one is not the program we wrote.
 */
#include <string.h>

#include "envelope.h"
#include "imsg.h"
#include "outmsg.h"

static void
out_begin(struct msgread *mr, const void *payload, size_t len)
{
	mr->p = payload;
	mr->len = len;
	mr->off = 0;
	mr->err = 0;
}

static int
is_queue_id(const char *s)
{
	size_t	i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == QUEUE_ID_LEN;
}

/* Printable text that fits its field (NUL-free already: mr_str). */
static int
text_ok(const char *s, size_t size)
{
	return envelope_field_ok(s, size);
}

int
out_read_attempt(const void *payload, size_t len, struct out_attempt *a)
{
	struct msgread	mr;

	out_begin(&mr, payload, len);
	a->id = mr_u32(&mr);
	mr_str(&mr, a->qid, sizeof(a->qid));
	mr_str(&mr, a->sender, sizeof(a->sender));
	mr_str(&mr, a->domain, sizeof(a->domain));
	a->size = mr_u64(&mr);
	a->nrcpts = mr_u32(&mr);
	if (mr_end(&mr) == -1 || !is_queue_id(a->qid) ||
	    !text_ok(a->sender, sizeof(a->sender)) ||
	    a->domain[0] == '\0' || !text_ok(a->domain, sizeof(a->domain)) ||
	    a->nrcpts == 0 || a->nrcpts > ENV_MAX_RCPTS)
		return -1;
	return 0;
}

int
out_read_rcpt(const void *payload, size_t len, struct out_rcpt *r)
{
	struct msgread	mr;

	out_begin(&mr, payload, len);
	r->id = mr_u32(&mr);
	mr_str(&mr, r->address, sizeof(r->address));
	if (mr_end(&mr) == -1 || r->address[0] == '\0' ||
	    !text_ok(r->address, sizeof(r->address)))
		return -1;
	return 0;
}

int
out_read_result(const void *payload, size_t len, struct out_result *r)
{
	struct msgread	mr;

	out_begin(&mr, payload, len);
	r->id = mr_u32(&mr);
	r->index = mr_u32(&mr);
	r->result = mr_u32(&mr);
	mr_str(&mr, r->text, sizeof(r->text));
	if (mr_end(&mr) == -1 || r->result > OUT_FAILED ||
	    !text_ok(r->text, sizeof(r->text)))
		return -1;
	return 0;
}

int
out_read_done(const void *payload, size_t len, struct out_done *d)
{
	struct msgread	mr;

	out_begin(&mr, payload, len);
	d->id = mr_u32(&mr);
	mr_str(&mr, d->lasterror, sizeof(d->lasterror));
	if (mr_end(&mr) == -1 || !text_ok(d->lasterror, sizeof(d->lasterror)))
		return -1;
	return 0;
}

int
out_send_attempt(struct chan *c, const struct out_attempt *a, int fd)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, a->id);
	mb_str(&mb, a->qid);
	mb_str(&mb, a->sender);
	mb_str(&mb, a->domain);
	mb_u64(&mb, a->size);
	mb_u32(&mb, a->nrcpts);
	return chan_send(c, &mb, IMSG_OUT_ATTEMPT, 0, fd);
}

int
out_send_rcpt(struct chan *c, uint32_t id, const char *address)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, id);
	mb_str(&mb, address);
	return chan_send(c, &mb, IMSG_OUT_RCPT, 0, -1);
}

int
out_send_result(struct chan *c, uint32_t id, uint32_t index,
    uint32_t result, const char *text)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, id);
	mb_u32(&mb, index);
	mb_u32(&mb, result);
	mb_str(&mb, text);
	return chan_send(c, &mb, IMSG_OUT_RESULT, 0, -1);
}

int
out_send_done(struct chan *c, uint32_t id, const char *lasterror)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, id);
	mb_str(&mb, lasterror);
	return chan_send(c, &mb, IMSG_OUT_DONE, 0, -1);
}
