/*
 * IMSG_TLSA_REPLY (common/tlsamsg.c) and the TLSA records of a DNS
 * answer (tlsanswer_records, common/mxlookup.c). What mxcache builds,
 * outbound reads back field for field; what a compromised mxcache could
 * send instead is refused: a status or AD flag out of range, records
 * with a status that has none, more records than kept, an empty or
 * oversized record, a usage, selector or matching type above 255, a
 * control character in the reason, a payload short or long by a byte.
 * From a DNS answer only the TLSA records of the name asked count, at
 * most TLSA_RECORDS_MAX of them, oversized ones left out.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ldns/ldns.h>

#include "imsg.h"
#include "mxlookup.h"
#include "tlsamsg.h"
#include "unit.h"

static struct msgbuild	mb;
static struct tlsa_reply r;

static void
sample(struct tlsa_reply *s, uint32_t n)
{
	uint32_t	i;

	memset(s, 0, sizeof(*s));
	s->req = 7;
	s->status = TLSA_FOUND;
	s->authentic = 1;
	strlcpy(s->reason, "", sizeof(s->reason));
	s->n = n;
	for (i = 0; i < n; i++) {
		s->rr[i].usage = 3;
		s->rr[i].selector = 1;
		s->rr[i].mtype = 1;
		s->rr[i].len = 32;
		memset(s->rr[i].data, 0xa0 + i, 32);
	}
}

/* A payload by hand: the header, then n records of len octets. */
static void
raw(uint32_t status, uint32_t ad, const char *reason, uint32_t n,
    uint32_t usage, uint32_t len)
{
	static uint8_t	data[TLSA_DATA_MAX + 8];
	uint32_t	i;

	mb_init(&mb);
	mb_u32(&mb, 1);
	mb_u32(&mb, status);
	mb_u32(&mb, ad);
	mb_str(&mb, reason);
	mb_u32(&mb, n);
	for (i = 0; i < n; i++) {
		mb_u32(&mb, usage);
		mb_u32(&mb, 1);
		mb_u32(&mb, 1);
		mb_u32(&mb, len);
		mb_data(&mb, data, len > sizeof(data) ? sizeof(data) : len);
	}
}

static int
reads(void)
{
	return tlsa_read_reply(mb.buf, mb.len, &r);
}

static void
test_roundtrip(void)
{
	struct tlsa_reply	s;

	sample(&s, TLSA_RECORDS_MAX);
	tlsa_build_reply(&mb, &s);
	CHECK("full reply reads", reads() == 0);
	CHECK("fields back", r.req == 7 && r.status == TLSA_FOUND &&
	    r.authentic == 1 && r.n == TLSA_RECORDS_MAX);
	CHECK("records back", memcmp(r.rr, s.rr, sizeof(s.rr)) == 0);
	CHECK("one byte short", tlsa_read_reply(mb.buf, mb.len - 1, &r) ==
	    -1);
	mb_u32(&mb, 0);
	CHECK("trailing bytes", reads() == -1);

	memset(&s, 0, sizeof(s));
	s.status = TLSA_TEMPFAIL;
	strlcpy(s.reason, "resolver answered SERVFAIL", sizeof(s.reason));
	tlsa_build_reply(&mb, &s);
	CHECK("tempfail reads", reads() == 0 && r.status == TLSA_TEMPFAIL &&
	    strcmp(r.reason, s.reason) == 0);
}

static void
test_refused(void)
{
	raw(TLSA_FOUND, 1, "", 1, 3, 32);
	CHECK("hand-made good one", reads() == 0);
	raw(3, 1, "", 0, 3, 32);
	CHECK("status 3", reads() == -1);
	raw(TLSA_FOUND, 2, "", 1, 3, 32);
	CHECK("authentic 2", reads() == -1);
	raw(TLSA_NONE, 1, "", 1, 3, 32);
	CHECK("records with NONE", reads() == -1);
	raw(TLSA_TEMPFAIL, 1, "", 1, 3, 32);
	CHECK("records with TEMPFAIL", reads() == -1);
	raw(TLSA_FOUND, 1, "", TLSA_RECORDS_MAX + 1, 3, 32);
	CHECK("too many records", reads() == -1);
	raw(TLSA_FOUND, 1, "", 1, 256, 32);
	CHECK("usage 256", reads() == -1);
	raw(TLSA_FOUND, 1, "", 1, 3, 0);
	CHECK("empty record", reads() == -1);
	raw(TLSA_FOUND, 1, "", 1, 3, TLSA_DATA_MAX);
	CHECK("largest record", reads() == 0 && r.rr[0].len == TLSA_DATA_MAX);
	raw(TLSA_FOUND, 1, "", 1, 3, TLSA_DATA_MAX + 1);
	CHECK("oversized record", reads() == -1);
	raw(TLSA_TEMPFAIL, 1, "bad\r\nline", 0, 3, 32);
	CHECK("CR LF in reason", reads() == -1);
	CHECK("empty payload", tlsa_read_reply("", 0, &r) == -1);
}

static ldns_pkt *
answer(const char *qname, const char **rrs, size_t n)
{
	ldns_pkt	*p;
	ldns_rr		*rr;
	size_t		 i;

	p = ldns_pkt_query_new(ldns_dname_new_frm_str(qname),
	    LDNS_RR_TYPE_TLSA, LDNS_RR_CLASS_IN, 0);
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
test_answer(void)
{
	const char	*rrs[] = {
		"_25._tcp.mx.example. IN TLSA 3 1 1 "
		"0102030405060708091011121314151617181920212223242526272829303132",
		"other.example. IN TLSA 3 1 1 00",
		"_25._tcp.mx.example. IN TLSA 2 0 2 " /* SHA-512 */
		"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
		"_25._tcp.mx.example. IN A 192.0.2.1",
	};
	const char	*many[TLSA_RECORDS_MAX + 2];
	char		 text[TLSA_RECORDS_MAX + 2][128];
	ldns_pkt	*p;
	size_t		 i;

	p = answer("_25._tcp.mx.example.", rrs, 4);
	CHECK("two TLSA of the name", tlsanswer_records(p, &r) == 2 &&
	    r.n == 2);
	CHECK("first record", r.rr[0].usage == 3 && r.rr[0].selector == 1 &&
	    r.rr[0].mtype == 1 && r.rr[0].len == 32 &&
	    r.rr[0].data[0] == 0x01 && r.rr[0].data[31] == 0x32);
	CHECK("second record", r.rr[1].usage == 2 && r.rr[1].mtype == 2 &&
	    r.rr[1].len == 64);
	ldns_pkt_free(p);

	for (i = 0; i < TLSA_RECORDS_MAX + 2; i++) {
		snprintf(text[i], sizeof(text[i]), "_25._tcp.mx.example. IN "
		    "TLSA 3 1 1 %02zx", i);
		many[i] = text[i];
	}
	p = answer("_25._tcp.mx.example.", many, TLSA_RECORDS_MAX + 2);
	CHECK("all counted, some kept", tlsanswer_records(p, &r) ==
	    TLSA_RECORDS_MAX + 2 && r.n == TLSA_RECORDS_MAX);
	ldns_pkt_free(p);
}

int
main(void)
{
	test_roundtrip();
	test_refused();
	test_answer();
	UNIT_EXIT();
}
