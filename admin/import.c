/*
 * pymailadm import DIR: bring a PyMaild 0.2 data folder (DESIGN.md A8)
 * into MAILDIR without losing or duplicating a message.
 *
 * DIR is only ever read. As root, a small child keeps the rights of
 * DIR's owner and does nothing but open files below DIR (every component
 * without following links) and pass the descriptors back; the rest runs
 * as the daemon's `user`, like every other command, so all it parses is
 * handled without privileges and all it writes belongs to the daemon.
 *
 * Each message goes Maildir/tmp -> fsync -> a line in the user's
 * .pymaild-imported -> rename into new/. That line is the commit point:
 * a later run skips the uids it lists, and finishes a rename a crash
 * interrupted (the file is still in tmp/ under the recorded name).
 */
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/tree.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define LIBBSD_OPENBSD_VIS
#include <vis.h>

#include "impparse.h"
#include "imsg.h"
#include "maildirsize.h"
#include "mboxlock.h"
#include "proc.h"
#include "pymailadm.h"
#include "util.h"

#define MSG_MAX		(1LL << 30)	/* a message file */
#define OPTS_MAX	(64 * 1024)	/* default_options, USER/options */
#define LIST_MAX	(64 * 1024 * 1024)	/* USER/mail, the state file */
#define UID_MAX		IMP_UID_MAX
#define COPY_BUF	(64 * 1024)
#define STATE_FILE	".pymaild-imported"
#define SHOW_MAX	5		/* names listed in one warning */

/* The reader child's requests and answers (private to this file). */
#define IMP_OPEN	1
#define IMP_OPENED	2

struct uident {
	RB_ENTRY(uident)	 entry;
	int			 done;		/* in the state file */
	int			 listed;	/* in USER/mail */
	char			 uid[UID_MAX + 1];
};
RB_HEAD(uidtree, uident);

struct olduser {
	char		 src[USER_NAME_MAX + 1];	/* its folder in DIR */
	char		 name[USER_NAME_MAX + 1];
	char		 hash[IMP_HASH_LEN + 1];
	int		 added;
	long long	 msgs, bytes, already;
	struct uidtree	 uids;
	int		 statefd;
	int		 state_nl;	/* the state file ends in a torn line */
};

static struct {
	const char	*dir;
	int		 dirfd;		/* not root: DIR, opened here */
	struct imsgbuf	 reader;	/* root: the reader child */
	pid_t		 readerpid;
	struct olduser	*users;
	size_t		 nusers;
	struct mboxopts	 oldopts;	/* builtin <- MAILDIR's <- DIR's */
	unsigned int	 counter;
	long long	 added, refused, msgs, bytes, already, queued;
	int		 errors, warnings;
} imp = { .dirfd = -1, .readerpid = -1 };

static int
uid_cmp(struct uident *a, struct uident *b)
{
	return strcmp(a->uid, b->uid);
}
RB_GENERATE_STATIC(uidtree, uident, entry, uid_cmp)

static void
report(int *count, const char *kind, const char *fmt, va_list ap)
{
	(*count)++;
	fprintf(stderr, "%s: ", kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* Something was not imported: exit 1 at the end, go on meanwhile. */
static void __attribute__((format(printf, 1, 2)))
imp_error(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	report(&imp.errors, "error", fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2)))
imp_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	report(&imp.warnings, "warning", fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2)))
imp_note(const char *fmt, ...)
{
	va_list	ap;

	if (adm.json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ------------------------------------------------------------------ */
/* Reading DIR */

/*
 * DIR/user/file ("" skips a level) without following a link anywhere
 * below DIR, so a planted symlink cannot make us read what the owner of
 * DIR could not. Folders when wantdir, else regular files only.
 */
static int
src_openat(int dfd, const char *user, const char *file, int wantdir)
{
	struct stat	st;
	int		fd, ufd, flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			    O_NOCTTY | O_CLOEXEC;

	if ((*user && !imp_component_ok(user)) ||
	    (*file && !imp_component_ok(file)))
		return errno = EINVAL, -1;
	ufd = openat(dfd, *user ? user : ".", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (ufd == -1 || *file == '\0') {
		fd = ufd;
	} else {
		fd = openat(ufd, file, flags | (wantdir ? O_DIRECTORY : 0));
		close(ufd);
	}
	if (fd == -1)
		return errno == ELOOP ? (errno = EPERM, -1) : -1;
	if (fstat(fd, &st) == -1 || (wantdir ? !S_ISDIR(st.st_mode) :
	    !S_ISREG(st.st_mode))) {
		close(fd);
		return errno = wantdir ? ENOTDIR : EPERM, -1;
	}
	return fd;
}

/* Read with no more rights than DIR's owner (root stays root). */
static int
act_as_owner(int dfd)
{
	struct stat	st;

	if (fstat(dfd, &st) == -1)
		return -1;
	if (st.st_uid == 0)
		return 0;
	if (setgroups(1, &st.st_gid) == -1 ||
	    setresgid(st.st_gid, st.st_gid, st.st_gid) == -1 ||
	    setresuid(st.st_uid, st.st_uid, st.st_uid) == -1)
		return -1;
	proc_after_setuid();
	return 0;
}

static void __attribute__((noreturn))
reader_main(int sock)
{
	struct imsgbuf	 ib;
	struct imsg	 im;
	struct msgread	 mr;
	char		 user[USER_NAME_MAX + 1], file[NAME_MAX + 1];
	uint32_t	 wantdir;
	int		 dfd, fd, e, err = 0;

	if ((dfd = open(imp.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		err = errno;
	else if (act_as_owner(dfd) == -1) {
		fprintf(stderr, "cannot act as the owner of %s: %s\n",
		    imp.dir, strerror(errno));
		_exit(1);
	}
	imsgbuf_init(&ib, sock);
	while (imsg_read_one(&ib, &im) == 1) {
		mr_init(&mr, &im);
		mr_str(&mr, user, sizeof(user));
		mr_str(&mr, file, sizeof(file));
		wantdir = mr_u32(&mr);
		if (im.fd != -1 || im.hdr.type != IMP_OPEN || mr_end(&mr) == -1)
			break;
		fd = err ? (errno = err, -1) :
		    src_openat(dfd, user, file, wantdir);
		e = fd == -1 ? errno : 0;
		if (imsg_compose(&ib, IMP_OPENED, 0, fd, &e, sizeof(e)) == -1 ||
		    imsgbuf_flush_all(&ib) == -1)
			break;
	}
	_exit(0);
}

static void
reader_start(void)
{
	int	sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		die("socketpair: %s", strerror(errno));
	fflush(NULL);
	if ((imp.readerpid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (imp.readerpid == 0) {
		close(sv[0]);
		reader_main(sv[1]);
	}
	close(sv[1]);
	imsgbuf_init(&imp.reader, sv[0]);
}

static void
reader_stop(void)
{
	if (imp.readerpid == -1)
		return;
	imsgbuf_clear(&imp.reader);
	close(imp.reader.fd);
	while (waitpid(imp.readerpid, NULL, 0) == -1 && errno == EINTR)
		;
	imp.readerpid = -1;
}

static int
reader_open(const char *user, const char *file, int wantdir)
{
	struct msgbuild	mb;
	struct imsg	im;
	int		err;

	mb_init(&mb);
	mb_str(&mb, user);
	mb_str(&mb, file);
	mb_u32(&mb, wantdir);
	if (mb_send(&mb, &imp.reader, IMP_OPEN, 0, -1) == -1 ||
	    imsgbuf_flush_all(&imp.reader) == -1 ||
	    imsg_read_one(&imp.reader, &im) != 1 ||
	    im.hdr.type != IMP_OPENED || im.datalen != sizeof(err))
		die("import: lost the process reading %s", imp.dir);
	memcpy(&err, im.data, sizeof(err));
	if ((err == 0) != (im.fd != -1))
		die("import: bad answer from the process reading %s", imp.dir);
	errno = err;
	return im.fd;
}

static int
src_open(const char *user, const char *file, int wantdir)
{
	if (imp.readerpid != -1)
		return reader_open(user, file, wantdir);
	return src_openat(imp.dirfd, user, file, wantdir);
}

static int
read_fd_all(int fd, size_t max, char **data, size_t *len)
{
	size_t	cap = 4096;
	ssize_t	n;

	*data = xmalloc(cap + 1);
	*len = 0;
	for (;;) {
		if (*len == cap) {
			if (cap > max)
				break;
			cap *= 2;
			*data = xreallocarray(*data, cap + 1, 1);
		}
		n = read(fd, *data + *len, cap - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			(*data)[*len] = '\0';
			if (n == 0 && *len <= max)
				return 0;
			break;
		}
		*len += n;
	}
	if (n != -1)
		errno = EFBIG;
	free(*data);
	*data = NULL;
	return -1;
}

/* DIR/user/file as a string; -1 with errno (ENOENT: it is not there). */
static int
src_read(const char *user, const char *file, size_t max, char **data)
{
	size_t	len;
	int	fd, r, saved;

	if ((fd = src_open(user, file, 0)) == -1)
		return -1;
	r = read_fd_all(fd, max, data, &len);
	saved = errno;
	close(fd);
	errno = saved;
	if (r == 0 && memchr(*data, '\0', len) != NULL) {
		free(*data);
		return errno = EILSEQ, -1;
	}
	return r;
}

static const char *
read_error(void)
{
	if (errno == EFBIG)
		return "file too large";
	if (errno == EILSEQ)
		return "contains a NUL byte";
	if (errno == EPERM)
		return "not a regular file (a link?)";
	return strerror(errno);
}

/* ------------------------------------------------------------------ */
/* Options: `key = value` lines of Python literals */

static void
option_line(char *line, const char *where, int lineno, struct mboxopts *o)
{
	char	*key, *value, err[512];

	switch (imp_option_line(line, o, &key, &value, err, sizeof(err))) {
	case IMPOPT_SET:
		break;
	case IMPOPT_SYNTAX:
		imp_error("%s:%d: not a 'key = value' line, skipped", where,
		    lineno);
		break;
	case IMPOPT_UNKNOWN:
		imp_warn("%s:%d: option '%s' does not exist in pymaild, "
		    "skipped", where, lineno, key);
		break;
	case IMPOPT_VALUE:
		imp_error("%s:%d: option '%s': value %s not understood, "
		    "skipped", where, lineno, key, value);
		break;
	case IMPOPT_REFUSED:
		imp_error("%s:%d: %s; skipped", where, lineno, err);
		break;
	}
}

/* Apply DIR/user/file over *o; a missing file changes nothing. */
static int
load_old_options(const char *user, const char *file, struct mboxopts *o)
{
	char	 where[PATH_MAX], *data, *p, *line;
	int	 lineno = 0;

	snprintf(where, sizeof(where), "%s/%s%s%s", imp.dir, user,
	    *user ? "/" : "", file);
	if (src_read(user, file, OPTS_MAX, &data) == -1) {
		if (errno == ENOENT)
			return 0;
		imp_error("%s: %s; the current defaults apply", where,
		    read_error());
		return -1;
	}
	for (p = data; (line = imp_next_line(&p)) != NULL; ) {
		lineno++;
		line = imp_trim(line);
		if (*line != '\0' && *line != '#')
			option_line(line, where, lineno, o);
	}
	free(data);
	return 1;
}

static int
opts_equal(const struct mboxopts *a, const struct mboxopts *b)
{
	return a->mailboxsize == b->mailboxsize &&
	    a->maxmailsize == b->maxmailsize && a->enabled == b->enabled;
}

static void
path_in_maildir(char *buf, size_t len, const char *user, const char *file)
{
	if ((size_t)snprintf(buf, len, "%s/%s%s%s", adm.conf.maildir, user,
	    *user && *file ? "/" : "", file) >= len)
		die("path too long under %s", adm.conf.maildir);
}

/*
 * DIR/default_options over today's defaults: the base of every imported
 * mailbox. It becomes MAILDIR's own only when MAILDIR has none yet (an
 * administrator's chdefaultopt is never overwritten).
 */
static void
import_default_options(void)
{
	struct mboxopts	cur;
	char		path[PATH_MAX], err[512];
	struct stat	st;

	if (mboxopts_for_user(adm.conf.maildir, NULL, &cur, err,
	    sizeof(err)) == -1)
		die("%s", err);
	imp.oldopts = cur;
	if (load_old_options("", "default_options", &imp.oldopts) <= 0)
		return;
	path_in_maildir(path, sizeof(path), "default_options", "");
	if (lstat(path, &st) == 0) {
		if (!opts_equal(&cur, &imp.oldopts))
			imp_note("note: kept %s; the imported mailboxes get "
			    "the values of %s/default_options", path,
			    imp.dir);
		return;
	}
	if (mboxopts_save(path, &imp.oldopts) == -1)
		die("cannot write %s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------ */
/* Users */

static void
parse_user_line(char *line, int lineno)
{
	struct olduser	*u;
	const char	*why;
	char		*src, name[USER_NAME_MAX + 1], hash[IMP_HASH_LEN + 1];
	char		 shown[4 * 80 + 1];
	size_t		 i;

	switch (imp_user_line(line, &src, name, hash, &why)) {
	case IMPUSER_OK:
		break;
	case IMPUSER_SYNTAX:
		imp.refused++;
		imp_error("%s/users:%d: not a 'name:md5' line, skipped",
		    imp.dir, lineno);
		return;
	case IMPUSER_NAME:
		/* Escaped: whatever the file holds, one line on stderr. */
		strvisx(shown, src, MIN(strlen(src), 80), VIS_CSTYLE |
		    VIS_NL | VIS_TAB | VIS_OCTAL);
		imp.refused++;
		imp_error("%s/users:%d: user '%s' refused: %s", imp.dir,
		    lineno, shown, why);
		return;
	case IMPUSER_HASH:
		imp.refused++;
		imp_error("user %s refused: its password is not a PyMaild "
		    "md5 hash (%s/users:%d)", name, imp.dir, lineno);
		return;
	}
	for (i = 0; i < imp.nusers; i++) {
		if (strcmp(imp.users[i].name, name) == 0) {
			imp.refused++;
			imp_error("%s/users:%d: user %s is listed twice, "
			    "skipped", imp.dir, lineno, name);
			return;
		}
	}
	imp.users = xreallocarray(imp.users, imp.nusers + 1,
	    sizeof(*imp.users));
	u = &imp.users[imp.nusers++];
	memset(u, 0, sizeof(*u));
	strlcpy(u->src, src, sizeof(u->src));
	strlcpy(u->name, name, sizeof(u->name));
	memcpy(u->hash, hash, sizeof(u->hash));
	RB_INIT(&u->uids);
	u->statefd = -1;
}

static void
read_old_users(void)
{
	char	*data, *p, *line;
	int	 lineno = 0;

	if (src_read("", "users", USERS_FILE_MAX, &data) == -1)
		die("%s/users: %s (is %s a PyMaild 0.2 data folder?)",
		    imp.dir, read_error(), imp.dir);
	for (p = data; (line = imp_next_line(&p)) != NULL; ) {
		lineno++;
		line = imp_trim(line);
		if (*line != '\0' && *line != '#')
			parse_user_line(line, lineno);
	}
	free(data);
}

/* New users get the old options over today's defaults; existing ones
 * keep theirs (this may be a second run, after a chopt). */
static void
user_options(struct olduser *u)
{
	struct mboxopts	o = imp.oldopts, cur;
	char		path[PATH_MAX], err[512];

	load_old_options(u->src, "options", &o);
	if (u->added) {
		path_in_maildir(path, sizeof(path), u->name, "options");
		if (mboxopts_save(path, &o) == -1)
			die("cannot write %s: %s", path, strerror(errno));
		return;
	}
	if (mboxopts_for_user(adm.conf.maildir, u->name, &cur, err,
	    sizeof(err)) == -1)
		imp_warn("%s", err);
	else if (!opts_equal(&cur, &o))
		imp_warn("user %s already exists: kept its options, not "
		    "those of %s/%s/options", u->name, imp.dir, u->src);
}

/* Under MAILDIR/.lock: users, mailboxes and options; users is the
 * commit point, written last, as adduser does. */
static void
import_users(void)
{
	struct userdb	 db;
	struct userent	*e;
	struct olduser	*u;
	char		 err[512];
	int		 lockfd;

	if ((lockfd = maildir_lock(adm.conf.maildir)) == -1)
		die("cannot lock %s: %s", adm.conf.maildir, strerror(errno));
	if (userdb_load(adm.conf.maildir, &db, err, sizeof(err)) == -1)
		die("%s", err);
	import_default_options();
	for (u = imp.users; u < imp.users + imp.nusers; u++) {
		if ((e = userdb_find(&db, u->name)) == NULL) {
			u->added = 1;
			userdb_add(&db, u->name, u->hash);
			imp.added++;
		} else if (strcmp(e->hash, u->hash) != 0)
			imp_warn("user %s already exists with another "
			    "password hash (changed, or upgraded at a login "
			    "since the last import): kept the current one",
			    u->name);
		if (maildir_create(adm.conf.maildir, u->name, (uid_t)-1,
		    0) == -1)
			die("cannot create the mailbox of %s: %s", u->name,
			    strerror(errno));
		user_options(u);
	}
	if (imp.added > 0 && userdb_save(adm.conf.maildir, &db) == -1)
		die("cannot write %s/users: %s", adm.conf.maildir,
		    strerror(errno));
	userdb_free(&db);
	close(lockfd);
}

/* ------------------------------------------------------------------ */
/* The top of DIR: what is not a user */

static struct olduser *
find_src(const char *src)
{
	size_t	i;

	for (i = 0; i < imp.nusers; i++)
		if (strcmp(imp.users[i].src, src) == 0)
			return &imp.users[i];
	return NULL;
}

static void
scan_top(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd, mx = 0;

	if ((fd = src_open("", "", 1)) == -1 || (d = fdopendir(fd)) == NULL)
		die("%s: %s", imp.dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "queued-", 7) == 0)
			imp.queued++;
		else if (strcmp(de->d_name, "mxservers") == 0)
			mx = 1;
		else if (de->d_type == DT_DIR && de->d_name[0] != '.' &&
		    find_src(de->d_name) == NULL)
			imp_warn("%s/%s: a folder for no user of %s/users, "
			    "not imported", imp.dir, de->d_name, imp.dir);
	}
	closedir(d);
	if (mx)
		imp_note("note: %s/mxservers ignored: pymaild rebuilds its "
		    "MX cache from DNS", imp.dir);
	if (imp.queued > 0)
		imp_warn("%lld queued messages in %s were not imported: "
		    "their recipients are unknown (left in %s/queued-*)",
		    imp.queued, imp.dir, imp.dir);
}

/* ------------------------------------------------------------------ */
/* The record of what was imported: MAILDIR/USER/.pymaild-imported */

static struct uident *
uid_get(struct olduser *u, const char *uid)
{
	struct uident	key, *e;

	strlcpy(key.uid, uid, sizeof(key.uid));
	if ((e = RB_FIND(uidtree, &u->uids, &key)) != NULL)
		return e;
	e = xcalloc(1, sizeof(*e));
	strlcpy(e->uid, uid, sizeof(e->uid));
	RB_INSERT(uidtree, &u->uids, e);
	return e;
}

static void
uids_free(struct olduser *u)
{
	struct uident	*e, *next;

	RB_FOREACH_SAFE(e, uidtree, &u->uids, next) {
		RB_REMOVE(uidtree, &u->uids, e);
		free(e);
	}
}

/* A recorded message still in tmp/: a crash came before its rename. */
static void
finish_rename(struct olduser *u, const char *uid, const char *name)
{
	char	 tmp[PATH_MAX], new[PATH_MAX], unique[NAME_MAX + 1];
	char	 sub[NAME_MAX + 16];

	strlcpy(unique, name, sizeof(unique));
	unique[strcspn(unique, ",:")] = '\0';
	snprintf(sub, sizeof(sub), "Maildir/tmp/%s", unique);
	path_in_maildir(tmp, sizeof(tmp), u->name, sub);
	snprintf(sub, sizeof(sub), "Maildir/new/%s", name);
	path_in_maildir(new, sizeof(new), u->name, sub);
	if (access(tmp, F_OK) == -1)
		return;
	if (rename(tmp, new) == -1)
		die("cannot rename %s: %s", tmp, strerror(errno));
	imp_note("note: user %s: finished the interrupted import of %s",
	    u->name, uid);
}

static void
state_line(struct olduser *u, char *line)
{
	char	*uid, *name;

	if (imp_state_line(line, &uid, &name) == -1)
		return;
	uid_get(u, uid)->done = 1;
	finish_rename(u, uid, name);
}

static void
state_load(struct olduser *u)
{
	char	 path[PATH_MAX], *data, *p, *line;
	size_t	 len;

	path_in_maildir(path, sizeof(path), u->name, STATE_FILE);
	if (file_read_all(path, LIST_MAX, &data, &len) == -1) {
		if (errno != ENOENT)
			die("%s: %s", path, strerror(errno));
		return;
	}
	/* A torn last line is a message whose rename never happened. */
	u->state_nl = len > 0 && data[len - 1] != '\n';
	for (p = data; (line = imp_next_line(&p)) != NULL; )
		if (p != NULL && *line != '#')
			state_line(u, line);
	free(data);
}

/*
 * What a killed run (or a crashed daemon) left half-written in tmp/: its
 * writer is gone and no record names it (recorded ones were moved into
 * new/ by then), so it is debris that no reader would ever see.
 */
static void
tmp_sweep(struct olduser *u)
{
	DIR		*d;
	struct dirent	*de;
	char		 dir[PATH_MAX], path[PATH_MAX], host[NAME_MAX + 1];
	long long	 sec;
	long		 usec;
	unsigned int	 q;
	int		 pid;

	path_in_maildir(dir, sizeof(dir), u->name, "Maildir/tmp");
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "%lld.M%6ldP%dQ%u.%255s", &sec, &usec,
		    &pid, &q, host) != 5 ||
		    strcmp(host, adm.conf.serverhostname) != 0 ||
		    pid_alive(pid))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) < sizeof(path) && unlink(path) == 0)
			imp_note("note: user %s: removed %s, left half-written "
			    "by a process that no longer runs", u->name, path);
	}
	closedir(d);
}

/* Opened at the first message: users without mail get no record. */
static void
state_open(struct olduser *u, const char *path)
{
	char		dir[PATH_MAX];
	struct stat	st;

	u->statefd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (u->statefd == -1 || fstat(u->statefd, &st) == -1)
		die("cannot open %s: %s", path, strerror(errno));
	if (st.st_size > 0)
		return;
	path_in_maildir(dir, sizeof(dir), u->name, "");
	if (fsync_dir(dir) == -1)
		die("fsync %s: %s", dir, strerror(errno));
}

/* The commit point of one message (see the top of this file). */
static void
state_append(struct olduser *u, const char *uid, const char *name)
{
	char	path[PATH_MAX], line[UID_MAX + NAME_MAX + 4];
	int	len;

	path_in_maildir(path, sizeof(path), u->name, STATE_FILE);
	if (u->statefd == -1)
		state_open(u, path);
	len = snprintf(line, sizeof(line), "%s%s %s\n", u->state_nl ? "\n" :
	    "", uid, name);
	errno = EIO;	/* a short write sets none */
	if (write(u->statefd, line, len) != len || fdatasync(u->statefd) == -1)
		die("cannot write %s: %s", path, strerror(errno));
	u->state_nl = 0;
}

/* ------------------------------------------------------------------ */
/* One message: CRLF, dot-stuffed, ".\r\n" at the end -> LF, as sent */

/* 0 done, -1 a problem of the source (set in *why), dies when writing
 * into MAILDIR fails (a full disk would fail every next message too). */
static int
convert(int in, int out, const char *tmp, struct imp_conv *cv,
    const char **why)
{
	char		*ibuf = xmalloc(COPY_BUF), *obuf = xmalloc(COPY_BUF + 2);
	size_t		 olen;
	long long	 total = 0;
	ssize_t		 n;
	int		 r = -1;

	memset(cv, 0, sizeof(*cv));
	cv->bol = 1;
	while ((n = read(in, ibuf, COPY_BUF)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*why = strerror(errno);
			goto out;
		}
		if ((total += n) > MSG_MAX) {
			*why = "over 1 GiB";
			goto out;
		}
		if (imp_conv_feed(cv, ibuf, n, obuf, &olen) == -1) {
			*why = "malformed: data after the final '.' line";
			goto out;
		}
		if (write_full(out, obuf, olen) == -1)
			die("cannot write %s: %s", tmp, strerror(errno));
	}
	/* "." at the very end, without its CRLF, ends it too. */
	if (!cv->ended && !cv->dot) {
		*why = "malformed: no final '.' line (truncated?)";
		goto out;
	}
	r = 0;
out:
	free(ibuf);
	free(obuf);
	return r;
}

static int
create_tmp(struct olduser *u, char *unique, size_t ulen, char *tmp,
    size_t tlen)
{
	struct timeval	tv;
	char		sub[NAME_MAX + 16];
	int		fd;

	do {
		gettimeofday(&tv, NULL);
		snprintf(unique, ulen, "%lld.M%06ldP%dQ%u.%s",
		    (long long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(),
		    ++imp.counter, adm.conf.serverhostname);
		snprintf(sub, sizeof(sub), "Maildir/tmp/%s", unique);
		path_in_maildir(tmp, tlen, u->name, sub);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	} while (fd == -1 && errno == EEXIST);
	if (fd == -1)
		die("cannot create %s: %s", tmp, strerror(errno));
	return fd;
}

/* The temp file is complete: make it durable, record it, publish it. */
static void
commit_message(struct olduser *u, const char *uid, int out,
    const struct stat *st, const char *unique, const char *tmp,
    const struct imp_conv *cv)
{
	struct timespec	times[2] = { st->st_atim, st->st_mtim };
	char		name[NAME_MAX + 1], sub[NAME_MAX + 16], new[PATH_MAX];

	/* Keep the time PyMaild received it: readers sort by it. */
	futimens(out, times);
	if (fsync(out) == -1 || close(out) == -1)
		die("cannot write %s: %s", tmp, strerror(errno));
	/* Once recorded, the file must be found in tmp/ or new/. */
	path_in_maildir(new, sizeof(new), u->name, "Maildir/tmp");
	if (fsync_dir(new) == -1)
		die("fsync %s: %s", new, strerror(errno));
	if ((size_t)snprintf(name, sizeof(name), "%s,S=%lld,W=%lld", unique,
	    cv->size, cv->size + cv->lfs) >= sizeof(name))
		die("%s: name too long (serverhostname?)", tmp);
	state_append(u, uid, name);
	snprintf(sub, sizeof(sub), "Maildir/new/%s", name);
	path_in_maildir(new, sizeof(new), u->name, sub);
	if (rename(tmp, new) == -1)
		die("cannot rename %s into new/: %s", tmp, strerror(errno));
	u->msgs++;
	u->bytes += cv->size;
}

static void
import_message(struct olduser *u, const char *uid)
{
	struct stat	 st;
	struct imp_conv	 cv;
	const char	*why = NULL;
	char		 unique[NAME_MAX + 1], tmp[PATH_MAX];
	int		 in, out;

	if ((in = src_open(u->src, uid, 0)) == -1 || fstat(in, &st) == -1) {
		imp_error("%s/%s/%s: %s; not imported", imp.dir, u->src, uid,
		    read_error());
		if (in != -1)
			close(in);
		return;
	}
	if (st.st_size > MSG_MAX)
		why = "over 1 GiB";
	if (why == NULL) {
		out = create_tmp(u, unique, sizeof(unique), tmp, sizeof(tmp));
		if (convert(in, out, tmp, &cv, &why) == 0)
			commit_message(u, uid, out, &st, unique, tmp, &cv);
		else {
			close(out);
			unlink(tmp);
		}
	}
	close(in);
	if (why != NULL)
		imp_error("%s/%s/%s: %s; left there, not imported", imp.dir,
		    u->src, uid, why);
}

/* ------------------------------------------------------------------ */
/* One user's messages */

static void
mail_line(struct olduser *u, char *line, int lineno)
{
	struct uident	*e;
	char		*uid;

	if ((uid = imp_mail_uid(line)) == NULL) {
		imp_error("%s/%s/mail:%d: not a 'uid' or 'uid:size' line, "
		    "skipped", imp.dir, u->src, lineno);
		return;
	}
	e = uid_get(u, uid);
	e->listed = 1;
	if (e->done) {
		u->already++;
		return;
	}
	import_message(u, e->uid);
	e->done = 1;	/* listed twice: imported (or reported) once */
}

/* Files PyMaild kept that USER/mail does not list: likely deleted by a
 * POP3 session that crashed, so not imported, but worth a look. */
static void
check_unlisted(struct olduser *u)
{
	DIR		*d;
	struct dirent	*de;
	struct uident	 key, *e;
	char		 shown[SHOW_MAX * (UID_MAX + 2) + 1] = "";
	int		 fd, n = 0;

	if ((fd = src_open(u->src, "", 1)) == -1 || (d = fdopendir(fd)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!imp_uid_ok(de->d_name) || (de->d_type != DT_REG &&
		    de->d_type != DT_UNKNOWN))
			continue;
		strlcpy(key.uid, de->d_name, sizeof(key.uid));
		if ((e = RB_FIND(uidtree, &u->uids, &key)) != NULL && e->listed)
			continue;
		if (n++ < SHOW_MAX) {
			strlcat(shown, n > 1 ? ", " : "", sizeof(shown));
			strlcat(shown, de->d_name, sizeof(shown));
		}
	}
	closedir(d);
	if (n > 0)
		imp_warn("%s/%s: %d files not listed in its mail file were "
		    "not imported (deleted in PyMaild?): %s%s", imp.dir, u->src,
		    n, shown, n > SHOW_MAX ? ", ..." : "");
}

static void
check_quota(struct olduser *u)
{
	struct mboxopts	o;
	long long	bytes, count;
	char		err[512];

	if (mboxopts_for_user(adm.conf.maildir, u->name, &o, err,
	    sizeof(err)) == -1 ||
	    maildir_usage(adm.conf.maildir, u->name, &bytes, &count) == -1)
		return;
	if (bytes > o.mailboxsize)
		imp_warn("user %s now holds %lld bytes, over its mailboxsize "
		    "of %lld: new mail is refused until some is deleted",
		    u->name, bytes, o.mailboxsize);
}

static void
import_mail(struct olduser *u)
{
	char	 dir[PATH_MAX], *data, *p, *line;
	int	 lineno = 0;

	state_load(u);
	tmp_sweep(u);
	if (src_read(u->src, "mail", LIST_MAX, &data) == -1) {
		if (errno != ENOENT)
			imp_error("%s/%s/mail: %s; no message of %s imported",
			    imp.dir, u->src, read_error(), u->name);
		uids_free(u);
		return;
	}
	for (p = data; (line = imp_next_line(&p)) != NULL; )
		if (lineno++, *imp_trim(line) != '\0')
			mail_line(u, line, lineno);
	free(data);
	if (u->statefd != -1)
		close(u->statefd);
	/* The renames (and those finish_rename() did) are durable now. */
	path_in_maildir(dir, sizeof(dir), u->name, "Maildir/new");
	if (fsync_dir(dir) == -1)
		die("fsync %s: %s", dir, strerror(errno));
	check_unlisted(u);
	check_quota(u);
	uids_free(u);
}

/*
 * A POP3 session (on this host or another serving the store) lists and
 * deletes as a whole: a user's mail comes in between sessions, never
 * under one. A user whose session outlasts the wait is reported and left
 * for the next run, which resumes where this one stopped.
 */
static int
lock_mailbox(struct olduser *u)
{
	int	fd;

	switch (mboxlock_wait(adm.conf.maildir, u->name, MBOXLOCK_TOOL_WAIT_MS,
	    &fd)) {
	case MBOXLOCK_OK:
		return fd;
	case MBOXLOCK_BUSY:
		imp_error("the mailbox of %s is in use by a POP3 session: no "
		    "message of %s imported; run the import again later",
		    u->name, u->name);
		return -1;
	case MBOXLOCK_NOTFILE:
		imp_error("%s/%s/%s is not a regular file: no message of %s "
		    "imported", adm.conf.maildir, u->name, MBOXLOCK_NAME,
		    u->name);
		return -1;
	default:
		imp_error("cannot lock the mailbox of %s (%s): no message of "
		    "%s imported", u->name, strerror(errno), u->name);
		return -1;
	}
}

/* ------------------------------------------------------------------ */
/* The command */

/*
 * The messages came in without their lines in the mailbox's Maildir++
 * maildirsize, which every host counts the quota by: without the file,
 * the next host to need the figure recounts the Maildir.
 */
static void
forget_quota_figure(struct olduser *u)
{
	char	path[PATH_MAX];

	path_in_maildir(path, sizeof(path), u->name, "Maildir/" MDSIZE_NAME);
	if (unlink(path) == -1 && errno != ENOENT)
		imp_warn("cannot remove %s (%s): the quota figure of %s is "
		    "low until it is recounted", path, strerror(errno),
		    u->name);
}

/* Is path (absolute, resolved) top or below it? */
static int
path_under(const char *path, const char *top)
{
	size_t	len = strlen(top);

	return strncmp(path, top, len) == 0 && (path[len] == '\0' ||
	    path[len] == '/' || strcmp(top, "/") == 0);
}

/* Writing into the folder being read would change the source. */
static void
check_apart(void)
{
	char	src[PATH_MAX], dst[PATH_MAX];

	if (realpath(imp.dir, src) == NULL)
		die("%s: %s", imp.dir, strerror(errno));
	if (realpath(adm.conf.maildir, dst) == NULL)
		die("%s: %s", adm.conf.maildir, strerror(errno));
	if (path_under(src, dst) || path_under(dst, src))
		die("%s and the maildir %s overlap: move the PyMaild folder "
		    "aside and import it from there", imp.dir, dst);
}

/*
 * MAILDIR exists (owned by the daemon's user), the reader runs, and this
 * process acts as the daemon's user for good. The same start as
 * users.c's become_owner(), with the reader forked in between.
 */
static void
start(void)
{
	struct passwd	*pw = NULL;

	if (geteuid() == 0 && (pw = getpwnam(adm.conf.user)) == NULL)
		die("user '%s' (the config's `user`) does not exist",
		    adm.conf.user);
	if (dir_ensure(adm.conf.maildir, 0700, pw ? pw->pw_uid : (uid_t)-1,
	    pw ? pw->pw_gid : 0) == -1)
		die("cannot create %s: %s", adm.conf.maildir, strerror(errno));
	check_apart();
	if (pw == NULL) {
		imp.dirfd = open(imp.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (imp.dirfd == -1)
			die("%s: %s", imp.dir, strerror(errno));
		return;
	}
	reader_start();
	proc_drop_privs(adm.conf.user, NULL);
	proc_after_setuid();
}

static void
summary(void)
{
	if (adm.json) {
		json_begin();
		json_str("dir", imp.dir);
		json_num("users", imp.nusers);
		json_num("users_added", imp.added);
		json_num("users_refused", imp.refused);
		json_num("messages", imp.msgs);
		json_num("bytes", imp.bytes);
		json_num("already_imported", imp.already);
		json_num("queued_left", imp.queued);
		json_num("warnings", imp.warnings);
		json_num("errors", imp.errors);
		json_bool("ok", imp.errors == 0);
		json_end();
		return;
	}
	printf("import of %s: %zu users (%lld added, %lld refused), %lld "
	    "messages (%lld bytes) imported, %lld already imported, "
	    "%d errors, %d warnings\n", imp.dir, imp.nusers, imp.added,
	    imp.refused, imp.msgs, imp.bytes, imp.already, imp.errors,
	    imp.warnings);
}

int
cmd_import(int argc, char **argv)
{
	struct olduser	*u;
	char		 path[PATH_MAX];
	int		 lockfd, mboxfd;

	if (argc != 1)
		usage_error("usage: import DIR");
	imp.dir = argv[0];
	start();
	/* One import at a time: each user's record is read, then extended. */
	path_in_maildir(path, sizeof(path), ".import.lock", "");
	if ((lockfd = lock_take(path)) == -1)
		die("cannot lock %s: %s", path, strerror(errno));
	read_old_users();
	scan_top();
	import_users();
	for (u = imp.users; u < imp.users + imp.nusers; u++) {
		if ((mboxfd = lock_mailbox(u)) == -1)
			continue;
		import_mail(u);
		if (u->msgs > 0)
			forget_quota_figure(u);
		close(mboxfd);
		imp.msgs += u->msgs;
		imp.bytes += u->bytes;
		imp.already += u->already;
		if (u->already > 0)
			imp_note("imported user %s: %lld messages (%lld bytes), "
			    "%lld already imported", u->name, u->msgs,
			    u->bytes, u->already);
		else
			imp_note("imported user %s: %lld messages (%lld bytes)",
			    u->name, u->msgs, u->bytes);
	}
	reader_stop();
	close(lockfd);
	summary();
	free(imp.users);
	return imp.errors > 0;
}
