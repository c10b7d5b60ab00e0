/*
 * User and mailbox commands. Every change happens under MAILDIR/.lock and
 * every file is rewritten with temp + fsync + rename, so concurrent runs
 * and crashes never leave a half-written file. Run as root, the files are
 * handled as the daemon's `user`, so they stay readable by the daemon.
 */
#include <sys/param.h>
#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <readpassphrase.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define LIBBSD_OPENBSD_VIS
#include <vis.h>

#include "mboxlock.h"
#include "proc.h"
#include "pymailadm.h"
#include "util.h"

#define PASSWORD_MAX	1023

/*
 * As root, act as the daemon's user from here on (the files must stay
 * its own); create MAILDIR first when it is missing.
 */
void
become_owner(void)
{
	struct passwd	*pw;

	if (geteuid() != 0) {
		if (dir_ensure(adm.conf.maildir, 0700, (uid_t)-1, 0) == -1)
			die("cannot create %s: %s", adm.conf.maildir,
			    strerror(errno));
		return;
	}
	if ((pw = getpwnam(adm.conf.user)) == NULL)
		die("user '%s' (the config's `user`) does not exist",
		    adm.conf.user);
	if (dir_ensure(adm.conf.maildir, 0700, pw->pw_uid, pw->pw_gid) == -1)
		die("cannot create %s: %s", adm.conf.maildir, strerror(errno));
	/* For good: nothing after this needs root again. */
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		die("cannot act as %s: %s", adm.conf.user, strerror(errno));
	proc_after_setuid();
}

static int
take_lock(void)
{
	int	fd;

	if ((fd = maildir_lock(adm.conf.maildir)) == -1)
		die("cannot lock %s: %s", adm.conf.maildir, strerror(errno));
	return fd;
}

static void
load_users(struct userdb *db)
{
	char	err[512];

	if (userdb_load(adm.conf.maildir, db, err, sizeof(err)) == -1)
		die("%s", err);
}

static void
save_users(const struct userdb *db)
{
	if (userdb_save(adm.conf.maildir, db) == -1)
		die("cannot write %s/users: %s", adm.conf.maildir,
		    strerror(errno));
}

static void
normalize(const char *in, char out[USER_NAME_MAX + 1])
{
	const char	*why;
	char		 shown[4 * 80 + 1];

	if (user_name_normalize(in, out, &why) == -1) {
		/* Shown escaped: the message must stay one line. */
		strvisx(shown, in, MIN(strlen(in), 80), VIS_CSTYLE | VIS_NL |
		    VIS_TAB | VIS_OCTAL);
		die("invalid user name '%s': %s", shown, why);
	}
}

static void
chomp(char *s)
{
	s[strcspn(s, "\r\n")] = '\0';
}

static void
read_line_stdin(char *buf, size_t len)
{
	if (fgets(buf, len, stdin) == NULL)
		die("no password on standard input");
	if (strchr(buf, '\n') == NULL && !feof(stdin))
		die("password too long (at most %d characters)", PASSWORD_MAX);
	chomp(buf);
}

static void
prompt_password(char *buf, size_t len)
{
	char	again[PASSWORD_MAX + 2];

	if (!isatty(STDIN_FILENO)) {
		read_line_stdin(buf, len);
		return;
	}
	if (readpassphrase("Password: ", buf, len, RPP_REQUIRE_TTY) == NULL ||
	    readpassphrase("Retype password: ", again, sizeof(again),
	    RPP_REQUIRE_TTY) == NULL)
		die("cannot read the password");
	if (strcmp(buf, again) != 0) {
		explicit_bzero(again, sizeof(again));
		die("the passwords do not match");
	}
	explicit_bzero(again, sizeof(again));
}

/* The password from the argument, "-" (one line of stdin), or a prompt. */
static void
get_password(const char *arg, char *buf, size_t len)
{
	if (arg == NULL)
		prompt_password(buf, len);
	else if (strcmp(arg, "-") == 0)
		read_line_stdin(buf, len);
	else if (strlcpy(buf, arg, len) >= len)
		die("password too long (at most %d characters)", PASSWORD_MAX);
	if (buf[0] == '\0')
		die("empty password refused");
}

static void
hash_password(const char *arg, char *hash, size_t hashlen)
{
	char	pw[PASSWORD_MAX + 2];

	get_password(arg, pw, sizeof(pw));
	if (password_hash(pw, hash, hashlen) == -1) {
		explicit_bzero(pw, sizeof(pw));
		die("cannot hash the password (yescrypt unavailable?)");
	}
	explicit_bzero(pw, sizeof(pw));
}

static void
prompt_name(char *buf, size_t len)
{
	if (isatty(STDIN_FILENO)) {
		fputs("Username: ", stderr);
		fflush(stderr);
	}
	if (fgets(buf, len, stdin) == NULL)
		die("no user name given");
	chomp(buf);
}

static void
user_path(char *buf, size_t len, const char *user, const char *file)
{
	if ((size_t)snprintf(buf, len, "%s/%s%s%s", adm.conf.maildir, user,
	    file ? "/" : "", file ? file : "") >= len)
		die("path too long under %s", adm.conf.maildir);
}

int
cmd_adduser(int argc, char **argv)
{
	struct userdb	 db;
	struct mboxopts	 o;
	char		 namebuf[256], name[USER_NAME_MAX + 1];
	char		 hash[USER_HASH_MAX + 1], path[PATH_MAX], err[512];
	int		 lockfd;

	if (argc > 2)
		usage_error("usage: adduser [user [password|-]]");
	if (argc == 0)
		prompt_name(namebuf, sizeof(namebuf));
	else
		strlcpy(namebuf, argv[0], sizeof(namebuf));
	normalize(namebuf, name);
	become_owner();
	/* Hash before taking the lock: yescrypt takes a while. */
	hash_password(argc == 2 ? argv[1] : NULL, hash, sizeof(hash));
	lockfd = take_lock();
	load_users(&db);
	if (userdb_find(&db, name) != NULL)
		die("User %s already exists.", name);
	if (mboxopts_for_user(adm.conf.maildir, NULL, &o, err,
	    sizeof(err)) == -1)
		die("%s", err);
	if (maildir_create(adm.conf.maildir, name, (uid_t)-1, 0) == -1)
		die("cannot create the mailbox of %s: %s", name,
		    strerror(errno));
	/* The defaults of today are this mailbox's own from now on. */
	user_path(path, sizeof(path), name, "options");
	if (mboxopts_save(path, &o) == -1)
		die("cannot write %s: %s", path, strerror(errno));
	userdb_add(&db, name, hash);
	save_users(&db);
	close(lockfd);
	userdb_free(&db);
	puts("User added.");
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	int	r = flag == FTW_DP ? rmdir(path) : unlink(path);

	if (r == -1)
		fprintf(stderr, "pymailadm: cannot remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

/*
 * A mailbox is not removed under a POP3 session, on this host or another
 * serving the same store: wait a little for it to end, else give up with
 * nothing changed. -1 when the folder is missing (nothing to hold), or
 * when the lock file is not a file: then no session can hold it either.
 */
static int
lock_mailbox(const char *name)
{
	int	fd;

	switch (mboxlock_wait(adm.conf.maildir, name, MBOXLOCK_TOOL_WAIT_MS,
	    &fd)) {
	case MBOXLOCK_OK:
		return fd;
	case MBOXLOCK_BUSY:
		die("the mailbox of %s is in use by a POP3 session; try again "
		    "later", name);
	case MBOXLOCK_NOTFILE:
		return -1;
	default:
		if (errno == ENOENT)
			return -1;
		die("cannot lock the mailbox of %s: %s", name, strerror(errno));
	}
}

int
cmd_rmuser(int argc, char **argv)
{
	struct userdb	db;
	char		name[USER_NAME_MAX + 1], path[PATH_MAX];
	int		lockfd, mboxfd;

	if (argc != 1)
		usage_error("usage: rmuser user");
	normalize(argv[0], name);
	become_owner();
	/* Before MAILDIR/.lock: the wait must not stall other commands. */
	mboxfd = lock_mailbox(name);
	lockfd = take_lock();
	load_users(&db);
	if (userdb_remove(&db, name) == -1)
		die("No such user.");
	/* The users file is the commit point; the folder goes after. */
	save_users(&db);
	user_path(path, sizeof(path), name, NULL);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	close(lockfd);
	if (mboxfd != -1)
		close(mboxfd);
	userdb_free(&db);
	puts("User deleted.");
	return 0;
}

int
cmd_chpasswd(int argc, char **argv)
{
	struct userdb	 db;
	struct userent	*u;
	char		 name[USER_NAME_MAX + 1], hash[USER_HASH_MAX + 1];
	int		 lockfd;

	if (argc < 1 || argc > 2)
		usage_error("usage: chpasswd user [password|-]");
	normalize(argv[0], name);
	become_owner();
	/* Refuse unknown users before asking for a password. */
	load_users(&db);
	if (userdb_find(&db, name) == NULL)
		die("No such user.");
	userdb_free(&db);
	hash_password(argc == 2 ? argv[1] : NULL, hash, sizeof(hash));
	lockfd = take_lock();
	load_users(&db);
	if ((u = userdb_find(&db, name)) == NULL)
		die("No such user.");
	strlcpy(u->hash, hash, sizeof(u->hash));
	save_users(&db);
	close(lockfd);
	userdb_free(&db);
	puts("Password changed.");
	return 0;
}

static void
require_user(const char *name)
{
	struct userdb	db;

	load_users(&db);
	if (userdb_find(&db, name) == NULL)
		die("No such user.");
	userdb_free(&db);
}

int
cmd_chopt(int argc, char **argv)
{
	struct mboxopts	o;
	char		name[USER_NAME_MAX + 1], path[PATH_MAX], err[512];
	int		lockfd;

	if (argc != 3)
		usage_error("usage: chopt user option value");
	normalize(argv[0], name);
	become_owner();
	lockfd = take_lock();
	require_user(name);
	if (mboxopts_for_user(adm.conf.maildir, name, &o, err,
	    sizeof(err)) == -1)
		die("%s", err);
	if (mboxopts_set(&o, argv[1], argv[2], err, sizeof(err)) == -1)
		die("%s", err);
	user_path(path, sizeof(path), name, "options");
	if (mboxopts_save(path, &o) == -1)
		die("cannot write %s: %s", path, strerror(errno));
	close(lockfd);
	puts("Option changed.");
	return 0;
}

int
cmd_chdefaultopt(int argc, char **argv)
{
	struct mboxopts	o;
	char		path[PATH_MAX], err[512];
	int		lockfd;

	if (argc != 2)
		usage_error("usage: chdefaultopt option value");
	become_owner();
	lockfd = take_lock();
	if (mboxopts_for_user(adm.conf.maildir, NULL, &o, err,
	    sizeof(err)) == -1)
		die("%s", err);
	if (mboxopts_set(&o, argv[0], argv[1], err, sizeof(err)) == -1)
		die("%s", err);
	snprintf(path, sizeof(path), "%s/default_options", adm.conf.maildir);
	if (mboxopts_save(path, &o) == -1)
		die("cannot write %s: %s", path, strerror(errno));
	close(lockfd);
	puts("Default option changed.");
	return 0;
}

int
cmd_getinfo(int argc, char **argv)
{
	struct mboxopts	 o;
	long long	 bytes, count;
	char		 name[USER_NAME_MAX + 1], err[512];
	char		 pop3[300], smtp[300];

	if (argc != 1)
		usage_error("usage: getinfo user");
	normalize(argv[0], name);
	become_owner();
	require_user(name);
	if (mboxopts_for_user(adm.conf.maildir, name, &o, err,
	    sizeof(err)) == -1)
		die("%s", err);
	if (maildir_usage(adm.conf.maildir, name, &bytes, &count) == -1)
		die("cannot read the mailbox of %s: %s", name,
		    strerror(errno));
	snprintf(pop3, sizeof(pop3), "%s:%d", adm.conf.serverhostname,
	    adm.conf.pop3serverport);
	snprintf(smtp, sizeof(smtp), "%s:%d", adm.conf.serverhostname,
	    adm.conf.smtpserverport);
	if (adm.json) {
		json_begin();
		json_num("usedmailbox", bytes);
		json_num("waitingmails", count);
		json_str("pop3server", pop3);
		json_str("smtpserver", smtp);
		json_num("mailboxsize", o.mailboxsize);
		json_num("maxmailsize", o.maxmailsize);
		json_bool("enabled", o.enabled);
		json_end();
		return 0;
	}
	printf("usedmailbox=%lld\nwaitingmails=%lld\npop3server=%s\n"
	    "smtpserver=%s\nmailboxsize=%lld\nmaxmailsize=%lld\n"
	    "enabled=%s\n", bytes, count, pop3, smtp, o.mailboxsize,
	    o.maxmailsize, o.enabled ? "true" : "false");
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct userent *)a)->name,
	    ((const struct userent *)b)->name);
}

/* Sorted: the file keeps the order of creation, a reader wants order. */
int
cmd_users(int argc, char **argv)
{
	struct userdb	db;
	size_t		i;

	if (argc != 0)
		usage_error("usage: users");
	become_owner();
	load_users(&db);
	if (db.n > 1)
		qsort(db.v, db.n, sizeof(*db.v), name_cmp);
	for (i = 0; i < db.n; i++)
		puts(db.v[i].name);
	userdb_free(&db);
	return 0;
}
