/*
 * The mailbox store's answers to the children: passwords and recipients.
 * Which role may ask what is requests.c's table.
 */
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/tree.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "maildirsize.h"
#include "pymaild.h"
#include "util.h"

static struct userdb	 users;
static struct stat	 users_st;	/* what we loaded, to spot changes */
static int		 users_bad;	/* warned about a corrupt file */

/*
 * What the store keeps per mailbox, so that a message does not cost a
 * scan or a parse:
 * - the quota figure, a cache of USER/Maildir/maildirsize (quota.c),
 *   which every host on the store appends to: used while a stat of the
 *   file shows what it was read from or what our own appends made of
 *   it, read again when another writer changed it;
 * - the mailbox options, which every message asks for three times (RCPT,
 *   end of data, delivery): parsed again only when a stat shows that
 *   default_options or USER/options changed.
 */
struct mbox {
	RB_ENTRY(mbox)	 entry;
	char		 user[USER_NAME_MAX + 1];
	long long	 bytes;		/* -1: not known */
	struct stat	 qst;		/* maildirsize it matches; 0: none */
	time_t		 recounted;	/* our last recount, monotonic */
	struct stat	 optst;		/* of USER/options; zero when absent */
	uint64_t	 optgen;	/* defaults it was built on; 0: none */
	struct mboxopts	 o;
	uint64_t	 qheld, optheld;	/* hold they were checked in */
};

RB_HEAD(mboxtree, mbox);
int	mbox_cmp(struct mbox *, struct mbox *);
RB_PROTOTYPE(mboxtree, mbox, entry, mbox_cmp);

int
mbox_cmp(struct mbox *a, struct mbox *b)
{
	return strcmp(a->user, b->user);
}

RB_GENERATE(mboxtree, mbox, entry, mbox_cmp);

static struct mboxtree	 mboxes = RB_INITIALIZER(&mboxes);
static struct mboxopts	 defaults;
static struct stat	 defaults_st;
static uint64_t		 defaults_gen;	/* 0: not loaded */
static uint64_t		 defaults_held;

/*
 * A hold: checks made together, in one turn of the loop, for requests
 * that had all arrived before it began (a batch of deliveries, the
 * requests of one read from a child). What a stat showed for the first
 * of them is what it shows for the others a few microseconds later, so
 * each file is stat'ed once per hold; a change made meanwhile is seen by
 * the next check after it, as without the hold. hold_gen numbers the holds: a figure checked in hold N is
 * taken as checked while hold N lasts, never after.
 */
static int		 holding;
static uint64_t		 hold_gen;

void
store_hold_begin(void)
{
	holding = 1;
	hold_gen++;
}

void
store_hold_end(void)
{
	holding = 0;
}

/*
 * The requests of one read from a child (smtpd's RCPT and end-of-data
 * checks come ten at a time under load) were all sent before the read:
 * a change to a file made after the first stat of the hold came after
 * each of them too, so answering them all from that stat is answering
 * each as of a moment after it arrived.
 */
void
store_burst(int begin)
{
	if (begin)
		store_hold_begin();
	else
		store_hold_end();
}

/* Was a file checked already in this hold? held_note says it was. */
static int
held_check(const uint64_t *seen)
{
	return holding && *seen == hold_gen;
}

static void
held_note(uint64_t *seen)
{
	*seen = holding ? hold_gen : 0;
}

static struct mbox *
mbox_find(const char *user)
{
	struct mbox	key;

	strlcpy(key.user, user, sizeof(key.user));
	return RB_FIND(mboxtree, &mboxes, &key);
}

static struct mbox *
mbox_get(const char *user)
{
	struct mbox	*m;

	if ((m = mbox_find(user)) != NULL)
		return m;
	m = xcalloc(1, sizeof(*m));
	strlcpy(m->user, user, sizeof(m->user));
	m->bytes = -1;
	RB_INSERT(mboxtree, &mboxes, m);
	return m;
}

/* After the users database changed: forget removed users. */
static void
mbox_forget_removed(void)
{
	struct mbox	*m, *next;

	RB_FOREACH_SAFE(m, mboxtree, &mboxes, next)
		if (userdb_find(&users, m->user) == NULL) {
			RB_REMOVE(mboxtree, &mboxes, m);
			free(m);
		}
}

static int	same_file(const struct stat *, const struct stat *);

static time_t
mono_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * A file past the Maildir++ age is recounted, but by our own clock at
 * most once in that time: a host whose clock is ahead of the store's
 * would otherwise rescan on every message.
 */
static int
recounted_lately(const struct mbox *m)
{
	return m->recounted != 0 &&
	    mono_now() - m->recounted < MDSIZE_RECOUNT_AGE;
}

/* Is m's figure the file's (following lines others appended)? */
static int
cache_current(struct mbox *m)
{
	struct stat	st;
	char		path[PATH_MAX];
	long long	added;

	if (m->bytes < 0 || m->qst.st_ino == 0)
		return 0;
	if (held_check(&m->qheld))
		return 1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/Maildir/%s",
	    env->conf.maildir, m->user, MDSIZE_NAME) >= sizeof(path) ||
	    stat(path, &st) == -1)
		return 0;
	if (!recounted_lately(m) &&
	    time(NULL) - st.st_mtim.tv_sec > MDSIZE_RECOUNT_AGE)
		return 0;
	if (!same_file(&st, &m->qst)) {
		st = m->qst;
		if (quota_tail(env->conf.maildir, m->user, &added,
		    &st) == -1 || m->bytes + added < 0)
			return 0;
		m->bytes += added;
		m->qst = st;
	}
	held_note(&m->qheld);
	return 1;
}

long long
store_usage(const char *user, long long limit)
{
	struct mbox	*m = mbox_get(user);
	struct stat	 st;
	long long	 bytes;
	int		 r;

	if (cache_current(m))
		return m->bytes;
	r = quota_usage(env->conf.maildir, user, limit, recounted_lately(m),
	    &bytes, &st);
	if (r == -1) {
		m->bytes = -1;
		m->qheld = 0;
		return -1;
	}
	if (r == 1)
		m->recounted = mono_now();
	m->qst = st;
	held_note(&m->qheld);
	return m->bytes = bytes;
}

void
store_usage_add(const char *user, long long bytes, const struct stat *pre,
    const struct stat *post)
{
	struct mbox	*m;

	if ((m = mbox_find(user)) == NULL || m->bytes < 0)
		return;
	m->qheld = 0;
	/* Read again on the loop after our line: already counted. */
	if (post->st_ino != 0 && same_file(post, &m->qst))
		return;
	if (pre->st_ino == 0 || post->st_ino == 0 ||
	    !same_file(pre, &m->qst) || m->bytes + bytes < 0) {
		m->bytes = -1;	/* someone else wrote too: read it */
		return;
	}
	m->bytes += bytes;
	m->qst = *post;
}

void
store_usage_changed(const char *user)
{
	struct mbox	*m;

	if ((m = mbox_find(user)) != NULL) {
		m->bytes = -1;
		m->qheld = 0;
	}
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void
stat_or_zero(const char *path, struct stat *st)
{
	if (stat(path, st) == -1)
		memset(st, 0, sizeof(*st));
}

/* MAILDIR/default_options, as of now. */
static int
defaults_current(char *err, size_t errlen)
{
	struct mboxopts	o;
	struct stat	st;
	char		path[PATH_MAX];

	if (defaults_gen != 0 && held_check(&defaults_held))
		return 0;
	snprintf(path, sizeof(path), "%s/default_options", env->conf.maildir);
	stat_or_zero(path, &st);
	if (defaults_gen == 0 || !same_file(&st, &defaults_st)) {
		mboxopts_defaults(&o);
		if (mboxopts_load(path, &o, err, errlen) == -1)
			return -1;
		defaults = o;
		defaults_st = st;
		defaults_gen++;
	}
	held_note(&defaults_held);
	return 0;
}

/* A user's effective options (defaults, default_options, USER/options). */
int
store_mboxopts(const char *user, struct mboxopts *o, char *err,
    size_t errlen)
{
	struct mbox	*m;
	struct mboxopts	 mine;
	struct stat	 st;
	char		 path[PATH_MAX];

	if (defaults_current(err, errlen) == -1)
		return -1;
	m = mbox_get(user);
	if (m->optgen == defaults_gen && held_check(&m->optheld)) {
		*o = m->o;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s/options", env->conf.maildir, user);
	stat_or_zero(path, &st);
	if (m->optgen != defaults_gen || !same_file(&st, &m->optst)) {
		mine = defaults;
		if (mboxopts_load(path, &mine, err, errlen) == -1) {
			m->optheld = 0;
			return -1;
		}
		m->optst = st;
		m->optgen = defaults_gen;
		m->o = mine;
	}
	held_note(&m->optheld);
	*o = m->o;
	return 0;
}

int
store_user_exists(const char *user)
{
	return userdb_find(&users, user) != NULL;
}

struct authreq {
	enum proc_role	role;
	uint32_t	reqid;
	char		user[USER_NAME_MAX + 1];
	char		addr[64];
	int		known;
};

void
store_refresh_users(void)
{
	struct userdb	db;
	struct stat	st;
	char		path[PATH_MAX], err[512];

	snprintf(path, sizeof(path), "%s/users", env->conf.maildir);
	if (stat(path, &st) == -1)
		memset(&st, 0, sizeof(st));
	if (same_file(&st, &users_st))
		return;
	if (userdb_load(env->conf.maildir, &db, err, sizeof(err)) == -1) {
		if (!users_bad)
			log_warnx("users database not reloaded, keeping the "
			    "previous one: %s", err);
		users_bad = 1;
		return;
	}
	users_bad = 0;
	userdb_free(&users);
	users = db;
	users_st = st;
	mbox_forget_removed();
	log_debug("users database loaded: %zu users", users.n);
}

void
store_init(void)
{
	memset(&users_st, 0, sizeof(users_st));
	users_st.st_ino = (ino_t)-1;
	store_refresh_users();
}

static void
auth_reply(struct authreq *ar, uint32_t result, uint32_t delay)
{
	struct msgbuild	mb;

	mb_init(&mb);
	mb_u32(&mb, ar->reqid);
	mb_u32(&mb, result);
	mb_u32(&mb, delay);
	parent_send(ar->role, IMSG_AUTH_REPLY, &mb, -1);
}

static void
save_upgraded_hash(const char *user, const char *oldhash,
    const char *newhash)
{
	struct userdb	 db;
	struct userent	*u;
	char		 err[512];
	int		 lockfd;

	if ((lockfd = maildir_lock(env->conf.maildir)) == -1) {
		log_warn("cannot lock %s", env->conf.maildir);
		return;
	}
	if (userdb_load(env->conf.maildir, &db, err, sizeof(err)) == -1) {
		log_warnx("hash upgrade of %s skipped: %s", user, err);
		goto out;
	}
	/* Only if nobody changed that password in the meantime. */
	u = userdb_find(&db, user);
	if (u != NULL && strcmp(u->hash, oldhash) == 0) {
		strlcpy(u->hash, newhash, sizeof(u->hash));
		if (userdb_save(env->conf.maildir, &db) == -1)
			log_warn("hash upgrade of %s not saved", user);
		else
			log_info("auth user=%s password hash upgraded from "
			    "md5 to yescrypt", user);
	}
	userdb_free(&db);
out:
	close(lockfd);
	store_refresh_users();
}

const char *
store_login_hash(const char *name, char user[USER_NAME_MAX + 1], int *known)
{
	struct userent	*u = NULL;
	const char	*why;

	store_refresh_users();
	if (login_user_name(&env->conf, name, user, &why) == 0)
		u = userdb_find(&users, user);
	else
		strlcpy(user, "-", USER_NAME_MAX + 1);
	*known = u != NULL;
	/* Unknown users cost a check all the same, so the time an answer
	 * takes does not tell which names exist. */
	return u ? u->hash : auth_dummy_hash();
}

void
store_upgrade_hash(const char *user, const char *newhash)
{
	struct userent	*u;

	if ((u = userdb_find(&users, user)) != NULL &&
	    password_is_legacy(u->hash))
		save_upgraded_hash(user, u->hash, newhash);
}

static void
auth_done(void *arg, int ok, const char *newhash)
{
	struct authreq	*ar = arg;
	int		 n;

	if (ok && ar->known) {
		log_info("auth user=%s from=%s result=ok", ar->user, ar->addr);
		if (newhash)
			store_upgrade_hash(ar->user, newhash);
		auth_reply(ar, AUTH_OK, 0);
	} else {
		n = auth_record_failure(ar->addr, ar->user, ar->known);
		log_info("auth user=%s from=%s result=failed failures=%d",
		    ar->user, ar->addr, n);
		auth_reply(ar, AUTH_FAIL, auth_delay_ms(n));
	}
	child_request_done(ar->role);
	free(ar);
}

/* A well-formed request: refused at once if its address is blocked,
 * else checked in the background (auth_done answers). */
static int
auth_begin(struct child *c, const struct req_auth *rq)
{
	struct authreq	*ar;
	const char	*hash;

	ar = xcalloc(1, sizeof(*ar));
	ar->role = c->role;
	ar->reqid = rq->reqid;
	strlcpy(ar->addr, rq->addr, sizeof(ar->addr));
	if (auth_blocked(ar->addr)) {
		log_info("auth from=%s result=blocked", ar->addr);
		auth_reply(ar, AUTH_BLOCKED, 0);
		free(ar);
		return 0;
	}
	if (child_request_begin(c) == -1) {
		free(ar);
		return -1;
	}
	hash = store_login_hash(rq->user, ar->user, &ar->known);
	auth_check(ar->user, hash, rq->password, ar->known &&
	    password_is_legacy(hash), auth_done, ar);
	return 0;
}

int
store_auth(struct child *c, struct imsg *im)
{
	struct req_auth	rq;
	int		r;

	r = req_read_auth(im->data, im->datalen, &rq);
	/* No copy of the password outlives the request. */
	explicit_bzero(im->data, im->datalen);
	if (r == 0)
		r = auth_begin(c, &rq);
	explicit_bzero(&rq, sizeof(rq));
	return r;
}

static uint32_t
rcpt_check(const char *name, uint64_t size)
{
	char		 user[USER_NAME_MAX + 1];
	const char	*why;

	if (user_name_normalize(name, user, &why) == -1)
		return RCPT_NOUSER;
	store_refresh_users();
	/* Clamped: far over any limit a mailbox can have. */
	return store_mbox_verdict(user, size > LLONG_MAX ? LLONG_MAX :
	    (long long)size);
}

int
store_rcpt_check(struct child *c, struct imsg *im)
{
	struct req_rcpt_check	rq;
	struct msgbuild		mb;

	if (req_read_rcpt_check(im->data, im->datalen, &rq) == -1)
		return -1;
	mb_init(&mb);
	mb_u32(&mb, rq.reqid);
	mb_u32(&mb, rcpt_check(rq.user, rq.size));
	mb_u32(&mb, rq.tag);
	return parent_send(c->role, IMSG_RCPT_REPLY, &mb, -1) == -1 ? -1 : 0;
}
