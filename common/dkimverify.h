/*
 * DKIM verification (RFC 6376 6, RFC 8463) of one received message,
 * as a pure state machine: the caller owns the I/O.
 *
 *	dkimv_begin(v, header, len, now)	the header, up to the empty line
 *	dkimv_body(v, chunk, len) ...		the body, in any chunks
 *	dkimv_body_end(v)
 *	while ((name = dkimv_question(v, &i)) != NULL)
 *		dkimv_answer(v, i, status, records, n)	TXT of name
 *	dkimv_result(v, i) for i < dkimv_count(v)
 *
 * Questions and the body may come in either order. Only the first
 * DKIM_VERIFY_MAX DKIM-Signature fields (from the top) are checked; the
 * others are ignored, so a message with a thousand signatures costs at
 * most DKIM_VERIFY_MAX key lookups and body hashers. Nothing here
 * allocates in proportion to the message beyond fixed caps. A struct
 * dkimv is some 46 KB: allocate it rather than put it on a stack.
 *
 * l= (a body length limit): a signature that covers less than the whole
 * body is "policy": what follows the signed part could say anything and
 * its signer did not sign it. l= equal to the body's canonical length
 * verifies as usual; l= longer than the body fails.
 *
 * Keys: a revoked key (empty p=), no key record, a record that is not a
 * key, an RSA key under 1024 bits or a key of another type than a= are
 * permerror (RFC 6376 6.1.2, RFC 8301); several key records at the name
 * too, as which one the signer meant is unknown. A t=s key refuses an
 * i= below d= (permerror). Under a t=y key (the signer is testing) a
 * signature that does not verify is neutral, not fail.
 *
 * A header that cannot be split into fields (a line that is neither a
 * field nor a continuation, more than DKIMV_FIELDS_MAX fields, over
 * DKIM_HEADER_MAX octets) yields no signature to check: dkim=none.
 *
 * Time (RFC 6376 3.5): a signature whose t= is more than
 * DKIMV_FUTURE_MAX seconds ahead of now is not used: policy, and its
 * key is not asked for. An x= before now (expired) or before t= is
 * permerror.
 */
#ifndef PYMAILD_DKIMVERIFY_H
#define PYMAILD_DKIMVERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dkim.h"
#include "dkimsig.h"

#define DKIM_VERIFY_MAX		5	/* signatures checked per message */
#define DKIMV_FIELDS_MAX	4096	/* header fields we split */
#define DKIMV_REASON_MAX	96
#define DKIMV_FUTURE_MAX	300	/* seconds t= may be ahead of us */
#define DKIMV_NAME_MAX		(DKIMSIG_SELECTOR_MAX + DKIMSIG_DOMAIN_MAX + \
				    sizeof("._domainkey."))

/* RFC 8601 2.7.1 words (dkimv_result_name). */
enum dkimv_res {
	DKIMV_PENDING = 0,	/* waiting for the body or the key */
	DKIMV_PASS,
	DKIMV_FAIL,
	DKIMV_NEUTRAL,		/* a failure under a testing key (t=y) */
	DKIMV_POLICY,		/* l= shorter than the body */
	DKIMV_TEMPERROR,
	DKIMV_PERMERROR,
};

/* How the key lookup went, as the DNS process reports it. */
enum dkimv_dns {
	DKIMV_DNS_OK,		/* records (maybe none: no TXT) */
	DKIMV_DNS_NXDOMAIN,
	DKIMV_DNS_TEMPERROR,	/* timeout, SERVFAIL */
	DKIMV_DNS_PERMERROR,	/* an answer past the DNS process's bounds
				 * (more records or octets than a key can
				 * take): asking again will not help */
};

/* One TXT record, its strings joined. */
struct dkimv_txt {
	const char	*text;
	size_t		 len;
};

struct dkimv_result {
	enum dkimv_res	 res;
	const char	*d;		/* "" when the signature did not parse */
	const char	*s;
	const char	*b8;		/* header.b: b='s first 8 characters */
	const char	*reason;	/* short, for logs and the header */
};

struct dkimv_sig {
	struct dkimsig	 sig;
	enum dkimv_res	 res;
	char		 reason[DKIMV_REASON_MAX];
	char		 b8[9];
	char		 qname[DKIMV_NAME_MAX];
	int		 iexact;	/* i= absent or its domain is d= */
	int		 asked, keyed;	/* question given, key taken */
	unsigned char	 hhash[32];	/* of the header data */
	size_t		 body;		/* index of its body hasher */
	/* the key, once answered */
	struct dkimkey	 key;
};

struct dkimv_bodyh {
	struct dkim_body b;
	int		 bcanon;	/* DKIMSIG_SIMPLE / RELAXED */
	int		 has_l;
	uint64_t	 l;
	unsigned char	 hash[32];
	int		 failed;
};

struct dkimv {
	struct dkimv_sig	sig[DKIM_VERIFY_MAX];
	size_t			nsig;		/* checked */
	size_t			nfound;		/* DKIM-Signature fields seen */
	struct dkimv_bodyh	bh[DKIM_VERIFY_MAX];
	size_t			nbh;
	int			bodydone;
};

/*
 * Find and parse the signatures of the header [hdr, hdr + len) (the
 * empty line and what follows may be there: they are not read), and
 * hash the header data of each. Returns the number of signatures
 * checked (0: none, nothing to do). Call dkimv_free after, always.
 */
int	dkimv_begin(struct dkimv *, const char *hdr, size_t len, time_t now);
void	dkimv_body(struct dkimv *, const char *, size_t);
void	dkimv_body_end(struct dkimv *);

/* The next key record to ask for, s._domainkey.d, with its index. */
const char *dkimv_question(struct dkimv *, size_t *);
void	dkimv_answer(struct dkimv *, size_t, enum dkimv_dns,
	    const struct dkimv_txt *, size_t);

size_t	dkimv_count(const struct dkimv *);
/* DKIM-Signature fields in the header, checked or not. */
size_t	dkimv_found(const struct dkimv *);
void	dkimv_result(const struct dkimv *, size_t, struct dkimv_result *);
const char *dkimv_result_name(enum dkimv_res);
void	dkimv_free(struct dkimv *);

#endif
