/*
 * pop3d: POP3 sessions, unprivileged and chrooted; every mailbox access
 * goes through the parent. This file is the process: start-up, the
 * parent's channel, the listeners, the session limits and the stop.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "pop3d.h"
#include "proc.h"
#include "sandbox.h"
#include "util.h"

#define MAX_LISTEN	64
#define ACCEPT_BURST	64	/* connections taken per wake-up */
#define STOP_GRACE_SEC	10

struct listener {
	int		fd;
	struct event	ev;
};

/* Sessions from one client address, for maxsessionsperip. */
struct ipcount {
	RB_ENTRY(ipcount) entry;
	int		  af;
	uint8_t		  addr[16];
	int		  n;
};

RB_HEAD(sessions, session);
RB_HEAD(ipcounts, ipcount);

struct event_base	*pop3_base;

static struct listener	 listeners[MAX_LISTEN];
static int		 nlisten;
static struct sessions	 sessions = RB_INITIALIZER(&sessions);
static struct ipcounts	 ipcounts = RB_INITIALIZER(&ipcounts);
static uint32_t		 nsessions;
static uint32_t		 nextid;
static int		 stopping;
static uint32_t		 fdcap;	/* what descriptors allow */
static struct event	 ev_pause, ev_stop;

static int
session_cmp(struct session *a, struct session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static int
ipcount_cmp(struct ipcount *a, struct ipcount *b)
{
	if (a->af != b->af)
		return a->af < b->af ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

RB_GENERATE_STATIC(sessions, session, entry, session_cmp)
RB_GENERATE_STATIC(ipcounts, ipcount, entry, ipcount_cmp)

int
pop3_timeout(void)
{
	return proc->conf.timeout;
}

/*
 * Written at once rather than on the next writable event: a message per
 * RETR would otherwise cost two epoll_ctl calls and a wake-up more.
 */
void
pop3_send(uint32_t type, struct msgbuild *mb)
{
	struct chan	*c = &proc->parent;

	if (mb_send(mb, &c->ib, type, 0, -1) == -1)
		fatalx("cannot queue a message to the parent");
	if (imsgbuf_flush(&c->ib) == -1)
		fatal("write to the parent");
	chan_kick(c);
}

struct session *
session_find(uint32_t id)
{
	struct session	key;

	key.id = id;
	return RB_FIND(sessions, &sessions, &key);
}

static void
ipcount_key(struct ipcount *k, const struct sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	k->af = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(k->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    16);
}

static void
ipcount_put(struct ipcount *ip)
{
	if (--ip->n > 0)
		return;
	RB_REMOVE(ipcounts, &ipcounts, ip);
	free(ip);
}

static void
maybe_exit(void)
{
	if (stopping && nsessions == 0) {
		log_debug("pop3d: no sessions left, exiting");
		exit(0);
	}
}

void
session_unregister(struct session *s)
{
	RB_REMOVE(sessions, &sessions, s);
	nsessions--;
	if (s->ip)
		ipcount_put(s->ip);
	s->ip = NULL;
	maybe_exit();
}

static uint32_t
pop3_stats(void)
{
	return nsessions;
}

/* Over a limit: one line, then hang up; no session is made. */
static void
refuse(int fd, const char *why, const char *addr)
{
	static const char	msg[] =
	    "-ERR [SYS/TEMP] too many sessions, try again later\r\n";

	log_info("pop3 from=%s result=refused reason=\"%s\"", addr, why);
	/* A fresh socket has room for one line; if not, it is lost. */
	if (write(fd, msg, sizeof(msg) - 1) == -1)
		log_debug("pop3 from=%s: refusal not sent", addr);
	close(fd);
}

static void
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void	*a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else {
		strlcpy(buf, "local", len);
		return;
	}
	if (inet_ntop(sa->sa_family, a, buf, len) == NULL)
		strlcpy(buf, "?", len);
}

static void
accept_one(int fd, const struct sockaddr *sa)
{
	struct ipcount	 key, *ip;
	char		 addr[64];
	int		 on = 1;

	addr_text(sa, addr, sizeof(addr));
	if (nsessions >= (uint32_t)proc->conf.maxsessions) {
		refuse(fd, "maxsessions", addr);
		return;
	}
	if (nsessions >= fdcap) {
		refuse(fd, "out of descriptors", addr);
		return;
	}
	ipcount_key(&key, sa);
	if ((ip = RB_FIND(ipcounts, &ipcounts, &key)) != NULL &&
	    ip->n >= proc->conf.maxsessionsperip) {
		refuse(fd, "maxsessionsperip", addr);
		return;
	}
	if (ip == NULL) {
		ip = xmalloc(sizeof(*ip));
		*ip = key;
		ip->n = 0;
		RB_INSERT(ipcounts, &ipcounts, ip);
	}
	ip->n++;
	/* Answers are batched by us; Nagle would only add delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	session_start(fd, addr, ip);
}

static void
listeners_enable(int on)
{
	int	i;

	for (i = 0; i < nlisten; i++) {
		if (on)
			event_add(&listeners[i].ev, NULL);
		else
			event_del(&listeners[i].ev);
	}
}

static void
on_accept(int lfd, short ev, void *arg)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	struct timeval		tv = { 1, 0 };
	int			fd, i;

	for (i = 0; i < ACCEPT_BURST && !stopping; i++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			accept_one(fd, (struct sockaddr *)&ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: stop accepting for a moment
			 * instead of spinning on a ready listener. */
			log_warn("pop3d: accept");
			listeners_enable(0);
			evtimer_add(&ev_pause, &tv);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("pop3d: accept");
		return;
	}
}

static void
pause_done(int fd, short ev, void *arg)
{
	listeners_enable(1);
}

/* Ids are never reused while the parent may still answer for one. */
void
session_register(struct session *s)
{
	do {
		s->id = ++nextid;
	} while (s->id == 0 || session_find(s->id) != NULL);
	RB_INSERT(sessions, &sessions, s);
	nsessions++;
}

static int
add_listener(struct imsg *im)
{
	struct listener	*l;

	if (im->fd == -1 || nlisten == MAX_LISTEN)
		return -1;
	l = &listeners[nlisten++];
	l->fd = im->fd;
	set_nonblock(l->fd);
	event_assign(&l->ev, pop3_base, l->fd, EV_READ | EV_PERSIST,
	    on_accept, NULL);
	if (!stopping)
		event_add(&l->ev, NULL);
	return 0;
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	struct msgread	mr;
	uint32_t	id;
	int		r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	if (im->hdr.type == IMSG_LISTEN)
		return add_listener(im);
	mr_init(&mr, im);
	id = mr_u32(&mr);
	switch (im->hdr.type) {
	case IMSG_POP3_LOGIN_REPLY:
		return reply_login(id, &mr);
	case IMSG_POP3_LISTING:
		return reply_listing(id, &mr);
	case IMSG_POP3_OPEN_REPLY:
		return reply_open(id, &mr, im->fd);
	case IMSG_POP3_UPDATE_REPLY:
		return reply_update(id, &mr);
	default:
		return -1;
	}
}

static void
stop_timeout(int fd, short ev, void *arg)
{
	log_info("pop3d: %u sessions still open after %d s; exiting",
	    nsessions, STOP_GRACE_SEC);
	exit(0);
}

static void
pop3d_shutdown(void)
{
	struct timeval	tv = { STOP_GRACE_SEC, 0 };
	int		i;

	if (stopping)
		return;
	stopping = 1;
	/* Close the listeners first: new connections are refused. */
	for (i = 0; i < nlisten; i++) {
		event_del(&listeners[i].ev);
		close(listeners[i].fd);
	}
	nlisten = 0;
	evtimer_del(&ev_pause);
	evtimer_assign(&ev_stop, pop3_base, stop_timeout, NULL);
	evtimer_add(&ev_stop, &tv);
	maybe_exit();
}

/*
 * A session holds its socket and one message descriptor, and sessions
 * ask ahead for up to POP3_HELD_MAX more (open.c). A descriptor from the
 * parent that finds no free slot would be lost with its message, and the
 * channel with it: so sessions are capped to what the limit allows.
 */
static void
raise_nofile(void)
{
	struct rlimit	rl;
	rlim_t		spare = POP3_HELD_MAX + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("pop3d: setrlimit");
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	fdcap = rl.rlim_cur > spare ? (rl.rlim_cur - spare) / 2 : 0;
	if (fdcap < (uint32_t)proc->conf.maxsessions)
		log_warnx("pop3d: %llu descriptors allow %u sessions, fewer "
		    "than maxsessions", (unsigned long long)rl.rlim_cur, fdcap);
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_POP3D);
	pop3_base = proc->base;
	proc->shutdown = pop3d_shutdown;
	proc->stats = pop3_stats;
	evtimer_assign(&ev_pause, pop3_base, pause_done, NULL);
	raise_nofile();
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_ready(parent_dispatch);
	sandbox_enter(PROC_POP3D);
	event_base_dispatch(proc->base);
	return 0;
}
