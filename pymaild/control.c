/*
 * The control socket: pymailadm's stop, status and reload. Owner-only,
 * and the caller's uid is checked with getpeereid.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pymaild.h"
#include "qop.h"
#include "reqparse.h"
#include "util.h"

#define CTL_MAX_CONNS	32
/* How long status waits for the helpers' figures: a stopped or stuck
 * helper must not hang pymailadm. */
#define STATS_WAIT_SEC	2
#define LOG_WAIT_SEC	2

static const enum proc_role stats_roles[] = {
	PROC_SMTPD, PROC_POP3D, PROC_QUEUED, PROC_OUTBOUND
};

/* The helpers asked for lines of their own by stats (IMSG_METRICS), in
 * the order of the answer; the others answer IMSG_STATS. */
static const enum proc_role metrics_roles[] = {
	PROC_SMTPD, PROC_POP3D, PROC_QUEUED
};
#define METRICS_ROLES	(sizeof(metrics_roles) / sizeof(metrics_roles[0]))

static int
metrics_slot(enum proc_role role)
{
	size_t	i;

	for (i = 0; i < METRICS_ROLES; i++)
		if (metrics_roles[i] == role)
			return i;
	return -1;
}

struct ctlconn {
	struct chan	chan;
	unsigned int	pending;	/* roles whose figure is to come */
	unsigned int	unreachable;	/* roles that could not be asked */
	uint32_t	sessions, queue, outbound;
	int		metrics;	/* asked for stats, not status */
	char		*mtext[METRICS_ROLES];	/* smtpd's, pop3d's, queued's lines */
	uint32_t	id;
	uid_t		uid;		/* the peer, for the log */
	int		inuse;
	struct event	ev_stats;	/* STATS_WAIT_SEC after the question */
	int		timing;		/* ev_stats is armed */
	/* A reload's answer, held until every helper writes to the
	 * reopened log (log_wait, a generation) or LOG_WAIT_SEC passed. */
	uint32_t	log_wait;
	int		reload_ok;
	char		reload_text[512];
	struct event	ev_log;
};

static struct ctlconn	 conns[CTL_MAX_CONNS];
static struct event	 ev_accept;
static char		*ctlpath;
static uint32_t		 next_id = 1;

static void
metrics_forget(struct ctlconn *cc)
{
	size_t	i;

	for (i = 0; i < METRICS_ROLES; i++) {
		free(cc->mtext[i]);
		cc->mtext[i] = NULL;
	}
}

int
control_listen(const char *path, uid_t owner, gid_t group)
{
	struct sockaddr_un	sun;
	mode_t			old;
	int			fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		fatalx("controlsocket path too long: %s", path);
	/* A socket nobody answers on is left over from a crash. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe == -1)
		fatal("socket");
	if (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		fatalx("another pymaild answers on %s", path);
	close(probe);
	if (unlink(path) == -1 && errno != ENOENT)
		fatal("cannot remove stale %s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("cannot bind control socket %s", path);
	umask(old);
	/* lchown: what is there now may no longer be our socket. */
	if (geteuid() == 0 && lchown(path, owner, group) == -1)
		fatal("chown %s", path);
	if (listen(fd, 16) == -1)
		fatal("listen %s", path);
	ctlpath = xstrdup(path);
	return fd;
}

void
control_cleanup(void)
{
	if (ctlpath)
		unlink(ctlpath);
}

static void
ctl_reply(struct ctlconn *cc, int ok, const char *text)
{
	chan_compose(&cc->chan, ok ? IMSG_CTL_OK : IMSG_CTL_FAIL, 0, -1,
	    text, strlen(text));
}

#define ROLE_BIT(r)	(1u << (r))

static void
ctl_stats_disarm(struct ctlconn *cc)
{
	if (cc->timing)
		evtimer_del(&cc->ev_stats);
	cc->timing = 0;
}

static void	ctl_metrics_done(struct ctlconn *);

/*
 * Only figures that came: a helper that did not answer is named instead,
 * and no number stands for what it would have said.
 */
static void
ctl_status_done(struct ctlconn *cc)
{
	char		buf[512], line[128];
	unsigned int	silent = cc->pending | cc->unreachable;
	size_t		i;

	if (cc->metrics) {
		ctl_metrics_done(cc);
		return;
	}
	ctl_stats_disarm(cc);
	snprintf(buf, sizeof(buf), "pymaild is running.\npid=%d\n"
	    "uptime=%lld\n", (int)getpid(),
	    (long long)(time(NULL) - env->started));
	if (!(silent & (ROLE_BIT(PROC_SMTPD) | ROLE_BIT(PROC_POP3D)))) {
		snprintf(line, sizeof(line), "sessions=%u\n", cc->sessions);
		strlcat(buf, line, sizeof(buf));
	}
	if (!(silent & ROLE_BIT(PROC_QUEUED))) {
		snprintf(line, sizeof(line), "queue=%u\n", cc->queue);
		strlcat(buf, line, sizeof(buf));
	}
	/* Messages being relayed (one per destination domain) right now. */
	if (!(silent & ROLE_BIT(PROC_OUTBOUND))) {
		snprintf(line, sizeof(line), "outbound=%u\n", cc->outbound);
		strlcat(buf, line, sizeof(buf));
	}
	for (i = 0; i < sizeof(stats_roles) / sizeof(stats_roles[0]); i++) {
		if (!(silent & ROLE_BIT(stats_roles[i])))
			continue;
		if (cc->unreachable & ROLE_BIT(stats_roles[i]))
			snprintf(line, sizeof(line), "%s is not reachable\n",
			    proc_names[stats_roles[i]]);
		else
			snprintf(line, sizeof(line), "%s did not answer "
			    "within %d s\n", proc_names[stats_roles[i]],
			    STATS_WAIT_SEC);
		strlcat(buf, line, sizeof(buf));
	}
	cc->pending = cc->unreachable = 0;
	ctl_reply(cc, 1, buf);
}

static void
ctl_status_timeout(int fd, short ev, void *arg)
{
	struct ctlconn	*cc = arg;
	size_t		 i;

	cc->timing = 0;
	for (i = 0; i < sizeof(stats_roles) / sizeof(stats_roles[0]); i++)
		if (cc->pending & ROLE_BIT(stats_roles[i]))
			log_warnx("%s: %s did not answer within %d s",
			    cc->metrics ? "stats" : "status",
			    proc_names[stats_roles[i]], STATS_WAIT_SEC);
	ctl_status_done(cc);
}

/* status, or with metrics set stats (queued gets IMSG_METRICS then). */
static void
ctl_ask(struct ctlconn *cc, int metrics)
{
	struct timeval	tv = { STATS_WAIT_SEC, 0 };
	struct msgbuild	mb;
	uint32_t	type;
	size_t		i;

	if (cc->pending)
		return;		/* the answer to the first comes */
	cc->sessions = cc->queue = cc->outbound = 0;
	cc->metrics = metrics;
	mb_init(&mb);
	for (i = 0; i < sizeof(stats_roles) / sizeof(stats_roles[0]); i++) {
		type = metrics && metrics_slot(stats_roles[i]) != -1 ?
		    IMSG_METRICS : IMSG_STATS;
		if (chan_send(&env->children[stats_roles[i]].chan, &mb,
		    type, cc->id, -1) == 0)
			cc->pending |= ROLE_BIT(stats_roles[i]);
		else
			cc->unreachable |= ROLE_BIT(stats_roles[i]);
	}
	if (cc->pending == 0) {
		ctl_status_done(cc);
		return;
	}
	evtimer_set(&cc->ev_stats, ctl_status_timeout, cc);
	event_base_set(env->base, &cc->ev_stats);
	evtimer_add(&cc->ev_stats, &tv);
	cc->timing = 1;
}

/*
 * A figure counts once, from a helper that was asked and has not
 * answered yet: a late one (after the timeout) or a second one is
 * dropped, so one helper cannot answer for another.
 */
static void
stats_reply(enum proc_role from, uint32_t id, uint32_t count)
{
	struct ctlconn	*cc;
	int		 i;

	for (i = 0; i < CTL_MAX_CONNS; i++) {
		cc = &conns[i];
		if (!cc->inuse || cc->id != id ||
		    !(cc->pending & ROLE_BIT(from)))
			continue;
		cc->pending &= ~ROLE_BIT(from);
		if (from == PROC_QUEUED)
			cc->queue = count;
		else if (from == PROC_OUTBOUND)
			cc->outbound = count;
		else
			cc->sessions += count;
		if (cc->pending == 0)
			ctl_status_done(cc);
		return;
	}
}

int
control_stats(struct child *from, struct imsg *im)
{
	struct req_stats_reply	rq;

	if (req_read_stats_reply(im->data, im->datalen, &rq) == -1)
		return -1;
	stats_reply(from->role, im->hdr.peerid, rq.count);
	return 0;
}

void
control_answer(uint32_t id, int ok, const char *text)
{
	int	i;

	for (i = 0; i < CTL_MAX_CONNS; i++)
		if (conns[i].inuse && conns[i].id == id) {
			ctl_reply(&conns[i], ok, text);
			return;
		}
}

static void
ctl_reload_answer(struct ctlconn *cc)
{
	if (cc->log_wait)
		evtimer_del(&cc->ev_log);
	cc->log_wait = 0;
	ctl_reply(cc, cc->reload_ok, cc->reload_text);
}

static void
ctl_log_timeout(int fd, short ev, void *arg)
{
	struct ctlconn	*cc = arg;
	char		 who[128];

	logfile_laggards(cc->log_wait, who, sizeof(who));
	log_warnx("reload: %s did not move to the new log file within %d s",
	    who, LOG_WAIT_SEC);
	cc->log_wait = 0;
	ctl_reply(cc, cc->reload_ok, cc->reload_text);
}

void
control_log_moved(void)
{
	int	i;

	for (i = 0; i < CTL_MAX_CONNS; i++)
		if (conns[i].inuse && conns[i].log_wait &&
		    logfile_moved(conns[i].log_wait))
			ctl_reload_answer(&conns[i]);
}

/*
 * The log first, so a configuration that does not load cannot keep
 * every process on a file logrotate moved away; a log that cannot be
 * reopened fails the reload (logrotate reports it) after the
 * configuration was read all the same.
 */
static void
ctl_reload(struct ctlconn *cc)
{
	struct timeval	tv = { LOG_WAIT_SEC, 0 };
	char		logerr[384];
	int		gen;

	if (cc->log_wait)
		return;		/* the first one's answer comes */
	gen = logfile_reopen(logerr, sizeof(logerr));
	cc->reload_ok = parent_reload(cc->reload_text,
	    sizeof(cc->reload_text)) == 0;
	if (!cc->reload_ok)
		log_warnx("reload failed, keeping the old configuration: %s",
		    cc->reload_text);
	else if (gen == -1)
		snprintf(cc->reload_text, sizeof(cc->reload_text), "the "
		    "configuration was reloaded, but the log file was not "
		    "reopened: %s; still writing to the old one", logerr);
	else
		strlcpy(cc->reload_text, "Configuration reloaded.\n",
		    sizeof(cc->reload_text));
	if (gen == -1)
		cc->reload_ok = 0;
	if (gen <= 0 || logfile_moved(gen)) {
		ctl_reply(cc, cc->reload_ok, cc->reload_text);
		return;
	}
	cc->log_wait = gen;
	evtimer_set(&cc->ev_log, ctl_log_timeout, cc);
	event_base_set(env->base, &cc->ev_log);
	evtimer_add(&cc->ev_log, &tv);
}

/* A remove, hold or release: queued answers (control_queue_reply). */
static int
ctl_queue(struct ctlconn *cc, struct imsg *im)
{
	static struct qop	q;
	struct msgbuild		mb;

	if (qop_read(im->data, im->datalen, 0, &q) == -1)
		return -1;
	q.uid = cc->uid;
	/* A sync only writes files the queue would write anyway. */
	if (q.op != QOP_SYNC)
		log_info("control: uid %u asks to %s %s%s",
		    (unsigned)cc->uid, q.op == QOP_REMOVE ? "remove" :
		    q.op == QOP_HOLD ? "hold" : "release",
		    q.match == QMATCH_ID ? "queue ids" :
		    q.match == QMATCH_FROM ? "mail from " : "mail to ",
		    q.match == QMATCH_ID ? "" : q.pattern);
	qop_build(&mb, &q, 1);
	if (chan_send(&env->children[PROC_QUEUED].chan, &mb, IMSG_QUEUE_OP,
	    cc->id, -1) == -1)
		ctl_reply(cc, 0, "queued is not reachable");
	return 0;
}

int
control_queue_reply(struct child *from, struct imsg *im)
{
	struct req_queue_op_reply	 r;
	char				*text;

	if (req_read_queue_op_reply(im->data, im->datalen, &r) == -1)
		return -1;
	text = xmalloc(r.len + 1);
	memcpy(text, r.text, r.len);
	text[r.len] = '\0';
	control_answer(im->hdr.peerid, r.ok, text);
	free(text);
	return 0;
}

/*
 * pymailadm stats: the parent's figures (uptime, and the attempts
 * outbound reports as for status), then smtpd's, pop3d's and queued's
 * lines, each helper's summed in itself and merged only here. The queue
 * is what stats is about: without queued's answer it fails; a silent
 * smtpd or pop3d only has its lines left out. A request during a reload
 * is answered like any other: nothing here waits for the configuration.
 */
static void
ctl_metrics_done(struct ctlconn *cc)
{
	char		text[METRICS_ROLES * METRICS_TEXT_MAX + 256], line[64];
	unsigned int	silent = cc->pending | cc->unreachable;
	size_t		i;

	ctl_stats_disarm(cc);
	cc->pending = cc->unreachable = 0;
	cc->metrics = 0;
	if ((silent & ROLE_BIT(PROC_QUEUED)) ||
	    cc->mtext[metrics_slot(PROC_QUEUED)] == NULL) {
		metrics_forget(cc);
		snprintf(text, sizeof(text), "queued did not answer within "
		    "%d s", STATS_WAIT_SEC);
		ctl_reply(cc, 0, text);
		return;
	}
	snprintf(text, sizeof(text), "uptime_seconds %lld\n",
	    (long long)(time(NULL) - env->started));
	if (!(silent & ROLE_BIT(PROC_OUTBOUND))) {
		snprintf(line, sizeof(line), "outbound_attempts %u\n",
		    cc->outbound);
		strlcat(text, line, sizeof(text));
	}
	for (i = 0; i < METRICS_ROLES; i++)
		if (cc->mtext[i] != NULL)
			strlcat(text, cc->mtext[i], sizeof(text));
	metrics_forget(cc);
	ctl_reply(cc, 1, text);
}

/* Counted once a helper, for a stats request still waiting for it. */
int
control_metrics_reply(struct child *from, struct imsg *im)
{
	static struct req_metrics_reply	 r;
	struct ctlconn			*cc;
	int				 i, slot;

	if (req_read_metrics_reply(im->data, im->datalen, &r) == -1 ||
	    (slot = metrics_slot(from->role)) == -1)
		return -1;
	if (!req_metrics_names_ok(r.text, from->role)) {
		log_warnx("stats: %s sent figures under names not its own",
		    proc_names[from->role]);
		return -1;
	}
	for (i = 0; i < CTL_MAX_CONNS; i++) {
		cc = &conns[i];
		if (!cc->inuse || cc->id != im->hdr.peerid || !cc->metrics ||
		    !(cc->pending & ROLE_BIT(from->role)))
			continue;
		cc->pending &= ~ROLE_BIT(from->role);
		free(cc->mtext[slot]);
		cc->mtext[slot] = xstrdup(r.text);
		if (cc->pending == 0)
			ctl_status_done(cc);
		break;
	}
	return 0;
}

static int
ctl_dispatch(struct chan *ch, struct imsg *im)
{
	struct ctlconn	*cc = ch->arg;
	struct msgbuild	 mb;

	if (im->hdr.type == IMSG_CTL_QUEUE)
		return ctl_queue(cc, im);
	if (im->datalen != 0)
		return -1;
	switch (im->hdr.type) {
	case IMSG_CTL_STATUS:
		ctl_ask(cc, 0);
		return 0;
	case IMSG_CTL_STOP:
		ctl_reply(cc, 1, "pymaild is stopping.\n");
		parent_stop("stop requested by pymailadm");
		return 0;
	case IMSG_CTL_FLUSH:
		mb_init(&mb);
		if (parent_send(PROC_QUEUED, IMSG_FLUSH, &mb, -1) == -1)
			ctl_reply(cc, 0, "queued is not reachable");
		else
			ctl_reply(cc, 1, "Queue flush requested: every "
			    "deferred message is retried now.\n");
		return 0;
	case IMSG_CTL_UPDATEMX:
		/* Answered by control_answer when mxcache is done. */
		if (mxstore_refresh(cc->id) == -1)
			ctl_reply(cc, 0, "mxcache is not reachable");
		return 0;
	case IMSG_CTL_RELOAD:
		ctl_reload(cc);
		return 0;
	case IMSG_CTL_METRICS:
		ctl_ask(cc, 1);
		return 0;
	default:
		return -1;
	}
}

static int
ctl_takes_fd(uint32_t type)
{
	return 0;
}

static void
ctl_closed(struct chan *ch)
{
	struct ctlconn	*cc = ch->arg;

	ctl_stats_disarm(cc);
	if (cc->log_wait)
		evtimer_del(&cc->ev_log);
	cc->log_wait = 0;
	cc->pending = cc->unreachable = 0;
	cc->metrics = 0;
	metrics_forget(cc);
	cc->inuse = 0;
}

static void
ctl_accept(int lfd, short ev, void *arg)
{
	struct ctlconn	*cc = NULL;
	uid_t		 uid;
	gid_t		 gid;
	int		 fd, i;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return;
	if (getpeereid(fd, &uid, &gid) == -1 ||
	    (uid != 0 && uid != geteuid())) {
		log_warnx("control: refused a client with uid %d", (int)uid);
		close(fd);
		return;
	}
	for (i = 0; i < CTL_MAX_CONNS && cc == NULL; i++)
		if (!conns[i].inuse)
			cc = &conns[i];
	if (cc == NULL) {
		log_warnx("control: too many clients");
		close(fd);
		return;
	}
	cc->inuse = 1;
	cc->uid = uid;
	cc->pending = 0;
	cc->log_wait = 0;
	cc->id = next_id++;
	chan_init(&cc->chan, env->base, fd, "control", ctl_dispatch,
	    ctl_closed, cc);
	cc->chan.takes_fd = ctl_takes_fd;
}

void
control_start(int fd)
{
	set_nonblock(fd);
	event_set(&ev_accept, fd, EV_READ | EV_PERSIST, ctl_accept, NULL);
	event_base_set(env->base, &ev_accept);
	event_add(&ev_accept, NULL);
}
