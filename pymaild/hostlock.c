/*
 * MAILDIR/.hosts/NAME.lock: the host name in every Maildir file name
 * (deliver.c) keeps the names of several hosts on one store apart, the
 * time, PID and counter those of one host. Two hosts that put the same
 * name in them could make the same name, and a rename into new/ would
 * replace a message. So the parent holds an OFD fcntl lock on its
 * name's file for its whole life, and a second host of that name on the
 * store refuses to start (or to reload to it).
 *
 * As with the POP3 lock: the lock belongs to the open file (it survives
 * the daemon's fork and ends however the holder dies; NFSv4 takes it to
 * the server), and the files stay, never removed.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pymaild.h"

#define HOSTS_DIR	".hosts"	/* in MAILDIR */

static int	held_fd = -1;

/* The name becomes a path and part of every Maildir name: a DNS name. */
static int
name_ok(const char *name)
{
	size_t	i, len = strlen(name);

	if (len == 0 || len > 253 || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '.' || name[i] == '-'))
			return 0;
	return 1;
}

static int
take(const char *maildir, const char *name, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	struct flock	fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat	st;
	char		dir[PATH_MAX], path[PATH_MAX];
	int		fd, n;

	if (!name_ok(name)) {
		snprintf(err, errlen, "serverhostname '%s' cannot name this "
		    "host's Maildir files (letters, digits, '.', '-')", name);
		return -1;
	}
	n = snprintf(dir, sizeof(dir), "%s/%s", maildir, HOSTS_DIR);
	if (n < 0 || (size_t)n >= sizeof(dir) ||
	    (n = snprintf(path, sizeof(path), "%s/%s.lock", dir,
	    name)) < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "%s/%s: name too long", maildir,
		    HOSTS_DIR);
		return -1;
	}
	if (mkdir(dir, 0700) == 0) {
		if (geteuid() == 0 && chown(dir, uid, gid) == -1) {
			snprintf(err, errlen, "chown %s: %s", dir,
			    strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (geteuid() == 0 && fchown(fd, uid, gid) == -1) {
		snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			snprintf(err, errlen, "another host named %s serves "
			    "%s (it holds %s): each host on a shared store "
			    "needs its own serverhostname", name, maildir,
			    path);
		else
			snprintf(err, errlen, "lock %s: %s", path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A second lock, for a name a reload brings; hostlock_keep makes it
 * the one held, or close() drops it. */
int
hostlock_open(const char *maildir, const char *name, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	return take(maildir, name, uid, gid, err, errlen);
}

void
hostlock_keep(int fd)
{
	if (held_fd != -1)
		close(held_fd);
	held_fd = fd;
}
