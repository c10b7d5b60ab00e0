/*
 * The log file when logfile is a path. Every process writes its lines to
 * standard error, one write(2) each, and all of them hold the same file.
 * After logrotate moved it away, a reload or SIGHUP opens the path
 * again: the parent swaps its own standard error and hands each helper
 * the new descriptor (helpers are chrooted and open nothing), and each
 * helper confirms, so `pymailadm reload` can answer once no process
 * writes to the old file any more.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "pymaild.h"

/* The last reopen handed out, and what each helper confirmed. */
static uint32_t	log_generation;
static uint32_t	log_confirmed[PROC_COUNT];

/*
 * Never through a symbolic link, and only a regular file with one name:
 * a FIFO would block every process, a hard link would give away another
 * file. Opened as root at start (then given to `user`), as `user` later.
 */
int
logfile_open(const char *path, char *err, size_t errlen)
{
	struct stat	st;
	int		fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1) {
		snprintf(err, errlen, "%s is not a regular file with one name",
		    path);
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_SETFL, O_APPEND) == -1) {
		snprintf(err, errlen, "%s: fcntl: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (geteuid() == 0 && fchown(fd, env->uid, env->gid) == -1)
		log_warn("chown %s", path);
	return fd;
}

static int
logging_to_file(void)
{
	return !env->foreground && strcmp(env->conf.logfile, "syslog") != 0;
}

static int
child_alive(const struct child *c)
{
	return c->pid > 0 && !c->exited && c->chan.active;
}

/* Said in the old file and to syslog: whoever watches either sees it. */
static void
report_failure(const char *path, const char *why)
{
	log_warnx("log reopen file=%s result=failed reason=\"%s\"; still "
	    "writing to the old file", path, why);
	openlog("pymaild", LOG_PID, LOG_MAIL);
	syslog(LOG_ERR, "log reopen file=%s result=failed reason=\"%s\"; "
	    "still writing to the old file", path, why);
	closelog();
}

static void
hand_over(int fd)
{
	struct msgbuild	mb;
	int		r, copy;

	for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
		/* Nobody to wait for unless the message is on its way. */
		if (!child_alive(&env->children[r])) {
			log_confirmed[r] = log_generation;
			continue;
		}
		if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
			log_warn("log reopen: %s keeps the old file",
			    proc_names[r]);
			log_confirmed[r] = log_generation;
			continue;
		}
		mb_init(&mb);
		mb_u32(&mb, log_generation);
		if (parent_send(r, IMSG_LOG_REOPEN, &mb, copy) == -1)
			log_confirmed[r] = log_generation;
	}
}

/*
 * 0: nothing to reopen (syslog, or -d); -1: the old file stays, said
 * there, to syslog and in err; else the generation to wait for.
 */
int
logfile_reopen(char *err, size_t errlen)
{
	const char	*path = env->conf.logfile;
	int		 fd;

	if (!logging_to_file())
		return 0;
	if ((fd = logfile_open(path, err, errlen)) == -1) {
		report_failure(path, err);
		return -1;
	}
	log_generation++;
	log_info("log reopen file=%s generation=%u result=moving", path,
	    log_generation);
	if (dup2(fd, STDERR_FILENO) == -1) {
		snprintf(err, errlen, "%s: dup2: %s", path, strerror(errno));
		report_failure(path, err);
		close(fd);
		return -1;
	}
	hand_over(fd);
	close(fd);
	log_info("log reopen file=%s generation=%u result=ok", path,
	    log_generation);
	return log_generation;
}

/* Has every helper still running moved to generation gen? */
int
logfile_moved(uint32_t gen)
{
	int	r;

	for (r = PROC_SMTPD; r < PROC_COUNT; r++)
		if (child_alive(&env->children[r]) && log_confirmed[r] < gen)
			return 0;
	return 1;
}

/* The helpers that have not confirmed gen yet, for a warning. */
void
logfile_laggards(uint32_t gen, char *buf, size_t len)
{
	int	r;

	buf[0] = '\0';
	for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
		if (!child_alive(&env->children[r]) || log_confirmed[r] >= gen)
			continue;
		if (buf[0] != '\0')
			strlcat(buf, ",", len);
		strlcat(buf, proc_names[r], len);
	}
}

/* IMSG_LOG_REOPENED: a generation not handed out yet is a lie. */
int
logfile_confirmed(struct child *c, struct imsg *im)
{
	struct req_log_reopened	rq;

	if (req_read_log_reopened(im->data, im->datalen, &rq) == -1)
		return -1;
	if (rq.generation == 0 || rq.generation > log_generation) {
		log_warnx("%s confirmed log generation %u, which was never "
		    "sent", proc_names[c->role], rq.generation);
		return -1;
	}
	if (rq.generation > log_confirmed[c->role])
		log_confirmed[c->role] = rq.generation;
	control_log_moved();
	return 0;
}
