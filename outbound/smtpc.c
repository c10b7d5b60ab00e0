/*
 * The outbound SMTP client: one session to one address, carrying every
 * recipient of one domain of one message. It reports per recipient:
 * accepted (2xx after the final dot), failed for good (5xx), or not
 * settled (anything else: the next host, or a later attempt, will try).
 *
 * TLS is opportunistic (RFC 3207, RFC 7435): STARTTLS whenever the
 * server offers it, any certificate; a handshake that fails (before any
 * mail data, by construction) makes the same host be tried again at
 * once in plaintext, and the log and the last error say so. A server
 * that refuses the STARTTLS command gets the mail in plaintext on the
 * same connection.
 *
 * The smarthost may be held to more (smtprelaytls = "verify"): STARTTLS
 * required and a certificate that chains to the CA bundle and names the
 * smarthost, or the host failed and the mail waits, never in plaintext;
 * or to less ("none": never STARTTLS, for a relay that breaks it).
 *
 * With smtprelayauth, the smarthost gets AUTH PLAIN (or LOGIN) before
 * MAIL. The credentials are the parent's: asked for each session, and
 * only once TLS is up and verified, or in plaintext under "none" to a
 * loopback address; wiped once sent.
 *
 * Everything from the remote side is bounded: smtpreply.c reads its
 * replies (a line is at most SMTP_REPLY_LINE_MAX octets, a reply at most
 * SMTP_REPLY_LINES_MAX lines), and every wait ends after the config's
 * `timeout`.
 */
#include <sys/param.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>

#include "base64.h"
#include "child.h"
#include "log.h"
#include "outbound.h"
#include "smtpreply.h"
#include "tls.h"
#include "util.h"

#define SMTPC_OUT_HIGH	(64 * 1024)
#define SMTPC_CHUNK	(16 * 1024)

enum smtpc_state {
	SC_CONNECT, SC_BANNER, SC_EHLO, SC_HELO, SC_MAIL, SC_RCPT, SC_DATA,
	SC_BODY, SC_DOT, SC_QUIT, SC_STARTTLS, SC_TLS,
	SC_CRED,	/* waiting for the parent's credentials */
	SC_AUTH_USER,	/* AUTH LOGIN sent: 334 for the user name */
	SC_AUTH_PASS,	/* the user name sent: 334 for the password */
	SC_AUTH		/* the credentials sent: 235 or not */
};

struct cred {
	char	user[RELAY_CRED_MAX + 1];
	char	password[RELAY_CRED_MAX + 1];
};

struct smtpc {
	struct attempt		*at;
	struct bufferevent	*bev;
	enum smtpc_state	 state;
	int			 pipelining;
	int			 size_ok;
	size_t			 rcpt_replied;
	size_t			 accepted;
	off_t			 dataoff;	/* how far the body was read */
	int			 bol;		/* at a line start in the body */
	struct smtp_reply	 reply;		/* the one coming in */
	int			 finished;
	int			 connecting;	/* inside socket_connect */
	int			 early_errno;	/* it failed in there */
	int			 tls;		/* the handshake is done */
	int			 again;		/* same host, plaintext */
	char			 tlsdesc[80];
	int			 dane_usable;	/* TLSA records it checks */
	int			 dane_ok;	/* and one matched */
	int			 ehloext;	/* the last EHLO's keywords */
	int			 authext;	/* its AUTH mechanisms */
	uint32_t		 credreq;	/* SC_CRED: the request */
	LIST_ENTRY(smtpc)	 credwait;
	struct cred		 cred;		/* AUTH LOGIN, between steps */
};

static LIST_HEAD(, smtpc)	credwaiters = LIST_HEAD_INITIALIZER(credwaiters);
static uint32_t			next_credreq = 1;

static void	smtpc_read(struct bufferevent *, void *);
static void	set_state(struct smtpc *, enum smtpc_state);
static void	smtpc_event(struct bufferevent *, short, void *);
static void	smtpc_write(struct bufferevent *, void *);

/*
 * RFC 5321 4.5.3.2's waits for each step (in seconds at the default
 * `timeout` of 300), scaled by `timeout`/300 so tests can shorten them.
 */
static int
state_wait(enum smtpc_state st)
{
	int	rfc;

	switch (st) {
	case SC_DATA:
		rfc = 120;
		break;
	case SC_BODY:
		rfc = 180;
		break;
	case SC_DOT:
		rfc = 600;	/* the server may be delivering meanwhile */
		break;
	default:
		rfc = 300;
		break;
	}
	return MAX(1, (long long)rfc * proc->conf.timeout / 300);
}

static void
set_state(struct smtpc *c, enum smtpc_state st)
{
	struct timeval	tv = { state_wait(st), 0 };

	c->state = st;
	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
smtpc_free(int fd, short ev, void *arg)
{
	free(arg);
}

/*
 * The session is over. Its memory goes on the next loop turn, since the
 * read loop that got here still looks at c->finished.
 */
static void
smtpc_finish(struct smtpc *c, const char *why)
{
	struct attempt	*at = c->at;
	struct timeval	 now = { 0, 0 };

	if (c->finished)
		return;
	c->finished = 1;
	if (at->sess == c)
		at->sess = NULL;
	explicit_bzero(&c->cred, sizeof(c->cred));
	if (c->credreq != 0)
		LIST_REMOVE(c, credwait);
	c->credreq = 0;
	if (why != NULL)
		attempt_host_failed(at, why);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	if (event_base_once(proc->base, -1, EV_TIMEOUT, smtpc_free, c,
	    &now) == -1)
		fatalx("event_base_once");
	if (c->again)
		attempt_host_again(at);
	else
		attempt_host_done(at);
}

static void
sendf(struct smtpc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sendf(struct smtpc *c, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* "mx.example[192.0.2.1] said: 550 5.1.1 ..." */
static void
remote_said(struct smtpc *c, char *buf, size_t len)
{
	snprintf(buf, len, "%.150s[%s] said: %.280s",
	    c->at->hosts[c->at->cur].host,
	    c->at->hosts[c->at->cur].addr, c->reply.text);
}

static void
send_rcpts(struct smtpc *c)
{
	struct attempt	*at = c->at;
	size_t		 i;

	for (i = 0; i < at->nrcpts; i++)
		sendf(c, "RCPT TO:<%s>", at->rcpt[i]);
}

static void
send_mail(struct smtpc *c)
{
	struct attempt	*at = c->at;

	/* The spool file's size: the message plus our Received: line. */
	if (c->size_ok)
		sendf(c, "MAIL FROM:<%s> SIZE=%lld", at->sender, at->size);
	else
		sendf(c, "MAIL FROM:<%s>", at->sender);
	set_state(c, SC_MAIL);
	if (c->pipelining) {
		/* RFC 2920: MAIL and the RCPTs go in one write. */
		send_rcpts(c);
	}
}

/*
 * Stream the message, dot-stuffed, while the socket takes it. pread: the
 * one descriptor serves every host of the attempt from the start.
 */
static void
send_body(struct smtpc *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	char		 in[SMTPC_CHUNK];
	ssize_t		 n, i, start;

	while (evbuffer_get_length(out) < SMTPC_OUT_HIGH) {
		n = pread(c->at->datafd, in, sizeof(in), c->dataoff);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			smtpc_finish(c, "cannot read the queued message");
			return;
		}
		if (n == 0) {
			/* The spool ends with CRLF: just the dot line. */
			evbuffer_add(out, c->bol ? ".\r\n" : "\r\n.\r\n",
			    c->bol ? 3 : 5);
			set_state(c, SC_DOT);
			return;
		}
		c->dataoff += n;
		for (i = start = 0; i < n; i++) {
			if (c->bol && in[i] == '.') {
				evbuffer_add(out, in + start, i - start);
				evbuffer_add(out, ".", 1);
				start = i;
			}
			c->bol = in[i] == '\n';
		}
		evbuffer_add(out, in + start, n - start);
	}
}

static void
smtpc_write(struct bufferevent *bev, void *arg)
{
	struct smtpc	*c = arg;

	if (c->state == SC_BODY)
		send_body(c);
}

static void
rcpt_reply(struct smtpc *c, int code)
{
	struct attempt	*at = c->at;
	char		 said[512];
	size_t		 idx = c->rcpt_replied++;

	remote_said(c, said, sizeof(said));
	if (code / 100 == 2) {
		at->result[idx] = AR_ACCEPTED;
		c->accepted++;
	} else if (code / 100 == 5)
		attempt_rcpt_final(at, idx, said);
	else
		attempt_rcpt_later(at, idx, said);
	if (c->rcpt_replied < at->nrcpts)
		return;
	if (c->accepted == 0) {
		sendf(c, "QUIT");
		set_state(c, SC_QUIT);
		return;
	}
	sendf(c, "DATA");
	set_state(c, SC_DATA);
}

/* MAIL refused: 5xx fails every recipient here, 4xx tries elsewhere. */
static void
mail_refused(struct smtpc *c, int code, const char *said)
{
	if (code / 100 == 5)
		attempt_all_final(c->at, said);
	else
		attempt_host_failed(c->at, said);
	if (c->pipelining) {
		/* The RCPTs already went out and draw 503s: just leave. */
		smtpc_finish(c, NULL);
		return;
	}
	sendf(c, "QUIT");
	set_state(c, SC_QUIT);
}

static void
start_body(struct smtpc *c, int code, const char *said)
{
	if (code != 354) {
		attempt_accepted_result(c->at, code, said);
		smtpc_finish(c, NULL);
		return;
	}
	set_state(c, SC_BODY);
	c->bol = 1;
	c->dataoff = 0;
	/* the signature queued made: header lines, never a dot first */
	if (c->at->prefix != NULL)
		evbuffer_add(bufferevent_get_output(c->bev), c->at->prefix,
		    c->at->prefixlen);
	send_body(c);
}

static int
dane_required(const struct smtpc *c)
{
	return c->at->hosts[c->at->cur].dane == DANE_REQUIRED;
}

static int
relay_tls(const struct smtpc *c, int policy)
{
	return c->at->hosts[c->at->cur].pref == HOST_RELAY &&
	    proc->conf.relaytls == policy;
}

static int
verify_required(const struct smtpc *c)
{
	return relay_tls(c, RELAYTLS_VERIFY);
}

/*
 * The host failed for good in this session (the next one or a later
 * attempt tries again), with buf as the last error. Polite when it can be.
 */
static void
secure_failed(struct smtpc *c, const char *buf)
{
	if (c->state == SC_TLS || c->state == SC_STARTTLS) {
		smtpc_finish(c, buf);
		return;
	}
	attempt_host_failed(c->at, buf);
	sendf(c, "QUIT");
	set_state(c, SC_QUIT);
}

/*
 * A host whose TLSA records are authentic gets no mail without TLS and
 * (when a record is usable) a certificate matching one.
 */
static void
dane_failed(struct smtpc *c, const char *why)
{
	char	buf[192];

	snprintf(buf, sizeof(buf), "DANE: %s", why);
	log_info("outbound id=%s host=%s[%s] dane=failed error=\"%s\"",
	    c->at->qid, c->at->hosts[c->at->cur].host,
	    c->at->hosts[c->at->cur].addr, why);
	secure_failed(c, buf);
}

/* The smarthost under smtprelaytls = "verify": no TLS, no mail. */
static void
verify_failed(struct smtpc *c, const char *why)
{
	char	buf[256];

	snprintf(buf, sizeof(buf), "TLS verify failed: %s", why);
	log_info("outbound id=%s host=%s[%s] tls=failed verify=failed "
	    "error=\"%s\"", c->at->qid, c->at->hosts[c->at->cur].host,
	    c->at->hosts[c->at->cur].addr, why);
	secure_failed(c, buf);
}

/*
 * The handshake failed: the same host again, in plaintext, at once
 * (nothing of the mail went out yet); never under DANE.
 */
static void
tls_failed(struct smtpc *c, const char *why)
{
	struct host	*h = &c->at->hosts[c->at->cur];

	if (dane_required(c)) {
		dane_failed(c, why);
		return;
	}
	if (verify_required(c)) {
		verify_failed(c, why);
		return;
	}

	h->notls = 1;
	snprintf(h->tlserror, sizeof(h->tlserror), "%s", why);
	log_info("outbound id=%s host=%s[%s] tls=failed error=\"%s\" "
	    "retrying in plaintext", c->at->qid, h->host, h->addr, why);
	c->again = 1;
	smtpc_finish(c, NULL);
}

/*
 * 220 to STARTTLS: the same socket under TLS. Whatever the server sent
 * behind its 220 was sent in plaintext and is dropped, never read as a
 * reply inside TLS.
 */
static void
start_tls(struct smtpc *c)
{
	struct host		*h = &c->at->hosts[c->at->cur];
	struct bufferevent	*tb;
	SSL			*ssl;

	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	if ((ssl = tls_client_session(h->host)) == NULL) {
		tls_failed(c, tls_error());
		return;
	}
	if (h->dane == DANE_REQUIRED &&
	    (c->dane_usable = tls_client_dane(ssl, h->host, h->tlsa)) == -1) {
		SSL_free(ssl);
		tls_failed(c, tls_error());
		return;
	}
	if (verify_required(c) && tls_client_verify(ssl, h->host) == -1) {
		SSL_free(ssl);
		tls_failed(c, tls_error());
		return;
	}
	tb = bufferevent_openssl_filter_new(proc->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		tls_failed(c, "cannot start TLS");
		return;
	}
	/* A server that closes without close_notify after QUIT is common. */
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	c->bev = tb;
	bufferevent_setcb(tb, smtpc_read, smtpc_write, smtpc_event, c);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	set_state(c, SC_TLS);
}

/* In TLS: what EHLO said in plaintext counts no more (RFC 3207 4.2). */
static void
tls_established(struct smtpc *c)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(c->bev);
	char	 why[96], buf[192];

	if (verify_required(c)) {
		if (tls_client_verify_check(ssl, why, sizeof(why)) == -1) {
			set_state(c, SC_EHLO);	/* QUIT inside TLS */
			snprintf(buf, sizeof(buf), "certificate of %.60s "
			    "not trusted: %s", c->at->hosts[c->at->cur].host,
			    why);
			verify_failed(c, buf);
			return;
		}
	}

	c->tls = 1;
	c->pipelining = c->size_ok = 0;
	tls_describe(ssl, c->tlsdesc, sizeof(c->tlsdesc));
	log_debug("outbound id=%s tls=\"%s\"", c->at->qid, c->tlsdesc);
	if (dane_required(c) && c->dane_usable > 0) {
		if (tls_client_dane_check(ssl, why, sizeof(why)) == -1) {
			set_state(c, SC_EHLO);	/* QUIT inside TLS */
			snprintf(buf, sizeof(buf), "certificate does not "
			    "match the TLSA records: %s", why);
			dane_failed(c, buf);
			return;
		}
		c->dane_ok = 1;
	}
	sendf(c, "EHLO %s", proc->conf.serverhostname);
	set_state(c, SC_EHLO);
}

/* May the smarthost's credentials cross this connection? */
static int
cred_allowed(const struct smtpc *c)
{
	unsigned char	a[16];
	const char	*addr = c->at->hosts[c->at->cur].addr;

	if (c->tls)
		return verify_required(c);
	if (!relay_tls(c, RELAYTLS_NONE))
		return 0;
	if (inet_pton(AF_INET, addr, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, addr, a) == 1 &&
	    IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
}

static void
auth_refused(struct smtpc *c, const char *why)
{
	log_info("outbound id=%s host=%s[%s] auth=failed error=\"%s\"",
	    c->at->qid, c->at->hosts[c->at->cur].host,
	    c->at->hosts[c->at->cur].addr, why);
	attempt_host_failed(c->at, why);
	sendf(c, "QUIT");
	set_state(c, SC_QUIT);
}

/* The smarthost, and credentials to give it: ask the parent. */
static int
want_auth(struct smtpc *c)
{
	struct msgbuild	mb;

	if (c->at->hosts[c->at->cur].pref != HOST_RELAY ||
	    proc->conf.relayauth == NULL)
		return 0;
	if (!cred_allowed(c)) {
		auth_refused(c, "smtprelayauth: no credentials over a "
		    "connection TLS did not verify");
		return 1;
	}
	c->authext = c->ehloext & (SMTP_EXT_AUTH_PLAIN |
	    SMTP_EXT_AUTH_LOGIN);
	if (c->authext == 0) {
		/* It may know us by address: let it decide on MAIL. */
		log_info("outbound id=%s host=%s[%s] auth=none: no AUTH PLAIN "
		    "or LOGIN offered", c->at->qid,
		    c->at->hosts[c->at->cur].host,
		    c->at->hosts[c->at->cur].addr);
		return 0;
	}
	if (next_credreq == 0)
		next_credreq++;
	mb_init(&mb);
	mb_u32(&mb, next_credreq);
	if (chan_send(&proc->parent, &mb, IMSG_RELAY_CRED, 0, -1) == -1) {
		auth_refused(c, "smtprelayauth: cannot ask the parent");
		return 1;
	}
	c->credreq = next_credreq++;
	LIST_INSERT_HEAD(&credwaiters, c, credwait);
	set_state(c, SC_CRED);
	return 1;
}

static void
wipe_line(const void *data, size_t len, void *arg)
{
	(void)arg;
	freezero((void *)data, len);
}

/*
 * A line carrying the credentials goes out from a buffer of our own that
 * libevent only refers to, wiped when it is done with it: added to the
 * output buffer as a copy, the password would stay behind in freed
 * memory after the line was sent.
 */
static void
send_b64(struct smtpc *c, const char *prefix, const void *raw, size_t len)
{
	char	b64[((2 * RELAY_CRED_MAX + 2) + 2) / 3 * 4 + 1];
	char	*line;
	size_t	 n;

	if (base64_encode(raw, len, b64, sizeof(b64)) == -1)
		fatalx("smtpc: credentials too long to encode");
	n = strlen(prefix) + strlen(b64) + 2;
	line = xmalloc(n + 1);
	snprintf(line, n + 1, "%s%s\r\n", prefix, b64);
	explicit_bzero(b64, sizeof(b64));
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), line, n,
	    wipe_line, NULL) == -1)
		fatalx("smtpc: cannot queue a line");
}

/* AUTH PLAIN with its initial response (RFC 4954, RFC 4616). */
static void
auth_plain(struct smtpc *c, const struct cred *cr)
{
	unsigned char	raw[2 * RELAY_CRED_MAX + 2];
	size_t		ulen = strlen(cr->user), plen = strlen(cr->password);

	raw[0] = '\0';
	memcpy(raw + 1, cr->user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, cr->password, plen);
	send_b64(c, "AUTH PLAIN ", raw, 2 + ulen + plen);
	explicit_bzero(raw, sizeof(raw));
	set_state(c, SC_AUTH);
}

/* The parent's answer: AUTH, or the host failed. */
int
smtpc_cred_reply(struct imsg *im)
{
	struct msgread	 mr;
	struct smtpc	*c;
	struct cred	 cr;
	char		 reason[256], why[320];
	uint32_t	 req, status;
	int		 r = 0;

	mr_init(&mr, im);
	req = mr_u32(&mr);
	status = mr_u32(&mr);
	mr_str(&mr, cr.user, sizeof(cr.user));
	mr_str(&mr, cr.password, sizeof(cr.password));
	mr_str(&mr, reason, sizeof(reason));
	if (mr_end(&mr) == -1 || status > RELAY_CRED_FAIL ||
	    (status == RELAY_CRED_OK && (cr.user[0] == '\0' ||
	    cr.password[0] == '\0'))) {
		r = -1;
		goto done;
	}
	LIST_FOREACH(c, &credwaiters, credwait)
		if (c->credreq == req)
			break;
	if (c == NULL)
		goto done;	/* that session ended meanwhile */
	LIST_REMOVE(c, credwait);
	c->credreq = 0;
	if (status == RELAY_CRED_NONE) {
		send_mail(c);
		goto done;
	}
	if (status == RELAY_CRED_FAIL) {
		text_printable(reason, sizeof(reason), reason,
		    strlen(reason));
		snprintf(why, sizeof(why), "smtprelayauth %s", reason);
		auth_refused(c, why);
		goto done;
	}
	if (c->authext & SMTP_EXT_AUTH_PLAIN)
		auth_plain(c, &cr);
	else {
		c->cred = cr;
		sendf(c, "AUTH LOGIN");
		set_state(c, SC_AUTH_USER);
	}
done:
	explicit_bzero(&cr, sizeof(cr));
	explicit_bzero(im->data, im->datalen);
	return r;
}

/* A reply to AUTH: 334 for the next LOGIN step, 235 for done. */
static void
auth_reply(struct smtpc *c, int code, const char *said)
{
	if (c->state == SC_AUTH && code == 235) {
		send_mail(c);
		return;
	}
	if (c->state != SC_AUTH && code == 334) {
		if (c->state == SC_AUTH_USER) {
			send_b64(c, "", c->cred.user, strlen(c->cred.user));
			set_state(c, SC_AUTH_PASS);
			return;
		}
		send_b64(c, "", c->cred.password, strlen(c->cred.password));
		explicit_bzero(&c->cred, sizeof(c->cred));
		set_state(c, SC_AUTH);
		return;
	}
	explicit_bzero(&c->cred, sizeof(c->cred));
	auth_refused(c, said);
}

static void
ehlo_done(struct smtpc *c)
{
	c->ehloext = c->reply.ext;
	if (!c->tls && (c->reply.ext & SMTP_EXT_STARTTLS) &&
	    !c->at->hosts[c->at->cur].notls && !relay_tls(c, RELAYTLS_NONE)) {
		sendf(c, "STARTTLS");
		set_state(c, SC_STARTTLS);
		return;
	}
	if (!c->tls && dane_required(c)) {
		dane_failed(c, "TLSA records published but STARTTLS not "
		    "offered");
		return;
	}
	if (!c->tls && verify_required(c)) {
		verify_failed(c, "STARTTLS not offered");
		return;
	}
	if (want_auth(c))
		return;
	send_mail(c);
}

static void
reply_done(struct smtpc *c, int code)
{
	char	said[512];

	remote_said(c, said, sizeof(said));
	switch (c->state) {
	case SC_BANNER:
		if (code != 220) {
			smtpc_finish(c, said);
			break;
		}
		sendf(c, "EHLO %s", proc->conf.serverhostname);
		set_state(c, SC_EHLO);
		break;
	case SC_EHLO:
		if (code / 100 == 2) {
			ehlo_done(c);
			break;
		}
		/* An old server: try HELO. */
		sendf(c, "HELO %s", proc->conf.serverhostname);
		set_state(c, SC_HELO);
		break;
	case SC_HELO:
		if (code / 100 != 2)
			smtpc_finish(c, said);
		else
			send_mail(c);
		break;
	case SC_MAIL:
		if (code / 100 != 2) {
			mail_refused(c, code, said);
			break;
		}
		if (!c->pipelining)
			send_rcpts(c);
		set_state(c, SC_RCPT);
		break;
	case SC_STARTTLS:
		if (code == 220) {
			start_tls(c);
			break;
		}
		if (dane_required(c)) {
			dane_failed(c, "STARTTLS refused");
			break;
		}
		if (verify_required(c)) {
			verify_failed(c, "STARTTLS refused");
			break;
		}
		/* refused: this session goes on in plaintext */
		log_info("outbound id=%s host=%s[%s] tls=refused reply=\"%s\"",
		    c->at->qid, c->at->hosts[c->at->cur].host,
		    c->at->hosts[c->at->cur].addr, c->reply.text);
		if (want_auth(c))
			break;
		send_mail(c);
		break;
	case SC_AUTH_USER:
	case SC_AUTH_PASS:
	case SC_AUTH:
		auth_reply(c, code, said);
		break;
	case SC_RCPT:
		rcpt_reply(c, code);
		break;
	case SC_DATA:
		start_body(c, code, said);
		break;
	case SC_DOT:
		strlcpy(c->at->tls, c->tls ? c->tlsdesc : "no",
		    sizeof(c->at->tls));
		c->at->dane = !dane_required(c) ? NULL : c->dane_ok ?
		    "verified" : "unusable";
		attempt_accepted_result(c->at, code, said);
		sendf(c, "QUIT");
		set_state(c, SC_QUIT);
		break;
	case SC_QUIT:
		smtpc_finish(c, NULL);
		break;
	default:
		smtpc_finish(c, "reply out of turn");
		break;
	}
}

static void
smtpc_read(struct bufferevent *bev, void *arg)
{
	struct smtpc		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	enum smtp_reply_status	 status;
	const char		*octets;
	size_t			 len, used;

	/* What waits here is at most one read more than a line's limit:
	 * the parser took every whole line last time. */
	while (!c->finished && (len = evbuffer_get_length(in)) > 0) {
		octets = (const char *)evbuffer_pullup(in, -1);
		c->reply.ehlo = c->state == SC_EHLO;
		used = smtp_reply_parse(&c->reply, octets, len, &status);
		evbuffer_drain(in, used);
		switch (status) {
		case SMTP_REPLY_MORE:
			return;
		case SMTP_REPLY_TOOLONG:
			smtpc_finish(c, "reply line too long");
			return;
		case SMTP_REPLY_GARBLED:
			smtpc_finish(c, "garbled reply");
			return;
		case SMTP_REPLY_DONE:
			if (c->reply.ext & SMTP_EXT_PIPELINING)
				c->pipelining = 1;
			if (c->reply.ext & SMTP_EXT_SIZE)
				c->size_ok = 1;
			reply_done(c, c->reply.code);
			break;
		}
	}
}

/* One short line: OpenSSL's reason, else what the socket did. */
static const char *
handshake_error(struct bufferevent *bev, short what)
{
	static char	buf[96];
	unsigned long	e = bufferevent_get_openssl_error(bev);

	if (e != 0) {
		snprintf(buf, sizeof(buf), "TLS handshake failed: %s",
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
		    "unknown");
		return buf;
	}
	return what & BEV_EVENT_TIMEOUT ? "TLS handshake timed out" :
	    "TLS handshake failed: connection closed";
}

static void
smtpc_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc	*c = arg;

	if (c->connecting) {
		/* Failed before connect returned: smtpc_start reports it. */
		c->early_errno = errno ? errno : EIO;
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) && c->state == SC_TLS) {
		tls_established(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		set_state(c, SC_BANNER);
		return;
	}
	if (c->state == SC_TLS) {
		tls_failed(c, handshake_error(bev, what));
		return;
	}
	if (c->state == SC_QUIT && (what & BEV_EVENT_EOF)) {
		smtpc_finish(c, NULL);
		return;
	}
	smtpc_finish(c, what & BEV_EVENT_TIMEOUT ? "timed out" :
	    what & BEV_EVENT_EOF ? "connection closed" :
	    c->state == SC_CONNECT ? "connection refused" :
	    "connection failed");
}

static int
make_sockaddr(const char *addr, int port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void
early_failure(int fd, short ev, void *arg)
{
	struct smtpc	*c = arg;
	char		 why[128];

	snprintf(why, sizeof(why), "connection failed: %s",
	    c->early_errno ? strerror(c->early_errno) : "bad address");
	smtpc_finish(c, why);
}

/*
 * A connect that fails at once (no route, no IPv6 here) reaches us twice,
 * through the event callback and through the return value, and before
 * smtpc_start returns to a caller that is still starting the attempt.
 * Count it once, and report it on the next loop turn like any failure.
 */
static void
fail_soon(struct smtpc *c, int err)
{
	struct timeval	now = { 0, 0 };

	c->early_errno = err;
	if (event_base_once(proc->base, -1, EV_TIMEOUT, early_failure, c,
	    &now) == -1)
		fatalx("event_base_once");
}

/* Start a session to the attempt's current host. */
void
smtpc_start(struct attempt *at)
{
	struct sockaddr_storage	 ss;
	struct smtpc		*c;
	struct host		*h = &at->hosts[at->cur];
	socklen_t		 len;
	int			 r;

	c = xcalloc(1, sizeof(*c));
	c->at = at;
	at->sess = c;
	if (make_sockaddr(h->addr, h->port, &ss, &len) == -1) {
		fail_soon(c, 0);
		return;
	}
	c->bev = bufferevent_socket_new(proc->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(c->bev, smtpc_read, smtpc_write, smtpc_event, c);
	set_state(c, SC_CONNECT);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("outbound id=%s connecting to %s[%s]:%d", at->qid,
	    h->host, h->addr, h->port);
	c->connecting = 1;
	errno = 0;
	r = bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, len);
	c->connecting = 0;
	if (r == -1 || c->early_errno != 0) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		fail_soon(c, c->early_errno ? c->early_errno :
		    errno ? errno : EIO);
	}
}

/*
 * The message was removed from the queue: the connection closes now,
 * without QUIT and without the final dot if it was not sent yet, so the
 * server never takes the message. A session whose connect already failed
 * ends on its own on the next loop turn.
 */
void
smtpc_cancel(struct smtpc *c)
{
	if (c->bev == NULL)
		return;
	c->again = 0;
	smtpc_finish(c, "cancelled: the message was removed from the queue");
}
