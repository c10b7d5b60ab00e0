/*
 * The privileged parent: supervisor, control socket and mailbox store.
 */
#ifndef PYMAILD_PARENT_H
#define PYMAILD_PARENT_H

#include <sys/types.h>
#include <time.h>

#include "chan.h"
#include "config.h"
#include "proto.h"
#include "reqparse.h"
#include "userdb.h"

struct stat;

struct child {
	enum proc_role	 role;
	pid_t		 pid;
	int		 ready;		/* said hello */
	int		 exited;
	int		 asked;		/* to stop: IMSG_SHUTDOWN sent */
	uint32_t	 requests;	/* accepted, not answered yet */
	struct chan	 chan;
};

struct parent {
	struct event_base	*base;
	struct config		 conf;
	char			*conftext;	/* exactly what children got */
	const char		*confpath;
	int			 foreground;
	int			 verbose;
	time_t			 started;
	int			 stopping;
	int			 failed;	/* fail closed: exit 1 */
	int			 readyfd;	/* tells the starter we listen */
	struct child		 children[PROC_COUNT];
	uid_t			 uid;		/* after the drop */
	gid_t			 gid;
};

extern struct parent	*env;

/* pymaild.c */
void	parent_stop(const char *why);
/* A child broke the rules or went away: stop everything, exit non-zero. */
void	parent_fail(struct child *, const char *why);
/* A request answered later (password check, delivery): -1 when the child
 * has too many waiting already, which fails closed. */
int	child_request_begin(struct child *);
void	child_request_done(enum proc_role);
int	parent_reload(char *err, size_t errlen);
int	parent_send(enum proc_role, uint32_t type, struct msgbuild *, int fd);
int	parent_hello(struct child *, struct imsg *);

/*
 * requests.c: the one table of what a helper may ask the parent. Each
 * handler below is named there with the roles that may call it; it
 * returns -1 for a malformed request, which fails closed.
 */
int	request_dispatch(struct child *, struct imsg *);
/* May a request of this type carry a descriptor? (chan's takes_fd) */
int	request_takes_fd(uint32_t type);

/* control.c */
int	control_listen(const char *path, uid_t owner, gid_t group);
void	control_start(int fd);
int	control_stats(struct child *, struct imsg *);	/* STATS_REPLY */
int	control_queue_reply(struct child *, struct imsg *); /* QUEUE_OP_REPLY */
int	control_metrics_reply(struct child *, struct imsg *); /* METRICS_REPLY */
/* Answer the control client with this id, if it is still there. */
void	control_answer(uint32_t id, int ok, const char *text);
void	control_cleanup(void);

/* logfile.c: the log file, and its reopen after a rotation */
int	logfile_open(const char *path, char *err, size_t errlen);
/* 0 nothing to reopen, -1 failed (reported), else a generation. */
int	logfile_reopen(char *err, size_t errlen);
int	logfile_moved(uint32_t gen);
void	logfile_laggards(uint32_t gen, char *buf, size_t len);
int	logfile_confirmed(struct child *, struct imsg *);	/* REOPENED */
/* control.c: answer the reloads that waited for the helpers' move. */
void	control_log_moved(void);

/* store.c: the mailbox store's side of the children's requests */
void	store_init(void);
int	store_auth(struct child *, struct imsg *);
int	store_rcpt_check(struct child *, struct imsg *);
/* Re-read MAILDIR/users when it changed on disk (pymailadm wrote it). */
void	store_refresh_users(void);
int	store_user_exists(const char *user);
int	store_mboxopts(const char *user, struct mboxopts *o, char *err,
	    size_t errlen);
/* The bytes a mailbox holds, the figure quotas compare against (limit:
 * its mailboxsize, for the file's limit line when it is rewritten). */
long long store_usage(const char *user, long long limit);
/* bytes appended to maildirsize, which was *pre before and *post after
 * (quota_append): the cached figure follows, or is read again. */
void	store_usage_add(const char *user, long long bytes,
	    const struct stat *pre, const struct stat *post);
/* Forget the figure (messages removed): the next use scans again. */
void	store_usage_changed(const char *user);
/* Checks made between these, all of requests already received, stat
 * each file once (a batch of deliveries). */
void	store_hold_begin(void);
void	store_hold_end(void);
/* A child's requests of one read: a hold (chan.h's burst). */
void	store_burst(int begin);
/* policy.c: may user's mailbox take size octets? RCPT_* of proto.h */
uint32_t store_mbox_verdict(const char *user, long long size);
/* The hash a login for name is checked against: the user's, or a dummy
 * for an unknown name; user gets the normalised name ("-" if invalid). */
const char *store_login_hash(const char *name, char user[USER_NAME_MAX + 1],
	    int *known);
/* After a good login with PyMaild's md5 hash: store newhash instead. */
void	store_upgrade_hash(const char *user, const char *newhash);

/* mailbox.c: the mailbox store's side of POP3 */
int	mailbox_login(struct child *, struct imsg *);
int	mailbox_open(struct child *, struct imsg *);
int	mailbox_update(struct child *, struct imsg *);
int	mailbox_release(struct child *, struct imsg *);

/* mxstore.c: MAILDIR/mxservers for mxcache, and updatemx */
void	mxstore_init(void);
int	mxstore_save(struct child *, struct imsg *);
int	mxstore_refresh_done(struct child *, struct imsg *);
/* Forward `pymailadm updatemx`; -1 when mxcache is not reachable. */
int	mxstore_refresh(uint32_t ctlid);

/* quota.c: USER/Maildir/maildirsize, the quota figure on the store */
int	quota_usage(const char *maildir, const char *user, long long limit,
	    int age_ok, long long *bytes, struct stat *st);
int	quota_tail(const char *maildir, const char *user, long long *bytes,
	    struct stat *st);
int	quota_append(const char *maildir, const char *user, long long bytes,
	    long long count, struct stat *pre, struct stat *post);
/* Held (shared) over a rename or unlink and its line: a recount waits. */
int	quota_order_begin(const char *maildir, const char *user);
void	quota_order_end(int fd);

/* hostlock.c: MAILDIR/.hosts/NAME.lock, one host of each name on a store */
int	hostlock_open(const char *maildir, const char *name, uid_t uid,
	    gid_t gid, char *err, size_t errlen);
void	hostlock_keep(int fd);

/* deliver.c */
void	deliver_init(void);
int	deliver_request(struct child *, struct imsg *);
int	deliver_cancel(struct child *, struct imsg *);

/* tlskeys.c: the TLS private keys, and the signatures made with them */
/* Read and check every pair of the config (-n): -1 with err naming the
 * file. */
int	tlskeys_check(const struct config *, char *err, size_t errlen);
void	tlskeys_init(void);	/* as root, before the helpers start */
void	tlskeys_start(void);	/* the signing thread, once the loop is */
void	tlskeys_hello(struct child *);
int	tlskeys_reload(const struct config *, char *err, size_t errlen);

/* relayauth.c: the smarthost's credentials (smtprelayauth) */
/* Is the file there, a regular file only its owner may read, holding one
 * good line? -1 with err naming the file. */
int	relayauth_check(const struct config *, char *err, size_t errlen);
int	relayauth_request(struct child *, struct imsg *);
void	relayauth_init(void);	/* at start: fatal when the file is bad */

/* dkimkeys.c: the DKIM signing keys, read here, handed to queued only */
int	dkimkeys_check(const struct config *, char *err, size_t errlen);
void	dkimkeys_init(void);	/* as root, before the helpers start */
void	dkimkeys_hello(struct child *);
int	dkimkeys_reload(const struct config *, char *err, size_t errlen);
void	dkimkeys_commit(void);	/* the reloaded config is in place */

/* tickets.c: TLS session ticket keys for smtpd and pop3d */
void	tickets_init(struct event_base *);
void	tickets_hello(struct child *);
void	tickets_rotate(void);	/* at a reload, and every hour */

/* auth.c: password checks off the event loop, and failure throttling */
typedef void	(*auth_done_fn)(void *arg, int ok, const char *newhash);
void	auth_init(struct event_base *, int nthreads);
/*
 * Verify a password off the loop; user is the normalized name ("-" for
 * no such user, checked against a dummy hash). When upgrade is set and it
 * matches, newhash is a fresh yescrypt hash of the password to store
 * instead. A success is remembered for a while (the verification cache),
 * so the same user, password and hash again is answered without the
 * hashing cost. A locked account fails whatever the password, after the
 * full cost, so its answer tells nothing.
 */
void	auth_check(const char *user, const char *hash, const char *password,
	    int upgrade, auth_done_fn done, void *arg);
/* A yescrypt hash no password matches, for users that do not exist. */
const char *auth_dummy_hash(void);
/* The client address is refused AUTH for now (AUTH_BLOCKED). */
int	auth_blocked(const char *addr);
/* Count a failure of the client address and, when the user exists, of
 * the account; returns the address's failures in the window. */
int	auth_record_failure(const char *addr, const char *user, int known);
/* How long the answer to a failure waits, given auth_record_failure's. */
uint32_t auth_delay_ms(int failures);

#endif
