/*
 * DKIM verification (common/dkimverify.c) of hostile messages: the
 * header and body are the input; the key lookups get canned answers
 * (none, a DNS failure, keys that do or do not fit, junk) chosen by the
 * question's name. The corpus has messages signed with the Ed25519 key
 * below, so the paths of a good signature are taken too. Invariants: at
 * most DKIM_VERIFY_MAX signatures checked and as many questions, each a
 * key name; every signature settled once its answer and the body are in.
 */
#include <string.h>

#include "dkimverify.h"
#include "fuzz.h"

static const char *const records[] = {
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDABxmMAjD26k"
	"EQ7cDcc4RZn6VvkXTqYw4E26mVOWBJnRAchYx9O7YKjarwMrbo5ITnlUowph/7clt"
	"ytdoGhW9FUNQooKtcfAz+8bduO4NeJ2+0kpZdsS7TXprD+LNcCCGoHuAIhdUE4oU/"
	"AEeu/Wm2XTPbVdnsnp4RoN/bxIdwUQIDAQAB",
	"v=DKIM1; k=ed25519; p=7IUM0QP8RMBTeS+GH4vXUQl9OAbax0LUsL3Y33pcBOo=",
	"v=DKIM1; k=rsa; p=",
	"v=DKIM1; k=rsa; t=s; p=AAAA",
	"not a key record",
};
#define NRECORDS	(sizeof(records) / sizeof(records[0]))

FUZZ_ENTRY(dkimverify)
{
	static struct dkimv	v;
	struct dkimv_result	r;
	struct dkimv_txt	txt;
	const char		*msg = (const char *)data, *q, *body;
	size_t			 i, idx, asked = 0, half, pick, off;

	dkimv_begin(&v, msg, size, 1700000000);
	FUZZ_ASSERT(dkimv_count(&v) <= DKIM_VERIFY_MAX);
	FUZZ_ASSERT(dkimv_count(&v) <= dkimv_found(&v));
	while ((q = dkimv_question(&v, &idx)) != NULL) {
		FUZZ_ASSERT(++asked <= DKIM_VERIFY_MAX);
		FUZZ_ASSERT(idx < dkimv_count(&v));
		FUZZ_ASSERT(strstr(q, "._domainkey.") != NULL &&
		    strlen(q) <= DKIMSIG_DOMAIN_MAX);
		/* the answer depends on the name only, so a corpus
		 * message signed with the Ed25519 key above passes */
		for (pick = 0, i = 0; q[i] != '\0'; i++)
			pick += (unsigned char)q[i];
		switch (pick % (NRECORDS + 2)) {
		case NRECORDS:
			dkimv_answer(&v, idx, DKIMV_DNS_NXDOMAIN, NULL, 0);
			break;
		case NRECORDS + 1:
			dkimv_answer(&v, idx, DKIMV_DNS_TEMPERROR, NULL, 0);
			break;
		default:
			txt.text = records[pick % (NRECORDS + 2)];
			txt.len = strlen(txt.text);
			dkimv_answer(&v, idx, DKIMV_DNS_OK, &txt, 1);
		}
	}
	/* the body after the first empty line, in two chunks */
	body = memmem(msg, size, "\r\n\r\n", 4);
	off = body == NULL ? 0 : (size_t)(body - msg) + 4;
	half = off + (size - off) / 2;
	dkimv_body(&v, msg + off, half - off);
	dkimv_body(&v, msg + half, size - half);
	dkimv_body_end(&v);
	for (i = 0; i < dkimv_count(&v); i++) {
		dkimv_result(&v, i, &r);
		FUZZ_ASSERT(r.res != DKIMV_PENDING);
		FUZZ_ASSERT(r.reason[0] != '\0' && strlen(r.b8) <= 8);
	}
	dkimv_free(&v);
	return 0;
}
