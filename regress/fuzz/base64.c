/*
 * Base64 (common/base64.c): what decodes encodes back to text that
 * decodes to the same bytes; any bytes encode and decode unchanged.
 */
#include <string.h>

#include "base64.h"
#include "fuzz.h"

#define BUF	8192

FUZZ_ENTRY(base64)
{
	static unsigned char	 bin[BUF], back[BUF];
	static char		 text[2 * BUF];
	char			*s;
	int			 n, m;

	s = fuzz_cstr(data, size);
	n = base64_decode(s, bin, sizeof(bin));
	FUZZ_ASSERT(n >= -1 && n <= (int)sizeof(bin));
	if (n >= 0) {
		FUZZ_ASSERT((size_t)n <= strlen(s) * 3 / 4);
		FUZZ_ASSERT(base64_encode(bin, n, text, sizeof(text)) >= 0);
		m = base64_decode(text, back, sizeof(back));
		FUZZ_ASSERT(m == n && memcmp(bin, back, n) == 0);
	}
	free(s);

	/* The raw bytes as the thing to encode. */
	if (size <= BUF && base64_encode(data, size, text, sizeof(text)) >= 0) {
		FUZZ_ASSERT(strlen(text) == (size + 2) / 3 * 4);
		m = base64_decode(text, back, sizeof(back));
		FUZZ_ASSERT(m == (int)size && memcmp(data, back, size) == 0);
	}
	/* A destination one byte short is refused, never overrun. */
	if (size > 0 && size <= BUF)
		FUZZ_ASSERT(base64_encode(data, size, text,
		    (size + 2) / 3 * 4) == -1);
	return 0;
}
