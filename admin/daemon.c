/*
 * Lifecycle commands: start runs pymaild, the others talk to it over the
 * control socket named in the config.
 */
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imsg.h"
#include "proto.h"
#include "pymailadm.h"
#include "util.h"

#define STOP_WAIT_MS	20000	/* the daemon gives sessions 10 s */
#define STOP_WAIT_TEXT	"20 s"
#define STOP_ANSWER_MS	5000	/* the stop request is answered at once */
#define HELPERS_MAX	16	/* children of the daemon we look after */

/* A process, and its start time so that a reused PID is not mistaken. */
struct proc_id {
	pid_t			pid;
	unsigned long long	start;
};

/* Connect to the daemon; -1 when nobody answers. */
int
ctl_connect(void)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, adm.conf.controlsocket,
	    sizeof(sun.sun_path)) >= sizeof(sun.sun_path))
		die("controlsocket path too long: %s", adm.conf.controlsocket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EACCES || errno == EPERM)
			die("%s: %s (run as root or as %s)",
			    adm.conf.controlsocket, strerror(errno),
			    adm.conf.user);
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait up to ms (-1: for ever) for something to read; 0 when nothing. */
static int
readable_within(int fd, int ms)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	int		r;

	while ((r = poll(&pfd, 1, ms)) == -1 && errno == EINTR)
		;
	return r != 0;
}

/* Send one request and return the reply's text (static); *ok set.
 * NULL when no answer came within ms (-1: wait for ever). */
const char *
ctl_request_within(int fd, uint32_t type, const void *data, size_t len,
    int *ok, int ms)
{
	static char	 text[IMSG_DATA_MAX + 1];
	struct imsgbuf	 ib;
	struct imsg	*im = xmalloc(sizeof(*im));

	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, type, 0, -1, data, len) == -1 ||
	    imsgbuf_flush_all(&ib) == -1) {
		free(im);
		die("no answer from pymaild on %s", adm.conf.controlsocket);
	}
	if (!readable_within(fd, ms)) {
		imsgbuf_clear(&ib);
		free(im);
		return NULL;
	}
	if (imsg_read_one(&ib, im) != 1) {
		free(im);
		die("no answer from pymaild on %s", adm.conf.controlsocket);
	}
	if (im->fd != -1)
		close(im->fd);
	*ok = im->hdr.type == IMSG_CTL_OK;
	memcpy(text, im->data, im->datalen);
	text[im->datalen] = '\0';
	imsgbuf_clear(&ib);
	free(im);
	return text;
}

const char *
ctl_request(int fd, uint32_t type, int *ok)
{
	return ctl_request_within(fd, type, NULL, 0, ok, -1);
}

const char *
ctl_request_data(int fd, uint32_t type, const void *data, size_t len,
    int *ok)
{
	return ctl_request_within(fd, type, data, len, ok, -1);
}

static int
connect_or_not_running(void)
{
	int	fd = ctl_connect();

	if (fd == -1)
		die("pymaild is not running.");
	return fd;
}

static int
try_path(char *buf, size_t len, const char *dir, const char *rel)
{
	if (strlcpy(buf, dir, len) >= len || strlcat(buf, rel, len) >= len)
		return 0;
	return access(buf, X_OK) == 0;
}

static void
pymaild_path(char *buf, size_t len)
{
	char	self[PATH_MAX], *dir;
	ssize_t	n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		dir = dirname(self);
		/* Installed side by side, or admin/ next to pymaild/. */
		if (try_path(buf, len, dir, "/pymaild") ||
		    try_path(buf, len, dir, "/../pymaild/pymaild"))
			return;
	}
	strlcpy(buf, "pymaild", len);
}

int
cmd_start(int argc, char **argv)
{
	char	path[PATH_MAX];
	pid_t	pid;
	int	fd, status;

	if (argc != 0)
		usage_error("usage: start");
	if ((fd = ctl_connect()) != -1 ||
	    (pid = pidfile_running(adm.conf.pidfile)) != 0) {
		if (fd != -1)
			close(fd);
		die("pymaild is already running.");
	}
	pymaild_path(path, sizeof(path));
	/* pymaild returns once it listens and its helpers are up. */
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execlp(path, "pymaild", "-f", adm.confpath, (char *)NULL);
		fprintf(stderr, "pymailadm: cannot run %s: %s\n", path,
		    strerror(errno));
		_exit(1);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		exit(1);	/* pymaild said why */
	if ((pid = pidfile_running(adm.conf.pidfile)) == 0)
		die("pymaild started but wrote no pidfile %s",
		    adm.conf.pidfile);
	printf("pymaild started, PID is %d\n", (int)pid);
	return 0;
}

/* The parent PID and start time of a process from /proc; -1 if gone. */
static int
proc_stat(pid_t pid, pid_t *ppid, unsigned long long *start)
{
	char		 path[64], buf[1024], *p;
	ssize_t		 n;
	int		 fd, ppidv;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) state ppid ..." and comm may hold anything. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u "
	    "%*u %*d %*d %*d %*d %*d %*d %llu", &ppidv, start) != 2)
		return -1;
	*ppid = ppidv;
	return 0;
}

/* The daemon's children as they are now: its helpers. */
static int
helpers_of(pid_t parent, struct proc_id *out, int max)
{
	struct dirent		*de;
	DIR			*d;
	pid_t			 pid, ppid;
	unsigned long long	 start;
	int			 n = 0;

	if ((d = opendir("/proc")) == NULL)
		return 0;
	while (n < max && (de = readdir(d)) != NULL) {
		if ((pid = strtol(de->d_name, NULL, 10)) <= 0 ||
		    proc_stat(pid, &ppid, &start) == -1 || ppid != parent)
			continue;
		out[n].pid = pid;
		out[n++].start = start;
	}
	closedir(d);
	return n;
}

#define LEFTOVER_GRACE_MS	1000
#define LEFTOVER_WAIT_MS	2000

static void
wait_gone(pid_t pid, long long ms)
{
	long long	deadline = now_ms() + ms;

	while (pid_alive(pid) && now_ms() < deadline)
		usleep(10000);
}

/*
 * As root, finish a stop the daemon could not: it runs as `user` and may
 * not signal a helper of another account (queued runs as queueuser). Only
 * processes that were its children when the stop began, still the same
 * ones (start time), are touched.
 */
static void
end_leftovers(const struct proc_id *kids, int n)
{
	pid_t			 ppid;
	unsigned long long	 start;
	long long		 grace = now_ms() + LEFTOVER_GRACE_MS;
	int			 i;

	/* Helpers of the daemon's own account die with it (parent-death
	 * signal): give that a moment before killing what is left. */
	for (i = 0; i < n; i++)
		wait_gone(kids[i].pid, MAX(0, grace - now_ms()));
	for (i = 0; i < n; i++) {
		if (proc_stat(kids[i].pid, &ppid, &start) == -1 ||
		    start != kids[i].start || !pid_alive(kids[i].pid))
			continue;
		if (kill(kids[i].pid, SIGKILL) == -1)
			fprintf(stderr, "pymailadm: cannot end helper PID %d: "
			    "%s\n", (int)kids[i].pid, strerror(errno));
		else
			fprintf(stderr, "pymailadm: helper PID %d outlived "
			    "pymaild: killed\n", (int)kids[i].pid);
	}
	/* A SIGKILL is delivered, not yet done: "stopped" means gone. */
	for (i = 0; i < n; i++)
		wait_gone(kids[i].pid, LEFTOVER_WAIT_MS);
}

/* The daemon ran unprivileged and may not remove these itself. */
static void
remove_leftover_files(pid_t pid)
{
	if (pid != 0 && pidfile_running(adm.conf.pidfile) == 0)
		unlink(adm.conf.pidfile);
	unlink(adm.conf.controlsocket);
}

/* A parent that does not stop at all: end it and its helpers, tidy up,
 * and still say that the stop failed. */
static __attribute__((noreturn)) void
kill_stuck_daemon(pid_t pid, const struct proc_id *kids, int nkids,
    const char *what)
{
	if (kill(pid, SIGKILL) == -1)
		die("pymaild (PID %d) %s", (int)pid, what);
	wait_gone(pid, 5000);
	end_leftovers(kids, nkids);
	remove_leftover_files(pid);
	die("pymaild (PID %d) %s: killed", (int)pid, what);
}

int
cmd_stop(int argc, char **argv)
{
	struct proc_id	 kids[HELPERS_MAX];
	const char	*reply;
	long long	 deadline;
	pid_t		 pid;
	int		 fd, ok, nkids = 0;

	if (argc != 0)
		usage_error("usage: stop");
	fd = connect_or_not_running();
	pid = pidfile_running(adm.conf.pidfile);
	if (pid != 0)
		nkids = helpers_of(pid, kids, HELPERS_MAX);
	/* A daemon that does not even answer is ended as a stuck one. */
	reply = ctl_request_within(fd, IMSG_CTL_STOP, NULL, 0, &ok,
	    STOP_ANSWER_MS);
	if (reply == NULL && pid != 0)
		kill_stuck_daemon(pid, kids, nkids,
		    "did not answer the stop request");
	if (reply == NULL)
		die("no answer from pymaild on %s", adm.conf.controlsocket);
	if (!ok)
		die("%s", reply);
	/* The daemon closes the socket when it exits. */
	deadline = now_ms() + STOP_WAIT_MS;
	while (now_ms() < deadline && (pid == 0 || pid_alive(pid))) {
		char	c;

		if (pid == 0 && read(fd, &c, 1) <= 0)
			break;
		usleep(20000);
	}
	close(fd);
	if (pid != 0 && pid_alive(pid))
		kill_stuck_daemon(pid, kids, nkids, "did not stop within "
		    STOP_WAIT_TEXT);
	end_leftovers(kids, nkids);
	remove_leftover_files(pid);
	puts("pymaild stopped.");
	return 0;
}

static void
print_status_json(const char *text)
{
	char	 buf[IMSG_DATA_MAX + 1], *line, *next, *eq;

	strlcpy(buf, text, sizeof(buf));
	json_begin();
	json_bool("running", 1);
	for (line = buf; line && *line; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		json_num(line, strtoll(eq + 1, NULL, 10));
	}
	json_end();
}

/* One request without arguments; the daemon's answer, or exit 1. */
static const char *
simple_request(int argc, const char *name, uint32_t type)
{
	const char	*reply;
	int		 fd, ok;

	if (argc != 0)
		usage_error("usage: %s", name);
	fd = connect_or_not_running();
	reply = ctl_request(fd, type, &ok);
	close(fd);
	if (!ok)
		die("%s", reply);
	return reply;
}

int
cmd_status(int argc, char **argv)
{
	const char	*reply = simple_request(argc, "status", IMSG_CTL_STATUS);

	if (adm.json)
		print_status_json(reply);
	else
		fputs(reply, stdout);
	return 0;
}

int
cmd_flush(int argc, char **argv)
{
	fputs(simple_request(argc, "flush", IMSG_CTL_FLUSH), stdout);
	return 0;
}

int
cmd_reload(int argc, char **argv)
{
	fputs(simple_request(argc, "reload", IMSG_CTL_RELOAD), stdout);
	return 0;
}
