/*
 * Message descriptors for RETR and TOP. Each comes from the parent
 * (IMSG_POP3_OPEN), a round trip that would otherwise be paid in full for
 * every message; so a session asks ahead: for the RETR and TOP commands
 * already waiting in its input (pipelining), and for the next message
 * after the one being sent (clients read a mailbox in order). Opening a
 * message changes nothing in the mailbox, so a guess that is not used
 * costs one open and one close. Descriptors held ahead are bounded per
 * session and in all, so thousands of sessions cannot exhaust ours.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pop3d.h"
#include "proto.h"
#include "util.h"

static int	held;		/* slots in use in all sessions */

/* Descriptors done with, closed in groups: they came in batches, so
 * their numbers mostly run on (see close_fds). */
static int	finished_fds[POP3_CLOSE_BATCH];
static size_t	nfinished;

void
msg_close_done(void)
{
	close_fds(finished_fds, nfinished);
	nfinished = 0;
}

static void
fd_done(int fd)
{
	finished_fds[nfinished++] = fd;
	if (nfinished == POP3_CLOSE_BATCH)
		msg_close_done();
}

static struct prefetch *
slot_find(struct session *s, uint32_t index)
{
	int	i;

	for (i = 0; i < POP3_SLOTS; i++)
		if (s->pf[i].state != PF_FREE && s->pf[i].index == index)
			return &s->pf[i];
	return NULL;
}

static int
slots_free(const struct session *s)
{
	int	i, n = 0;

	for (i = 0; i < POP3_SLOTS; i++)
		n += s->pf[i].state == PF_FREE;
	return n;
}

static void
src_release(struct msgsrc *src)
{
	if (src->fd != -1)
		fd_done(src->fd);
	src->fd = -1;
	free(src->data);
	src->data = NULL;
}

static void
slot_release(struct prefetch *p)
{
	src_release(&p->src);
	p->state = PF_FREE;
	held--;
}

/* The requests gathered by ask(), in one message. */
static void
send_asks(struct session *s)
{
	struct msgbuild	mb;
	int		i;

	if (s->nasking == 0)
		return;
	mb_init(&mb);
	mb_u32(&mb, s->id);
	for (i = 0; i < s->nasking; i++)
		mb_u32(&mb, s->asking[i]);
	pop3_send(IMSG_POP3_OPEN, &mb);
	s->nasking = 0;
}

static struct prefetch *
ask(struct session *s, uint32_t index)
{
	struct prefetch	*p = NULL;
	int		 i;

	for (i = 0; i < POP3_SLOTS && p == NULL; i++)
		if (s->pf[i].state == PF_FREE)
			p = &s->pf[i];
	if (p == NULL)
		fatalx("pop3 session=%08x: no descriptor slot", s->id);
	s->asking[s->nasking++] = index;
	p->state = PF_PENDING;
	p->index = index;
	p->src.fd = -1;
	p->src.data = NULL;
	held++;
	return p;
}

/* Ask for index ahead of need, if it is worth it and allowed. */
static void
maybe_ask(struct session *s, uint32_t index)
{
	/* One slot always stays free for the command at the head. */
	if (index >= s->nmsgs || s->msgs[index].deleted ||
	    slot_find(s, index) != NULL || slots_free(s) < 2 ||
	    held >= POP3_HELD_MAX)
		return;
	ask(s, index);
}

/* A RETR or TOP waiting in the input: ask for its message. 0 when no
 * slot is left for more. */
static int
ask_waiting(struct session *s, const struct pop3_cmd *c)
{
	if ((c->verb == POP3_RETR || c->verb == POP3_TOP) &&
	    c->msgno >= 1 && c->msgno <= s->nmsgs)
		maybe_ask(s, c->msgno - 1);
	return slots_free(s) >= 2;
}

/*
 * Look ahead: the RETR and TOP commands already received, then the
 * messages after the current one. In batches, so one request and one
 * wake-up of the parent serve several messages.
 */
static void
prefetch(struct session *s, uint32_t current)
{
	int		 i;

	/* Clients go forward: guesses left behind are not needed. */
	for (i = 0; i < POP3_SLOTS; i++)
		if ((s->pf[i].state == PF_READY ||
		    s->pf[i].state == PF_FAILED) && s->pf[i].index <= current)
			slot_release(&s->pf[i]);
	/* Refill only when few are left, and then fully. */
	if (POP3_SLOTS - slots_free(s) > POP3_SLOTS / 4)
		return;
	if (slots_free(s) >= 2)
		session_lookahead(s, POP3_SLOTS, ask_waiting);
	for (i = 1; i < POP3_SLOTS && slots_free(s) >= 2; i++)
		maybe_ask(s, current + i);
	send_asks(s);
}

static void
start_xfer(struct session *s, struct prefetch *p)
{
	if (p->state == PF_FAILED) {
		session_printf(s, "-ERR [SYS/TEMP] message %u cannot be "
		    "read\r\n", s->xfer_index + 1);
		slot_release(p);
		return;
	}
	session_grow(s);
	if (s->xfer_top)
		session_printf(s, "+OK top of message %u follows\r\n",
		    s->xfer_index + 1);
	else
		session_printf(s, "+OK %llu octets\r\n",
		    (unsigned long long)s->msgs[s->xfer_index].size);
	xfer_init(&s->xfer, &p->src, s->xfer_top, s->xfer_lines);
	p->src.fd = -1;		/* the transfer owns them now */
	p->src.data = NULL;
	slot_release(p);
	s->prod = PROD_XFER;
	s->wait = WAIT_PRODUCE;
	prefetch(s, s->xfer_index);
}

void
msg_open(struct session *s, uint32_t index, int top, uint64_t lines)
{
	struct prefetch	*p;

	s->xfer_index = index;
	s->xfer_top = top;
	s->xfer_lines = lines;
	if ((p = slot_find(s, index)) == NULL) {
		p = ask(s, index);
		send_asks(s);
	}
	if (p->state == PF_PENDING) {
		s->wait = WAIT_PARENT;
		s->opening = 1;
		return;
	}
	start_xfer(s, p);
}

/* The transfer finished: a RETR sent in full marks the message seen. */
void
msg_sent(struct session *s)
{
	src_release(&s->xfer.src);
	if (!s->xfer_top) {
		s->msgs[s->xfer_index].retrieved = 1;
		s->nretr++;
		pop3count.retrieved++;
		pop3count.bytes += s->msgs[s->xfer_index].size;
	}
}

void
msg_forget(struct session *s)
{
	int	i;

	for (i = 0; i < POP3_SLOTS; i++)
		if (s->pf[i].state != PF_FREE)
			slot_release(&s->pf[i]);
	src_release(&s->xfer.src);
}

static int
preloaded(const struct session *s)
{
	int	i;

	for (i = 0; i < POP3_SLOTS; i++)
		if (s->pf[i].src.data != NULL)
			return 1;
	return 0;
}

/*
 * A client that takes one message at a time waits for each answer: what
 * we do between its command and our answer is its wait. So while it
 * reads the answer just written, read the next message (the likely next
 * command) into memory: its RETR then costs no read and no close.
 * Small messages only, and one per session at a time.
 */
void
msg_preload(struct session *s)
{
	struct prefetch	*p;
	struct msgsrc	*src;
	ssize_t		 n;

	if (s->state != ST_TRANS || s->xfer_index + 1 >= s->nmsgs ||
	    (p = slot_find(s, s->xfer_index + 1)) == NULL ||
	    p->state != PF_READY || p->src.size > POP3_PRELOAD_MAX ||
	    preloaded(s))
		return;
	src = &p->src;
	src->data = xmalloc(src->size + 1);
	n = pread(src->fd, src->data, src->size + 1, 0);
	/* Not what its size says (changed, or not a file): read it later,
	 * where a failure is dealt with. */
	if (n != (ssize_t)src->size) {
		free(src->data);
		src->data = NULL;
		return;
	}
	fd_done(src->fd);
	src->fd = -1;
}

int
reply_open(uint32_t id, struct msgread *mr, int fd)
{
	struct session	*s;
	struct prefetch	*p;
	uint64_t	 size;
	uint32_t	 index, result;

	index = mr_u32(mr);
	result = mr_u32(mr);
	size = mr_u64(mr);
	if (mr_end(mr) == -1 || (result == 0) != (fd != -1)) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	/* The session ended, or dropped its guess: not needed any more. */
	if ((s = session_find(id)) == NULL ||
	    (p = slot_find(s, index)) == NULL || p->state != PF_PENDING) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	p->src.fd = fd;
	p->src.size = size;
	p->state = fd == -1 ? PF_FAILED : PF_READY;
	if (s->opening && s->xfer_index == index) {
		s->opening = 0;
		s->wait = WAIT_NONE;
		start_xfer(s, p);
		session_update(s);
	}
	return 0;
}
