/*
 * The reader of mxcache's TLSA replies (common/tlsamsg.c): for any
 * payload it takes, every number is in its range, the reason is
 * printable, no record is empty or larger than its buffer, and the
 * fields re-encode to exactly the payload (nothing skipped, nothing
 * read past).
 */
#include <string.h>

#include "imsg.h"
#include "tlsamsg.h"
#include "fuzz.h"

FUZZ_ENTRY(tlsamsg)
{
	static struct msgbuild		mb;
	static struct tlsa_reply	r;
	size_t				i;

	/* The input itself, not a copy: reading past it is caught. */
	if (size > IMSG_DATA_MAX || tlsa_read_reply(data, size, &r) == -1)
		return 0;
	FUZZ_ASSERT(r.status <= TLSA_TEMPFAIL && r.authentic <= 1);
	FUZZ_ASSERT(r.n <= TLSA_RECORDS_MAX);
	FUZZ_ASSERT(r.status == TLSA_FOUND || r.n == 0);
	FUZZ_ASSERT(memchr(r.reason, '\0', sizeof(r.reason)) != NULL);
	for (i = 0; r.reason[i]; i++)
		FUZZ_ASSERT((unsigned char)r.reason[i] >= 0x20 &&
		    r.reason[i] != 0x7f);
	for (i = 0; i < r.n; i++)
		FUZZ_ASSERT(r.rr[i].len >= 1 && r.rr[i].len <= TLSA_DATA_MAX);
	tlsa_build_reply(&mb, &r);
	FUZZ_ASSERT(!mb.overflow && mb.len == size);
	FUZZ_ASSERT(memcmp(mb.buf, data, size) == 0);
	return 0;
}
