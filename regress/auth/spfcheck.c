/*
 * spfcheck: the SPF evaluator (common/spf.c) driven by real DNS, for the
 * tests. Each question goes to the given server with ldns, one at a
 * time, and its answer comes back to the evaluator as the DNS process
 * would carry it.
 *
 *	spfcheck -s 127.0.0.1 -p 5353 [-t seconds] IP SENDER HELO
 *	spfcheck -s 127.0.0.1 -p 5353 < cases
 *
 * A case on standard input is one line "IP<TAB>SENDER<TAB>HELO" (an
 * empty SENDER is the null sender). Each case prints one line:
 * "RESULT<TAB>QUESTIONS<TAB>EXPLANATION".
 */
#include <sys/types.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "testdns.h"

#include "spf.h"

#define ANSWER_MAX	64	/* records handed to the evaluator */
#define TEXT_MAX	8192	/* a TXT record's strings, joined */

struct answer {
	struct spf_rr	rr[ANSWER_MAX];
	char		text[ANSWER_MAX][TEXT_MAX];
	size_t		n;
};

static void
add_rr(struct answer *ans, const ldns_rr *rr, int type)
{
	struct spf_rr	*out = &ans->rr[ans->n];
	char		*text = ans->text[ans->n], *s;
	ldns_rdf	*f;

	memset(out, 0, sizeof(*out));
	out->type = type;
	out->text = text;
	f = ldns_rr_rdf(rr, type == SPF_T_MX ? 1 : 0);
	if (f == NULL)
		return;
	switch (type) {
	case SPF_T_A:
		if (ldns_rdf_size(f) != 4)
			return;
		memcpy(&out->a, ldns_rdf_data(f), 4);
		break;
	case SPF_T_AAAA:
		if (ldns_rdf_size(f) != 16)
			return;
		memcpy(&out->aaaa, ldns_rdf_data(f), 16);
		break;
	case SPF_T_TXT:
		out->len = txt_join(rr, text, TEXT_MAX);
		break;
	default:
		if ((s = ldns_rdf2str(f)) == NULL)
			return;
		out->len = strlcpy(text, s, TEXT_MAX);
		free(s);
		break;
	}
	ans->n++;
}

/* The name in ldns's text form: odd octets (a space) as \DDD. */
static void
escape_name(const char *name, char *out, size_t outlen)
{
	size_t	n = 0;

	for (; *name != '\0' && n + 5 < outlen; name++) {
		if (isalnum((unsigned char)*name) || strchr(".-_", *name))
			out[n++] = *name;
		else
			n += (size_t)snprintf(out + n, outlen - n, "\\%03u",
			    (unsigned char)*name);
	}
	out[n] = '\0';
}

static enum spf_dns
lookup(ldns_resolver *res, const struct spf_question *q, struct answer *ans)
{
	ldns_rdf	*name;
	ldns_pkt	*pkt;
	ldns_rr_list	*list;
	size_t		 i;
	enum spf_dns	 st = SPF_DNS_OK;
	char		 text[4 * SPF_NAME_MAX + 8];

	ans->n = 0;
	/* ldns stops asking a server that once timed out: one did on
	 * purpose, the next question still goes to it. */
	ldns_resolver_set_nameserver_rtt(res, 0, LDNS_RESOLV_RTT_MIN);
	escape_name(q->name, text, sizeof(text));
	if ((name = ldns_dname_new_frm_str(text)) == NULL)
		return SPF_DNS_NXDOMAIN;
	pkt = ldns_resolver_query(res, name, (ldns_rr_type)q->type,
	    LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_rdf_deep_free(name);
	if (pkt == NULL)
		return SPF_DNS_TEMPERROR;
	switch (ldns_pkt_get_rcode(pkt)) {
	case LDNS_RCODE_NOERROR:
		break;
	case LDNS_RCODE_NXDOMAIN:
		st = SPF_DNS_NXDOMAIN;
		break;
	default:
		st = SPF_DNS_TEMPERROR;
		break;
	}
	list = ldns_pkt_answer(pkt);
	for (i = 0; st == SPF_DNS_OK && list != NULL &&
	    i < ldns_rr_list_rr_count(list) && ans->n < ANSWER_MAX; i++) {
		ldns_rr *rr = ldns_rr_list_rr(list, i);

		if ((int)ldns_rr_get_type(rr) == q->type)
			add_rr(ans, rr, q->type);
	}
	ldns_pkt_free(pkt);
	return st;
}

static void
check(ldns_resolver *res, const char *ip, const char *sender,
    const char *helo)
{
	static struct spf	s;
	static struct answer	ans;
	enum spf_dns		st;

	if (spf_begin(&s, ip, sender, helo, "checker.invalid") == -1) {
		printf("error\t0\tnot an address: %s\n", ip);
		return;
	}
	while (spf_step(&s) == SPF_NEED_DNS) {
		st = lookup(res, spf_question(&s), &ans);
		spf_answer(&s, st, ans.rr, ans.n);
	}
	printf("%s\t%d\t%s\n", spf_result_name(spf_result(&s)),
	    spf_questions(&s), spf_explain(&s));
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr, "usage: spfcheck -s server -p port [-t seconds] "
	    "[ip sender helo]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	ldns_resolver	*res;
	const char	*server = "127.0.0.1";
	char		 line[4096], *ip, *sender, *helo;
	int		 ch, port = 53, timeout = 2;

	while ((ch = getopt(argc, argv, "s:p:t:")) != -1) {
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
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if ((argc != 0 && argc != 3) || port <= 0 || port > 65535 ||
	    timeout <= 0 || timeout > 60)
		usage();
	if ((res = resolver(server, port, timeout)) == NULL) {
		fprintf(stderr, "spfcheck: bad server %s\n", server);
		return 2;
	}
	if (argc == 3) {
		check(res, argv[0], argv[1], argv[2]);
		return 0;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		ip = line;
		if ((sender = strchr(ip, '\t')) == NULL ||
		    (helo = strchr(sender + 1, '\t')) == NULL) {
			printf("error\t0\tbad input line\n");
			continue;
		}
		*sender++ = '\0';
		*helo++ = '\0';
		check(res, ip, sender, helo);
	}
	ldns_resolver_deep_free(res);
	return 0;
}
