/*
 * Logging to syslog or to stderr (which the parent points at the log file
 * when logfile is a path, so every process writes one shared file).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_dest = LOG_TO_STDERR;
static int	 log_level = 2;
static char	 log_name[32] = "pymaild";

void
log_init(int dest, int level, const char *procname)
{
	log_dest = dest;
	log_level = level;
	log_procname(procname);
	if (dest == LOG_TO_SYSLOG)
		/* LOG_NDELAY: connect now, before any chroot hides /dev/log. */
		openlog(log_name, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

void
log_procname(const char *procname)
{
	strlcpy(log_name, procname, sizeof(log_name));
}

static void
vlog(int pri, int level, const char *fmt, va_list ap, const char *suffix)
{
	char		 msg[2048], stamp[32];
	struct tm	 tm;
	time_t		 now;
	int		 saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_dest == LOG_TO_SYSLOG) {
		if (suffix)
			syslog(pri, "%s: %s", msg, suffix);
		else
			syslog(pri, "%s", msg);
		errno = saved;
		return;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* One write(2) per line keeps lines whole in a shared O_APPEND file. */
	dprintf(STDERR_FILENO, "%s %s[%d]: %s%s%s\n", stamp, log_name,
	    (int)getpid(), msg, suffix ? ": " : "", suffix ? suffix : "");
	errno = saved;
}

#define LOGFN(name, pri, level, witherr)				\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	ap;							\
	int	e = errno;						\
									\
	va_start(ap, fmt);						\
	vlog(pri, level, fmt, ap, witherr ? strerror(e) : NULL);	\
	va_end(ap);							\
}

LOGFN(log_warn, LOG_WARNING, 1, 1)
LOGFN(log_warnx, LOG_WARNING, 1, 0)
LOGFN(log_info, LOG_INFO, 2, 0)
LOGFN(log_debug, LOG_DEBUG, 3, 0)

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	e = errno;

	va_start(ap, fmt);
	vlog(LOG_CRIT, 0, fmt, ap, strerror(e));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, 0, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
