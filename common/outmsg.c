/*
 * IMSG_OUT_* payloads (outmsg.h). Every string that crosses here ends up
 * in an SMTP command, an envelope, a log line or a bounce: the readers
 * refuse control characters outright rather than clean them, since a
 * peer that sends one is not the program we wrote.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "imsg.h"
#include "outmsg.h"
#include "util.h"

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

/* The recipients run to the end of the payload, one at least. */
static int
read_rcpts(struct msgread *mr, struct out_attempt *a)
{
	char	addr[ADDR_PATH_MAX];
	size_t	room = 0;

	while (!mr->err && mr->off < mr->len) {
		mr_str(mr, addr, sizeof(addr));
		if (mr->err || addr[0] == '\0' || !text_ok(addr, sizeof(addr)) ||
		    a->nrcpts == ENV_MAX_RCPTS)
			return -1;
		if (a->nrcpts == room) {
			room = room ? room * 2 : 4;
			a->rcpt = xreallocarray(a->rcpt, room, sizeof(*a->rcpt));
		}
		memcpy(a->rcpt[a->nrcpts++], addr, sizeof(addr));
	}
	return a->nrcpts == 0 ? -1 : 0;
}

/*
 * Header fields to send before the message: "" or DKIM-Signature fields,
 * printable lines ending in CRLF, each next line a continuation or
 * another such field. Nothing that could end the header or the data.
 */
static int
dkim_prefix_ok(const char *p)
{
	static const char	name[] = "DKIM-Signature:";
	const char		*q;

	while (*p) {
		if (strncmp(p, name, sizeof(name) - 1) != 0)
			return 0;
		do {
			for (q = p; *q && *q != '\r'; q++)
				if (((unsigned char)*q < 0x20 && *q != '\t') ||
				    (unsigned char)*q >= 0x7f)
					return 0;
			if (q[0] != '\r' || q[1] != '\n')
				return 0;
			p = q + 2;
		} while (*p == '\t' || *p == ' ');
	}
	return 1;
}

int
out_read_attempt(const void *payload, size_t len, struct out_attempt *a)
{
	struct msgread	mr;

	out_begin(&mr, payload, len);
	a->rcpt = NULL;
	a->nrcpts = 0;
	a->id = mr_u32(&mr);
	mr_str(&mr, a->qid, sizeof(a->qid));
	mr_str(&mr, a->sender, sizeof(a->sender));
	mr_str(&mr, a->domain, sizeof(a->domain));
	a->size = mr_u64(&mr);
	mr_str(&mr, a->dkim, sizeof(a->dkim));
	if (mr.err || !is_queue_id(a->qid) || !dkim_prefix_ok(a->dkim) ||
	    !text_ok(a->sender, sizeof(a->sender)) ||
	    a->domain[0] == '\0' || !text_ok(a->domain, sizeof(a->domain)) ||
	    read_rcpts(&mr, a) == -1 || mr_end(&mr) == -1) {
		out_attempt_clear(a);
		return -1;
	}
	return 0;
}

void
out_attempt_clear(struct out_attempt *a)
{
	free(a->rcpt);
	a->rcpt = NULL;
	a->nrcpts = 0;
}

int
out_read_result(const void *payload, size_t len, struct out_result *r)
{
	struct msgread	mr;

	out_begin(&mr, payload, len);
	r->id = mr_u32(&mr);
	r->index = mr_u32(&mr);
	r->result = mr_u32(&mr);
	r->last = mr_u32(&mr);
	mr_str(&mr, r->text, sizeof(r->text));
	if (mr_end(&mr) == -1 || r->result > OUT_FAILED || r->last > 1 ||
	    !text_ok(r->text, sizeof(r->text)))
		return -1;
	return 0;
}

void
out_attempt_begin(struct out_attempt_build *b, const struct out_attempt *a)
{
	mb_init(&b->mb);
	mb_u32(&b->mb, a->id);
	mb_str(&b->mb, a->qid);
	mb_str(&b->mb, a->sender);
	mb_str(&b->mb, a->domain);
	mb_u64(&b->mb, a->size);
	mb_str(&b->mb, a->dkim);
	b->nrcpts = 0;
}

/* Does one more recipient fit in the message? */
int
out_attempt_fits(const struct out_attempt_build *b, const char *address)
{
	return !b->mb.overflow && b->nrcpts < ENV_MAX_RCPTS &&
	    sizeof(uint32_t) + strlen(address) <= sizeof(b->mb.buf) - b->mb.len;
}

void
out_attempt_add(struct out_attempt_build *b, const char *address)
{
	mb_str(&b->mb, address);
	b->nrcpts++;
}

int
out_send_attempt(struct chan *c, struct out_attempt_build *b, int fd)
{
	return chan_send(c, &b->mb, IMSG_OUT_ATTEMPT, 0, fd);
}

int
out_send_result(struct chan *c, uint32_t id, uint32_t index,
    uint32_t result, uint32_t last, const char *text)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, id);
	mb_u32(&mb, index);
	mb_u32(&mb, result);
	mb_u32(&mb, last);
	mb_str(&mb, text);
	return chan_send(c, &mb, IMSG_OUT_RESULT, 0, -1);
}
