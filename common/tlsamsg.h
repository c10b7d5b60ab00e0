/*
 * IMSG_TLSA_REPLY (proto.h): mxcache tells outbound what DNS says of an
 * MX host's TLSA records (RFC 6698, RFC 7672), and whether the resolver
 * vouched for the answer (the AD bit). Built by mxcache, read by
 * outbound with a pure reader: 0 when the payload has exactly this shape
 * and every field is in range, -1 when not.
 */
#ifndef PYMAILD_TLSAMSG_H
#define PYMAILD_TLSAMSG_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"

#define TLSA_RECORDS_MAX	8	/* kept of one answer */
#define TLSA_DATA_MAX		1024	/* octets of one record's data */
#define TLSA_REASON_MAX		200

/* IMSG_TLSA_REPLY status */
#define TLSA_NONE	0	/* NXDOMAIN or no TLSA record: no DANE */
#define TLSA_FOUND	1	/* records follow (maybe none we can use) */
#define TLSA_TEMPFAIL	2	/* SERVFAIL, timeout, garbled */

struct tlsa_rr {
	uint8_t		usage, selector, mtype;
	uint16_t	len;			/* 1..TLSA_DATA_MAX */
	uint8_t		data[TLSA_DATA_MAX];
};

struct tlsa_reply {
	uint32_t	req;
	uint32_t	status;			/* TLSA_* */
	/*
	 * The resolver set AD: on TLSA_FOUND, for the records; on
	 * TLSA_NONE, for the denial; on TLSA_TEMPFAIL, for the host's
	 * address, i.e. the host sits in a signed zone and the failure
	 * must not downgrade it (RFC 7672 2.2).
	 */
	uint32_t	authentic;
	char		reason[TLSA_REASON_MAX + 1];	/* printable */
	uint32_t	n;			/* <= TLSA_RECORDS_MAX */
	struct tlsa_rr	rr[TLSA_RECORDS_MAX];
};

int	tlsa_read_reply(const void *, size_t, struct tlsa_reply *);
/* Fills mb with r's payload (r as tlsa_read_reply would return it). */
void	tlsa_build_reply(struct msgbuild *, const struct tlsa_reply *);

#endif
