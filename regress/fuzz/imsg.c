/*
 * The imsg framing reader (common/imsg.c) and the payload readers, fed
 * through a real socketpair as a hostile peer would: the input is a run
 * of pieces "flags len_hi len_lo bytes", each one sendmsg, with a
 * descriptor attached when flags says so. Checked: every message keeps
 * to its bounds, a payload read to its end without error re-encodes to
 * the same bytes, and no descriptor outlives imsgbuf_clear().
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "util.h"
#include "fuzz.h"

#define PIECE_MAX	4096

static int
send_piece(int fd, const uint8_t *p, size_t len, int withfd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*c;
	int		 nul;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)p;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (withfd && (nul = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &nul, sizeof(int));
		len = sendmsg(fd, &msg, 0) == (ssize_t)len ? 0 : 1;
		close(nul);
		return len ? -1 : 0;
	}
	return sendmsg(fd, &msg, 0) == (ssize_t)len ? 0 : -1;
}

/* Read the payload as a sequence of fields chosen by the type; when it
 * ends exactly and cleanly, build it again and compare. */
static void
read_payload(const struct imsg *im)
{
	static struct msgbuild	 mb;
	struct msgread		 mr;
	char			 s[256];
	uint32_t		 t = im->hdr.type, v;
	uint64_t		 w;
	int			 i;

	mr_init(&mr, im);
	mb_init(&mb);
	for (i = 0; i < 8 && mr.off < mr.len; i++, t >>= 2) {
		switch (t & 3) {
		case 0:
			v = mr_u32(&mr);
			mb_u32(&mb, v);
			break;
		case 1:
			w = mr_u64(&mr);
			mb_u64(&mb, w);
			break;
		default:
			mr_str(&mr, s, (t & 1) ? sizeof(s) : 17);
			FUZZ_ASSERT(strlen(s) < sizeof(s));
			mb_str(&mb, s);
			break;
		}
	}
	FUZZ_ASSERT(mr.off <= mr.len);
	if (mr_end(&mr) == 0) {
		FUZZ_ASSERT(!mb.overflow && mb.len == im->datalen);
		FUZZ_ASSERT(memcmp(mb.buf, im->data, mb.len) == 0);
	}
}

static int
drain(struct imsgbuf *ib, struct imsg *im)
{
	ssize_t	n;
	int	r;

	for (;;) {
		n = imsgbuf_read(ib);
		if (n == -1 && errno != EAGAIN)
			return -1;
		while ((r = imsg_get(ib, im)) == 1) {
			FUZZ_ASSERT(im->datalen + IMSG_HDR_SIZE == im->hdr.len);
			FUZZ_ASSERT(im->datalen <= IMSG_DATA_MAX);
			FUZZ_ASSERT((im->fd != -1) ==
			    !!(im->hdr.flags & IMSGF_HASFD));
			if (im->fd != -1)
				close(im->fd);
			read_payload(im);
		}
		if (r == -1)
			return -1;
		if (n <= 0)
			return 0;
	}
}

FUZZ_ENTRY(imsg)
{
	static struct imsgbuf	 ib;
	static struct imsg	 im;
	static const uint8_t	 zero;
	int			 sv[2], probe, before;
	size_t			 off = 0, len;

	if ((before = open("/dev/null", O_RDONLY)) == -1)
		abort();
	close(before);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	set_nonblock(sv[1]);
	imsgbuf_init(&ib, sv[1]);
	while (off + 3 <= size) {
		len = (data[off + 1] << 8 | data[off + 2]) % PIECE_MAX;
		if (len > size - off - 3)
			len = size - off - 3;
		if (len == 0 && !(data[off] & 1)) {
			off += 3;
			continue;
		}
		/* A descriptor needs one byte to ride on. */
		if (send_piece(sv[0], len ? data + off + 3 : &zero,
		    len ? len : 1, data[off] & 1) == -1)
			break;
		off += 3 + len;
		if (drain(&ib, &im) == -1)
			break;
	}
	imsgbuf_clear(&ib);
	close(sv[0]);
	close(sv[1]);
	/* Every descriptor received was handed out or closed. */
	probe = open("/dev/null", O_RDONLY);
	FUZZ_ASSERT(probe == before);
	close(probe);
	return 0;
}
