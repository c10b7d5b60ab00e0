/*
 * pymailadm remove, hold and release. With the daemon running, the
 * request goes over the control socket (the parent passes it to queued,
 * which knows what is under way and cancels it); stopped, pymailadm
 * changes the spool itself, as the queue's own user, and writes the
 * same log lines the daemon would.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "proc.h"
#include "proto.h"
#include "pymailadm.h"
#include "qop.h"
#include "util.h"

#define JNL_SEG_MAGIC	"pymaild journal segment\n"	/* queued/journal.c */

static int	logfd = -1;	/* the daemon's log file, when not syslog */
static int	log_errno;	/* why it did not open, told at first use */
static int	failed;

/* One line in the daemon's log, in its own format: who did what. */
static void
adm_log(const char *fmt, ...)
{
	char		 msg[512], stamp[32];
	struct tm	 tm;
	time_t		 now = time(NULL);
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(adm.conf.logfile, "syslog") == 0) {
		syslog(LOG_INFO, "%s", msg);
		return;
	}
	if (logfd == -1) {
		if (log_errno != 0)
			fprintf(stderr, "warning: cannot write to the log %s: "
			    "%s\n", adm.conf.logfile, strerror(log_errno));
		log_errno = 0;
		return;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	dprintf(logfd, "%s pymailadm[%d]: %s\n", stamp, (int)getpid(), msg);
}

static void
open_log(void)
{
	if (strcmp(adm.conf.logfile, "syslog") == 0) {
		openlog("pymailadm", LOG_PID, LOG_MAIL);
		return;
	}
	logfd = open(adm.conf.logfile, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (logfd == -1)
		log_errno = errno;
}

/*
 * As root, act as the queue's user from here on, so every file keeps
 * its owner; the log is opened first (it may be root's).
 */
static void
become_queueuser(void)
{
	struct passwd	*pw;

	open_log();
	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(adm.conf.queueuser)) == NULL)
		die("user '%s' (the config's `queueuser`) does not exist",
		    adm.conf.queueuser);
	/* As queued does: MAILDIR above it is not the queue user's to
	 * cross, so the spool is entered first and named "." from here. */
	if (chdir(adm.conf.spooldir) == -1)
		die("cannot enter the queue %s: %s", adm.conf.spooldir,
		    strerror(errno));
	free(adm.conf.spooldir);
	adm.conf.spooldir = xstrdup(".");
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		die("cannot act as %s: %s", adm.conf.queueuser,
		    strerror(errno));
	proc_after_setuid();
}

/*
 * After a crash the journal may hold messages whose files are not
 * there yet, and the next start puts them back: a removal made now
 * could be undone. Only a daemon that stopped cleanly leaves it void.
 */
static void
journal_must_be_void(void)
{
	char	path[PATH_MAX], head[sizeof(JNL_SEG_MAGIC) - 1];
	int	i, fd;
	ssize_t	n;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/journal/%d",
		    adm.conf.spooldir, i);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			if (errno == ENOENT)
				continue;
			die("cannot read %s: %s", path, strerror(errno));
		}
		n = read(fd, head, sizeof(head));
		close(fd);
		if (n == (ssize_t)sizeof(head) &&
		    memcmp(head, JNL_SEG_MAGIC, sizeof(head)) == 0)
			die("the queue's journal still holds messages (pymaild "
			    "did not stop cleanly): start pymaild and try again");
	}
}

static int
dir_sync(const char *dir)
{
	int	fd, r;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* The envelope first: data without one is dropped at the next start. */
static int
offline_remove(const struct envelope *e)
{
	char	path[PATH_MAX], dir[PATH_MAX];

	snprintf(path, sizeof(path), "%s/env/%s", adm.conf.spooldir, e->id);
	if (unlink(path) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s/env", adm.conf.spooldir);
	dir_sync(dir);
	snprintf(path, sizeof(path), "%s/msg/%s", adm.conf.spooldir, e->id);
	unlink(path);
	return 0;
}

/* Write-temp, fsync, rename: queued reads a whole envelope or the old
 * one. incoming/ is emptied at start, so a temp left by a crash goes. */
static int
offline_rewrite(const struct envelope *e)
{
	char	tmp[PATH_MAX], path[PATH_MAX], *text;
	int	fd, r = -1;

	if ((text = envelope_format(e)) == NULL)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s/incoming/%s.env", adm.conf.spooldir,
	    e->id);
	snprintf(path, sizeof(path), "%s/env/%s", adm.conf.spooldir, e->id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd != -1 && write_full(fd, text, strlen(text)) == 0 &&
	    fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		r = rename(tmp, path);
	}
	if (fd != -1)
		close(fd);
	if (r == -1)
		unlink(tmp);
	free(text);
	snprintf(tmp, sizeof(tmp), "%s/env", adm.conf.spooldir);
	return r == 0 ? dir_sync(tmp) : -1;
}

static void
offline_act(const struct qop *q, struct envelope *e)
{
	int	r;

	if (q->op == QOP_REMOVE)
		r = offline_remove(e);
	else if ((q->op == QOP_HOLD) == (e->held != 0)) {
		printf("%s was %s already\n", e->id,
		    e->held ? "held" : "not held");
		return;
	} else {
		e->held = q->op == QOP_HOLD;
		if (!e->held)
			e->next_attempt = 0;	/* due at the next start */
		r = offline_rewrite(e);
	}
	if (r == -1) {
		fprintf(stderr, "%s: %s\n", e->id, strerror(errno));
		failed = 1;
		return;
	}
	adm_log("queue id=%s result=%s by=uid:%u (pymailadm, pymaild "
	    "stopped)", e->id, qop_verb(q->op), (unsigned)q->uid);
	printf("%s %s\n", e->id, qop_verb(q->op));
}

static void
offline(struct qop *q, char **argids, int nargids)
{
	struct envelope	*e;
	char		*ids = NULL;
	size_t		 i, nids = 0, hits = 0;

	q->uid = getuid();
	become_queueuser();
	journal_must_be_void();
	queue_ids(&ids, &nids);
	for (i = 0; q->match == QMATCH_ID && i < (size_t)nargids; i++) {
		e = envelope_new("");
		if (queue_load(argids[i], e) == -1) {
			fprintf(stderr, "%s: no such message in the queue\n",
			    argids[i]);
			failed = 1;
		} else
			offline_act(q, e);
		envelope_free(e);
	}
	for (i = 0; q->match != QMATCH_ID && i < nids; i++) {
		e = envelope_new("");
		if (queue_load(ids + i * (QUEUE_ID_LEN + 1), e) == 0 &&
		    qop_matches(q, e)) {
			hits++;
			offline_act(q, e);
		}
		envelope_free(e);
	}
	free(ids);
	if (q->match != QMATCH_ID && hits == 0) {
		fprintf(stderr, "No queued message has a %s matching %s.\n",
		    q->match == QMATCH_FROM ? "sender" : "recipient",
		    q->pattern);
		failed = 1;
	}
}

/* One request (ids in chunks of QOP_IDS_MAX) to the running daemon. */
static void
online_one(int fd, const struct qop *q)
{
	struct msgbuild	 mb;
	const char	*text;
	int		 ok;

	qop_build(&mb, q, 0);
	text = ctl_request_data(fd, IMSG_CTL_QUEUE, mb.buf, mb.len, &ok);
	if (text == NULL)
		die("no answer from pymaild on %s", adm.conf.controlsocket);
	fputs(text, ok ? stdout : stderr);
	if (!ok)
		failed = 1;
}

static void
online(int fd, struct qop *q, char **ids, int nids)
{
	int	i;

	if (q->match != QMATCH_ID) {
		online_one(fd, q);
		return;
	}
	for (i = 0; i < nids; ) {
		for (q->nids = 0; i < nids && q->nids < QOP_IDS_MAX; i++)
			strlcpy(q->ids[q->nids++], ids[i], sizeof(q->ids[0]));
		online_one(fd, q);
	}
}

/*
 * Before reading the spool while the daemon runs: the messages of the
 * last half second live in queued's journal alone until it writes their
 * files; ask it to write them now, or a listing would miss them.
 */
#define SYNC_WAIT_MS	5000

void
queue_sync(void)
{
	struct qop	 q;
	struct msgbuild	 mb;
	const char	*text;
	int		 fd, ok;

	if ((fd = ctl_connect()) == -1)
		return;		/* stopped: the spool is all there is */
	memset(&q, 0, sizeof(q));
	q.op = QOP_SYNC;
	q.match = QMATCH_NONE;
	qop_build(&mb, &q, 0);
	text = ctl_request_within(fd, IMSG_CTL_QUEUE, mb.buf, mb.len, &ok,
	    SYNC_WAIT_MS);
	close(fd);
	if (text == NULL)
		fprintf(stderr, "pymailadm: no answer from pymaild on %s: the "
		    "newest messages may be missing\n", adm.conf.controlsocket);
	else if (!ok)
		fprintf(stderr, "pymailadm: %s", text);
}

static void
lowercase(char *s)
{
	for (; *s; s++)
		*s = tolower((unsigned char)*s);
}

static int
run(uint32_t op, const char *name, int argc, char **argv)
{
	static struct qop	q;
	int			i, fd;

	memset(&q, 0, sizeof(q));
	q.op = op;
	q.match = QMATCH_ID;
	if (argc == 2 && (strcmp(argv[0], "--from") == 0 ||
	    strcmp(argv[0], "--to") == 0)) {
		q.match = argv[0][2] == 'f' ? QMATCH_FROM : QMATCH_TO;
		if (strlcpy(q.pattern, argv[1], sizeof(q.pattern)) >=
		    sizeof(q.pattern) || !qop_pattern_ok(q.pattern))
			usage_error("%s: the pattern is too long or holds "
			    "control characters", name);
		argc = 0;
	} else if (argc == 0)
		usage_error("usage: %s ID... | --from PATTERN | --to PATTERN",
		    name);
	for (i = 0; i < argc; i++) {
		lowercase(argv[i]);
		if (!qop_id_ok(argv[i]))
			usage_error("%s: not a queue id (16 hex digits): %s",
			    name, argv[i]);
	}
	if ((fd = ctl_connect()) != -1) {
		online(fd, &q, argv, argc);
		close(fd);
	} else
		offline(&q, argv, argc);
	return failed;
}

int
cmd_remove(int argc, char **argv)
{
	return run(QOP_REMOVE, "remove", argc, argv);
}

int
cmd_hold(int argc, char **argv)
{
	return run(QOP_HOLD, "hold", argc, argv);
}

int
cmd_release(int argc, char **argv)
{
	return run(QOP_RELEASE, "release", argc, argv);
}
