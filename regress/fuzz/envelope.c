/*
 * Queue envelopes (common/envelope.c). One that parses formats to text
 * that parses again, and that text is a fixed point.
 */
#include <string.h>

#include "envelope.h"
#include "fuzz.h"

static struct envelope *
parse(const char *text)
{
	struct envelope	*e = calloc(1, sizeof(*e));
	char		 why[128];

	if (e == NULL)
		abort();
	if (envelope_parse(text, e, why, sizeof(why)) == -1) {
		FUZZ_ASSERT(strncmp(why, "line ", 5) == 0);
		envelope_free(e);
		return NULL;
	}
	return e;
}

FUZZ_ENTRY(envelope)
{
	struct envelope	*e, *f;
	char		*text, *once, *twice;
	size_t		 i;

	if (size > ENV_TEXT_MAX)
		return 0;
	text = fuzz_cstr(data, size);
	e = parse(text);
	free(text);
	if (e == NULL)
		return 0;
	FUZZ_ASSERT(strlen(e->id) == QUEUE_ID_LEN);
	FUZZ_ASSERT(e->nrcpts > 0 && e->nrcpts <= ENV_MAX_RCPTS);
	for (i = 0; i < e->nrcpts; i++)
		FUZZ_ASSERT(e->rcpts[i].status >= RS_PENDING &&
		    e->rcpts[i].status <= RS_BOUNCED);
	if ((once = envelope_format(e)) == NULL) {
		envelope_free(e);
		return 0;
	}
	f = parse(once);
	FUZZ_ASSERT(f != NULL);
	FUZZ_ASSERT(f->nrcpts == e->nrcpts);
	FUZZ_ASSERT((twice = envelope_format(f)) != NULL);
	FUZZ_ASSERT(strcmp(once, twice) == 0);
	free(once);
	free(twice);
	envelope_free(e);
	envelope_free(f);
	return 0;
}
