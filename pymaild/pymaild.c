/*
 * pymaild: the parent. As root it binds the ports, makes the folders,
 * starts the helpers (each drops its own privileges), then drops to
 * `user` itself and serves the children's requests and the control socket.
 */
#include <sys/param.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "pymaild.h"
#include "util.h"

#define MAX_LISTENERS	64
#define STOP_GRACE_SEC	15

/*
 * What one child may have pending with us; beyond it fails closed (a
 * helper that floods, or asks without reading the answers, is not ours
 * any more). Far above what a working helper reaches: queued hands over
 * at most 512 deliveries at a time, smtpd and pop3d have one password
 * check per session at most (maxsessions, 1000 by default); the answers
 * waiting toward a helper that reads its channel are those of its
 * requests in flight, plus a POP3 listing (~280 entries a message: a
 * mailbox of a million messages is under 4,000 messages and 64 MiB).
 */
#define CHILD_REQUESTS_MIN	8192
#define CHILD_OUT_MSGS_PER_REQ	8
#define CHILD_OUT_BYTES_MAX	(64 * 1024 * 1024)

struct parent	*env;

static struct listener {
	int	fd;
	int	kind;
} listeners[MAX_LISTENERS];
static int	nlisteners;
static struct event ev_sigterm, ev_sigint, ev_sighup, ev_sigchld, ev_stop;

static __attribute__((noreturn)) void
usage(FILE *out, int status)
{
	fprintf(out, "usage: pymaild [-dnv] [-f file]\n"
	    "       pymaild --help | --version\n");
	exit(status);
}

/* The long options stand alone: getopt(3) knows none of them. */
static void
long_option(int argc, char *argv[])
{
	if (argc != 2)
		return;
	if (strcmp(argv[1], "--help") == 0)
		usage(stdout, 0);
	if (strcmp(argv[1], "--version") == 0) {
		printf("pymaild %s\n", PYMAILD_VERSION);
		exit(0);
	}
}

static int
bind_one(const char *addr, int port, int kind, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		snprintf(err, errlen, "bad listen address %s", addr);
		return -1;
	}
	if (nlisteners == MAX_LISTENERS) {
		snprintf(err, errlen, "too many listen addresses");
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		snprintf(err, errlen, "cannot listen on %s port %d: %s",
		    addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	listeners[nlisteners].fd = fd;
	listeners[nlisteners].kind = kind;
	nlisteners++;
	return 0;
}

/* The ports of TLS; 0 leaves one closed, and none opens without tls. */
static void
bind_tls(const char *addr)
{
	const struct { int port, kind; } ports[] = {
		{ env->conf.submissionport, LISTEN_SUBMISSION },
		{ env->conf.smtpsport, LISTEN_SMTPS },
		{ env->conf.pop3sport, LISTEN_POP3S },
	};
	char	err[256];
	size_t	i;

	if (env->conf.ntls == 0)
		return;
	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (ports[i].port != 0 && bind_one(addr, ports[i].port,
		    ports[i].kind, err, sizeof(err)) == -1)
			fatalx("%s", err);
}

static void
bind_all(void)
{
	char	err[256];
	size_t	i;

	for (i = 0; i < env->conf.nlisten; i++) {
		if (bind_one(env->conf.listen[i], env->conf.smtpserverport,
		    LISTEN_SMTP, err, sizeof(err)) == -1 ||
		    bind_one(env->conf.listen[i], env->conf.pop3serverport,
		    LISTEN_POP3, err, sizeof(err)) == -1)
			fatalx("%s", err);
		bind_tls(env->conf.listen[i]);
	}
}

/*
 * Written as root, often in a folder others may write to: a temporary
 * name nobody can guess, made with O_EXCL, so no link planted there can
 * take root's write elsewhere; rename replaces a link, never follows it.
 */
static void
write_pidfile(void)
{
	const char	*path = env->conf.pidfile;
	char		 tmp[PATH_MAX], dir[PATH_MAX], buf[32];
	int		 fd, len;

	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    sizeof(tmp))
		fatalx("pidfile path too long: %s", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		fatal("cannot write pidfile %s", path);
	if (fchmod(fd, 0644) == -1 || write_full(fd, buf, len) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1 || rename(tmp, path) == -1) {
		unlink(tmp);
		fatal("cannot write pidfile %s", path);
	}
	strlcpy(dir, path, sizeof(dir));
	if (fsync_dir(dirname(dir)) == -1)
		log_warn("fsync the folder of %s", path);
}

static void
lookup_account(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd	*pw;

	if (geteuid() != 0) {
		*uid = geteuid();
		*gid = getegid();
		return;
	}
	if ((pw = getpwnam(name)) == NULL)
		fatalx("user %s does not exist (needed when run as root)",
		    name);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

static void
make_folders(void)
{
	uid_t	quid, ouid;
	gid_t	qgid, ogid;
	uid_t	own = geteuid() == 0 ? env->uid : (uid_t)-1;

	lookup_account(env->conf.queueuser, &quid, &qgid);
	/* Not used here: a missing account stops the start with its name. */
	lookup_account(env->conf.outbounduser, &ouid, &ogid);
	if (dir_ensure(env->conf.maildir, 0700, own, env->gid) == -1)
		fatal("cannot create maildir %s", env->conf.maildir);
	if (dir_ensure(env->conf.spooldir, 0700,
	    geteuid() == 0 ? quid : (uid_t)-1, qgid) == -1)
		fatal("cannot create spooldir %s", env->conf.spooldir);
	/* smtpd, pop3d, mxcache and outbound chroot into an empty folder. */
	if (geteuid() == 0 && dir_ensure("/var/empty", 0755, 0, 0) == -1)
		fatal("cannot create /var/empty");
}

/* Opened as root and then given to `user` (logfile.c). */
static int
open_log(void)
{
	const char	*path = env->conf.logfile;
	char		 err[PATH_MAX + 64];
	int		 fd;

	if (env->foreground)
		return dup(STDERR_FILENO);
	/*
	 * A daemon logging to syslog keeps nothing of its starter's
	 * terminal: a helper holding it would keep a pipe from
	 * `pymailadm start | ...` open for ever.
	 */
	if (strcmp(path, "syslog") == 0) {
		if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
			fatal("/dev/null");
		return fd;
	}
	if ((fd = logfile_open(path, err, sizeof(err))) == -1)
		fatalx("logfile: %s", err);
	return fd;
}

static uint32_t
child_flags(void)
{
	uint32_t	flags = 0;

	if (env->foreground)
		flags |= PROCF_FOREGROUND;
	if (env->verbose)
		flags |= PROCF_VERBOSE;
	if (!env->foreground && strcmp(env->conf.logfile, "syslog") == 0)
		flags |= PROCF_SYSLOG;
	return flags;
}

static void	child_closed(struct chan *);
static int	child_dispatch(struct chan *, struct imsg *);

static void
start_children(int logfd)
{
	int	 pairs[PROC_COUNT][PROC_COUNT][2];
	int	 peerfds[PROC_COUNT];
	int	 toparent[2], a, b, i;
	char	 path[PATH_MAX];
	struct child *c;

	memset(pairs, -1, sizeof(pairs));
	for (a = PROC_SMTPD; a < PROC_COUNT; a++)
		for (b = a + 1; b < PROC_COUNT; b++)
			if (proc_may_talk(a, b) && socketpair(AF_UNIX,
			    SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[a][b]) == -1)
				fatal("socketpair");
	for (a = PROC_SMTPD; a < PROC_COUNT; a++) {
		c = &env->children[a];
		c->role = a;
		if (proc_helper_path(proc_names[a], path, sizeof(path)) == -1)
			fatalx("cannot find the %s helper (looked next to "
			    "pymaild and in %s)", proc_names[a], LIBEXECDIR);
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    toparent) == -1)
			fatal("socketpair");
		for (b = 0; b < PROC_COUNT; b++)
			peerfds[b] = b == PROC_PARENT ? -1 :
			    a < b ? pairs[a][b][0] : pairs[b][a][1];
		c->pid = proc_spawn(path, a, toparent[1], peerfds, logfd);
		close(toparent[1]);
		chan_init(&c->chan, env->base, toparent[0], proc_names[a],
		    child_dispatch, child_closed, c);
		c->chan.takes_fd = request_takes_fd;
		c->chan.burst = store_burst;
		if (proc_send_conf(&c->chan.ib, IMSG_CONF, env->conftext,
		    env->conf.path, child_flags()) == -1)
			fatal("cannot send the config to %s", proc_names[a]);
		chan_kick(&c->chan);
	}
	for (a = 0; a < PROC_COUNT; a++)
		for (b = 0; b < PROC_COUNT; b++)
			for (i = 0; i < 2; i++)
				if (pairs[a][b][i] != -1)
					close(pairs[a][b][i]);
}

/*
 * Hand a helper its listeners once it said hello, and keep no copy: once
 * the protocol processes close theirs, new connections are refused. Not
 * earlier: a helper reads its configuration before its channel exists,
 * and what came after it in that read would be lost.
 */
static void
send_listeners(enum proc_role role)
{
	int	i;

	for (i = 0; i < nlisteners; i++) {
		if (listeners[i].fd == -1 || role != (listeners[i].kind ==
		    LISTEN_POP3 || listeners[i].kind == LISTEN_POP3S ?
		    PROC_POP3D : PROC_SMTPD))
			continue;
		chan_compose(&env->children[role].chan, IMSG_LISTEN, 0,
		    listeners[i].fd, &listeners[i].kind, sizeof(uint32_t));
		listeners[i].fd = -1;
	}
}

static void
drop_parent_privs(void)
{
	if (geteuid() != 0) {
		log_warnx("warning: not started as root: no chroot and no "
		    "change of user; every process runs as uid %d",
		    (int)geteuid());
		return;
	}
	if (setgroups(1, &env->gid) == -1 ||
	    setresgid(env->gid, env->gid, env->gid) == -1 ||
	    setresuid(env->uid, env->uid, env->uid) == -1)
		fatal("cannot drop privileges to %s", env->conf.user);
	if (setuid(0) != -1)
		fatalx("privileges could be regained after the drop");
	proc_after_setuid();
}

static int
all_ready(void)
{
	int	r;

	for (r = PROC_SMTPD; r < PROC_COUNT; r++)
		if (!env->children[r].ready)
			return 0;
	return 1;
}

static void
tell_starter(const char *msg)
{
	if (env->readyfd == -1)
		return;
	if (write(env->readyfd, msg, strlen(msg)) == -1)
		log_debug("starter is gone");
	close(env->readyfd);
	env->readyfd = -1;
}

/* Scales with maxsessions, so a large setting is no flood. */
static uint32_t
child_requests_max(void)
{
	uint64_t	n = 2 * (uint64_t)env->conf.maxsessions;

	return MAX(CHILD_REQUESTS_MIN, MIN(n, UINT32_MAX /
	    CHILD_OUT_MSGS_PER_REQ));
}

int
child_request_begin(struct child *c)
{
	if (c->requests >= child_requests_max()) {
		log_warnx("%s (pid %d) has %u requests waiting for an answer "
		    "already: a flood", proc_names[c->role], (int)c->pid,
		    c->requests);
		return -1;
	}
	c->requests++;
	return 0;
}

void
child_request_done(enum proc_role r)
{
	if (env->children[r].requests > 0)
		env->children[r].requests--;
}

/* Our answers pile up for a child that reads nothing. */
static int
child_output_ok(struct child *c)
{
	const struct imsgbuf	*ib = &c->chan.ib;

	if (ib->wqueued <= CHILD_OUT_BYTES_MAX && ib->wcount <=
	    (size_t)child_requests_max() * CHILD_OUT_MSGS_PER_REQ)
		return 1;
	log_warnx("%s (pid %d) reads nothing: %zu answers (%zu bytes) wait "
	    "for it", proc_names[c->role], (int)c->pid, ib->wcount,
	    ib->wqueued);
	return 0;
}

/* A helper says it is ready: it gets its listeners. */
int
parent_hello(struct child *c, struct imsg *im)
{
	struct req_hello	rq;

	if (req_read_hello(im->data, im->datalen, &rq) == -1 ||
	    rq.role != c->role || c->ready)
		return -1;
	c->ready = 1;
	log_debug("%s ready (pid %d)", proc_names[c->role], (int)c->pid);
	tlskeys_hello(c);
	tickets_hello(c);
	dkimkeys_hello(c);
	send_listeners(c->role);
	if (all_ready()) {
		log_info("pymaild started: pid=%d smtp=%d pop3=%d",
		    (int)getpid(), env->conf.smtpserverport,
		    env->conf.pop3serverport);
		tell_starter("ok\n");
	}
	return 0;
}

static int
child_dispatch(struct chan *ch, struct imsg *im)
{
	struct child	*c = ch->arg;

	if (request_dispatch(c, im) == -1)
		return -1;
	if (ch->active && !child_output_ok(c))
		return -1;
	return 0;
}

/*
 * In a stop, outbound and mxcache follow queued out: seeing its channel
 * close, they may leave before our request to do so reaches them.
 */
static int
expected_to_leave(const struct child *c)
{
	if (c->asked)
		return 1;
	return env->stopping && env->children[PROC_QUEUED].asked &&
	    (c->role == PROC_OUTBOUND || c->role == PROC_MXCACHE);
}

static void
child_closed(struct chan *ch)
{
	struct child	*c = ch->arg;

	if (ch->failure != NULL)
		parent_fail(c, ch->failure);
	else if (!expected_to_leave(c))
		parent_fail(c, "closed its channel without being asked to");
}

/* chan_send's policy: what cannot be queued ends the daemon (exit 1);
 * -1 when the child's channel is closed already (and we are stopping). */
int
parent_send(enum proc_role r, uint32_t type, struct msgbuild *mb, int fd)
{
	return chan_send(&env->children[r].chan, mb, type, 0, fd);
}

static int
children_left(void)
{
	int	r, n = 0;

	for (r = PROC_SMTPD; r < PROC_COUNT; r++)
		if (env->children[r].pid > 0 && !env->children[r].exited)
			n++;
	return n;
}

static __attribute__((noreturn)) void
finish(void)
{
	control_cleanup();
	/* Only works when the folder is ours; pymailadm stop tidies up. */
	unlink(env->conf.pidfile);
	if (env->failed) {
		log_warnx("pymaild stopped after a failure");
		exit(1);
	}
	log_info("pymaild stopped");
	exit(0);
}

static void
ask_to_stop(enum proc_role r)
{
	struct msgbuild	mb;

	env->children[r].asked = 1;
	mb_init(&mb);
	parent_send(r, IMSG_SHUTDOWN, &mb, -1);
}

/*
 * Helpers still there after the grace time get SIGKILL, and the parent
 * exits without waiting for them: one of another account (queued, as
 * root) cannot be signalled from here, and a parent that waited for it
 * would never end. pymailadm stop, as root, ends such a helper by PID.
 */
static void
stop_timeout(int fd, short ev, void *arg)
{
	struct child	*c;
	int		 r;

	log_warnx("helpers did not stop within %d s; killing them",
	    STOP_GRACE_SEC);
	env->failed = 1;
	for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
		c = &env->children[r];
		if (c->pid > 0 && !c->exited && kill(c->pid, SIGKILL) == -1)
			log_warn("cannot kill %s (pid %d)", proc_names[r],
			    (int)c->pid);
	}
	finish();
}

void
parent_fail(struct child *c, const char *why)
{
	if (!env->failed)
		log_warnx("%s (pid %d): %s; stopping pymaild (fail closed)",
		    proc_names[c->role], (int)c->pid, why);
	env->failed = 1;
	parent_stop(why);
}

void
parent_stop(const char *why)
{
	struct timeval	tv = { STOP_GRACE_SEC, 0 };

	if (env->stopping)
		return;
	env->stopping = 1;
	log_info("stopping: %s", why);
	tell_starter("helper failed to start; see the log\n");
	/* The protocol processes first: their sessions may still commit
	 * to queued. queued and mxcache follow once they are gone. */
	ask_to_stop(PROC_SMTPD);
	ask_to_stop(PROC_POP3D);
	evtimer_set(&ev_stop, stop_timeout, NULL);
	event_base_set(env->base, &ev_stop);
	evtimer_add(&ev_stop, &tv);
	if (children_left() == 0)
		finish();
}

/*
 * The stages of a stop: once no session is left, the queue goes; once
 * the queue is gone (it waits for the relaying under way), the outbound
 * client and the MX cache it asks.
 */
static void
stop_backend(void)
{
	static int	sent, relay_sent;

	if (!env->children[PROC_SMTPD].exited ||
	    !env->children[PROC_POP3D].exited)
		return;
	if (!sent) {
		sent = 1;
		ask_to_stop(PROC_QUEUED);
	}
	if (relay_sent || !env->children[PROC_QUEUED].exited)
		return;
	relay_sent = 1;
	ask_to_stop(PROC_OUTBOUND);
	ask_to_stop(PROC_MXCACHE);
}

static void
describe_exit(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status %d", status);
}

static void
on_sigchld(int sig, short ev, void *arg)
{
	char	 what[64];
	pid_t	 pid;
	int	 status, r;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
			if (env->children[r].pid != pid)
				continue;
			env->children[r].exited = 1;
			describe_exit(what, sizeof(what), status);
			if (expected_to_leave(&env->children[r]) &&
			    WIFEXITED(status) && WEXITSTATUS(status) == 0)
				log_debug("%s exited (%s)", proc_names[r],
				    what);
			else {
				log_warnx("helper %s (pid %d) died: %s; "
				    "stopping pymaild", proc_names[r],
				    (int)pid, what);
				parent_fail(&env->children[r],
				    "a helper process died");
			}
		}
	}
	if (children_left() == 0)
		finish();
	else if (env->stopping)
		stop_backend();
}

static void
on_signal(int sig, short ev, void *arg)
{
	char	err[512];

	if (sig == SIGHUP) {
		/* The log first: a bad configuration must not keep the
		 * daemon writing to a file logrotate moved away. */
		logfile_reopen(err, sizeof(err));
		if (parent_reload(err, sizeof(err)) == -1)
			log_warnx("reload failed, keeping the old "
			    "configuration: %s", err);
		return;
	}
	parent_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
warn_changed(const struct config *o, const struct config *n)
{
	int	changed = o->smtpserverport != n->smtpserverport ||
	    o->pop3serverport != n->pop3serverport ||
	    o->submissionport != n->submissionport ||
	    o->smtpsport != n->smtpsport || o->pop3sport != n->pop3sport ||
	    o->nlisten != n->nlisten ||
	    strcmp(o->user, n->user) != 0 ||
	    strcmp(o->queueuser, n->queueuser) != 0 ||
	    strcmp(o->outbounduser, n->outbounduser) != 0 ||
	    strcmp(o->maildir, n->maildir) != 0 ||
	    strcmp(o->spooldir, n->spooldir) != 0 ||
	    strcmp(o->mxcachefile, n->mxcachefile) != 0 ||
	    strcmp(o->logfile, n->logfile) != 0;

	if (changed)
		log_warnx("reload: listen addresses, ports, users, folders "
		    "and the log file change only at the next restart");
}

int
parent_reload(char *err, size_t errlen)
{
	struct config	 nconf;
	char		*text;
	int		 r, hostfd;

	if (file_read_all(env->confpath, 1024 * 1024, &text, NULL) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", env->confpath,
		    strerror(errno));
		return -1;
	}
	if (config_load_string(text, env->confpath, &nconf, err,
	    errlen) == -1) {
		free(text);
		return -1;
	}
	/* A new name for the Maildir files: only while no host has it. */
	hostfd = -1;
	if (strcmp(nconf.serverhostname, env->conf.serverhostname) != 0 &&
	    (hostfd = hostlock_open(env->conf.maildir, nconf.serverhostname,
	    env->uid, env->gid, err, errlen)) == -1) {
		config_free(&nconf);
		free(text);
		return -1;
	}
	if (tlskeys_reload(&nconf, err, errlen) == -1 ||
	    relayauth_check(&nconf, err, errlen) == -1 ||
	    dkimkeys_reload(&nconf, err, errlen) == -1) {
		if (hostfd != -1)
			close(hostfd);
		config_free(&nconf);
		free(text);
		return -1;
	}
	if (hostfd != -1)
		hostlock_keep(hostfd);
	warn_changed(&env->conf, &nconf);
	/* Keep what cannot change without a restart. */
	free(nconf.maildir);
	nconf.maildir = xstrdup(env->conf.maildir);
	free(nconf.spooldir);
	nconf.spooldir = xstrdup(env->conf.spooldir);
	free(nconf.mxcachefile);
	nconf.mxcachefile = xstrdup(env->conf.mxcachefile);
	/* The helpers' log goes where it went (syslog or our file). */
	free(nconf.logfile);
	nconf.logfile = xstrdup(env->conf.logfile);
	config_free(&env->conf);
	env->conf = nconf;
	free(env->conftext);
	env->conftext = text;
	log_setlevel(env->verbose ? 3 : env->conf.loglevel);
	for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
		proc_send_conf(&env->children[r].chan.ib, IMSG_RELOAD,
		    env->conftext, env->confpath, child_flags());
		chan_kick(&env->children[r].chan);
	}
	store_refresh_users();
	tickets_rotate();
	dkimkeys_commit();
	log_info("configuration reloaded from %s", env->confpath);
	return 0;
}

/* Is path the folder top or inside it? Both absolute and clean. */
static int
path_inside(const char *path, const char *top)
{
	size_t	len = strlen(top);

	return strncmp(path, top, len) == 0 &&
	    (path[len] == '\0' || path[len] == '/');
}

/*
 * With several hosts on one maildir, what is each host's own must not
 * live in it: two hosts' queues in one folder would take each other's
 * messages, and their MX caches would overwrite each other's.
 */
static void
shared_store_warnings(const struct config *c)
{
	if (path_inside(c->spooldir, c->maildir))
		fprintf(stderr, "%s: warning: spooldir %s lies inside the "
		    "shared maildir %s: each host needs a local spool "
		    "(set spooldir)\n", c->path, c->spooldir, c->maildir);
	if (path_inside(c->mxcachefile, c->maildir))
		fprintf(stderr, "%s: warning: mxcachefile %s lies inside the "
		    "shared maildir %s: the hosts would overwrite each "
		    "other's MX cache (set mxcachefile)\n", c->path,
		    c->mxcachefile, c->maildir);
}

static void
check_only(void)
{
	struct userdb	db;
	char		err[512];

	if (geteuid() == 0) {
		if (getpwnam(env->conf.user) == NULL)
			fatalx("%s: user '%s' does not exist (needed when run "
			    "as root)", env->conf.path, env->conf.user);
		if (getpwnam(env->conf.queueuser) == NULL)
			fatalx("%s: queueuser '%s' does not exist (needed "
			    "when run as root)", env->conf.path,
			    env->conf.queueuser);
		if (getpwnam(env->conf.outbounduser) == NULL)
			fatalx("%s: outbounduser '%s' does not exist "
			    "(needed when run as root)", env->conf.path,
			    env->conf.outbounduser);
	}
	if (userdb_load(env->conf.maildir, &db, err, sizeof(err)) == 0) {
		if (userdb_find(&db, env->conf.postmaster) == NULL)
			fprintf(stderr, "%s: warning: postmaster user '%s' "
			    "does not exist: mail to postmaster@ will "
			    "bounce\n", env->conf.path, env->conf.postmaster);
		userdb_free(&db);
	} else
		fprintf(stderr, "warning: %s\n", err);
	if (env->conf.sharedstore)
		shared_store_warnings(&env->conf);
	if (env->conf.ntls > 0 && tlskeys_check(&env->conf, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "pymaild: %s\n", err);
		exit(1);
	}
	if (relayauth_check(&env->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "pymaild: smtprelayauth %s\n", err);
		exit(1);
	}
	if (dkimkeys_check(&env->conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "pymaild: %s\n", err);
		exit(1);
	}
	printf("%s: configuration OK\n", env->conf.path);
	exit(0);
}

/*
 * Without -d: fork; the original waits until the daemon listens and its
 * helpers said hello (or failed), so `pymailadm start` can report it.
 */
static void
daemonize(void)
{
	char	buf[256];
	int	p[2], devnull;
	ssize_t	n;
	pid_t	pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0) {
		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		if (n > 0 && strncmp(buf, "ok\n", 3) == 0)
			exit(0);
		buf[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "pymaild: failed to start: %s",
		    n > 0 ? buf : "see the log\n");
		exit(1);
	}
	close(p[0]);
	env->readyfd = p[1];
	setsid();
	if ((devnull = open("/dev/null", O_RDWR)) != -1) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		dup2(devnull, STDERR_FILENO);
		if (devnull > 2)
			close(devnull);
	}
}

static void
load_config_or_die(const char *path)
{
	char	err[512];

	if (file_read_all(path, 1024 * 1024, &env->conftext, NULL) == -1) {
		fprintf(stderr, "pymaild: %s: cannot read: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	if (config_load_string(env->conftext, path, &env->conf, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "pymaild: %s\n", err);
		exit(1);
	}
}

/*
 * Every session holds a descriptor: take the hard limit, so maxsessions
 * can be reached, and say so when it still cannot.
 */
static void
raise_fd_limit(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit RLIMIT_NOFILE");
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)env->conf.maxsessions + 64)
		log_warnx("warning: the open file limit (%llu) is below "
		    "maxsessions (%d): sessions beyond it are refused",
		    (unsigned long long)rl.rlim_cur, env->conf.maxsessions);
}

static void
setup_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal_set(&ev_sigterm, SIGTERM, on_signal, NULL);
	signal_set(&ev_sigint, SIGINT, on_signal, NULL);
	signal_set(&ev_sighup, SIGHUP, on_signal, NULL);
	signal_set(&ev_sigchld, SIGCHLD, on_sigchld, NULL);
	event_base_set(env->base, &ev_sigterm);
	event_base_set(env->base, &ev_sigint);
	event_base_set(env->base, &ev_sighup);
	event_base_set(env->base, &ev_sigchld);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal_add(&ev_sighup, NULL);
	signal_add(&ev_sigchld, NULL);
}

int
main(int argc, char *argv[])
{
	extern char	**environ;
	const char	 *confpath = "/etc/pymaild.conf";
	int		  ch, checkonly = 0, logfd, ctlfd, hostfd;
	char		  err[1024];
	pid_t		  other;

	env = xcalloc(1, sizeof(*env));
	env->readyfd = -1;
	long_option(argc, argv);
	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd': env->foreground = 1; break;
		case 'f': confpath = xstrdup(optarg); break;
		case 'n': checkonly = 1; break;
		case 'v': env->verbose = 1; break;
		default: usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
	setproctitle_init(argc, argv, environ);
	env->confpath = confpath;
	load_config_or_die(confpath);
	if (checkonly)
		check_only();
	if ((other = pidfile_running(env->conf.pidfile)) != 0) {
		fprintf(stderr, "pymaild: already running, PID is %d\n",
		    (int)other);
		exit(1);
	}
	log_init(LOG_TO_STDERR, env->verbose ? 3 : env->conf.loglevel,
	    "pymaild");
	lookup_account(env->conf.user, &env->uid, &env->gid);
	make_folders();
	/* Before the fork, so a refusal reaches the starter's terminal. */
	if ((hostfd = hostlock_open(env->conf.maildir,
	    env->conf.serverhostname, env->uid, env->gid, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	hostlock_keep(hostfd);
	/* As root: a key file is often readable by root only. */
	tlskeys_init();
	relayauth_init();
	dkimkeys_init();
	raise_fd_limit();
	bind_all();
	ctlfd = control_listen(env->conf.controlsocket, env->uid, env->gid);
	/* Before the fork, so a refusal reaches the starter's terminal. */
	logfd = open_log();
	if (!env->foreground)
		daemonize();
	if (logfd != STDERR_FILENO && !env->foreground &&
	    strcmp(env->conf.logfile, "syslog") != 0)
		dup2(logfd, STDERR_FILENO);
	if (!env->foreground && strcmp(env->conf.logfile, "syslog") == 0)
		log_init(LOG_TO_SYSLOG, log_getlevel(), "pymaild");
	write_pidfile();
	env->started = time(NULL);
	env->base = event_base_new();
	tickets_init(env->base);
	setup_signals();
	start_children(logfd);
	close(logfd);
	drop_parent_privs();
	if (env->conf.ntls == 0)
		log_warnx("warning: no tls configured: SMTP AUTH and POP3 "
		    "passwords cross the network in plaintext");
	setproctitle("-pymaild: parent");
	auth_init(env->base, 2);
	tlskeys_start();
	store_init();
	mxstore_init();
	deliver_init();
	control_start(ctlfd);
	event_base_dispatch(env->base);
	return 0;
}
