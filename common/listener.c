/*
 * One accept loop for smtpd and pop3d. The limits are checked before any
 * session state exists, so a flood of connections costs an accept, a
 * write and a close each, and the counter of a client address lives only
 * while it has sessions.
 */
#include <sys/tree.h>

#include <netinet/in.h>

#include <errno.h>
#include <event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "listener.h"
#include "log.h"
#include "util.h"

#define LISTEN_MAX	64
#define ACCEPT_BURST	64	/* connections taken per wake-up */
#define PAUSE_SEC	1

struct ipcount {
	RB_ENTRY(ipcount) entry;
	int		  af;
	uint8_t		  addr[16];	/* IPv4 in the first 4 octets */
	int		  n;
};

RB_HEAD(ipcounts, ipcount);

static const struct listener_conf *lc;
static struct event	 listen_ev[LISTEN_MAX];
static int		 listen_kind[LISTEN_MAX];
static int		 nlisten;
static struct ipcounts	 ipcounts = RB_INITIALIZER(&ipcounts);
static uint32_t		 nsessions;
static uint32_t		 fdcap = UINT32_MAX;
static int		 stopping, paused;
static struct event	 ev_pause, ev_stop;

static int
ipcount_cmp(struct ipcount *a, struct ipcount *b)
{
	if (a->af != b->af)
		return a->af < b->af ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

RB_GENERATE_STATIC(ipcounts, ipcount, entry, ipcount_cmp)

/* Binary, not text: no formatting on the lookup a session close does. */
static void
ipcount_key(struct ipcount *k, const struct sockaddr_storage *ss)
{
	memset(k, 0, sizeof(*k));
	k->af = ss->ss_family;
	if (ss->ss_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)ss)->sin_addr,
		    4);
	else if (ss->ss_family == AF_INET6)
		memcpy(k->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr,
		    16);
}

struct ipcount *
listener_ip_find(const struct sockaddr_storage *ss)
{
	struct ipcount	key;

	ipcount_key(&key, ss);
	return RB_FIND(ipcounts, &ipcounts, &key);
}

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
pause_done(int fd, short ev, void *arg)
{
	paused = 0;
	if (!stopping)
		listeners_enable(1);
}

/* Out of descriptors: stop accepting for a moment rather than spin on a
 * listener that stays ready. */
static void
accept_pause(void)
{
	struct timeval	tv = { PAUSE_SEC, 0 };

	if (paused)
		return;
	paused = 1;
	log_warnx("%s: out of file descriptors with %u sessions; not "
	    "accepting for %d s (lower maxsessions or raise the limit)",
	    lc->name, nsessions, PAUSE_SEC);
	listeners_enable(0);
	evtimer_add(&ev_pause, &tv);
}

/* The limits are read at each connection: a reload changes them. */
static int
over_limit(struct ipcount *key, struct ipcount **ipp)
{
	if (nsessions >= (uint32_t)proc->conf.maxsessions)
		return REFUSE_MAXSESSIONS;
	if (nsessions >= fdcap)
		return REFUSE_NOFILE;
	*ipp = RB_FIND(ipcounts, &ipcounts, key);
	if (*ipp != NULL && (*ipp)->n >= proc->conf.maxsessionsperip)
		return REFUSE_MAXPERIP;
	return -1;
}

static void
accept_one(int fd, struct sockaddr_storage *ss, socklen_t len, int kind)
{
	struct ipcount	 key, *ip = NULL;
	char		 addr[64];
	int		 why;

	sockaddr_text(ss, addr, sizeof(addr));
	if (addr[0] == '\0')
		strlcpy(addr, "local", sizeof(addr));
	ipcount_key(&key, ss);
	if ((why = over_limit(&key, &ip)) != -1) {
		lc->refuse(fd, why, addr);
		return;
	}
	if (ip == NULL) {
		ip = xmalloc(sizeof(*ip));
		*ip = key;
		ip->n = 0;
		RB_INSERT(ipcounts, &ipcounts, ip);
	}
	ip->n++;
	nsessions++;
	lc->accepted(fd, ss, len, addr, ip, kind);
}

static void
on_accept(int lfd, short ev, void *arg)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	int			fd, i, kind = *(int *)arg;

	for (i = 0; i < ACCEPT_BURST && !stopping; i++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			accept_one(fd, &ss, len, kind);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE)
			accept_pause();
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("%s: accept", lc->name);
		return;
	}
}

void
listener_init(const struct listener_conf *conf)
{
	lc = conf;
	evtimer_set(&ev_pause, pause_done, NULL);
	event_base_set(proc->base, &ev_pause);
}

int
listener_add(int fd, int kind)
{
	struct event	*ev;

	if (fd == -1 || nlisten == LISTEN_MAX)
		return -1;
	listen_kind[nlisten] = kind;
	ev = &listen_ev[nlisten];
	set_nonblock(fd);
	event_set(ev, fd, EV_READ | EV_PERSIST, on_accept,
	    &listen_kind[nlisten]);
	nlisten++;
	event_base_set(proc->base, ev);
	if (!stopping && !paused)
		event_add(ev, NULL);
	return 0;
}

void
listener_set_fdcap(uint32_t n)
{
	fdcap = n;
}

uint32_t
listener_sessions(void)
{
	return nsessions;
}

void
listener_session_end(struct ipcount *ip)
{
	if (nsessions > 0)
		nsessions--;
	if (ip != NULL && --ip->n <= 0) {
		RB_REMOVE(ipcounts, &ipcounts, ip);
		free(ip);
	}
	if (stopping && nsessions == 0) {
		log_debug("%s: no sessions left, exiting", lc->name);
		exit(0);
	}
}

static void
stop_timeout(int fd, short ev, void *arg)
{
	lc->stop_now(nsessions);
	exit(0);
}

void
listener_stop(void)
{
	struct timeval	tv = { lc->grace_sec, 0 };
	int		i;

	if (stopping)
		return;
	stopping = 1;
	/* The listeners first: new connections are refused. */
	for (i = 0; i < nlisten; i++) {
		event_del(&listen_ev[i]);
		close(event_get_fd(&listen_ev[i]));
	}
	nlisten = 0;
	evtimer_del(&ev_pause);
	if (nsessions == 0) {
		log_debug("%s: no sessions left, exiting", lc->name);
		exit(0);
	}
	evtimer_set(&ev_stop, stop_timeout, NULL);
	event_base_set(proc->base, &ev_stop);
	evtimer_add(&ev_stop, &tv);
}

void
listener_abort_stop(void)
{
	stopping = 0;
}

int
listener_take(struct imsg *im, const int *kinds)
{
	struct msgread	mr;
	uint32_t	kind;

	mr_init(&mr, im);
	kind = mr_u32(&mr);
	if (mr_end(&mr) == -1)
		return -1;
	for (; *kinds != 0; kinds++)
		if ((uint32_t)*kinds == kind)
			return listener_add(im->fd, kind);
	return -1;
}
