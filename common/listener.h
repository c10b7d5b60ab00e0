/*
 * The accepting side of a protocol helper (smtpd, pop3d): its listening
 * sockets, the session limits (maxsessions, maxsessionsperip, what the
 * descriptors allow), a pause when out of descriptors, and the graceful
 * stop. The sessions themselves are the helper's.
 */
#ifndef PYMAILD_LISTENER_H
#define PYMAILD_LISTENER_H

#include <sys/socket.h>

#include <stdint.h>

/* The sessions of one client address; opaque to the helpers. */
struct ipcount;

enum listen_refusal {
	REFUSE_MAXSESSIONS,
	REFUSE_NOFILE,		/* the descriptor limit allows no more */
	REFUSE_MAXPERIP
};

struct listener_conf {
	const char	*name;		/* in log lines */
	int		 grace_sec;	/* a stop waits this long for sessions */
	/* Within the limits: start a session on fd; it holds ip until
	 * listener_session_end. addr is the client address as text; kind
	 * the listener's (LISTEN_* of proto.h). */
	void		(*accepted)(int fd, struct sockaddr_storage *,
			    socklen_t, const char *addr, struct ipcount *ip,
			    int kind);
	/* Over a limit: log, tell the client in the protocol's words (one
	 * write at most), close fd. */
	void		(*refuse)(int fd, enum listen_refusal,
			    const char *addr);
	/* The grace time of a stop is over: end what is left (it exits). */
	void		(*stop_now)(unsigned int sessions);
};

void	listener_init(const struct listener_conf *);
/* A listening socket from the parent, of a kind (LISTEN_*); -1 when
 * there are too many. */
int	listener_add(int fd, int kind);
/* IMSG_LISTEN: its socket, when its kind is one of kinds (ended by 0);
 * -1 for any other payload, which the caller treats as hostile. */
struct imsg;
int	listener_take(struct imsg *, const int *kinds);
/* Sessions beyond n would run out of descriptors: refuse them. */
void	listener_set_fdcap(uint32_t n);
uint32_t listener_sessions(void);
/* The address's counter of a session's client (NULL: none). */
struct ipcount *listener_ip_find(const struct sockaddr_storage *);
/* A session ended. During a stop, the last one exits 0. */
void	listener_session_end(struct ipcount *);
/* Close the listeners, wait for the sessions, at most grace_sec. */
void	listener_stop(void);
/* A failure, not a stop: the end of the sessions the caller now closes
 * must not exit 0 (it exits non-zero itself after). */
void	listener_abort_stop(void);

#endif
