/*
 * pop3d: POP3 sessions, unprivileged and chrooted; every mailbox access
 * goes through the parent. This file is the process: start-up, the
 * parent's channel and the sessions' table; the listeners, the session
 * limits and the stop are common/listener.c's.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "listener.h"
#include "log.h"
#include "pop3d.h"
#include "proc.h"
#include "sandbox.h"
#include "tls.h"
#include "util.h"

#define STOP_GRACE_SEC	10

RB_HEAD(sessions, session);

struct event_base	*pop3_base;

static struct sessions	 sessions = RB_INITIALIZER(&sessions);
static uint32_t		 nextid;

static int
session_cmp(struct session *a, struct session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE_STATIC(sessions, session, entry, session_cmp)

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
	if (chan_queue(&proc->parent, mb, type, 0, -1) == 0)
		chan_flush(&proc->parent);
}

struct session *
session_find(uint32_t id)
{
	struct session	key;

	key.id = id;
	return RB_FIND(sessions, &sessions, &key);
}

void
session_unregister(struct session *s)
{
	struct ipcount	*ip = s->ip;

	RB_REMOVE(sessions, &sessions, s);
	s->ip = NULL;
	listener_session_end(ip);
}

/* Over a limit: one line, then hang up; no session is made. */
static void
refuse(int fd, enum listen_refusal why, const char *addr)
{
	static const char	msg[] =
	    "-ERR [SYS/TEMP] too many sessions, try again later\r\n";
	static const char *const reasons[] = {
		[REFUSE_MAXSESSIONS] = "maxsessions",
		[REFUSE_NOFILE] = "out of descriptors",
		[REFUSE_MAXPERIP] = "maxsessionsperip",
	};

	log_info("pop3 from=%s result=refused reason=\"%s\"", addr,
	    reasons[why]);
	/* A fresh socket has room for one line; if not, it is lost. */
	if (write(fd, msg, sizeof(msg) - 1) == -1)
		log_debug("pop3 from=%s: refusal not sent", addr);
	close(fd);
}

static void
accepted(int fd, struct sockaddr_storage *ss, socklen_t len,
    const char *addr, struct ipcount *ip, int kind)
{
	int	on = 1;

	/* Answers are batched by us; Nagle would only add delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	pop3_connected(kind);
	session_start(fd, addr, ip, ss, kind);
}

/* A listening socket and its kind: the POP3 ones only. */
static int
listen_msg(struct imsg *im)
{
	static const int	kinds[] = { LISTEN_POP3, LISTEN_POP3S, 0 };

	return listener_take(im, kinds);
}

/* Ids are never reused while the parent may still answer for one. */
void
session_register(struct session *s)
{
	do {
		s->id = ++nextid;
	} while (s->id == 0 || session_find(s->id) != NULL);
	RB_INSERT(sessions, &sessions, s);
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
		return listen_msg(im);
	if (im->hdr.type == IMSG_TLS_SIGNER)
		return tls_on_signer(im);
	if (im->hdr.type == IMSG_TLS_CERT)
		return tls_on_cert(im);
	if (im->hdr.type == IMSG_TLS_TICKET_KEYS)
		return tls_on_ticket_keys(im);
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
stop_now(unsigned int left)
{
	log_info("pop3d: %u sessions still open after %d s; exiting", left,
	    STOP_GRACE_SEC);
}

static const struct listener_conf pop3_listener = {
	.name = "pop3d",
	.grace_sec = STOP_GRACE_SEC,
	.accepted = accepted,
	.refuse = refuse,
	.stop_now = stop_now,
};

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
	uint32_t	fdcap;

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
	listener_set_fdcap(fdcap);
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_POP3D);
	pop3_base = proc->base;
	listener_init(&pop3_listener);
	proc->shutdown = listener_stop;
	proc->stats = listener_sessions;
	proc->metrics = pop3d_metrics;
	raise_nofile();
	tls_init();
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_ready(parent_dispatch);
	sandbox_enter(PROC_POP3D);
	event_base_dispatch(proc->base);
	return 0;
}
