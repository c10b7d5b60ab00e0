/*
 * smtp_load: SMTP load generator for `make bench` (regress/bench/).
 *
 * Load mode (default): C concurrent sessions send N messages of S octets,
 * one SMTP session per message, as real senders do:
 *     connect, 220, EHLO, MAIL FROM, RCPT TO, DATA, message, QUIT.
 * Recipients are taken round-robin from the -r list.  For every message the
 * latency from the last octet of the data (".\r\n" written) to the 250
 * reply is recorded.  Prints the accept rate (messages that got a 250
 * divided by the wall time from the first connect to the last 250), p50 /
 * p99 / max of the 250 latency, and every error: any reply that is not
 * 2xx/3xx (with its text), connection failures, early closes, timeouts.
 *
 * Idle mode (-i K): open K sessions (at most C connecting at a time), read
 * the greeting, send EHLO, read its reply, then keep all of them open and
 * silent for -T seconds (or until SIGTERM/SIGINT).  Prints "READY ..." once
 * all K are established (or failed) so a driver can measure the server
 * meanwhile, then a summary including how many the server closed.
 *
 * TLS (-e): every session says STARTTLS after its EHLO, makes a TLS
 * handshake and says EHLO again inside TLS before its transaction.  -k:
 * each of the C session slots keeps the TLS session the server handed it
 * (a TLS 1.3 ticket, or a TLS 1.2 session) and offers it in its next
 * handshake, as a mail client polling one server does, so a server that
 * resumes skips its signature; each ticket is offered once.  Without -k
 * every handshake is a full one.  -N: sessions without a transaction (connect, EHLO, STARTTLS,
 * EHLO, QUIT); -n then counts sessions and the rate is sessions/s.  The
 * server's certificate is not checked: a load generator measures cost.
 *
 * Fixed message (-m FILE): every message is FILE's octets as they are
 * (line ends made CRLF, dot-stuffed), instead of a generated one, so a
 * message signed beforehand (DKIM) still verifies at the server; -s is
 * then FILE's size.  The envelope still comes from -f and -r.
 *
 * The last line of output is always "RESULT key=value ..." for scripts.
 * Linux only (epoll); libc and OpenSSL.  Bounded: -t limits the whole load
 * run (and the connecting phase of idle mode); -R limits each reply.
 */

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define INBUF		8192
#define MAXERRKINDS	64
#define MAXMSGFILE	(10 * 1024 * 1024)

enum state {
	S_FREE = 0,
	S_GREETING,		/* waiting for 220 */
	S_EHLO,			/* waiting for the EHLO reply */
	S_MAIL,
	S_RCPT,
	S_DATA,			/* waiting for 354 */
	S_BODY,			/* writing the message */
	S_DOT,			/* waiting for the 250 after the data */
	S_QUIT,			/* waiting for 221 or EOF */
	S_STARTTLS,		/* waiting for the 220 to STARTTLS */
	S_HANDSHAKE,		/* TLS handshake under way */
	S_IDLE,			/* idle mode: established, holding */
};

static const char *state_names[] = {
	"free", "greeting", "EHLO", "MAIL", "RCPT", "DATA", "data",
	"end of data", "QUIT", "STARTTLS", "TLS handshake", "idle",
};

struct sess {
	int		 fd;
	enum state	 st;
	int		 msgno;		/* message index, -1 in idle mode */
	int		 accepted;	/* got the 250 after the data */
	char		*out;		/* pending output */
	size_t		 outlen, outoff;
	int		 wantout;	/* EPOLLOUT registered */
	char		 in[INBUF];
	size_t		 inlen;
	char		 reply[512];	/* first line of the reply being read */
	char		 cmd[512];	/* the command being sent */
	int		 replycode;
	double		 deadline;	/* the current reply must arrive by */
	double		 t_eod;		/* end of data written */
	double		 t_state;	/* when the current wait began */
	char		*msgbuf;	/* this session's message buffer */
	SSL		*ssl;		/* inside TLS (-e) */
	SSL_SESSION	*saved;		/* -k: to offer next time */
	int		 wr_wants_rd;	/* SSL_write waits for input */
};

struct errkind {
	char	text[200];
	int	count;
};

/* Options. */
static const char *host = "127.0.0.1";
static int	 port = 25;
static int	 conc = 32;
static int	 nmsgs = 2000;
static size_t	 msgsize = 4096;
static char	**rcpts;
static int	 nrcpts;
static const char *from = "bench@load.example";
static const char *helo = "load.example";
static double	 tlimit = 60;
static double	 replytimeout = 30;
static int	 idle_k;		/* idle mode when > 0 */
static double	 hold = 10;
static int	 quiet;
static int	 use_tls;		/* -e: STARTTLS */
static int	 resume;		/* -k: offer the last session */
static int	 sessions_only;		/* -N: no transaction */

/* State. */
static struct sockaddr_storage dst;
static socklen_t dstlen;
static int	 ep = -1;
static struct sess *sess;
static int	 nsess;
static int	 next_msg;		/* next message index to start */
static int	 started, active, accepted, failed;
static double	*lat;			/* latency of each accepted message */
static int	 nlat;
static double	*sesslat;		/* connect .. 250, per accepted message */
static double	 t_start, t_first_connect = -1, t_last_250 = -1;
static double	 t_first_connect_wall;
static struct errkind errkinds[MAXERRKINDS];
static int	 nerrkinds, errother;
static int	 nerrors;
static char	*body;			/* shared message body */
static const char *msgfile;		/* -m: send this file as it is */
static char	*fixedmsg;		/* -m: its wire form, dot at the end */
static size_t	 fixedlen;
static size_t	 bodylen;
static size_t	 hdrroom;
static volatile sig_atomic_t stop_signal;
static int	 timelimit_hit;
static int	 idle_established, idle_closed;
static double	*conn_t0;		/* connect time per session slot */
/* Time spent waiting for each reply, summed over all sessions. */
static double	 wait_sum[S_IDLE + 1];
static int	 wait_n[S_IDLE + 1];
/* TLS. */
static SSL_CTX	*tls_ctx;
static int	 tls_done, tls_offered, tls_resumed;
static double	*hslat;			/* handshake times */
static int	 nhs;
static char	 tls_err[160];		/* the last TLS error */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
wallnow(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "smtp_load: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: smtp_load [-q] [-h host] [-p port] [-c sessions] "
	    "[-n messages]\n"
	    "           [-s size] [-r rcpt,rcpt,...] [-f from] [-H helo] "
	    "[-t seconds]\n"
	    "           [-R reply-timeout] [-i idle-sessions [-T hold]] "
	    "[-e [-k]] [-N]\n"
	    "           [-m message-file]\n");
	exit(2);
}

/* Count an error by its text (replies and local failures alike). */
static void
error_note(const char *fmt, ...)
{
	char text[200];
	va_list ap;
	int i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	nerrors++;
	for (i = 0; i < nerrkinds; i++)
		if (strcmp(errkinds[i].text, text) == 0) {
			errkinds[i].count++;
			return;
		}
	if (nerrkinds < MAXERRKINDS) {
		strlcpy(errkinds[nerrkinds].text, text,
		    sizeof(errkinds[nerrkinds].text));
		errkinds[nerrkinds++].count = 1;
	} else
		errother++;
}

static void
build_body(void)
{
	/* Headers take about hdrroom octets; the body fills the rest with
	 * lines of at most 76 characters (none starts with a dot), each
	 * ended by CRLF. */
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t i = 0, rem, l, k;

	hdrroom = 400;
	bodylen = msgsize > hdrroom + 2 ? msgsize - hdrroom : 0;
	if ((body = malloc(bodylen + 1)) == NULL)
		die("out of memory");
	while (i < bodylen) {
		rem = bodylen - i;
		if (rem - 2 <= 76)
			l = rem - 2;
		else if (rem - 2 - 76 - 2 == 1)
			l = 75;		/* never leave a single octet */
		else
			l = 76;
		for (k = 0; k < l; k++)
			body[i + k] = alnum[(i / 78 + k) % (sizeof(alnum) - 1)];
		body[i + l] = '\r';
		body[i + l + 1] = '\n';
		i += l + 2;
	}
}

/*
 * -m: read FILE (at most MAXMSGFILE octets) into its DATA form: every line
 * ended by CRLF (a bare LF or CR becomes CRLF), a line that starts with a
 * dot gets one more, and ".\r\n" at the end.  Shared by all sessions and
 * never written to afterwards.
 */
static void
load_message(const char *path)
{
	FILE *f;
	char *raw;
	size_t n, i, o;
	int bol = 1;

	if ((f = fopen(path, "rb")) == NULL)
		die("%s: %s", path, strerror(errno));
	if ((raw = malloc(MAXMSGFILE + 1)) == NULL)
		die("out of memory");
	n = fread(raw, 1, MAXMSGFILE + 1, f);
	if (ferror(f))
		die("%s: read error", path);
	fclose(f);
	if (n > MAXMSGFILE)
		die("%s: larger than %d octets", path, MAXMSGFILE);
	/* Worst case: every octet a CR or LF turned into CRLF plus a dot,
	 * and the final CRLF and dot line. */
	if ((fixedmsg = malloc(3 * n + 8)) == NULL)
		die("out of memory");
	for (i = 0, o = 0; i < n; i++) {
		if (bol && raw[i] == '.')
			fixedmsg[o++] = '.';
		bol = 0;
		if (raw[i] == '\r' || raw[i] == '\n') {
			if (raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n')
				i++;
			fixedmsg[o++] = '\r';
			fixedmsg[o++] = '\n';
			bol = 1;
			continue;
		}
		fixedmsg[o++] = raw[i];
	}
	if (!bol) {
		fixedmsg[o++] = '\r';
		fixedmsg[o++] = '\n';
	}
	msgsize = o;
	memcpy(fixedmsg + o, ".\r\n", 3);
	fixedlen = o + 3;
	free(raw);
}

/* Fill s->msgbuf with the message for s->msgno, dot-terminated. */
static void
build_message(struct sess *s, const char *rcpt)
{
	char hdr[512], date[64];
	time_t t = time(NULL);
	struct tm tm;
	int h;
	size_t pad, len;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	h = snprintf(hdr, sizeof(hdr),
	    "From: <%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: smtp_load message %d\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%ld.%d.%d@%s>\r\n"
	    "X-Pad: ",
	    from, rcpt, s->msgno, date, (long)t, (int)getpid(), s->msgno,
	    helo);
	if (h < 0 || (size_t)h >= sizeof(hdr) - 8)
		die("header too long");
	/* Pad X-Pad so that headers + blank line + body == msgsize. */
	len = (size_t)h + 2 /* CRLF after X-Pad */ + 2 /* blank line */ +
	    bodylen;
	pad = msgsize > len ? msgsize - len : 0;
	if (pad > 1000)
		pad = 1000;
	memcpy(s->msgbuf, hdr, h);
	len = h;
	memset(s->msgbuf + len, 'p', pad);
	len += pad;
	memcpy(s->msgbuf + len, "\r\n\r\n", 4);
	len += 4;
	memcpy(s->msgbuf + len, body, bodylen);
	len += bodylen;
	if (len < 2 || memcmp(s->msgbuf + len - 2, "\r\n", 2) != 0) {
		memcpy(s->msgbuf + len, "\r\n", 2);
		len += 2;
	}
	memcpy(s->msgbuf + len, ".\r\n", 3);
	len += 3;
	s->out = s->msgbuf;
	s->outlen = len;
	s->outoff = 0;
}

static void
ep_mod(struct sess *s, int wantout)
{
	struct epoll_event ev;

	if (s->wantout == wantout)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (wantout ? EPOLLOUT : 0);
	ev.data.u32 = (uint32_t)(s - sess);
	if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	s->wantout = wantout;
}

/* ---------------------------------------------------------------------- */
/* TLS */

/* The slot keeps the newest session the server handed it (-k). */
static int
tls_new_session(SSL *ssl, SSL_SESSION *ss)
{
	struct sess *s = SSL_get_app_data(ssl);

	if (s->saved != NULL)
		SSL_SESSION_free(s->saved);
	s->saved = ss;
	return 1;			/* the reference is ours now */
}

static void
tls_setup(void)
{
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION))
		die("cannot make a TLS context");
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* A server that closes after 221 without close_notify is fine. */
	SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (resume) {
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(tls_ctx, tls_new_session);
	}
}

/* Keep the reason of a TLS failure for the error summary. */
static void
tls_note_error(int syserr)
{
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, tls_err, sizeof(tls_err));
	else
		strlcpy(tls_err, syserr ? strerror(syserr) :
		    "connection closed", sizeof(tls_err));
	ERR_clear_error();
}

/* What a failed read or write was about (errno as it left). */
static const char *
io_error(int e)
{
	return e == EPROTO && tls_err[0] ? tls_err : strerror(e);
}

/* SSL_read/SSL_write's answer n as recv/send would give it. */
static ssize_t
tls_result(struct sess *s, int n, int writing)
{
	int syserr = errno;

	switch (SSL_get_error(s->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		s->wr_wants_rd = writing;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		tls_note_error(syserr);
		errno = EPROTO;
		return -1;
	}
}

static ssize_t
sess_recv(struct sess *s, void *buf, size_t len)
{
	int n;

	if (s->ssl == NULL)
		return recv(s->fd, buf, len, 0);
	ERR_clear_error();
	if ((n = SSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : len)) > 0)
		return n;
	return tls_result(s, n, 0);
}

static ssize_t
sess_send(struct sess *s, const void *buf, size_t len)
{
	int n;

	if (s->ssl == NULL)
		return send(s->fd, buf, len, MSG_NOSIGNAL);
	s->wr_wants_rd = 0;
	ERR_clear_error();
	if ((n = SSL_write(s->ssl, buf, len > INT_MAX ? INT_MAX : len)) > 0)
		return n;
	return tls_result(s, n, 1);
}

static void
sess_close(struct sess *s)
{
	if (s->ssl != NULL) {
		/* close_notify, best effort: the socket goes next. */
		if (SSL_is_init_finished(s->ssl))
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
		ERR_clear_error();
	}
	if (s->fd != -1) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	s->fd = -1;
	if (s->st != S_FREE)
		active--;
	s->st = S_FREE;
	s->inlen = 0;
	s->out = NULL;
	s->outlen = s->outoff = 0;
	s->wantout = 0;
}

/* The session failed before (or without) the 250 for its message. */
static void
sess_fail(struct sess *s)
{
	if (idle_k == 0 && s->msgno >= 0 && !s->accepted)
		failed++;
	if (idle_k && s->st == S_IDLE)
		idle_closed++;
	sess_close(s);
}

/* Try to write what is pending; returns -1 when the session failed. */
static int
flush_out(struct sess *s)
{
	ssize_t n;

	while (s->outoff < s->outlen) {
		n = sess_send(s, s->out + s->outoff, s->outlen - s->outoff);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ep_mod(s, !s->wr_wants_rd);
				return 0;
			}
			error_note("write in state %s: %s", state_names[s->st],
			    io_error(errno));
			sess_fail(s);
			return -1;
		}
		s->outoff += (size_t)n;
	}
	ep_mod(s, 0);
	if (s->st == S_BODY) {
		s->t_eod = now();
		s->t_state = s->t_eod;
		s->st = S_DOT;
		s->deadline = s->t_eod + replytimeout;
	}
	return 0;
}

static int
send_cmd(struct sess *s, enum state next, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->cmd, sizeof(s->cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(s->cmd))
		die("command too long");
	s->out = s->cmd;
	s->outlen = (size_t)n;
	s->outoff = 0;
	s->st = next;
	s->t_state = now();
	s->deadline = s->t_state + replytimeout;
	return flush_out(s);
}

/* Start a new session (a new message in load mode). */
static void
sess_start(struct sess *s, int msgno)
{
	struct epoll_event ev;
	int fd, one = 1;
	double t;

	s->msgno = msgno;
	s->accepted = 0;
	s->inlen = 0;
	s->wantout = 0;
	started++;
	fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		error_note("socket: %s", strerror(errno));
		if (idle_k == 0)
			failed++;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t = now();
	if (t_first_connect < 0) {
		t_first_connect = t;
		t_first_connect_wall = wallnow();
	}
	conn_t0[s - sess] = t;
	if (connect(fd, (struct sockaddr *)&dst, dstlen) == -1 &&
	    errno != EINPROGRESS) {
		error_note("connect: %s", strerror(errno));
		close(fd);
		if (idle_k == 0)
			failed++;
		return;
	}
	s->fd = fd;
	s->st = S_GREETING;
	s->t_state = t;
	s->deadline = t + replytimeout;
	active++;
	/* The greeting makes it readable; a failed connect reports
	 * EPOLLERR/EPOLLHUP without asking. */
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u32 = (uint32_t)(s - sess);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

/* Drive the handshake one step; returns -1 when the session failed. */
static int
tls_step(struct sess *s)
{
	double t;
	int r;

	ERR_clear_error();
	if ((r = SSL_do_handshake(s->ssl)) == 1) {
		t = now();
		wait_sum[S_HANDSHAKE] += t - s->t_state;
		wait_n[S_HANDSHAKE]++;
		if (nhs < nmsgs)
			hslat[nhs++] = t - s->t_state;
		tls_done++;
		if (SSL_session_reused(s->ssl))
			tls_resumed++;
		/* RFC 3207: the session starts again inside TLS. */
		return send_cmd(s, S_EHLO, "EHLO %s\r\n", helo);
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		ep_mod(s, 0);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		ep_mod(s, 1);
		return 0;
	default:
		tls_note_error(errno);
		error_note("TLS handshake: %s", tls_err);
		sess_fail(s);
		return -1;
	}
}

/* The 220 to STARTTLS came: nothing may follow it in plaintext. */
static int
tls_start(struct sess *s)
{
	if (s->inlen != 0) {
		error_note("STARTTLS: plaintext after the 220");
		sess_fail(s);
		return -1;
	}
	if ((s->ssl = SSL_new(tls_ctx)) == NULL ||
	    !SSL_set_fd(s->ssl, s->fd))
		die("cannot make a TLS session");
	SSL_set_app_data(s->ssl, s);
	if (resume && s->saved != NULL) {
		if (!SSL_set_session(s->ssl, s->saved))
			die("cannot offer the saved TLS session");
		/* Once: the server hands out a new one. */
		SSL_SESSION_free(s->saved);
		s->saved = NULL;
		tls_offered++;
	}
	SSL_set_connect_state(s->ssl);
	s->st = S_HANDSHAKE;
	s->t_state = now();
	s->deadline = s->t_state + replytimeout;
	return tls_step(s);
}

/* -N: the session is complete once EHLO is answered (inside TLS). */
static int
session_done(struct sess *s)
{
	double t = now();

	s->accepted = 1;
	lat[nlat] = sesslat[nlat] = t - conn_t0[s - sess];
	nlat++;
	accepted++;
	t_last_250 = t;
	return send_cmd(s, S_QUIT, "QUIT\r\n");
}

static void
reply_error(struct sess *s)
{
	error_note("%s: %s", state_names[s->st], s->reply);
}

/* A complete reply arrived (code in s->replycode, first line in
 * s->reply).  Advance the session; returns -1 when it was closed. */
static int
on_reply(struct sess *s)
{
	int code = s->replycode;
	const char *rcpt;
	double t;

	wait_sum[s->st] += now() - s->t_state;
	wait_n[s->st]++;
	switch (s->st) {
	case S_GREETING:
		if (code != 220)
			goto bad;
		return send_cmd(s, S_EHLO, "EHLO %s\r\n", helo);
	case S_EHLO:
		if (code != 250)
			goto bad;
		if (idle_k) {
			s->st = S_IDLE;
			s->deadline = 0;
			idle_established++;
			return 0;
		}
		if (use_tls && s->ssl == NULL)
			return send_cmd(s, S_STARTTLS, "STARTTLS\r\n");
		if (sessions_only)
			return session_done(s);
		return send_cmd(s, S_MAIL, "MAIL FROM:<%s>\r\n", from);
	case S_STARTTLS:
		if (code != 220)
			goto bad;
		return tls_start(s);
	case S_MAIL:
		if (code != 250)
			goto bad;
		rcpt = rcpts[s->msgno % nrcpts];
		return send_cmd(s, S_RCPT, "RCPT TO:<%s>\r\n", rcpt);
	case S_RCPT:
		if (code != 250 && code != 251)
			goto bad;
		return send_cmd(s, S_DATA, "DATA\r\n");
	case S_DATA:
		if (code != 354)
			goto bad;
		s->st = S_BODY;
		if (fixedmsg != NULL) {
			s->out = fixedmsg;
			s->outlen = fixedlen;
			s->outoff = 0;
		} else
			build_message(s, rcpts[s->msgno % nrcpts]);
		s->deadline = now() + replytimeout;
		return flush_out(s);
	case S_DOT:
		if (code != 250)
			goto bad;
		t = now();
		s->accepted = 1;
		lat[nlat] = t - s->t_eod;
		sesslat[nlat] = t - conn_t0[s - sess];
		nlat++;
		accepted++;
		t_last_250 = t;
		return send_cmd(s, S_QUIT, "QUIT\r\n");
	case S_QUIT:
		if (code / 100 != 2)
			reply_error(s);	/* counted, the message is in */
		sess_close(s);
		return -1;
	default:
		error_note("reply in state %s: %s", state_names[s->st],
		    s->reply);
		sess_fail(s);
		return -1;
	}
bad:
	if (code / 100 == 2 || code / 100 == 3)
		error_note("%s: unexpected reply: %s", state_names[s->st],
		    s->reply);
	else
		reply_error(s);
	/* Leave politely; the message (if any) failed. */
	if (s->st != S_BODY) {
		if (idle_k == 0 && s->msgno >= 0 && !s->accepted)
			failed++;
		s->msgno = -1;
		if (code == 421) {
			sess_close(s);
			return -1;
		}
		return send_cmd(s, S_QUIT, "QUIT\r\n");
	}
	sess_fail(s);
	return -1;
}

/* Parse complete reply lines in s->in; returns -1 if the session ended. */
static int
parse_replies(struct sess *s)
{
	char *p, *nl;
	size_t used = 0;
	int code, r;

	for (;;) {
		p = s->in + used;
		nl = memchr(p, '\n', s->inlen - used);
		if (nl == NULL)
			break;
		used = (size_t)(nl - s->in) + 1;
		if (nl - p < 3 || p[0] < '0' || p[0] > '9' || p[1] < '0' ||
		    p[1] > '9' || p[2] < '0' || p[2] > '9') {
			error_note("%s: malformed reply line: %.*s",
			    state_names[s->st], (int)(nl - p > 80 ? 80 :
			    nl - p), p);
			sess_fail(s);
			return -1;
		}
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (s->replycode == 0) {
			size_t l = (size_t)(nl - p);

			if (l > 0 && p[l - 1] == '\r')
				l--;
			if (l >= sizeof(s->reply))
				l = sizeof(s->reply) - 1;
			memcpy(s->reply, p, l);
			s->reply[l] = '\0';
			s->replycode = code;
		}
		if (nl - p > 3 && p[3] == '-')
			continue;		/* continuation */
		if (s->st == S_IDLE) {
			error_note("idle: unsolicited reply: %s", s->reply);
			s->replycode = 0;
			continue;
		}
		/* Replies that arrive while we are still writing (e.g. an
		 * early 5xx during the data) end the session. */
		if (s->st == S_BODY) {
			error_note("data: reply before end of data: %s",
			    s->reply);
			sess_fail(s);
			return -1;
		}
		memmove(s->in, s->in + used, s->inlen - used);
		s->inlen -= used;
		used = 0;
		r = on_reply(s);
		s->replycode = 0;
		if (r == -1 || s->st == S_FREE)
			return -1;
	}
	if (used) {
		memmove(s->in, s->in + used, s->inlen - used);
		s->inlen -= used;
	}
	if (s->inlen == sizeof(s->in)) {
		error_note("%s: reply line too long", state_names[s->st]);
		sess_fail(s);
		return -1;
	}
	return 0;
}

static void
on_readable(struct sess *s)
{
	ssize_t n;

	for (;;) {
		n = sess_recv(s, s->in + s->inlen, sizeof(s->in) - s->inlen);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (s->st == S_QUIT) {	/* message already in */
				sess_close(s);
				return;
			}
			error_note("%s: read: %s", state_names[s->st],
			    io_error(errno));
			sess_fail(s);
			return;
		}
		if (n == 0) {
			if (s->st == S_QUIT) {
				sess_close(s);
				return;
			}
			error_note("%s: connection closed by server",
			    state_names[s->st]);
			sess_fail(s);
			return;
		}
		s->inlen += (size_t)n;
		if (parse_replies(s) == -1)
			return;
		/* The handshake reads for itself (tls_step). */
		if (s->st == S_HANDSHAKE)
			return;
		/* OpenSSL may hold decrypted octets epoll cannot see. */
		if ((size_t)n < sizeof(s->in) &&
		    (s->ssl == NULL || SSL_pending(s->ssl) == 0))
			return;		/* drained, most likely */
	}
}

static void
on_event(struct sess *s, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (s->st == S_FREE)
		return;
	if ((events & EPOLLERR) && !(events & EPOLLIN)) {
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		error_note("%s: %s", s->st == S_GREETING ? "connect" :
		    state_names[s->st], err ? strerror(err) : "socket error");
		sess_fail(s);
		return;
	}
	if (s->st == S_HANDSHAKE) {
		tls_step(s);
		return;
	}
	if ((events & EPOLLOUT) || ((events & EPOLLIN) && s->wr_wants_rd &&
	    s->outoff < s->outlen)) {
		if (flush_out(s) == -1)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(s);
}

static void
check_timeouts(double t)
{
	int i;

	for (i = 0; i < nsess; i++) {
		struct sess *s = &sess[i];

		if (s->st == S_FREE || s->st == S_IDLE || s->deadline == 0 ||
		    t < s->deadline)
			continue;
		error_note("%s: no reply within %.0f s", state_names[s->st],
		    replytimeout);
		sess_fail(s);
	}
}

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, int n, double p)
{
	int i;

	if (n == 0)
		return 0;
	i = (int)(p / 100.0 * n + 0.999999) - 1;	/* nearest rank */
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void
print_errors(void)
{
	int i;

	if (nerrors == 0)
		return;
	printf("errors: %d\n", nerrors);
	for (i = 0; i < nerrkinds; i++)
		printf("  %6d  %s\n", errkinds[i].count, errkinds[i].text);
	if (errother)
		printf("  %6d  (other kinds not listed)\n", errother);
}

/* Make room for the descriptors we will need. */
static void
raise_nofile(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur >= (rlim_t)want)
		return;
	if (rl.rlim_max < (rlim_t)want) {
		struct rlimit r2 = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &r2) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < (rlim_t)want)
		fprintf(stderr, "smtp_load: warning: RLIMIT_NOFILE is %llu, "
		    "%d wanted\n", (unsigned long long)rl.rlim_cur, want);
}

static void
resolve(void)
{
	struct addrinfo hints, *res;
	char portstr[16];
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((e = getaddrinfo(host, portstr, &hints, &res)) != 0)
		die("%s: %s (numeric addresses only)", host, gai_strerror(e));
	memcpy(&dst, res->ai_addr, res->ai_addrlen);
	dstlen = res->ai_addrlen;
	freeaddrinfo(res);
}

static void
parse_rcpts(char *list)
{
	char *p;

	nrcpts = 0;
	rcpts = NULL;
	while ((p = strsep(&list, ",")) != NULL) {
		if (*p == '\0')
			continue;
		if ((rcpts = reallocarray(rcpts, nrcpts + 1,
		    sizeof(*rcpts))) == NULL)
			die("out of memory");
		rcpts[nrcpts++] = p;
	}
	if (nrcpts == 0)
		die("-r: no recipient");
}

static double
num(const char *s, const char *what, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		die("%s: bad value %s", what, s);
	return v;
}

static void
run_load(void)
{
	struct epoll_event evs[256];
	double t, deadline, last_check = 0;
	int i, n;

	deadline = t_start + tlimit;
	for (;;) {
		/* Fill free slots while messages remain. */
		t = now();
		if (!stop_signal && t < deadline)
			for (i = 0; i < nsess && next_msg < nmsgs; i++)
				if (sess[i].st == S_FREE)
					sess_start(&sess[i], next_msg++);
		if (active == 0 && (next_msg >= nmsgs || stop_signal ||
		    t >= deadline))
			break;
		if (stop_signal || t >= deadline) {
			if (!stop_signal)
				timelimit_hit = 1;
			for (i = 0; i < nsess; i++)
				if (sess[i].st != S_FREE) {
					if (sess[i].st != S_QUIT)
						error_note("%s: aborted at "
						    "the time limit",
						    state_names[sess[i].st]);
					sess_fail(&sess[i]);
				}
			break;
		}
		n = epoll_wait(ep, evs, 256, 100);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++)
			on_event(&sess[evs[i].data.u32], evs[i].events);
		t = now();
		if (t - last_check > 0.1) {
			check_timeouts(t);
			last_check = t;
		}
	}
}

static void
run_idle(void)
{
	struct epoll_event evs[256];
	double t, deadline, holdend = 0, last_check = 0;
	int i, n, connecting, ready = 0;

	deadline = t_start + tlimit;
	next_msg = 0;
	for (;;) {
		t = now();
		if (!ready) {
			/* At most conc sessions still handshaking. */
			connecting = active - (idle_established -
			    idle_closed);
			for (i = next_msg; i < nsess && connecting < conc &&
			    t < deadline && !stop_signal; i++) {
				sess_start(&sess[i], -1);
				next_msg = i + 1;
				if (sess[i].st != S_FREE)
					connecting++;
			}
			connecting = active - (idle_established -
			    idle_closed);
			if ((next_msg >= nsess && connecting == 0) ||
			    t >= deadline || stop_signal) {
				ready = 1;
				if (t >= deadline && connecting)
					for (i = 0; i < nsess; i++)
						if (sess[i].st != S_FREE &&
						    sess[i].st != S_IDLE) {
							error_note("%s: not "
							    "established "
							    "within the time "
							    "limit",
							    state_names[
							    sess[i].st]);
							sess_fail(&sess[i]);
						}
				printf("READY established=%d wanted=%d "
				    "seconds=%.3f\n", idle_established,
				    idle_k, t - t_start);
				fflush(stdout);
				holdend = t + hold;
			}
		}
		if (ready && (t >= holdend || stop_signal))
			break;
		n = epoll_wait(ep, evs, 256, 100);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++)
			on_event(&sess[evs[i].data.u32], evs[i].events);
		t = now();
		if (t - last_check > 0.1) {
			check_timeouts(t);
			last_check = t;
		}
	}
}

/* Where a session's time goes: the mean wait for each reply. */
static void
print_waits(void)
{
	int	st;

	printf("mean wait per reply (ms):");
	for (st = S_GREETING; st < S_IDLE; st++)
		if (wait_n[st] > 0)
			printf(" %s %.2f", state_names[st],
			    wait_sum[st] / wait_n[st] * 1e3);
	printf("\n");
}

static void
print_sessions(double wall)
{
	printf("%d sessions without a transaction%s, %d at a time, %s:%d\n",
	    nmsgs, use_tls ? " (STARTTLS, EHLO inside TLS)" : "", conc,
	    host, port);
	printf("complete %d, failed %d, not attempted %d in %.3f s: "
	    "%.1f sessions/s\n", accepted, failed, nmsgs - started, wall,
	    wall > 0 ? accepted / wall : 0.0);
	printf("connect to the last EHLO reply: p50 %.2f ms, p99 %.2f ms, "
	    "max %.2f ms\n", pct(sesslat, nlat, 50) * 1e3,
	    pct(sesslat, nlat, 99) * 1e3, nlat ? sesslat[nlat - 1] * 1e3 : 0);
	print_waits();
}

static void
print_tls(void)
{
	qsort(hslat, nhs, sizeof(*hslat), cmp_double);
	printf("TLS: %d handshakes, %d resumed of %d offered a session; "
	    "handshake p50 %.2f ms, p99 %.2f ms\n", tls_done, tls_resumed,
	    tls_offered,
	    pct(hslat, nhs, 50) * 1e3, pct(hslat, nhs, 99) * 1e3);
}

int
main(int argc, char *argv[])
{
	struct sigaction sa;
	char *rlist = NULL;
	double wall;
	int ch, i;

	while ((ch = getopt(argc, argv, "c:ef:H:h:i:km:Nn:p:qR:r:s:T:t:")) != -1) {
		switch (ch) {
		case 'e':
			use_tls = 1;
			break;
		case 'k':
			resume = 1;
			break;
		case 'N':
			sessions_only = 1;
			break;
		case 'm':
			msgfile = optarg;
			break;
		case 'c':
			conc = (int)num(optarg, "-c", 1, 100000);
			break;
		case 'f':
			from = optarg;
			break;
		case 'H':
			helo = optarg;
			break;
		case 'h':
			host = optarg;
			break;
		case 'i':
			idle_k = (int)num(optarg, "-i", 1, 1000000);
			break;
		case 'n':
			nmsgs = (int)num(optarg, "-n", 1, 100000000);
			break;
		case 'p':
			port = (int)num(optarg, "-p", 1, 65535);
			break;
		case 'q':
			quiet = 1;
			break;
		case 'R':
			replytimeout = num(optarg, "-R", 0.001, 86400);
			break;
		case 'r':
			rlist = optarg;
			break;
		case 's':
			msgsize = (size_t)num(optarg, "-s", 0, 1e9);
			break;
		case 'T':
			hold = num(optarg, "-T", 0, 86400);
			break;
		case 't':
			tlimit = num(optarg, "-t", 0.001, 86400);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (rlist == NULL && idle_k == 0 && !sessions_only)
		die("-r: recipients needed");
	if (resume && !use_tls)
		die("-k needs -e");
	if (idle_k && (use_tls || sessions_only))
		die("-i goes with neither -e nor -N");
	if (msgfile != NULL && (idle_k || sessions_only))
		die("-m goes with neither -i nor -N");
	if (rlist)
		parse_rcpts(rlist);
	resolve();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	nsess = idle_k ? idle_k : (conc < nmsgs ? conc : nmsgs);
	raise_nofile(nsess + 64);
	if ((sess = calloc(nsess, sizeof(*sess))) == NULL ||
	    (conn_t0 = calloc(nsess, sizeof(*conn_t0))) == NULL)
		die("out of memory");
	for (i = 0; i < nsess; i++)
		sess[i].fd = -1;
	if (msgfile != NULL)
		load_message(msgfile);
	else if (!idle_k)
		build_body();
	if (!idle_k) {
		if ((lat = calloc(nmsgs, sizeof(*lat))) == NULL ||
		    (sesslat = calloc(nmsgs, sizeof(*sesslat))) == NULL)
			die("out of memory");
		for (i = 0; i < nsess; i++)
			if ((sess[i].msgbuf = malloc(2048 + bodylen)) == NULL)
				die("out of memory");
	}
	if (use_tls) {
		tls_setup();
		if ((hslat = calloc(nmsgs, sizeof(*hslat))) == NULL)
			die("out of memory");
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));

	t_start = now();
	if (idle_k) {
		run_idle();
		wall = now() - t_start;
		for (i = 0; i < nsess; i++)
			if (sess[i].st == S_IDLE)
				sess_close(&sess[i]);
		printf("idle sessions: %d wanted, %d established, %d closed by "
		    "the server while idle\n", idle_k, idle_established,
		    idle_closed);
		print_errors();
		printf("RESULT mode=idle wanted=%d established=%d closed=%d "
		    "errors=%d seconds=%.3f\n", idle_k, idle_established,
		    idle_closed, nerrors, wall);
		return 0;
	}

	run_load();
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	qsort(sesslat, nlat, sizeof(*sesslat), cmp_double);
	wall = (t_first_connect >= 0 && t_last_250 > t_first_connect) ?
	    t_last_250 - t_first_connect : 0;
	if (!quiet && sessions_only)
		print_sessions(wall);
	else if (!quiet) {
		printf("%d messages of %zu octets, %d sessions, %s:%d\n",
		    nmsgs, msgsize, conc, host, port);
		printf("accepted %d, failed %d, not attempted %d in %.3f s: "
		    "%.1f messages/s\n", accepted, failed, nmsgs - started,
		    wall, wall > 0 ? accepted / wall : 0.0);
		printf("250 after end of data: p50 %.2f ms, p99 %.2f ms, "
		    "max %.2f ms\n", pct(lat, nlat, 50) * 1e3,
		    pct(lat, nlat, 99) * 1e3, nlat ? lat[nlat - 1] * 1e3 : 0);
		printf("whole session to 250: p50 %.2f ms, p99 %.2f ms, "
		    "max %.2f ms\n", pct(sesslat, nlat, 50) * 1e3,
		    pct(sesslat, nlat, 99) * 1e3,
		    nlat ? sesslat[nlat - 1] * 1e3 : 0);
		print_waits();
	}
	if (!quiet && use_tls)
		print_tls();
	if (timelimit_hit)
		printf("stopped by the time limit of %.0f s\n", tlimit);
	if (stop_signal)
		printf("stopped by signal %d\n", (int)stop_signal);
	print_errors();
	printf("RESULT mode=load messages=%d accepted=%d failed=%d "
	    "notstarted=%d errors=%d seconds=%.6f rate=%.2f p50_ms=%.3f "
	    "p99_ms=%.3f max_ms=%.3f sess_p50_ms=%.3f sess_p99_ms=%.3f "
	    "sess_max_ms=%.3f timelimit=%d first_connect_wall=%.6f",
	    nmsgs, accepted, failed, nmsgs - started, nerrors, wall, wall > 0 ? accepted / wall : 0.0,
	    pct(lat, nlat, 50) * 1e3, pct(lat, nlat, 99) * 1e3,
	    nlat ? lat[nlat - 1] * 1e3 : 0, pct(sesslat, nlat, 50) * 1e3,
	    pct(sesslat, nlat, 99) * 1e3, nlat ? sesslat[nlat - 1] * 1e3 : 0,
	    timelimit_hit, t_first_connect_wall);
	if (nhs > 0)
		qsort(hslat, nhs, sizeof(*hslat), cmp_double);
	printf(" tls=%d handshakes=%d offered=%d resumed=%d hs_p50_ms=%.3f "
	    "hs_p99_ms=%.3f\n", use_tls, tls_done, tls_offered, tls_resumed,
	    pct(hslat, nhs, 50) * 1e3, pct(hslat, nhs, 99) * 1e3);
	return (failed || accepted < nmsgs) ? 1 : 0;
}
