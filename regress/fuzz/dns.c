/*
 * DNS answers (common/mxlookup.c): wire bytes as the resolver's reply,
 * parsed by ldns, then read as mxcache reads the answer to its question
 * (the packet's own question stands for it): MX hosts, or A / AAAA
 * addresses. The hosts come best first, each once, at most
 * MX_MAX_HOSTS, as names mxservers can hold; the addresses are numeric;
 * the records of a helper's question are valid and bounded.
 */
#include <arpa/inet.h>

#include <string.h>

#include "mxlookup.h"
#include "fuzz.h"

static void
check_hosts(const ldns_pkt *p)
{
	struct mxname	 best[MX_MAX_HOSTS];
	char		 norm[MX_NAME_MAX + 1];
	uint32_t	 ttl = UINT32_MAX;
	size_t		 n, i, j, nmx;
	int		 nullmx = 0;

	nmx = mxanswer_hosts(p, best, &n, &ttl, &nullmx);
	FUZZ_ASSERT(n <= MX_MAX_HOSTS && n <= nmx);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(mx_domain_normalize(best[i].name, norm) == 0);
		FUZZ_ASSERT(strcmp(norm, best[i].name) == 0);
		if (i > 0)
			FUZZ_ASSERT(best[i - 1].pref <= best[i].pref);
		for (j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(best[i].name, best[j].name) != 0);
	}
}

static void
check_addresses(const ldns_pkt *p, int v6)
{
	char		addr[MX_MAX_HOSTS][INET6_ADDRSTRLEN];
	unsigned char	bin[16];
	uint32_t	ttl = UINT32_MAX;
	size_t		n, i;

	n = mxanswer_addresses(p, v6, addr, MX_MAX_HOSTS, &ttl);
	FUZZ_ASSERT(n <= MX_MAX_HOSTS);
	for (i = 0; i < n; i++)
		FUZZ_ASSERT(inet_pton(v6 ? AF_INET6 : AF_INET, addr[i],
		    bin) == 1);
	/* Room for fewer: never more written than asked. */
	if (n > 1)
		FUZZ_ASSERT(mxanswer_addresses(p, v6, addr, 1, &ttl) == 1);
}

/* The helpers' reader (dnsanswer_records): whatever the answer holds,
 * records only with DNS_OK, each valid for its type, all within the
 * bounds of dnsmsg.h, none kept on a permanent failure. */
static void
check_records(const ldns_pkt *p, uint32_t qtype)
{
	static struct dns_answer	a;
	uint32_t			ttl = UINT32_MAX, i;
	int				st;

	st = dnsanswer_records(p, qtype, &a, &ttl);
	FUZZ_ASSERT(st == DNS_OK || st == DNS_NODATA || st == DNS_PERMFAIL);
	FUZZ_ASSERT((st == DNS_OK) == (a.n > 0));
	FUZZ_ASSERT(a.n <= DNS_RECORDS_MAX && a.used <= DNS_DATA_MAX);
	for (i = 0; i < a.n; i++)
		FUZZ_ASSERT(dns_record_ok(qtype, a.data + a.off[i], a.len[i]));
}

FUZZ_ENTRY(dns)
{
	ldns_pkt	*p = NULL;
	ldns_rr_list	*qs;
	ldns_rr		*q;
	ldns_rr_type	 type;

	if (ldns_wire2pkt(&p, data, size) != LDNS_STATUS_OK) {
		ldns_pkt_free(p);
		return 0;
	}
	qs = ldns_pkt_question(p);
	if (qs == NULL || ldns_rr_list_rr_count(qs) != 1) {
		FUZZ_ASSERT(!mxanswer_matches(p, ldns_pkt_id(p),
		    LDNS_RR_TYPE_MX, NULL));
		ldns_pkt_free(p);
		return 0;
	}
	q = ldns_rr_list_rr(qs, 0);
	type = ldns_rr_get_type(q);
	if (!mxanswer_matches(p, ldns_pkt_id(p), type, ldns_rr_owner(q))) {
		ldns_pkt_free(p);
		return 0;
	}
	FUZZ_ASSERT(!mxanswer_matches(p, ldns_pkt_id(p) ^ 1, type,
	    ldns_rr_owner(q)));
	/* Whatever was asked, each reader copes with the answer. */
	check_hosts(p);
	check_addresses(p, 0);
	check_addresses(p, 1);
	check_records(p, DNS_T_A);
	check_records(p, DNS_T_AAAA);
	check_records(p, DNS_T_TXT);
	check_records(p, DNS_T_PTR);
	ldns_pkt_free(p);
	return 0;
}
