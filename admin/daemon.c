/*
 * Lifecycle commands: start runs pymaild, the others talk to it over the
 * control socket named in the config.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
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

/* Send one request and return the reply's text (static); *ok set. */
const char *
ctl_request(int fd, uint32_t type, int *ok)
{
	static char	 text[IMSG_DATA_MAX + 1];
	struct imsgbuf	 ib;
	struct imsg	*im = xmalloc(sizeof(*im));

	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, type, 0, -1, NULL, 0) == -1 ||
	    imsgbuf_flush_all(&ib) == -1 || imsg_read_one(&ib, im) != 1)
		die("no answer from pymaild on %s", adm.conf.controlsocket);
	if (im->fd != -1)
		close(im->fd);
	*ok = im->hdr.type == IMSG_CTL_OK;
	memcpy(text, im->data, im->datalen);
	text[im->datalen] = '\0';
	imsgbuf_clear(&ib);
	free(im);
	return text;
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

int
cmd_stop(int argc, char **argv)
{
	const char	*reply;
	long long	 deadline;
	pid_t		 pid;
	int		 fd, ok;

	if (argc != 0)
		usage_error("usage: stop");
	fd = connect_or_not_running();
	pid = pidfile_running(adm.conf.pidfile);
	reply = ctl_request(fd, IMSG_CTL_STOP, &ok);
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
		die("pymaild (PID %d) did not stop within %d s", (int)pid,
		    STOP_WAIT_MS / 1000);
	/* The daemon ran unprivileged and may not remove these itself. */
	if (pid != 0 && pidfile_running(adm.conf.pidfile) == 0)
		unlink(adm.conf.pidfile);
	unlink(adm.conf.controlsocket);
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
