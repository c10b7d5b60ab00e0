/*
 * Local delivery into Maildirs (the parent's side of IMSG_DELIVER).
 *
 * queued passes a read-only descriptor of the spooled message. Each one
 * is copied into USER/Maildir/tmp with LF line ends behind Return-Path
 * and Delivered-To lines; one syncfs() makes the whole batch durable, the
 * renames into new/ follow, and a second syncfs() makes those durable
 * before queued hears "delivered" and may forget the message. Each
 * mailbox's renames are followed by one line in its maildirsize (quota.c),
 * the figure every host on the store counts against. That disk
 * work runs on a thread of its own, so logins and RCPT checks are not
 * kept waiting behind it.
 *
 * A message removed from the queue meanwhile (IMSG_DELIVER_CANCEL) is
 * dropped if its batch has not started, else flagged: the writer looks
 * at the flag just before the rename, the last moment it can still take
 * the message back, and unlinks its copy in tmp/ instead.
 */
#include <sys/param.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bgjob.h"
#include "log.h"
#include "maildirsize.h"
#include "policy.h"
#include "pymaild.h"
#include "util.h"

#define COPY_BUF	(64 * 1024)

struct dreq {
	TAILQ_ENTRY(dreq)	 entry;
	uint32_t		 req;
	char			 id[QUEUE_ID_LEN + 1];
	char			 user[USER_NAME_MAX + 1];
	char			 sender[512];
	char			 rcpt[512];
	char			 authres[AUTHRES_FIELD_MAX];	/* or "" */
	int			 fd;
	off_t			 insize;	/* checked: exactly this is read */
	char			 tmp[PATH_MAX];
	char			 unique[256];
	long long		 size;		/* S=: octets on disk */
	long long		 wsize;		/* W=: octets with CRLF */
	int			 result;
	char			 reason[256];
	/* Set on the loop, read by the writer thread: __atomic only. */
	int			 cancelled;
	int			 first;		/* of its mailbox in the batch */
	/* The first of its mailbox in a batch: the mailbox's one line. */
	long long		 qbytes, qcount;
	struct stat		 qpre, qpost;	/* maildirsize around it */
};

TAILQ_HEAD(dreqlist, dreq);

/* Requests gather in `pending` while the writer thread has `running`. */
static struct dreqlist	 pending = TAILQ_HEAD_INITIALIZER(pending);
static struct dreqlist	 running = TAILQ_HEAD_INITIALIZER(running);
static struct event	 ev_batch;
static int		 batch_scheduled, batch_running;
static int		 maildir_fd = -1;
static unsigned int	 counter;
/*
 * The writer thread's copy of the configuration it uses: a reload frees
 * env->conf's strings on the loop while a batch may be running. Written
 * on the loop only between batches (bgjob_submit orders it).
 */
static char		 batch_maildir[PATH_MAX];
static char		 batch_host[256];

static void	deliver_batch(int, short, void *);

void
deliver_init(void)
{
	maildir_fd = open(env->conf.maildir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (maildir_fd == -1)
		fatal("open %s", env->conf.maildir);
	event_set(&ev_batch, -1, 0, deliver_batch, NULL);
	event_base_set(env->base, &ev_batch);
	bgjob_init(env->base);
}

static void
fail(struct dreq *d, int result, const char *reason)
{
	d->result = result;
	strlcpy(d->reason, reason, sizeof(d->reason));
}

static void
fail_errno(struct dreq *d, const char *what)
{
	char	buf[256];

	log_warn("delivery id=%s user=%s: %s", d->id, d->user, what);
	snprintf(buf, sizeof(buf), "%s 4.3.%d Local delivery failed: %s",
	    errno == ENOSPC || errno == EDQUOT ? "452" : "451",
	    errno == ENOSPC || errno == EDQUOT ? 1 : 0, strerror(errno));
	fail(d, DELIVER_TEMP, buf);
}

/* Is there room, and may this user receive it? 0 when it may go on. */
static int
check_mailbox(struct dreq *d)
{
	struct stat	st;
	uint32_t	verdict;

	/*
	 * Only a regular file, and only the size checked here is read
	 * (pread, so queued's file offset does not matter): a socket or a
	 * FIFO from a compromised queued could hang the writer thread or
	 * stream past the quota.
	 */
	if (fstat(d->fd, &st) == -1) {
		fail_errno(d, "fstat");
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("delivery id=%s user=%s: queued passed something "
		    "that is not a regular file", d->id, d->user);
		fail(d, DELIVER_TEMP, "451 4.3.0 Message is not a regular "
		    "file");
		return -1;
	}
	d->insize = st.st_size;
	verdict = store_mbox_verdict(d->user, st.st_size);
	if (verdict == RCPT_OK)
		return 0;
	/* The reason a bounce gives: the table's, as smtpd's replies. */
	d->result = policy_reply(verdict)->perm ? DELIVER_PERM : DELIVER_TEMP;
	policy_format(verdict, 1, d->reason, sizeof(d->reason));
	return -1;
}

/* Copy the spool file, CRLF -> LF, counting both sizes. */
static int
copy_body(struct dreq *d, int out)
{
	char	*in = xmalloc(COPY_BUF), *buf = xmalloc(COPY_BUF + 1);
	size_t	 i, len;
	ssize_t	 n;
	off_t	 off = 0;
	int	 cr = 0, r = -1;

	while (off < d->insize) {
		n = pread(d->fd, in, MIN(COPY_BUF, d->insize - off), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO;	/* shorter than checked */
		if (n <= 0)
			goto out;
		off += n;
		len = 0;
		for (i = 0; i < (size_t)n; i++) {
			if (cr && in[i] != '\n')
				buf[len++] = '\r';	/* a lone CR stays */
			cr = in[i] == '\r';
			if (cr)
				continue;
			if (in[i] == '\n')
				d->wsize++;
			buf[len++] = in[i];
		}
		if (write_full(out, buf, len) == -1)
			goto out;
		d->size += len;
	}
	if (cr && write_full(out, "\r", 1) == -1)
		goto out;
	d->size += cr;
	r = 0;
out:
	free(in);
	free(buf);
	return r;
}

static int
write_tmp(struct dreq *d)
{
	struct timeval	 tv;
	char		 head[1200 + AUTHRES_FIELD_MAX];
	const char	*p;
	size_t		 len;
	int		 out;

	gettimeofday(&tv, NULL);
	if ((size_t)snprintf(d->unique, sizeof(d->unique),
	    "%lld.M%06ldP%dQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	    (int)getpid(), ++counter, batch_host) >= sizeof(d->unique) ||
	    (size_t)snprintf(d->tmp, sizeof(d->tmp), "%s/%s/Maildir/tmp/%s",
	    batch_maildir, d->user, d->unique) >= sizeof(d->tmp)) {
		errno = ENAMETOOLONG;
		fail_errno(d, "name in tmp/");
		return -1;
	}
	out = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out == -1) {
		fail_errno(d, "create in tmp/");
		return -1;
	}
	len = snprintf(head, sizeof(head), "Return-Path: <%s>\n"
	    "Delivered-To: %s\n", d->sender, d->rcpt);
	d->wsize = 2;
	/* smtpd's verdicts, with LF line ends like the rest */
	for (p = d->authres; *p != '\0' && len + 1 < sizeof(head); p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			d->wsize++;
		head[len++] = *p;
	}
	head[len] = '\0';
	d->size = len;
	if (write_full(out, head, len) == -1 || copy_body(d, out) == -1) {
		fail_errno(d, "write");
		close(out);
		unlink(d->tmp);
		return -1;
	}
	d->wsize += d->size;
	if (close(out) == -1) {
		fail_errno(d, "close");
		unlink(d->tmp);
		return -1;
	}
	return 0;
}

static int
move_to_new(struct dreq *d)
{
	char	path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path),
	    "%s/%s/Maildir/new/%s,S=%lld,W=%lld", batch_maildir, d->user,
	    d->unique, d->size, d->wsize) >= sizeof(path))
		errno = ENAMETOOLONG;
	else if (rename(d->tmp, path) == 0)
		return 0;
	fail_errno(d, "rename into new/");
	unlink(d->tmp);
	return -1;
}

static void
reply(struct dreq *d)
{
	struct msgbuild	mb;

	if (d->result == DELIVER_OK)
		log_info("delivery id=%s to=<%s> user=%s size=%lld "
		    "result=delivered", d->id, d->rcpt, d->user, d->size);
	else if (d->result == DELIVER_CANCELLED)
		log_info("delivery id=%s to=<%s> user=%s result=cancelled",
		    d->id, d->rcpt, d->user);
	else
		log_info("delivery id=%s to=<%s> user=%s result=%s "
		    "reason=\"%s\"", d->id, d->rcpt, d->user,
		    d->result == DELIVER_PERM ? "failed" : "deferred",
		    d->reason);
	mb_init(&mb);
	mb_u32(&mb, d->req);
	mb_u32(&mb, d->result);
	mb_str(&mb, d->reason);
	parent_send(PROC_QUEUED, IMSG_DELIVER_REPLY, &mb, -1);
	child_request_done(PROC_QUEUED);
}

/*
 * After the renames, the new/ folders they changed must reach the disk.
 * For a few mailboxes an fsync() of each folder writes just that; for
 * many, one syncfs() is cheaper than one flush each.
 */
#define SYNC_DIRS_MAX	4

/* Is d the batch's first delivered message for its mailbox? */
static int
first_of_mailbox(struct dreq *d)
{
	struct dreq	*e;

	for (e = TAILQ_FIRST(&running); e != d; e = TAILQ_NEXT(e, entry))
		if (e->result == DELIVER_OK && strcmp(e->user, d->user) == 0)
			return 0;
	return d->result == DELIVER_OK;
}

/*
 * The batch's messages for first's mailbox into new/, and one line for
 * all of them in its maildirsize. A recount, on any host, sees both the
 * messages and the line, or neither.
 */
static void
move_mailbox(struct dreq *first)
{
	struct dreq	*d;
	int		 order;

	order = quota_order_begin(batch_maildir, first->user);
	for (d = first; d != NULL; d = TAILQ_NEXT(d, entry)) {
		if (d->result != DELIVER_OK || strcmp(d->user, first->user))
			continue;
		/* Relaxed: a cancel that comes later finds it delivered. */
		if (__atomic_load_n(&d->cancelled, __ATOMIC_RELAXED)) {
			unlink(d->tmp);
			fail(d, DELIVER_CANCELLED, "removed from the queue");
			continue;
		}
		if (move_to_new(d) == -1)
			continue;
		first->qbytes += d->size;
		first->qcount++;
	}
	if (first->qcount > 0 && quota_append(batch_maildir, first->user,
	    first->qbytes, first->qcount, &first->qpre, &first->qpost) == -1)
		log_warn("delivery user=%s: append to %s", first->user,
		    MDSIZE_NAME);
	quota_order_end(order);
}

static int
sync_new_dirs(void)
{
	struct dreq	*d;
	char		 path[PATH_MAX];
	int		 n = 0, fd, r = 0;

	TAILQ_FOREACH(d, &running, entry)
		if (first_of_mailbox(d) && ++n > SYNC_DIRS_MAX)
			return syncfs(maildir_fd);
	TAILQ_FOREACH(d, &running, entry) {
		if (!first_of_mailbox(d))
			continue;
		fd = -1;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s/Maildir/new",
		    batch_maildir, d->user) < sizeof(path))
			fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd == -1 || fsync(fd) == -1)
			r = -1;
		if (fd != -1)
			close(fd);
	}
	return r;
}

/* On the writer thread: files, syncs and renames, nothing shared. */
static void
batch_work(void *arg)
{
	struct dreq	*d;
	int		 pending_ok = 0;

	TAILQ_FOREACH(d, &running, entry) {
		if (d->result == DELIVER_OK && write_tmp(d) == 0)
			pending_ok++;
		close(d->fd);
		d->fd = -1;
	}
	if (pending_ok == 0)
		return;
	if (syncfs(maildir_fd) == -1) {
		TAILQ_FOREACH(d, &running, entry)
			if (d->result == DELIVER_OK) {
				fail_errno(d, "syncfs");
				unlink(d->tmp);
			}
	}
	/*
	 * Which is first is settled before any move: a move that fails or
	 * is cancelled changes a result, and must not make a message of
	 * that mailbox "first" again (renamed twice, answered as failed).
	 */
	TAILQ_FOREACH(d, &running, entry)
		d->first = first_of_mailbox(d);
	TAILQ_FOREACH(d, &running, entry)
		if (d->first)
			move_mailbox(d);
	if (sync_new_dirs() == -1)
		log_warn("delivery: sync after the renames");
}

/* Back on the loop: the running quota figures, and the answers. */
static void
batch_done(void *arg)
{
	struct dreq	*d;

	while ((d = TAILQ_FIRST(&running)) != NULL) {
		TAILQ_REMOVE(&running, d, entry);
		if (d->qcount > 0)
			store_usage_add(d->user, d->qbytes, &d->qpre,
			    &d->qpost);
		reply(d);
		free(d);
	}
	batch_running = 0;
	if (!TAILQ_EMPTY(&pending))
		event_active(&ev_batch, EV_TIMEOUT, 1);
}

static void
deliver_batch(int fd, short ev, void *arg)
{
	struct dreq	*d;

	batch_scheduled = 0;
	if (batch_running)
		return;		/* batch_done starts the next one */
	store_refresh_users();
	/* All of them here already: one look at each mailbox's files. */
	store_hold_begin();
	while ((d = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, d, entry);
		/* The checks need the store's state: here, not there. */
		check_mailbox(d);
		TAILQ_INSERT_TAIL(&running, d, entry);
	}
	store_hold_end();
	if (TAILQ_EMPTY(&running))
		return;
	batch_running = 1;
	strlcpy(batch_maildir, env->conf.maildir, sizeof(batch_maildir));
	strlcpy(batch_host, env->conf.serverhostname, sizeof(batch_host));
	bgjob_submit(batch_work, batch_done, NULL);
}

int
deliver_request(struct child *from, struct imsg *im)
{
	struct req_deliver	 rq;
	struct dreq		*d;
	const char		*why;

	/* The user name becomes a path: it must be a valid name. */
	if (req_read_deliver(im->data, im->datalen, &rq) == -1 ||
	    im->fd == -1 ||
	    user_name_normalize(rq.user, rq.user, &why) == -1 ||
	    child_request_begin(from) == -1)
		return -1;	/* the channel closes the descriptor */
	d = xcalloc(1, sizeof(*d));
	d->req = rq.req;
	d->fd = im->fd;
	memcpy(d->id, rq.id, sizeof(d->id));
	memcpy(d->user, rq.user, sizeof(d->user));
	memcpy(d->sender, rq.sender, sizeof(d->sender));
	memcpy(d->rcpt, rq.rcpt, sizeof(d->rcpt));
	memcpy(d->authres, rq.authres, sizeof(d->authres));
	d->result = DELIVER_OK;
	TAILQ_INSERT_TAIL(&pending, d, entry);
	if (!batch_scheduled) {
		batch_scheduled = 1;
		event_active(&ev_batch, EV_TIMEOUT, 1);
	}
	return 0;
}

/*
 * queued removed the message: what has not started is answered now,
 * what the writer holds is flagged for it. Its deliveries are queued's
 * own, so a cancel reaches nothing else; an id with none is no error.
 */
int
deliver_cancel(struct child *from, struct imsg *im)
{
	struct req_deliver_cancel	 rq;
	struct dreq			*d, *next;

	if (req_read_deliver_cancel(im->data, im->datalen, &rq) == -1)
		return -1;
	TAILQ_FOREACH_SAFE(d, &pending, entry, next) {
		if (strcmp(d->id, rq.id) != 0)
			continue;
		TAILQ_REMOVE(&pending, d, entry);
		close(d->fd);
		fail(d, DELIVER_CANCELLED, "removed from the queue");
		reply(d);
		free(d);
	}
	/* The writer only reads the list while it runs: walking it is safe. */
	TAILQ_FOREACH(d, &running, entry)
		if (strcmp(d->id, rq.id) == 0)
			__atomic_store_n(&d->cancelled, 1, __ATOMIC_RELAXED);
	return 0;
}
