/*
 * The users file (common/userdb.c): what loads holds valid, distinct,
 * lower-case names, and written out as userdb_save does it loads back
 * to the same entries.
 */
#include <string.h>

#include "userdb.h"
#include "fuzz.h"

static char *
format(const struct userdb *db, size_t *len)
{
	char	*buf, *p;
	size_t	 i, cap = 1;

	for (i = 0; i < db->n; i++)
		cap += strlen(db->v[i].name) + strlen(db->v[i].hash) + 2;
	if ((buf = p = malloc(cap)) == NULL)
		abort();
	for (i = 0; i < db->n; i++)
		p += snprintf(p, cap - (p - buf), "%s:%s\n", db->v[i].name,
		    db->v[i].hash);
	*p = '\0';
	*len = p - buf;
	return buf;
}

FUZZ_ENTRY(userdb)
{
	struct userdb	 db, again;
	char		 err[256], norm[USER_NAME_MAX + 1], *text;
	const char	*why;
	size_t		 i, len;

	text = fuzz_cstr(data, size);
	if (user_name_normalize(text, norm, &why) == 0) {
		FUZZ_ASSERT(strlen(norm) == strlen(text));
		FUZZ_ASSERT(user_name_normalize(norm, norm, &why) == 0);
	}
	memcpy(text, data, size);	/* normalize may not write, but be sure */
	if (userdb_parse(text, size, "users", &db, err, sizeof(err)) == -1) {
		FUZZ_ASSERT(db.n == 0 && db.v == NULL);
		FUZZ_ASSERT(strncmp(err, "users:", 6) == 0);
		free(text);
		return 0;
	}
	free(text);
	for (i = 0; i < db.n; i++) {
		FUZZ_ASSERT(user_name_normalize(db.v[i].name, norm, &why) == 0);
		FUZZ_ASSERT(strcmp(norm, db.v[i].name) == 0);
		FUZZ_ASSERT(userdb_find(&db, db.v[i].name) == &db.v[i]);
		FUZZ_ASSERT(strchr(db.v[i].hash, ':') == NULL);
	}
	text = format(&db, &len);
	FUZZ_ASSERT(userdb_parse(text, len, "users", &again, err,
	    sizeof(err)) == 0);
	FUZZ_ASSERT(again.n == db.n);
	for (i = 0; i < db.n; i++) {
		FUZZ_ASSERT(strcmp(again.v[i].name, db.v[i].name) == 0);
		FUZZ_ASSERT(strcmp(again.v[i].hash, db.v[i].hash) == 0);
	}
	if (db.n > 0) {
		FUZZ_ASSERT(userdb_remove(&again, db.v[0].name) == 0);
		FUZZ_ASSERT(userdb_find(&again, db.v[0].name) == NULL);
		FUZZ_ASSERT(userdb_add(&again, db.v[0].name, "x") == 0);
	}
	free(text);
	userdb_free(&db);
	userdb_free(&again);
	return 0;
}
