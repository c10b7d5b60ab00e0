/*
 * Framed messages over a non-blocking stream socket. The reader keeps a
 * fixed buffer of one maximal message; descriptors arrive on their own
 * queue in stream order and a message flagged IMSGF_HASFD takes the oldest.
 */
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "util.h"

void
imsgbuf_init(struct imsgbuf *ib, int fd)
{
	memset(ib, 0, sizeof(*ib));
	ib->fd = fd;
	ib->pid = getpid();
}

/* Payloads may hold passwords: nothing of one stays in freed memory. */
static void
out_free(struct imsg_out *o)
{
	explicit_bzero(o->buf, o->len);
	free(o);
}

void
imsgbuf_clear(struct imsgbuf *ib)
{
	struct imsg_out	*o;

	while ((o = ib->whead) != NULL) {
		ib->whead = o->next;
		if (o->fd != -1)
			close(o->fd);
		out_free(o);
	}
	ib->wtail = NULL;
	ib->wqueued = 0;
	ib->wcount = 0;
	while (ib->nfdq > 0)
		close(ib->fdq[--ib->nfdq]);
	ib->fdlost = 0;
	ib->rlen = 0;
}

static void
fdq_push(struct imsgbuf *ib, int fd)
{
	/*
	 * A peer flooding us with descriptors: drop the extra, and every
	 * later one too, so that no message is ever given another's
	 * descriptor; the one that misses its own breaks the framing.
	 */
	if (ib->nfdq == IMSG_FDQ_MAX || ib->fdlost) {
		ib->fdlost = 1;
		close(fd);
		return;
	}
	ib->fdq[ib->nfdq++] = fd;
}

static int
fdq_pop(struct imsgbuf *ib)
{
	int	fd;

	if (ib->nfdq == 0)
		return -1;
	fd = ib->fdq[0];
	memmove(ib->fdq, ib->fdq + 1, (ib->nfdq - 1) * sizeof(int));
	ib->nfdq--;
	return fd;
}

ssize_t
imsgbuf_read(struct imsgbuf *ib)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * IMSG_SEND_FDS)];
	} cmsgbuf;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	ssize_t		 n;
	size_t		 i, nfds;
	int		 fd;

	if (ib->rlen == sizeof(ib->rbuf)) {
		errno = EAGAIN;	/* caller must drain with imsg_get first */
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = ib->rbuf + ib->rlen;
	iov.iov_len = sizeof(ib->rbuf) - ib->rlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = &cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	do {
		n = recvmsg(ib->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(int));
			fdq_push(ib, fd);
		}
	}
	/* More than we make room for: those that did not fit are lost. */
	if (msg.msg_flags & MSG_CTRUNC)
		ib->fdlost = 1;
	ib->rlen += n;
	return n;
}

int
imsg_get(struct imsgbuf *ib, struct imsg *im)
{
	struct imsg_hdr	hdr;

	if (ib->rlen < IMSG_HDR_SIZE)
		return 0;
	memcpy(&hdr, ib->rbuf, sizeof(hdr));
	if (hdr.len < IMSG_HDR_SIZE || hdr.len > IMSG_MAX) {
		errno = EBADMSG;
		return -1;
	}
	if (ib->rlen < hdr.len)
		return 0;
	im->hdr = hdr;
	im->datalen = hdr.len - IMSG_HDR_SIZE;
	memcpy(im->data, ib->rbuf + IMSG_HDR_SIZE, im->datalen);
	im->fd = -1;
	if (hdr.flags & IMSGF_HASFD) {
		if ((im->fd = fdq_pop(ib)) == -1) {
			errno = EBADMSG;
			return -1;
		}
	}
	memmove(ib->rbuf, ib->rbuf + hdr.len, ib->rlen - hdr.len);
	ib->rlen -= hdr.len;
	/* No stale copy of a payload (a password) behind the data. */
	explicit_bzero(ib->rbuf + ib->rlen, hdr.len);
	return 1;
}

int
imsg_compose(struct imsgbuf *ib, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	struct imsg_out	*o;
	struct imsg_hdr	 hdr;

	if (len > IMSG_DATA_MAX) {
		if (fd != -1)
			close(fd);
		errno = EMSGSIZE;
		return -1;
	}
	o = xmalloc(sizeof(*o) + IMSG_HDR_SIZE + len);
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.len = IMSG_HDR_SIZE + len;
	hdr.flags = fd != -1 ? IMSGF_HASFD : 0;
	hdr.peerid = peerid;
	hdr.pid = ib->pid;
	memcpy(o->buf, &hdr, IMSG_HDR_SIZE);
	if (len)
		memcpy(o->buf + IMSG_HDR_SIZE, data, len);
	o->len = IMSG_HDR_SIZE + len;
	o->off = 0;
	o->fd = fd;
	o->next = NULL;
	if (ib->wtail)
		ib->wtail->next = o;
	else
		ib->whead = o;
	ib->wtail = o;
	ib->wqueued += o->len;
	ib->wcount++;
	return 0;
}

void
imsgbuf_batch_fds(struct imsgbuf *ib)
{
	ib->fdbatch = 1;
}

/*
 * Up to IMSG_SEND_IOV queued messages go in one sendmsg: one call and one
 * wake-up of the reader instead of one each. With fdbatch, up to
 * IMSG_SEND_FDS descriptors go too, in one SCM_RIGHTS: the reader gets
 * them all in one read, where it would otherwise need a read for each.
 */
static ssize_t
send_batch(struct imsgbuf *ib, struct imsg_out *o, int *nfd)
{
	int		 maxfd = ib->fdbatch ? IMSG_SEND_FDS : 1;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * IMSG_SEND_FDS)];
	} cmsgbuf;
	struct msghdr	 msg;
	struct iovec	 iov[IMSG_SEND_IOV];
	struct cmsghdr	*cmsg;
	int		 fds[IMSG_SEND_FDS], niov = 0;
	ssize_t		 n;

	*nfd = 0;
	for (; o != NULL && niov < IMSG_SEND_IOV; o = o->next) {
		if (o->fd != -1 && *nfd == maxfd)
			break;
		if (o->fd != -1)
			fds[(*nfd)++] = o->fd;
		iov[niov].iov_base = o->buf + o->off;
		iov[niov++].iov_len = o->len - o->off;
		if (*nfd == maxfd && !ib->fdbatch)
			break;
	}
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = niov;
	if (*nfd > 0) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = &cmsgbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * *nfd);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * *nfd);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * *nfd);
	}
	do {
		n = sendmsg(ib->fd, &msg, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	return n;
}

/* The descriptors of a batch went with its first byte, whatever part of
 * the bytes did: the kernel holds its own references now. */
static void
close_sent(struct imsgbuf *ib, int nfd)
{
	struct imsg_out	*o;
	int		 fds[IMSG_SEND_FDS], n = 0;

	for (o = ib->whead; o != NULL && n < nfd; o = o->next) {
		if (o->fd == -1)
			continue;
		fds[n++] = o->fd;
		o->fd = -1;
	}
	close_fds(fds, n);
}

int
imsgbuf_flush(struct imsgbuf *ib)
{
	struct imsg_out	*o;
	ssize_t		 n;
	size_t		 part;
	int		 nfd;

	while (ib->whead != NULL) {
		n = send_batch(ib, ib->whead, &nfd);
		if (n == -1)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		close_sent(ib, nfd);
		ib->wqueued -= n;
		while ((o = ib->whead) != NULL && n > 0) {
			part = MIN((size_t)n, o->len - o->off);
			o->off += part;
			n -= part;
			if (o->off < o->len)
				return 0;
			ib->whead = o->next;
			if (ib->whead == NULL)
				ib->wtail = NULL;
			ib->wcount--;
			out_free(o);
		}
	}
	return 0;
}

static int
wait_fd(int fd, short events)
{
	struct pollfd	pfd = { .fd = fd, .events = events };

	while (poll(&pfd, 1, -1) == -1)
		if (errno != EINTR)
			return -1;
	return 0;
}

int
imsgbuf_flush_all(struct imsgbuf *ib)
{
	while (ib->whead) {
		if (imsgbuf_flush(ib) == -1)
			return -1;
		if (ib->whead && wait_fd(ib->fd, POLLOUT) == -1)
			return -1;
	}
	return 0;
}

int
imsg_read_one(struct imsgbuf *ib, struct imsg *im)
{
	ssize_t	n;
	int	r;

	for (;;) {
		if ((r = imsg_get(ib, im)) != 0)
			return r;
		n = imsgbuf_read(ib);
		if (n == 0)
			return 0;
		if (n == -1 && errno != EAGAIN)
			return -1;
		if (n == -1 && wait_fd(ib->fd, POLLIN) == -1)
			return -1;
	}
}

void
mb_init(struct msgbuild *mb)
{
	mb->len = 0;
	mb->overflow = 0;
}

void
mb_data(struct msgbuild *mb, const void *p, size_t len)
{
	if (mb->overflow || len > sizeof(mb->buf) - mb->len) {
		mb->overflow = 1;
		return;
	}
	memcpy(mb->buf + mb->len, p, len);
	mb->len += len;
}

void
mb_u32(struct msgbuild *mb, uint32_t v)
{
	mb_data(mb, &v, sizeof(v));
}

void
mb_u64(struct msgbuild *mb, uint64_t v)
{
	mb_data(mb, &v, sizeof(v));
}

void
mb_str(struct msgbuild *mb, const char *s)
{
	size_t	len = strlen(s);

	if (len > UINT16_MAX) {
		mb->overflow = 1;
		return;
	}
	mb_u32(mb, (uint32_t)len);
	mb_data(mb, s, len);
}

int
mb_send(struct msgbuild *mb, struct imsgbuf *ib, uint32_t type,
    uint32_t peerid, int fd)
{
	if (mb->overflow) {
		if (fd != -1)
			close(fd);
		errno = EMSGSIZE;
		return -1;
	}
	return imsg_compose(ib, type, peerid, fd, mb->buf, mb->len);
}

void
mr_init(struct msgread *mr, const struct imsg *im)
{
	mr->p = im->data;
	mr->len = im->datalen;
	mr->off = 0;
	mr->err = 0;
}

const void *
mr_data(struct msgread *mr, size_t len)
{
	const void	*p;

	if (mr->err || len > mr->len - mr->off) {
		mr->err = 1;
		return NULL;
	}
	p = mr->p + mr->off;
	mr->off += len;
	return p;
}

uint32_t
mr_u32(struct msgread *mr)
{
	const void	*p = mr_data(mr, sizeof(uint32_t));
	uint32_t	 v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t
mr_u64(struct msgread *mr)
{
	const void	*p = mr_data(mr, sizeof(uint64_t));
	uint64_t	 v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

void
mr_str(struct msgread *mr, char *out, size_t outlen)
{
	uint32_t	 len = mr_u32(mr);
	const char	*p;

	out[0] = '\0';
	if (mr->err)
		return;
	if (len >= outlen) {
		mr->err = 1;
		return;
	}
	if ((p = mr_data(mr, len)) == NULL)
		return;
	if (memchr(p, '\0', len) != NULL) {
		mr->err = 1;
		return;
	}
	memcpy(out, p, len);
	out[len] = '\0';
}

int
mr_end(struct msgread *mr)
{
	if (mr->err || mr->off != mr->len)
		return -1;
	return 0;
}
