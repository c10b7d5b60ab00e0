/*
 * IMSG_DNS_QUERY / IMSG_DNS_REPLY (proto.h): one DNS question of a
 * helper that has no resolver of its own (smtpd), answered by mxcache
 * from its cache or the resolver. Pure readers and builders, shared by
 * both sides: 0 when the payload has exactly this shape and every field
 * is in range, -1 when not.
 */
#ifndef PYMAILD_DNSMSG_H
#define PYMAILD_DNSMSG_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "mxfile.h"

/* The types a helper may ask for: their DNS numbers. */
#define DNS_T_A		1
#define DNS_T_PTR	12
#define DNS_T_MX	15	/* the exchange names, preference dropped */
#define DNS_T_TXT	16
#define DNS_T_AAAA	28

/* IMSG_DNS_REPLY status */
#define DNS_OK		0	/* 1..DNS_RECORDS_MAX records follow */
#define DNS_NXDOMAIN	1	/* no such name */
#define DNS_NODATA	2	/* the name exists, no record of the type */
#define DNS_TEMPFAIL	3	/* timeout, SERVFAIL, too busy: ask later */
#define DNS_PERMFAIL	4	/* an answer nobody can use (too large,
				 * malformed records): asking again helps
				 * no more */

#define DNS_RECORDS_MAX	32	/* records of one answer */
#define DNS_RECORD_MAX	2048	/* octets of one (a TXT's strings joined) */
#define DNS_DATA_MAX	8192	/* octets of all, each with its NUL */

struct dns_query {
	uint32_t	req, tag;	/* the asker's, echoed */
	uint32_t	qtype;		/* DNS_T_* */
	char		qname[MX_NAME_MAX + 1];	/* normalized, no final dot */
};

/*
 * A record is text: an address (A, AAAA), a host name (PTR), or a TXT
 * record's strings joined with nothing between them (RFC 7208 3.3),
 * any octet but bounded. Each sits in data at off[i], len[i] octets,
 * then a NUL (so a TXT holding a NUL is cut short by str* functions:
 * use len).
 */
struct dns_answer {
	uint32_t	req, tag, qtype;
	uint32_t	status;		/* DNS_* */
	uint32_t	ttl;		/* seconds, clamped by mxcache */
	uint32_t	n;
	uint16_t	off[DNS_RECORDS_MAX], len[DNS_RECORDS_MAX];
	size_t		used;		/* octets of data */
	char		data[DNS_DATA_MAX];
};

int	dns_qtype_ok(uint32_t qtype);
const char *dns_qtype_name(uint32_t qtype);
const char *dns_status_name(uint32_t status);

int	dns_read_query(const void *, size_t, struct dns_query *);
void	dns_build_query(struct msgbuild *, const struct dns_query *);
int	dns_read_answer(const void *, size_t, struct dns_answer *);
void	dns_build_answer(struct msgbuild *, const struct dns_answer *);

/* Add a record to a; -1 (a unchanged) when it breaks a bound. */
int	dns_answer_add(struct dns_answer *a, const void *rec, size_t len);
/* Is this record valid for its type (the reader's check)? */
int	dns_record_ok(uint32_t qtype, const char *rec, size_t len);

/*
 * The name to ask about an address under zone (a blocklist, or
 * "in-addr.arpa" / "ip6.arpa"): "4.3.2.1.zone" for 1.2.3.4 (an
 * IPv4-mapped IPv6 address counts as IPv4), the 32 nibbles of an IPv6
 * address last first (RFC 5782 2.4). -1 when it does not fit len or a
 * DNS name.
 */
int	dns_reverse_name(const struct sockaddr *sa, const char *zone,
	    char *out, size_t len);

#endif
