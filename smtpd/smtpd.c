/*
 * smtpd: the process. Listeners, session limits, and the channels to the
 * parent (users, passwords) and to queued (the spool).
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "proc.h"
#include "sandbox.h"
#include "smtpd.h"
#include "util.h"

#define MAX_LISTEN	64
#define ACCEPT_BURST	64
#define STOP_GRACE_SEC	10

struct ipcount {
	RB_ENTRY(ipcount)	entry;
	char			addr[64];
	int			n;
};

RB_HEAD(iptree, ipcount);
int	ipcount_cmp(struct ipcount *, struct ipcount *);

int
ipcount_cmp(struct ipcount *a, struct ipcount *b)
{
	return strcmp(a->addr, b->addr);
}

RB_PROTOTYPE(iptree, ipcount, entry, ipcount_cmp);
RB_GENERATE(iptree, ipcount, entry, ipcount_cmp);

int
session_cmp(struct session *a, struct session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE(sessiontree, session, entry, session_cmp);

static struct sessiontree	sessions = RB_INITIALIZER(&sessions);
static struct iptree		ips = RB_INITIALIZER(&ips);
static size_t			nsessions;
static struct event		listen_ev[MAX_LISTEN];
static int			nlisten;
static int			stopping;
static struct event		ev_stop;
struct chan			queued_chan;

struct session *
session_find(uint32_t id)
{
	struct session	key;

	key.id = id;
	return RB_FIND(sessiontree, &sessions, &key);
}

static struct ipcount *
ip_get(const char *addr, int create)
{
	struct ipcount	key, *ic;

	strlcpy(key.addr, addr, sizeof(key.addr));
	if ((ic = RB_FIND(iptree, &ips, &key)) != NULL || !create)
		return ic;
	ic = xcalloc(1, sizeof(*ic));
	strlcpy(ic->addr, addr, sizeof(ic->addr));
	RB_INSERT(iptree, &ips, ic);
	return ic;
}

void
smtpd_session_closed(struct session *s)
{
	struct ipcount	*ic;

	RB_REMOVE(sessiontree, &sessions, s);
	nsessions--;
	if ((ic = ip_get(s->peeraddr, 0)) != NULL && --ic->n == 0) {
		RB_REMOVE(iptree, &ips, ic);
		free(ic);
	}
	if (stopping && nsessions == 0)
		exit(0);
}

/* Refuse before any session state exists: one write, then close. */
static void
refuse(int fd, const char *why)
{
	char	buf[256];
	int	len;

	len = snprintf(buf, sizeof(buf), "421 4.3.2 %s %s\r\n",
	    proc->conf.serverhostname, why);
	if (write(fd, buf, len) == -1)
		log_debug("refuse: %s", strerror(errno));
	close(fd);
}

static struct event	ev_resume;
static int		accept_paused;

static void
listeners_enable(int on)
{
	int	i;

	for (i = 0; i < nlisten; i++) {
		if (on)
			event_add(&listen_ev[i], NULL);
		else
			event_del(&listen_ev[i]);
	}
}

static void
accept_resume(int fd, short ev, void *arg)
{
	accept_paused = 0;
	listeners_enable(1);
}

/* Out of descriptors: stop accepting for a second rather than spin. */
static void
accept_pause(void)
{
	struct timeval	tv = { 1, 0 };

	if (accept_paused)
		return;
	accept_paused = 1;
	log_warnx("smtp-in: out of file descriptors with %zu sessions; not "
	    "accepting for 1 s (lower maxsessions or raise the limit)",
	    nsessions);
	listeners_enable(0);
	evtimer_set(&ev_resume, accept_resume, NULL);
	event_base_set(proc->base, &ev_resume);
	evtimer_add(&ev_resume, &tv);
}

static void
on_accept(int lfd, short ev, void *arg)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct session		*s;
	struct ipcount		*ic;
	char			 tmp[64];
	int			 fd, i;

	for (i = 0; i < ACCEPT_BURST; i++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				accept_pause();
			else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		if (nsessions >= (size_t)proc->conf.maxsessions) {
			log_info("smtp-in refused: maxsessions reached");
			refuse(fd, "Too many connections, try again later");
			continue;
		}
		sockaddr_text(&ss, tmp, sizeof(tmp));
		ic = ip_get(tmp, 1);
		if (ic->n >= proc->conf.maxsessionsperip) {
			log_info("smtp-in refused: maxsessionsperip reached "
			    "for %s", tmp);
			refuse(fd, "Too many connections from your address");
			continue;
		}
		ic->n++;
		nsessions++;
		s = session_new(fd, &ss, len);
		RB_INSERT(sessiontree, &sessions, s);
	}
}

static void
add_listener(int fd)
{
	if (nlisten == MAX_LISTEN)
		fatalx("too many listeners");
	set_nonblock(fd);
	event_set(&listen_ev[nlisten], fd, EV_READ | EV_PERSIST, on_accept,
	    NULL);
	event_base_set(proc->base, &listen_ev[nlisten]);
	event_add(&listen_ev[nlisten], NULL);
	nlisten++;
}

void
smtpd_send_parent(uint32_t type, struct msgbuild *mb)
{
	if (chan_send(&proc->parent, mb, type, 0, -1) == -1)
		fatalx("cannot queue a message to the parent");
}

void
smtpd_send_queued(uint32_t type, struct msgbuild *mb)
{
	if (chan_send(&queued_chan, mb, type, 0, -1) == -1)
		fatalx("cannot queue a message to queued");
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
		if (im->fd == -1)
			return -1;
		add_listener(im->fd);
		return 0;
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

	log_warnx("queued is gone (its channel closed); ending %zu "
	    "sessions and exiting", nsessions);
	/* Not the graceful exit of a stop, even during one. */
	stopping = 0;
	RB_FOREACH_SAFE(s, sessiontree, &sessions, next)
		if (!s->dead)
			session_close_with(s, "421 4.3.0 %s Queue unavailable, "
			    "closing connection", proc->conf.serverhostname);
	exit(1);
}

static uint32_t
smtpd_stats(void)
{
	return nsessions;
}

static void
stop_now(int fd, short ev, void *arg)
{
	struct session	*s, *next;

	RB_FOREACH_SAFE(s, sessiontree, &sessions, next)
		session_close_with(s, "421 4.3.2 %s Server shutting down",
		    proc->conf.serverhostname);
	exit(0);
}

static void
smtpd_shutdown(void)
{
	struct timeval	tv = { STOP_GRACE_SEC, 0 };
	int		i;

	/* Close the listeners first: new connections are refused. */
	for (i = 0; i < nlisten; i++) {
		event_del(&listen_ev[i]);
		close(event_get_fd(&listen_ev[i]));
	}
	nlisten = 0;
	stopping = 1;
	if (nsessions == 0)
		exit(0);
	evtimer_set(&ev_stop, stop_now, NULL);
	event_base_set(proc->base, &ev_stop);
	evtimer_add(&ev_stop, &tv);
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_SMTPD);
	proc->shutdown = smtpd_shutdown;
	proc->stats = smtpd_stats;
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_peer(&queued_chan, PROC_QUEUED, queued_dispatch);
	queued_chan.closed = queued_gone;
	child_ready(parent_dispatch);
	sandbox_enter(PROC_SMTPD);
	event_base_dispatch(proc->base);
	return 0;
}
