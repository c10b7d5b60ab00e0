/*
 * SPF (RFC 7208): check_host() as a pure state machine. It does no I/O:
 * the caller runs it with spf_step(), and whenever it returns
 * SPF_NEED_DNS it looks up spf_question() however it likes (the DNS
 * process, a test resolver) and hands the records back with
 * spf_answer(). Nothing is allocated; everything is bounded by the sizes
 * below, and the RFC's processing limits (4.6.4) bound the questions:
 * a hostile record costs a permerror, never a storm of lookups.
 *
 *	spf_begin(&s, "192.0.2.1", "user@example.com", "mx.example.com",
 *	    "our.host.name");
 *	while (spf_step(&s) == SPF_NEED_DNS) {
 *		q = spf_question(&s);
 *		... look up q->name, q->type ...
 *		spf_answer(&s, status, records, n);
 *	}
 *	spf_result(&s), spf_explain(&s)
 *
 * The exp= modifier is checked for syntax and otherwise ignored: the
 * explanation it names is a text for a rejection message written by the
 * sender's domain, which we do not show (RFC 7208 6.2 allows that).
 * spf_explain() is our own short comment instead: the term that decided,
 * or the reason of an error, for Received-SPF / Authentication-Results;
 * printable ASCII without ( ) \ or ", ready for a header comment.
 */
#ifndef PYMAILD_SPF_H
#define PYMAILD_SPF_H

#include <sys/types.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>

#define SPF_NAME_MAX	253	/* a domain name in text, no final dot */
#define SPF_RECORD_MAX	4096	/* one TXT record, its strings joined */
#define SPF_SENDER_MAX	320	/* local-part@domain, RFC 5321 limits */
#define SPF_EXPLAIN_MAX	200
#define SPF_TERMS_MAX	10	/* DNS-querying terms (RFC 7208 4.6.4) */
#define SPF_VOID_MAX	2	/* lookups answering nothing */
#define SPF_MXNAMES_MAX	10	/* MX names one mx term may look up */
#define SPF_PTRNAMES_MAX 10	/* PTR names the ptr term / %{p} look up */
/* A safety net over the limits above; no valid run comes near it. */
#define SPF_QUESTIONS_MAX 160

/* Results (RFC 7208 2.6). */
enum spf_result {
	SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL,
	SPF_TEMPERROR, SPF_PERMERROR
};

/* What spf_step() returns. */
#define SPF_DONE	0
#define SPF_NEED_DNS	1

/* Question types: the DNS RR type numbers. */
#define SPF_T_A		1
#define SPF_T_PTR	12
#define SPF_T_MX	15
#define SPF_T_TXT	16
#define SPF_T_AAAA	28

/* How the lookup went (spf_answer). */
enum spf_dns {
	SPF_DNS_OK,		/* NOERROR; n == 0 is NODATA */
	SPF_DNS_NXDOMAIN,
	SPF_DNS_TEMPERROR	/* SERVFAIL, timeout, garbled answer */
};

/*
 * One record of an answer, as the DNS path carries it. The caller owns
 * the text; the evaluator copies what it keeps before spf_answer
 * returns. Records of another type than the question's are skipped
 * (a resolver may hand back the CNAME it followed).
 */
struct spf_rr {
	int		 type;		/* SPF_T_* */
	struct in_addr	 a;		/* SPF_T_A */
	struct in6_addr	 aaaa;		/* SPF_T_AAAA */
	const char	*text;		/* TXT: the strings joined; MX, PTR:
					 * the name (a final dot is fine) */
	size_t		 len;		/* of text */
};

struct spf_question {
	char	name[SPF_NAME_MAX + 1];
	int	type;
};

/* One record being evaluated: the top domain's, an include's. */
struct spf_frame {
	char	domain[SPF_NAME_MAX + 1];
	char	rec[SPF_RECORD_MAX + 1];
	size_t	pos;		/* next term */
	size_t	redirect;	/* offset of the redirect= term, or 0 */
	int	included;	/* reached by an include: its qualifier */
	int	redirected;	/* reached by a redirect= */
};

/* Stack depth: each include counts as a DNS-querying term. */
#define SPF_DEPTH_MAX	(SPF_TERMS_MAX + 1)

/*
 * One evaluation (about 55 KB: mostly the records on the include
 * stack). Declared here so that the caller can hold it; its fields are
 * read through the functions below.
 */
struct spf {
	/* The inputs. */
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 ip[16];	/* 4 used for AF_INET */
	char		 sender[SPF_SENDER_MAX + 1];
	char		 local[SPF_SENDER_MAX + 1];
	char		 sdomain[SPF_NAME_MAX + 1];
	char		 helo[SPF_NAME_MAX + 1];
	char		 ourhost[SPF_NAME_MAX + 1];

	/* The machine. */
	int		 wait;		/* what the open question is for */
	int		 done;
	enum spf_result	 result;
	char		 explain[SPF_EXPLAIN_MAX];
	struct spf_question q;
	int		 nq;		/* questions asked */
	int		 terms;		/* DNS-querying terms evaluated */
	int		 voids;
	int		 counted;	/* the current term is counted */

	struct spf_frame stack[SPF_DEPTH_MAX];
	int		 depth;		/* frames in use */

	/* The term being evaluated (in the top frame). */
	size_t		 tstart, tend;
	int		 qual;		/* '+', '-', '~', '?' */
	char		 target[SPF_NAME_MAX + 1];
	int		 cidr4, cidr6;
	char		 names[SPF_MXNAMES_MAX][SPF_NAME_MAX + 1];
	int		 nnames, iname;

	/* The client's validated host names (ptr, %{p}), found once. */
	int		 ptrstate;	/* 0 not yet, 1 asking, 2 known */
	char		 ptrnames[SPF_PTRNAMES_MAX][SPF_NAME_MAX + 1];
	int		 nptr, iptr;
	uint8_t		 ptrok[SPF_PTRNAMES_MAX];
};

/*
 * Starts check_host() for a client address (text, IPv4 or IPv6; an
 * IPv4-mapped IPv6 address counts as IPv4), the MAIL FROM address
 * without brackets ("" for the null sender: postmaster@helo is checked
 * then), the HELO name and our host name (%{r}). -1 when ip is no
 * address; any other bad input is a result (none or permerror).
 */
int	spf_begin(struct spf *, const char *ip, const char *sender,
	    const char *helo, const char *ourhost);
int	spf_step(struct spf *);
const struct spf_question *spf_question(const struct spf *);
void	spf_answer(struct spf *, enum spf_dns, const struct spf_rr *,
	    size_t n);
enum spf_result spf_result(const struct spf *);
const char *spf_explain(const struct spf *);
/* "pass", "fail", ...: the words of RFC 7208 and RFC 8601. */
const char *spf_result_name(enum spf_result);
/* Questions asked so far (for the tests). */
int	spf_questions(const struct spf *);

/*
 * Macro expansion (RFC 7208 7) of [p, p + len) into out (outlen >= 2),
 * for a domain-spec: the result is cut from the left, label by label,
 * to SPF_NAME_MAX. -1 for a syntax error. Exposed for the fuzzer and
 * the unit tests; %{p} expands to what spf knows ("unknown" before the
 * lookup).
 */
int	spf_expand(const struct spf *, const char *p, size_t len,
	    char *out, size_t outlen);

#endif
