/*
 * MX resolution on ldns (DESIGN.md A6, B4), shared by mxcache and
 * `pymailadm updatemx`. ldns builds and parses the packets; the UDP
 * exchange (and TCP when an answer is truncated) is ours, non-blocking on
 * a libevent loop with a timeout and a retry, so one process has many
 * lookups in flight and never waits on the network.
 *
 * A lookup asks for the domain's MX records, then for the A and AAAA
 * records of every MX host at once, and yields an mxentry:
 *  - MX_OK: the addresses in preference order (a host's IPv4 addresses
 *    before its IPv6 ones), at most MX_MAX_HOSTS; the domain's own
 *    addresses with preference 0 when it has no MX (RFC 5321 5.1);
 *  - MX_NULLMX for a single MX "." (RFC 7505), MX_NXDOMAIN, MX_NOHOSTS
 *    when the hosts resolve to nothing;
 *  - MX_TEMPFAIL for SERVFAIL, no answer, a garbled answer, or when no
 *    host resolved and some failed temporarily: never a permanent
 *    failure for a temporary problem.
 * expires is now + the smallest TTL seen, clamped to [MX_TTL_MIN,
 * MX_TTL_MAX]; negative answers get MX_TTL_NEG; when some hosts failed
 * temporarily the partial answer is kept only MX_TTL_MIN.
 */
#ifndef PYMAILD_MXLOOKUP_H
#define PYMAILD_MXLOOKUP_H

#include <event.h>
#include <ldns/ldns.h>

#include "config.h"
#include "dnsmsg.h"
#include "mxfile.h"
#include "tlsamsg.h"

#define MX_TTL_MIN	60
#define MX_TTL_MAX	86400
#define MX_TTL_NEG	300
#define MX_REASON_MAX	200

struct mxresolver;

/*
 * The resolver: the config's `resolver` when set, else the nameservers
 * of /etc/resolv.conf (read now: call this before a chroot). Never
 * fails: without any nameserver it uses 127.0.0.1:53, as libc does, and
 * says so in warn (else warn is set to "").
 */
struct mxresolver *mxresolver_new(struct event_base *base,
	    const struct config *conf, char *warn, size_t warnlen);
/* After a reload: a new `resolver` applies to the next queries; an empty
 * one goes back to the resolv.conf list read at start. */
void	mxresolver_reconfigure(struct mxresolver *, const struct config *);
/* Only once every lookup is done. */
void	mxresolver_free(struct mxresolver *);
/* "127.0.0.1:5353": the first server, for messages. */
const char *mxresolver_name(const struct mxresolver *);

/*
 * The result, valid during the call (mxentry_copy what you keep);
 * reason says what went wrong for MX_TEMPFAIL, else it is the status's
 * text. The callback never runs inside mxlookup_start.
 */
typedef void	(*mxlookup_done)(const struct mxentry *e, const char *reason,
	    void *arg);

void	mxlookup_start(struct mxresolver *, const char *domain,
	    mxlookup_done done, void *arg);

/*
 * The order to try an entry's addresses in (indexes into e->rr): hosts
 * of equal preference shuffled anew for every answer (RFC 5321 5.1),
 * each host's addresses together and in their order. Returns how many.
 */
size_t	mx_try_order(const struct mxentry *e, size_t order[MX_MAX_HOSTS]);

/*
 * Reading answers: pure functions over a packet ldns has parsed, which
 * must be the answer to the question asked (mxanswer_matches).
 */
struct mxname {
	uint16_t	pref;
	char		name[MX_NAME_MAX + 1];
};

/* Is p the answer (id, qr, exactly one question of this IN type and
 * name)? Anything else is ignored. */
int	mxanswer_matches(const ldns_pkt *p, uint16_t id, ldns_rr_type type,
	    const ldns_rdf *qname);
/* The MX hosts, best first, each once, at most MX_MAX_HOSTS in best
 * (*n of them); returns how many MX records there were at all; lowers
 * *ttl to the smallest seen; sets *nullmx when one of them is ".". */
size_t	mxanswer_hosts(const ldns_pkt *p, struct mxname *best, size_t *n,
	    uint32_t *ttl, int *nullmx);
/* The addresses of an A (v6 0) or AAAA answer as text, at most max;
 * lowers *ttl to the smallest seen. */
size_t	mxanswer_addresses(const ldns_pkt *p, int v6,
	    char (*addr)[INET6_ADDRSTRLEN], size_t max, uint32_t *ttl);

/*
 * DANE: the TLSA records of _PORT._tcp.HOST (see tlsamsg.h for what the
 * reply says). -1 at once when host or port cannot name any record (no
 * TLSA can exist then); else done runs later with r->req = req.
 */
/* ttl: seconds the answer holds (the records' smallest TTL, MX_TTL_NEG
 * for none); 0 for a failure, which is never kept. */
typedef void	(*tlsalookup_done)(const struct tlsa_reply *r, uint32_t ttl,
		    void *arg);

int	tlsalookup_start(struct mxresolver *, uint32_t req, const char *host,
	    int port, tlsalookup_done done, void *arg);
/* The TLSA records of an answer (after CNAMEs), at most
 * TLSA_RECORDS_MAX kept in r; returns how many there were at all. */
size_t	tlsanswer_records(const ldns_pkt *p, struct tlsa_reply *r);

/*
 * A helper's question (dnsmsg.h): the records of qname (valid, as
 * dns_read_query leaves it) of qtype. done runs later, never from in
 * here, with a->status and a->ttl set (clamped as MX answers are; 0 for
 * DNS_TEMPFAIL) and reason saying why on a failure.
 */
typedef void	(*dnslookup_done)(const struct dns_answer *a,
	    const char *reason, void *arg);

void	dnslookup_start(struct mxresolver *, const char *qname,
	    uint32_t qtype, dnslookup_done done, void *arg);
/* The records of an answer (after CNAMEs) as text: DNS_OK, DNS_NODATA,
 * or DNS_PERMFAIL when a record is malformed or they break a bound of
 * dnsmsg.h (then none is kept). Lowers *ttl to the smallest seen. */
int	dnsanswer_records(const ldns_pkt *p, uint32_t qtype,
	    struct dns_answer *a, uint32_t *ttl);

/* What `updatemx` prints, in the daemon and in pymailadm:
 * "MX cache refreshed: N domains." or the failure. 0 ok, -1 failed. */
int	mxrefresh_summary(char *buf, size_t len, unsigned ndomains,
	    unsigned nfailed, const char *reason);

#endif
