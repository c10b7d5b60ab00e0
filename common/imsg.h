/*
 * imsg-like framing between the processes (DESIGN.md B3): a 16-byte header
 * (type u32, len u16 including the header, flags u16, peerid u32, pid u32),
 * then the payload; 16 KiB at most; at most one descriptor per message.
 * Several queued messages may leave in one sendmsg, descriptors in one
 * SCM_RIGHTS with its first byte; the reader queues descriptors in stream
 * order and each message flagged IMSGF_HASFD takes the oldest.
 *
 * A read ends after the first piece that carries descriptors, and so by
 * default a message with a descriptor ends its sendmsg: a reader that
 * reads one message with a buffer of its own (imsg_read_one at start-up)
 * and then hands the channel to another takes no later message with it.
 * imsgbuf_batch_fds() lifts that where the reader keeps one imsgbuf.
 */
#ifndef PYMAILD_IMSG_H
#define PYMAILD_IMSG_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#define IMSG_HDR_SIZE	16
#define IMSG_MAX	16384		/* header included */
#define IMSG_DATA_MAX	(IMSG_MAX - IMSG_HDR_SIZE)
#define IMSGF_HASFD	0x0001
#define IMSG_SEND_IOV	64		/* messages per sendmsg, at most */
#define IMSG_SEND_FDS	32		/* descriptors per sendmsg, at most */
/*
 * Descriptors received, not yet taken. A reader that takes every whole
 * message after each read holds at most those of one partly read batch,
 * one partial message and one new batch.
 */
#define IMSG_FDQ_MAX	(3 * IMSG_SEND_FDS)

struct imsg_hdr {
	uint32_t	type;
	uint16_t	len;
	uint16_t	flags;
	uint32_t	peerid;
	uint32_t	pid;
};

struct imsg {
	struct imsg_hdr	 hdr;
	int		 fd;		/* -1 when none; caller owns it */
	size_t		 datalen;
	uint8_t		 data[IMSG_DATA_MAX];
};

struct imsg_out {
	struct imsg_out	*next;
	int		 fd;		/* sent with the first byte, then closed */
	size_t		 len, off;
	uint8_t		 buf[];
};

struct imsgbuf {
	int		 fd;
	uint8_t		 rbuf[IMSG_MAX];
	size_t		 rlen;
	int		 fdq[IMSG_FDQ_MAX];
	int		 nfdq;
	int		 fdlost;	/* one was dropped: keep no later one */
	struct imsg_out	*whead, *wtail;
	size_t		 wqueued;	/* bytes waiting to be written */
	int		 fdbatch;	/* several descriptors per sendmsg */
	pid_t		 pid;
	size_t		 wcount;	/* messages waiting to be written */
};

void	imsgbuf_init(struct imsgbuf *, int fd);
/* Close the channel's pending descriptors and free the queue (not fd). */
void	imsgbuf_clear(struct imsgbuf *);
/* Read what the socket has. >0 bytes read, 0 EOF, -1 error (EAGAIN
 * included: check errno). */
ssize_t	imsgbuf_read(struct imsgbuf *);
/* Take the next whole message: 1 got one, 0 need more data, -1 the peer
 * broke the framing (bad length, missing descriptor): close the channel. */
int	imsg_get(struct imsgbuf *, struct imsg *);
/* Queue a message; fd (or -1) is passed and then closed here.
 * -1 when the payload is too large. */
int	imsg_compose(struct imsgbuf *, uint32_t type, uint32_t peerid, int fd,
	    const void *data, size_t len);
/* Let one sendmsg carry up to IMSG_SEND_FDS descriptors, for a peer that
 * reads the channel with one imsgbuf from now on. */
void	imsgbuf_batch_fds(struct imsgbuf *);
/* Write what can be written: 0 ok (maybe still pending), -1 error. */
int	imsgbuf_flush(struct imsgbuf *);
/* Block until everything queued is written (start-up and shutdown). */
int	imsgbuf_flush_all(struct imsgbuf *);
/* Block until one message arrives (start-up only). 1, 0 on EOF, -1. */
int	imsg_read_one(struct imsgbuf *, struct imsg *);

/*
 * Typed payload builders and readers. A reader that hits the end early, a
 * string that is too long or holds a NUL, or leftovers at mr_end() all set
 * the error flag; handlers check mr_end() once and close the channel on -1.
 */
struct msgbuild {
	uint8_t	buf[IMSG_DATA_MAX];
	size_t	len;
	int	overflow;
};

struct msgread {
	const uint8_t	*p;
	size_t		 len, off;
	int		 err;
};

void	mb_init(struct msgbuild *);
void	mb_u32(struct msgbuild *, uint32_t);
void	mb_u64(struct msgbuild *, uint64_t);
void	mb_str(struct msgbuild *, const char *);
void	mb_data(struct msgbuild *, const void *, size_t);
int	mb_send(struct msgbuild *, struct imsgbuf *, uint32_t type,
	    uint32_t peerid, int fd);

void		mr_init(struct msgread *, const struct imsg *);
uint32_t	mr_u32(struct msgread *);
uint64_t	mr_u64(struct msgread *);
/* Copy a string into out (size outlen, NUL-terminated); error if longer. */
void		mr_str(struct msgread *, char *out, size_t outlen);
const void	*mr_data(struct msgread *, size_t len);
int		mr_end(struct msgread *);

#endif
