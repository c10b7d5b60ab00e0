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

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_too_big_fails_closed();
	test_closed_channel_drops();
	test_sent_now();
	UNIT_EXIT();
}
