/*
 * The bytes of a POP3 session: one fixed input and one fixed output
 * buffer, a socket event that wants what the buffers allow, and one timer
 * that is the idle timeout while we wait for the client and the
 * failed-login delay while the client waits for us. Commands are taken
 * one at a time, only when the previous answer is under way, so
 * pipelined commands are answered in order and a client that stops
 * reading stops costing us anything.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "pop3d.h"
#include "proto.h"
#include "tls.h"
#include "util.h"

#define UPDATE_ROUNDS	8	/* output buffers written per wake-up */

static void	on_io(int, short, void *);
static void	on_timer(int, short, void *);
static void	tls_begin(struct session *);

size_t
session_room(const struct session *s)
{
	return s->ocap - s->olen;
}

void
session_grow(struct session *s)
{
	char	*big;

	if (s->obuf != s->sbuf)
		return;
	big = xmalloc(POP3_OBUF_LARGE);
	memcpy(big, s->obuf, s->olen);
	s->obuf = big;
	s->ocap = POP3_OBUF_LARGE;
}

/* Idle again: thousands of waiting sessions keep only small buffers. */
static void
session_shrink(struct session *s)
{
	if (s->obuf == s->sbuf || s->olen != 0 || s->prod != PROD_NONE)
		return;
	free(s->obuf);
	s->obuf = s->sbuf;
	s->ocap = sizeof(s->sbuf);
}

int
session_printf(struct session *s, const char *fmt, ...)
{
	va_list	ap;
	size_t	room = session_room(s);
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(s->obuf + s->olen, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		/* Every answer line fits in POP3_LINE_ROOM: a bug. */
		log_warnx("pop3 session=%08x: answer does not fit", s->id);
		s->dead = 1;
		return -1;
	}
	s->olen += n;
	return 0;
}

void
session_start(int fd, const char *addr, struct ipcount *ip,
    const struct sockaddr_storage *ss, int kind)
{
	struct session	*s = xcalloc(1, sizeof(*s));

	s->fd = fd;
	s->ip = ip;
	s->peer = *ss;
	s->kind = kind;
	strlcpy(s->addr, addr, sizeof(s->addr));
	s->xfer.src.fd = -1;
	s->obuf = s->sbuf;
	s->ocap = sizeof(s->sbuf);
	session_register(s);
	evtimer_assign(&s->timer, pop3_base, on_timer, s);
	log_debug("pop3 session=%08x from=%s connected%s", s->id, s->addr,
	    kind == LISTEN_POP3S ? " port=pop3s" : "");
	/* Implicit TLS (RFC 8314): the greeting comes inside it. */
	if (kind == LISTEN_POP3S)
		tls_begin(s);
	else
		session_greet(s);
	session_update(s);
}

int
session_auth_allowed(const struct session *s)
{
	return tls_auth_allowed(s->ssl != NULL, 0, &s->peer);
}

int
session_tls_offered(const struct session *s)
{
	return s->ssl == NULL && tls_ready();
}

/*
 * RFC 2595 4: what the client sent behind STLS in plaintext is thrown
 * away, never run inside TLS; now (the rest of this input), and again
 * when the handshake starts.
 */
void
session_starttls(struct session *s)
{
	explicit_bzero(s->ibuf + s->inrun, s->ilen - s->inrun);
	s->ilen = s->inrun;
	s->wait = WAIT_TLS;
	s->tls_starting = 1;
}

static void
tls_begin(struct session *s)
{
	s->tls_starting = 0;
	explicit_bzero(s->ibuf, s->ilen);
	s->ilen = 0;
	s->discard = 0;
	s->wait = WAIT_TLS;
	if ((s->ssl = tls_session(s->fd)) == NULL) {
		log_warnx("pop3 session=%08x tls=failed reason=\"no TLS "
		    "session: %s\"", s->id, tls_error());
		s->dead = 1;
		return;
	}
	s->tls_handshake = 1;
}

static void
tls_step(struct session *s)
{
	s->tls_want_write = 0;
	switch (tls_handshake(s->ssl)) {
	case TLS_IO_DONE:
		break;
	case TLS_IO_WANT_READ:
		return;
	case TLS_IO_WANT_WRITE:
		s->tls_want_write = 1;
		return;
	default:
		log_info("pop3 session=%08x from=%s tls=failed reason=\"%s\"",
		    s->id, s->addr, tls_error());
		s->dead = 1;
		return;
	}
	s->tls_handshake = 0;
	s->wait = WAIT_NONE;
	s->activity = 1;
	strlcpy(s->tls_version, SSL_get_version(s->ssl),
	    sizeof(s->tls_version));
	strlcpy(s->tls_cipher, SSL_get_cipher_name(s->ssl),
	    sizeof(s->tls_cipher));
	log_info("pop3 session=%08x from=%s tls=%s cipher=%s%s", s->id,
	    s->addr, s->tls_version, s->tls_cipher,
	    SSL_session_reused(s->ssl) ? " resumed=yes" : "");
	if (s->kind == LISTEN_POP3S)
		session_greet(s);
}

static void
session_free(struct session *s)
{
	session_release(s);
	msg_forget(s);
	/* Its messages are not held open past its end. */
	msg_close_done();
	if (s->evflags)
		event_del(&s->ev);
	evtimer_del(&s->timer);
	/* TLS's close_notify, so the client sees a clean end. */
	if (s->ssl != NULL && !s->tls_handshake && !s->dead)
		SSL_shutdown(s->ssl);
	SSL_free(s->ssl);
	close(s->fd);
	log_info("pop3 session=%08x from=%s user=%s closed retr=%u dele=%u "
	    "tls=%s%s%s", s->id, s->addr, (s->locked ||
	    s->state >= ST_LISTING) && s->user[0] != '\0' ? s->user : "-",
	    s->nretr, s->ndel, s->tls_version[0] ?
	    s->tls_version : "no", s->tls_version[0] ? " cipher=" : "",
	    s->tls_cipher);
	if (s->obuf != s->sbuf)
		free(s->obuf);
	free(s->msgs);
	free(s->uids);
	session_unregister(s);
	explicit_bzero(s->ibuf, sizeof(s->ibuf));
	free(s);
}

void
session_delay(struct session *s, uint32_t ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	s->wait = WAIT_DELAY;
	evtimer_add(&s->timer, &tv);
	s->timer_on = 1;
}

static void
on_timer(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	s->timer_on = 0;
	/* Nothing can be said to a client halfway through a handshake. */
	if (s->tls_handshake) {
		log_info("pop3 session=%08x from=%s tls=failed "
		    "reason=\"handshake timed out\"", s->id, s->addr);
		s->dead = 1;
	} else if (s->wait == WAIT_DELAY) {
		s->wait = WAIT_NONE;
		command_delayed(s);
	} else
		command_timeout(s);
	session_update(s);
}

/* The head of the input: one command line, or the verdict on a line
 * that cannot fit. 1 when something was done. */
static int
take_line(struct session *s)
{
	char	*nl;
	size_t	 len, used;

	if ((nl = memchr(s->ibuf, '\n', s->ilen)) == NULL) {
		if (s->ilen < sizeof(s->ibuf))
			return 0;
		/* Full without a line end: refuse it, skip to its end. */
		explicit_bzero(s->ibuf, s->ilen);
		s->ilen = 0;
		s->discard = 1;
		command_toolong(s);
		return 1;
	}
	used = nl - s->ibuf + 1;
	len = used - 1;
	if (len > 0 && s->ibuf[len - 1] == '\r')
		len--;
	s->ibuf[len] = '\0';
	s->inrun = used;
	command_line(s, s->ibuf, len);
	s->inrun = 0;
	/* Passwords go through here: leave no copy behind, neither where
	 * the line was nor where what followed it was before the move. */
	memmove(s->ibuf, s->ibuf + used, s->ilen - used);
	explicit_bzero(s->ibuf + s->ilen - used, used);
	s->ilen -= used;
	return 1;
}

void
session_lookahead(struct session *s, int max,
    int (*fn)(struct session *, const struct pop3_cmd *))
{
	struct pop3_cmd	 c;
	char		 line[POP3_CMD_MAX + 1];
	const char	*p = s->ibuf + s->inrun, *end = s->ibuf + s->ilen, *nl;
	size_t		 len;
	int		 n, more = 1;

	for (n = 0; more && n < max && p < end &&
	    (nl = memchr(p, '\n', end - p)) != NULL; n++, p = nl + 1) {
		len = nl - p;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		/* The parser splits its line: a copy, the input is not
		 * ours to change before its turn. */
		if (len > POP3_CMD_MAX)
			continue;
		memcpy(line, p, len);
		line[len] = '\0';
		if (pop3_parse(line, len, &c) == 0)
			more = fn(s, &c);
	}
	/* A password may be waiting there too. */
	explicit_bzero(line, sizeof(line));
}

static void
run_commands(struct session *s)
{
	while (!s->dead && s->state != ST_CLOSING) {
		if (s->wait == WAIT_PRODUCE) {
			if (!produce(s))
				return;
			s->wait = WAIT_NONE;
		}
		if (s->wait != WAIT_NONE)
			return;
		if (session_room(s) < POP3_LINE_ROOM)
			return;
		if (!take_line(s))
			return;
	}
}

/* Read inside TLS: as read(2) would answer. */
static ssize_t
tls_input(struct session *s, char *buf, size_t len)
{
	enum tls_io	st;
	ssize_t		n;

	if ((n = tls_read(s->ssl, buf, len, &st)) > 0)
		return n;
	if (st == TLS_IO_WANT_WRITE)
		s->tls_want_write = 1;
	if (st == TLS_IO_WANT_READ || st == TLS_IO_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (st == TLS_IO_FAIL) {
		log_info("pop3 session=%08x from=%s result=tls-error "
		    "reason=\"%s\"", s->id, s->addr, tls_error());
		errno = EPROTO;
		return -1;
	}
	return 0;
}

static void
do_read(struct session *s)
{
	ssize_t	 n;
	char	*nl, *start = s->ibuf + s->ilen;

	if (s->ilen == sizeof(s->ibuf))
		return;
	if (s->ssl != NULL) {
		s->tls_want_write = 0;
		n = tls_input(s, start, sizeof(s->ibuf) - s->ilen);
	} else
		n = read(s->fd, start, sizeof(s->ibuf) - s->ilen);
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			s->dead = 1;
		return;
	}
	if (n == 0) {
		s->eof = 1;
		return;
	}
	s->activity = 1;
	s->ilen += n;
	if (!s->discard)
		return;
	/* The rest of an overlong line: drop it up to its end. */
	if ((nl = memchr(start, '\n', n)) == NULL) {
		s->ilen -= n;
		explicit_bzero(start, n);
		return;
	}
	s->discard = 0;
	nl++;
	s->ilen = (start + n) - nl;
	memmove(s->ibuf, nl, s->ilen);
	explicit_bzero(s->ibuf + s->ilen, (start + n) - (s->ibuf + s->ilen));
}

/* Write what the socket takes; -1 when the client is gone. */
static int
do_flush(struct session *s)
{
	ssize_t		n;

	enum tls_io	st;

	if (s->olen == s->ooff || s->tls_handshake)
		return 0;
	if (s->ssl != NULL) {
		n = tls_write(s->ssl, s->obuf + s->ooff, s->olen - s->ooff,
		    &st);
		if (n == -1 && (st == TLS_IO_WANT_READ ||
		    st == TLS_IO_WANT_WRITE))
			return 0;
	} else
		n = write(s->fd, s->obuf + s->ooff, s->olen - s->ooff);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		return -1;
	}
	s->activity = 1;
	s->ooff += n;
	if (s->ooff == s->olen)
		s->olen = s->ooff = 0;
	else {
		memmove(s->obuf, s->obuf + s->ooff, s->olen - s->ooff);
		s->olen -= s->ooff;
		s->ooff = 0;
	}
	return 0;
}

static void
on_io(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	if (s->tls_handshake) {
		tls_step(s);
		session_update(s);
		return;
	}
	/* A read TLS made wait for writable, or records it holds already. */
	if ((ev & EV_READ) || (s->ssl != NULL && (s->tls_want_write ||
	    SSL_has_pending(s->ssl))))
		do_read(s);
	if ((ev & EV_WRITE) && do_flush(s) == -1)
		s->dead = 1;
	session_update(s);
}

/*
 * A pipelined RETR whose descriptor is on its way from the parent: what
 * is written so far goes out with its answer, in one write, when that
 * comes (a moment later; the parent answers before anything else).
 */
static int
deferring(const struct session *s)
{
	return s->opening && s->olen < s->ocap / 4 * 3;
}

/* Could the command loop make progress without hearing from anyone? */
static int
runnable(const struct session *s)
{
	if (s->dead || s->state == ST_CLOSING)
		return 0;
	if (s->wait == WAIT_PRODUCE)
		return 1;
	return s->wait == WAIT_NONE && (s->ilen == sizeof(s->ibuf) ||
	    memchr(s->ibuf, '\n', s->ilen) != NULL);
}

static void
rearm(struct session *s)
{
	struct timeval	tv = { pop3_timeout(), 0 };
	short		want = 0;

	if (!s->eof && s->state != ST_CLOSING && s->ilen < sizeof(s->ibuf))
		want |= EV_READ;
	/* Writable comes at once: that is how a busy session yields to the
	 * others and still resumes. */
	if ((s->olen > 0 && !deferring(s)) || runnable(s))
		want |= EV_WRITE;
	if (s->tls_handshake)
		want = EV_READ | (s->tls_want_write ? EV_WRITE : 0);
	else if (s->ssl != NULL && (s->tls_want_write ||
	    (SSL_has_pending(s->ssl) && s->ilen < sizeof(s->ibuf))))
		want |= EV_WRITE;
	if (want != s->evflags) {
		if (s->evflags)
			event_del(&s->ev);
		s->evflags = want;
		if (want) {
			event_assign(&s->ev, pop3_base, s->fd,
			    want | EV_PERSIST, on_io, s);
			event_add(&s->ev, NULL);
		}
	}
	if (s->wait == WAIT_DELAY)
		return;
	if (s->wait == WAIT_PARENT && (s->olen == 0 || deferring(s))) {
		/* The client waits for us: no idle clock. */
		if (s->timer_on)
			evtimer_del(&s->timer);
		s->timer_on = 0;
		return;
	}
	if (s->activity || !s->timer_on) {
		evtimer_add(&s->timer, &tv);
		s->timer_on = 1;
	}
	s->activity = 0;
}

/* Is there nothing left to do for a client that closed its side? */
static int
finished(struct session *s)
{
	if (s->state == ST_CLOSING)
		return s->olen == 0;
	if (!s->eof || s->wait != WAIT_NONE || s->olen != 0)
		return 0;
	return memchr(s->ibuf, '\n', s->ilen) == NULL;
}

void
session_update(struct session *s)
{
	int	i;

	for (i = 0; i < UPDATE_ROUNDS && !s->dead; i++) {
		run_commands(s);
		if (deferring(s))
			break;
		if (do_flush(s) == -1)
			s->dead = 1;
		/* STLS's +OK is out, in plaintext: now the handshake. */
		if (s->tls_starting && s->olen == 0 && !s->dead) {
			tls_begin(s);
			break;
		}
		/* Socket full, or nothing more to do: done for now. */
		if (s->olen != 0 || !runnable(s))
			break;
	}
	if (s->dead || finished(s)) {
		session_free(s);
		return;
	}
	if (s->wait == WAIT_NONE && !runnable(s)) {
		session_shrink(s);
		if (s->olen == 0)
			msg_preload(s);
	}
	rearm(s);
}
