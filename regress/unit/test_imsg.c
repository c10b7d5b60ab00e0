/*
 * Unit tests for common/imsg.c (DESIGN.md B3): framing over a real
 * non-blocking AF_UNIX stream socketpair, partial reads and writes, bad
 * lengths, descriptor passing, and the typed payload builder and reader.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "util.h"
#include "unit.h"

static struct imsgbuf	 wib, rib;	/* writer side, reader side */
static int		 sv[2] = { -1, -1 };
static struct imsg	 im;		/* large: keep it off the stack */

static void
pair_open(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		perror("socketpair");
		exit(2);
	}
	set_nonblock(sv[0]);
	set_nonblock(sv[1]);
	imsgbuf_init(&wib, sv[0]);
	imsgbuf_init(&rib, sv[1]);
}

static void
pair_close(void)
{
	imsgbuf_clear(&wib);
	imsgbuf_clear(&rib);
	if (sv[0] != -1)
		close(sv[0]);
	if (sv[1] != -1)
		close(sv[1]);
	sv[0] = sv[1] = -1;
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static int
wait_readable(int fd, int ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

/*
 * Get the next message on the reader side, reading as needed for up to ms
 * milliseconds; 1 got one, 0 EOF or timeout, -1 framing error. The writer
 * is flushed on each turn so queues larger than the socket buffer drain.
 */
static int
next_msg_wait(struct imsg *m, int ms)
{
	long long	end = now_ms() + ms;
	int		r;

	for (;;) {
		if ((r = imsg_get(&rib, m)) != 0)
			return r;
		if (imsgbuf_flush(&wib) == -1)
			return -1;
		if (now_ms() > end)
			return 0;
		if (!wait_readable(rib.fd, 5))
			continue;
		if (imsgbuf_read(&rib) == 0)
			return 0;
	}
}

static int
next_msg(struct imsg *m)
{
	return next_msg_wait(m, 5000);
}

/* 1 when no message comes within a short while. */
static int
no_msg(struct imsg *m)
{
	return next_msg_wait(m, 150) == 0;
}

/* Write a string into a pipe; the test cannot go on without it. */
static void
put(int fd, const char *str)
{
	if (write(fd, str, strlen(str)) != (ssize_t)strlen(str)) {
		perror("write");
		exit(2);
	}
}

/* Write len bytes on the writer's raw socket, ignoring the imsgbuf. */
static int
raw_write(const void *p, size_t len)
{
	return write(sv[0], p, len) == (ssize_t)len;
}

static size_t
mkhdr(uint8_t *buf, uint32_t type, uint16_t len, uint16_t flags,
    uint32_t peerid)
{
	struct imsg_hdr	h;

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.len = len;
	h.flags = flags;
	h.peerid = peerid;
	h.pid = 4242;
	memcpy(buf, &h, IMSG_HDR_SIZE);
	return IMSG_HDR_SIZE;
}

static void
fill(uint8_t *p, size_t len, unsigned seed)
{
	size_t	i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static void
test_roundtrip(void)
{
	static uint8_t	 big[1000];
	const char	*hello = "hello";
	int		 ok;

	pair_open();
	fill(big, sizeof(big), 3);
	CHECK("header size is 16", sizeof(struct imsg_hdr) == IMSG_HDR_SIZE);
	CHECK("compose 1", imsg_compose(&wib, 1, 7, -1, hello, 5) == 0);
	CHECK("compose 2 (empty)",
	    imsg_compose(&wib, 2, 0xffffffffU, -1, NULL, 0) == 0);
	CHECK("compose 3", imsg_compose(&wib, 0xdeadbeefU, 42, -1, big,
	    sizeof(big)) == 0);
	CHECK("compose 4", imsg_compose(&wib, 0, 0, -1, "\0\1\0", 3) == 0);
	CHECK("wqueued counts headers and payloads",
	    wib.wqueued == 4 * IMSG_HDR_SIZE + 5 + 0 + sizeof(big) + 3);
	CHECK("flush", imsgbuf_flush(&wib) == 0);
	CHECK("flush left nothing", wib.wqueued == 0 && wib.whead == NULL &&
	    wib.wtail == NULL);
	CHECK("nothing before read", imsg_get(&rib, &im) == 0);

	ok = next_msg(&im) == 1;
	CHECK("msg 1 arrives", ok);
	CHECK("msg 1 fields", ok && im.hdr.type == 1 && im.hdr.peerid == 7 &&
	    im.hdr.len == IMSG_HDR_SIZE + 5 && im.hdr.flags == 0 &&
	    im.hdr.pid == (uint32_t)getpid() && im.fd == -1);
	CHECK("msg 1 payload", ok && im.datalen == 5 &&
	    memcmp(im.data, hello, 5) == 0);

	ok = next_msg(&im) == 1;
	CHECK("msg 2 empty payload", ok && im.hdr.type == 2 &&
	    im.hdr.peerid == 0xffffffffU && im.datalen == 0 && im.fd == -1 &&
	    im.hdr.len == IMSG_HDR_SIZE);

	ok = next_msg(&im) == 1;
	CHECK("msg 3 fields", ok && im.hdr.type == 0xdeadbeefU &&
	    im.hdr.peerid == 42 && im.datalen == sizeof(big));
	CHECK("msg 3 payload exact", ok && memcmp(im.data, big,
	    sizeof(big)) == 0);

	ok = next_msg(&im) == 1;
	CHECK("msg 4 payload with NULs", ok && im.hdr.type == 0 &&
	    im.datalen == 3 && memcmp(im.data, "\0\1\0", 3) == 0);
	CHECK("no more messages", imsg_get(&rib, &im) == 0 && rib.rlen == 0);
	pair_close();
}

static void
test_maxsize(void)
{
	static uint8_t	 buf[IMSG_DATA_MAX + 1];
	int		 p[2], ok;
	size_t		 q;

	pair_open();
	fill(buf, sizeof(buf), 9);
	CHECK("IMSG_MAX is 16 KiB", IMSG_MAX == 16384 &&
	    IMSG_DATA_MAX == 16384 - 16);
	CHECK("compose max payload",
	    imsg_compose(&wib, 5, 6, -1, buf, IMSG_DATA_MAX) == 0);
	q = wib.wqueued;
	errno = 0;
	CHECK("compose one byte over refused",
	    imsg_compose(&wib, 5, 6, -1, buf, IMSG_DATA_MAX + 1) == -1 &&
	    errno == EMSGSIZE);
	CHECK("refused compose queues nothing", wib.wqueued == q &&
	    wib.whead == wib.wtail);
	if (pipe(p) == -1)
		exit(2);
	CHECK("refused compose closes its fd",
	    imsg_compose(&wib, 5, 6, p[0], buf, IMSG_DATA_MAX + 1) == -1 &&
	    !fd_is_open(p[0]));
	close(p[1]);
	CHECK("compose 64 KiB refused (no u16 wrap)",
	    imsg_compose(&wib, 5, 6, -1, buf, 65536 - IMSG_HDR_SIZE) == -1);

	ok = next_msg(&im) == 1;
	CHECK("max message arrives", ok && im.hdr.len == IMSG_MAX &&
	    im.datalen == IMSG_DATA_MAX && im.hdr.type == 5 &&
	    im.hdr.peerid == 6);
	CHECK("max message payload exact",
	    ok && memcmp(im.data, buf, IMSG_DATA_MAX) == 0);
	CHECK("nothing after max message", no_msg(&im));
	pair_close();

	/* Two maximal messages: the read buffer fills, read says EAGAIN
	 * until a message is taken out. */
	pair_open();
	imsg_compose(&wib, 1, 0, -1, buf, IMSG_DATA_MAX);
	imsg_compose(&wib, 2, 0, -1, buf + 1, IMSG_DATA_MAX);
	imsgbuf_flush_all(&wib);
	while (rib.rlen < sizeof(rib.rbuf) && wait_readable(rib.fd, 1000))
		if (imsgbuf_read(&rib) <= 0)
			break;
	CHECK("read buffer fills to IMSG_MAX", rib.rlen == IMSG_MAX);
	errno = 0;
	CHECK("full read buffer, read -1 EAGAIN",
	    imsgbuf_read(&rib) == -1 && errno == EAGAIN);
	ok = imsg_get(&rib, &im) == 1;
	CHECK("first max message from full buffer", ok && im.hdr.type == 1 &&
	    memcmp(im.data, buf, IMSG_DATA_MAX) == 0);
	ok = next_msg(&im) == 1;
	CHECK("second max message after drain", ok && im.hdr.type == 2 &&
	    memcmp(im.data, buf + 1, IMSG_DATA_MAX) == 0);
	pair_close();
}

static void
test_partial_read(void)
{
	uint8_t		 msg[IMSG_HDR_SIZE + 20], three[3 * 40];
	size_t		 i, n;
	int		 zero_until_last = 1, r, ok = 0;

	pair_open();
	mkhdr(msg, 77, sizeof(msg), 0, 99);
	fill(msg + IMSG_HDR_SIZE, 20, 1);
	for (i = 0; i < sizeof(msg); i++) {
		if (!raw_write(msg + i, 1) || !wait_readable(rib.fd, 1000) ||
		    imsgbuf_read(&rib) != 1) {
			zero_until_last = 0;
			break;
		}
		r = imsg_get(&rib, &im);
		if (i + 1 < sizeof(msg) && r != 0)
			zero_until_last = 0;
		if (i + 1 == sizeof(msg))
			ok = r == 1;
	}
	CHECK("1-byte pieces, imsg_get 0 until complete", zero_until_last);
	CHECK("1-byte pieces, imsg_get 1 when complete", zero_until_last && ok);
	CHECK("1-byte pieces, message exact", ok && im.hdr.type == 77 &&
	    im.hdr.peerid == 99 && im.hdr.pid == 4242 && im.datalen == 20 &&
	    memcmp(im.data, msg + IMSG_HDR_SIZE, 20) == 0 && im.fd == -1);
	CHECK("1-byte pieces, buffer empty after", rib.rlen == 0);

	/* Three messages, the first two whole and the third cut in half. */
	for (i = 0; i < 3; i++) {
		mkhdr(three + i * 40, 100 + i, 40, 0, i);
		fill(three + i * 40 + IMSG_HDR_SIZE, 24, 10 + i);
	}
	raw_write(three, 100);
	n = 0;
	while (n < 100 && wait_readable(rib.fd, 1000))
		n += imsgbuf_read(&rib);
	ok = imsg_get(&rib, &im) == 1 && im.hdr.type == 100 &&
	    memcmp(im.data, three + IMSG_HDR_SIZE, 24) == 0;
	ok = ok && imsg_get(&rib, &im) == 1 && im.hdr.type == 101 &&
	    memcmp(im.data, three + 40 + IMSG_HDR_SIZE, 24) == 0;
	CHECK("two whole messages from one read", ok);
	CHECK("half a third, imsg_get 0", imsg_get(&rib, &im) == 0 &&
	    rib.rlen == 20);
	raw_write(three + 100, 20);
	ok = next_msg(&im) == 1;
	CHECK("third completes", ok && im.hdr.type == 102 &&
	    memcmp(im.data, three + 80 + IMSG_HDR_SIZE, 24) == 0);

	/* A header split right after the length field. */
	raw_write(msg, 6);
	wait_readable(rib.fd, 1000);
	imsgbuf_read(&rib);
	CHECK("partial header, imsg_get 0", imsg_get(&rib, &im) == 0);
	raw_write(msg + 6, sizeof(msg) - 6);
	CHECK("partial header completes", next_msg(&im) == 1 &&
	    im.hdr.type == 77 && im.datalen == 20);
	pair_close();
}

#define NPW	40
#define PWLEN	10000

static void
test_partial_write(void)
{
	static uint8_t	 payload[PWLEN];
	int		 sz = 4096, pending_seen, ok, order, p[2], fdok;
	int		 i, r, rounds, got, midcut = 0;
	char		 c;

	pair_open();
	CHECK("set SO_SNDBUF small", setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF,
	    &sz, sizeof(sz)) == 0);
	if (pipe(p) == -1)
		exit(2);
	for (i = 0; i < NPW; i++) {
		fill(payload, PWLEN, i);
		/* Message 20 carries a descriptor through the partial writes. */
		imsg_compose(&wib, 1000 + i, i, i == 20 ? p[0] : -1, payload,
		    PWLEN - i);
	}
	CHECK("queued all", wib.wqueued == (size_t)NPW * (IMSG_HDR_SIZE +
	    PWLEN) - (NPW - 1) * NPW / 2);
	CHECK("first flush ok", imsgbuf_flush(&wib) == 0);
	pending_seen = wib.wqueued > 0 && wib.whead != NULL;
	CHECK("first flush leaves bytes pending", pending_seen);
	CHECK("flush with full buffer is not an error",
	    imsgbuf_flush(&wib) == 0 && wib.wqueued > 0);

	got = 0;
	ok = order = 1;
	fdok = 0;
	for (rounds = 0; got < NPW && rounds < 100000; rounds++) {
		/* Drain only a little each round so the writes stay partial. */
		if (wait_readable(rib.fd, 0)) {
			if (imsgbuf_read(&rib) == 0)
				break;
		}
		while ((r = imsg_get(&rib, &im)) == 1) {
			fill(payload, PWLEN, got);
			if (im.hdr.type != (uint32_t)(1000 + got) ||
			    im.hdr.peerid != (uint32_t)got)
				order = 0;
			if (im.datalen != (size_t)(PWLEN - got) ||
			    memcmp(im.data, payload, im.datalen) != 0)
				ok = 0;
			if (got == 20) {
				if (im.fd != -1 && write(p[1], "z", 1) == 1 &&
				    read(im.fd, &c, 1) == 1 && c == 'z')
					fdok = 1;
			} else if (im.fd != -1)
				ok = 0;
			if (im.fd != -1)
				close(im.fd);
			got++;
		}
		if (r == -1)
			break;
		if (imsgbuf_flush(&wib) == -1)
			break;
		if (wib.wqueued > 0)
			pending_seen++;
		if (wib.whead != NULL && wib.whead->off > 0)
			midcut++;
		if (!wait_readable(rib.fd, 1000))
			break;
	}
	CHECK("partial writes, every message arrives", got == NPW);
	CHECK("partial writes, in order", order);
	CHECK("partial writes, payloads intact", ok);
	CHECK("partial writes, several flushes were partial", pending_seen > 5);
	CHECK("partial writes, some message was cut mid-way", midcut > 0);
	CHECK("partial writes, fd rides along", fdok);
	CHECK("partial writes, queue empty at end", wib.wqueued == 0 &&
	    wib.whead == NULL && wib.wtail == NULL);
	CHECK("partial writes, sent fd closed by sender", !fd_is_open(p[0]));
	close(p[1]);
	pair_close();
}

static void
expect_bad(const char *name, const uint8_t *bytes, size_t len)
{
	size_t	n = 0;
	ssize_t	r;

	pair_open();
	raw_write(bytes, len);
	while (n < len && wait_readable(rib.fd, 1000)) {
		if ((r = imsgbuf_read(&rib)) <= 0)
			break;
		n += r;
	}
	errno = 0;
	CHECK(name, imsg_get(&rib, &im) == -1 && errno == EBADMSG);
	pair_close();
}

static void
test_bad_lengths(void)
{
	uint8_t	b[64];
	int	ok;

	memset(b, 0, sizeof(b));
	mkhdr(b, 1, 15, 0, 0);
	expect_bad("len 15 refused", b, IMSG_HDR_SIZE);
	mkhdr(b, 1, 0, 0, 0);
	expect_bad("len 0 refused", b, IMSG_HDR_SIZE);
	mkhdr(b, 1, 1, 0, 0);
	expect_bad("len 1 refused", b, 32);
	mkhdr(b, 1, IMSG_MAX + 1, 0, 0);
	expect_bad("len 16385 refused", b, 64);
	mkhdr(b, 1, 65535, 0, 0);
	expect_bad("len 65535 refused", b, 64);

	/* A bad length is refused as soon as the header is in, without
	 * waiting for the claimed payload. */
	mkhdr(b, 1, 40000, 0, 0);
	expect_bad("len 40000 refused at header", b, IMSG_HDR_SIZE);

	/* The good lengths next to the bad ones. */
	pair_open();
	mkhdr(b, 3, IMSG_HDR_SIZE, 0, 0);
	raw_write(b, IMSG_HDR_SIZE);
	ok = next_msg(&im) == 1;
	CHECK("len 16 accepted", ok && im.hdr.type == 3 && im.datalen == 0);
	mkhdr(b, 4, IMSG_MAX, 0, 0);
	raw_write(b, IMSG_HDR_SIZE);
	CHECK("len 16384 waits for payload", no_msg(&im) &&
	    rib.rlen == IMSG_HDR_SIZE);
	pair_close();

	/* The message after a good one is still checked. */
	memset(b, 0, sizeof(b));
	mkhdr(b, 1, 20, 0, 0);
	mkhdr(b + 20, 1, 3, 0, 0);
	pair_open();
	raw_write(b, 20 + IMSG_HDR_SIZE);
	ok = next_msg(&im) == 1;
	errno = 0;
	CHECK("bad length after a good message", ok &&
	    imsg_get(&rib, &im) == -1 && errno == EBADMSG);
	pair_close();
}

static void
test_garbage(void)
{
	uint8_t		 g[256];
	const char	*http = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof(g); i++)
		g[i] = 0xff;
	expect_bad("garbage 0xff bytes refused", g, sizeof(g));
	for (i = 0; i < sizeof(g); i++)
		g[i] = (uint8_t)(i * 97 + 13);
	g[4] = 0x07;		/* len 0x4107 = 16647 > IMSG_MAX */
	g[5] = 0x41;
	expect_bad("pseudo-random garbage refused", g, sizeof(g));

	/* Text whose bytes 4-5 read as a plausible length only waits;
	 * nothing is delivered and EOF then ends the channel. */
	pair_open();
	raw_write(http, strlen(http));
	r = no_msg(&im);
	CHECK("garbage with a plausible length waits", r &&
	    rib.rlen == strlen(http));
	close(sv[0]);
	sv[0] = -1;
	wait_readable(rib.fd, 1000);
	CHECK("garbage then EOF, read 0", imsgbuf_read(&rib) == 0);
	CHECK("garbage then EOF, still no message",
	    imsg_get(&rib, &im) == 0);
	pair_close();
}

static void
test_eof(void)
{
	ssize_t	n;
	int	ok;

	pair_open();
	close(sv[0]);
	sv[0] = -1;
	wait_readable(rib.fd, 1000);
	CHECK("EOF, imsgbuf_read returns 0", imsgbuf_read(&rib) == 0);
	pair_close();

	/* EOF right after a message: the message first, then 0. */
	pair_open();
	imsg_compose(&wib, 9, 1, -1, "bye", 3);
	imsgbuf_flush(&wib);
	close(sv[0]);
	sv[0] = -1;
	wait_readable(rib.fd, 1000);
	n = imsgbuf_read(&rib);
	ok = imsg_get(&rib, &im) == 1;
	CHECK("EOF after message, message delivered", n == IMSG_HDR_SIZE + 3 &&
	    ok && im.hdr.type == 9 && memcmp(im.data, "bye", 3) == 0);
	CHECK("EOF after message, then read 0", imsgbuf_read(&rib) == 0);
	pair_close();

	/* Nothing to read on a live socket: -1 with EAGAIN, not EOF. */
	pair_open();
	errno = 0;
	CHECK("no data, read -1 EAGAIN", imsgbuf_read(&rib) == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK));
	pair_close();

	/* Writing to a closed peer fails instead of raising SIGPIPE. */
	pair_open();
	close(sv[1]);
	sv[1] = -1;
	imsg_compose(&wib, 1, 1, -1, "x", 1);
	errno = 0;
	CHECK("flush to closed peer, -1 EPIPE", imsgbuf_flush(&wib) == -1 &&
	    errno == EPIPE);
	pair_close();
}

static int
fd_reads(int fd, const char *want)
{
	char	buf[64];
	ssize_t	n;

	n = read(fd, buf, sizeof(buf));
	return n == (ssize_t)strlen(want) && memcmp(buf, want, n) == 0;
}

/* A pipe whose read end says s; the write end is closed. */
static int
pipe_saying(const char *s)
{
	int	p[2];

	if (pipe(p) == -1)
		exit(2);
	put(p[1], s);
	close(p[1]);
	return p[0];
}

/* The next n messages in rib each carry a descriptor whose pipe says
 * prefix and the message's number (0 to n - 1); 0 when one does not. */
static int
fds_say(int n, const char *prefix)
{
	char	s[32];
	int	i, ok = 1;

	for (i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "%s%d", prefix, i);
		if (imsg_get(&rib, &im) != 1 || im.fd == -1 ||
		    !fd_reads(im.fd, s))
			ok = 0;
		if (im.fd != -1)
			close(im.fd);
	}
	return ok;
}

static void
test_fd_passing(void)
{
	struct stat	 a, b;
	int		 p[2], d, ok;

	pair_open();
	if (pipe(p) == -1 || (d = dup(p[0])) == -1)
		exit(2);
	CHECK("compose with fd", imsg_compose(&wib, 50, 5, d, "fd", 2) == 0);
	CHECK("fd still open while queued", fd_is_open(d));
	CHECK("flush with fd", imsgbuf_flush(&wib) == 0 && wib.wqueued == 0);
	CHECK("sender closes the fd once sent", !fd_is_open(d));
	ok = next_msg(&im) == 1;
	CHECK("message with fd arrives", ok && im.hdr.type == 50 &&
	    im.hdr.peerid == 5 && (im.hdr.flags & IMSGF_HASFD) &&
	    im.datalen == 2 && memcmp(im.data, "fd", 2) == 0);
	CHECK("received fd is a new descriptor", ok && im.fd >= 0 &&
	    im.fd != p[0] && im.fd != p[1] && fd_is_open(im.fd));
	CHECK("received fd is the same pipe", ok && im.fd >= 0 &&
	    fstat(im.fd, &a) == 0 && fstat(p[0], &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	CHECK("received fd is close-on-exec", ok && im.fd >= 0 &&
	    (fcntl(im.fd, F_GETFD) & FD_CLOEXEC));
	put(p[1], "through the pipe");
	CHECK("received fd reads what was written",
	    ok && im.fd >= 0 && fd_reads(im.fd, "through the pipe"));
	CHECK("fd queue empty after", rib.nfdq == 0);
	if (ok && im.fd >= 0)
		close(im.fd);
	close(p[0]);
	close(p[1]);
	pair_close();
}

static void
test_fds_in_order(void)
{
	/* 1 = with fd, 0 = without */
	static const int	 pat[] = { 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0 };
	const int		 n = sizeof(pat) / sizeof(pat[0]);
	int			 pipes[16][2], i, k, got, ok = 1;
	char			 s[32];

	pair_open();
	for (i = k = 0; i < n; i++) {
		if (pat[i]) {
			if (pipe(pipes[k]) == -1)
				exit(2);
			snprintf(s, sizeof(s), "pipe number %d", k);
			put(pipes[k][1], s);
			close(pipes[k][1]);
			imsg_compose(&wib, 200 + i, i, pipes[k][0], s,
			    strlen(s));
			k++;
		} else
			imsg_compose(&wib, 200 + i, i, -1, "none", 4);
	}
	imsgbuf_flush_all(&wib);
	for (i = k = got = 0; i < n; i++) {
		if (next_msg(&im) != 1) {
			ok = 0;
			break;
		}
		got++;
		if (im.hdr.type != (uint32_t)(200 + i))
			ok = 0;
		if (pat[i]) {
			snprintf(s, sizeof(s), "pipe number %d", k++);
			if (!(im.hdr.flags & IMSGF_HASFD) || im.fd == -1 ||
			    !fd_reads(im.fd, s))
				ok = 0;
		} else if (im.fd != -1 || (im.hdr.flags & IMSGF_HASFD))
			ok = 0;
		if (im.fd != -1)
			close(im.fd);
	}
	CHECK("interleaved fds, all messages", got == n);
	CHECK("interleaved fds, each fd with its message", ok);
	CHECK("interleaved fds, queue empty", rib.nfdq == 0);
	pair_close();

	/* More descriptors than the receive queue holds, read before any
	 * message is taken: the excess is dropped, and the message that
	 * misses its fd is a framing error, never someone else's fd. */
	pair_open();
	for (i = 0; i < IMSG_FDQ_MAX + 2; i++) {
		snprintf(s, sizeof(s), "p%d", i);
		imsg_compose(&wib, 300 + i, i, pipe_saying(s), NULL, 0);
	}
	imsgbuf_flush_all(&wib);
	for (i = 0; i < IMSG_FDQ_MAX + 2 && wait_readable(rib.fd, 1000); i++)
		if (imsgbuf_read(&rib) <= 0)
			break;
	CHECK("fd flood, queue capped", rib.nfdq == IMSG_FDQ_MAX);
	CHECK("fd flood, queued fds match their messages",
	    fds_say(IMSG_FDQ_MAX, "p"));
	CHECK("fd flood, message without its fd is refused",
	    imsg_get(&rib, &im) == -1);
	pair_close();
}

/*
 * With imsgbuf_batch_fds, one sendmsg carries many messages and their
 * descriptors: one read brings IMSG_SEND_FDS of them, and each message
 * still gets its own descriptor, in order, among fd-less ones.
 */
static void
test_fd_batch(void)
{
	const int	 n = 2 * IMSG_SEND_FDS + 5;
	int		 i, k, got = 0, ok = 1, reads = 0;
	char		 s[32];

	pair_open();
	imsgbuf_batch_fds(&wib);
	for (i = k = 0; i < n; i++) {
		snprintf(s, sizeof(s), "batch %d", i);
		imsg_compose(&wib, 400 + i, i, i % 5 == 3 ? -1 :
		    pipe_saying(s), s, strlen(s));
	}
	CHECK("fd batch, one flush sends all", imsgbuf_flush(&wib) == 0 &&
	    wib.whead == NULL);
	wait_readable(rib.fd, 1000);
	imsgbuf_read(&rib);
	CHECK("fd batch, one read brings a batch of descriptors",
	    rib.nfdq == IMSG_SEND_FDS);
	while (got < n) {
		while (got < n && imsg_get(&rib, &im) == 1) {
			snprintf(s, sizeof(s), "batch %d", got);
			if (im.hdr.type != (uint32_t)(400 + got) ||
			    im.datalen != strlen(s) ||
			    memcmp(im.data, s, im.datalen) != 0)
				ok = 0;
			if (got % 5 == 3 ? im.fd != -1 :
			    im.fd == -1 || !fd_reads(im.fd, s))
				ok = 0;
			if (im.fd != -1)
				close(im.fd);
			got++;
		}
		if (got == n || !wait_readable(rib.fd, 1000) ||
		    imsgbuf_read(&rib) <= 0)
			break;
		reads++;
	}
	CHECK("fd batch, every message with its own descriptor",
	    got == n && ok);
	CHECK("fd batch, few reads", reads <= 3);
	CHECK("fd batch, queue empty", rib.nfdq == 0);
	pair_close();
}

/* The next message into im from ib, waiting a second at most. */
static int
get_from(struct imsgbuf *ib)
{
	int	r;

	im.fd = -1;
	while ((r = imsg_get(ib, &im)) == 0)
		if (!wait_readable(ib->fd, 1000) || imsgbuf_read(ib) <= 0)
			return 0;
	return r == 1;
}

/*
 * Without batching, a message with a descriptor ends its sendmsg: a
 * reader that reads the first message with an imsgbuf of its own and
 * then hands the socket to another (start-up: IMSG_CONF, then the
 * process's channel) leaves every later message to the second one.
 */
static void
test_fd_ends_send(void)
{
	struct imsgbuf	second;
	int		ok;

	pair_open();
	imsg_compose(&wib, 1, 0, pipe_saying("first"), "a", 1);
	imsg_compose(&wib, 2, 0, -1, "b", 1);
	imsg_compose(&wib, 3, 0, pipe_saying("third"), "c", 1);
	imsg_compose(&wib, 4, 0, pipe_saying("fourth"), "d", 1);
	imsgbuf_flush_all(&wib);
	ok = imsg_read_one(&rib, &im) == 1 && im.hdr.type == 1 &&
	    im.fd != -1 && fd_reads(im.fd, "first");
	if (im.fd != -1)
		close(im.fd);
	CHECK("first message read alone", ok && rib.rlen == 0 &&
	    rib.nfdq == 0);
	imsgbuf_init(&second, rib.fd);
	ok = get_from(&second) && im.hdr.type == 2 && im.fd == -1;
	ok = ok && get_from(&second) && im.hdr.type == 3 &&
	    im.fd != -1 && fd_reads(im.fd, "third");
	if (im.fd != -1)
		close(im.fd);
	ok = ok && get_from(&second) && im.hdr.type == 4 &&
	    im.fd != -1 && fd_reads(im.fd, "fourth");
	if (im.fd != -1)
		close(im.fd);
	CHECK("later messages reach the second reader", ok);
	imsgbuf_clear(&second);
	pair_close();
}

/*
 * A peer passing more descriptors in one sendmsg than a read makes room
 * for: those that fit go with their messages, and from the first that
 * was lost on, no message gets a descriptor at all (never another's).
 */
static void
test_fd_truncated(void)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) *
				    (IMSG_SEND_FDS + 1))];
	} cm;
	const int	 n = IMSG_SEND_FDS + 1;
	uint8_t		 b[(IMSG_SEND_FDS + 1) * IMSG_HDR_SIZE];
	int		 fds[IMSG_SEND_FDS + 1], i;
	char		 s[32];
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*c;

	pair_open();
	for (i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "t%d", i);
		fds[i] = pipe_saying(s);
		mkhdr(b + i * IMSG_HDR_SIZE, 500 + i, IMSG_HDR_SIZE,
		    IMSGF_HASFD, 0);
	}
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = b;
	iov.iov_len = sizeof(b);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	CHECK("oversized SCM_RIGHTS sent",
	    sendmsg(sv[0], &msg, 0) == (ssize_t)sizeof(b));
	for (i = 0; i < n; i++)
		close(fds[i]);
	/* A well-formed message with a descriptor comes after. */
	imsg_compose(&wib, 600, 0, pipe_saying("later"), NULL, 0);
	imsgbuf_flush_all(&wib);
	while (wait_readable(rib.fd, 200))
		if (imsgbuf_read(&rib) <= 0)
			break;
	CHECK("descriptors that fit go with their messages",
	    fds_say(IMSG_SEND_FDS, "t"));
	errno = 0;
	CHECK("the first message past them is refused, not given a later "
	    "descriptor", imsg_get(&rib, &im) == -1 && errno == EBADMSG);
	pair_close();
}

static void
test_hasfd_without_fd(void)
{
	uint8_t	b[IMSG_HDR_SIZE + 4];
	int	p[2];

	mkhdr(b, 1, sizeof(b), IMSGF_HASFD, 0);
	memcpy(b + IMSG_HDR_SIZE, "abcd", 4);
	expect_bad("HASFD without fd refused", b, sizeof(b));

	/* An fd-less message after an fd message cannot steal its fd, and a
	 * later HASFD message with none left is refused. */
	pair_open();
	if (pipe(p) == -1)
		exit(2);
	close(p[1]);
	imsg_compose(&wib, 1, 0, p[0], NULL, 0);
	imsgbuf_flush_all(&wib);
	raw_write(b, sizeof(b));
	CHECK("fd message before forged one", next_msg(&im) == 1 &&
	    im.fd != -1);
	if (im.fd != -1)
		close(im.fd);
	errno = 0;
	CHECK("forged HASFD after fd used up refused",
	    next_msg(&im) == -1 && errno == EBADMSG);
	pair_close();
}

static void
test_clear(void)
{
	int	p[2], q[2], fd;

	pair_open();
	if (pipe(p) == -1 || pipe(q) == -1)
		exit(2);
	imsg_compose(&wib, 1, 0, p[0], NULL, 0);
	imsgbuf_clear(&wib);
	CHECK("clear closes queued fds", !fd_is_open(p[0]));
	CHECK("clear empties the write queue", wib.whead == NULL &&
	    wib.wtail == NULL && wib.wqueued == 0);
	imsg_compose(&wib, 1, 0, q[0], NULL, 0);
	imsgbuf_flush_all(&wib);
	wait_readable(rib.fd, 1000);
	imsgbuf_read(&rib);
	CHECK("received fd waits in queue", rib.nfdq == 1);
	fd = rib.nfdq == 1 ? rib.fdq[0] : -1;
	imsgbuf_clear(&rib);
	CHECK("clear closes received fds", rib.nfdq == 0 && rib.rlen == 0 &&
	    fd != -1 && !fd_is_open(fd));
	close(p[1]);
	close(q[1]);
	pair_close();
}

static void
test_msgbuild(void)
{
	struct msgbuild	 mb;
	struct msgread	 mr;
	static uint8_t	 blob[IMSG_DATA_MAX];
	const void	*d;
	char		 s[64], small[5], six[6];
	uint32_t	 u;
	uint64_t	 v;
	int		 ok, p[2];

	pair_open();
	mb_init(&mb);
	mb_u32(&mb, 0xa1b2c3d4U);
	mb_u64(&mb, 0x0102030405060708ULL);
	mb_str(&mb, "user@example.org");
	mb_str(&mb, "");
	mb_data(&mb, "\0\1\2\3\4", 5);
	mb_u32(&mb, 0);
	mb_u64(&mb, UINT64_MAX);
	CHECK("builder length", mb.len == 4 + 8 + 4 + 16 + 4 + 5 + 4 + 8 &&
	    !mb.overflow);
	CHECK("mb_send", mb_send(&mb, &wib, 60, 61, -1) == 0);
	ok = next_msg(&im) == 1;
	CHECK("built message arrives", ok && im.hdr.type == 60 &&
	    im.hdr.peerid == 61 && im.datalen == mb.len);
	mr_init(&mr, &im);
	u = mr_u32(&mr);
	v = mr_u64(&mr);
	mr_str(&mr, s, sizeof(s));
	CHECK("mr_u32", u == 0xa1b2c3d4U);
	CHECK("mr_u64", v == 0x0102030405060708ULL);
	CHECK("mr_str", strcmp(s, "user@example.org") == 0);
	mr_str(&mr, s, sizeof(s));
	CHECK("mr_str empty", s[0] == '\0' && !mr.err);
	d = mr_data(&mr, 5);
	CHECK("mr_data", d != NULL && memcmp(d, "\0\1\2\3\4", 5) == 0);
	CHECK("mr_u32 zero", mr_u32(&mr) == 0 && !mr.err);
	CHECK("mr_u64 max", mr_u64(&mr) == UINT64_MAX && !mr.err);
	CHECK("mr_end ok", mr_end(&mr) == 0);
	pair_close();

	/* Readers over hand-made struct imsg payloads. */
	mb_init(&mb);
	mb_str(&mb, "hello");
	memcpy(im.data, mb.buf, mb.len);
	im.datalen = mb.len;
	mr_init(&mr, &im);
	mr_str(&mr, small, sizeof(small));
	CHECK("mr_str too long for out, error", mr.err && small[0] == '\0' &&
	    mr_end(&mr) == -1);
	mr_init(&mr, &im);
	mr_str(&mr, six, sizeof(six));
	CHECK("mr_str exactly fits out", !mr.err &&
	    strcmp(six, "hello") == 0 && mr_end(&mr) == 0);

	mb_init(&mb);
	mb_u32(&mb, 3);
	mb_data(&mb, "a\0b", 3);
	memcpy(im.data, mb.buf, mb.len);
	im.datalen = mb.len;
	mr_init(&mr, &im);
	mr_str(&mr, s, sizeof(s));
	CHECK("mr_str with embedded NUL, error", mr.err &&
	    mr_end(&mr) == -1);

	mb_init(&mb);
	mb_u32(&mb, 50);		/* claims 50 bytes, has 3 */
	mb_data(&mb, "abc", 3);
	memcpy(im.data, mb.buf, mb.len);
	im.datalen = mb.len;
	mr_init(&mr, &im);
	mr_str(&mr, s, sizeof(s));
	CHECK("mr_str longer than payload, error", mr.err && s[0] == '\0' &&
	    mr_end(&mr) == -1);

	mb_init(&mb);
	mb_u32(&mb, 1);
	mb_u32(&mb, 2);
	memcpy(im.data, mb.buf, mb.len);
	im.datalen = mb.len;
	mr_init(&mr, &im);
	CHECK("trailing bytes, read ok", mr_u32(&mr) == 1 && !mr.err);
	CHECK("trailing bytes, mr_end -1", mr_end(&mr) == -1);

	mb_init(&mb);
	mb_u32(&mb, 7);
	memcpy(im.data, mb.buf, mb.len);
	im.datalen = mb.len;
	mr_init(&mr, &im);
	CHECK("short payload, mr_u64 gives 0", mr_u64(&mr) == 0 && mr.err);
	CHECK("short payload, mr_end -1", mr_end(&mr) == -1);
	mr_init(&mr, &im);
	(void)mr_u32(&mr);
	CHECK("short payload, mr_u32 past end", mr_u32(&mr) == 0 && mr.err &&
	    mr_end(&mr) == -1);
	mr_init(&mr, &im);
	CHECK("short payload, mr_data past end", mr_data(&mr, 5) == NULL &&
	    mr.err);
	CHECK("error is sticky", mr_u32(&mr) == 0 && mr.err &&
	    mr_end(&mr) == -1);
	im.datalen = 0;
	mr_init(&mr, &im);
	CHECK("empty payload, mr_end 0", mr_end(&mr) == 0);
	mr_str(&mr, s, sizeof(s));
	CHECK("empty payload, mr_str error", mr.err && s[0] == '\0');

	/* The builder: exactly full is fine, one byte more overflows. */
	pair_open();
	mb_init(&mb);
	mb_data(&mb, blob, IMSG_DATA_MAX);
	CHECK("builder exactly full", !mb.overflow &&
	    mb.len == IMSG_DATA_MAX);
	CHECK("full builder sends", mb_send(&mb, &wib, 1, 0, -1) == 0);
	mb_u32(&mb, 1);
	CHECK("builder overflow flagged", mb.overflow &&
	    mb.len == IMSG_DATA_MAX);
	errno = 0;
	CHECK("overflowing builder, mb_send -1",
	    mb_send(&mb, &wib, 1, 0, -1) == -1 && errno == EMSGSIZE);
	if (pipe(p) == -1)
		exit(2);
	CHECK("overflowing builder closes the fd",
	    mb_send(&mb, &wib, 1, 0, p[0]) == -1 && !fd_is_open(p[0]));
	close(p[1]);
	mb_init(&mb);
	mb_data(&mb, blob, IMSG_DATA_MAX - 3);
	mb_u32(&mb, 5);
	mb_u32(&mb, 6);
	CHECK("overflow then smaller write stays overflowed", mb.overflow);
	mb_init(&mb);
	mb_data(&mb, blob, IMSG_DATA_MAX - 8);
	mb_str(&mb, "four");
	CHECK("mb_str exactly filling", !mb.overflow &&
	    mb.len == IMSG_DATA_MAX);
	mb_init(&mb);
	mb_data(&mb, blob, IMSG_DATA_MAX - 7);
	mb_str(&mb, "four");
	CHECK("mb_str overflowing", mb.overflow &&
	    mb_send(&mb, &wib, 1, 0, -1) == -1);
	mb_init(&mb);
	CHECK("mb_init resets overflow", !mb.overflow && mb.len == 0);
	pair_close();
}

static void
test_read_one(void)
{
	pid_t	 pid;
	int	 st, r, ok;

	pair_open();
	pid = fork();
	if (pid == -1)
		exit(2);
	if (pid == 0) {
		static uint8_t	big[IMSG_DATA_MAX];

		close(sv[1]);
		usleep(200 * 1000);
		imsg_compose(&wib, 70, 1, -1, "first", 5);
		imsg_compose(&wib, 71, 2, -1, "second", 6);
		fill(big, sizeof(big), 70);
		for (r = 0; r < 40; r++)
			imsg_compose(&wib, 72 + r, 3, -1, big, sizeof(big));
		_exit(imsgbuf_flush_all(&wib) == 0 ? 0 : 1);
	}
	/* The parent's copy of the writer side must not keep EOF away. */
	close(sv[0]);
	sv[0] = -1;
	r = imsg_read_one(&rib, &im);
	CHECK("read_one blocks until a message", r == 1 && im.hdr.type == 70 &&
	    im.datalen == 5 && memcmp(im.data, "first", 5) == 0 &&
	    im.hdr.pid == (uint32_t)getpid());
	r = imsg_read_one(&rib, &im);
	CHECK("read_one second", r == 1 && im.hdr.type == 71 &&
	    memcmp(im.data, "second", 6) == 0);
	ok = 1;
	for (st = 0; st < 40; st++) {
		r = imsg_read_one(&rib, &im);
		if (r != 1 || im.hdr.type != (uint32_t)(72 + st) ||
		    im.datalen != IMSG_DATA_MAX || im.data[0] != (uint8_t)
		    (70 * 131) || im.data[IMSG_DATA_MAX - 1] !=
		    (uint8_t)(70 * 131 + (IMSG_DATA_MAX - 1) * 7 +
		    ((IMSG_DATA_MAX - 1) >> 8)))
			ok = 0;
	}
	CHECK("read_one with flush_all of 40 max messages", ok);
	CHECK("read_one at EOF returns 0", imsg_read_one(&rib, &im) == 0);
	CHECK("writer child flushed all", waitpid(pid, &st, 0) == pid &&
	    WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pair_close();

	/* Bad framing surfaces from imsg_read_one too. */
	pair_open();
	{
		uint8_t	b[IMSG_HDR_SIZE];

		mkhdr(b, 1, 3, 0, 0);
		raw_write(b, sizeof(b));
	}
	CHECK("read_one bad length -1", imsg_read_one(&rib, &im) == -1);
	pair_close();
}

static int
count_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int
main(void)
{
	int	nfds = count_fds();

	test_roundtrip();
	test_maxsize();
	test_partial_read();
	test_partial_write();
	test_bad_lengths();
	test_garbage();
	test_eof();
	test_fd_passing();
	test_fds_in_order();
	test_fd_batch();
	test_fd_ends_send();
	test_fd_truncated();
	test_hasfd_without_fd();
	test_clear();
	test_msgbuild();
	test_read_one();
	CHECK("no descriptor leaked", nfds != -1 && count_fds() == nfds);
	UNIT_EXIT();
}
