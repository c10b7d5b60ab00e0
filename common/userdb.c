/*
 * MAILDIR/users: "name:hash" lines. Written whole with temp + fsync +
 * rename under MAILDIR/.lock, so readers never see half a file.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "userdb.h"
#include "util.h"

/* Names the daemon keeps in MAILDIR itself. */
static const char *const reserved_names[] = {
	"users", "default_options", "mxservers", "queue", NULL
};

int
user_name_normalize(const char *in, char out[USER_NAME_MAX + 1],
    const char **why)
{
	size_t	i, len = strlen(in);
	int	c;

	if (len == 0 || len > USER_NAME_MAX) {
		*why = "user names are 1 to 64 characters";
		return -1;
	}
	for (i = 0; i < len; i++) {
		c = tolower((unsigned char)in[i]);
		if (!(islower(c) || isdigit(c) || c == '.' || c == '_' ||
		    c == '-') || (unsigned char)in[i] >= 0x80) {
			*why = "user names may only contain a-z 0-9 . _ -";
			return -1;
		}
		out[i] = c;
	}
	out[len] = '\0';
	if (out[0] == '.' || out[0] == '-') {
		*why = "user names may not start with '.' or '-'";
		return -1;
	}
	for (i = 0; reserved_names[i]; i++) {
		if (strcmp(out, reserved_names[i]) == 0) {
			*why = "that name is reserved by pymaild";
			return -1;
		}
	}
	return 0;
}

int
login_user_name(const struct config *conf, const char *in,
    char out[USER_NAME_MAX + 1], const char **why)
{
	char		 local[USER_NAME_MAX + 1];
	const char	*at = strrchr(in, '@');
	size_t		 len;

	if (at == NULL)
		return user_name_normalize(in, out, why);
	len = at - in;
	if (len == 0 || len > USER_NAME_MAX ||
	    !config_is_localdomain(conf, at + 1)) {
		*why = "not a user of a local domain";
		return -1;
	}
	memcpy(local, in, len);
	local[len] = '\0';
	return user_name_normalize(local, out, why);
}

static int
hash_valid(const char *h)
{
	size_t	i;

	if (*h == '\0' || strlen(h) > USER_HASH_MAX)
		return 0;
	for (i = 0; h[i]; i++)
		if (!isgraph((unsigned char)h[i]) || h[i] == ':')
			return 0;
	return 1;
}

static int
parse_line(char *line, struct userdb *db, const char **why)
{
	char		 name[USER_NAME_MAX + 1];
	char		*colon = strchr(line, ':');

	if (colon == NULL) {
		*why = "expected name:hash";
		return -1;
	}
	*colon = '\0';
	if (user_name_normalize(line, name, why) == -1)
		return -1;
	if (strcmp(name, line) != 0) {
		*why = "user name is not lower-case";
		return -1;
	}
	if (!hash_valid(colon + 1)) {
		*why = "bad password hash";
		return -1;
	}
	if (userdb_add(db, name, colon + 1) == -1) {
		*why = "duplicate user";
		return -1;
	}
	return 0;
}

int
userdb_parse(char *data, size_t len, const char *name, struct userdb *db,
    char *err, size_t errlen)
{
	char		*line, *next;
	const char	*why;
	int		 lineno = 0;

	memset(db, 0, sizeof(*db));
	if ((line = memchr(data, '\0', len)) != NULL) {
		for (next = data; next < line; next++)
			lineno += *next == '\n';
		snprintf(err, errlen, "%s:%d: corrupt: contains a NUL byte",
		    name, lineno + 1);
		return -1;
	}
	for (line = data; line && *line; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if (parse_line(line, db, &why) == -1) {
			snprintf(err, errlen, "%s:%d: corrupt: %s", name,
			    lineno, why);
			userdb_free(db);
			return -1;
		}
	}
	return 0;
}

int
userdb_load(const char *maildir, struct userdb *db, char *err, size_t errlen)
{
	char		 path[PATH_MAX], *data;
	size_t		 len;
	int		 r;

	memset(db, 0, sizeof(*db));
	snprintf(path, sizeof(path), "%s/users", maildir);
	if (file_read_all(path, USERS_FILE_MAX, &data, &len) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	r = userdb_parse(data, len, path, db, err, errlen);
	free(data);
	return r;
}

int
userdb_save(const char *maildir, const struct userdb *db)
{
	char	 path[PATH_MAX], *buf;
	size_t	 i, len = 0, cap = 1;
	int	 r;

	for (i = 0; i < db->n; i++)
		cap += strlen(db->v[i].name) + strlen(db->v[i].hash) + 2;
	buf = xmalloc(cap);
	for (i = 0; i < db->n; i++)
		len += snprintf(buf + len, cap - len, "%s:%s\n",
		    db->v[i].name, db->v[i].hash);
	snprintf(path, sizeof(path), "%s/users", maildir);
	r = file_write_atomic(path, buf, len, 0600);
	free(buf);
	return r;
}

void
userdb_free(struct userdb *db)
{
	if (db->v)
		explicit_bzero(db->v, db->cap * sizeof(*db->v));
	free(db->v);
	memset(db, 0, sizeof(*db));
}

struct userent *
userdb_find(const struct userdb *db, const char *name)
{
	size_t	i;

	for (i = 0; i < db->n; i++)
		if (strcmp(db->v[i].name, name) == 0)
			return &db->v[i];
	return NULL;
}

int
userdb_add(struct userdb *db, const char *name, const char *hash)
{
	struct userent	*u;

	if (userdb_find(db, name) != NULL)
		return -1;
	if (db->n == db->cap) {
		db->cap = db->cap ? db->cap * 2 : 16;
		db->v = xreallocarray(db->v, db->cap, sizeof(*db->v));
	}
	u = &db->v[db->n++];
	strlcpy(u->name, name, sizeof(u->name));
	strlcpy(u->hash, hash, sizeof(u->hash));
	return 0;
}

int
userdb_remove(struct userdb *db, const char *name)
{
	struct userent	*u = userdb_find(db, name);
	size_t		 i;

	if (u == NULL)
		return -1;
	i = u - db->v;
	memmove(&db->v[i], &db->v[i + 1], (db->n - i - 1) * sizeof(*u));
	db->n--;
	return 0;
}

int
maildir_lock(const char *maildir)
{
	char	path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/.lock", maildir);
	return lock_take(path);
}
