/*
 * smtpd: the process. The sessions' table, and the channels to the
 * parent (users, passwords) and to queued (the spool); the listeners,
 * the session limits and the stop are common/listener.c's.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "dmarc.h"
#include "dnsmsg.h"
#include "listener.h"
#include "log.h"
#include "proc.h"
#include "sandbox.h"
#include "smtpd.h"
#include "tls.h"
#include "util.h"

#define STOP_GRACE_SEC	10

int
session_cmp(struct session *a, struct session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE(sessiontree, session, entry, session_cmp);

static struct sessiontree	sessions = RB_INITIALIZER(&sessions);
struct chan			queued_chan;
static struct chan		mxcache_chan;

struct session *
session_find(uint32_t id)
{
	struct session	key;

	key.id = id;
	return RB_FIND(sessiontree, &sessions, &key);
}

void
smtpd_session_closed(struct session *s)
{
	RB_REMOVE(sessiontree, &sessions, s);
	listener_session_end(listener_ip_find(&s->peer));
}

/* Refuse before any session state exists: one write, then close. */
static void
refuse(int fd, enum listen_refusal why, const char *addr)
{
	char		 buf[256];
	const char	*text = "Too many connections, try again later";
	int		 len;

	smtp_refused(why == REFUSE_MAXPERIP ? "maxsessionsperip" :
	    "maxsessions");
	if (why == REFUSE_MAXPERIP) {
		log_info("smtp-in client=%s result=refused "
		    "reason=maxsessionsperip", addr);
		text = "Too many connections from your address";
	} else
		log_info("smtp-in client=%s result=refused reason=maxsessions",
		    addr);
	len = snprintf(buf, sizeof(buf), "421 4.3.2 %s %s\r\n",
	    proc->conf.serverhostname, text);
	if (write(fd, buf, len) == -1)
		log_debug("refuse: %s", strerror(errno));
	close(fd);
}

static void
accepted(int fd, struct sockaddr_storage *ss, socklen_t len,
    const char *addr, struct ipcount *ip, int kind)
{
	struct session	*s;

	smtp_connected(kind);
	s = session_new(fd, ss, len, kind);
	RB_INSERT(sessiontree, &sessions, s);
	session_start(s);
}

/* A listening socket and its kind: the SMTP ones only. */
static int
listen_msg(struct imsg *im)
{
	static const int	kinds[] = { LISTEN_SMTP, LISTEN_SUBMISSION,
	    LISTEN_SMTPS, 0 };

	return listener_take(im, kinds);
}

/* chan_send fails closed; a closed channel has ended us already. */
void
smtpd_send_parent(uint32_t type, struct msgbuild *mb)
{
	chan_send(&proc->parent, mb, type, 0, -1);
}

void
smtpd_send_queued(uint32_t type, struct msgbuild *mb)
{
	chan_send(&queued_chan, mb, type, 0, -1);
}

void
smtpd_send_mxcache(uint32_t type, struct msgbuild *mb)
{
	chan_send(&mxcache_chan, mb, type, 0, -1);
}

/* One DNS question of session req; the answer comes back with tag. */
void
smtpd_dns_ask(uint32_t req, uint32_t tag, uint32_t qtype, const char *qname)
{
	struct dns_query	q;
	struct msgbuild		mb;

	memset(&q, 0, sizeof(q));
	q.req = req;
	q.tag = tag;
	q.qtype = qtype;
	strlcpy(q.qname, qname, sizeof(q.qname));
	dns_build_query(&mb, &q);
	smtpd_send_mxcache(IMSG_DNS_QUERY, &mb);
}

/* mxcache's answers: a malformed one closes the channel (and us). */
static int
mxcache_dispatch(struct chan *c, struct imsg *im)
{
	static struct dns_answer	a;

	if (im->hdr.type != IMSG_DNS_REPLY || im->fd != -1 ||
	    dns_read_answer(im->data, im->datalen, &a) == -1)
		return -1;
	if (a.tag & DNS_TAG_SPF)
		spfcheck_on_answer(&a);
	else if (a.tag & DNS_TAG_DKIM)
		msgcheck_on_answer(&a);
	else
		dnsbl_on_answer(&a);
	return 0;
}

/* A garbled answer: mxcache is not what it should be; stop. */
static void
mxcache_closed(struct chan *c)
{
	if (c->failure != NULL)
		fatalx("mxcache: %s; failing closed", c->failure);
	log_debug("smtpd: channel to mxcache closed");
}

/* Give queued back the spool file it made for session sess. */
void
smtpd_spool_abort(uint32_t sess, const char *id)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, sess);
	mb_str(&mb, id);
	smtpd_send_queued(IMSG_SPOOL_ABORT, &mb);
}

static int
parent_reply(struct imsg *im)
{
	struct msgread	 mr;
	struct session	*s;
	uint32_t	 id, result, extra;

	mr_init(&mr, im);
	id = mr_u32(&mr);
	result = mr_u32(&mr);
	extra = mr_u32(&mr);
	if (mr_end(&mr) == -1)
		return -1;
	if ((s = session_find(id)) == NULL)
		return 0;	/* the session is gone */
	if (im->hdr.type == IMSG_AUTH_REPLY)
		session_on_auth_reply(s, result, extra);
	else if (extra == UINT32_MAX)
		session_on_rcpt_reply(s, result);
	else
		session_on_size_reply(s, extra, result);
	return 0;
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	int	r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	switch (im->hdr.type) {
	case IMSG_LISTEN:
		return listen_msg(im);
	case IMSG_TLS_SIGNER:
		return tls_on_signer(im);
	case IMSG_TLS_CERT:
		return tls_on_cert(im);
	case IMSG_TLS_TICKET_KEYS:
		return tls_on_ticket_keys(im);
	case IMSG_AUTH_REPLY:
	case IMSG_RCPT_REPLY:
		return parent_reply(im);
	default:
		return -1;
	}
}

static int
queued_dispatch(struct chan *c, struct imsg *im)
{
	struct msgread	 mr;
	struct session	*s;
	char		 id[QUEUE_ID_LEN + 1];
	uint32_t	 sess, result = 0;

	mr_init(&mr, im);
	sess = mr_u32(&mr);
	mr_str(&mr, id, sizeof(id));
	if (im->hdr.type == IMSG_SPOOL_COMMIT_REPLY)
		result = mr_u32(&mr);
	if (mr_end(&mr) == -1 || (im->hdr.type != IMSG_SPOOL_CREATE_REPLY &&
	    im->hdr.type != IMSG_SPOOL_COMMIT_REPLY))
		return -1;	/* the channel closes any descriptor */
	if ((s = session_find(sess)) == NULL) {
		/* Gone meanwhile: give the file back so it is removed. */
		if (im->fd != -1) {
			close(im->fd);
			smtpd_spool_abort(sess, id);
		}
		return 0;
	}
	if (im->hdr.type == IMSG_SPOOL_CREATE_REPLY)
		session_on_spool(s, id, im->fd);
	else
		session_on_commit(s, id, result);
	return 0;
}

/*
 * Without queued no message can be taken. Tell every session so now
 * rather than leave it waiting, and exit non-zero: the parent then stops
 * the daemon, and a supervisor starts it again.
 */
static void
queued_gone(struct chan *c)
{
	struct session	*s, *next;

	log_warnx("queued is gone (its channel closed); ending %u "
	    "sessions and exiting", listener_sessions());
	/* Not the graceful exit of a stop, even during one. */
	listener_abort_stop();
	RB_FOREACH_SAFE(s, sessiontree, &sessions, next)
		if (!s->dead)
			session_close_with(s, "421 4.3.0 %s Queue unavailable, "
			    "closing connection", proc->conf.serverhostname);
	exit(1);
}

static void
stop_now(unsigned int left)
{
	struct session	*s, *next;

	RB_FOREACH_SAFE(s, sessiontree, &sessions, next)
		session_close_with(s, "421 4.3.2 %s Server shutting down",
		    proc->conf.serverhostname);
	exit(0);
}

static const struct listener_conf smtp_listener = {
	.name = "smtp-in",
	.grace_sec = STOP_GRACE_SEC,
	.accepted = accepted,
	.refuse = refuse,
	.stop_now = stop_now,
};

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_SMTPD);
	listener_init(&smtp_listener);
	proc->shutdown = listener_stop;
	proc->stats = listener_sessions;
	proc->metrics = smtpd_metrics;
	tls_init();
	/* DMARC's organizational domains: the list is read before the
	 * chroot, once; without it DMARC is not evaluated (and says so). */
	if (dmarc_psl_load() == -1)
		log_warnx("smtpd: no Public Suffix List (publicsuffix): DMARC "
		    "is not evaluated");
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_peer(&queued_chan, PROC_QUEUED, queued_dispatch);
	queued_chan.closed = queued_gone;
	child_peer(&mxcache_chan, PROC_MXCACHE, mxcache_dispatch);
	mxcache_chan.closed = mxcache_closed;
	child_ready(parent_dispatch);
	sandbox_enter(PROC_SMTPD);
	event_base_dispatch(proc->base);
	return 0;
}
