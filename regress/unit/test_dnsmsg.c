/*
 * IMSG_DNS_QUERY and IMSG_DNS_REPLY (common/dnsmsg.c), the records of a
 * DNS answer as text (dnsanswer_records, common/mxlookup.c) and the
 * names asked of blocklists (dns_reverse_name). What one side builds the
 * other reads back field for field; what a compromised smtpd or mxcache
 * could send instead is refused: a type not served, a name that is no
 * DNS name or not in its normal form, records with a status that has
 * none, too many or too large records, an address that is not one, a
 * payload short or long by a byte. From an answer only the records of
 * the name asked (after CNAMEs) count; a TXT's strings are joined; more
 * records than fit is a permanent failure, never a cut list.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsmsg.h"
#include "imsg.h"
#include "mxlookup.h"
#include "unit.h"

static struct msgbuild		mb;
static struct dns_answer	a, b;

static void
test_query(void)
{
	struct dns_query	q, r;
	const char		*bad[] = { "Upper.example", "a..b", "x.", "",
	    "sp ace.example", "nul\001.example" };
	size_t			 i;

	memset(&q, 0, sizeof(q));
	q.req = 7;
	q.tag = 0x103;
	q.qtype = DNS_T_TXT;
	strlcpy(q.qname, "2.0.0.127.bl.example", sizeof(q.qname));
	dns_build_query(&mb, &q);
	CHECK("query round trip", dns_read_query(mb.buf, mb.len, &r) == 0 &&
	    r.req == 7 && r.tag == 0x103 && r.qtype == DNS_T_TXT &&
	    strcmp(r.qname, q.qname) == 0);
	CHECK("query one byte short",
	    dns_read_query(mb.buf, mb.len - 1, &r) == -1);
	q.qtype = 52;	/* TLSA: outbound's own message */
	dns_build_query(&mb, &q);
	CHECK("query type not served", dns_read_query(mb.buf, mb.len, &r)
	    == -1);
	q.qtype = DNS_T_A;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strlcpy(q.qname, bad[i], sizeof(q.qname));
		dns_build_query(&mb, &q);
		CHECK(bad[i], dns_read_query(mb.buf, mb.len, &r) == -1);
	}
}

static int
reads(void)
{
	return dns_read_answer(mb.buf, mb.len, &b);
}

static void
test_answer_msg(void)
{
	char	big[DNS_RECORD_MAX + 1];
	int	i;

	memset(&a, 0, sizeof(a));
	a.req = 3;
	a.tag = 1;
	a.qtype = DNS_T_A;
	a.status = DNS_OK;
	a.ttl = 900;
	CHECK("add", dns_answer_add(&a, "127.0.0.2", 9) == 0 &&
	    dns_answer_add(&a, "127.0.0.10", 10) == 0);
	dns_build_answer(&mb, &a);
	CHECK("answer round trip", reads() == 0 && b.n == 2 &&
	    b.ttl == 900 && strcmp(b.data + b.off[1], "127.0.0.10") == 0 &&
	    b.len[0] == 9);
	mb.len++;
	CHECK("answer one byte long", reads() == -1);
	a.status = DNS_NXDOMAIN;
	dns_build_answer(&mb, &a);
	CHECK("records with NXDOMAIN", reads() == -1);
	a.status = DNS_OK;
	a.n = 0;
	a.used = 0;
	dns_build_answer(&mb, &a);
	CHECK("OK without records", reads() == -1);
	dns_answer_add(&a, "not-an-address", 14);
	dns_build_answer(&mb, &a);
	CHECK("A record not an address", reads() == -1);
	a.qtype = DNS_T_TXT;
	dns_build_answer(&mb, &a);
	CHECK("the same as TXT", reads() == 0);
	memset(big, 'x', sizeof(big));
	CHECK("record over the bound",
	    dns_answer_add(&a, big, DNS_RECORD_MAX + 1) == -1);
	for (i = 0; i < DNS_RECORDS_MAX + 4; i++)
		if (dns_answer_add(&a, big, DNS_RECORD_MAX) == -1)
			break;
	CHECK("data bounded", a.used <= DNS_DATA_MAX && i < DNS_RECORDS_MAX);
	a.status = 9;
	dns_build_answer(&mb, &a);
	CHECK("status out of range", reads() == -1);
}

static void
rev(const char *addr, const char *want)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	char			 out[MX_NAME_MAX + 1];

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	CHECK(addr, dns_reverse_name((struct sockaddr *)&ss, "bl.example",
	    out, sizeof(out)) == 0 && strcmp(out, want) == 0);
	if (strcmp(out, want) != 0)
		printf("  got %s\n", out);
}

static void
test_reverse(void)
{
	struct sockaddr_in	sin;
	char			out[MX_NAME_MAX + 1], zone[256];

	rev("192.0.2.99", "99.2.0.192.bl.example");
	rev("::ffff:192.0.2.99", "99.2.0.192.bl.example");
	rev("2001:db8::1:abcd",
	    "d.c.b.a.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
	    ".bl.example");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	memset(zone, 'a', 250);
	zone[250] = '\0';
	CHECK("name over 253", dns_reverse_name((struct sockaddr *)&sin,
	    zone, out, sizeof(out)) == -1);
	sin.sin_family = AF_UNIX;
	CHECK("not an address", dns_reverse_name((struct sockaddr *)&sin,
	    "bl.example", out, sizeof(out)) == -1);
}

static ldns_pkt *
packet(const char *qname, ldns_rr_type type, const char **rrs, size_t n)
{
	ldns_pkt	*p;
	ldns_rr		*rr;
	size_t		 i;

	p = ldns_pkt_query_new(ldns_dname_new_frm_str(qname), type,
	    LDNS_RR_CLASS_IN, 0);
	for (i = 0; i < n; i++) {
		if (ldns_rr_new_frm_str(&rr, rrs[i], 3600, NULL, NULL) !=
		    LDNS_STATUS_OK) {
			printf("bad test record %s\n", rrs[i]);
			unit_failed = 1;
			continue;
		}
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	return p;
}

static void
test_records(void)
{
	const char	*txt[] = {
		"q.example. 600 IN CNAME r.example.",
		"r.example. 300 IN TXT \"v=spf1 \" \"-all\"",
		"other.example. 60 IN TXT \"not ours\"",
		"r.example. 300 IN A 192.0.2.1",
	};
	const char	*loop[] = {
		"q.example. IN CNAME r.example.",
		"r.example. IN CNAME q.example.",
	};
	const char	*many[DNS_RECORDS_MAX + 1];
	char		 text[DNS_RECORDS_MAX + 1][64];
	ldns_pkt	*p;
	uint32_t	 ttl = UINT32_MAX;
	size_t		 i;

	memset(&a, 0, sizeof(a));
	p = packet("q.example.", LDNS_RR_TYPE_TXT, txt, 4);
	CHECK("TXT after a CNAME, joined", dnsanswer_records(p, DNS_T_TXT,
	    &a, &ttl) == DNS_OK && a.n == 1 &&
	    strcmp(a.data, "v=spf1 -all") == 0 && ttl == 300);
	ldns_pkt_free(p);
	p = packet("q.example.", LDNS_RR_TYPE_A, loop, 2);
	CHECK("CNAME loop: no data", dnsanswer_records(p, DNS_T_A, &a, &ttl)
	    == DNS_NODATA && a.n == 0);
	ldns_pkt_free(p);
	for (i = 0; i < DNS_RECORDS_MAX + 1; i++) {
		snprintf(text[i], sizeof(text[i]), "q.example. IN A 10.0.0.%zu",
		    i);
		many[i] = text[i];
	}
	p = packet("q.example.", LDNS_RR_TYPE_A, many, DNS_RECORDS_MAX);
	CHECK("as many as fit", dnsanswer_records(p, DNS_T_A, &a, &ttl) ==
	    DNS_OK && a.n == DNS_RECORDS_MAX);
	ldns_pkt_free(p);
	p = packet("q.example.", LDNS_RR_TYPE_A, many, DNS_RECORDS_MAX + 1);
	CHECK("one more: permfail, nothing kept", dnsanswer_records(p,
	    DNS_T_A, &a, &ttl) == DNS_PERMFAIL && a.n == 0 && a.used == 0);
	ldns_pkt_free(p);
}

int
main(void)
{
	test_query();
	test_answer_msg();
	test_reverse();
	test_records();
	UNIT_EXIT();
}
