/*
 * The MX cache file (common/mxfile.c). A file that parses prints (as
 * mxcache writes it) to text that parses to the same entries.
 */
#include <stdio.h>
#include <string.h>

#include "mxfile.h"
#include "fuzz.h"

static void
same_entry(const struct mxentry *a, const struct mxentry *b)
{
	size_t	i;

	FUZZ_ASSERT(strcmp(a->domain, b->domain) == 0);
	FUZZ_ASSERT(a->expires == b->expires);
	FUZZ_ASSERT(a->status == b->status);
	FUZZ_ASSERT(a->n == b->n);
	for (i = 0; i < a->n; i++) {
		FUZZ_ASSERT(a->rr[i].pref == b->rr[i].pref);
		FUZZ_ASSERT(strcmp(a->rr[i].host, b->rr[i].host) == 0);
		FUZZ_ASSERT(strcmp(a->rr[i].addr, b->rr[i].addr) == 0);
	}
}

FUZZ_ENTRY(mxfile)
{
	struct mxset	 set, again;
	char		 err[256], norm[MX_NAME_MAX + 1], *text, *out = NULL;
	size_t		 i, outlen = 0;
	FILE		*fp;

	text = fuzz_cstr(data, size);
	(void)mx_domain_normalize(text, norm);
	if (mxfile_parse(text, size, &set, err, sizeof(err)) == -1) {
		FUZZ_ASSERT(set.n == 0 && set.v == NULL);
		FUZZ_ASSERT(err[0] != '\0');
		free(text);
		return 0;
	}
	free(text);
	if ((fp = open_memstream(&out, &outlen)) == NULL)
		abort();
	mxfile_print_header(fp);
	for (i = 0; i < set.n; i++) {
		FUZZ_ASSERT(set.v[i].n <= MX_MAX_HOSTS);
		FUZZ_ASSERT(mx_domain_normalize(set.v[i].domain, norm) == 0 &&
		    strcmp(norm, set.v[i].domain) == 0);
		FUZZ_ASSERT(mxset_find(&set, set.v[i].domain) != NULL);
		mxfile_print(fp, &set.v[i]);
	}
	fclose(fp);
	FUZZ_ASSERT(mxfile_parse(out, outlen, &again, err, sizeof(err)) == 0);
	FUZZ_ASSERT(again.n == set.n);
	for (i = 0; i < set.n; i++)
		same_entry(&set.v[i], &again.v[i]);
	free(out);
	mxset_free(&set);
	mxset_free(&again);
	return 0;
}
