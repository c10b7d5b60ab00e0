/*
 * DKIM-Signature and key record parsing (common/dkimsig.c): what parses
 * is within its bounds, and emptying b= gives text no longer than the
 * value, which parses to the same tags but an empty b= (refused, as
 * b= is required).
 */
#include <string.h>

#include "dkimsig.h"
#include "fuzz.h"

FUZZ_ENTRY(dkimsig)
{
	static struct dkimsig	s;
	static struct dkimkey	k;
	static char		out[DKIMSIG_VALUE_MAX + 16], again[sizeof(out)];
	char			why[128];
	size_t			n, m;

	if (dkimsig_parse((const char *)data, size, 0, &s, why,
	    sizeof(why)) == 0) {
		FUZZ_ASSERT(s.blen > 0 && s.blen <= DKIMSIG_B_MAX);
		FUZZ_ASSERT(s.bhlen == 32 && s.nh > 0 &&
		    s.nh <= DKIMSIG_H_MAX);
		FUZZ_ASSERT(strlen(s.d) > 0 && strlen(s.s) > 0);
		n = dkimsig_strip_b((const char *)data, size, out,
		    sizeof(out));
		FUZZ_ASSERT(n != (size_t)-1 && n < size);
		m = dkimsig_strip_b(out, n, again, sizeof(again));
		FUZZ_ASSERT(m == n && memcmp(out, again, n) == 0);
		FUZZ_ASSERT(dkimsig_parse(out, n, 0, &s, why,
		    sizeof(why)) == -1);
	} else
		FUZZ_ASSERT(why[0] != '\0');
	if (dkimkey_parse((const char *)data, size, &k, why,
	    sizeof(why)) == 0)
		FUZZ_ASSERT(k.plen <= DKIMSIG_KEY_MAX);
	return 0;
}
