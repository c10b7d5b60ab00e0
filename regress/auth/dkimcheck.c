/*
 * dkimcheck: the DKIM verifier (common/dkimverify.c) driven by real DNS,
 * for the tests. The key records are asked of the given server with
 * ldns, one at a time, and come back to the verifier as the DNS process
 * would carry them (each TXT record's strings joined).
 *
 *	dkimcheck -s 127.0.0.1 -p 5353 [-t seconds] [-n now] [file]
 *
 * The message (CRLF lines) is read from file or standard input; its body
 * is fed in small chunks, as a session would stream it. One line per
 * signature checked: "RESULT d=D s=S b=B REASON", then
 * "found=N checked=M questions=Q".
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "testdns.h"

#include "dkimverify.h"

#define MESSAGE_MAX	(16 * 1024 * 1024)
#define ANSWER_MAX	16
#define TEXT_MAX	8192
#define CHUNK		1000	/* body octets per dkimv_body call */

struct answer {
	struct dkimv_txt	rr[ANSWER_MAX];
	char			text[ANSWER_MAX][TEXT_MAX];
	size_t			n;
};

static enum dkimv_dns
lookup(ldns_resolver *res, const char *qname, struct answer *ans)
{
	ldns_rdf	*name;
	ldns_pkt	*pkt;
	ldns_rr_list	*list;
	ldns_rr		*rr;
	size_t		 i;
	enum dkimv_dns	 st = DKIMV_DNS_OK;

	ans->n = 0;
	ldns_resolver_set_nameserver_rtt(res, 0, LDNS_RESOLV_RTT_MIN);
	if ((name = ldns_dname_new_frm_str(qname)) == NULL)
		return DKIMV_DNS_NXDOMAIN;
	pkt = ldns_resolver_query(res, name, LDNS_RR_TYPE_TXT,
	    LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_rdf_deep_free(name);
	if (pkt == NULL)
		return DKIMV_DNS_TEMPERROR;
	if (ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NXDOMAIN)
		st = DKIMV_DNS_NXDOMAIN;
	else if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR)
		st = DKIMV_DNS_TEMPERROR;
	list = ldns_pkt_answer(pkt);
	for (i = 0; st == DKIMV_DNS_OK && list != NULL &&
	    i < ldns_rr_list_rr_count(list) && ans->n < ANSWER_MAX; i++) {
		rr = ldns_rr_list_rr(list, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT)
			continue;
		ans->rr[ans->n].text = ans->text[ans->n];
		ans->rr[ans->n].len = txt_join(rr, ans->text[ans->n],
		    TEXT_MAX);
		ans->n++;
	}
	ldns_pkt_free(pkt);
	return st;
}

/* Where the body starts: past the first empty line (len: none). */
static size_t
body_start(const char *m, size_t len)
{
	size_t	p = 0;
	const char *lf;

	while (p < len) {
		if (m[p] == '\n')
			return p + 1;
		if (m[p] == '\r' && p + 1 < len && m[p + 1] == '\n')
			return p + 2;
		if ((lf = memchr(m + p, '\n', len - p)) == NULL)
			return len;
		p = (size_t)(lf - m) + 1;
	}
	return len;
}

static char *
read_all(FILE *fp, size_t *len)
{
	char	*buf = malloc(MESSAGE_MAX);
	size_t	 n;

	if (buf == NULL)
		return NULL;
	n = fread(buf, 1, MESSAGE_MAX, fp);
	*len = n;
	return buf;
}

static void
usage(void)
{
	fprintf(stderr, "usage: dkimcheck -s server -p port [-t seconds] "
	    "[-n now] [file]\n");
	exit(2);
}

/* Verify one message: its questions first, then its body, in chunks. */
static void
check(ldns_resolver *res, const char *msg, size_t len, time_t now)
{
	static struct dkimv	v;
	static struct answer	ans;
	struct dkimv_result	r;
	const char		*q;
	size_t			 boff, off, n, i, questions = 0;
	enum dkimv_dns		 st;

	boff = body_start(msg, len);
	dkimv_begin(&v, msg, boff, now);
	while ((q = dkimv_question(&v, &i)) != NULL) {
		questions++;
		st = lookup(res, q, &ans);
		dkimv_answer(&v, i, st, ans.rr, ans.n);
	}
	for (off = boff; off < len; off += n) {
		n = len - off < CHUNK ? len - off : CHUNK;
		dkimv_body(&v, msg + off, n);
	}
	dkimv_body_end(&v);
	for (i = 0; i < dkimv_count(&v); i++) {
		dkimv_result(&v, i, &r);
		printf("%s d=%s s=%s b=%s %s\n", dkimv_result_name(r.res),
		    r.d[0] ? r.d : "-", r.s[0] ? r.s : "-",
		    r.b8[0] ? r.b8 : "-", r.reason);
	}
	printf("found=%zu checked=%zu questions=%zu\n", dkimv_found(&v),
	    dkimv_count(&v), questions);
	dkimv_free(&v);
}

int
main(int argc, char *argv[])
{
	ldns_resolver	*res;
	const char	*server = "127.0.0.1";
	char		*msg;
	FILE		*fp = stdin;
	size_t		 len;
	time_t		 now = time(NULL);
	int		 ch, port = 53, timeout = 2;

	while ((ch = getopt(argc, argv, "s:p:t:n:")) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'n':
			now = (time_t)atoll(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || port <= 0 || port > 65535 || timeout <= 0 ||
	    timeout > 60)
		usage();
	if (argc == 1 && (fp = fopen(argv[0], "rb")) == NULL) {
		perror(argv[0]);
		return 2;
	}
	if ((res = resolver(server, port, timeout)) == NULL) {
		fprintf(stderr, "dkimcheck: bad server %s\n", server);
		return 2;
	}
	msg = read_all(fp, &len);
	if (fp != stdin)
		fclose(fp);
	if (msg == NULL)
		return 2;
	check(res, msg, len, now);
	free(msg);
	ldns_resolver_deep_free(res);
	return 0;
}
