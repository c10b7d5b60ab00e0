/*
 * DMARC (RFC 7489): the policy record of a From: domain, found by DNS
 * (the caller asks, this code never does), the organizational domain from
 * the Public Suffix List (libpsl), and the verdict from SPF and DKIM
 * results. No I/O here besides loading the list once, before a sandbox.
 */
#ifndef PYMAILD_DMARC_H
#define PYMAILD_DMARC_H

#include <stddef.h>

#define DMARC_DOMAIN_MAX	253
#define DMARC_TXT_MAX		2048	/* a longer record is not ours to read */
#define DMARC_DKIM_MAX		5	/* DKIM signatures checked per message */

enum dmarc_policy {
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT
};

struct dmarc_record {
	enum dmarc_policy	p;
	enum dmarc_policy	sp;	/* = p when the record has none */
	int			adkim_strict;
	int			aspf_strict;
	int			pct;	/* 0 to 100 */
};

/* What a DNS answer was, as the caller's lookup path reports it. */
enum dmarc_dns {
	DMARC_DNS_OK,		/* records follow (maybe none of them DMARC) */
	DMARC_DNS_NXDOMAIN,
	DMARC_DNS_NODATA,
	DMARC_DNS_TEMPFAIL
};

/*
 * Policy discovery (RFC 7489 6.6.3): _dmarc.FROM, and when it has no
 * record, _dmarc.ORG (the organizational domain) if that is another name.
 */
struct dmarc_lookup {
	char			from[DMARC_DOMAIN_MAX + 1];
	char			org[DMARC_DOMAIN_MAX + 1];
	char			qname[DMARC_DOMAIN_MAX + 8];
	int			asking;		/* 0 none, 1 from, 2 org */
	int			found;		/* rec holds a record */
	int			at_org;		/* found at org, not at from */
	int			tempfail;
	struct dmarc_record	rec;
};

enum dmarc_result {
	DMARC_NONE,		/* no policy published */
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,	/* the policy could not be found for now */
	DMARC_PERMERROR		/* the From: domain cannot be evaluated */
};

/* What SPF and DKIM established, for the alignment checks. */
struct dmarc_auth {
	const char	*spf_domain;	/* MAIL FROM (or HELO) domain, or NULL */
	int		 spf_pass;
	const char	*dkim_domain[DMARC_DKIM_MAX];	/* d= of passing sigs */
	size_t		 ndkim;
};

struct dmarc_verdict {
	enum dmarc_result	result;
	enum dmarc_policy	policy;		/* the one that applies */
	enum dmarc_policy	disposition;	/* after pct sampling */
	int			spf_aligned;
	int			dkim_aligned;
};

/* Once, before any sandbox: -1 when no list can be read. */
int	dmarc_psl_load(void);
void	dmarc_psl_free(void);
/* The organizational domain of domain (lower case, no final dot): 0, or
 * -1 when domain is not a domain name the list can place. */
int	dmarc_org_domain(const char *domain, char *org, size_t orglen);

int	dmarc_parse(const char *txt, size_t len, struct dmarc_record *);

/* 0, or -1 when from is not a domain name (DMARC_PERMERROR). */
int	dmarc_begin(struct dmarc_lookup *, const char *from);
/* The TXT name to ask now, NULL when discovery is over. */
const char *dmarc_question(const struct dmarc_lookup *);
void	dmarc_answer(struct dmarc_lookup *, enum dmarc_dns,
	    const char *const *txt, const size_t *txtlen, size_t n);

/* roll: a number in [0, 100) drawn by the caller, for pct sampling. */
void	dmarc_evaluate(const struct dmarc_lookup *, const struct dmarc_auth *,
	    unsigned int roll, struct dmarc_verdict *);

const char *dmarc_result_name(enum dmarc_result);
const char *dmarc_policy_name(enum dmarc_policy);

#endif
