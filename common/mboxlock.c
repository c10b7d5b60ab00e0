/*
 * MAILDIR/USER/.pop3.lock: whoever changes a mailbox as a whole holds it,
 * a POP3 session (in the parent, for the session's length), pymailadm
 * rmuser and import. Several hosts may serve one store, so the lock is
 * on the store, not in a process's memory.
 *
 * It is an OFD fcntl lock (F_OFD_SETLK): it belongs to the open file,
 * not to the process, so two sessions in one parent exclude each other
 * exactly as two hosts do; NFSv4 takes it to the server, and it ends
 * with the last descriptor of the open file however the holder dies, so
 * there is never a stale lock to clean. The file stays: removing it
 * would let a newcomer lock a fresh file while the old one is held.
 *
 * Only the store's owner can put anything in USER/; still, a link, FIFO,
 * device or folder in its place is refused, never followed or opened
 * for writing, and the caller says so.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mboxlock.h"

#define WAIT_STEP_MS	50

static int
lock_open(const char *maildir, const char *user)
{
	char	path[PATH_MAX];
	int	n;

	n = snprintf(path, sizeof(path), "%s/%s/%s", maildir, user,
	    MBOXLOCK_NAME);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* O_NONBLOCK: a FIFO in its place must not stall the open. */
	return open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC, 0600);
}

int
mboxlock_take(const char *maildir, const char *user, int *fdp)
{
	struct flock	fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat	st;
	int		fd, saved;

	*fdp = -1;
	if ((fd = lock_open(maildir, user)) == -1) {
		/* A link (O_NOFOLLOW), a folder, a socket. */
		if (errno == ELOOP || errno == EISDIR || errno == ENXIO)
			return MBOXLOCK_NOTFILE;
		return MBOXLOCK_ERROR;
	}
	if (fstat(fd, &st) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return MBOXLOCK_ERROR;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return MBOXLOCK_NOTFILE;
	}
	while (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
		if (errno == EINTR)
			continue;
		saved = errno;
		close(fd);
		if (saved == EAGAIN || saved == EACCES)
			return MBOXLOCK_BUSY;
		errno = saved;
		return MBOXLOCK_ERROR;
	}
	*fdp = fd;
	return MBOXLOCK_OK;
}

int
mboxlock_wait(const char *maildir, const char *user, int ms, int *fdp)
{
	struct timespec	step = { 0, WAIT_STEP_MS * 1000000L };
	int		r, tries = ms / WAIT_STEP_MS;

	while ((r = mboxlock_take(maildir, user, fdp)) == MBOXLOCK_BUSY &&
	    tries-- > 0)
		nanosleep(&step, NULL);
	return r;
}
