/*
 * pymailadm updatemx: look every domain of the MX cache up again. With
 * the daemon running it asks the daemon (mxcache holds the cache); with
 * it stopped it does the same lookups itself, through the same code
 * (common/mxlookup.c), and rewrites MAILDIR/mxservers. A domain whose
 * lookup fails for now keeps its old entry.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "mxfile.h"
#include "mxlookup.h"
#include "proc.h"
#include "proto.h"
#include "pymailadm.h"
#include "util.h"

struct refresh;

/* One domain of the file and its new answer. */
struct slot {
	struct refresh	*r;
	struct mxentry	 fresh;
	int		 done;		/* fresh is set */
};

struct refresh {
	struct mxset	 old;		/* the file as read */
	struct slot	*slots;		/* one per domain of old */
	unsigned	 left, nfailed, nfresh;
	char		 reason[MX_REASON_MAX];
	struct event_base *base;
};

/* The daemon's answer, or NULL when no daemon listens. */
static const char *
ask_daemon(int *ok)
{
	static char		 text[IMSG_DATA_MAX + 1];
	struct sockaddr_un	 sun;
	struct imsgbuf		 ib;
	struct imsg		*im;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, adm.conf.controlsocket,
	    sizeof(sun.sun_path)) >= sizeof(sun.sun_path))
		die("controlsocket path too long: %s", adm.conf.controlsocket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EACCES || errno == EPERM)
			die("%s: %s (run as root or as %s)",
			    adm.conf.controlsocket, strerror(errno),
			    adm.conf.user);
		close(fd);
		return NULL;
	}
	im = xmalloc(sizeof(*im));
	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, IMSG_CTL_UPDATEMX, 0, -1, NULL, 0) == -1 ||
	    imsgbuf_flush_all(&ib) == -1 || imsg_read_one(&ib, im) != 1)
		die("no answer from pymaild on %s", adm.conf.controlsocket);
	if (im->fd != -1)
		close(im->fd);
	*ok = im->hdr.type == IMSG_CTL_OK;
	memcpy(text, im->data, im->datalen);
	text[im->datalen] = '\0';
	imsgbuf_clear(&ib);
	close(fd);
	free(im);
	return text;
}

/* As root, work as the daemon's user: the file must stay its own. */
static void
become_owner(void)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(adm.conf.user)) == NULL)
		die("user '%s' (the config's `user`) does not exist",
		    adm.conf.user);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		die("cannot act as %s: %s", adm.conf.user, strerror(errno));
	proc_after_setuid();
}

static void
read_cache(const char *path, struct mxset *set)
{
	char	*text, err[256];
	size_t	 len;

	if (file_read_all(path, MXFILE_MAX, &text, &len) == -1) {
		if (errno == ENOENT) {
			memset(set, 0, sizeof(*set));
			return;
		}
		die("updatemx: cannot read %s: %s", path, strerror(errno));
	}
	if (mxfile_parse(text, len, set, err, sizeof(err)) == -1)
		die("updatemx: %s is corrupt (%s); remove it to start afresh",
		    path, err);
	free(text);
}

static void
looked_up(const struct mxentry *e, const char *reason, void *arg)
{
	struct slot	*s = arg;
	struct refresh	*r = s->r;

	if (e->status == MX_TEMPFAIL) {
		if (r->nfailed++ == 0)
			strlcpy(r->reason, reason, sizeof(r->reason));
	} else {
		mxentry_copy(&s->fresh, e);
		s->done = 1;
		r->nfresh++;
	}
	if (--r->left == 0)
		event_base_loopexit(r->base, NULL);
}

static void
write_cache(const char *path, struct refresh *r)
{
	FILE		*fp;
	char		*text = NULL;
	size_t		 len = 0, i;
	int		 lockfd;

	if ((fp = open_memstream(&text, &len)) == NULL)
		die("updatemx: open_memstream: %s", strerror(errno));
	mxfile_print_header(fp);
	for (i = 0; i < r->old.n; i++)
		mxfile_print(fp, r->slots[i].done ? &r->slots[i].fresh :
		    &r->old.v[i]);
	if (fclose(fp) != 0)
		die("updatemx: open_memstream: %s", strerror(errno));
	if ((lockfd = maildir_lock(adm.conf.maildir)) == -1)
		die("cannot lock %s: %s", adm.conf.maildir, strerror(errno));
	if (file_write_atomic(path, text, len, 0600) == -1)
		die("updatemx: cannot write %s: %s", path, strerror(errno));
	close(lockfd);
	free(text);
}

/* The daemon is not running: the lookups from here. */
static int
refresh_here(void)
{
	struct refresh		 r;
	struct mxresolver	*res;
	char			 path[PATH_MAX], warn[256], text[512];
	size_t			 i, n;

	memset(&r, 0, sizeof(r));
	become_owner();
	snprintf(path, sizeof(path), "%s/%s", adm.conf.maildir, MXFILE_NAME);
	read_cache(path, &r.old);
	if ((r.base = event_base_new()) == NULL)
		die("updatemx: event_base_new failed");
	res = mxresolver_new(r.base, &adm.conf, warn, sizeof(warn));
	if (warn[0])
		fprintf(stderr, "updatemx: warning: %s\n", warn);
	r.left = r.old.n;
	r.slots = xcalloc(r.old.n, sizeof(*r.slots));
	for (i = 0; i < r.old.n; i++) {
		r.slots[i].r = &r;
		mxlookup_start(res, r.old.v[i].domain, looked_up, &r.slots[i]);
	}
	if (r.left > 0)
		event_base_dispatch(r.base);
	/* Untouched when nothing could be refreshed. */
	if (r.nfresh > 0)
		write_cache(path, &r);
	n = r.old.n;
	for (i = 0; i < n; i++)
		mxentry_free(&r.slots[i].fresh);
	free(r.slots);
	mxset_free(&r.old);
	mxresolver_free(res);
	event_base_free(r.base);
	if (mxrefresh_summary(text, sizeof(text), n, r.nfailed,
	    r.reason) == -1)
		die("%s", text);
	fputs(text, stdout);
	return 0;
}

int
cmd_updatemx(int argc, char **argv)
{
	const char	*reply;
	int		 ok;

	if (argc != 0)
		usage_error("usage: updatemx");
	if ((reply = ask_daemon(&ok)) == NULL)
		return refresh_here();
	if (!ok)
		die("%s", reply);
	fputs(reply, stdout);
	return 0;
}
