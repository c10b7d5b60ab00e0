/*
 * The Maildir++ maildirsize parser (common/maildirsize.c): what Courier,
 * Dovecot and we write is read to the right sums; anything cut short,
 * garbled, negative or huge is refused (the caller recounts).
 */
#include <stdlib.h>
#include <string.h>

#include "maildirsize.h"
#include "unit.h"

static struct mdsize	md;
static const char	*why;

static int
ok(const char *s)
{
	return mdsize_parse(s, strlen(s), &md, &why) == 0;
}

static int
bad(const char *s, const char *want)
{
	why = NULL;
	return mdsize_parse(s, strlen(s), &md, &why) == -1 && why != NULL &&
	    strcmp(why, want) == 0;
}

int
main(void)
{
	char	buf[64], *big;
	size_t	i;

	CHECK("limit only", ok("1000S\n") && md.limit_bytes == 1000 &&
	    md.limit_count == -1 && md.bytes == 0 && md.lines == 0);
	CHECK("both limits", ok("1000S,20C\n5 1\n") && md.limit_bytes == 1000
	    && md.limit_count == 20 && md.bytes == 5 && md.count == 1);
	CHECK("count first", ok("20C,1000S\n") && md.limit_bytes == 1000);
	CHECK("no limit", ok("\n10 1\n") && md.limit_bytes == -1 &&
	    md.bytes == 10);
	CHECK("sums", ok("0S\n100 2\n50 1\n-30 -1\n") && md.bytes == 120 &&
	    md.count == 2 && md.lines == 3);
	CHECK("padded lines", ok("0S\n   100      2\n\t5\t1 \n") &&
	    md.bytes == 105 && md.count == 3);
	CHECK("to zero", ok("0S\n10 1\n-10 -1\n") && md.bytes == 0);

	CHECK("empty", bad("", "empty"));
	CHECK("cut short", bad("0S\n100 1\n5", "last line cut short"));
	CHECK("cut limit", bad("100", "last line cut short"));
	CHECK("garbled limit", bad("100X\n", "bad limit line"));
	CHECK("negative limit", bad("-1S\n", "bad limit line"));
	CHECK("limit twice", bad("1S,2S\n", "bad limit line"));
	CHECK("limit trailing comma", bad("1S,\n", "bad limit line"));
	CHECK("one figure", bad("0S\n100\n", "bad usage line"));
	CHECK("three figures", bad("0S\n1 2 3\n", "bad usage line"));
	CHECK("letters", bad("0S\n1a 2\n", "bad usage line"));
	CHECK("empty usage line", bad("0S\n1 1\n\n", "bad usage line"));
	CHECK("lone minus", bad("0S\n- 1\n", "bad usage line"));
	CHECK("NUL", mdsize_parse("0S\n1\0 1\n", 7, &md, &why) == -1);
	CHECK("negative total", bad("0S\n10 1\n-20 -1\n", "negative total"));
	CHECK("negative count", bad("0S\n10 -1\n", "negative total"));
	CHECK("19 digits", bad("0S\n1000000000000000000 1\n",
	    "bad usage line"));
	CHECK("figure too big", bad("0S\n2000000000000000 1\n",
	    "bad usage line"));
	CHECK("total too big", bad("0S\n1125899906842624 1\n"
	    "1125899906842624 1\n", "total too large"));

	big = malloc(MDSIZE_READ_MAX + 16);
	strcpy(big, "0S\n");
	for (i = 3; i + 4 <= MDSIZE_READ_MAX + 4; i += 4)
		memcpy(big + i, "1 1\n", 4);
	CHECK("too long", mdsize_parse(big, i, &md, &why) == -1 &&
	    strcmp(why, "too long") == 0);
	free(big);

	CHECK("line", mdsize_line(buf, sizeof(buf), 1234, 1) == 7 &&
	    strcmp(buf, "1234 1\n") == 0);
	CHECK("deletion line", mdsize_line(buf, sizeof(buf), -1234, -1) > 0 &&
	    strcmp(buf, "-1234 -1\n") == 0);
	CHECK("line too long", mdsize_line(buf, 5, 1234, 1) == -1);
	CHECK("limit line", mdsize_limit_line(buf, sizeof(buf), 10000000) ==
	    10 && strcmp(buf, "10000000S\n") == 0);
	CHECK("written reads back", mdsize_limit_line(buf, sizeof(buf), 5) > 0
	    && mdsize_line(buf + strlen(buf), sizeof(buf) - strlen(buf), 7, 1)
	    > 0 && ok(buf) && md.limit_bytes == 5 && md.bytes == 7);
	UNIT_EXIT();
}
