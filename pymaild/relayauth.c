/*
 * The smarthost's credentials (smtprelayauth): one line "user:password"
 * in a file that only its owner, the account the parent runs as (it
 * reads the file after dropping root), may read. The parent reads it for each session outbound opens to the
 * smarthost, once TLS is up there: a new password needs no reload, and
 * the parent holds it no longer than the reply takes to build.
 *
 * outbound learns the credentials, since it speaks to the smarthost; no
 * other helper ever does.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pymaild.h"
#include "reqparse.h"
#include "util.h"

#define RELAYAUTH_FILE_MAX	1024

struct cred {
	char	user[RELAY_CRED_MAX + 1];
	char	password[RELAY_CRED_MAX + 1];
};

static int
printable_run(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The file's mode and owner: nobody else may read it, nor change it. */
static int
file_ok(int fd, const char *path, char *err, size_t errlen)
{
	struct stat	st;
	/* Before the drop, as root: the account that reads it later. */
	uid_t		owner = env->uid != 0 ? env->uid : geteuid();

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "%s: open to group or others (mode "
		    "%03o): it holds a password, make it 0600", path,
		    (unsigned)(st.st_mode & 0777));
		return -1;
	}
	if (st.st_uid != owner) {
		snprintf(err, errlen, "%s: owned by uid %u: it must be owned "
		    "by the account pymaild runs as (uid %u)", path,
		    (unsigned)st.st_uid, (unsigned)owner);
		return -1;
	}
	if (st.st_size > RELAYAUTH_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d octets", path,
		    RELAYAUTH_FILE_MAX);
		return -1;
	}
	return 0;
}

/* "user:password", one line; the password may hold a colon. */
static int
parse_cred(char *buf, size_t len, struct cred *c)
{
	char	*colon;
	size_t	 ulen, plen;

	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if ((colon = memchr(buf, ':', len)) == NULL)
		return -1;
	ulen = colon - buf;
	plen = len - ulen - 1;
	if (ulen == 0 || ulen > RELAY_CRED_MAX || plen == 0 ||
	    plen > RELAY_CRED_MAX || !printable_run(buf, len))
		return -1;
	memcpy(c->user, buf, ulen);
	c->user[ulen] = '\0';
	memcpy(c->password, colon + 1, plen);
	c->password[plen] = '\0';
	return 0;
}

static int
read_cred(const char *path, struct cred *c, char *err, size_t errlen)
{
	char	buf[RELAYAUTH_FILE_MAX + 1];
	size_t	len = 0;
	ssize_t	n;
	int	fd, r = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (file_ok(fd, path, err, errlen) == -1)
		goto done;
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path,
			    strerror(errno));
			goto done;
		}
		len += n;
	}
	if (len > RELAYAUTH_FILE_MAX || parse_cred(buf, len, c) == -1) {
		snprintf(err, errlen, "%s: must hold one line user:password "
		    "(each 1 to %d printable octets)", path, RELAY_CRED_MAX);
		goto done;
	}
	r = 0;
done:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

int
relayauth_check(const struct config *conf, char *err, size_t errlen)
{
	struct cred	c;
	int		r;

	if (conf->relayauth == NULL)
		return 0;
	r = read_cred(conf->relayauth, &c, err, errlen);
	explicit_bzero(&c, sizeof(c));
	return r;
}

void
relayauth_init(void)
{
	char	err[256];

	if (relayauth_check(&env->conf, err, sizeof(err)) == -1)
		fatalx("smtprelayauth %s", err);
}

/* IMSG_RELAY_CRED: the credentials, or why not. */
int
relayauth_request(struct child *from, struct imsg *im)
{
	struct req_relay_cred	 rq;
	struct msgbuild		 mb;
	struct cred		 c;
	char			 err[256] = "";
	uint32_t		 status = RELAY_CRED_OK;

	if (req_read_relay_cred(im->data, im->datalen, &rq) == -1)
		return -1;
	memset(&c, 0, sizeof(c));
	if (env->conf.relayauth == NULL)
		status = RELAY_CRED_NONE;
	else if (read_cred(env->conf.relayauth, &c, err, sizeof(err)) == -1) {
		log_warnx("smtprelayauth: %s", err);
		explicit_bzero(&c, sizeof(c));
		status = RELAY_CRED_FAIL;
	}
	mb_init(&mb);
	mb_u32(&mb, rq.req);
	mb_u32(&mb, status);
	mb_str(&mb, c.user);
	mb_str(&mb, c.password);
	mb_str(&mb, err);
	explicit_bzero(&c, sizeof(c));
	parent_send(PROC_OUTBOUND, IMSG_RELAY_CRED_REPLY, &mb, -1);
	explicit_bzero(mb.buf, mb.len);
	return 0;
}
