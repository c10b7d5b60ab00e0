/*
 * The quota figure of a mailbox on the store: USER/Maildir/maildirsize
 * (Maildir++), which every host delivering to the mailbox, and Courier
 * or Dovecot beside us, read and append to. The parent's figure is only
 * a cache of it (store.c).
 *
 * Each delivery appends "bytes 1" after its rename into new/, each POP3
 * update "-bytes -count" after its unlinks, with one O_APPEND write made
 * under an exclusive OFD lock of the file: O_APPEND alone keeps whole
 * lines at the end on one kernel, not across hosts (on NFS and GlusterFS
 * two hosts appending at once lost or cut lines, a test showed), and the
 * lock is what the file system carries to every host. A full recount (scan
 * of new/ and cur/, then a temporary file, fsync and rename over the
 * old one) replaces the file when it is missing, not a regular file,
 * garbled, past MDSIZE_RECOUNT_BYTES or older than MDSIZE_RECOUNT_AGE.
 *
 * A recount must not lose a line appended while it scans, nor count a
 * message twice. USER/.quota.lock orders them: an appender holds a
 * shared OFD lock over its rename (or unlinks) and its line, a recount
 * an exclusive one over its scan and rename. The recount only tries
 * (never waits, it runs on the loop): when the lock is busy its scan
 * is used for this answer and the file is left for the next one.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildirsize.h"
#include "pymaild.h"
#include "util.h"

#define QUOTA_LOCK_NAME	".quota.lock"	/* in MAILDIR/USER/ */

static int
mdsize_path(char *buf, size_t len, const char *maildir, const char *user)
{
	int	n = snprintf(buf, len, "%s/%s/Maildir/%s", maildir, user,
	    MDSIZE_NAME);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Open (create) the order lock and take it; -1 when it is not ours. */
static int
order_lock(const char *maildir, const char *user, int exclusive, int wait)
{
	struct flock	fl = { .l_whence = SEEK_SET };
	struct stat	st;
	char		path[PATH_MAX];
	int		fd, n;

	n = snprintf(path, sizeof(path), "%s/%s/%s", maildir, user,
	    QUOTA_LOCK_NAME);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	/* O_NOFOLLOW, O_NONBLOCK: a link or FIFO there is never used. */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
	while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == -1) {
		if (errno == EINTR)
			continue;
		close(fd);
		return -1;
	}
	return fd;
}

int
quota_order_begin(const char *maildir, const char *user)
{
	return order_lock(maildir, user, 0, 1);
}

void
quota_order_end(int fd)
{
	if (fd != -1)
		close(fd);
}

/* The file's own lock, held by one appender at a time, on any host;
 * closing the descriptor releases it. */
static int
append_lock(int fd)
{
	struct flock	fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	while (fcntl(fd, F_OFD_SETLKW, &fl) == -1)
		if (errno != EINTR)
			return -1;
	return 0;
}

/*
 * Read and parse the file: 0 with *q and *st, 1 when it must be
 * recounted (*why says why, NULL when just missing), -1 on an error.
 */
static int
read_file(const char *path, struct mdsize *q, struct stat *st,
    const char **why)
{
	char	*buf;
	ssize_t	 n;
	int	 fd, r;

	*why = NULL;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP || errno == ENXIO || errno == EISDIR) {
			*why = "not a regular file";
			return 1;
		}
		return -1;
	}
	if (fstat(fd, st) == -1) {
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		*why = "not a regular file";
		return 1;
	}
	if (st->st_size > MDSIZE_RECOUNT_BYTES) {
		close(fd);
		return 1;	/* the rule, not a fault: no log line */
	}
	buf = xmalloc(MDSIZE_RECOUNT_BYTES + 1);
	do
		n = pread(fd, buf, MDSIZE_RECOUNT_BYTES + 1, 0);
	while (n == -1 && errno == EINTR);
	close(fd);
	if (n == -1) {
		free(buf);
		return -1;
	}
	if (n > MDSIZE_RECOUNT_BYTES)
		r = 1;		/* grew while we read */
	else
		r = mdsize_parse(buf, n, q, why) == 0 ? 0 : 1;
	free(buf);
	return r;
}

/* Write the recounted figure: temporary file, fsync, rename. */
static int
write_file(const char *maildir, const char *user, long long limit,
    long long bytes, long long count, struct stat *st)
{
	char	tmp[PATH_MAX], path[PATH_MAX], buf[2 * MDSIZE_LINE_MAX];
	int	fd, n, m;

	if (mdsize_path(path, sizeof(path), maildir, user) == -1)
		return -1;
	n = snprintf(tmp, sizeof(tmp), "%s/%s/Maildir/tmp/%s.%s.%d",
	    maildir, user, MDSIZE_NAME, env->conf.serverhostname,
	    (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((n = mdsize_limit_line(buf, sizeof(buf), limit)) == -1 ||
	    (m = mdsize_line(buf + n, sizeof(buf) - n, bytes, count)) == -1) {
		errno = EOVERFLOW;
		return -1;
	}
	(void)unlink(tmp);	/* ours from a crash: never followed */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	if (write_full(fd, buf, n + m) == -1 || fsync(fd) == -1 ||
	    fstat(fd, st) == -1 || close(fd) == -1) {
		n = errno;
		close(fd);
		unlink(tmp);
		errno = n;
		return -1;
	}
	if (rename(tmp, path) == -1) {
		n = errno;
		unlink(tmp);
		errno = n;
		return -1;
	}
	return 0;
}

/*
 * The S= figure of a Maildir name ("unique,S=n,W=n:2,flags"), as the
 * Maildir++ recount takes it: a scan of a large mailbox then costs no
 * stat per message. -1 when there is none.
 */
static long long
name_size(const char *name)
{
	const char	*p, *end = strchr(name, ':');
	long long	 v;
	int		 digits;

	if (end == NULL)
		end = name + strlen(name);
	for (p = strchr(name, ','); p != NULL && p < end;
	    p = strchr(p + 1, ',')) {
		if (p[1] != 'S' || p[2] != '=')
			continue;
		v = 0;
		for (p += 3, digits = 0; *p >= '0' && *p <= '9'; p++) {
			if (++digits > 15)	/* past MDSIZE_FIGURE_MAX */
				return -1;
			v = v * 10 + (*p - '0');
		}
		return digits > 0 && (*p == ',' || *p == ':' ||
		    *p == '\0') ? v : -1;
	}
	return -1;
}

static int
scan_dir(const char *maildir, const char *user, const char *sub,
    long long *bytes, long long *count)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 path[PATH_MAX];
	long long	 size;
	int		 n;

	n = snprintf(path, sizeof(path), "%s/%s/Maildir/%s", maildir, user,
	    sub);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if ((size = name_size(de->d_name)) == -1 ||
		    de->d_type == DT_UNKNOWN) {
			if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
				continue;
			if (size == -1)
				size = st.st_size;
		}
		*bytes += size;
		(*count)++;
	}
	closedir(d);
	return 0;
}

static int
scan(const char *maildir, const char *user, long long *bytes,
    long long *count)
{
	*bytes = *count = 0;
	if (scan_dir(maildir, user, "new", bytes, count) == -1 ||
	    scan_dir(maildir, user, "cur", bytes, count) == -1)
		return -1;
	return 0;
}

/*
 * The figure of user's mailbox: 0 (read) or 1 (recounted) with *bytes
 * and *st (the stat of the file it came from; zeroed when it came from
 * a scan the file does not hold), -1 on error. age_ok: a file past MDSIZE_RECOUNT_AGE may still
 * be used (the caller recounted it recently by its own clock, so a host
 * whose clock differs from the store's does not rescan without end).
 */
int
quota_usage(const char *maildir, const char *user, long long limit,
    int age_ok, long long *bytes, struct stat *st)
{
	struct mdsize	 q;
	char		 path[PATH_MAX];
	const char	*why;
	long long	 count;
	int		 r, fd;

	if (mdsize_path(path, sizeof(path), maildir, user) == -1)
		return -1;
	r = read_file(path, &q, st, &why);
	if (r == -1)
		return -1;
	if (r == 0 && (age_ok ||
	    time(NULL) - st->st_mtim.tv_sec <= MDSIZE_RECOUNT_AGE)) {
		*bytes = q.bytes;
		return 0;
	}
	if (why != NULL)
		log_warnx("mailbox of %s: %s %s, recounted", user, MDSIZE_NAME,
		    why);
	memset(st, 0, sizeof(*st));
	fd = order_lock(maildir, user, 1, 0);
	if (scan(maildir, user, bytes, &count) == -1) {
		quota_order_end(fd);
		return -1;
	}
	if (fd != -1 && write_file(maildir, user, limit, *bytes, count,
	    st) == -1) {
		log_warn("mailbox of %s: write %s", user, MDSIZE_NAME);
		memset(st, 0, sizeof(*st));
	}
	quota_order_end(fd);
	return 1;
}

/*
 * The lines appended since the file was *st (same file, grown, each of
 * the new lines whole): 0 with their sums in *bytes and the file's new
 * stat in *st; -1 when only a full read can tell (the file was replaced,
 * shrank, or the tail is not a run of usage lines). A busy mailbox's
 * figure then costs the few new lines, not the whole file, per change.
 */
int
quota_tail(const char *maildir, const char *user, long long *bytes,
    struct stat *st)
{
	struct mdsize	 q;
	struct stat	 now;
	char		 path[PATH_MAX], *buf;
	const char	*why;
	off_t		 from = st->st_size;
	ssize_t		 n, len;
	int		 fd, r = -1;

	if (mdsize_path(path, sizeof(path), maildir, user) == -1 ||
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &now) == -1 || !S_ISREG(now.st_mode) ||
	    now.st_ino != st->st_ino || now.st_dev != st->st_dev ||
	    now.st_size <= from || now.st_size > MDSIZE_RECOUNT_BYTES) {
		close(fd);
		return -1;
	}
	len = now.st_size - from;
	/* An empty first line: mdsize_parse's "no limit" limit line. */
	buf = xmalloc(len + 1);
	buf[0] = '\n';
	do
		n = pread(fd, buf + 1, len, from);
	while (n == -1 && errno == EINTR);
	close(fd);
	if (n == len && mdsize_parse(buf, len + 1, &q, &why) == 0) {
		*bytes = q.bytes;
		*st = now;
		r = 0;
	}
	free(buf);
	return r;
}

/*
 * Append one usage line. *pre and *post: the file just before and after
 * (zeroed when it is missing or not ours: the next reader recounts).
 * Missing is not created here: a recount would then start from a file
 * that holds one line and no limit.
 */
int
quota_append(const char *maildir, const char *user, long long bytes,
    long long count, struct stat *pre, struct stat *post)
{
	char	path[PATH_MAX], line[MDSIZE_LINE_MAX];
	ssize_t	n;
	int	fd, len, saved;

	memset(pre, 0, sizeof(*pre));
	memset(post, 0, sizeof(*post));
	if (mdsize_path(path, sizeof(path), maildir, user) == -1 ||
	    (len = mdsize_line(line, sizeof(line), bytes, count)) == -1)
		return -1;
	fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, pre) == -1 || !S_ISREG(pre->st_mode)) {
		close(fd);
		memset(pre, 0, sizeof(*pre));
		return 0;
	}
	/* One write, alone: a line is never split between two writers;
	 * pre again once it is ours, so only our line lies between. */
	if (append_lock(fd) == -1 || fstat(fd, pre) == -1) {
		saved = errno;
		close(fd);
		memset(pre, 0, sizeof(*pre));
		errno = saved;
		return -1;
	}
	do
		n = write(fd, line, len);
	while (n == -1 && errno == EINTR);
	saved = errno;
	/* Only ours between pre and post, or the caller cannot follow. */
	if (n == len && (fstat(fd, post) == -1 ||
	    post->st_size != pre->st_size + len))
		memset(post, 0, sizeof(*post));
	close(fd);
	if (n != len) {
		memset(pre, 0, sizeof(*pre));
		errno = n == -1 ? saved : EIO;
		return -1;
	}
	return 0;
}
