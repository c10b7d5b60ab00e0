#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc");
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void	*p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		fatal("calloc");
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t m)
{
	void	*q = reallocarray(p, n ? n : 1, m ? m : 1);

	if (q == NULL)
		fatal("reallocarray");
	return q;
}

char *
xstrdup(const char *s)
{
	char	*p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n == -1)
		fatal("vasprintf");
	return n;
}

int
fsync_dir(const char *dir)
{
	int	fd, r;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
write_full(int fd, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* Read exactly len octets at off; a file that ends first is an error. */
int
pread_full(int fd, void *buf, size_t len, off_t off)
{
	char	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		n = pread(fd, p, len, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

#define TEMP_RANDOM	12	/* characters: 71 bits */
#define TEMP_TRIES	16

/*
 * A temporary file beside path that nobody prepared for us: whoever may
 * write the folder (the daemon's user, in MAILDIR) could guess a name
 * made from the PID and plant a link there to take the write elsewhere.
 * So a random name, created here or not at all (O_EXCL), and never
 * through a link (O_NOFOLLOW).
 */
static int
open_temp_beside(const char *path, char *tmp, size_t len, mode_t mode)
{
	static const char	 chars[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char			 rnd[TEMP_RANDOM + 1];
	int			 i, j, fd;

	for (i = 0; i < TEMP_TRIES; i++) {
		for (j = 0; j < TEMP_RANDOM; j++)
			rnd[j] = chars[arc4random_uniform(sizeof(chars) - 1)];
		rnd[TEMP_RANDOM] = '\0';
		if ((size_t)snprintf(tmp, len, "%s.tmp.%s", path, rnd) >=
		    len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, mode);
		if (fd != -1 || errno != EEXIST)
			return fd;
	}
	return -1;
}

int
file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode)
{
	char	 tmp[PATH_MAX], dir[PATH_MAX];
	int	 fd, saved;

	if ((fd = open_temp_beside(path, tmp, sizeof(tmp), mode)) == -1)
		return -1;
	if (write_full(fd, data, len) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	strlcpy(dir, path, sizeof(dir));
	return fsync_dir(dirname(dir));
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int
file_read_all(const char *path, size_t max, char **data, size_t *len)
{
	struct stat	 st;
	char		*buf;
	size_t		 have = 0;
	ssize_t		 n;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail_noalloc;
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto fail_noalloc;
	}
	buf = xmalloc(max + 1);
	for (;;) {
		n = read(fd, buf + have, max + 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			free(buf);
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		have += n;
		if (have > max) {
			free(buf);
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	buf[have] = '\0';
	*data = buf;
	if (len)
		*len = have;
	return 0;
fail_noalloc:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
lock_take(const char *path)
{
	int	fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

int
dir_ensure(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat	st;

	if (mkdir(path, mode) == -1) {
		if (errno != EEXIST)
			return -1;
		if (stat(path, &st) == -1)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
		return 0;
	}
	if (uid != (uid_t)-1 && chown(path, uid, gid) == -1)
		return -1;
	return 0;
}

static int
fd_cmp(const void *a, const void *b)
{
	int	x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/*
 * Descriptors opened or received one after another have consecutive
 * numbers, and one close_range costs a fifth of a close per descriptor
 * here. Every number in a run is one of the caller's, so the range
 * closes nothing else.
 */
void
close_fds(int *fds, size_t n)
{
	size_t	i, first;

	qsort(fds, n, sizeof(fds[0]), fd_cmp);
	for (i = 0; i < n; i++) {
		first = i;
		while (i + 1 < n && fds[i + 1] == fds[i] + 1)
			i++;
		if (i == first || close_range(fds[first], fds[i], 0) == -1)
			while (first <= i)
				close(fds[first++]);
	}
}

void
set_nonblock(int fd)
{
	int	flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("fcntl O_NONBLOCK");
}

void
set_cloexec(int fd)
{
	int	flags;

	if ((flags = fcntl(fd, F_GETFD)) == -1 ||
	    fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1)
		fatal("fcntl FD_CLOEXEC");
}

long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
ct_memeq(const void *a, const void *b, size_t len)
{
	const volatile unsigned char	*x = a, *y = b;
	unsigned char			 d = 0;
	size_t				 i;

	for (i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

int
pid_alive(pid_t pid)
{
	char	 path[64], buf[512], *p;
	ssize_t	 n;
	int	 fd;

	if (pid <= 0 || (kill(pid, 0) == -1 && errno == ESRCH))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0')
		return 1;
	return p[2] != 'Z' && p[2] != 'X';
}

void
sockaddr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6	*sin6 = (const void *)ss;
	const struct sockaddr_in	*sin = (const void *)ss;

	buf[0] = '\0';
	if (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, len);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, len);
	else if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &sin->sin_addr, buf, len);
}

pid_t
pidfile_running(const char *pidfile)
{
	char	*data, path[64], exe[PATH_MAX];
	long	 pid;
	ssize_t	 n;

	if (file_read_all(pidfile, 64, &data, NULL) == -1)
		return 0;
	pid = strtol(data, NULL, 10);
	free(data);
	if (pid <= 1 || pid == getpid() || !pid_alive(pid))
		return 0;
	/* A pid reused by another program after a crash is not us. */
	snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		if (strstr(exe, "pymaild") == NULL)
			return 0;
	}
	return pid;
}

char *
text_printable(char *dst, size_t len, const char *src, size_t srclen)
{
	size_t	i;

	if (len == 0)
		return dst;
	for (i = 0; i < srclen && i < len - 1; i++)
		dst[i] = (unsigned char)src[i] >= 0x20 &&
		    (unsigned char)src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
	return dst;
}
