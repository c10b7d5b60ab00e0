/*
 * The Maildir++ maildirsize parser (common/maildirsize.c): any bytes a
 * host, another server or a crash left in the file. What parses has
 * sums in range that the formatter writes back to the same figures;
 * what does not says why.
 */
#include <stdlib.h>
#include <string.h>

#include "maildirsize.h"
#include "fuzz.h"

FUZZ_ENTRY(maildirsize)
{
	struct mdsize	 md, again;
	const char	*why = NULL;
	char		 buf[2 * MDSIZE_LINE_MAX];
	int		 n, m;

	if (mdsize_parse((const char *)data, size, &md, &why) == -1) {
		FUZZ_ASSERT(why != NULL);
		return 0;
	}
	FUZZ_ASSERT(md.bytes >= 0 && md.bytes <= MDSIZE_FIGURE_MAX);
	FUZZ_ASSERT(md.count >= 0 && md.count <= MDSIZE_FIGURE_MAX);
	FUZZ_ASSERT(md.limit_bytes >= -1 && md.limit_count >= -1);
	FUZZ_ASSERT(md.lines <= size / 4);
	/* A recount writes the limit and one line: it reads back. */
	n = mdsize_limit_line(buf, sizeof(buf), md.limit_bytes);
	FUZZ_ASSERT(n > 0);
	m = mdsize_line(buf + n, sizeof(buf) - n, md.bytes, md.count);
	FUZZ_ASSERT(m > 0);
	FUZZ_ASSERT(mdsize_parse(buf, n + m, &again, &why) == 0);
	FUZZ_ASSERT(again.bytes == md.bytes && again.count == md.count);
	FUZZ_ASSERT(again.limit_bytes == (md.limit_bytes > 0 ?
	    md.limit_bytes : 0));
	return 0;
}
