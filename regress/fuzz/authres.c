/*
 * Authentication-Results (common/authres.c): reading an arriving field
 * never runs past it; whatever the network gave as values, the field we
 * write is one header field: every line break in it is a fold, and it
 * ends with the only CRLF not followed by white space.
 */
#include <string.h>

#include "authres.h"
#include "fuzz.h"

static void
one_field(const char *f, size_t len)
{
	size_t	i;

	FUZZ_ASSERT(len >= 2 && f[len - 2] == '\r' && f[len - 1] == '\n');
	FUZZ_ASSERT(strlen(f) == len && len < AUTHRES_FIELD_MAX);
	for (i = 0; i + 2 < len; i++) {
		if (f[i] == '\n')
			FUZZ_ASSERT(i > 0 && f[i - 1] == '\r' &&
			    f[i + 1] == '\t');
		if (f[i] == '\r')
			FUZZ_ASSERT(f[i + 1] == '\n');
	}
}

FUZZ_ENTRY(authres)
{
	struct authres	 ar;
	const char	*f;
	char		*s;
	size_t		 len, half = size / 2;

	(void)authres_is_ours((const char *)data, size, "mx.example.org");
	(void)authres_is_ours((const char *)data, size, "");
	s = fuzz_cstr(data, size);
	authres_begin(&ar, "mx.example.org");
	authres_method(&ar, "dkim", "pass", s + half);
	authres_prop(&ar, "header.d", s);
	authres_prop(&ar, "header.s", s + half);
	if ((f = authres_end(&ar, &len)) != NULL)
		one_field(f, len);
	free(s);
	return 0;
}
