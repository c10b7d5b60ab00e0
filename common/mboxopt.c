/*
 * Mailbox options and Maildir figures.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "userdb.h"
#include "util.h"

#define SIZE_OPT_MAX	(1LL << 40)

void
mboxopts_defaults(struct mboxopts *o)
{
	o->mailboxsize = 10000000;
	o->maxmailsize = 10000000;
	o->enabled = 1;
}

static int
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "yes", "1", "on", NULL };
	static const char *const no[] = { "false", "no", "0", "off", NULL };
	int	i;

	for (i = 0; yes[i]; i++)
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
	for (i = 0; no[i]; i++)
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	return -1;
}

static int
parse_size(const char *v, long long *out)
{
	const char	*errstr;
	long long	 n;

	n = strtonum(v, 0, SIZE_OPT_MAX, &errstr);
	if (errstr != NULL)
		return -1;
	*out = n;
	return 0;
}

int
mboxopts_set(struct mboxopts *o, const char *key, const char *value,
    char *err, size_t errlen)
{
	if (strcmp(key, "mailboxsize") == 0 || strcmp(key, "maxmailsize") == 0) {
		long long	*dst = key[1] == 'a' && key[2] == 'i' ?
		    &o->mailboxsize : &o->maxmailsize;

		if (parse_size(value, dst) == -1) {
			snprintf(err, errlen, "option '%s' takes a size in "
			    "bytes (0 to %lld), not '%s'", key, SIZE_OPT_MAX,
			    value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "enabled") == 0) {
		if (parse_bool(value, &o->enabled) == -1) {
			snprintf(err, errlen, "option 'enabled' takes "
			    "true/false/yes/no/1/0, not '%s'", value);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s' (known: mailboxsize, "
	    "maxmailsize, enabled)", key);
	return -1;
}

static int
setting_to_text(config_setting_t *s, char *buf, size_t len)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, len, "%lld", config_setting_get_int64(s));
		return 0;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, len, "%s", config_setting_get_bool(s) ?
		    "true" : "false");
		return 0;
	default:
		return -1;
	}
}

/* Apply every setting of a file libconfig has read; name is the file. */
static int
apply_settings(config_t *cf, const char *name, struct mboxopts *o,
    char *err, size_t errlen)
{
	config_setting_t	*root, *s;
	char			 value[64], why[256];
	int			 i;

	root = config_root_setting(cf);
	for (i = 0; (s = config_setting_get_elem(root, i)) != NULL; i++) {
		if (setting_to_text(s, value, sizeof(value)) == -1 ||
		    mboxopts_set(o, config_setting_name(s), value, why,
		    sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%d: key '%s': %s", name,
			    config_setting_source_line(s),
			    config_setting_name(s),
			    setting_to_text(s, value, sizeof(value)) == -1 ?
			    "wrong type" : why);
			return -1;
		}
	}
	return 0;
}

int
mboxopts_parse(const char *text, const char *name, struct mboxopts *o,
    char *err, size_t errlen)
{
	config_t	cf;
	int		r = -1;

	config_init(&cf);
	if (config_read_string(&cf, text) != CONFIG_TRUE)
		snprintf(err, errlen, "%s:%d: corrupt: %s", name,
		    config_error_line(&cf), config_error_text(&cf));
	else
		r = apply_settings(&cf, name, o, err, errlen);
	config_destroy(&cf);
	return r;
}

int
mboxopts_load(const char *path, struct mboxopts *o, char *err, size_t errlen)
{
	config_t		 cf;
	int			 r = -1;
	FILE			*fp;
	struct stat		 st;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* libconfig's scanner exits the process on a folder: check first. */
	if (fstat(fileno(fp), &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		fclose(fp);
		return -1;
	}
	config_init(&cf);
	if (config_read(&cf, fp) != CONFIG_TRUE) {
		snprintf(err, errlen, "%s:%d: corrupt: %s", path,
		    config_error_line(&cf), config_error_text(&cf));
		goto out;
	}
	r = apply_settings(&cf, path, o, err, errlen);
out:
	config_destroy(&cf);
	fclose(fp);
	return r;
}

int
mboxopts_format(const struct mboxopts *o, char *buf, size_t len)
{
	return snprintf(buf, len,
	    "# pymaild mailbox options (written by pymailadm)\n"
	    "mailboxsize = %lldL;\nmaxmailsize = %lldL;\nenabled = %s;\n",
	    o->mailboxsize, o->maxmailsize, o->enabled ? "true" : "false");
}

int
mboxopts_save(const char *path, const struct mboxopts *o)
{
	char	buf[256];
	int	len;

	len = mboxopts_format(o, buf, sizeof(buf));
	return file_write_atomic(path, buf, len, 0600);
}

int
mboxopts_for_user(const char *maildir, const char *user, struct mboxopts *o,
    char *err, size_t errlen)
{
	char	path[PATH_MAX];

	mboxopts_defaults(o);
	snprintf(path, sizeof(path), "%s/default_options", maildir);
	if (mboxopts_load(path, o, err, errlen) == -1)
		return -1;
	if (user == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/%s/options", maildir, user);
	return mboxopts_load(path, o, err, errlen);
}

static int
dir_usage(const char *dir, long long *bytes, long long *count)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 path[PATH_MAX];

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		*bytes += st.st_size;
		(*count)++;
	}
	closedir(d);
	return 0;
}

int
maildir_usage(const char *maildir, const char *user, long long *bytes,
    long long *count)
{
	char	path[PATH_MAX];

	*bytes = *count = 0;
	snprintf(path, sizeof(path), "%s/%s/Maildir/new", maildir, user);
	if (dir_usage(path, bytes, count) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/%s/Maildir/cur", maildir, user);
	return dir_usage(path, bytes, count);
}

int
maildir_create(const char *maildir, const char *user, uid_t uid, gid_t gid)
{
	static const char *const sub[] = { "", "/Maildir", "/Maildir/tmp",
	    "/Maildir/new", "/Maildir/cur", NULL };
	char	path[PATH_MAX];
	int	i;

	for (i = 0; sub[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", maildir, user, sub[i]);
		if (dir_ensure(path, 0700, uid, gid) == -1)
			return -1;
	}
	return 0;
}
