/*
 * pop3_load: a POP3 load client for the benchmarks (regress/bench/
 * pop3_bench.py runs it against pymaild and against Dovecot alike).
 *
 *   pop3_load [-t [-k]] [-p port] [-u user] [-w password] [-d depth]
 *	[-n count] [-g count] mode
 *
 * modes:
 *   retr	log in, RETR 1..N (N from STAT), -d commands in flight
 *		(1: one at a time), QUIT; times the RETRs only
 *   list	log in, then STAT+LIST+UIDL -n times; the best and the median
 *   login	-n logins one after another: connect, greeting, USER, PASS,
 *		(with -g N: RETR 1..N), QUIT, close
 *
 * -t: implicit TLS (the pop3s port), a full handshake for each
 * connection; -k: offer the session the previous connection was handed
 * (a TLS 1.3 ticket), as a polling mail client does. The server's
 * certificate is not checked: a load client measures cost.
 *
 * Prints one line of key=value figures. Exits 1 on any protocol error.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define RBUF	(256 * 1024)
#define MAXRUNS	1000

struct conn {
	int	 fd;
	SSL	*ssl;
	char	*buf;
	size_t	 len, off;
	/* Reading a multi-line body: the last 4 octets before buf+off. */
	char	 hist[4];
	long long bytes;		/* octets of multi-line bodies read */
};

static const char	*host = "127.0.0.1";
static int		 port = 110;
static const char	*user = "bench";
static const char	*pass = "bench";
static SSL_CTX		*tls_ctx;	/* -t */
static int		 resume;	/* -k */
static SSL_SESSION	*tls_saved;	/* handed out last time */
static int		 tls_done, tls_resumed;
static double		 tls_seconds;	/* in handshakes */

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Keep the session a connection is handed, for the next one (-k). */
static int
tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	if (tls_saved != NULL)
		SSL_SESSION_free(tls_saved);
	tls_saved = sess;
	return 1;
}

static void
tls_setup(void)
{
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION))
		errx(1, "cannot make a TLS context");
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (resume) {
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(tls_ctx, tls_new_session);
	}
}

static void
tls_fatal(const char *what)
{
	unsigned long	e = ERR_get_error();

	errx(1, "%s: %s", what, e ? ERR_error_string(e, NULL) :
	    "connection closed");
}

static void
tls_connect(struct conn *c)
{
	double	t0 = now();

	if ((c->ssl = SSL_new(tls_ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd))
		errx(1, "cannot make a TLS session");
	if (resume && tls_saved != NULL) {
		/* Once: the server hands out a new one. */
		if (!SSL_set_session(c->ssl, tls_saved))
			errx(1, "cannot offer the saved TLS session");
		SSL_SESSION_free(tls_saved);
		tls_saved = NULL;
	}
	if (SSL_connect(c->ssl) != 1)
		tls_fatal("TLS handshake");
	tls_seconds += now() - t0;
	tls_done++;
	if (SSL_session_reused(c->ssl))
		tls_resumed++;
}

static void
conn_open(struct conn *c)
{
	struct sockaddr_in	sin;
	int			on = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		errx(1, "bad host %s", host);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		err(1, "socket");
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		err(1, "connect %s:%d", host, port);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (c->buf == NULL && (c->buf = malloc(RBUF)) == NULL)
		err(1, "malloc");
	c->len = c->off = 0;
	if (tls_ctx != NULL)
		tls_connect(c);
}

static void
conn_free(struct conn *c)
{
	free(c->buf);
	c->buf = NULL;
}

static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
}

/* Read more into the buffer (blocking); compacts first. */
static void
fill(struct conn *c)
{
	ssize_t	n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == RBUF)
		errx(1, "line longer than %d octets", RBUF);
	if (c->ssl != NULL) {
		if ((n = SSL_read(c->ssl, c->buf + c->len, RBUF - c->len)) <= 0 &&
		    SSL_get_error(c->ssl, n) != SSL_ERROR_ZERO_RETURN)
			tls_fatal("read");
		if (n < 0)
			n = 0;
	} else {
		do {
			n = read(c->fd, c->buf + c->len, RBUF - c->len);
		} while (n == -1 && errno == EINTR);
	}
	if (n == -1)
		err(1, "read");
	if (n == 0)
		errx(1, "server closed the connection");
	c->len += n;
}

static void
send_all(struct conn *c, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if (c->ssl != NULL) {
			if ((n = SSL_write(c->ssl, p, len)) <= 0)
				tls_fatal("write");
		} else if ((n = write(c->fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "write");
		}
		p += n;
		len -= n;
	}
}

/* One status line; exits unless it is +OK. */
static void
status(struct conn *c, const char *what)
{
	char	*nl;

	while ((nl = memchr(c->buf + c->off, '\n', c->len - c->off)) == NULL)
		fill(c);
	if (strncmp(c->buf + c->off, "+OK", 3) != 0)
		errx(1, "%s: %.*s", what, (int)(nl - (c->buf + c->off)),
		    c->buf + c->off);
	c->off = nl + 1 - c->buf;
	memcpy(c->hist, "\0\0\r\n", 4);
}

/*
 * Skip a multi-line body up to its "CRLF.CRLF" (the CRLF of the status
 * line may be the first half). Looks only at line ends.
 */
static void
body(struct conn *c)
{
	char	*p, *q, w[4];
	long	 at, k, i;

	for (;;) {
		p = c->buf + c->off;
		i = 0;
		while ((q = memchr(p + i, '\n', c->len - c->off - i)) != NULL) {
			at = q - p;
			for (k = 0; k < 4; k++)
				w[k] = at - 4 + k >= 0 ? p[at - 4 + k] :
				    c->hist[at + k];
			if (memcmp(w, "\r\n.\r", 4) == 0) {
				c->bytes += at + 1;
				c->off += at + 1;
				return;
			}
			i = at + 1;
		}
		/* Keep the last 4 octets seen for the next read. */
		for (k = 0; k < 4; k++) {
			at = (long)(c->len - c->off) - 4 + k;
			w[k] = at >= 0 ? p[at] : c->hist[4 + at];
		}
		memcpy(c->hist, w, 4);
		c->bytes += c->len - c->off;
		c->off = c->len;
		fill(c);
	}
}

static void
command(struct conn *c, const char *cmd)
{
	send_all(c, cmd, strlen(cmd));
}

static void
login(struct conn *c)
{
	char	line[512];

	status(c, "greeting");
	snprintf(line, sizeof(line), "USER %s\r\n", user);
	command(c, line);
	status(c, "USER");
	snprintf(line, sizeof(line), "PASS %s\r\n", pass);
	command(c, line);
	status(c, "PASS");
}

static long
stat_count(struct conn *c)
{
	char	*end;
	long	 n;

	command(c, "STAT\r\n");
	while (memchr(c->buf + c->off, '\n', c->len - c->off) == NULL)
		fill(c);
	if (strncmp(c->buf + c->off, "+OK ", 4) != 0)
		errx(1, "STAT failed");
	n = strtol(c->buf + c->off + 4, &end, 10);
	status(c, "STAT");
	return n;
}

/* RETR 1..n with up to depth commands in flight. */
static void
mode_retr(int depth)
{
	struct conn	c = { .fd = -1 };
	char		cmd[64], out[64 * 32];
	long		n, sent = 0, done = 0;
	size_t		olen;
	double		t0, t1, t2;

	conn_open(&c);
	login(&c);
	n = stat_count(&c);
	t0 = now();
	while (done < n) {
		olen = 0;
		while (sent < n && sent - done < depth &&
		    olen + 32 < sizeof(out)) {
			snprintf(cmd, sizeof(cmd), "RETR %ld\r\n", ++sent);
			memcpy(out + olen, cmd, strlen(cmd));
			olen += strlen(cmd);
		}
		if (olen)
			send_all(&c, out, olen);
		status(&c, "RETR");
		body(&c);
		done++;
	}
	t1 = now();
	command(&c, "QUIT\r\n");
	status(&c, "QUIT");
	t2 = now();
	conn_close(&c);
	conn_free(&c);
	printf("mode=retr depth=%d messages=%ld bytes=%lld seconds=%.4f "
	    "msgs_per_s=%.1f mb_per_s=%.2f quit_s=%.4f\n", depth, n, c.bytes,
	    t1 - t0, n / (t1 - t0), c.bytes / (t1 - t0) / 1e6, t2 - t1);
}

static int
dcmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
mode_list(int runs)
{
	struct conn	c = { .fd = -1 };
	double		t[MAXRUNS], t0;
	long		n = 0;
	int		i;

	if (runs > MAXRUNS)
		runs = MAXRUNS;
	conn_open(&c);
	login(&c);
	for (i = 0; i < runs; i++) {
		t0 = now();
		n = stat_count(&c);
		command(&c, "LIST\r\n");
		status(&c, "LIST");
		body(&c);
		command(&c, "UIDL\r\n");
		status(&c, "UIDL");
		body(&c);
		t[i] = now() - t0;
	}
	command(&c, "QUIT\r\n");
	status(&c, "QUIT");
	conn_close(&c);
	conn_free(&c);
	qsort(t, runs, sizeof(t[0]), dcmp);
	printf("mode=list messages=%ld runs=%d best_ms=%.3f median_ms=%.3f\n",
	    n, runs, t[0] * 1e3, t[runs / 2] * 1e3);
}

static void
mode_login(int count, int get)
{
	struct conn	c = { .fd = -1 };
	char		cmd[64];
	double		t0, t;
	long		n;
	int		i, j;

	t0 = now();
	for (i = 0; i < count; i++) {
		conn_open(&c);
		login(&c);
		n = get ? stat_count(&c) : 0;
		for (j = 1; j <= get && j <= n; j++) {
			snprintf(cmd, sizeof(cmd), "RETR %d\r\n", j);
			command(&c, cmd);
			status(&c, "RETR");
			body(&c);
		}
		command(&c, "QUIT\r\n");
		status(&c, "QUIT");
		conn_close(&c);
	}
	t = now() - t0;
	conn_free(&c);
	printf("mode=login logins=%d seconds=%.4f logins_per_s=%.1f "
	    "retr_bytes=%lld tls=%d handshakes=%d resumed=%d "
	    "handshake_ms=%.3f\n", count, t, count / t, c.bytes,
	    tls_ctx != NULL, tls_done, tls_resumed,
	    tls_done ? tls_seconds / tls_done * 1e3 : 0.0);
}

static int
number(const char *s, int max)
{
	const char	*errstr;
	int		 n;

	n = strtonum(s, 1, max, &errstr);
	if (errstr)
		errx(2, "%s: %s", s, errstr);
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: pop3_load [-t [-k]] [-p port] [-u user] "
	    "[-w password] [-d depth]\n"
	    "                 [-n count] [-g count] retr|list|login\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	int	ch, depth = 1, count = 10, get = 0, tls = 0;

	while ((ch = getopt(argc, argv, "d:g:h:kn:p:tu:w:")) != -1) {
		switch (ch) {
		case 'g':
			get = number(optarg, 1000000);
			break;
		case 'k':
			resume = 1;
			break;
		case 't':
			tls = 1;
			break;
		case 'd':
			depth = number(optarg, 100000);
			break;
		case 'h':
			host = optarg;
			break;
		case 'n':
			count = number(optarg, 10000000);
			break;
		case 'p':
			port = number(optarg, 65535);
			break;
		case 'u':
			user = optarg;
			break;
		case 'w':
			pass = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || (resume && !tls))
		usage();
	if (tls)
		tls_setup();
	if (strcmp(argv[optind], "retr") == 0)
		mode_retr(depth);
	else if (strcmp(argv[optind], "list") == 0)
		mode_list(count);
	else if (strcmp(argv[optind], "login") == 0)
		mode_login(count, get);
	else
		usage();
	return 0;
}
