/*
 * Mailbox options (common/mboxopt.c): a file's text over the defaults;
 * what loads is in range and, written as pymailadm writes it, loads back
 * the same. Also mboxopts_set() on "key=value" as pymailadm chopt takes it.
 */
#include <string.h>

#include "userdb.h"
#include "fuzz.h"

#define SIZE_MAX_OPT	(1LL << 40)

FUZZ_ENTRY(mboxopt)
{
	struct mboxopts	 o, again;
	char		 err[512], buf[256], *text, *eq;

	if (size > 64 * 1024)
		return 0;
	text = fuzz_cstr(data, size);
	/* The directive reads other files: the readers refuse it, and a
	 * fuzzer must not wander the disk. */
	if (strstr(text, "@include") != NULL) {
		free(text);
		return 0;
	}
	mboxopts_defaults(&o);
	if (mboxopts_parse(text, "options", &o, err, sizeof(err)) == 0) {
		FUZZ_ASSERT(o.mailboxsize >= 0 && o.mailboxsize <= SIZE_MAX_OPT);
		FUZZ_ASSERT(o.maxmailsize >= 0 && o.maxmailsize <= SIZE_MAX_OPT);
		FUZZ_ASSERT(o.enabled == 0 || o.enabled == 1);
		FUZZ_ASSERT(mboxopts_format(&o, buf, sizeof(buf)) <
		    (int)sizeof(buf));
		mboxopts_defaults(&again);
		again.enabled = !o.enabled;
		FUZZ_ASSERT(mboxopts_parse(buf, "again", &again, err,
		    sizeof(err)) == 0);
		FUZZ_ASSERT(o.mailboxsize == again.mailboxsize);
		FUZZ_ASSERT(o.maxmailsize == again.maxmailsize);
		FUZZ_ASSERT(o.enabled == again.enabled);
	} else
		FUZZ_ASSERT(strncmp(err, "options:", 8) == 0);
	if ((eq = strchr(text, '=')) != NULL) {
		*eq = '\0';
		mboxopts_defaults(&o);
		if (mboxopts_set(&o, text, eq + 1, err, sizeof(err)) == 0)
			FUZZ_ASSERT(o.mailboxsize <= SIZE_MAX_OPT &&
			    o.maxmailsize <= SIZE_MAX_OPT);
	}
	free(text);
	return 0;
}
