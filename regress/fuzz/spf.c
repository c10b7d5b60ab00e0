/*
 * The SPF evaluator (common/spf.c): the input is lines. The first is
 * the sender domain's TXT record; each question after it takes the next
 * line as its answer: the first octet picks how the lookup went (OK,
 * NXDOMAIN, a DNS error), the rest is a TXT record, a list of names
 * separated by commas (MX, PTR), or an address (A, AAAA; anything else
 * stands for the client's own address, so that terms can match). Lines
 * run out: NXDOMAIN. The last octet of the input picks the
 * client's address family.
 *
 * Whatever the records say, the evaluation ends with a result within
 * the questions the RFC's limits allow, and every name asked is a name.
 * The whole input is also expanded as a macro-string.
 */
#include <arpa/inet.h>

#include <string.h>

#include "spf.h"
#include "fuzz.h"

/* The first TXT; 10 DNS terms, an mx one costing 1 + 10 names; the
 * client's names (PTR and up to 10 addresses) once. */
#define QUESTIONS_BOUND	(1 + SPF_TERMS_MAX * (1 + SPF_MXNAMES_MAX) + \
			    1 + SPF_PTRNAMES_MAX)
#define RR_MAX		32

struct lines {
	const char	*p, *e;
};

static int
next_line(struct lines *l, const char **line, size_t *len)
{
	const char	*nl;

	if (l->p >= l->e)
		return 0;
	nl = memchr(l->p, '\n', (size_t)(l->e - l->p));
	*line = l->p;
	*len = (size_t)((nl ? nl : l->e) - l->p);
	l->p = nl ? nl + 1 : l->e;
	return 1;
}

static void
check_question(const struct spf_question *q)
{
	size_t	len = strnlen(q->name, sizeof(q->name)), lab = 0, i;

	FUZZ_ASSERT(len > 0 && len <= SPF_NAME_MAX);
	FUZZ_ASSERT(q->type == SPF_T_A || q->type == SPF_T_AAAA ||
	    q->type == SPF_T_MX || q->type == SPF_T_TXT ||
	    q->type == SPF_T_PTR);
	for (i = 0; i <= len; i++) {
		if (i == len || q->name[i] == '.') {
			FUZZ_ASSERT(lab > 0 && lab <= 63);
			lab = 0;
		} else
			lab++;
	}
}

/* The answer to q from one line; the records point into the input. */
static size_t
answer(const struct spf *s, const char *line, size_t len,
    struct spf_rr *rr, enum spf_dns *st)
{
	const struct spf_question *q = spf_question(s);
	char		 addr[64];
	const char	*comma;
	size_t		 n = 0;

	*st = len == 0 ? SPF_DNS_OK : (enum spf_dns)((unsigned char)line[0] % 3);
	if (len > 0) {
		line++;
		len--;
	}
	memset(rr, 0, sizeof(*rr) * RR_MAX);
	if (q->type == SPF_T_TXT) {
		rr[0].type = SPF_T_TXT;
		rr[0].text = line;
		rr[0].len = len;
		return 1;
	}
	if (q->type == SPF_T_A || q->type == SPF_T_AAAA) {
		rr[0].type = q->type;
		if (len >= sizeof(addr))
			len = sizeof(addr) - 1;
		memcpy(addr, line, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET, addr, &rr[0].a) != 1)
			memcpy(&rr[0].a, s->ip, 4);
		if (inet_pton(AF_INET6, addr, &rr[0].aaaa) != 1)
			memcpy(&rr[0].aaaa, s->ip, 16);
		return 1;
	}
	while (n < RR_MAX) {
		comma = memchr(line, ',', len);
		rr[n].type = q->type;
		rr[n].text = line;
		rr[n].len = comma ? (size_t)(comma - line) : len;
		n++;
		if (comma == NULL)
			break;
		len -= (size_t)(comma - line) + 1;
		line = comma + 1;
	}
	return n;
}

FUZZ_ENTRY(spf)
{
	static struct spf	 s;
	struct spf_rr		 rr[RR_MAX];
	struct lines		 l = { (const char *)data,
				    (const char *)data + size };
	enum spf_dns		 st;
	const char		*line;
	char			 out[SPF_NAME_MAX + 1];
	size_t			 len, n;
	int			 steps;

	FUZZ_ASSERT(spf_begin(&s, size > 0 && data[size - 1] & 1 ?
	    "2001:db8::1" :
	    "192.0.2.1", "user@fuzz.example", "helo.example",
	    "us.example") == 0);
	for (steps = 0; spf_step(&s) == SPF_NEED_DNS; steps++) {
		FUZZ_ASSERT(steps < QUESTIONS_BOUND);
		check_question(spf_question(&s));
		if (!next_line(&l, &line, &len)) {
			spf_answer(&s, SPF_DNS_NXDOMAIN, NULL, 0);
			continue;
		}
		/* The first answer is the record itself, found. */
		if (steps == 0) {
			memset(rr, 0, sizeof(rr));
			rr[0].type = SPF_T_TXT;
			rr[0].text = line;
			rr[0].len = len;
			spf_answer(&s, SPF_DNS_OK, rr, 1);
			continue;
		}
		n = answer(&s, line, len, rr, &st);
		spf_answer(&s, st, rr, n);
	}
	FUZZ_ASSERT(spf_questions(&s) <= QUESTIONS_BOUND);
	FUZZ_ASSERT(spf_result(&s) >= SPF_NONE &&
	    spf_result(&s) <= SPF_PERMERROR);
	FUZZ_ASSERT(strnlen(spf_explain(&s), SPF_EXPLAIN_MAX) <
	    SPF_EXPLAIN_MAX);
	if (spf_expand(&s, (const char *)data, size, out, sizeof(out)) == 0)
		FUZZ_ASSERT(strlen(out) <= SPF_NAME_MAX);
	return 0;
}
