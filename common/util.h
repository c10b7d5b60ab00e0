/*
 * Small helpers shared by every process.
 */
#ifndef PYMAILD_UTIL_H
#define PYMAILD_UTIL_H

#include <sys/types.h>
#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* write(2) until all of it is written (EINTR and short writes). */
int	 write_full(int fd, const void *data, size_t len);
int	 pread_full(int fd, void *buf, size_t len, off_t off);
/* Write a whole file as temp + fsync + rename + fsync of the folder, so a
 * crash leaves either the old or the new contents. -1 with errno set. */
int	 file_write_atomic(const char *path, const void *data, size_t len,
	    mode_t mode);
/* Read a whole file of at most max bytes into a NUL-terminated buffer.
 * -1 with errno set (EFBIG when larger). */
int	 file_read_all(const char *path, size_t max, char **data, size_t *len);
int	 fsync_dir(const char *dir);
/* Take an exclusive flock on path (created if missing); returns the fd to
 * close when done, -1 with errno set. */
int	 lock_take(const char *path);
/* mkdir -m mode if missing; chown to uid/gid when uid != (uid_t)-1. */
int	 dir_ensure(const char *path, mode_t mode, uid_t uid, gid_t gid);
void	 set_nonblock(int fd);
/* Close these descriptors (reorders fds): a run of consecutive numbers
 * in one call. */
void	 close_fds(int *fds, size_t n);
void	 set_cloexec(int fd);
/* Constant-time equality of two buffers of the same length. */
int	 ct_memeq(const void *a, const void *b, size_t len);
/* A process that exists and is not a zombie (an unreaped exit). */
int	 pid_alive(pid_t pid);
/* A peer's numeric address; IPv4-mapped IPv6 shown as IPv4. */
struct sockaddr_storage;
void	 sockaddr_text(const struct sockaddr_storage *ss, char *buf,
	    size_t len);
/* The pid a pidfile names when that process is a live pymaild, else 0. */
pid_t	 pidfile_running(const char *path);
/* Monotonic milliseconds. */
long long	 now_ms(void);

/*
 * Text from the network made safe to store in an envelope, log, put in a
 * bounce or print on a terminal: each octet outside printable ASCII
 * (controls, CR, LF, NUL, DEL, 8-bit) becomes '?'. At most len - 1 of the
 * srclen octets of src are copied; dst is always NUL-terminated.
 */
char	*text_printable(char *dst, size_t len, const char *src,
	    size_t srclen);

#endif
