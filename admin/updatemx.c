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
	const char	*text;
	int		 fd;

	if ((fd = ctl_connect()) == -1)
		return NULL;
	text = ctl_request(fd, IMSG_CTL_UPDATEMX, ok);
	close(fd);
	return text;
}

static void
read_cache(const char *path, struct mxset *set)
{
	char	*text, err[256];
	size_t	 len, n;

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
	if ((n = mxset_clamp(set, time(NULL), MX_TTL_MAX)) > 0)
		fprintf(stderr, "warning: %s: %zu entries expired more than "
		    "%d s from now; they expire then\n", path, n, MX_TTL_MAX);
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
	strlcpy(path, adm.conf.mxcachefile, sizeof(path));
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
