/*
 * The parent's side of the MX cache (DESIGN.md B2): mxcache keeps the
 * cache in memory and this keeps MAILDIR/mxservers. The file is read at
 * start and handed to mxcache as it is (mxcache parses it, unprivileged);
 * what mxcache sends back is checked and written with temp + fsync +
 * rename under MAILDIR's lock. `pymailadm updatemx` is passed on to
 * mxcache and answered when it is done.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mxfile.h"
#include "mxlookup.h"
#include "pymaild.h"
#include "util.h"

static void
mxstore_path(char *buf, size_t len)
{
	strlcpy(buf, env->conf.mxcachefile, len);
}

void
mxstore_init(void)
{
	char	 path[PATH_MAX], *text = NULL;
	size_t	 len = 0;
	int	 fd;

	mxstore_path(path, sizeof(path));
	if (file_read_all(path, MXFILE_MAX, &text, &len) == -1) {
		/* A cold cache is only slower: never a reason to stop. */
		if (errno != ENOENT)
			log_warn("%s: not read; starting with an empty MX "
			    "cache", path);
		text = NULL;
		len = 0;
	}
	if ((fd = memfd_create(MXFILE_NAME, MFD_CLOEXEC)) == -1)
		fatal("memfd_create");
	if (len > 0 && write(fd, text, len) != (ssize_t)len)
		fatal("memfd write");
	free(text);
	if (chan_compose(&env->children[PROC_MXCACHE].chan, IMSG_MX_LOAD, 0,
	    fd, NULL, 0) == -1)
		log_warnx("mxcache: cache file not sent");
}

int
mxstore_refresh(uint32_t ctlid)
{
	struct msgbuild	mb;

	mb_init(&mb);
	return chan_send(&env->children[PROC_MXCACHE].chan, &mb,
	    IMSG_MX_REFRESH, ctlid, -1);
}

static void
save(int fd)
{
	struct mxset	 set;
	char		 path[PATH_MAX], *text, err[256];
	size_t		 len;
	int		 lockfd;

	mxstore_path(path, sizeof(path));
	if (mxfile_read_fd(fd, MXFILE_MAX, &text, &len) == -1) {
		log_warn("%s: not saved", path);
		return;
	}
	/* Only a file mxcache and pymailadm will read back goes to disk. */
	if (mxfile_parse(text, len, &set, err, sizeof(err)) == -1) {
		log_warnx("%s: not saved: mxcache sent a bad cache: %s", path,
		    err);
		free(text);
		return;
	}
	mxset_free(&set);
	if ((lockfd = maildir_lock(env->conf.maildir)) == -1)
		log_warn("%s: not saved: cannot lock", path);
	else {
		if (file_write_atomic(path, text, len, 0600) == -1)
			log_warn("%s: not saved", path);
		close(lockfd);
	}
	free(text);
}

int
mxstore_refresh_done(struct child *from, struct imsg *im)
{
	struct req_mx_refresh_done	rq;
	char				text[512];
	int				ok;

	if (req_read_mx_refresh_done(im->data, im->datalen, &rq) == -1)
		return -1;
	ok = mxrefresh_summary(text, sizeof(text), rq.domains, rq.failed,
	    rq.reason) == 0;
	log_info("updatemx domains=%u failed=%u%s%s", rq.domains, rq.failed,
	    rq.failed ? " reason=" : "", rq.failed ? rq.reason : "");
	control_answer(im->hdr.peerid, ok, text);
	return 0;
}

/*
 * mxcache hands its cache over in a memfd, a regular file. Anything else
 * is not what this message carries, so hostile: a pipe or a socket has
 * no size, reads as an empty cache and would wipe the one on disk.
 */
static int
is_regular(int fd)
{
	struct stat	st;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return 1;
	log_warnx("mxcache sent a cache that is not a regular file");
	return 0;
}

int
mxstore_save(struct child *from, struct imsg *im)
{
	struct req_mx_save	rq;

	if (req_read_mx_save(im->data, im->datalen, &rq) == -1 ||
	    im->fd == -1 || !is_regular(im->fd))
		return -1;
	save(im->fd);
	close(im->fd);
	return 0;
}
