/*
 * Bounces: one RFC 3464 delivery status notification per message, to
 * the envelope sender, naming every recipient that failed for good.
 * Never for the null sender (a bounce of a bounce would loop).
 */
#include <sys/param.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define BOUNCE_MAX		(128 * 1024)
#define ORIG_HEADERS_MAX	(32 * 1024)

struct textbuf {
	char	*p;
	size_t	 len, cap;
};

static void
tb_printf(struct textbuf *tb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
tb_printf(struct textbuf *tb, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (tb->len >= tb->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(tb->p + tb->len, tb->cap - tb->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		tb->len += MIN((size_t)n, tb->cap - tb->len - 1);
}

/*
 * "550 5.1.1 text" -> "5.1.1"; a bare reply code -> "5.0.0". A remote
 * answer reads "mx.example[192.0.2.1] said: 550 5.1.1 text".
 */
static void
status_of(const char *reason, char *out, size_t len)
{
	const char	*p = strstr(reason, " said: ");

	p = p ? p + 7 : reason;
	reason = p;

	if (strlen(p) > 4 && isdigit((unsigned char)p[4]) && p[5] == '.') {
		p += 4;
		snprintf(out, len, "%.*s", (int)strcspn(p, " "), p);
		return;
	}
	snprintf(out, len, "%c.0.0", reason[0] == '4' ? '4' : '5');
}

/* The original message's header section, CRLF lines, bounded. */
static void
original_headers(struct envelope *e, struct textbuf *tb)
{
	char	*buf, *end;
	ssize_t	 n;
	int	 fd;

	if ((fd = spool_open_data(e)) == -1)
		return;
	buf = xmalloc(ORIG_HEADERS_MAX + 1);
	n = read(fd, buf, ORIG_HEADERS_MAX);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			n = end - buf + 2;
		else if ((end = strrchr(buf, '\n')) != NULL)
			n = end - buf + 1;	/* whole lines only */
		buf[n] = '\0';
		tb_printf(tb, "%s", buf);
	}
	free(buf);
}

static void
recipient_lines(struct envelope *e, struct textbuf *tb, int report)
{
	struct envrcpt	*r;
	char		 status[16];
	size_t		 i;

	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		if (r->status != RS_FAILED)
			continue;
		if (!report) {
			tb_printf(tb, "<%s>: %s\r\n", r->address, r->reason);
			continue;
		}
		status_of(r->reason, status, sizeof(status));
		tb_printf(tb, "\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\nStatus: %s\r\n", r->address, status);
		if (strstr(r->reason, " said: ") != NULL)
			tb_printf(tb, "Remote-MTA: dns; %.*s\r\n",
			    (int)strcspn(r->reason, "["), r->reason);
		tb_printf(tb, "Diagnostic-Code: smtp; %s\r\n", r->reason);
	}
}

static void
compose(struct envelope *e, const char *bid, struct textbuf *tb)
{
	char		 date[64], arrival[64];
	struct tm	 tm;
	time_t		 now = time(NULL);
	const char	*host = proc->conf.serverhostname;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	gmtime_r(&e->created, &tm);
	strftime(arrival, sizeof(arrival), "%a, %d %b %Y %H:%M:%S +0000",
	    &tm);
	tb_printf(tb, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	    "Date: %s\r\nMessage-ID: <%s.bounce@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;"
	    "\r\n\tboundary=\"%s/%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n"
	    "--%s/%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is the mail system at %s.\r\n\r\n"
	    "Your message (queue id %s) could not be delivered to one or\r\n"
	    "more recipients. It was given up for good:\r\n\r\n",
	    host, e->sender, date, bid, host, bid, host, bid, host, host,
	    e->id);
	recipient_lines(e, tb, 0);
	tb_printf(tb, "\r\n--%s/%s\r\nContent-Type: message/delivery-status"
	    "\r\n\r\nReporting-MTA: dns; %s\r\nX-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n", bid, host, host, e->id, arrival);
	recipient_lines(e, tb, 1);
	tb_printf(tb, "\r\n--%s/%s\r\nContent-Type: text/rfc822-headers\r\n"
	    "\r\n", bid, host);
	original_headers(e, tb);
	tb_printf(tb, "\r\n--%s/%s--\r\n", bid, host);
}

/* Where a bounce to this sender goes: a local user, or remote. */
static void
sender_user(const char *sender, char *user, size_t len)
{
	const char	*at = strrchr(sender, '@'), *why;
	char		 local[ADDR_LOCAL_MAX + 1];

	user[0] = '\0';
	if (at == NULL || !config_is_localdomain(&proc->conf, at + 1))
		return;
	snprintf(local, sizeof(local), "%.*s", (int)(at - sender), sender);
	if (strcasecmp(local, "postmaster") == 0)
		strlcpy(user, proc->conf.postmaster, len);
	else if (user_name_normalize(local, user, &why) == -1)
		strlcpy(user, proc->conf.postmaster, len);
}

static void
mark_bounced(struct envelope *e)
{
	size_t	i;

	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].status == RS_FAILED) {
			log_info("queue id=%s to=<%s> result=bounced "
			    "reason=\"%s\"", e->id, e->rcpts[i].address,
			    e->rcpts[i].reason);
			e->rcpts[i].status = RS_BOUNCED;
		}
}

/* An envelope of an older version may hold a remote server's reply as it
 * came: what goes into the report and the log is printable. */
static void
clean_reasons(struct envelope *e)
{
	struct envrcpt	*r;
	size_t		 i;

	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		if (r->status == RS_FAILED)
			text_printable(r->reason, sizeof(r->reason), r->reason,
			    strlen(r->reason));
	}
}

/* A bounce that leaves is signed like any mail of ours (signer.c). */
static void
sign_bounce(struct envelope *b, const struct textbuf *tb)
{
	struct dkimset	*keys;
	char		 nokey[256];

	if (!signer_wanted(b))
		return;
	keys = signer_keys();
	if (signer_sign(keys, b, tb->p, tb->len, nokey, sizeof(nokey)) == -1)
		signer_log_nokey(b->id, nokey);
	signer_keys_done(keys);
}

void
bounce_failed(struct envelope *e)
{
	struct envelope	*b;
	struct textbuf	 tb;
	char		 user[USER_NAME_MAX + 1];

	clean_reasons(e);
	if (e->sender[0] == '\0') {
		log_info("queue id=%s bounce=none reason=\"null sender\"", e->id);
		mark_bounced(e);
		return;
	}
	b = envelope_new("");
	spool_new_id(b->id);
	strlcpy(b->helo, proc->conf.serverhostname, sizeof(b->helo));
	strlcpy(b->client, "local", sizeof(b->client));
	strlcpy(b->protocol, "DSN", sizeof(b->protocol));
	sender_user(e->sender, user, sizeof(user));
	envelope_add_rcpt(b, e->sender, user);
	tb.cap = BOUNCE_MAX;
	tb.len = 0;
	tb.p = xmalloc(tb.cap);
	compose(e, b->id, &tb);
	b->size = tb.len;
	sign_bounce(b, &tb);
	if (spool_inject(b, tb.p, tb.len) == -1) {
		/* Keep the failed recipients: the next settle tries again. */
		free(tb.p);
		envelope_free(b);
		return;
	}
	free(tb.p);
	log_info("queue id=%s bounce id=%s to=<%s>", e->id, b->id, e->sender);
	mark_bounced(e);
	runner_add(b);
}
