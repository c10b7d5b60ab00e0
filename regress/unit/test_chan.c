/*
 * Unit tests for common/chan.c's one way to send to a peer, and its one
 * error policy: a message that cannot be queued ends the process (exit
 * 1, the peer named in the log); a message to a channel closed already
 * is dropped with its descriptor; anything else reaches the peer.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "unit.h"
#include "util.h"

static int
no_dispatch(struct chan *c, struct imsg *im)
{
	return -1;
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* The channel's far end, and a loop for the near one. */
static void
open_chan(struct chan *c, struct event_base **base, int *far,
    const char *name)
{
	int	sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		perror("socketpair");
		exit(2);
	}
	*base = event_base_new();
	chan_init(c, *base, sv[0], name, no_dispatch, NULL, NULL);
	*far = sv[1];
}

static void
overflow(struct msgbuild *mb)
{
	static const uint8_t	big[IMSG_DATA_MAX];

	mb_init(mb);
	mb_data(mb, big, sizeof(big));
	mb_u32(mb, 1);		/* one more than fits */
}

/*
 * In a child process: send what does not fit. Returns its exit status
 * (-1 when it returned instead of exiting) and what it logged.
 */
static int
send_too_big(int (*send)(struct chan *, struct msgbuild *, uint32_t,
    uint32_t, int), char *logbuf, size_t loglen)
{
	struct event_base	*base;
	struct msgbuild		*mb;
	struct chan		 c;
	int			 errp[2], status, far;
	ssize_t			 n;
	pid_t			 pid;

	if (pipe(errp) == -1 || (pid = fork()) == -1) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		dup2(errp[1], STDERR_FILENO);
		close(errp[0]);
		log_init(LOG_TO_STDERR, 2, "test");
		open_chan(&c, &base, &far, "queued");
		mb = malloc(sizeof(*mb));
		overflow(mb);
		send(&c, mb, 42, 0, -1);
		_exit(100);	/* it returned: the message is silently lost */
	}
	close(errp[1]);
	n = read(errp[0], logbuf, loglen - 1);
	logbuf[n > 0 ? n : 0] = '\0';
	close(errp[0]);
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
		return -2;
	return WEXITSTATUS(status) == 100 ? -1 : WEXITSTATUS(status);
}

static void
test_too_big_fails_closed(void)
{
	char	logbuf[1024];
	int	st;

	st = send_too_big(chan_send, logbuf, sizeof(logbuf));
	CHECK("chan_send: a message that cannot be queued exits 1", st == 1);
	CHECK("chan_send: the log names the peer and the type",
	    strstr(logbuf, "queued") != NULL && strstr(logbuf, "42") != NULL);
	st = send_too_big(chan_queue, logbuf, sizeof(logbuf));
	CHECK("chan_queue: a message that cannot be queued exits 1", st == 1);
}

static void
test_closed_channel_drops(void)
{
	struct event_base	*base;
	struct msgbuild		 mb;
	struct chan		 c;
	int			 far, p[2];

	open_chan(&c, &base, &far, "smtpd");
	chan_close(&c);
	if (pipe(p) == -1)
		exit(2);
	mb_init(&mb);
	mb_u32(&mb, 7);
	CHECK("closed channel: -1", chan_send(&c, &mb, 1, 0, p[0]) == -1);
	CHECK("closed channel: the descriptor is closed", !fd_is_open(p[0]));
	close(p[1]);
	close(far);
	event_base_free(base);
}

static void
test_sent_now(void)
{
	struct event_base	*base;
	struct msgbuild		 mb;
	struct chan		 c;
	uint8_t			 buf[64];
	int			 far;

	open_chan(&c, &base, &far, "pop3d");
	mb_init(&mb);
	mb_u32(&mb, 0x01020304);
	CHECK("chan_queue + chan_flush: queued",
	    chan_queue(&c, &mb, 9, 5, -1) == 0);
	chan_flush(&c);
	CHECK("chan_flush: written at once, nothing left",
	    c.ib.whead == NULL && read(far, buf, sizeof(buf)) ==
	    (ssize_t)(IMSG_HDR_SIZE + 4));
	chan_close(&c);
	close(far);
	event_base_free(base);
}

/* Run the loop's pending callbacks once, without waiting. */
static void
loop_once(struct event_base *base)
{
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/*
 * chan_send writes at the end of the loop turn, every message queued in
 * it in one write, without watching the socket for writability (two
 * epoll_ctl calls per message, and a wake-up, before).
 */
static void
test_sent_at_turn_end(void)
{
	struct event_base	*base;
	struct msgbuild		 mb;
	struct chan		 c;
	uint8_t			 buf[256];
	int			 far, i;

	open_chan(&c, &base, &far, "outbound");
	set_nonblock(far);
	for (i = 0; i < 3; i++) {
		mb_init(&mb);
		mb_u32(&mb, i);
		chan_send(&c, &mb, 9, 0, -1);
	}
	CHECK("chan_send: not written before the loop runs",
	    read(far, buf, sizeof(buf)) == -1 && errno == EAGAIN);
	CHECK("chan_send: no watch for writability to write them",
	    !(c.events & EV_WRITE));
	loop_once(base);
	CHECK("chan_send: the three written in one turn",
	    read(far, buf, sizeof(buf)) == 3 * (IMSG_HDR_SIZE + 4));
	CHECK("chan_send: nothing left, writability not watched",
	    c.ib.whead == NULL && !(c.events & EV_WRITE));
	chan_close(&c);
	close(far);
	event_base_free(base);
}

/* A channel closed with a write pending: the loop forgets the write. */
static void
test_close_with_write_pending(void)
{
	struct event_base	*base;
	struct msgbuild		 mb;
	struct chan		*c = calloc(1, sizeof(*c));
	int			 far;

	open_chan(c, &base, &far, "queued");
	mb_init(&mb);
	mb_u32(&mb, 1);
	chan_send(c, &mb, 9, 0, -1);
	chan_close(c);
	memset(c, 0xa5, sizeof(*c));	/* what free() may leave */
	free(c);
	loop_once(base);
	CHECK("closed with a write pending: nothing runs after", 1);
	close(far);
	event_base_free(base);
}

/* A peer that does not read: the rest waits for writability. */
static void
test_full_socket_waits(void)
{
	static uint8_t		 big[IMSG_DATA_MAX - 64];
	static uint8_t		 sink[1 << 20];
	struct event_base	*base;
	struct msgbuild		 mb;
	struct chan		 c;
	size_t			 want = 0, got = 0;
	ssize_t			 n;
	int			 far, i, sz = 4096;

	open_chan(&c, &base, &far, "mxcache");
	setsockopt(c.ib.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	set_nonblock(far);
	for (i = 0; i < 16; i++) {
		mb_init(&mb);
		mb_data(&mb, big, sizeof(big));
		chan_send(&c, &mb, 9, 0, -1);
		want += IMSG_HDR_SIZE + sizeof(big);
	}
	loop_once(base);
	CHECK("full socket: the rest is queued, writability watched",
	    c.ib.whead != NULL && (c.events & EV_WRITE));
	for (i = 0; i < 1000 && got < want; i++) {
		while ((n = read(far, sink, sizeof(sink))) > 0)
			got += n;
		loop_once(base);
	}
	CHECK("full socket: every octet arrives", got == want);
	CHECK("full socket: then writability is not watched",
	    c.ib.whead == NULL && !(c.events & EV_WRITE));
	chan_close(&c);
	close(far);
	event_base_free(base);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_too_big_fails_closed();
	test_closed_channel_drops();
	test_sent_now();
	test_sent_at_turn_end();
	test_close_with_write_pending();
	test_full_socket_waits();
	UNIT_EXIT();
}
