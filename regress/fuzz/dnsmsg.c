/*
 * The readers of IMSG_DNS_QUERY (mxcache reads what smtpd asks) and
 * IMSG_DNS_REPLY (smtpd reads mxcache's answer), common/dnsmsg.c: the
 * first byte picks the reader. For any payload taken, every field is in
 * range (a served type, a normalized name, a status with records only
 * when OK, each record valid for its type and within the bounds), and
 * the fields re-encode to exactly the payload.
 */
#include <string.h>

#include "dnsmsg.h"
#include "imsg.h"
#include "fuzz.h"

static void
check_query(const uint8_t *data, size_t size)
{
	static struct msgbuild	mb;
	struct dns_query	q;
	char			norm[MX_NAME_MAX + 1];

	if (dns_read_query(data, size, &q) == -1)
		return;
	FUZZ_ASSERT(dns_qtype_ok(q.qtype));
	FUZZ_ASSERT(mx_domain_normalize(q.qname, norm) == 0 &&
	    strcmp(norm, q.qname) == 0);
	dns_build_query(&mb, &q);
	FUZZ_ASSERT(!mb.overflow && mb.len == size &&
	    memcmp(mb.buf, data, size) == 0);
}

static void
check_answer(const uint8_t *data, size_t size)
{
	static struct msgbuild		mb;
	static struct dns_answer	a;
	uint32_t			i;

	if (dns_read_answer(data, size, &a) == -1)
		return;
	FUZZ_ASSERT(dns_qtype_ok(a.qtype) && a.status <= DNS_PERMFAIL);
	FUZZ_ASSERT(a.n <= DNS_RECORDS_MAX && (a.status == DNS_OK) ==
	    (a.n > 0) && a.used <= DNS_DATA_MAX);
	for (i = 0; i < a.n; i++) {
		FUZZ_ASSERT(a.len[i] <= DNS_RECORD_MAX &&
		    a.off[i] + a.len[i] < a.used);
		FUZZ_ASSERT(dns_record_ok(a.qtype, a.data + a.off[i],
		    a.len[i]));
	}
	dns_build_answer(&mb, &a);
	FUZZ_ASSERT(!mb.overflow && mb.len == size &&
	    memcmp(mb.buf, data, size) == 0);
}

FUZZ_ENTRY(dnsmsg)
{
	if (size < 1 || size - 1 > IMSG_DATA_MAX)
		return 0;
	/* The input itself, not a copy: reading past it is caught. */
	if (data[0] & 1)
		check_answer(data + 1, size - 1);
	else
		check_query(data + 1, size - 1);
	return 0;
}
