/*
 * One SMTP session: bytes in, commands out of them, replies back.
 *
 * Framing is strict on purpose (SMTP smuggling): a command ends only at
 * CRLF and a bare CR or LF in one closes the session; DATA ends only at
 * CRLF.CRLF, and a bare CR or LF inside it gets the message refused once
 * the real end arrives. Nothing is ever normalised into a line end.
 */
#include <sys/param.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "authres.h"
#include "dmarc.h"
#include "child.h"
#include "log.h"
#include "policy.h"
#include "sasl.h"
#include "smtpd.h"
#include "tls.h"
#include "util.h"

static uint32_t	next_id = 1;

static void	session_on_read(int, short, void *);
static void	session_on_write(int, short, void *);
static void	session_on_timer(int, short, void *);
static void	session_process(struct session *);
static void	session_flush(struct session *);
static void	data_finish(struct session *);
static void	data_checked(struct session *);
static void	tls_begin(struct session *);
static void	input_drop(struct session *, size_t);
static void	tls_step(struct session *);

static void
make_sid(char *buf)
{
	uint32_t	r[2];

	arc4random_buf(r, sizeof(r));
	snprintf(buf, 17, "%08x%08x", r[0], r[1]);
}

static void
timer_arm(struct session *s)
{
	struct timeval	tv = { proc->conf.timeout, 0 };

	evtimer_add(&s->ev_timer, &tv);
}

static void
reading(struct session *s, int on)
{
	if (on == s->reading)
		return;
	s->reading = on;
	if (on)
		event_add(&s->ev_read, NULL);
	else
		event_del(&s->ev_read);
}

struct session *
session_new(int fd, struct sockaddr_storage *ss, socklen_t sslen, int kind)
{
	struct session	*s = xcalloc(1, sizeof(*s));

	s->id = next_id++;
	if (next_id == 0)
		next_id = 1;
	make_sid(s->sid);
	s->fd = fd;
	memcpy(&s->peer, ss, sslen);
	sockaddr_text(ss, s->peeraddr, sizeof(s->peeraddr));
	s->noauth_ok = config_noauth_match(&proc->conf,
	    (struct sockaddr *)ss);
	s->spoolfd = -1;
	s->kind = kind;
	s->submission = kind == LISTEN_SUBMISSION || kind == LISTEN_SMTPS;
	if ((s->out = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	event_set(&s->ev_read, fd, EV_READ | EV_PERSIST, session_on_read, s);
	event_set(&s->ev_write, fd, EV_WRITE, session_on_write, s);
	evtimer_set(&s->ev_timer, session_on_timer, s);
	event_base_set(proc->base, &s->ev_read);
	event_base_set(proc->base, &s->ev_write);
	event_base_set(proc->base, &s->ev_timer);
	return s;
}

/* Once the session is in the table: it may end at once (a TLS client
 * whose first bytes were refused). */
void
session_start(struct session *s)
{
	log_info("smtp-in session=%s connect from=%s%s", s->sid, s->peeraddr,
	    s->kind == LISTEN_SMTPS ? " port=smtps" : s->kind ==
	    LISTEN_SUBMISSION ? " port=submission" : "");
	reading(s, 1);
	timer_arm(s);
	/* Implicit TLS (RFC 8314): the greeting comes inside it. */
	if (s->kind == LISTEN_SMTPS) {
		tls_begin(s);
		return;
	}
	if (dnsbl_start(s))
		return;
	session_reply(s, "220 %s ESMTP pymaild", proc->conf.serverhostname);
	session_flush(s);
}

void
session_greeted(struct session *s)
{
	session_process(s);
}

static void
spool_abort(struct session *s)
{
	if (s->spoolfd != -1) {
		close(s->spoolfd);
		s->spoolfd = -1;
	}
	if (s->qid[0] == '\0')
		return;
	smtpd_spool_abort(s->id, s->qid);
	s->qid[0] = '\0';
}

static void
transaction_reset(struct session *s)
{
	spool_abort(s);
	spfcheck_free(s);
	msgcheck_free(s);
	s->authres[0] = '\0';
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->has_from = 0;
	s->from[0] = '\0';
	free(s->dr.buf);
	memset(&s->dr, 0, sizeof(s->dr));
	if (s->state == ST_MAIL || s->state == ST_RCPT || s->state == ST_DATA)
		s->state = ST_IDLE;
}

static void
session_destroy(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	SSL_free(s->ssl);
	evbuffer_free(s->out);
	free(s);
}

/*
 * End the session now, free its memory later: callers up the stack may
 * still look at it (and see s->dead), never at freed memory.
 */
void
session_end(struct session *s)
{
	struct timeval	now = { 0, 0 };

	if (s->dead)
		return;
	s->dead = 1;
	s->state = ST_CLOSING;
	dnsbl_free(s);
	transaction_reset(s);
	explicit_bzero(s->authname, sizeof(s->authname));
	explicit_bzero(s->in, sizeof(s->in));
	s->inlen = 0;
	event_del(&s->ev_read);
	event_del(&s->ev_write);
	evtimer_del(&s->ev_timer);
	close(s->fd);
	if (s->ssl != NULL && !s->tls_handshake)
		log_info("smtp-in session=%s disconnect tls=%s cipher=%s",
		    s->sid, s->tls_version, s->tls_cipher);
	else
		log_info("smtp-in session=%s disconnect tls=no", s->sid);
	smtpd_session_closed(s);
	if (event_base_once(proc->base, -1, EV_TIMEOUT, session_destroy, s,
	    &now) == -1)
		fatalx("event_base_once");
}

void
session_reply(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	evbuffer_add(s->out, "\r\n", 2);
	/* Every 4xx/5xx counts against the client (A7: 10 and out). */
	if ((fmt[0] == '4' || fmt[0] == '5') && fmt[1] != '2')
		s->errors++;
}

/* Queue a last reply, write what can be written, and end the session. */
void
session_close_with(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	evbuffer_add(s->out, "\r\n", 2);
	s->state = ST_CLOSING;
	reading(s, 0);
	session_flush(s);
}

/* Write what TLS takes; -1 when the session is over. */
static int
tls_flush(struct session *s)
{
	enum tls_io	 st;
	ssize_t		 n;
	size_t		 len;

	while ((len = evbuffer_get_contiguous_space(s->out)) > 0) {
		n = tls_write(s->ssl, evbuffer_pullup(s->out, len), len, &st);
		if (n > 0) {
			evbuffer_drain(s->out, n);
			continue;
		}
		if (st == TLS_IO_WANT_WRITE || st == TLS_IO_WANT_READ)
			return 0;
		return -1;
	}
	return 0;
}

static int
plain_flush(struct session *s)
{
	if (evbuffer_get_length(s->out) > 0 &&
	    evbuffer_write(s->out, s->fd) == -1 && errno != EAGAIN &&
	    errno != EINTR)
		return -1;
	return 0;
}

static void
session_flush(struct session *s)
{
	if (s->tls_handshake)
		return;
	if ((s->ssl != NULL ? tls_flush(s) : plain_flush(s)) == -1) {
		session_end(s);
		return;
	}
	if (evbuffer_get_length(s->out) > 0) {
		if (!s->writing) {
			s->writing = 1;
			event_add(&s->ev_write, NULL);
		}
		return;
	}
	if (s->state == ST_CLOSING) {
		/* TLS's close_notify first, so the client sees a clean end. */
		if (s->ssl != NULL)
			SSL_shutdown(s->ssl);
		shutdown(s->fd, SHUT_WR);
		session_end(s);
		return;
	}
	/* STARTTLS's 220 is out, in plaintext: now the handshake. */
	if (s->tls_starting)
		tls_begin(s);
}

static void
session_on_write(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	s->writing = 0;
	if (s->tls_handshake) {
		tls_step(s);
		return;
	}
	if (s->tls_write_on_read) {
		/* A TLS read that had to write first can go on. */
		s->tls_write_on_read = 0;
		session_on_read(fd, EV_READ, s);
		return;
	}
	session_flush(s);
	/* Replies drained: a session paused on them may read again. */
}

static void
session_on_timer(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	log_info("smtp-in session=%s timeout", s->sid);
	/* Nothing can be said to a client halfway through a handshake. */
	if (s->state == ST_CLOSING || s->tls_handshake) {
		session_end(s);
		return;
	}
	session_close_with(s, "421 4.3.2 %s Timeout, closing connection",
	    proc->conf.serverhostname);
}

/* Wait for the socket to be writable (TLS wants it), once. */
static void
want_write(struct session *s)
{
	if (!s->writing) {
		s->writing = 1;
		event_add(&s->ev_write, NULL);
	}
}

/* Read inside TLS: what the records hold, up to the buffer's room. */
static ssize_t
tls_input(struct session *s)
{
	enum tls_io	st;
	ssize_t		n;

	n = tls_read(s->ssl, s->in + s->inlen, sizeof(s->in) - s->inlen, &st);
	if (n > 0)
		return n;
	if (st == TLS_IO_WANT_WRITE) {
		s->tls_write_on_read = 1;
		want_write(s);
	}
	if (st == TLS_IO_WANT_READ || st == TLS_IO_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (st == TLS_IO_FAIL)
		log_info("smtp-in session=%s result=tls-error reason=\"%s\"",
		    s->sid, tls_error());
	return 0;
}

static void
session_on_read(int fd, short ev, void *arg)
{
	struct session	*s = arg;
	ssize_t		 n;

	if (s->tls_handshake) {
		tls_step(s);
		return;
	}
	if (s->inlen == sizeof(s->in))
		return;
	if (s->ssl != NULL)
		n = tls_input(s);
	else
		n = read(fd, s->in + s->inlen, sizeof(s->in) - s->inlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		s->eof = 1;
		reading(s, 0);
	} else {
		s->inlen += n;
		timer_arm(s);
	}
	if (s->wait == WAIT_GREET) {
		dnsbl_talked_first(s);
		return;
	}
	session_process(s);
}

/* ---- DATA ------------------------------------------------------------ */

/* Write out what the framing lets go (a held header field stays). */
static void
data_write(struct session *s)
{
	struct dataread	*dr = &s->dr;
	size_t		 off = 0, len = MIN(smtp_data_flushable(dr), dr->buflen);
	ssize_t		 n;

	while (off < len && !dr->ioerr) {
		n = write(s->spoolfd, dr->buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			dr->ioerr = errno;
		else
			off += n;
	}
	if (!dr->ioerr)
		msgcheck_data(s, (const char *)dr->buf, len);
	memmove(dr->buf, dr->buf + len, dr->buflen - len);
	dr->buflen -= len;
	dr->linestart -= MIN(dr->linestart, len);
	dr->ar_start -= MIN(dr->ar_start, len);
}

/*
 * RFC 6409 8: a submitted message without Date: or Message-ID: gets them,
 * at the end of its header: before its empty line (blank), or after its
 * last line when it has no body.
 */
static void
submission_fields(struct session *s, int blank)
{
	struct dataread	*dr = &s->dr;
	char		 date[64], add[512];
	struct tm	 tm;
	time_t		 now = time(NULL);
	uint32_t	 r[2];
	int		 len = 0;

	if (!s->submission || dr->refused || (dr->has_date && dr->has_msgid))
		return;
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	arc4random_buf(r, sizeof(r));
	if (!dr->has_date)
		len += snprintf(add + len, sizeof(add) - len, "Date: %s\r\n",
		    date);
	if (!dr->has_msgid)
		len += snprintf(add + len, sizeof(add) - len,
		    "Message-ID: <%s.%08x%08x@%s>\r\n", s->qid, r[0], r[1],
		    proc->conf.serverhostname);
	if (len <= 0 || (size_t)len >= sizeof(add))
		return;
	if (blank)
		dr->buflen -= 2;
	if (SMTP_DATABUF - dr->buflen < (size_t)len + 2)
		data_write(s);
	memcpy(dr->buf + dr->buflen, add, len);
	dr->buflen += len;
	if (blank) {
		memcpy(dr->buf + dr->buflen, "\r\n", 2);
		dr->buflen += 2;
	}
	dr->size += len;
	dr->has_date = dr->has_msgid = 1;
}

/*
 * Feed n bytes of DATA; returns how many were used (fewer when the end
 * of data was found: the rest is the next command).
 */
static size_t
data_feed(struct session *s, const unsigned char *p, size_t n)
{
	struct dataread	*dr = &s->dr;
	size_t		 used = 0;
	int		 end = 0;

	while (used < n && !end) {
		used += smtp_data_frame(dr, p + used, n - used, SMTP_DATABUF,
		    &end);
		if (dr->hdrend) {
			dr->hdrend = 0;
			submission_fields(s, 1);
		}
		if (dr->size > proc->conf.smtpmaxmailsize)
			dr->toobig = dr->refused = 1;
		/* Once the message is refused, keep reading but store
		 * nothing. */
		if (dr->refused || dr->ioerr)
			dr->buflen = dr->linestart = dr->ar_start = 0;
		else if (SMTP_DATABUF - dr->buflen < 2)
			data_write(s);
	}
	if (end)
		data_finish(s);
	return used;
}

/* RFC 3848: ESMTP, with S inside TLS and A once authenticated. */
static const char *
protocol_name(const struct session *s)
{
	static const char *const names[2][2] = {
		{ "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" }
	};

	if (!s->esmtp)
		return "SMTP";
	return names[s->ssl != NULL][s->authenticated != 0];
}

static void
received_header(struct session *s)
{
	char		 date[64], hdr[1024], tlsnote[96] = "";
	struct tm	 tm;
	time_t		 now = time(NULL);
	int		 len;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (s->ssl != NULL)
		snprintf(tlsnote, sizeof(tlsnote), " (%s %s)", s->tls_version,
		    s->tls_cipher);
	len = snprintf(hdr, sizeof(hdr),
	    "Received: from %s (%s)\r\n\tby %s (pymaild) with %s%s id %s%s%s%s"
	    ";\r\n\t%s\r\n", s->helo, s->peeraddr, proc->conf.serverhostname,
	    protocol_name(s), tlsnote, s->qid, s->nrcpts == 1 ?
	    "\r\n\tfor <" : "",
	    s->nrcpts == 1 ? s->rcpts[0].address : "",
	    s->nrcpts == 1 ? ">" : "", date);
	if (len < 0 || (size_t)len >= sizeof(hdr))
		len = 0;
	memcpy(s->dr.buf, hdr, len);
	s->dr.buflen = len;
}

static void
data_begin(struct session *s)
{
	smtp_data_start(&s->dr, xmalloc(SMTP_DATABUF));
	/* A copy: a reload may free the configuration meanwhile. */
	strlcpy(s->dr.authserv_id, proc->conf.serverhostname,
	    sizeof(s->dr.authserv_id));
	received_header(s);
	s->msgstart = s->dr.buflen;	/* our Received: only, so far */
	msgcheck_data_begin(s, s->msgstart);
	s->state = ST_DATA;
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * Ask queued for the spool file as soon as MAIL FROM is accepted, so
 * that it is here by DATA, which is then answered without a round trip
 * to queued. A transaction that ends before DATA gives it back.
 */
static void
spool_prefetch(struct session *s)
{
	struct msgbuild	mb;

	if (s->spoolasked || s->spoolfd != -1)
		return;
	mb_init(&mb);
	mb_u32(&mb, s->id);
	smtpd_send_queued(IMSG_SPOOL_CREATE, &mb);
	s->spoolasked = 1;
}

/* A spool file asked for ahead arrived before DATA. */
static void
spool_arrived_early(struct session *s, const char *id, int fd)
{
	if (fd == -1)
		return;		/* DATA asks again */
	if ((s->state == ST_MAIL || s->state == ST_RCPT) &&
	    s->spoolfd == -1) {
		strlcpy(s->qid, id, sizeof(s->qid));
		s->spoolfd = fd;
		return;
	}
	/* The transaction ended meanwhile: give it back. */
	close(fd);
	smtpd_spool_abort(s->id, id);
}

void
session_on_spool(struct session *s, const char *id, int fd)
{
	s->spoolasked = 0;
	if (s->wait != WAIT_SPOOL) {
		spool_arrived_early(s, id, fd);
		return;
	}
	s->wait = WAIT_NONE;
	if (fd == -1) {
		session_reply(s, "451 4.3.0 Queue unavailable, try again "
		    "later");
		session_process(s);
		return;
	}
	strlcpy(s->qid, id, sizeof(s->qid));
	s->spoolfd = fd;
	data_begin(s);
	session_process(s);
}

/*
 * One line per message at loglevel 2, refused or queued; a refusal says
 * why (the reply), so an administrator or fail2ban can act on it.
 */
static void
log_result(struct session *s, const char *result, const char *reason)
{
	char		 to[2048];
	const char	*spf;
	size_t		 i, len = 0;

	to[0] = '\0';
	for (i = 0; i < s->nrcpts && len < sizeof(to) - 1; i++)
		len += snprintf(to + len, sizeof(to) - len, "%s<%s>",
		    i ? "," : "", s->rcpts[i].address);
	spf = spfcheck_result(s);
	log_info("smtp-in session=%s client=%s from=<%s> to=%s size=%lld "
	    "result=%s%s%s%s%s%s%s", s->sid, s->peeraddr, s->from, to,
	    s->dr.size, result, s->qid[0] ? " id=" : "", s->qid,
	    spf ? " spf=" : "", spf ? spf : "",
	    reason ? " reason=" : "", reason ? reason : "");
}

static void
data_refuse(struct session *s, const char *reply, const char *result)
{
	char	reason[600];	/* a reply is at most 512 */

	snprintf(reason, sizeof(reason), "\"%s\"", reply);
	smtp_refused(result);
	log_result(s, result, reason);
	session_reply(s, "%s", reply);
	transaction_reset(s);
}

static void
send_commit(struct session *s)
{
	struct msgbuild	 mb;
	size_t		 i;
	const char	*proto;

	for (i = 0; i < s->nrcpts; i++) {
		mb_init(&mb);
		mb_u32(&mb, s->id);
		mb_str(&mb, s->qid);
		mb_str(&mb, s->rcpts[i].address);
		mb_str(&mb, s->rcpts[i].user);
		mb_str(&mb, s->rcpts[i].failed ? s->rcpts[i].reason : "");
		smtpd_send_queued(IMSG_SPOOL_RCPT, &mb);
	}
	proto = protocol_name(s);
	mb_init(&mb);
	mb_u32(&mb, s->id);
	mb_str(&mb, s->qid);
	mb_str(&mb, s->from);
	mb_str(&mb, s->helo);
	mb_str(&mb, s->peeraddr);
	mb_str(&mb, proto);
	mb_str(&mb, s->sid);
	mb_u64(&mb, s->dr.size);
	mb_str(&mb, s->authres);
	smtpd_send_queued(IMSG_SPOOL_COMMIT, &mb);
	s->wait = WAIT_COMMIT;
}

/*
 * What to say when no recipient can take the message: name the causes
 * there are, and no other (a disabled mailbox is not a full one).
 */
static const char *
nobody_fits_reply(struct session *s, const char **result)
{
	size_t		i;
	unsigned int	causes = 0;

	for (i = 0; i < s->nrcpts; i++)
		if (s->rcpts[i].failed)
			causes |= POLICY_CAUSE(s->rcpts[i].failed);
	return policy_summary(causes, result);
}

/* After the per-recipient size checks of end of DATA. */
static void
data_sizes_done(struct session *s)
{
	const char	*reply, *result;
	size_t		 i, ok = 0;

	for (i = 0; i < s->nrcpts; i++)
		if (!s->rcpts[i].failed)
			ok++;
	if (ok == 0) {
		reply = nobody_fits_reply(s, &result);
		data_refuse(s, reply, result);
		return;
	}
	send_commit(s);
}

static void
request_size_check(struct session *s, struct rcpt *r, uint32_t idx)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, s->id);
	mb_str(&mb, r->user);
	mb_u64(&mb, (uint64_t)s->dr.size);
	mb_u32(&mb, idx);
	smtpd_send_parent(IMSG_RCPT_CHECK, &mb);
}

static void
data_finish(struct session *s)
{
	struct dataread	*dr = &s->dr;

	mono_now(&s->dot_at);
	s->state = ST_RCPT;
	smtp_data_end(dr);
	if (!dr->hdrseen)
		submission_fields(s, 0);
	if (!dr->refused) {
		data_write(s);
		if (!dr->ioerr)
			msgcheck_start(s);
	}
	close(s->spoolfd);
	s->spoolfd = -1;
	if (dr->bare) {
		data_refuse(s, "550 5.5.2 Bare CR or LF in message data "
		    "refused", "rejected-bare-lf");
		return;
	}
	if (dr->toolong) {
		data_refuse(s, "550 5.5.2 Message has a line over 998 octets",
		    "rejected-long-line");
		return;
	}
	if (dr->nul) {
		data_refuse(s, "550 5.6.0 NUL octet in message data refused",
		    "rejected-nul");
		return;
	}
	if (dr->toobig) {
		data_refuse(s, "552 5.3.4 Message too big", "rejected-size");
		return;
	}
	if (dr->received > SMTP_MAX_RECEIVED) {
		data_refuse(s, "554 5.4.6 Too many Received: headers, mail "
		    "loop suspected", "rejected-loop");
		return;
	}
	if (dr->ioerr) {
		data_refuse(s, dr->ioerr == ENOSPC || dr->ioerr == EDQUOT ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Local error writing the message",
		    "tempfail-write");
		return;
	}
	if (spfcheck_pending(s) || msgcheck_pending(s)) {
		s->wait = WAIT_CHECKS;
		return;
	}
	data_checked(s);
}

/* A verdict is in: the end of DATA goes on once all are. */
void
session_on_checks_done(struct session *s)
{
	if (s->wait != WAIT_CHECKS || spfcheck_pending(s) ||
	    msgcheck_pending(s))
		return;
	s->wait = WAIT_NONE;
	data_checked(s);
	session_process(s);
}

/*
 * Our verdicts on who sent the message, as the one Authentication-Results
 * field (RFC 8601) delivery puts on top of it (s->authres, "" when no
 * check ran: our own users' mail, submission, noauthhosts); 1 when DMARC
 * asks for the message to be refused and we honour it.
 */
static int
checks_verdict(struct session *s)
{
	static struct authres	 ar;
	struct dmarc_verdict	 dv;
	const char		*f, *spfdom;
	size_t			 len;
	int			 spfpass;

	s->authres[0] = '\0';
	if (s->spfc == NULL)
		return 0;
	authres_begin(&ar, proc->conf.serverhostname);
	spfcheck_authres(s, &ar);
	spfdom = spfcheck_domain(s, &spfpass);
	msgcheck_authres(s, &ar, spfdom, spfpass, &dv);
	if ((f = authres_end(&ar, &len)) != NULL)
		strlcpy(s->authres, f, sizeof(s->authres));
	return dv.result == DMARC_FAIL && dv.disposition == DMARC_P_REJECT &&
	    proc->conf.dmarcreject;
}

/* The data is sound and authenticated as far as it can be. */
static void
data_checked(struct session *s)
{
	char	reply[512];
	size_t	i;
	int	dmarc_refuses = checks_verdict(s);

	if (spfcheck_refusal(s, reply, sizeof(reply))) {
		data_refuse(s, reply, "rejected-spf");
		return;
	}
	if (msgcheck_from_refusal(s, reply, sizeof(reply))) {
		data_refuse(s, reply, "rejected-from");
		return;
	}
	if (dmarc_refuses) {
		data_refuse(s, "550 5.7.1 Message refused: its From: domain "
		    "publishes a DMARC policy of reject, and it fails it",
		    "rejected-dmarc");
		return;
	}
	/* Quota and maxmailsize again, now that the size is known. */
	s->sizechecks = 0;
	for (i = 0; i < s->nrcpts; i++) {
		if (s->rcpts[i].user[0] == '\0')
			continue;
		request_size_check(s, &s->rcpts[i], i);
		s->sizechecks++;
	}
	if (s->sizechecks > 0)
		s->wait = WAIT_SIZES;
	else
		send_commit(s);
}

void
session_on_size_reply(struct session *s, uint32_t idx, uint32_t result)
{
	struct rcpt	*r;

	if (s->wait != WAIT_SIZES || idx >= s->nrcpts)
		return;
	r = &s->rcpts[idx];
	/*
	 * A user gone since RCPT (or a postmaster without a mailbox) is
	 * left to delivery, which bounces it like mail to an unknown user;
	 * a tempfail is retried there too.
	 */
	if (result == RCPT_OVERQUOTA || result == RCPT_TOOBIG ||
	    result == RCPT_DISABLED) {
		r->failed = result;
		policy_format(result, 1, r->reason, sizeof(r->reason));
		log_info("smtp-in session=%s client=%s from=<%s> to=<%s> "
		    "result=rejected reason=\"%s\"", s->sid, s->peeraddr,
		    s->from, r->address, r->reason);
	}
	if (--s->sizechecks > 0)
		return;
	s->wait = WAIT_NONE;
	data_sizes_done(s);
	session_process(s);
}

void
session_on_commit(struct session *s, const char *id, uint32_t result)
{
	char	qid[QUEUE_ID_LEN + 1];

	if (s->wait != WAIT_COMMIT || strcmp(id, s->qid) != 0)
		return;
	s->wait = WAIT_NONE;
	strlcpy(qid, s->qid, sizeof(qid));
	if (result == SPOOL_OK) {
		log_result(s, "queued", NULL);
		s->qid[0] = '\0';	/* queued's now: nothing to abort */
		session_reply(s, "250 2.0.0 Ok: queued as %s", qid);
		smtpcount.accepted++;
		hist_observe(&smtpcount.data_latency, usec_since(&s->dot_at));
	} else if (result == SPOOL_REFUSED) {
		smtp_refused("rejected-queue");
		log_result(s, "rejected-queue", "\"the queue refused the "
		    "envelope\"");
		s->qid[0] = '\0';
		session_reply(s, "554 5.3.0 The queue refused this message");
	} else {
		smtp_refused("tempfail-queue");
		log_result(s, "tempfail-queue", NULL);
		s->qid[0] = '\0';
		session_reply(s, result == SPOOL_NOSPACE ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Temporary queue failure, try again later");
	}
	transaction_reset(s);
	session_process(s);
}

/* ---- commands -------------------------------------------------------- */

static int
auth_allowed(const struct session *s)
{
	return tls_auth_allowed(s->ssl != NULL, s->submission, &s->peer);
}

static void
cmd_helo(struct session *s, char *arg, int esmtp)
{
	size_t	i;

	if (*arg == '\0') {
		session_reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	arg[strcspn(arg, " ")] = '\0';
	for (i = 0; arg[i]; i++)
		if (arg[i] < 0x21 || arg[i] > 0x7e) {
			session_reply(s, "501 5.5.4 Invalid hostname");
			return;
		}
	transaction_reset(s);
	strlcpy(s->helo, arg, sizeof(s->helo));
	s->esmtp = esmtp;
	s->state = ST_IDLE;
	if (!esmtp) {
		session_reply(s, "250 %s", proc->conf.serverhostname);
		return;
	}
	session_reply(s, "250-%s Hello %s [%s]", proc->conf.serverhostname,
	    s->helo, s->peeraddr);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %lld", proc->conf.smtpmaxmailsize);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->ssl == NULL && tls_ready())
		session_reply(s, "250-STARTTLS");
	if (auth_allowed(s))
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250 SMTPUTF8");
}

static void
cmd_mail(struct session *s, char *arg)
{
	struct mailaddr	 a;
	char		*params;
	const char	*err;

	if (s->state == ST_CONNECTED) {
		session_reply(s, "503 5.5.1 Send HELO or EHLO first");
		return;
	}
	if (s->state != ST_IDLE) {
		session_reply(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	/* Submission (RFC 6409): every sender logs in first. */
	if (s->submission && !s->authenticated) {
		smtp_refused("auth-required");
		session_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if ((err = smtp_parse_path_arg(arg, "FROM", ADDR_ALLOW_NULL |
	    ADDR_UTF8, &a, &params)) != NULL) {
		session_reply(s, "%s", err);
		return;
	}
	if ((err = smtp_parse_mail_params(params, &s->params)) != NULL) {
		session_reply(s, "%s", err);
		return;
	}
	if (s->params.size > proc->conf.smtpmaxmailsize) {
		smtp_refused("size");
		session_reply(s, "552 5.3.4 Message size exceeds the limit "
		    "of %lld octets", proc->conf.smtpmaxmailsize);
		return;
	}
	if (addr_format(&a, s->from, sizeof(s->from)) == -1) {
		session_reply(s, "501 5.1.7 Bad sender address");
		return;
	}
	s->has_from = 1;
	s->state = ST_MAIL;
	spool_prefetch(s);
	session_reply(s, "250 2.1.0 Ok");
	spfcheck_start(s);
}

static void
rcpt_accept(struct session *s, const struct rcpt *r)
{
	size_t	i;

	for (i = 0; i < s->nrcpts; i++)
		if (strcasecmp(s->rcpts[i].address, r->address) == 0) {
			session_reply(s, "250 2.1.5 Ok");
			return;
		}
	s->rcpts = xreallocarray(s->rcpts, s->nrcpts + 1, sizeof(*r));
	s->rcpts[s->nrcpts++] = *r;
	s->state = ST_RCPT;
	session_reply(s, "250 2.1.5 Ok");
}

static int
is_postmaster(const struct mailaddr *a)
{
	return !a->quoted && strcasecmp(a->local, "postmaster") == 0;
}

/* A refusal at RCPT, at loglevel 2: the session, the client, the
 * address when there is one, and the reply that says why. */
static void
rcpt_log(struct session *s, const char *addr, const char *reply)
{
	log_info("smtp-in session=%s client=%s from=<%s>%s%s%s "
	    "result=rejected reason=\"%s\"", s->sid, s->peeraddr, s->from,
	    *addr ? " to=<" : "", addr, *addr ? ">" : "", reply);
}

/* Refuse a recipient: "CODE <addr>: text" to the client, and the log. */
static void
rcpt_refuse(struct session *s, const char *addr, const char *code,
    const char *text)
{
	char	reason[128];

	snprintf(reason, sizeof(reason), "%s %s", code, text);
	rcpt_log(s, addr, reason);
	if (*addr == '\0')
		session_reply(s, "%s", reason);
	else
		session_reply(s, "%s <%s>: %s", code, addr, text);
}

/*
 * A refusal by the mailbox policy, in the words of its table (a verdict
 * out of range from the parent reads as a temporary failure).
 */
static void
rcpt_refuse_policy(struct session *s, const char *addr, uint32_t verdict)
{
	const struct policy_reply	*p = policy_reply(verdict);

	smtp_refused_verdict(verdict);
	rcpt_refuse(s, addr, p->rcpt, p->text);
}

/* A local recipient: the postmaster, or a user the parent must know. */
static void
rcpt_local(struct session *s, const struct mailaddr *a)
{
	struct rcpt	*r = &s->pending;
	struct msgbuild	 mb;
	const char	*why;

	if (a->domain[0] == '\0')
		snprintf(r->address, sizeof(r->address), "postmaster@%s",
		    proc->conf.localdomains[0]);
	else
		addr_format(a, r->address, sizeof(r->address));
	if (is_postmaster(a)) {
		/* RFC 5321 4.5.1: always accepted. */
		strlcpy(r->user, proc->conf.postmaster, sizeof(r->user));
		rcpt_accept(s, r);
		return;
	}
	if (user_name_normalize(a->local, r->user, &why) == -1) {
		rcpt_refuse_policy(s, r->address, RCPT_NOUSER);
		return;
	}
	mb_init(&mb);
	mb_u32(&mb, s->id);
	mb_str(&mb, r->user);
	mb_u64(&mb, s->params.size > 0 ? s->params.size : 0);
	mb_u32(&mb, UINT32_MAX);
	smtpd_send_parent(IMSG_RCPT_CHECK, &mb);
	s->wait = WAIT_RCPT;
}

static void
cmd_rcpt(struct session *s, char *arg)
{
	struct mailaddr	 a;
	char		*params;
	const char	*err;
	struct rcpt	*r = &s->pending;

	if (s->state != ST_MAIL && s->state != ST_RCPT) {
		session_reply(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->nrcpts >= SMTP_MAX_RCPTS) {
		smtp_refused("too-many-recipients");
		rcpt_refuse(s, "", "452 4.5.3", "Too many recipients");
		return;
	}
	if ((err = smtp_parse_path_arg(arg, "TO", s->params.smtputf8 ?
	    ADDR_UTF8 : 0, &a, &params)) != NULL ||
	    (err = smtp_parse_rcpt_params(params)) != NULL) {
		/* The client's text stays out of the log: only why. */
		rcpt_log(s, "", err);
		session_reply(s, "%s", err);
		return;
	}
	memset(r, 0, sizeof(*r));
	if (a.domain[0] == '\0' || config_is_localdomain(&proc->conf,
	    a.domain)) {
		rcpt_local(s, &a);
		return;
	}
	if (addr_format(&a, r->address, sizeof(r->address)) == -1) {
		rcpt_refuse(s, "", "501 5.1.3", "Bad address syntax");
		return;
	}
	if (!s->authenticated && !s->noauth_ok) {
		smtp_refused("relay-denied");
		rcpt_refuse(s, r->address, "554 5.7.1", "Relay access denied");
		return;
	}
	rcpt_accept(s, r);
}

void
session_on_rcpt_reply(struct session *s, uint32_t result)
{
	struct rcpt	*r = &s->pending;

	if (s->wait != WAIT_RCPT)
		return;
	s->wait = WAIT_NONE;
	if (result == RCPT_OK)
		rcpt_accept(s, r);
	else
		rcpt_refuse_policy(s, r->address, result);
	session_process(s);
}

static void
cmd_data(struct session *s, char *arg)
{
	if (*arg != '\0') {
		session_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state != ST_RCPT) {
		session_reply(s, "503 5.5.1 No valid recipients");
		return;
	}
	if (s->spoolfd != -1) {
		data_begin(s);
		return;
	}
	spool_prefetch(s);
	s->wait = WAIT_SPOOL;
}

static void
auth_send(struct session *s, const char *user, const char *pass)
{
	struct msgbuild	mb;

	strlcpy(s->authname, user, sizeof(s->authname));
	mb_init(&mb);
	mb_u32(&mb, s->id);
	mb_str(&mb, user);
	mb_str(&mb, pass);
	mb_str(&mb, s->peeraddr);
	smtpd_send_parent(IMSG_AUTH, &mb);
	explicit_bzero(&mb, sizeof(mb));
	s->wait = WAIT_AUTH;
}

static void
auth_plain(struct session *s, const char *b64)
{
	struct sasl_cred	c;

	if (sasl_plain(b64, &c) == -1) {
		session_reply(s, "501 5.5.2 Malformed AUTH PLAIN response");
		return;
	}
	auth_send(s, c.user, c.pass);
	sasl_cred_wipe(&c);
}

static int
decode_line(struct session *s, const char *b64, char *out, size_t len)
{
	if (sasl_login(b64, out, len) == -1) {
		session_reply(s, "501 5.5.2 Malformed base64");
		return -1;
	}
	return 0;
}

static void
cmd_auth(struct session *s, char *arg)
{
	char	*mech, *initial;

	if (s->state == ST_CONNECTED) {
		session_reply(s, "503 5.5.1 Send EHLO first");
		return;
	}
	if (s->authenticated) {
		session_reply(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (!auth_allowed(s)) {
		smtp_refused("tls-required");
		session_reply(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (s->state != ST_IDLE) {
		session_reply(s, "503 5.5.1 AUTH not allowed in a mail "
		    "transaction");
		return;
	}
	mech = strsep(&arg, " ");
	initial = arg;
	if (strcasecmp(mech, "PLAIN") == 0) {
		if (initial == NULL || *initial == '\0') {
			s->state = ST_AUTH_PLAIN;
			session_reply(s, "334 ");
		} else
			auth_plain(s, initial);
		return;
	}
	if (strcasecmp(mech, "LOGIN") == 0) {
		if (initial == NULL || *initial == '\0') {
			s->state = ST_AUTH_USER;
			session_reply(s, "334 VXNlcm5hbWU6");
			return;
		}
		if (decode_line(s, initial, s->authname,
		    sizeof(s->authname)) == -1)
			return;
		s->state = ST_AUTH_PASS;
		session_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	session_reply(s, "504 5.5.4 Unrecognized authentication mechanism");
}

/* A line while an AUTH exchange waits for the client's response. */
static void
auth_continue(struct session *s, char *line)
{
	char			pass[SASL_PASS_MAX + 1];
	enum smtp_state		st = s->state;

	s->state = ST_IDLE;
	if (strcmp(line, "*") == 0) {
		session_reply(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	if (st == ST_AUTH_PLAIN) {
		auth_plain(s, line);
		return;
	}
	if (st == ST_AUTH_USER) {
		if (decode_line(s, line, s->authname,
		    sizeof(s->authname)) == -1)
			return;
		s->state = ST_AUTH_PASS;
		session_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	if (decode_line(s, line, pass, sizeof(pass)) == -1)
		return;
	auth_send(s, s->authname, pass);
	explicit_bzero(pass, sizeof(pass));
}

static void
auth_delay_done(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	s->wait = WAIT_NONE;
	evtimer_set(&s->ev_timer, session_on_timer, s);
	event_base_set(proc->base, &s->ev_timer);
	timer_arm(s);
	session_reply(s, "535 5.7.8 Authentication credentials invalid");
	/* Guesses pipelined behind a failure would each hold the session
	 * through another delay; a client with a wrong password needs only
	 * one answer to tell its user. */
	if (++s->authfails >= SMTP_MAX_AUTHFAIL) {
		smtp_refused("too-many-auth-failures");
		log_info("smtp-in session=%s client=%s result=closed "
		    "reason=\"too many failed authentications\"", s->sid,
		    s->peeraddr);
		session_close_with(s, "421 4.7.0 %s Too many failed "
		    "authentications", proc->conf.serverhostname);
		return;
	}
	session_process(s);
}

void
session_on_auth_reply(struct session *s, uint32_t result, uint32_t delay)
{
	struct timeval	tv;
	const char	*why;

	if (s->wait != WAIT_AUTH)
		return;
	s->wait = WAIT_NONE;
	switch (result) {
	case AUTH_OK:
		s->authenticated = 1;
		smtpcount.auth_ok++;
		if (login_user_name(&proc->conf, s->authname, s->authuser,
		    &why) == -1)
			strlcpy(s->authuser, "?", sizeof(s->authuser));
		log_info("smtp-in session=%s auth user=%s result=ok", s->sid,
		    s->authuser);
		session_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_BLOCKED:
		smtpcount.auth_blocked++;
		session_close_with(s, "421 4.7.0 Too many authentication "
		    "failures from your address; try again later");
		return;
	case AUTH_FAIL:
		/* Counted now: a client may leave during the delay. */
		smtpcount.auth_failed++;
		/* The session timer doubles as the delay timer. */
		s->wait = WAIT_DELAY;
		evtimer_del(&s->ev_timer);
		evtimer_set(&s->ev_timer, auth_delay_done, s);
		event_base_set(proc->base, &s->ev_timer);
		tv.tv_sec = delay / 1000;
		tv.tv_usec = (delay % 1000) * 1000;
		evtimer_add(&s->ev_timer, &tv);
		return;
	default:
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	explicit_bzero(s->authname, sizeof(s->authname));
	session_process(s);
}

/* ---- TLS --------------------------------------------------------- */

/*
 * RFC 3207: the 220, then the handshake. Whatever the client sent behind
 * STARTTLS in plaintext is thrown away, never run inside TLS (the
 * command injection of CVE-2011-0411): now, and again when the
 * handshake starts, for what came meanwhile.
 */
static void
cmd_starttls(struct session *s, char *arg)
{
	if (*arg != '\0') {
		session_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->ssl != NULL) {
		session_reply(s, "503 5.5.1 TLS already active");
		return;
	}
	if (!tls_ready()) {
		session_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	if (s->state != ST_IDLE) {
		session_reply(s, "503 5.5.1 Send EHLO first, and no STARTTLS "
		    "in a mail transaction");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	input_drop(s, s->inlen);
	s->wait = WAIT_TLS;
	s->tls_starting = 1;
}

static void
tls_begin(struct session *s)
{
	s->tls_starting = 0;
	input_drop(s, s->inlen);
	s->discard = 0;
	if ((s->ssl = tls_session(s->fd)) == NULL) {
		log_warnx("smtp-in session=%s tls=failed reason=\"no TLS "
		    "session: %s\"", s->sid, tls_error());
		session_end(s);
		return;
	}
	s->wait = WAIT_TLS;
	s->tls_handshake = 1;
	tls_step(s);
}

/* Inside TLS the session starts again (RFC 3207 4.2): a new EHLO, and
 * nothing learnt before it is kept. */
static void
tls_established(struct session *s)
{
	s->tls_handshake = 0;
	s->wait = WAIT_NONE;
	strlcpy(s->tls_version, SSL_get_version(s->ssl),
	    sizeof(s->tls_version));
	strlcpy(s->tls_cipher, SSL_get_cipher_name(s->ssl),
	    sizeof(s->tls_cipher));
	log_info("smtp-in session=%s tls=%s cipher=%s%s", s->sid,
	    s->tls_version, s->tls_cipher, SSL_session_reused(s->ssl) ?
	    " resumed=yes" : "");
	transaction_reset(s);
	s->state = ST_CONNECTED;
	s->esmtp = 0;
	s->helo[0] = '\0';
	s->authenticated = 0;
	s->authuser[0] = '\0';
	if (s->kind == LISTEN_SMTPS)
		session_reply(s, "220 %s ESMTP pymaild",
		    proc->conf.serverhostname);
	session_process(s);
}

static void
tls_step(struct session *s)
{
	switch (tls_handshake(s->ssl)) {
	case TLS_IO_DONE:
		tls_established(s);
		return;
	case TLS_IO_WANT_READ:
		return;
	case TLS_IO_WANT_WRITE:
		want_write(s);
		return;
	default:
		log_info("smtp-in session=%s tls=failed reason=\"%s\"",
		    s->sid, tls_error());
		session_end(s);
		return;
	}
}

/* Refused at connect (RFC 5321 3.1): QUIT ends it, the rest is out of
 * sequence, and the error limit ends a client that keeps trying. */
static void
blocked_command(struct session *s, char *line)
{
	char	*arg;

	if (smtp_parse_command(line, &arg) == CMD_QUIT) {
		session_close_with(s, "221 2.0.0 %s closing connection",
		    proc->conf.serverhostname);
		return;
	}
	session_reply(s, "503 5.5.1 Bad sequence of commands: this "
	    "connection was refused");
}

static void
cmd_dispatch(struct session *s, char *line)
{
	char	*arg;

	if (s->state == ST_AUTH_PLAIN || s->state == ST_AUTH_USER ||
	    s->state == ST_AUTH_PASS) {
		auth_continue(s, line);
		return;
	}
	if (s->blocked) {
		blocked_command(s, line);
		return;
	}
	switch (smtp_parse_command(line, &arg)) {
	case CMD_HELO:
		cmd_helo(s, arg, 0);
		break;
	case CMD_EHLO:
		cmd_helo(s, arg, 1);
		break;
	case CMD_MAIL:
		cmd_mail(s, arg);
		break;
	case CMD_RCPT:
		cmd_rcpt(s, arg);
		break;
	case CMD_DATA:
		cmd_data(s, arg);
		break;
	case CMD_RSET:
		transaction_reset(s);
		session_reply(s, "250 2.0.0 Ok");
		break;
	case CMD_NOOP:
		session_reply(s, "250 2.0.0 Ok");
		break;
	case CMD_QUIT:
		session_close_with(s, "221 2.0.0 %s closing connection",
		    proc->conf.serverhostname);
		break;
	case CMD_VRFY:
		session_reply(s, "252 2.5.2 Cannot VRFY user, but will accept "
		    "message and attempt delivery");
		break;
	case CMD_EXPN:
		session_reply(s, "502 5.5.1 EXPN not available");
		break;
	case CMD_HELP:
		session_reply(s, "214 2.0.0 pymaild: see RFC 5321; commands: "
		    "HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH HELP");
		break;
	case CMD_AUTH:
		cmd_auth(s, arg);
		break;
	case CMD_STARTTLS:
		cmd_starttls(s, arg);
		break;
	case CMD_BDAT:
		session_reply(s, "502 5.5.1 CHUNKING not offered");
		break;
	default:
		session_reply(s, "500 5.5.1 Command unrecognized");
		break;
	}
}

/* ---- the input loop -------------------------------------------------- */

/* Drop the first n octets of the input, leaving no copy of them (an
 * AUTH line's password) behind what is left. */
static void
input_drop(struct session *s, size_t n)
{
	memmove(s->in, s->in + n, s->inlen - n);
	explicit_bzero(s->in + s->inlen - n, n);
	s->inlen -= n;
}

/*
 * Take one command line from the buffer. 1: line set; 0: need more;
 * -1: the session was closed or the line was refused in place.
 */
static int
next_line(struct session *s, char *line)
{
	unsigned char	*nl;
	size_t		 len, scan;

	if (s->discard) {
		/* Skipping the rest of an overlong line. */
		if ((nl = memchr(s->in, '\n', s->inlen)) == NULL) {
			input_drop(s, s->inlen);
			return 0;
		}
		input_drop(s, nl - s->in + 1);
		s->discard = 0;
	}
	if (s->inlen == 0)
		return 0;
	nl = memchr(s->in, '\n', s->inlen);
	len = nl ? (size_t)(nl - s->in) : s->inlen;
	if (nl != NULL && (len == 0 || s->in[len - 1] != '\r')) {
		session_close_with(s, "500 5.5.2 Bare LF in command; closing");
		return -1;
	}
	/* A CR anywhere but right before the LF (or at the very end of
	 * what has arrived so far) is a bare CR. */
	scan = len - 1;
	if (scan > 0 && memchr(s->in, '\r', scan) != NULL) {
		session_close_with(s, "500 5.5.2 Bare CR in command; closing");
		return -1;
	}
	if (nl == NULL) {
		if (s->inlen < SMTP_CMD_MAX)
			return 0;
		session_reply(s, "500 5.5.2 Line too long");
		input_drop(s, s->inlen);
		s->discard = 1;
		return -1;
	}
	if (len + 1 > SMTP_CMD_MAX) {
		session_reply(s, "500 5.5.2 Line too long");
		input_drop(s, len + 1);
		return -1;
	}
	memcpy(line, s->in, len - 1);
	line[len - 1] = '\0';
	input_drop(s, len + 1);
	if (strlen(line) != len - 1) {
		session_reply(s, "500 5.5.2 NUL in command");
		return -1;
	}
	return 1;
}

static void
session_process(struct session *s)
{
	char	line[SMTP_CMD_MAX];
	size_t	used;
	int	r;

	if (s->dead)
		return;
	while (s->state != ST_CLOSING && s->wait == WAIT_NONE) {
		if (s->errors >= SMTP_MAX_ERRORS) {
			smtp_refused("too-many-errors");
			session_close_with(s, "421 4.7.0 %s Too many errors",
			    proc->conf.serverhostname);
			return;
		}
		if (s->state == ST_DATA) {
			used = data_feed(s, s->in, s->inlen);
			memmove(s->in, s->in + used, s->inlen - used);
			s->inlen -= used;
			if (s->state == ST_DATA)
				break;	/* all eaten, need more */
			continue;
		}
		if ((r = next_line(s, line)) == 0)
			break;
		if (r == -1) {
			if (s->state == ST_CLOSING)
				return;
			continue;
		}
		cmd_dispatch(s, line);
		explicit_bzero(line, sizeof(line));
	}
	if (s->state == ST_CLOSING)
		return;
	if (s->eof && s->wait == WAIT_NONE) {
		session_end(s);
		return;
	}
	session_flush(s);
	if (s->state == ST_CLOSING)
		return;
	/*
	 * Read on unless full or the client is not reading. Also while an
	 * answer from the parent or queued is awaited: what comes meanwhile
	 * waits in the buffer, and the read event is not dropped and added
	 * again around every such wait (an epoll_ctl each, per command).
	 */
	reading(s, !s->eof && s->inlen < sizeof(s->in) &&
	    evbuffer_get_length(s->out) < SMTP_OUT_HIGH);
	/* Records TLS read already hold more: the socket will not say. */
	if (s->reading && s->ssl != NULL && !s->tls_handshake &&
	    SSL_has_pending(s->ssl))
		event_active(&s->ev_read, EV_READ, 1);
}
