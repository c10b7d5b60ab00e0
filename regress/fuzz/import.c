/*
 * PyMaild 0.2 import files (admin/impparse.c). The first byte picks the
 * file: an options file, the users file, a USER/mail list, the state
 * file, or a message to convert (fed in pieces the second byte sizes).
 * Checked: names that pass are safe path components and normalized,
 * options stay in range, and a message converts the same whatever the
 * pieces, into no more than it came in.
 */
#include <ctype.h>
#include <string.h>

#include "impparse.h"
#include "fuzz.h"

static void
options(char *text)
{
	struct mboxopts	 o;
	char		*p = text, *line, *key, *value, err[512];

	mboxopts_defaults(&o);
	while ((line = imp_next_line(&p)) != NULL) {
		line = imp_trim(line);
		if (*line == '\0' || *line == '#')
			continue;
		(void)imp_option_line(line, &o, &key, &value, err,
		    sizeof(err));
		FUZZ_ASSERT(o.mailboxsize >= 0 && o.maxmailsize >= 0);
		FUZZ_ASSERT(o.enabled == 0 || o.enabled == 1);
	}
}

static void
users(char *text)
{
	char		*p = text, *line, *src, name[USER_NAME_MAX + 1];
	char		 hash[IMP_HASH_LEN + 1], again[USER_NAME_MAX + 1];
	const char	*why;
	size_t		 i;

	while ((line = imp_next_line(&p)) != NULL) {
		line = imp_trim(line);
		if (imp_user_line(line, &src, name, hash, &why) != IMPUSER_OK)
			continue;
		FUZZ_ASSERT(imp_component_ok(name));
		FUZZ_ASSERT(user_name_normalize(name, again, &why) == 0 &&
		    strcmp(name, again) == 0);
		FUZZ_ASSERT(strlen(hash) == IMP_HASH_LEN);
		for (i = 0; i < IMP_HASH_LEN; i++)
			FUZZ_ASSERT(isxdigit((unsigned char)hash[i]) &&
			    !isupper((unsigned char)hash[i]));
	}
}

static void
lists(char *text, int state)
{
	char	*p = text, *line, *uid, *name;

	while ((line = imp_next_line(&p)) != NULL) {
		if (state) {
			if (imp_state_line(line, &uid, &name) == -1)
				continue;
			FUZZ_ASSERT(imp_component_ok(name));
		} else if ((uid = imp_mail_uid(line)) == NULL)
			continue;
		FUZZ_ASSERT(imp_uid_ok(uid) && imp_component_ok(uid));
		FUZZ_ASSERT(strlen(uid) <= IMP_UID_MAX);
	}
}

static size_t
convert(const uint8_t *in, size_t n, size_t piece, char *out,
    struct imp_conv *cv, int *rv)
{
	size_t	off, len, olen, total = 0;

	memset(cv, 0, sizeof(*cv));
	cv->bol = 1;
	*rv = 0;
	for (off = 0; off < n && *rv == 0; off += len) {
		len = n - off < piece ? n - off : piece;
		*rv = imp_conv_feed(cv, (const char *)in + off, len,
		    out + total, &olen);
		FUZZ_ASSERT(olen <= len + 1);
		total += olen;
	}
	return total;
}

static void
message(const uint8_t *data, size_t size, size_t piece)
{
	struct imp_conv	 a, b;
	char		*one, *many;
	size_t		 n1, n2, i, lfs = 0;
	int		 r1, r2;

	if ((one = malloc(size + 1)) == NULL ||
	    (many = malloc(2 * size + 1)) == NULL)
		abort();
	n1 = convert(data, size, size ? size : 1, one, &a, &r1);
	n2 = convert(data, size, piece, many, &b, &r2);
	FUZZ_ASSERT(n1 <= size && r1 == r2);
	/* A message with something after its end is refused whole. */
	if (r1 == -1)
		goto out;
	FUZZ_ASSERT(n1 == n2 && memcmp(one, many, n1) == 0);
	FUZZ_ASSERT(a.size == b.size && a.lfs == b.lfs && a.ended == b.ended);
	FUZZ_ASSERT(a.size == (long long)n1);
	for (i = 0; i < n1; i++)
		lfs += one[i] == '\n';
	FUZZ_ASSERT(a.lfs == (long long)lfs);
out:
	free(one);
	free(many);
}

FUZZ_ENTRY(import)
{
	char	*text;

	if (size < 2)
		return 0;
	if (data[0] % 5 == 4) {
		message(data + 2, size - 2, data[1] % 16 + 1);
		return 0;
	}
	text = fuzz_cstr(data + 2, size - 2);
	switch (data[0] % 5) {
	case 0:
		options(text);
		break;
	case 1:
		users(text);
		break;
	default:
		lists(text, data[0] % 5 == 3);
		break;
	}
	free(text);
	return 0;
}
