/*
 * The spool: files for smtpd to write into, and the commit that makes a
 * message durable before smtpd may answer 250.
 *
 * Commits that arrive together share the expensive part (group commit):
 * the envelopes of a batch are written and renamed into env/ with their
 * data into msg/, then one syncfs() makes all of it durable; only then
 * does any of them get its answer. While a batch syncs, the next one
 * gathers in the socket.
 *
 * A crash before the syncfs() ends may leave an envelope whose data did
 * not reach the disk whole. The envelope records the data's size, so
 * recovery tells such a message (never acknowledged) from a committed one.
 *
 * smtpd never touches a spool file. It writes each message into a fresh
 * memfd (nothing old in it to read), and at its commit queued seals that
 * memfd, so it cannot change any more whatever smtpd keeps of it, and
 * makes its own copy: the journal record and incoming/ID, a file from
 * the pool that only queued ever opens. Everything after the commit (the
 * runner, the parent's delivery, msg/ID, a crash's replay) reads queued's
 * copy, never smtpd's descriptor. The copy is one more write of the
 * message into the page cache, no sync of its own; delivering from the
 * sealed memfd itself would spare it, but every reader would then share
 * one file offset.
 */
#include <sys/param.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authres.h"
#include "child.h"
#include "bgjob.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define MAX_INCOMING	4096	/* memfds handed out, not yet committed */
/* smtpd writes at most smtpmaxmailsize octets and its Received: line. */
#define SPOOL_HEADROOM	(64 * 1024)
#define SPOOL_SEALS	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | \
			 F_SEAL_WRITE)

struct incoming {
	TAILQ_ENTRY(incoming)	 entry;
	uint32_t		 sess;
	struct envelope		*env;
	int			 commit;	/* asked for */
	int			 datafd;	/* the memfd; smtpd writes a dup */
	int			 filefd;	/* incoming/ID, from the batch on */
	int			 copied;	/* filefd holds the data */
	int			 inbatch;	/* the sync thread has it */
	int			 journaled;	/* durable in the journal */
	int			 result;
	char			*envtext;	/* the envelope, as written */
	int			 refused;	/* a recipient was refused */
	int			 signing;	/* on the CPU lane: not yet
						 * for a batch */
	struct dkimset		*keys;		/* what it is signed with */
	char			 nokey[256];	/* ours, sent unsigned */
};

/* What the sync thread works on; the loop leaves these entries alone. */
struct batch {
	struct incoming	**v;
	size_t		  n;
	char		(*done)[QUEUE_ID_LEN + 1];	/* removed since */
	size_t		  ndone;
	struct jbatch	  jb;
	int		  synced;
};

/* Removed messages are noted in the journal with the next batch, or on
 * their own once this many wait or the first waited DONE_WAIT seconds,
 * so a restart does not bring them back. */
#define DONE_FLUSH	256
#define DONE_WAIT	1

TAILQ_HEAD(inlist, incoming);

static struct inlist	incoming = TAILQ_HEAD_INITIALIZER(incoming);
static size_t		nincoming;
static struct event	ev_commit;
static void		spool_unlink(struct envelope *);
static int		commit_scheduled;
static int		batch_running;
static int		dir_root = -1, dir_msg = -1, dir_env = -1;
static size_t		nqueued;
static char		(*done_ids)[QUEUE_ID_LEN + 1];
static size_t		ndone, ndone_cap;
static int		exiting;
static struct event	ev_done;
static int		done_due;	/* DONE_WAIT passed */

/* The removals noted so far go with batch b. */
static void
take_done(struct batch *b)
{
	b->done = done_ids;
	b->ndone = ndone;
	done_ids = NULL;
	ndone = ndone_cap = 0;
	done_due = 0;
	evtimer_del(&ev_done);
}

static void
batch_free(struct batch *b)
{
	jbatch_free(&b->jb);
	free(b->done);
	free(b->v);
	free(b);
}

size_t
spool_count(void)
{
	return nqueued;
}

void
spool_new_id(char *id)
{
	uint32_t	r[2];

	/* 64 random bits: the renames into msg/ and env/ refuse to
	 * replace a file, should two ever meet. */
	arc4random_buf(r, sizeof(r));
	snprintf(id, QUEUE_ID_LEN + 1, "%08x%08x", r[0], r[1]);
}

static struct incoming *
incoming_find(uint32_t sess, const char *id)
{
	struct incoming	*in;

	TAILQ_FOREACH(in, &incoming, entry)
		if (in->sess == sess && strcmp(in->env->id, id) == 0)
			return in;
	return NULL;
}

static void
incoming_drop(struct incoming *in, int unlink_files)
{
	char	path[64];

	if (unlink_files && in->filefd != -1) {
		snprintf(path, sizeof(path), "incoming/%s", in->env->id);
		fpool_give(path, -1);
		snprintf(path, sizeof(path), "incoming/%s.env", in->env->id);
		unlink(path);
	}
	if (in->datafd != -1)
		close(in->datafd);
	if (in->filefd != -1)
		close(in->filefd);
	free(in->envtext);
	TAILQ_REMOVE(&incoming, in, entry);
	nincoming--;
	envelope_free(in->env);
	free(in);
}

static void
reply_smtpd(uint32_t type, uint32_t sess, const char *id, int withresult,
    uint32_t result, int fd)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, sess);
	mb_str(&mb, id);
	if (withresult)
		mb_u32(&mb, result);
	chan_send(&smtpd_chan, &mb, type, 0, fd);
}

static int
handle_create(struct imsg *im)
{
	struct msgread	 mr;
	struct incoming	*in;
	char		 id[QUEUE_ID_LEN + 1];
	uint32_t	 sess;
	int		 fd, theirs = -1;

	mr_init(&mr, im);
	sess = mr_u32(&mr);
	if (mr_end(&mr) == -1)
		return -1;
	if (nincoming >= MAX_INCOMING) {
		log_warnx("spool: too many messages in progress");
		reply_smtpd(IMSG_SPOOL_CREATE_REPLY, sess, "", 0, 0, -1);
		return 0;
	}
	spool_new_id(id);
	if ((fd = memfd_create("pymaild-spool", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1 || (theirs = dup(fd)) == -1) {
		log_warn("spool: cannot make a spool descriptor");
		if (fd != -1)
			close(fd);
		reply_smtpd(IMSG_SPOOL_CREATE_REPLY, sess, "", 0, 0, -1);
		return 0;
	}
	in = xcalloc(1, sizeof(*in));
	in->sess = sess;
	in->datafd = fd;
	in->filefd = -1;
	in->env = envelope_new(id);
	TAILQ_INSERT_TAIL(&incoming, in, entry);
	nincoming++;
	reply_smtpd(IMSG_SPOOL_CREATE_REPLY, sess, id, 0, 0, theirs);
	return 0;
}

/* A queue id from smtpd, fit for the log: it may be anything. */
static const char *
shown_id(const char *id)
{
	if (strlen(id) != QUEUE_ID_LEN ||
	    strspn(id, "0123456789abcdef") != QUEUE_ID_LEN)
		return "(malformed id)";
	return id;
}

/*
 * A recipient of a message smtpd is writing. What smtpd says goes into a
 * line-based file, so all of it is checked; a recipient that cannot be
 * kept makes the commit fail (smtpd answers 554), never the channel.
 */
static int
handle_rcpt(struct imsg *im)
{
	struct msgread	 mr;
	struct incoming	*in;
	struct envrcpt	*r;
	char		 id[QUEUE_ID_LEN + 1], addr[ADDR_PATH_MAX];
	char		 user[USER_NAME_MAX + 1], fail[256];
	const char	*why;
	uint32_t	 sess;

	mr_init(&mr, im);
	sess = mr_u32(&mr);
	mr_str(&mr, id, sizeof(id));
	mr_str(&mr, addr, sizeof(addr));
	mr_str(&mr, user, sizeof(user));
	mr_str(&mr, fail, sizeof(fail));
	if (mr_end(&mr) == -1)
		return -1;
	if ((in = incoming_find(sess, id)) == NULL || in->commit) {
		log_warnx("spool: recipient for a message not being written "
		    "(%s); ignored", shown_id(id));
		return 0;
	}
	if (addr[0] == '\0' || !addr_stored_ok(addr) ||
	    !envelope_field_ok(fail, sizeof(fail)) ||
	    (user[0] && user_name_normalize(user, user, &why) == -1) ||
	    (r = envelope_add_rcpt(in->env, addr, user)) == NULL) {
		log_warnx("spool: %s: recipient refused (bad address, user "
		    "or reason, or too many)", id);
		in->refused = 1;
		return 0;
	}
	if (fail[0]) {
		r->status = RS_FAILED;
		strlcpy(r->reason, fail, sizeof(r->reason));
	}
	return 0;
}

static void
commit_schedule(void)
{
	if (commit_scheduled)
		return;
	commit_scheduled = 1;
	event_active(&ev_commit, EV_TIMEOUT, 1);
}

/* What smtpd says about a message at its commit; NULL when it can be
 * kept, else why not. */
static const char *
commit_check(const struct incoming *in)
{
	const struct envelope	*e = in->env;

	if (in->refused)
		return "a recipient was refused";
	if (e->nrcpts == 0)
		return "no recipients";
	if (!addr_stored_ok(e->sender))
		return "bad sender address";
	if (!envelope_field_ok(e->helo, sizeof(e->helo)) ||
	    !envelope_field_ok(e->client, sizeof(e->client)) ||
	    !envelope_field_ok(e->protocol, sizeof(e->protocol)) ||
	    !envelope_field_ok(e->session, sizeof(e->session)))
		return "control characters in a field";
	return NULL;
}

/*
 * smtpd asks for the commit: what it wrote is final. The seals make it
 * so whatever smtpd keeps (a dup, a read-only mapping); a writable
 * shared mapping makes sealing fail, and that message is refused.
 */
static int
seal_data(struct incoming *in)
{
	struct stat	st;

	if (fcntl(in->datafd, F_ADD_SEALS, SPOOL_SEALS) == -1 ||
	    fstat(in->datafd, &st) == -1) {
		log_warn("spool: %s: cannot seal the message", in->env->id);
		return -1;
	}
	if (st.st_size > proc->conf.smtpmaxmailsize + SPOOL_HEADROOM) {
		log_warnx("spool: %s: %lld octets, more than smtpd may write",
		    in->env->id, (long long)st.st_size);
		return -1;
	}
	in->env->datasize = st.st_size;
	return 0;
}

/*
 * A message that leaves may need a DKIM signature before its envelope is
 * written: made on a thread of its own, so neither the loop nor the
 * disk's batches (local mail among them) wait for the RSA operation;
 * only this message's 250 does. The data is sealed by now.
 */
static void
sign_work(void *arg)
{
	struct incoming	*in = arg;

	signer_sign_fd(in->keys, in->env, in->datafd, in->nokey,
	    sizeof(in->nokey));
}

static void
sign_done(void *arg)
{
	struct incoming	*in = arg;

	signer_keys_done(in->keys);
	in->keys = NULL;
	in->signing = 0;
	signer_log_nokey(in->env->id, in->nokey);
	commit_schedule();
}

static void
sign_start(struct incoming *in)
{
	in->signing = 1;
	in->keys = signer_keys();
	bgjob_submit_lane(BGJOB_CPU, sign_work, sign_done, in);
}

static int
handle_commit(struct imsg *im)
{
	struct msgread	 mr;
	struct incoming	*in;
	struct envelope	*e, tmp;
	char		 id[QUEUE_ID_LEN + 1], authres[AUTHRES_FIELD_MAX];
	const char	*why;
	uint32_t	 sess;

	mr_init(&mr, im);
	sess = mr_u32(&mr);
	mr_str(&mr, id, sizeof(id));
	memset(&tmp, 0, sizeof(tmp));
	mr_str(&mr, tmp.sender, sizeof(tmp.sender));
	mr_str(&mr, tmp.helo, sizeof(tmp.helo));
	mr_str(&mr, tmp.client, sizeof(tmp.client));
	mr_str(&mr, tmp.protocol, sizeof(tmp.protocol));
	mr_str(&mr, tmp.session, sizeof(tmp.session));
	tmp.size = mr_u64(&mr);
	mr_str(&mr, authres, sizeof(authres));
	/* A field smtpd could not have built: smtpd is not itself. */
	if (mr_end(&mr) == -1 || (authres[0] != '\0' &&
	    !authres_field_ok(authres)))
		return -1;
	if ((in = incoming_find(sess, id)) == NULL) {
		log_warnx("spool: commit of a message not being written (%s)",
		    shown_id(id));
		reply_smtpd(IMSG_SPOOL_COMMIT_REPLY, sess, id, 1,
		    SPOOL_TEMPFAIL, -1);
		return 0;
	}
	if (in->commit) {
		/* Its first commit answers. */
		log_warnx("spool: %s committed twice; ignored", id);
		return 0;
	}
	e = in->env;
	strlcpy(e->sender, tmp.sender, sizeof(e->sender));
	strlcpy(e->helo, tmp.helo, sizeof(e->helo));
	strlcpy(e->client, tmp.client, sizeof(e->client));
	strlcpy(e->protocol, tmp.protocol, sizeof(e->protocol));
	strlcpy(e->session, tmp.session, sizeof(e->session));
	e->size = tmp.size;
	if (authres[0] != '\0') {	/* kept without its final CRLF */
		authres[strlen(authres) - 2] = '\0';
		free(e->authres);
		e->authres = xstrdup(authres);
	}
	if ((why = commit_check(in)) != NULL) {
		log_warnx("spool: %s refused: %s", id, why);
		reply_smtpd(IMSG_SPOOL_COMMIT_REPLY, sess, id, 1,
		    SPOOL_REFUSED, -1);
		incoming_drop(in, 1);
		return 0;
	}
	e->created = time(NULL);
	if (seal_data(in) == -1) {
		reply_smtpd(IMSG_SPOOL_COMMIT_REPLY, sess, id, 1,
		    SPOOL_TEMPFAIL, -1);
		incoming_drop(in, 0);
		return 0;
	}
	in->commit = 1;
	if (signer_wanted(e)) {
		sign_start(in);
		return 0;
	}
	commit_schedule();
	return 0;
}

static int
handle_abort(struct imsg *im)
{
	struct msgread	 mr;
	struct incoming	*in;
	char		 id[QUEUE_ID_LEN + 1];
	uint32_t	 sess;

	mr_init(&mr, im);
	sess = mr_u32(&mr);
	mr_str(&mr, id, sizeof(id));
	if (mr_end(&mr) == -1)
		return -1;
	if ((in = incoming_find(sess, id)) != NULL && !in->commit)
		incoming_drop(in, 1);
	return 0;
}

int
spool_dispatch(struct imsg *im)
{
	switch (im->hdr.type) {
	case IMSG_SPOOL_CREATE:
		return handle_create(im);
	case IMSG_SPOOL_RCPT:
		return handle_rcpt(im);
	case IMSG_SPOOL_COMMIT:
		return handle_commit(im);
	case IMSG_SPOOL_ABORT:
		return handle_abort(im);
	default:
		return -1;
	}
}

/*
 * Write an envelope's text into fd (-1: the open failed, errno says why)
 * from its offset 0, and close it. -1 with errno on failure.
 */
int
spool_write_env(int fd, const char *text, int dosync)
{
	size_t	len = strlen(text);
	int	saved;

	if (fd == -1)
		return -1;
	/* A reused file may be longer than this text. */
	if (write_full(fd, text, len) == -1 || ftruncate(fd, len) == -1 ||
	    (dosync && fsync(fd) == -1)) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

static int
write_env_file(const char *path, const struct envelope *e, int dosync)
{
	char	*text;
	int	 r;

	if ((text = envelope_format(e)) == NULL) {
		errno = EOVERFLOW;
		return -1;
	}
	r = spool_write_env(open(path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0600), text, dosync);
	free(text);
	return r;
}

static int
errno_result(void)
{
	return errno == ENOSPC || errno == EDQUOT ? SPOOL_NOSPACE :
	    SPOOL_TEMPFAIL;
}

/*
 * On the sync thread: queued's own file gets the message's size (a file
 * from the pool may be longer: cut it now, while its last page is
 * unlikely to be under writeback, or the cut would wait for the disk),
 * and the envelope text is made.
 */
static int
commit_one_prepare(struct incoming *in)
{
	struct stat	st;

	if (in->filefd == -1)
		return in->result;	/* commit_batch could not take one */
	if (fstat(in->filefd, &st) == -1 || (st.st_size >
	    in->env->datasize && ftruncate(in->filefd,
	    in->env->datasize) == -1)) {
		log_warn("spool: %s", in->env->id);
		return errno_result();
	}
	if ((in->envtext = envelope_format(in->env)) == NULL) {
		log_warnx("spool: %s: envelope too large", in->env->id);
		return SPOOL_TEMPFAIL;
	}
	return SPOOL_OK;
}

/*
 * Put the message (envelope and data) in the batch's journal records,
 * and the same data into queued's own file: one read of the memfd.
 */
static int
commit_one_journal(struct incoming *in, struct jbatch *jb)
{
	size_t	 envlen = strlen(in->envtext), len = in->env->datasize;
	char	*p;

	p = jbatch_reserve(jb, envlen, len);
	if (pread_full(in->datafd, p, len, 0) == -1) {
		log_warn("spool: reading back %s", in->env->id);
		return SPOOL_TEMPFAIL;
	}
	if (write_full(in->filefd, p, len) == -1) {
		log_warn("spool: writing %s", in->env->id);
		return errno_result();
	}
	in->copied = 1;
	jbatch_commit(jb, in->envtext, envlen, len);
	in->journaled = 1;
	return SPOOL_OK;
}

/*
 * Move a message's files from incoming/ into the queue: the data first,
 * since data without an envelope is dropped at start while an envelope
 * without data is corrupt. Neither replaces an existing file.
 */
int
spool_files_commit(const char *id)
{
	char	from[64], to[64];

	snprintf(from, sizeof(from), "incoming/%s", id);
	snprintf(to, sizeof(to), "msg/%s", id);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == -1) {
		log_warn("spool: rename %s", from);
		return -1;
	}
	snprintf(from, sizeof(from), "incoming/%s.env", id);
	snprintf(to, sizeof(to), "env/%s", id);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == -1) {
		log_warn("spool: rename %s", from);
		snprintf(from, sizeof(from), "msg/%s", id);
		snprintf(to, sizeof(to), "incoming/%s", id);
		rename(from, to);
		return -1;
	}
	return 0;
}

/* The memfd's data into queued's file, for a message not journaled. */
static int
commit_one_copy(struct incoming *in)
{
	char	buf[64 * 1024];
	off_t	off;
	size_t	n;

	for (off = 0; off < in->env->datasize; off += n) {
		n = MIN(sizeof(buf), (size_t)(in->env->datasize - off));
		if (pread_full(in->datafd, buf, n, off) == -1 ||
		    write_full(in->filefd, buf, n) == -1) {
			log_warn("spool: copying %s", in->env->id);
			return errno_result();
		}
	}
	in->copied = 1;
	return SPOOL_OK;
}

/* The slow path's files, written and renamed before the syncfs. */
static int
commit_one_files(struct incoming *in)
{
	char	path[64];
	int	r;

	if (!in->copied && (r = commit_one_copy(in)) != SPOOL_OK)
		return r;
	snprintf(path, sizeof(path), "incoming/%s.env", in->env->id);
	if (spool_write_env(open(path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0600), in->envtext, 0) == -1) {
		log_warn("spool: cannot write %s", path);
		return errno_result();
	}
	return spool_files_commit(in->env->id) == 0 ? SPOOL_OK :
	    SPOOL_TEMPFAIL;
}

/*
 * On the sync thread: make the batch durable. Messages up to
 * JNL_INLINE_MAX go into the journal, one write and one fdatasync for
 * all; larger ones, or all when the journal has no room, get their files
 * written now and one syncfs() (the way every message went before the
 * journal).
 */
static void
batch_work(void *arg)
{
	struct batch	*b = arg;
	struct incoming	*in;
	size_t		 i, nslow = 0;
	int		 full, result;

	for (i = 0; i < b->ndone; i++)
		jbatch_done(&b->jb, b->done[i]);
	for (i = 0; i < b->n; i++) {
		in = b->v[i];
		if ((in->result = commit_one_prepare(in)) == SPOOL_OK &&
		    in->env->datasize <= JNL_INLINE_MAX)
			in->result = commit_one_journal(in, &b->jb);
	}
	if (b->jb.len > 0 && journal_write(&b->jb) == -1) {
		/* No room in the journal: each file on its own. */
		full = errno == EAGAIN || errno == ENOSPC || errno == EDQUOT;
		result = errno_result();
		if (!full)
			log_warn("spool: journal");
		for (i = 0; i < b->n; i++)
			if (b->v[i]->journaled) {
				b->v[i]->journaled = 0;
				if (!full)
					b->v[i]->result = result;
			}
	}
	for (i = 0; i < b->n; i++) {
		in = b->v[i];
		if (in->result != SPOOL_OK || in->journaled)
			continue;
		in->result = commit_one_files(in);
		nslow++;
	}
	b->synced = 1;
	if (nslow > 0 && !(b->synced = syncfs(dir_root) == 0))
		log_warn("spool: syncfs");
}

static void
queue_it(struct incoming *in)
{
	runner_add(in->env);
	nqueued++;
	in->env = envelope_new("");	/* ownership moved */
	incoming_drop(in, 0);
}

/* Journaled: queued now, its data where smtpd wrote it (held.c). */
static void
queue_held(struct incoming *in, int seg)
{
	held_add(in->env, seg, in->datafd);
	in->datafd = -1;
	queue_it(in);
}

/* Back on the loop: answer smtpd, hand the messages on. */
static void
batch_done(void *arg)
{
	struct batch	*b = arg;
	struct incoming	*in;
	size_t		 i, n = 0;

	for (i = 0; i < b->n; i++) {
		in = b->v[i];
		if (in->result == SPOOL_OK && !in->journaled && !b->synced) {
			/* Renamed but maybe not durable: do not promise. */
			spool_unlink(in->env);
			in->result = SPOOL_TEMPFAIL;
		}
		reply_smtpd(IMSG_SPOOL_COMMIT_REPLY, in->sess, in->env->id,
		    1, in->result, -1);
		n += in->result == SPOOL_OK;
		if (in->result == SPOOL_OK)
			metrics_committed(in->env);
		if (in->result != SPOOL_OK)
			incoming_drop(in, 1);
		else if (in->journaled)
			queue_held(in, b->jb.seg);
		else
			queue_it(in);
	}
	qcount.accepted += n;
	log_debug("spool: committed %zu messages in one batch", n);
	batch_free(b);
	batch_running = 0;
	commit_schedule();
}

static void
commit_batch(int fd, short ev, void *arg)
{
	struct incoming	*in;
	struct batch	*b;
	char		 path[64];

	commit_scheduled = 0;
	if (batch_running || exiting)
		return;		/* batch_done starts the next one */
	b = xcalloc(1, sizeof(*b));
	TAILQ_FOREACH(in, &incoming, entry)
		if (in->commit && !in->inbatch && !in->signing)
			b->n++;
	if (b->n == 0 && (ndone == 0 || (ndone < DONE_FLUSH && !done_due))) {
		free(b);
		return;
	}
	b->v = xcalloc(b->n + 1, sizeof(*b->v));
	b->n = 0;
	TAILQ_FOREACH(in, &incoming, entry)
		if (in->commit && !in->inbatch && !in->signing) {
			in->inbatch = 1;
			b->v[b->n++] = in;
			/* The pool is the loop's: take the file here. */
			snprintf(path, sizeof(path), "incoming/%s",
			    in->env->id);
			if ((in->filefd = fpool_take(path)) == -1) {
				log_warn("spool: cannot create %s", path);
				in->result = errno_result();
			}
		}
	take_done(b);
	batch_running = 1;
	bgjob_submit(batch_work, batch_done, b);
}

/*
 * On the sync thread, last: void the journal if every message is in its
 * files, else note in it what was removed since the last batch.
 */
static void
exit_work(void *arg)
{
	struct batch	*b = arg;
	size_t		 i;

	if (journal_close() == 0)
		return;
	for (i = 0; i < b->ndone; i++)
		jbatch_done(&b->jb, b->done[i]);
	if (b->jb.len > 0 && journal_write(&b->jb) == -1)
		log_warn("spool: journal at exit");
}

static void
exit_done(void *arg)
{
	batch_free(arg);
	exit(0);
}

/*
 * Leave once the journal knows every message removed, or a start would
 * deliver them again; better, with every message in its files, void it.
 * The sync thread runs this after any batch under way; smtpd is gone by
 * now, so no new one comes.
 */
void
spool_exit(void)
{
	struct batch	*b;

	if (exiting)
		return;
	exiting = 1;
	b = xcalloc(1, sizeof(*b));
	take_done(b);
	held_finalize_all();
	bgjob_submit(exit_work, exit_done, b);
}

int
spool_open_data(const struct envelope *e)
{
	char	path[64];

	held_data_path(e, path, sizeof(path));
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Remove a message's files (into the pool): the envelope first, since
 * data without an envelope is garbage at start, while the reverse would
 * be corrupt. */
static void
spool_unlink(struct envelope *e)
{
	char	path[64];

	snprintf(path, sizeof(path), "env/%s", e->id);
	if (fpool_give(path, 0) == -1 && errno != ENOENT)
		log_warn("spool: unlink %s", path);
	snprintf(path, sizeof(path), "msg/%s", e->id);
	if (fpool_give_data(path, e) == -1 && errno != ENOENT)
		log_warn("spool: unlink %s", path);
}

static void
done_timeout(int fd, short ev, void *arg)
{
	done_due = 1;
	commit_schedule();
}

/* The journal learns with the next batch that id is gone. */
static void
note_done(const char *id)
{
	struct timeval	done_wait = { DONE_WAIT, 0 };

	if (ndone == ndone_cap) {
		ndone_cap = ndone_cap ? ndone_cap * 2 : 64;
		done_ids = xreallocarray(done_ids, ndone_cap,
		    sizeof(*done_ids));
	}
	strlcpy(done_ids[ndone++], id, sizeof(*done_ids));
	if (ndone >= DONE_FLUSH)
		commit_schedule();
	else if (ndone == 1)
		evtimer_add(&ev_done, &done_wait);
}

/* A queued message is done. */
void
spool_remove(struct envelope *e)
{
	if (!held_remove(e))
		spool_unlink(e);
	if (nqueued > 0)
		nqueued--;
	note_done(e->id);
}

/*
 * The envelope goes at once, so a restart forgets the message (its data
 * without an envelope is dropped at start), and so does the journal; the
 * data stays while a delivery still reads it. spool_remove follows.
 */
void
spool_forget(struct envelope *e)
{
	char	path[64];

	snprintf(path, sizeof(path), "env/%s", e->id);
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("spool: unlink %s", path);
	else if (fsync(dir_env) == -1)
		log_warn("spool: fsync env/");
	note_done(e->id);
}

int
spool_update(struct envelope *e)
{
	char	tmp[64], path[64];

	if (held_finalize(e) == -1)
		return -1;
	snprintf(tmp, sizeof(tmp), "incoming/%s.env", e->id);
	snprintf(path, sizeof(path), "env/%s", e->id);
	if (write_env_file(tmp, e, 1) == -1 || rename(tmp, path) == -1 ||
	    fsync(dir_env) == -1) {
		log_warn("spool: cannot update envelope %s", e->id);
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
spool_inject(struct envelope *e, const char *data, size_t len)
{
	char	path[64], envtmp[64], to[64];
	int	fd;

	e->datasize = len;
	snprintf(path, sizeof(path), "incoming/%s", e->id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) == -1) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	snprintf(envtmp, sizeof(envtmp), "incoming/%s.env", e->id);
	if (write_env_file(envtmp, e, 1) == -1)
		goto fail;
	snprintf(to, sizeof(to), "msg/%s", e->id);
	if (rename(path, to) == -1)
		goto fail;
	snprintf(to, sizeof(to), "env/%s", e->id);
	if (rename(envtmp, to) == -1 || fsync(dir_msg) == -1 ||
	    fsync(dir_env) == -1)
		goto fail;
	nqueued++;
	return 0;
fail:
	log_warn("spool: cannot queue %s", e->id);
	unlink(path);
	unlink(envtmp);
	snprintf(to, sizeof(to), "msg/%s", e->id);
	unlink(to);
	return -1;
}

static int
open_dir(const char *name)
{
	int	fd;

	if (mkdir(name, 0700) == -1 && errno != EEXIST)
		fatal("spool: mkdir %s", name);
	if ((fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		fatal("spool: open %s", name);
	return fd;
}

static void
remove_all(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[PATH_MAX];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (fpool_give(path, -1) == 0)
			log_info("spool: removed uncommitted %s", path);
	}
	closedir(d);
}

static void
set_aside(const char *id, const char *why)
{
	char	from[PATH_MAX], to[PATH_MAX];

	log_warnx("spool: envelope %s is corrupt (%s); moved to corrupt/",
	    id, why);
	mkdir("corrupt", 0700);
	snprintf(from, sizeof(from), "env/%s", id);
	snprintf(to, sizeof(to), "corrupt/%s.env", id);
	rename(from, to);
	snprintf(from, sizeof(from), "msg/%s", id);
	snprintf(to, sizeof(to), "corrupt/%s.msg", id);
	rename(from, to);
}

static void
load_one(const char *id)
{
	struct envelope	*e;
	struct stat	 st;
	char		 path[PATH_MAX], why[256], *text;

	snprintf(path, sizeof(path), "env/%s", id);
	if (file_read_all(path, ENV_TEXT_MAX, &text, NULL) == -1) {
		set_aside(id, strerror(errno));
		return;
	}
	e = envelope_new("");
	if (envelope_parse(text, e, why, sizeof(why)) == -1 ||
	    strcmp(e->id, id) != 0) {
		free(text);
		envelope_free(e);
		set_aside(id, why[0] ? why : "id does not match its name");
		return;
	}
	free(text);
	snprintf(path, sizeof(path), "msg/%s", id);
	if (stat(path, &st) == -1) {
		envelope_free(e);
		set_aside(id, "message data missing");
		return;
	}
	if (e->datasize > 0 && st.st_size != e->datasize) {
		/* Cut short by a crash inside its commit: never answered
		 * 250, so the client still has it. */
		log_info("queue id=%s result=removed reason=\"data "
		    "incomplete, commit never finished\" size=%lld of=%lld",
		    id, (long long)st.st_size, e->datasize);
		spool_unlink(e);
		envelope_free(e);
		return;
	}
	nqueued++;
	runner_restore(e);
}

/* Committed envelopes go back to the runner; data without one goes. */
static void
recover(void)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 path[PATH_MAX];

	remove_all("incoming");
	if ((d = opendir("msg")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "env/%s", de->d_name);
			if (stat(path, &st) == -1) {
				snprintf(path, sizeof(path), "msg/%s",
				    de->d_name);
				fpool_give(path, -1);
				log_info("spool: removed uncommitted %s",
				    path);
			}
		}
		closedir(d);
	}
	if ((d = opendir("env")) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' &&
		    strlen(de->d_name) == QUEUE_ID_LEN)
			load_one(de->d_name);
	closedir(d);
	log_info("spool: %zu messages in the queue at start", nqueued);
}

void
spool_init(void)
{
	if ((dir_root = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		fatal("spool: open .");
	close(open_dir("incoming"));
	fpool_init();
	dir_msg = open_dir("msg");
	dir_env = open_dir("env");
	journal_init(dir_root);
	event_set(&ev_commit, -1, 0, commit_batch, NULL);
	event_base_set(proc->base, &ev_commit);
	evtimer_set(&ev_done, done_timeout, NULL);
	event_base_set(proc->base, &ev_done);
	held_init();
	bgjob_init(proc->base);
	bgjob_init_lane(proc->base, BGJOB_CPU);
	recover();
}
