/*
 * Unit tests for common/userdb.c, common/mboxopt.c and the file helpers of
 * common/util.c: user names (DESIGN.md A1), MAILDIR/users, the MAILDIR
 * lock, mailbox options (A3, A7) and Maildir figures. Everything happens
 * in a mkdtemp folder that is removed at the end.
 */

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "userdb.h"
#include "util.h"
#include "unit.h"

static char	top[256];		/* the mkdtemp folder */

/* top/rel into buf (PATH_MAX bytes). */
static const char *
tpath(char *buf, const char *rel)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", top, rel) >= PATH_MAX) {
		fprintf(stderr, "path too long\n");
		exit(2);
	}
	return buf;
}

/* Create a file with exactly these bytes. */
static void
mkfile(const char *path, const void *data, size_t len)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, data, len) != (ssize_t)len) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static void
mkfile_s(const char *path, const char *s)
{
	mkfile(path, s, strlen(s));
}

static int
file_is(const char *path, const char *want)
{
	char	*data;
	size_t	 len;
	int	 r;

	if (file_read_all(path, 1 << 20, &data, &len) == -1)
		return 0;
	r = len == strlen(want) && memcmp(data, want, len) == 0;
	if (!r)
		printf("# %s: got \"%s\", want \"%s\"\n", path, data, want);
	free(data);
	return r;
}

static int
mode_is(const char *path, mode_t want)
{
	struct stat	st;

	return stat(path, &st) == 0 && (st.st_mode & 07777) == want;
}

static int
is_dir(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when the folder holds no leftover "*.tmp.*" file. */
static int
no_temp_files(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 clean = 1;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".tmp") != NULL) {
			printf("# leftover temp file %s/%s\n", dir, de->d_name);
			clean = 0;
		}
	}
	closedir(d);
	return clean;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ */

static int
name_ok(const char *in, const char *want)
{
	char		 out[USER_NAME_MAX + 1];
	const char	*why = NULL;

	if (user_name_normalize(in, out, &why) != 0) {
		printf("# \"%s\" refused: %s\n", in, why ? why : "(null)");
		return 0;
	}
	if (strcmp(out, want) != 0) {
		printf("# \"%s\" -> \"%s\", want \"%s\"\n", in, out, want);
		return 0;
	}
	return 1;
}

static int
name_bad(const char *in)
{
	char		 out[USER_NAME_MAX + 1];
	const char	*why = NULL;

	if (user_name_normalize(in, out, &why) != -1) {
		printf("# \"%s\" accepted as \"%s\"\n", in, out);
		return 0;
	}
	if (why == NULL || *why == '\0') {
		printf("# \"%s\" refused without a reason\n", in);
		return 0;
	}
	return 1;
}

static void
test_names(void)
{
	char	n64[USER_NAME_MAX + 2], n65[USER_NAME_MAX + 2];

	CHECK("name alice", name_ok("alice", "alice"));
	CHECK("name single char", name_ok("a", "a"));
	CHECK("name digits", name_ok("0day", "0day"));
	CHECK("name with . _ -", name_ok("bob.smith_1-x", "bob.smith_1-x"));
	CHECK("name starting with _", name_ok("_svc", "_svc"));
	CHECK("name ending with . or -", name_ok("a.", "a.") &&
	    name_ok("b-", "b-"));
	CHECK("name upper-case lowered", name_ok("Alice", "alice"));
	CHECK("name all upper lowered", name_ok("BOB.SMITH_X-Y", "bob.smith_x-y"));
	CHECK("name containing reserved word ok", name_ok("users2", "users2") &&
	    name_ok("myqueue", "myqueue"));

	memset(n64, 'x', USER_NAME_MAX);
	n64[USER_NAME_MAX] = '\0';
	memset(n65, 'y', USER_NAME_MAX + 1);
	n65[USER_NAME_MAX + 1] = '\0';
	CHECK("name 64 chars ok", name_ok(n64, n64));
	CHECK("name 65 chars refused", name_bad(n65));
	CHECK("name empty refused", name_bad(""));
	CHECK("name leading . refused", name_bad(".hidden"));
	CHECK("name leading - refused", name_bad("-rf"));
	CHECK("name . refused", name_bad("."));
	CHECK("name .. refused", name_bad(".."));
	CHECK("name with / refused", name_bad("a/b") && name_bad("/") &&
	    name_bad("../etc") && name_bad("a/../b"));
	CHECK("name with space refused", name_bad("a b") && name_bad(" a") &&
	    name_bad("a "));
	CHECK("name with tab/newline refused", name_bad("a\tb") &&
	    name_bad("a\n") && name_bad("a\r"));
	CHECK("name with , refused", name_bad("a:b"));
	CHECK("name with @ + % refused", name_bad("a@b") && name_bad("a+b") &&
	    name_bad("a%b"));
	CHECK("name non-ASCII refused", name_bad("j\xc3\xb6rg") &&
	    name_bad("\xff") && name_bad("a\x80"));
	CHECK("name Latin-1 upper refused", name_bad("\xc4x"));
	CHECK("name reserved users", name_bad("users"));
	CHECK("name reserved default_options", name_bad("default_options"));
	CHECK("name reserved mxservers", name_bad("mxservers"));
	CHECK("name reserved queue", name_bad("queue"));
	CHECK("name reserved in upper-case", name_bad("USERS") &&
	    name_bad("Queue") && name_bad("MxServers") &&
	    name_bad("Default_Options"));
}

/* ------------------------------------------------------------------ */

static void
test_userdb(void)
{
	struct userdb	 db, db2;
	struct userent	*u;
	char		 dir[PATH_MAX], p[PATH_MAX], err[512], name[32];
	char		 want[4096];
	int		 i, ok;

	tpath(dir, "udb");
	mkdir(dir, 0700);
	err[0] = '\0';
	CHECK("load missing file, 0", userdb_load(dir, &db, err,
	    sizeof(err)) == 0);
	CHECK("load missing file, empty db", db.n == 0 &&
	    userdb_find(&db, "alice") == NULL);
	userdb_free(&db);
	CHECK("load with missing MAILDIR, empty db",
	    userdb_load(tpath(p, "nope"), &db, err, sizeof(err)) == 0 &&
	    db.n == 0);
	userdb_free(&db);

	memset(&db, 0, sizeof(db));
	CHECK("add alice", userdb_add(&db, "alice", "$y$hashA") == 0);
	CHECK("add bob", userdb_add(&db, "bob", "$y$hashB") == 0);
	CHECK("add carol", userdb_add(&db, "carol", "5ebe2294ecd0e0f08eab7690d2a6ee69") == 0);
	CHECK("add duplicate refused", userdb_add(&db, "alice", "x") == -1 &&
	    db.n == 3);
	u = userdb_find(&db, "bob");
	CHECK("find bob", u != NULL && strcmp(u->name, "bob") == 0 &&
	    strcmp(u->hash, "$y$hashB") == 0);
	CHECK("find missing", userdb_find(&db, "dave") == NULL);
	CHECK("find is exact", userdb_find(&db, "Alice") == NULL &&
	    userdb_find(&db, "ali") == NULL);
	CHECK("duplicate add kept old hash",
	    strcmp(userdb_find(&db, "alice")->hash, "$y$hashA") == 0);
	CHECK("remove bob", userdb_remove(&db, "bob") == 0 && db.n == 2);
	CHECK("remove bob again refused", userdb_remove(&db, "bob") == -1);
	CHECK("removed bob is gone", userdb_find(&db, "bob") == NULL);
	CHECK("others kept in order", strcmp(db.v[0].name, "alice") == 0 &&
	    strcmp(db.v[1].name, "carol") == 0);
	CHECK("remove from empty-ish", userdb_remove(&db, "zed") == -1);

	CHECK("save", userdb_save(dir, &db) == 0);
	tpath(p, "udb/users");
	CHECK("saved text", file_is(p,
	    "alice:$y$hashA\ncarol:5ebe2294ecd0e0f08eab7690d2a6ee69\n"));
	CHECK("users file mode 0600", mode_is(p, 0600));
	CHECK("save leaves no temp file", no_temp_files(dir));

	CHECK("load", userdb_load(dir, &db2, err, sizeof(err)) == 0);
	CHECK("load round trip", db2.n == 2 &&
	    strcmp(db2.v[0].name, "alice") == 0 &&
	    strcmp(db2.v[0].hash, "$y$hashA") == 0 &&
	    strcmp(db2.v[1].name, "carol") == 0 &&
	    strcmp(db2.v[1].hash, "5ebe2294ecd0e0f08eab7690d2a6ee69") == 0);
	userdb_free(&db2);
	CHECK("free zeroes the db", db2.v == NULL && db2.n == 0);

	/* Growth past the first allocation, and the mode under odd umasks. */
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "user%03d", i);
		userdb_add(&db, name, "$y$h");
	}
	umask(0);
	CHECK("save 102 users (umask 0)", userdb_save(dir, &db) == 0);
	umask(022);
	CHECK("mode 0600 under umask 0", mode_is(p, 0600));
	chmod(p, 0644);
	CHECK("save over a 0644 file", userdb_save(dir, &db) == 0);
	CHECK("mode back to 0600", mode_is(p, 0600));
	ok = userdb_load(dir, &db2, err, sizeof(err)) == 0 && db2.n == 102;
	for (i = 0; ok && i < 100; i++) {
		snprintf(name, sizeof(name), "user%03d", i);
		if (userdb_find(&db2, name) == NULL)
			ok = 0;
	}
	CHECK("102 users round trip", ok);
	userdb_free(&db2);
	userdb_free(&db);

	/* Empty db saves an empty file that loads as empty. */
	CHECK("save empty db", userdb_save(dir, &db) == 0 && file_is(p, ""));
	CHECK("load empty file", userdb_load(dir, &db, err, sizeof(err)) == 0 &&
	    db.n == 0);
	userdb_free(&db);

	/* Comments, blank lines and a last line without its newline. */
	mkfile_s(p, "# users\n\nalice:$y$A\n\n# x\nbob:$2b$B");
	CHECK("comments, blank lines, no final newline",
	    userdb_load(dir, &db, err, sizeof(err)) == 0 && db.n == 2 &&
	    strcmp(userdb_find(&db, "bob")->hash, "$2b$B") == 0);
	userdb_free(&db);

	/* Longest hash accepted. */
	want[0] = 'a', want[1] = ':';
	memset(want + 2, 'h', USER_HASH_MAX);
	want[2 + USER_HASH_MAX] = '\n';
	want[3 + USER_HASH_MAX] = '\0';
	mkfile_s(p, want);
	CHECK("256-char hash accepted",
	    userdb_load(dir, &db, err, sizeof(err)) == 0 && db.n == 1 &&
	    strlen(db.v[0].hash) == USER_HASH_MAX);
	userdb_free(&db);
}

/*
 * The users file holding these bytes must be refused naming the file and
 * the line: "<path>:<line>:".
 */
static void
check_corrupt(const char *name, const void *data, size_t len, int line)
{
	struct userdb	 db;
	char		 dir[PATH_MAX], p[PATH_MAX], err[512], want[PATH_MAX + 32];
	int		 r;

	tpath(dir, "corrupt");
	mkdir(dir, 0700);
	mkfile(tpath(p, "corrupt/users"), data, len);
	snprintf(want, sizeof(want), "%s:%d:", p, line);
	memset(&db, 0xa5, sizeof(db));
	err[0] = '\0';
	r = userdb_load(dir, &db, err, sizeof(err));
	if (r != -1 || strncmp(err, want, strlen(want)) != 0)
		printf("# %s: rv %d err \"%s\", want prefix \"%s\"\n", name, r,
		    err, want);
	if (r == -1 && (db.v != NULL || db.n != 0))
		printf("# %s: db not left empty\n", name);
	CHECK(name, r == -1 && strncmp(err, want, strlen(want)) == 0 &&
	    strchr(err, '\n') == NULL && db.v == NULL && db.n == 0);
	if (r == 0)
		userdb_free(&db);
}

static void
test_corrupt(void)
{
	struct userdb	 db;
	char		 line[512], p[PATH_MAX], err[512];
	int		 fd;

#define C(name, s, line) check_corrupt(name, s, sizeof(s) - 1, line)
	C("corrupt, line without colon", "alice:$y$A\nbogus\n", 2);
	C("corrupt, bad name", "alice:$y$A\n\nbad/name:$y$B\n", 3);
	C("corrupt, name with space", "al ice:$y$A\n", 1);
	C("corrupt, reserved name", "queue:$y$A\n", 1);
	C("corrupt, leading dot name", ".x:$y$A\n", 1);
	C("corrupt, empty name", ":$y$A\n", 1);
	C("corrupt, upper-case name", "bob:$y$B\nAlice:$y$A\n", 2);
	C("corrupt, empty hash", "alice:\n", 1);
	C("corrupt, hash with space", "alice:$y$ A\n", 1);
	C("corrupt, hash with colon", "alice:$y$:A\n", 1);
	C("corrupt, CRLF line", "alice:$y$A\r\n", 1);
	C("corrupt, duplicate user", "alice:$y$A\nbob:$y$B\nalice:$y$C\n", 3);
	C("corrupt, NUL byte", "alice:$y$A\nbo\0b:$y$B\n", 2);
	C("corrupt, NUL byte in hash", "alice:$y$A\0\n", 1);
	C("corrupt, non-ASCII name", "j\xc3\xb6rg:$y$A\n", 1);
#undef C
	/* 65-char name and 257-char hash. */
	memset(line, 'n', USER_NAME_MAX + 1);
	strlcpy(line + USER_NAME_MAX + 1, ":$y$A\n", 8);
	check_corrupt("corrupt, 65-char name", line, strlen(line), 1);
	line[0] = 'a', line[1] = ':';
	memset(line + 2, 'h', USER_HASH_MAX + 1);
	strlcpy(line + 3 + USER_HASH_MAX, "\n", 2);
	check_corrupt("corrupt, 257-char hash", line, strlen(line), 1);

	/* Too large a file: refused naming the file. */
	tpath(p, "corrupt/users");
	fd = open(p, O_WRONLY | O_TRUNC);
	if (fd == -1 || ftruncate(fd, USERS_FILE_MAX + 1) == -1)
		exit(2);
	close(fd);
	err[0] = '\0';
	CHECK("users file over 16 MiB refused naming it",
	    userdb_load(tpath(line, "corrupt"), &db, err, sizeof(err)) == -1 &&
	    strncmp(err, p, strlen(p)) == 0);
	/* A folder in place of the file. */
	unlink(p);
	mkdir(p, 0700);
	err[0] = '\0';
	CHECK("users is a folder, refused naming it",
	    userdb_load(tpath(line, "corrupt"), &db, err, sizeof(err)) == -1 &&
	    strncmp(err, p, strlen(p)) == 0);
	rmdir(p);
}

/* ------------------------------------------------------------------ */

static void
test_file_helpers(void)
{
	char	 p[PATH_MAX], d[PATH_MAX], *data;
	size_t	 len;

	tpath(d, "files");
	mkdir(d, 0700);
	tpath(p, "files/a");
	CHECK("file_write_atomic new file",
	    file_write_atomic(p, "one\n", 4, 0640) == 0 && file_is(p, "one\n"));
	CHECK("file_write_atomic mode", mode_is(p, 0640));
	CHECK("file_write_atomic replaces",
	    file_write_atomic(p, "two", 3, 0600) == 0 && file_is(p, "two") &&
	    mode_is(p, 0600));
	CHECK("file_write_atomic empty",
	    file_write_atomic(p, "", 0, 0600) == 0 && file_is(p, ""));
	CHECK("file_write_atomic leaves no temp file", no_temp_files(d));

	/* A failing rename (a folder is in the way) cleans up its temp. */
	tpath(p, "files/adir");
	mkdir(p, 0700);
	errno = 0;
	CHECK("file_write_atomic onto a folder fails",
	    file_write_atomic(p, "x", 1, 0600) == -1 && errno != 0);
	CHECK("failed file_write_atomic leaves no temp file",
	    no_temp_files(d));
	errno = 0;
	CHECK("file_write_atomic in a missing folder fails ENOENT",
	    file_write_atomic(tpath(p, "files/none/x"), "x", 1, 0600) == -1 &&
	    errno == ENOENT);

	tpath(p, "files/b");
	mkfile_s(p, "12345");
	CHECK("file_read_all exact max", file_read_all(p, 5, &data, &len) == 0 &&
	    len == 5 && memcmp(data, "12345", 6) == 0);
	free(data);
	errno = 0;
	CHECK("file_read_all over max EFBIG",
	    file_read_all(p, 4, &data, &len) == -1 && errno == EFBIG);
	errno = 0;
	CHECK("file_read_all missing ENOENT",
	    file_read_all(tpath(p, "files/zz"), 4, &data, &len) == -1 &&
	    errno == ENOENT);
}

/* ------------------------------------------------------------------ */

/* In a child: try a non-blocking exclusive flock on path; exit 0 when it
 * is held by someone else, 1 when we got it, 2 on error. */
static int
child_trylock(const char *path, int close_fd)
{
	pid_t	pid;
	int	st, fd;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if (close_fd != -1)
			close(close_fd);
		if ((fd = open(path, O_RDWR)) == -1)
			_exit(2);
		if (flock(fd, LOCK_EX | LOCK_NB) == -1)
			_exit(errno == EWOULDBLOCK ? 0 : 2);
		_exit(1);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void
test_lock(void)
{
	struct pollfd	 pfd;
	char		 dir[PATH_MAX], p[PATH_MAX], c;
	int		 fd, fd2, pp[2], st;
	pid_t		 pid;

	tpath(dir, "lockdir");
	mkdir(dir, 0700);
	tpath(p, "lockdir/.lock");
	fd = maildir_lock(dir);
	CHECK("maildir_lock takes the lock", fd >= 0);
	CHECK("lock file created 0600", mode_is(p, 0600));
	CHECK("lock fd is close-on-exec", fd >= 0 &&
	    (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	CHECK("second taker is excluded", child_trylock(p, fd) == 0);
	close(fd);
	CHECK("lock free after close", child_trylock(p, -1) == 1);

	/* lock_take on the same path blocks until the holder lets go. */
	fd = lock_take(p);
	if (pipe(pp) == -1 || (pid = fork()) == -1)
		exit(2);
	if (pid == 0) {
		close(fd);
		close(pp[0]);
		if ((fd2 = maildir_lock(dir)) == -1)
			_exit(2);
		(void)!write(pp[1], "L", 1);
		_exit(0);
	}
	close(pp[1]);
	pfd.fd = pp[0];
	pfd.events = POLLIN;
	CHECK("waiting taker blocks while held", poll(&pfd, 1, 300) == 0);
	close(fd);
	CHECK("waiting taker gets it after release",
	    poll(&pfd, 1, 5000) == 1 && read(pp[0], &c, 1) == 1 && c == 'L');
	CHECK("waiting taker exits cleanly", waitpid(pid, &st, 0) == pid &&
	    WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(pp[0]);

	errno = 0;
	CHECK("maildir_lock in missing folder fails",
	    maildir_lock(tpath(p, "nolock/x")) == -1 && errno == ENOENT);
}

/* ------------------------------------------------------------------ */

static int
set_ok(struct mboxopts *o, const char *k, const char *v)
{
	char	err[256];

	err[0] = '\0';
	if (mboxopts_set(o, k, v, err, sizeof(err)) != 0) {
		printf("# set %s=%s refused: %s\n", k, v, err);
		return 0;
	}
	return 1;
}

/* Refused, with an error naming the key, and *o left unchanged. */
static int
set_bad(const char *k, const char *v)
{
	struct mboxopts	 o, before;
	char		 err[256], q[80];

	mboxopts_defaults(&o);
	o.mailboxsize = 123;
	o.maxmailsize = 456;
	o.enabled = 0;
	before = o;
	err[0] = '\0';
	if (mboxopts_set(&o, k, v, err, sizeof(err)) != -1) {
		printf("# set %s=%s accepted\n", k, v);
		return 0;
	}
	snprintf(q, sizeof(q), "'%s'", k);
	if (strstr(err, q) == NULL) {
		printf("# set %s=%s: error \"%s\" does not name the key\n", k,
		    v, err);
		return 0;
	}
	if (memcmp(&o, &before, sizeof(o)) != 0) {
		printf("# set %s=%s: refused but changed the options\n", k, v);
		return 0;
	}
	return 1;
}

static void
test_mboxopts(void)
{
	struct mboxopts	 o, o2;
	char		 p[PATH_MAX], err[512];
	const char	*yes[] = { "true", "yes", "1", "TRUE", "Yes", NULL };
	const char	*no[] = { "false", "no", "0", "FALSE", "No", NULL };
	int		 i, ok;

	mboxopts_defaults(&o);
	CHECK("defaults", o.mailboxsize == 10000000 &&
	    o.maxmailsize == 10000000 && o.enabled == 1);

	for (i = 0, ok = 1; no[i]; i++) {
		o.enabled = 1;
		if (!set_ok(&o, "enabled", no[i]) || o.enabled != 0)
			ok = 0;
	}
	CHECK("enabled false/no/0", ok);
	for (i = 0, ok = 1; yes[i]; i++) {
		o.enabled = 0;
		if (!set_ok(&o, "enabled", yes[i]) || o.enabled != 1)
			ok = 0;
	}
	CHECK("enabled true/yes/1", ok);
	CHECK("enabled bad values", set_bad("enabled", "maybe") &&
	    set_bad("enabled", "") && set_bad("enabled", "2") &&
	    set_bad("enabled", "tru") && set_bad("enabled", "-1") &&
	    set_bad("enabled", "yes please"));

	CHECK("mailboxsize 0", set_ok(&o, "mailboxsize", "0") &&
	    o.mailboxsize == 0);
	CHECK("mailboxsize 12345", set_ok(&o, "mailboxsize", "12345") &&
	    o.mailboxsize == 12345 && o.maxmailsize == 10000000);
	CHECK("maxmailsize 777", set_ok(&o, "maxmailsize", "777") &&
	    o.maxmailsize == 777 && o.mailboxsize == 12345);
	CHECK("mailboxsize 2^40", set_ok(&o, "mailboxsize", "1099511627776") &&
	    o.mailboxsize == 1099511627776LL);
	CHECK("mailboxsize over 2^40 refused",
	    set_bad("mailboxsize", "1099511627777"));
	CHECK("sizes negative refused", set_bad("mailboxsize", "-1") &&
	    set_bad("maxmailsize", "-5"));
	CHECK("sizes junk refused", set_bad("mailboxsize", "abc") &&
	    set_bad("maxmailsize", "10k") && set_bad("mailboxsize", "") &&
	    set_bad("mailboxsize", "1.5") && set_bad("maxmailsize", "0x10") &&
	    set_bad("mailboxsize", "12 34"));
	CHECK("sizes overflow refused",
	    set_bad("mailboxsize", "99999999999999999999999"));
	CHECK("unknown key refused naming it", set_bad("quota", "5") &&
	    set_bad("Enabled", "yes") && set_bad("mailboxSize", "1") &&
	    set_bad("", "1"));

	/* Save and load round trip. */
	tpath(p, "opts");
	o.mailboxsize = 0;
	o.maxmailsize = 1099511627776LL;
	o.enabled = 0;
	CHECK("save options", mboxopts_save(p, &o) == 0);
	CHECK("options file mode 0600", mode_is(p, 0600));
	mboxopts_defaults(&o2);
	CHECK("load options", mboxopts_load(p, &o2, err, sizeof(err)) == 0);
	CHECK("options round trip", o2.mailboxsize == 0 &&
	    o2.maxmailsize == 1099511627776LL && o2.enabled == 0);
	mboxopts_defaults(&o);
	CHECK("save defaults", mboxopts_save(p, &o) == 0);
	o2.enabled = 0;
	CHECK("load defaults over others",
	    mboxopts_load(p, &o2, err, sizeof(err)) == 0 &&
	    memcmp(&o, &o2, sizeof(o)) == 0);

	mboxopts_defaults(&o2);
	o2.mailboxsize = 5;
	CHECK("load missing file leaves options",
	    mboxopts_load(tpath(p, "nosuch"), &o2, err, sizeof(err)) == 0 &&
	    o2.mailboxsize == 5 && o2.enabled == 1);

	/* Partial files only change their keys; plain ints and bools. */
	mkfile_s(tpath(p, "opts"), "maxmailsize = 2048;\n");
	mboxopts_defaults(&o2);
	CHECK("partial file", mboxopts_load(p, &o2, err, sizeof(err)) == 0 &&
	    o2.maxmailsize == 2048 && o2.mailboxsize == 10000000 &&
	    o2.enabled == 1);
	mkfile_s(p, "enabled = 0;\nmailboxsize = 1;\n");
	CHECK("enabled as int", mboxopts_load(p, &o2, err, sizeof(err)) == 0 &&
	    o2.enabled == 0 && o2.mailboxsize == 1);
}

/* The options file holding text must be refused naming file and line. */
static void
check_opts_bad(const char *name, const char *text, int line,
    const char *needle)
{
	struct mboxopts	 o;
	char		 p[PATH_MAX], err[512], want[PATH_MAX + 32];
	int		 r;

	mkfile_s(tpath(p, "badopts"), text);
	snprintf(want, sizeof(want), "%s:%d:", p, line);
	mboxopts_defaults(&o);
	err[0] = '\0';
	r = mboxopts_load(p, &o, err, sizeof(err));
	if (r != -1 || strncmp(err, want, strlen(want)) != 0 ||
	    (needle && strstr(err, needle) == NULL))
		printf("# %s: rv %d err \"%s\", want \"%s...%s\"\n", name, r,
		    err, want, needle ? needle : "");
	CHECK(name, r == -1 && strncmp(err, want, strlen(want)) == 0 &&
	    (needle == NULL || strstr(err, needle) != NULL));
}

static void
test_mboxopts_corrupt(void)
{
	check_opts_bad("options, syntax error", "mailboxsize = ;\n", 1, NULL);
	check_opts_bad("options, syntax error line 2",
	    "enabled = true;\nmailboxsize 5\n", 2, NULL);
	check_opts_bad("options, garbage", "\x01\x02 not a config at all\n",
	    1, NULL);
	check_opts_bad("options, unknown key", "enabled = true;\nfoo = 1;\n",
	    2, "'foo'");
	check_opts_bad("options, negative size", "mailboxsize = -5;\n", 1,
	    "'mailboxsize'");
	check_opts_bad("options, size too large",
	    "maxmailsize = 1099511627777L;\n", 1, "'maxmailsize'");
	check_opts_bad("options, string value", "enabled = \"yes\";\n", 1,
	    "'enabled'");
	check_opts_bad("options, float value", "mailboxsize = 1.5;\n", 1,
	    "'mailboxsize'");
	check_opts_bad("options, bool for size", "mailboxsize = true;\n", 1,
	    "'mailboxsize'");
	check_opts_bad("options, int 2 for bool", "enabled = 2;\n", 1,
	    "'enabled'");
	check_opts_bad("options, group", "\nx = { a = 1; };\n", 2, "'x'");
	check_opts_bad("options, duplicate key",
	    "enabled = true;\nenabled = false;\n", 2, NULL);
	{
		char	p[PATH_MAX];

		mkfile(tpath(p, "badopts"), "enabled = true;\n\0x = 1;\n", 24);
	}
	{
		struct mboxopts	 o;
		char		 p[PATH_MAX], err[512];

		tpath(p, "badopts");
		mboxopts_defaults(&o);
		err[0] = '\0';
		CHECK("options, NUL byte refused naming the file",
		    mboxopts_load(p, &o, err, sizeof(err)) == -1 &&
		    strncmp(err, p, strlen(p)) == 0);
	}
}

/*
 * An options path that is a folder must be an error returned to the
 * caller. Run in a child: a library that exits the process on it would
 * take the daemon down.
 */
static void
test_mboxopts_folder(void)
{
	struct mboxopts	 o;
	char		 p[PATH_MAX], err[512];
	pid_t		 pid;
	int		 st;

	tpath(p, "optsdir");
	mkdir(p, 0700);
	fflush(stdout);
	if ((pid = fork()) == -1)
		exit(2);
	if (pid == 0) {
		mboxopts_defaults(&o);
		err[0] = '\0';
		if (mboxopts_load(p, &o, err, sizeof(err)) != -1)
			_exit(10);
		_exit(strncmp(err, p, strlen(p)) == 0 ? 0 : 11);
	}
	if (waitpid(pid, &st, 0) != pid)
		st = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf("# options folder: child %s %d (10 accepted, 11 bad "
		    "message, else the process died)\n", WIFEXITED(st) ?
		    "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) :
		    WTERMSIG(st));
	CHECK("options path is a folder, error, process survives",
	    WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
test_mboxopts_for_user(void)
{
	struct mboxopts	 o;
	char		 dir[PATH_MAX], p[PATH_MAX], err[512];

	tpath(dir, "eff");
	mkdir(dir, 0700);
	CHECK("effective, nothing on disk",
	    mboxopts_for_user(dir, "alice", &o, err, sizeof(err)) == 0 &&
	    o.mailboxsize == 10000000 && o.maxmailsize == 10000000 &&
	    o.enabled == 1);
	mkfile_s(tpath(p, "eff/default_options"),
	    "mailboxsize = 500;\nmaxmailsize = 400;\n");
	mkdir(tpath(p, "eff/alice"), 0700);
	mkfile_s(tpath(p, "eff/alice/options"),
	    "maxmailsize = 300;\nenabled = false;\n");
	CHECK("effective, defaults then user",
	    mboxopts_for_user(dir, "alice", &o, err, sizeof(err)) == 0 &&
	    o.mailboxsize == 500 && o.maxmailsize == 300 && o.enabled == 0);
	CHECK("effective, other user gets defaults",
	    mboxopts_for_user(dir, "bob", &o, err, sizeof(err)) == 0 &&
	    o.mailboxsize == 500 && o.maxmailsize == 400 && o.enabled == 1);
	CHECK("effective, NULL user", mboxopts_for_user(dir, NULL, &o, err,
	    sizeof(err)) == 0 && o.maxmailsize == 400);
	mkfile_s(tpath(p, "eff/alice/options"), "bogus = 1;\n");
	err[0] = '\0';
	CHECK("effective, corrupt user file refused naming it",
	    mboxopts_for_user(dir, "alice", &o, err, sizeof(err)) == -1 &&
	    strncmp(err, p, strlen(p)) == 0);
}

/* ------------------------------------------------------------------ */

static void
test_maildir(void)
{
	char		 dir[PATH_MAX], p[PATH_MAX];
	long long	 bytes = -1, count = -1;
	char		 buf[1000];

	tpath(dir, "md");
	mkdir(dir, 0700);
	CHECK("maildir_create", maildir_create(dir, "alice", (uid_t)-1,
	    (gid_t)-1) == 0);
	CHECK("maildir_create user folder", is_dir(tpath(p, "md/alice")) &&
	    mode_is(p, 0700));
	CHECK("maildir_create Maildir", is_dir(tpath(p, "md/alice/Maildir")));
	CHECK("maildir_create tmp", is_dir(tpath(p, "md/alice/Maildir/tmp")) &&
	    mode_is(p, 0700));
	CHECK("maildir_create new", is_dir(tpath(p, "md/alice/Maildir/new")) &&
	    mode_is(p, 0700));
	CHECK("maildir_create cur", is_dir(tpath(p, "md/alice/Maildir/cur")) &&
	    mode_is(p, 0700));
	CHECK("maildir_create again is fine", maildir_create(dir, "alice",
	    (uid_t)-1, (gid_t)-1) == 0);
	CHECK("maildir_create with own uid", maildir_create(dir, "bob",
	    getuid(), getgid()) == 0 && is_dir(tpath(p, "md/bob/Maildir/cur")));
	mkfile_s(tpath(p, "md/carol"), "a file");
	errno = 0;
	CHECK("maildir_create over a file fails",
	    maildir_create(dir, "carol", (uid_t)-1, (gid_t)-1) == -1 &&
	    errno == ENOTDIR);

	CHECK("usage of empty Maildir", maildir_usage(dir, "alice", &bytes,
	    &count) == 0 && bytes == 0 && count == 0);
	memset(buf, 'm', sizeof(buf));
	mkfile(tpath(p, "md/alice/Maildir/new/1.a.host"), buf, 10);
	mkfile(tpath(p, "md/alice/Maildir/new/2.b.host"), buf, 20);
	mkfile(tpath(p, "md/alice/Maildir/cur/3.c.host:2,S"), buf, 300);
	mkfile(tpath(p, "md/alice/Maildir/cur/4.d.host:2,"), buf, 0);
	mkfile(tpath(p, "md/alice/Maildir/tmp/5.e.host"), buf, 1000);
	mkdir(tpath(p, "md/alice/Maildir/cur/subdir"), 0700);
	CHECK("usage counts new and cur, not tmp",
	    maildir_usage(dir, "alice", &bytes, &count) == 0 &&
	    bytes == 330 && count == 4);
	if (bytes != 330 || count != 4)
		printf("# bytes %lld count %lld\n", bytes, count);
	bytes = count = 99;
	CHECK("usage of a missing user is zero",
	    maildir_usage(dir, "nobody", &bytes, &count) == 0 && bytes == 0 &&
	    count == 0);
}

int
main(void)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(top, sizeof(top), "%s/test_userdb.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	umask(022);
	test_names();
	test_userdb();
	test_corrupt();
	test_file_helpers();
	test_lock();
	test_mboxopts();
	test_mboxopts_corrupt();
	test_mboxopts_folder();
	test_mboxopts_for_user();
	test_maildir();
	rm_rf(top);
	UNIT_EXIT();
}
