/*
 * DMARC records and From: domains (common/dmarc.c): any record parses
 * to values in range or is refused; discovery asks at most two names and
 * every verdict is one of the results, with a policy the record gave.
 */
#include <string.h>

#include "dmarc.h"
#include "fuzz.h"

FUZZ_ENTRY(dmarc)
{
	struct dmarc_record	 r;
	struct dmarc_lookup	 l;
	struct dmarc_auth	 a;
	struct dmarc_verdict	 v;
	const char		*txt[1];
	size_t			 len[1], asked = 0;
	char			*s, org[256];

	if (dmarc_psl_load() == -1)
		abort();
	if (dmarc_parse((const char *)data, size, &r) == 0) {
		FUZZ_ASSERT(r.p <= DMARC_P_REJECT && r.sp <= DMARC_P_REJECT);
		FUZZ_ASSERT(r.pct >= 0 && r.pct <= 100);
	}
	s = fuzz_cstr(data, size);
	if (dmarc_org_domain(s, org, sizeof(org)) == 0)
		FUZZ_ASSERT(strlen(org) > 0 && strlen(org) <= 253);
	/* The input as the From: domain, then as both answers. */
	txt[0] = (const char *)data;
	len[0] = size;
	if (dmarc_begin(&l, s) == 0) {
		while (dmarc_question(&l) != NULL) {
			FUZZ_ASSERT(++asked <= 2);
			dmarc_answer(&l, asked == 1 ? DMARC_DNS_NXDOMAIN :
			    DMARC_DNS_OK, txt, len, 1);
		}
		memset(&a, 0, sizeof(a));
		a.spf_domain = s;
		a.spf_pass = size & 1;
		a.dkim_domain[0] = s;
		a.ndkim = (size & 2) ? 1 : 0;
		dmarc_evaluate(&l, &a, (unsigned int)size, &v);
		FUZZ_ASSERT(v.result <= DMARC_PERMERROR);
		if (v.result == DMARC_PASS || v.result == DMARC_FAIL)
			FUZZ_ASSERT(l.found &&
			    (v.policy == l.rec.p || v.policy == l.rec.sp));
		FUZZ_ASSERT(v.disposition <= v.policy);
	}
	free(s);
	return 0;
}
