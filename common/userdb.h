/*
 * The user database (MAILDIR/users), mailbox options and passwords.
 * Shared by the parent (the mailbox store) and pymailadm.
 */
#ifndef PYMAILD_USERDB_H
#define PYMAILD_USERDB_H

#include <stddef.h>
#include <sys/types.h>

#define USER_NAME_MAX	64
#define USER_HASH_MAX	256
#define USERS_FILE_MAX	(16 * 1024 * 1024)

struct userent {
	char	name[USER_NAME_MAX + 1];
	char	hash[USER_HASH_MAX + 1];
};

struct userdb {
	struct userent	*v;
	size_t		 n, cap;
};

/* Validate and lower-case a user name (DESIGN.md A1). 0 ok, -1 with why. */
int	 user_name_normalize(const char *in, char out[USER_NAME_MAX + 1],
	    const char **why);

/*
 * The user a login names: "alice", or "alice@" one of the local domains
 * (mail clients fill in the whole address by default). 0 with the
 * normalised name in out, -1 with why.
 */
struct config;
int	 login_user_name(const struct config *, const char *in,
	    char out[USER_NAME_MAX + 1], const char **why);

/* Load MAILDIR/users (a missing file is an empty db). -1 with one line in
 * err naming the file and line. */
int	 userdb_load(const char *maildir, struct userdb *db, char *err,
	    size_t errlen);
/* The same over the file's text (len bytes, NUL-terminated, changed in
 * place); name stands for the file in err. */
int	 userdb_parse(char *data, size_t len, const char *name,
	    struct userdb *db, char *err, size_t errlen);
int	 userdb_save(const char *maildir, const struct userdb *db);
void	 userdb_free(struct userdb *db);
struct userent *userdb_find(const struct userdb *db, const char *name);
/* Add (the name must be new) or remove; 0 ok, -1 when absent/present. */
int	 userdb_add(struct userdb *db, const char *name, const char *hash);
int	 userdb_remove(struct userdb *db, const char *name);

/* The lock every writer of MAILDIR's files takes (MAILDIR/.lock). */
int	 maildir_lock(const char *maildir);

/* yescrypt through libxcrypt; -1 on failure. */
int	 password_hash(const char *password, char *out, size_t outlen);
/* 1 when password matches hash ($y$, $2b$, or PyMaild md5 hex), else 0. */
int	 password_verify(const char *password, const char *hash);
/* PyMaild 0.2's unsalted md5 hex, accepted only for imported users. */
int	 password_is_legacy(const char *hash);

/*
 * Mailbox options (DESIGN.md A3): MAILDIR/default_options and
 * MAILDIR/USER/options, libconfig syntax.
 */
struct mboxopts {
	long long	mailboxsize;
	long long	maxmailsize;
	int		enabled;
};

void	 mboxopts_defaults(struct mboxopts *o);
/* Load path over *o; a missing file leaves *o as it is. */
int	 mboxopts_load(const char *path, struct mboxopts *o, char *err,
	    size_t errlen);
/* The same over a file's text; name stands for the file in err. */
int	 mboxopts_parse(const char *text, const char *name, struct mboxopts *o,
	    char *err, size_t errlen);
/* The text mboxopts_save writes (snprintf's return value). */
int	 mboxopts_format(const struct mboxopts *o, char *buf, size_t len);
int	 mboxopts_save(const char *path, const struct mboxopts *o);
/* Set one option from text; -1 with a reason for unknown keys or values. */
int	 mboxopts_set(struct mboxopts *o, const char *key, const char *value,
	    char *err, size_t errlen);
/* A user's effective options: defaults, default_options, USER/options. */
int	 mboxopts_for_user(const char *maildir, const char *user,
	    struct mboxopts *o, char *err, size_t errlen);

/* Figures of a Maildir: bytes and messages in new and cur. */
int	 maildir_usage(const char *maildir, const char *user,
	    long long *bytes, long long *count);
/* Create MAILDIR/USER/Maildir/{tmp,new,cur}. */
int	 maildir_create(const char *maildir, const char *user, uid_t uid,
	    gid_t gid);

#endif
