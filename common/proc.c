#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "util.h"

int
proc_helper_path(const char *name, char *buf, size_t len)
{
	char	 self[PATH_MAX], dir[PATH_MAX];
	ssize_t	 n;
	size_t	 i;
	const char *fmts[] = {
		"%s/../libexec/pymaild/%s",	/* installed under PREFIX */
		"%s/../%s/%s",			/* the build tree */
	};

#ifdef PYMAILD_TESTING
	const char *testdir = getenv("PYMAILD_TEST_HELPERDIR");

	if (testdir != NULL) {
		snprintf(buf, len, "%s/%s", testdir, name);
		return access(buf, X_OK);
	}
#endif
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		strlcpy(dir, dirname(self), sizeof(dir));
		for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
			if (i == 0)
				snprintf(buf, len, fmts[i], dir, name);
			else
				snprintf(buf, len, fmts[i], dir, name, name);
			if (access(buf, X_OK) == 0)
				return 0;
		}
	}
	snprintf(buf, len, "%s/%s", LIBEXECDIR, name);
	return access(buf, X_OK);
}

pid_t
proc_spawn(const char *path, enum proc_role role, int parentfd,
    const int *peerfds, int logfd)
{
	pid_t	 pid;
	int	 r, target;
	char	*argv[2];

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0)
		return pid;

	/* Move every descriptor out of the target range first. */
	if ((parentfd = fcntl(parentfd, F_DUPFD, 64)) == -1)
		fatal("dup");
	if (logfd != STDERR_FILENO && dup2(logfd, STDERR_FILENO) == -1)
		fatal("dup2 log");
	if (dup2(parentfd, PROC_PARENT_FD) == -1)
		fatal("dup2 parent channel");
	for (r = PROC_SMTPD; r < PROC_COUNT; r++) {
		if (peerfds == NULL || peerfds[r] == -1)
			continue;
		if ((target = proc_peer_fd(role, r)) == -1)
			fatalx("no channel %s -> %s", proc_names[role],
			    proc_names[r]);
		if (dup2(peerfds[r], target) == -1)
			fatal("dup2 peer channel");
	}
	closefrom(PROC_PARENT_FD + PROC_COUNT);
	/* Marks an exec by us; with fd 3 a socket it refuses hand starts. */
	setenv("PYMAILD_CHILD", "1", 1);
	argv[0] = (char *)proc_names[role];
	argv[1] = NULL;
	execv(path, argv);
	fatal("exec %s", path);
}

int
proc_send_conf(struct imsgbuf *ib, int type, const char *text,
    const char *path, uint32_t flags)
{
	struct msgbuild	 mb;
	size_t		 len = strlen(text);
	int		 fd;

	if ((fd = memfd_create("pymaild.conf", MFD_CLOEXEC)) == -1)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	mb_init(&mb);
	mb_str(&mb, path);
	mb_u32(&mb, flags);
	return mb_send(&mb, ib, type, 0, fd);
}

int
proc_recv_conf(const struct imsg *im, struct config *conf, uint32_t *flags,
    char *err, size_t errlen)
{
	struct msgread	 mr;
	char		 path[PATH_MAX], *text;
	struct stat	 st;
	ssize_t		 n;
	int		 r;

	mr_init(&mr, im);
	mr_str(&mr, path, sizeof(path));
	*flags = mr_u32(&mr);
	if (mr_end(&mr) == -1 || im->fd == -1 || fstat(im->fd, &st) == -1 ||
	    st.st_size > 1024 * 1024) {
		snprintf(err, errlen, "malformed config message");
		return -1;
	}
	text = xmalloc(st.st_size + 1);
	n = pread(im->fd, text, st.st_size, 0);
	if (n != st.st_size) {
		free(text);
		snprintf(err, errlen, "cannot read config from parent");
		return -1;
	}
	text[n] = '\0';
	r = config_load_string(text, path, conf, err, errlen);
	free(text);
	return r;
}

static int
started_by_parent(void)
{
	struct stat	st;
	int		type;
	socklen_t	len = sizeof(type);

	if (fstat(PROC_PARENT_FD, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	if (getsockopt(PROC_PARENT_FD, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return 0;
	return type == SOCK_STREAM;
}

void
proc_child_start(int argc, char **argv, enum proc_role role,
    struct imsgbuf *ib, struct config *conf, uint32_t *flags)
{
	extern char	**environ;
	struct imsg	 *im;
	char		  err[512];

	if (!started_by_parent() || getenv("PYMAILD_CHILD") == NULL) {
		fprintf(stderr, "%s: must be started by pymaild\n",
		    proc_names[role]);
		exit(1);
	}
	setproctitle_init(argc, argv, environ);
	setproctitle("-pymaild: %s", proc_names[role]);
	log_init(LOG_TO_STDERR, 2, proc_names[role]);

	imsgbuf_init(ib, PROC_PARENT_FD);
	im = xmalloc(sizeof(*im));
	if (imsg_read_one(ib, im) != 1 || im->hdr.type != IMSG_CONF)
		fatalx("no configuration from the parent");
	if (proc_recv_conf(im, conf, flags, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (im->fd != -1)
		close(im->fd);
	free(im);
	log_init((*flags & PROCF_SYSLOG) ? LOG_TO_SYSLOG : LOG_TO_STDERR,
	    (*flags & PROCF_VERBOSE) ? 3 : conf->loglevel, proc_names[role]);
	set_nonblock(PROC_PARENT_FD);
}

void
proc_drop_privs(const char *user, const char *chrootdir)
{
	struct passwd	*pw;
	uid_t		 ruid, euid, suid;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	if (chrootdir != NULL) {
		if (chroot(chrootdir) == -1)
			fatal("chroot %s", chrootdir);
		if (chdir("/") == -1)
			fatal("chdir /");
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
	/* Make sure there is no way back. */
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("privileges could be regained after the drop");
	if (getresuid(&ruid, &euid, &suid) == -1 || ruid != pw->pw_uid ||
	    euid != pw->pw_uid || suid != pw->pw_uid)
		fatalx("uid is not %s after the drop", user);
}

void
proc_after_setuid(void)
{
#ifdef PYMAILD_SANITIZE
	if (prctl(PR_SET_DUMPABLE, 1) == -1)
		log_warn("prctl PR_SET_DUMPABLE");
#endif
}

#ifndef PYMAILD_SANITIZE
/*
 * No pymaild program may be dumpable: each one holds passwords, mail or
 * keys, and a dumpable process can be read by any other process of its
 * account (ptrace, /proc/PID/mem) and leaves a core file. Only a change
 * of user clears the flag by itself, and not every start has one (an
 * unprivileged start, a helper's exec resets it), so every program that
 * links this file clears it before main() runs. Sanitizer builds stay
 * dumpable: LeakSanitizer must read its own process.
 */
static void	no_dump(void) __attribute__((constructor));

static void
no_dump(void)
{
	if (prctl(PR_SET_DUMPABLE, 0) == -1)
		abort();
}
#endif
