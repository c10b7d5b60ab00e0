/*
 * imsg-like framing between the processes (DESIGN.md B3): a 16-byte header
 * (type u32, len u16 including the header, flags u16, peerid u32, pid u32),
 * then the payload; 16 KiB at most; at most one descriptor per message,
 * passed with SCM_RIGHTS alongside the message's first byte.
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
#define IMSG_FDQ_MAX	16		/* descriptors received, not yet used */

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
	struct imsg_out	*whead, *wtail;
	size_t		 wqueued;	/* bytes waiting to be written */
	pid_t		 pid;
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
