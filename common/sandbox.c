#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sandbox.h"

#ifdef PYMAILD_SANITIZE

void
sandbox_enter(enum proc_role role)
{
	/* Sanitizer builds: their runtimes need calls we do not list. */
	log_debug("%s: no system call filter in this build",
	    proc_names[role]);
}

#else

/* What every helper does: memory, time, its channels, logging. */
static const int base_calls[] = {
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(close_range), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(lseek), SCMP_SYS(pread64), SCMP_SYS(brk), SCMP_SYS(mmap),
	SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(mprotect), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigaction), SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(getpid),
	SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
	SCMP_SYS(getrandom), SCMP_SYS(futex), SCMP_SYS(sched_yield),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select),
	SCMP_SYS(pselect6), SCMP_SYS(fcntl), SCMP_SYS(recvmsg),
	SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(shutdown), SCMP_SYS(dup),
	SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	/* gethostname(): serverhostname's default, read again at a reload */
	SCMP_SYS(uname),
};

/* smtpd and pop3d: accept connections, nothing on disk. */
static const int session_calls[] = {
	SCMP_SYS(accept), SCMP_SYS(accept4),
};

/* queued: its spool, inside its chroot. */
static const int spool_calls[] = {
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(unlink),
	SCMP_SYS(unlinkat), SCMP_SYS(rename), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(syncfs),
	SCMP_SYS(getdents64), SCMP_SYS(ftruncate), SCMP_SYS(stat),
	SCMP_SYS(pwrite64),	/* the journal */
	SCMP_SYS(memfd_create),	/* what smtpd writes a message into */
	SCMP_SYS(lstat), SCMP_SYS(statx),
};

/* outbound: TCP to other mail servers (allow_internet), nothing else:
 * not a file, not a local socket. */

/* mxcache: DNS over UDP and TCP; the cache goes to the parent in a
 * memfd; glibc's qsort asks sysinfo how much memory there is. */
static const int dns_calls[] = {
	SCMP_SYS(bind), SCMP_SYS(memfd_create), SCMP_SYS(sysinfo),
};

static void
allow(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0) < 0)
			fatalx("seccomp: cannot allow system call %d",
			    calls[i]);
}

#define ALLOW(ctx, list) allow(ctx, list, sizeof(list) / sizeof(list[0]))

/* outbound (SMTP) and mxcache (DNS): IPv4 and IPv6 only. */
static void
allow_internet(scmp_filter_ctx ctx)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET6)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0) < 0)
		fatalx("seccomp: cannot allow network sockets");
}

/*
 * No local sockets: a chroot hides socket files but not abstract names,
 * through which a helper could reach any local service. syslog(3) has
 * its socket from before the chroot (log_init, LOG_NDELAY); should the
 * log daemon restart, its reconnect fails (the line is lost) instead of
 * killing the helper, and with it the daemon.
 */
static void
refuse_local_sockets(scmp_filter_ctx ctx)
{
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) < 0)
		fatalx("seccomp: cannot refuse local sockets");
}

void
sandbox_enter(enum proc_role role)
{
	scmp_filter_ctx	ctx;
	int		r;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		fatalx("seccomp_init failed");
	ALLOW(ctx, base_calls);
	/* libevent sizes its reads with FIONREAD; no other ioctl. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONREAD)) < 0)
		fatalx("seccomp: cannot allow ioctl FIONREAD");
	refuse_local_sockets(ctx);
	if (role == PROC_SMTPD || role == PROC_POP3D)
		ALLOW(ctx, session_calls);
	if (role == PROC_QUEUED)
		ALLOW(ctx, spool_calls);
	if (role == PROC_OUTBOUND)
		allow_internet(ctx);
	if (role == PROC_MXCACHE) {
		ALLOW(ctx, dns_calls);
		allow_internet(ctx);
	}
	/*
	 * Every thread, not only this one: queued's disk thread is started
	 * during set-up, before the filter exists. A helper that cannot be
	 * confined does not serve at all.
	 */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		fatalx("%s: seccomp: cannot ask for thread sync: %s",
		    proc_names[role], strerror(-r));
	if ((r = seccomp_load(ctx)) < 0)
		fatalx("%s: cannot load the system call filter: %s",
		    proc_names[role], strerror(-r));
	seccomp_release(ctx);
}

#endif /* PYMAILD_SANITIZE */
