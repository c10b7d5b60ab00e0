/*
 * The messages between queued and the outbound SMTP client (proto.h,
 * IMSG_OUT_*): builders for the sender, pure readers for the receiver.
 * A reader takes the payload's bytes and fills a struct, 0 when the
 * payload has exactly its type's shape and every field is in range, -1
 * when not. They keep no state: whether an attempt id is known, or an
 * index is one of its recipients, is the caller's to check.
 */
#ifndef PYMAILD_OUTMSG_H
#define PYMAILD_OUTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "dkim.h"
#include "chan.h"
#include "proto.h"

#define OUT_DOMAIN_MAX	ADDR_DOMAIN_MAX
#define OUT_TEXT_MAX	255	/* a result's text, a last error */

struct out_attempt {
	uint32_t	id;
	char		qid[QUEUE_ID_LEN + 1];
	char		sender[ADDR_PATH_MAX];		/* "" = <> */
	char		domain[OUT_DOMAIN_MAX + 1];	/* never "" */
	uint64_t	size;
	/* DKIM-Signature fields, folded, sent before the message; "" */
	char		dkim[DKIM_PREFIX_MAX + 1];
	uint32_t	nrcpts;				/* 1..ENV_MAX_RCPTS */
	char		(*rcpt)[ADDR_PATH_MAX];		/* nrcpts, never "" */
};

struct out_result {
	uint32_t	id;
	uint32_t	index;
	uint32_t	result;				/* OUT_* */
	uint32_t	last;				/* 0, or 1: the end */
	char		text[OUT_TEXT_MAX + 1];		/* printable */
};

/*
 * out_read_attempt allocates a->rcpt (free it with out_attempt_clear);
 * on failure nothing stays allocated.
 */
int	out_read_attempt(const void *, size_t, struct out_attempt *);
void	out_attempt_clear(struct out_attempt *);
int	out_read_result(const void *, size_t, struct out_result *);

/*
 * An attempt travels in one message: the sender fills one only as far
 * as it holds (out_attempt_fits), and leaves the other recipients of the
 * domain to another attempt. One recipient at least: outbound refuses
 * an attempt without any.
 */
struct out_attempt_build {
	struct msgbuild	mb;
	uint32_t	nrcpts;
};
void	out_attempt_begin(struct out_attempt_build *,
	    const struct out_attempt *);
int	out_attempt_fits(const struct out_attempt_build *, const char *);
void	out_attempt_add(struct out_attempt_build *, const char *address);

/* Queue one on c (chan_send: fail closed when it cannot be queued);
 * -1 when the channel is closed already (fd is closed then). */
int	out_send_attempt(struct chan *, struct out_attempt_build *, int fd);
int	out_send_result(struct chan *, uint32_t id, uint32_t index,
	    uint32_t result, uint32_t last, const char *text);

#endif
