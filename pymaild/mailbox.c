/*
 * The mailbox store's side of POP3. pop3d touches no file: it asks here
 * to log a user in, which verifies the password off the loop, takes the
 * lock of the mailbox and lists it; to open message n,
 * which passes back a read-only descriptor; and at QUIT to delete what
 * the session marked. The lock lives as long as the session and no
 * longer: UPDATE and RELEASE both end it. The lock is the file lock of
 * common/mboxlock.c, since other hosts may serve the same store; the
 * tree of this parent's sessions only answers its own [IN-USE] without
 * a system call.
 *
 * The payloads of the IMSG_POP3_* messages are documented in
 * common/proto.h, next to their types.
 *
 * The listing is a snapshot: mail delivered during the session is not in
 * it. A message's size is the W= figure of its name when there is one,
 * else counted once from the file and remembered. Its UID is the unique
 * part of the name (before the first ',' or ':'), which does not change
 * when the message moves from new/ to cur/ and gains flags.
 */
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/tree.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "maildirsize.h"
#include "mboxlock.h"
#include "pymaild.h"
#include "util.h"

#define UID_MAX		70		/* RFC 1939 */
#define MSGF_DELETE	0x01
#define MSGF_SEEN	0x02
#define SUB_NEW		0
#define SUB_CUR		1
#define WCACHE_SLOTS	16384		/* sizes counted from files */

static const char *const subdirs[] = { "new", "cur" };

struct mmsg {
	uint64_t	size;
	uint32_t	name;		/* its file name, in names */
	uint8_t		sub;		/* SUB_NEW or SUB_CUR */
	uint8_t		flags;
};

struct mbox {
	RB_ENTRY(mbox)	 bysid;
	RB_ENTRY(mbox)	 byuser;
	uint32_t	 sid;
	int		 locked;	/* else checking the password */
	int		 released;	/* pop3d left before the answer */
	int		 known;
	int		 lockfd;	/* MAILDIR/USER/.pop3.lock, held */
	char		 user[USER_NAME_MAX + 1];
	char		 addr[64];
	struct mmsg	*msgs;
	uint32_t	 n, cap;
	char		*names;
	size_t		 nameslen, namescap;
};

RB_HEAD(mbox_sids, mbox);
RB_HEAD(mbox_users, mbox);

static int
mbox_sid_cmp(struct mbox *a, struct mbox *b)
{
	return a->sid < b->sid ? -1 : a->sid > b->sid;
}

static int
mbox_user_cmp(struct mbox *a, struct mbox *b)
{
	return strcmp(a->user, b->user);
}

RB_GENERATE_STATIC(mbox_sids, mbox, bysid, mbox_sid_cmp)
RB_GENERATE_STATIC(mbox_users, mbox, byuser, mbox_user_cmp)

static struct mbox_sids		sids = RB_INITIALIZER(&sids);
static struct mbox_users	locks = RB_INITIALIZER(&locks);

/* Sizes counted from files without W=, keyed by what changes with them. */
static struct wcache {
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec	mtime;
	uint64_t	wsize;
} wcache[WCACHE_SLOTS];

static struct mbox *
mbox_find(uint32_t sid)
{
	struct mbox	key;

	key.sid = sid;
	return RB_FIND(mbox_sids, &sids, &key);
}

static void
mbox_unlock(struct mbox *mb)
{
	if (mb->locked)
		RB_REMOVE(mbox_users, &locks, mb);
	mb->locked = 0;
	if (mb->lockfd != -1)
		close(mb->lockfd);
	mb->lockfd = -1;
}

static void
mbox_free(struct mbox *mb)
{
	RB_REMOVE(mbox_sids, &sids, mb);
	mbox_unlock(mb);
	free(mb->msgs);
	free(mb->names);
	free(mb);
}

/*
 * Descriptors queued toward pop3d are open files of ours until it reads
 * them, and so are those of every delivery and login: a pop3d that asks
 * and never reads must not use them up. A working one has a message
 * asked for per session and a few hundred ahead (pop3d.h); past this
 * bound it is hostile. fds_queued counts each one queued and is reset
 * when the queue is empty, so it only ever overstates; the queue is
 * walked for the exact figure only when that overstatement is too high.
 */
static size_t	fds_queued;

static size_t
fds_waiting_max(void)
{
	return 2 * (size_t)env->conf.maxsessions + 1024;
}

static size_t
fds_waiting(const struct imsgbuf *ib)
{
	const struct imsg_out	*o;
	size_t			 n = 0;

	for (o = ib->whead; o != NULL; o = o->next)
		if (o->fd != -1)
			n++;
	return n;
}

/* May `more` descriptors be queued toward pop3d? */
static int
fds_room(size_t more)
{
	struct child	*c = &env->children[PROC_POP3D];

	if (fds_queued + more <= fds_waiting_max())
		return 1;
	fds_queued = fds_waiting(&c->chan.ib);
	if (fds_queued + more <= fds_waiting_max())
		return 1;
	log_warnx("pop3d (pid %d) reads nothing: %zu descriptors wait for "
	    "it, %zu more asked", (int)c->pid, fds_queued, more);
	return 0;
}

static void
queue_pop3d(uint32_t type, struct msgbuild *mb, int fd)
{
	struct chan	*c = &env->children[PROC_POP3D].chan;

	if (chan_queue(c, mb, type, 0, fd) == 0 && fd != -1)
		fds_queued++;
}

/*
 * Written at once: one wake-up per request instead of three. pop3d reads
 * its channel through one imsgbuf once it has sessions, so the replies to
 * an OPEN may take all their descriptors in one sendmsg (and one read).
 */
static void
flush_pop3d(void)
{
	struct chan	*c = &env->children[PROC_POP3D].chan;

	if (!c->active)
		return;
	imsgbuf_batch_fds(&c->ib);
	chan_flush(c);
	if (c->ib.whead == NULL)
		fds_queued = 0;
}

static void
send_pop3d(uint32_t type, struct msgbuild *mb, int fd)
{
	queue_pop3d(type, mb, fd);
	flush_pop3d();
}

static void
login_reply(uint32_t sid, uint32_t result, uint32_t delay, uint32_t count)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, sid);
	mb_u32(&mb, result);
	mb_u32(&mb, delay);
	mb_u32(&mb, count);
	send_pop3d(IMSG_POP3_LOGIN_REPLY, &mb, -1);
}

static const char *
msg_name(const struct mbox *mb, const struct mmsg *m)
{
	return mb->names + m->name;
}

static int
msg_path(const struct mbox *mb, const struct mmsg *m, char *buf,
    size_t len)
{
	int	n;

	n = snprintf(buf, len, "%s/%s/Maildir/%s/%s", env->conf.maildir,
	    mb->user, subdirs[m->sub], msg_name(mb, m));
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---------------------------------------------------------------- */
/* Sizes and UIDs */

/* The figure key= (S= or W=) of a Maildir name ("unique,S=n,W=n:2,flags"),
 * or -1. */
static long long
name_field(const char *name, char key)
{
	const char	*p, *end = strchr(name, ':'), *errstr;
	char		 num[24];
	size_t		 len;
	long long	 v;

	if (end == NULL)
		end = name + strlen(name);
	for (p = strchr(name, ','); p && p < end; p = strchr(p + 1, ',')) {
		if (p[1] != key || p[2] != '=')
			continue;
		len = strcspn(p + 3, ",:");
		if (len == 0 || len >= sizeof(num))
			return -1;
		memcpy(num, p + 3, len);
		num[len] = '\0';
		v = strtonum(num, 0, LLONG_MAX, &errstr);
		return errstr ? -1 : v;
	}
	return -1;
}

/* The octets RETR sends for this file: pop3d turns each bare LF into
 * CRLF and ends an unfinished last line. */
static int
count_wsize(int fd, uint64_t *out)
{
	char		buf[65536];
	uint64_t	w = 0;
	ssize_t		n, i;
	int		cr = 0, last = '\n';

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' && !cr)
				w++;
			cr = buf[i] == '\r';
		}
		w += n;
		last = buf[n - 1];
	}
	if (last != '\n')
		w += 2;
	*out = w;
	return 0;
}

static struct wcache *
wcache_slot(const struct stat *st)
{
	uint64_t	h = (uint64_t)st->st_ino * 0x9e3779b97f4a7c15ULL ^
	    (uint64_t)st->st_dev;

	return &wcache[h % WCACHE_SLOTS];
}

/* Size of a file without W=: remembered until the file changes. */
static int
file_wsize(int dirfd, const char *name, uint64_t *out)
{
	struct stat	 st;
	struct wcache	*c;
	int		 fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	c = wcache_slot(&st);
	if (c->ino == st.st_ino && c->dev == st.st_dev &&
	    c->size == st.st_size && c->mtime.tv_sec == st.st_mtim.tv_sec &&
	    c->mtime.tv_nsec == st.st_mtim.tv_nsec) {
		close(fd);
		*out = c->wsize;
		return 0;
	}
	r = count_wsize(fd, out);
	close(fd);
	if (r == 0) {
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		c->size = st.st_size;
		c->mtime = st.st_mtim;
		c->wsize = *out;
	}
	return r;
}

static size_t
unique_len(const char *name)
{
	return strcspn(name, ",:");
}

static int
uid_char_ok(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '%' && c != '~';
}

/*
 * The UID of a unique part. Maildir names are almost always valid UIDs
 * as they are. Those that are not (octets RFC 1939 forbids, a leading
 * '~', over 70 characters) get a '~' form: the name with such octets
 * escaped as %XX, and when that is too long, its start and a digest of
 * the whole name. The forms cannot meet: a plain UID never starts with
 * '~', an escaped one always holds a '%' or is "~", a long one holds a
 * second '~'. Stable, since it depends on the name alone.
 */
static void
make_uid(const char *u, size_t ulen, char out[UID_MAX + 1])
{
	char	esc[UID_MAX * 3 + 4], digest[SHA256_DIGEST_STRING_LENGTH];
	size_t	i, o = 0;
	int	plain = ulen > 0 && ulen <= UID_MAX && u[0] != '~';

	for (i = 0; i < ulen && plain; i++)
		plain = (unsigned char)u[i] >= 0x21 &&
		    (unsigned char)u[i] <= 0x7e;
	if (plain) {
		memcpy(out, u, ulen);
		out[ulen] = '\0';
		return;
	}
	for (i = 0; i < ulen && o < UID_MAX; i++) {
		if (uid_char_ok(u[i]))
			esc[o++] = u[i];
		else
			o += snprintf(esc + o, 4, "%%%02X",
			    (unsigned char)u[i]);
	}
	esc[o] = '\0';
	if (i == ulen && o + 1 <= UID_MAX) {
		out[0] = '~';
		memcpy(out + 1, esc, o);
		out[o + 1] = '\0';
		return;
	}
	SHA256Data((const uint8_t *)u, ulen, digest);
	snprintf(out, UID_MAX + 1, "~%.28s~%.40s", esc, digest);
}

/* A second file with the same unique part (a broken Maildir): named by
 * the digest of where it is, in the '~'+40 hex form no other takes. */
static void
make_dup_uid(const struct mbox *mb, const struct mmsg *m,
    char out[UID_MAX + 1])
{
	SHA2_CTX	ctx;
	uint8_t		d[SHA256_DIGEST_LENGTH];
	const char	*name = msg_name(mb, m);
	int		i;

	SHA256Init(&ctx);
	SHA256Update(&ctx, (const uint8_t *)subdirs[m->sub],
	    strlen(subdirs[m->sub]) + 1);
	SHA256Update(&ctx, (const uint8_t *)name, strlen(name));
	SHA256Final(d, &ctx);
	out[0] = '~';
	for (i = 0; i < 20; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
}

/* ---------------------------------------------------------------- */
/* Listing */

static void
add_msg(struct mbox *mb, int sub, const char *name, uint64_t size)
{
	size_t		 len = strlen(name) + 1;
	struct mmsg	*m;

	if (mb->n == mb->cap) {
		mb->cap = mb->cap ? mb->cap * 2 : 64;
		mb->msgs = xreallocarray(mb->msgs, mb->cap, sizeof(*mb->msgs));
	}
	while (mb->nameslen + len > mb->namescap) {
		mb->namescap = mb->namescap ? mb->namescap * 2 : 4096;
		mb->names = xreallocarray(mb->names, 1, mb->namescap);
	}
	memcpy(mb->names + mb->nameslen, name, len);
	m = &mb->msgs[mb->n++];
	m->size = size;
	m->name = mb->nameslen;
	m->sub = sub;
	m->flags = 0;
	mb->nameslen += len;
}

static int
is_file(DIR *d, const struct dirent *de)
{
	struct stat	st;

	if (de->d_type == DT_REG)
		return 1;
	if (de->d_type != DT_UNKNOWN)
		return 0;
	return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

static int
scan_sub(struct mbox *mb, int sub)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX];
	long long	 w;
	uint64_t	 size;

	snprintf(path, sizeof(path), "%s/%s/Maildir/%s", env->conf.maildir,
	    mb->user, subdirs[sub]);
	if ((d = opendir(path)) == NULL) {
		log_warn("pop3 user=%s: cannot list %s", mb->user, path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !is_file(d, de))
			continue;
		if ((w = name_field(de->d_name, 'W')) >= 0)
			size = w;
		else if (file_wsize(dirfd(d), de->d_name, &size) == -1)
			continue;	/* gone meanwhile, or not a file */
		add_msg(mb, sub, de->d_name, size);
	}
	closedir(d);
	return 0;
}

/* Oldest first: Maildir unique parts start with the delivery time. */
static int
msg_cmp(const void *a, const void *b, void *arg)
{
	const struct mbox	*mb = arg;
	const struct mmsg	*x = a, *y = b;
	const char		*nx = msg_name(mb, x), *ny = msg_name(mb, y);
	size_t			 lx = unique_len(nx), ly = unique_len(ny);
	int			 r;

	if ((r = memcmp(nx, ny, lx < ly ? lx : ly)) != 0)
		return r;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return strcmp(nx, ny);
}

static int
same_unique(const struct mbox *mb, const struct mmsg *a,
    const struct mmsg *b)
{
	const char	*na = msg_name(mb, a), *nb = msg_name(mb, b);
	size_t		 la = unique_len(na);

	return la == unique_len(nb) && memcmp(na, nb, la) == 0;
}

static void
send_listing(struct mbox *mb)
{
	struct msgbuild	 b;
	struct mmsg	*m;
	char		 uid[UID_MAX + 1];
	const char	*name;
	uint32_t	 i, n = 0;

	mb_init(&b);
	for (i = 0; i < mb->n; i++) {
		m = &mb->msgs[i];
		name = msg_name(mb, m);
		if (i > 0 && same_unique(mb, m - 1, m))
			make_dup_uid(mb, m, uid);
		else
			make_uid(name, unique_len(name), uid);
		if (n > 0 && b.len + 12 + strlen(uid) > sizeof(b.buf)) {
			memcpy(b.buf + sizeof(uint32_t), &n, sizeof(n));
			queue_pop3d(IMSG_POP3_LISTING, &b, -1);
			n = 0;
		}
		if (n == 0) {
			mb_init(&b);
			mb_u32(&b, mb->sid);
			mb_u32(&b, 0);	/* n, filled in when sent */
		}
		mb_u64(&b, m->size);
		mb_str(&b, uid);
		n++;
	}
	if (n > 0) {
		memcpy(b.buf + sizeof(uint32_t), &n, sizeof(n));
		send_pop3d(IMSG_POP3_LISTING, &b, -1);
	}
}

static int
mbox_list(struct mbox *mb)
{
	if (scan_sub(mb, SUB_NEW) == -1 || scan_sub(mb, SUB_CUR) == -1)
		return -1;
	if (mb->n > 0)
		qsort_r(mb->msgs, mb->n, sizeof(*mb->msgs), msg_cmp, mb);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Login */

static void
login_failed(struct mbox *mb)
{
	int	n;

	n = auth_record_failure(mb->addr, mb->user, mb->known);
	log_info("pop3 login user=%s from=%s result=failed failures=%d",
	    mb->user, mb->addr, n);
	login_reply(mb->sid, POP3_LOGIN_FAIL, auth_delay_ms(n), 0);
	mbox_free(mb);
}

/* The lock on the store, which every host and pymailadm honour. */
static uint32_t
lock_store(struct mbox *mb)
{
	switch (mboxlock_take(env->conf.maildir, mb->user, &mb->lockfd)) {
	case MBOXLOCK_OK:
		return POP3_LOGIN_OK;
	case MBOXLOCK_BUSY:
		return POP3_LOGIN_INUSE;
	case MBOXLOCK_NOTFILE:
		log_warnx("pop3 user=%s: %s/%s/%s is not a regular file: "
		    "session refused", mb->user, env->conf.maildir, mb->user,
		    MBOXLOCK_NAME);
		return POP3_LOGIN_TEMPFAIL;
	default:
		log_warn("pop3 user=%s: cannot lock %s/%s/%s", mb->user,
		    env->conf.maildir, mb->user, MBOXLOCK_NAME);
		return POP3_LOGIN_TEMPFAIL;
	}
}

static void
login_done(void *arg, int ok, const char *newhash)
{
	struct mbox	*mb = arg;
	uint32_t	 result;

	child_request_done(PROC_POP3D);
	if (mb->released) {
		mbox_free(mb);
		return;
	}
	if (!ok || !mb->known) {
		login_failed(mb);
		return;
	}
	if (newhash)
		store_upgrade_hash(mb->user, newhash);
	/* [IN-USE] only now, so it tells nothing without the password. */
	result = RB_FIND(mbox_users, &locks, mb) != NULL ? POP3_LOGIN_INUSE :
	    lock_store(mb);
	if (result == POP3_LOGIN_INUSE)
		log_info("pop3 login user=%s from=%s result=in-use",
		    mb->user, mb->addr);
	if (result != POP3_LOGIN_OK) {
		login_reply(mb->sid, result, 0, 0);
		mbox_free(mb);
		return;
	}
	RB_INSERT(mbox_users, &locks, mb);
	mb->locked = 1;
	if (mbox_list(mb) == -1) {
		login_reply(mb->sid, POP3_LOGIN_TEMPFAIL, 0, 0);
		mbox_free(mb);
		return;
	}
	log_info("pop3 login user=%s from=%s result=ok messages=%u",
	    mb->user, mb->addr, mb->n);
	login_reply(mb->sid, POP3_LOGIN_OK, 0, mb->n);
	send_listing(mb);
}

/* A well-formed login: refused at once if its address is blocked, else
 * the password is checked in the background (login_done answers). */
static int
login_begin(const struct req_pop3_login *rq)
{
	struct mbox	*mb;
	const char	*hash;
	int		 legacy;

	if (mbox_find(rq->sid) != NULL)
		return -1;
	mb = xcalloc(1, sizeof(*mb));
	mb->sid = rq->sid;
	mb->lockfd = -1;
	strlcpy(mb->addr, rq->addr, sizeof(mb->addr));
	if (auth_blocked(mb->addr)) {
		log_info("pop3 login from=%s result=blocked", mb->addr);
		login_reply(mb->sid, POP3_LOGIN_BLOCKED, 0, 0);
		free(mb);
		return 0;
	}
	if (child_request_begin(&env->children[PROC_POP3D]) == -1) {
		free(mb);
		return -1;
	}
	RB_INSERT(mbox_sids, &sids, mb);
	hash = store_login_hash(rq->user, mb->user, &mb->known);
	legacy = mb->known && password_is_legacy(hash);
	auth_check(mb->user, hash, rq->password, legacy, login_done, mb);
	return 0;
}

int
mailbox_login(struct child *from, struct imsg *im)
{
	struct req_pop3_login	rq;
	int			r;

	r = req_read_pop3_login(im->data, im->datalen, &rq);
	/* No copy of the password outlives the request. */
	explicit_bzero(im->data, im->datalen);
	if (r == 0)
		r = login_begin(&rq);
	explicit_bzero(&rq, sizeof(rq));
	return r;
}

/* ---------------------------------------------------------------- */
/* Messages */

/*
 * Read-only, and without the access-time update a first read would
 * otherwise write into the inode: nobody reads a Maildir's atime, and
 * the write costs a dirty inode per message retrieved. Only the owner
 * may ask for that; a file put there by someone else is opened plainly.
 */
static int
open_message(int dirfd, const char *name)
{
	int	flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, fd;

	fd = openat(dirfd, name, flags | O_NOATIME);
	if (fd == -1 && errno == EPERM)
		fd = openat(dirfd, name, flags);
	return fd;
}

static void
open_one(struct mbox *mb, uint32_t index, int dirfd[2])
{
	struct msgbuild	 b;
	struct mmsg	*m = &mb->msgs[index];
	struct stat	 st;
	char		 path[PATH_MAX];
	long long	 size = -1;
	int		 fd = -1;

	/* One walk down to the folder per request, not per message. */
	if (dirfd[m->sub] == -1) {
		snprintf(path, sizeof(path), "%s/%s/Maildir/%s",
		    env->conf.maildir, mb->user, subdirs[m->sub]);
		dirfd[m->sub] = open(path, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC);
	}
	if (dirfd[m->sub] != -1)
		fd = open_message(dirfd[m->sub], msg_name(mb, m));
	/*
	 * Only what the listing saw: a regular file (its d_type), never a
	 * device. A name with S= was given by our delivery or import, which
	 * write regular files of that size: the fstat that would tell again
	 * costs a fifth of our work per message. Names from elsewhere get
	 * it. What only MAILDIR's owner could put in place meanwhile (a
	 * directory, a FIFO) fails pop3d's first read: that session ends.
	 */
	if (fd != -1)
		size = name_field(msg_name(mb, m), 'S');
	if (fd != -1 && size == -1) {
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			close(fd);
			fd = -1;
		} else
			size = st.st_size;
	}
	if (fd == -1)
		log_warn("pop3 user=%s: cannot open %s/%s", mb->user,
		    subdirs[m->sub], msg_name(mb, m));
	mb_init(&b);
	mb_u32(&b, mb->sid);
	mb_u32(&b, index);
	mb_u32(&b, fd == -1 ? 1 : 0);
	mb_u64(&b, fd == -1 ? 0 : (uint64_t)size);
	queue_pop3d(IMSG_POP3_OPEN_REPLY, &b, fd);
}

int
mailbox_open(struct child *from, struct imsg *im)
{
	struct req_pop3_open	 rq;
	struct mbox		*mb;
	uint32_t		 index;
	size_t			 i;
	int			 dirfd[2] = { -1, -1 }, r = 0;

	if (req_read_pop3_open(im->data, im->datalen, &rq) == -1 ||
	    (mb = mbox_find(rq.sid)) == NULL || !mb->locked ||
	    !fds_room(rq.index.n))
		return -1;
	for (i = 0; r == 0 && i < rq.index.n; i++) {
		index = req_entry(&rq.index, i);
		if (index >= mb->n)
			r = -1;
		else
			open_one(mb, index, dirfd);
	}
	if (dirfd[SUB_NEW] != -1)
		close(dirfd[SUB_NEW]);
	if (dirfd[SUB_CUR] != -1)
		close(dirfd[SUB_CUR]);
	/* The replies leave together, their descriptors in one sendmsg. */
	flush_pop3d();
	return r;
}

/* The name a message gets in cur/ with the seen flag, or NULL when it
 * has it already. Flags stay in ASCII order, as Maildir asks. */
static const char *
seen_name(const char *name, char *buf, size_t len)
{
	const char	*info = strstr(name, ":2,"), *p;
	size_t		 at;

	if (info == NULL) {
		if ((size_t)snprintf(buf, len, "%s:2,S", name) >= len)
			return NULL;
		return buf;
	}
	if (strchr(info + 3, 'S') != NULL)
		return NULL;
	for (p = info + 3; *p && *p < 'S'; p++)
		;
	at = p - name;
	if (strlen(name) + 2 > len)
		return NULL;
	memcpy(buf, name, at);
	buf[at] = 'S';
	strlcpy(buf + at + 1, p, len - at - 1);
	return buf;
}

/* Retrieved messages move to cur/ with the S flag; the unique part of
 * the name, and so the UID, stays. Best effort: a flag is not mail. */
static void
mark_seen(struct mbox *mb)
{
	struct mmsg	*m;
	char		 from[PATH_MAX], to[PATH_MAX], name[NAME_MAX + 1];
	const char	*nn;
	uint32_t	 i;

	for (i = 0; i < mb->n; i++) {
		m = &mb->msgs[i];
		if ((m->flags & (MSGF_SEEN | MSGF_DELETE)) != MSGF_SEEN)
			continue;
		if ((nn = seen_name(msg_name(mb, m), name, sizeof(name))) ==
		    NULL && m->sub == SUB_CUR)
			continue;
		if (nn == NULL)
			nn = msg_name(mb, m);
		if (msg_path(mb, m, from, sizeof(from)) == -1 ||
		    (size_t)snprintf(to, sizeof(to), "%s/%s/Maildir/cur/%s",
		    env->conf.maildir, mb->user, nn) >= sizeof(to))
			continue;
		if (rename(from, to) == -1 && errno != ENOENT)
			log_warn("pop3 user=%s: cannot mark %s seen",
			    mb->user, from);
	}
}

static void
sync_dirs(const struct mbox *mb)
{
	char	path[PATH_MAX];
	int	sub;

	for (sub = SUB_NEW; sub <= SUB_CUR; sub++) {
		snprintf(path, sizeof(path), "%s/%s/Maildir/%s",
		    env->conf.maildir, mb->user, subdirs[sub]);
		if (fsync_dir(path) == -1)
			log_warn("pop3 user=%s: fsync %s", mb->user, path);
	}
}

/*
 * UPDATE: each unlink removes one whole message or nothing, so a crash
 * half-way leaves every message there or gone. The folders are synced
 * before the client hears +OK. One maildirsize line takes off what the
 * unlinks freed, as every host on the store counts it (quota.c).
 */
static void
apply_update(struct mbox *mb)
{
	struct msgbuild	 b;
	struct mmsg	*m;
	struct stat	 st, pre, post;
	char		 path[PATH_MAX];
	uint32_t	 i, gone = 0, failed = 0;
	long long	 freed = 0, unlinked = 0;
	int		 order;

	order = quota_order_begin(env->conf.maildir, mb->user);
	for (i = 0; i < mb->n; i++) {
		m = &mb->msgs[i];
		if (!(m->flags & MSGF_DELETE))
			continue;
		if (msg_path(mb, m, path, sizeof(path)) == 0 &&
		    lstat(path, &st) == 0 && unlink(path) == 0) {
			gone++;
			unlinked++;
			freed += S_ISREG(st.st_mode) ? st.st_size : 0;
			continue;
		}
		/* Gone already: whoever removed it counted it. */
		if (errno == ENOENT) {
			gone++;
			continue;
		}
		log_warn("pop3 user=%s: cannot delete %s", mb->user, path);
		failed++;
	}
	if (unlinked > 0) {
		if (quota_append(env->conf.maildir, mb->user, -freed,
		    -unlinked, &pre, &post) == -1)
			log_warn("pop3 user=%s: append to %s", mb->user,
			    MDSIZE_NAME);
		store_usage_add(mb->user, -freed, &pre, &post);
	}
	quota_order_end(order);
	if (gone > 0)
		sync_dirs(mb);
	mark_seen(mb);
	log_info("pop3 update user=%s deleted=%u failed=%u left=%u",
	    mb->user, gone, failed, mb->n - gone);
	/* Free before the client hears +OK: its next login, on any host,
	 * must find the mailbox unlocked. */
	mbox_unlock(mb);
	mb_init(&b);
	mb_u32(&b, mb->sid);
	mb_u32(&b, failed ? 1 : 0);
	mb_u32(&b, mb->n - gone);
	send_pop3d(IMSG_POP3_UPDATE_REPLY, &b, -1);
}

int
mailbox_update(struct child *from, struct imsg *im)
{
	struct req_pop3_update	 rq;
	struct mbox		*mb;
	uint32_t		 e, index;
	size_t			 i;

	if (req_read_pop3_update(im->data, im->datalen, &rq) == -1 ||
	    (mb = mbox_find(rq.sid)) == NULL || !mb->locked)
		return -1;
	for (i = 0; i < rq.entry.n; i++) {
		e = req_entry(&rq.entry, i);
		index = e & ~POP3_UPDATE_SEEN;
		if (index >= mb->n)
			return -1;
		mb->msgs[index].flags |= e & POP3_UPDATE_SEEN ? MSGF_SEEN :
		    MSGF_DELETE;
	}
	if (rq.more)
		return 0;
	apply_update(mb);
	mbox_free(mb);
	return 0;
}

int
mailbox_release(struct child *from, struct imsg *im)
{
	struct req_pop3_release	 rq;
	struct mbox		*mb;
	uint32_t		 i;

	if (req_read_pop3_release(im->data, im->datalen, &rq) == -1)
		return -1;
	if ((mb = mbox_find(rq.sid)) == NULL) {
		log_warnx("pop3: release of unknown session %08x", rq.sid);
		return 0;
	}
	if (!mb->locked) {
		/* Still checking the password: drop it when done. */
		mb->released = 1;
		return 0;
	}
	/* A session that did not QUIT deletes nothing. */
	for (i = 0; i < mb->n; i++)
		mb->msgs[i].flags &= ~MSGF_DELETE;
	mark_seen(mb);
	log_debug("pop3 release user=%s", mb->user);
	mbox_free(mb);
	return 0;
}
