/*
 * The system call filters (common/sandbox.c): which sockets each helper
 * may still make once confined. A child process enters the sandbox of a
 * role, tries one socket(2), and reports; a call the filter forbids
 * kills it with SIGSYS.
 *
 * No helper makes a local (AF_UNIX) socket: a chroot hides socket files
 * but not abstract names, so a compromised helper could reach any local
 * service listening on one. syslog(3) connected before the filter; its
 * reconnect gets EACCES instead of killing the helper. Only outbound
 * (SMTP to other servers) and mxcache (DNS) make network sockets, and
 * only IPv4 and IPv6 ones: no netlink, no packet sockets. queued, which
 * holds the spool, makes none; outbound, which reads what any server
 * sends, opens no file.
 *
 * A helper whose filter cannot be loaded does not go on unconfined: it
 * exits with status 1 (here a filter installed first makes seccomp(2)
 * fail, as a kernel or container without seccomp would).
 *
 * SANITIZE=1 builds have no filter (see sandbox.c): nothing to check.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "sandbox.h"
#include "unit.h"

#ifndef PYMAILD_SANITIZE

#define ALLOWED		0	/* socket() worked */
#define REFUSED		1	/* -1 with EACCES */
#define OTHER		2	/* some other failure */
#define KILLED		-SIGSYS

/* What socket(family, type) does in a child confined as role. */
static int
try_socket(enum proc_role role, int family, int type)
{
	pid_t	pid;
	int	status, fd;

	if ((pid = fork()) == -1)
		return OTHER;
	if (pid == 0) {
		sandbox_enter(role);
		fd = socket(family, type | SOCK_CLOEXEC, 0);
		if (fd != -1)
			_exit(ALLOWED);
		_exit(errno == EACCES ? REFUSED : OTHER);
	}
	if (waitpid(pid, &status, 0) == -1)
		return OTHER;
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : OTHER;
}

struct want {
	enum proc_role	 role;
	int		 family, type;
	int		 outcome;
	const char	*name;
};

static const struct want wants[] = {
	{ PROC_SMTPD, AF_UNIX, SOCK_DGRAM, REFUSED, "smtpd AF_UNIX" },
	{ PROC_SMTPD, AF_UNIX, SOCK_STREAM, REFUSED, "smtpd AF_UNIX stream" },
	{ PROC_SMTPD, AF_INET, SOCK_STREAM, KILLED, "smtpd AF_INET" },
	{ PROC_SMTPD, AF_NETLINK, SOCK_RAW, KILLED, "smtpd AF_NETLINK" },
	{ PROC_POP3D, AF_UNIX, SOCK_DGRAM, REFUSED, "pop3d AF_UNIX" },
	{ PROC_POP3D, AF_INET6, SOCK_STREAM, KILLED, "pop3d AF_INET6" },
	{ PROC_QUEUED, AF_UNIX, SOCK_STREAM, REFUSED, "queued AF_UNIX" },
	{ PROC_QUEUED, AF_INET, SOCK_STREAM, KILLED, "queued AF_INET" },
	{ PROC_QUEUED, AF_INET6, SOCK_STREAM, KILLED, "queued AF_INET6" },
	{ PROC_QUEUED, AF_NETLINK, SOCK_RAW, KILLED, "queued AF_NETLINK" },
	{ PROC_OUTBOUND, AF_UNIX, SOCK_STREAM, REFUSED, "outbound AF_UNIX" },
	{ PROC_OUTBOUND, AF_UNIX, SOCK_DGRAM, REFUSED,
	    "outbound AF_UNIX dgram" },
	{ PROC_OUTBOUND, AF_INET, SOCK_STREAM, ALLOWED, "outbound AF_INET" },
	{ PROC_OUTBOUND, AF_INET6, SOCK_STREAM, ALLOWED,
	    "outbound AF_INET6" },
	{ PROC_OUTBOUND, AF_NETLINK, SOCK_RAW, KILLED,
	    "outbound AF_NETLINK" },
	{ PROC_OUTBOUND, AF_PACKET, SOCK_RAW, KILLED, "outbound AF_PACKET" },
	{ PROC_MXCACHE, AF_UNIX, SOCK_DGRAM, REFUSED, "mxcache AF_UNIX" },
	{ PROC_MXCACHE, AF_INET, SOCK_DGRAM, ALLOWED, "mxcache AF_INET" },
	{ PROC_MXCACHE, AF_INET6, SOCK_STREAM, ALLOWED, "mxcache AF_INET6" },
	{ PROC_MXCACHE, AF_NETLINK, SOCK_RAW, KILLED, "mxcache AF_NETLINK" },
	{ PROC_MXCACHE, AF_PACKET, SOCK_RAW, KILLED, "mxcache AF_PACKET" },
};

/* What open(2) of an existing file does in a child confined as role. */
static int
try_open(enum proc_role role)
{
	pid_t	pid;
	int	status;

	if ((pid = fork()) == -1)
		return OTHER;
	if (pid == 0) {
		sandbox_enter(role);
		if (open("/dev/null", O_RDONLY | O_CLOEXEC) != -1 ||
		    openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC) != -1)
			_exit(ALLOWED);
		_exit(errno == EACCES ? REFUSED : OTHER);
	}
	if (waitpid(pid, &status, 0) == -1)
		return OTHER;
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : OTHER;
}

/* How a child confined as role ends when seccomp(2) itself fails. */
static int
load_refused(enum proc_role role)
{
	scmp_filter_ctx	ctx;
	pid_t		pid;
	int		status;

	if ((pid = fork()) == -1)
		return OTHER;
	if (pid == 0) {
		if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
		    SCMP_SYS(seccomp), 0) < 0 || seccomp_load(ctx) < 0)
			_exit(OTHER);
		sandbox_enter(role);
		_exit(ALLOWED);		/* went on without a filter */
	}
	if (waitpid(pid, &status, 0) == -1)
		return OTHER;
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : OTHER;
}

static void
check_all(void)
{
	size_t	i;
	int	got;

	for (i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
		got = try_socket(wants[i].role, wants[i].family,
		    wants[i].type);
		if (got != wants[i].outcome)
			printf("# %s: got %d, want %d (0 allowed, 1 EACCES, "
			    "2 other, %d SIGSYS)\n", wants[i].name, got,
			    wants[i].outcome, KILLED);
		CHECK(wants[i].name, got == wants[i].outcome);
	}
	/* fatalx: exit status 1, the same figure as REFUSED. */
	CHECK("no filter, no start", load_refused(PROC_SMTPD) == 1);
	CHECK("no filter, no start (queued)", load_refused(PROC_QUEUED) == 1);
	CHECK("no filter, no start (outbound)",
	    load_refused(PROC_OUTBOUND) == 1);
	CHECK("outbound opens no file", try_open(PROC_OUTBOUND) == KILLED);
	CHECK("queued opens files", try_open(PROC_QUEUED) == ALLOWED);
}

#endif /* PYMAILD_SANITIZE */

int
main(void)
{
#ifndef PYMAILD_SANITIZE
	check_all();
#endif
	UNIT_EXIT();
}
