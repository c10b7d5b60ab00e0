/*
 * What the regress/auth test drivers share: a resolver that asks one
 * test DNS server (regress/lib/dnsfixture.py) over UDP, TCP when told,
 * and a TXT record's character-strings joined (RFC 7208 3.3, RFC 6376
 * 3.6.2.2 say the same). Header only: each driver is one program.
 */
#ifndef PYMAILD_TESTDNS_H
#define PYMAILD_TESTDNS_H

#include <string.h>

#include <ldns/ldns.h>

static ldns_resolver *
resolver(const char *server, int port, int timeout)
{
	ldns_resolver	*res;
	ldns_rdf	*ns;
	struct timeval	 tv = { timeout, 0 };

	if ((res = ldns_resolver_new()) == NULL)
		return NULL;
	if ((ns = ldns_rdf_new_frm_str(strchr(server, ':') ?
	    LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, server)) == NULL ||
	    ldns_resolver_push_nameserver(res, ns) != LDNS_STATUS_OK)
		return NULL;
	ldns_rdf_deep_free(ns);
	ldns_resolver_set_port(res, (uint16_t)port);
	ldns_resolver_set_timeout(res, tv);
	ldns_resolver_set_retry(res, 1);
	ldns_resolver_set_retrans(res, timeout);
	ldns_resolver_set_recursive(res, true);
	ldns_resolver_set_fallback(res, true);
	ldns_resolver_set_edns_udp_size(res, 4096);
	return res;
}

/* One TXT record's character-strings, joined. */
static size_t
txt_join(const ldns_rr *rr, char *out, size_t outlen)
{
	size_t	 i, n = 0, len;
	ldns_rdf *f;

	for (i = 0; i < ldns_rr_rd_count(rr); i++) {
		f = ldns_rr_rdf(rr, i);
		if (ldns_rdf_size(f) < 1)
			continue;
		len = ldns_rdf_data(f)[0];
		if (len > ldns_rdf_size(f) - 1 || n + len > outlen)
			break;
		memcpy(out + n, ldns_rdf_data(f) + 1, len);
		n += len;
	}
	return n;
}

#endif
