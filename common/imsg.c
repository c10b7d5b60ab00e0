/*
 * Framed messages over a non-blocking stream socket. The reader keeps a
 * fixed buffer of one maximal message; descriptors arrive on their own
 * queue in stream order and a message flagged IMSGF_HASFD takes the oldest.
 */
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

void
imsgbuf_clear(struct imsgbuf *ib)
{
	struct imsg_out	*o;

	while ((o = ib->whead) != NULL) {
		ib->whead = o->next;
		if (o->fd != -1)
			close(o->fd);
		free(o);
	}
	ib->wtail = NULL;
	ib->wqueued = 0;
	while (ib->nfdq > 0)
		close(ib->fdq[--ib->nfdq]);
	ib->rlen = 0;
}

static void
fdq_push(struct imsgbuf *ib, int fd)
{
	if (ib->nfdq == IMSG_FDQ_MAX) {
		/* A peer flooding us with descriptors: drop the extra. */
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
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
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
	return 0;
}

static ssize_t
send_one(int sock, struct imsg_out *o)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = o->buf + o->off;
	iov.iov_len = o->len - o->off;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (o->fd != -1 && o->off == 0) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = &cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cmsg), &o->fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	return n;
}

int
imsgbuf_flush(struct imsgbuf *ib)
{
	struct imsg_out	*o;
	ssize_t		 n;

	while ((o = ib->whead) != NULL) {
		n = send_one(ib->fd, o);
		if (n == -1)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		if (o->fd != -1) {
			/* The kernel holds its own reference now. */
			close(o->fd);
			o->fd = -1;
		}
		o->off += n;
		ib->wqueued -= n;
		if (o->off < o->len)
			return 0;
		ib->whead = o->next;
		if (ib->whead == NULL)
			ib->wtail = NULL;
		free(o);
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
