/*
 * IMSG_DNS_QUERY and IMSG_DNS_REPLY payloads (dnsmsg.h). A compromised
 * smtpd sends the queries, so mxcache refuses any field out of range;
 * smtpd checks the replies as strictly, since what they say refuses or
 * accepts mail.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "dnsmsg.h"
#include "imsg.h"

int
dns_qtype_ok(uint32_t qtype)
{
	return qtype == DNS_T_A || qtype == DNS_T_AAAA ||
	    qtype == DNS_T_TXT || qtype == DNS_T_PTR || qtype == DNS_T_MX;
}

const char *
dns_qtype_name(uint32_t qtype)
{
	switch (qtype) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_PTR:
		return "PTR";
	case DNS_T_MX:
		return "MX";
	default:
		return "?";
	}
}

const char *
dns_status_name(uint32_t status)
{
	static const char *const names[] = { "ok", "nxdomain", "nodata",
	    "tempfail", "permfail" };

	return status <= DNS_PERMFAIL ? names[status] : "?";
}

static void
reader_init(struct msgread *mr, const void *payload, size_t len)
{
	mr->p = payload;
	mr->len = len;
	mr->off = 0;
	mr->err = 0;
}

int
dns_read_query(const void *payload, size_t len, struct dns_query *q)
{
	struct msgread	mr;
	char		name[MX_NAME_MAX + 2];

	memset(q, 0, sizeof(*q));
	reader_init(&mr, payload, len);
	q->req = mr_u32(&mr);
	q->tag = mr_u32(&mr);
	q->qtype = mr_u32(&mr);
	mr_str(&mr, name, sizeof(name));
	if (mr_end(&mr) == -1 || !dns_qtype_ok(q->qtype) ||
	    mx_domain_normalize(name, q->qname) == -1 ||
	    strcmp(name, q->qname) != 0)
		return -1;
	return 0;
}

void
dns_build_query(struct msgbuild *mb, const struct dns_query *q)
{
	mb_init(mb);
	mb_u32(mb, q->req);
	mb_u32(mb, q->tag);
	mb_u32(mb, q->qtype);
	mb_str(mb, q->qname);
}

int
dns_record_ok(uint32_t qtype, const char *rec, size_t len)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;
	char		 name[MX_NAME_MAX + 1];

	if (len > DNS_RECORD_MAX || rec[len] != '\0')
		return 0;
	switch (qtype) {
	case DNS_T_A:
		return strlen(rec) == len && inet_pton(AF_INET, rec, &a4) == 1;
	case DNS_T_AAAA:
		return strlen(rec) == len && inet_pton(AF_INET6, rec, &a6) == 1;
	case DNS_T_PTR:
	case DNS_T_MX:
		return strlen(rec) == len &&
		    mx_domain_normalize(rec, name) == 0 &&
		    strcmp(rec, name) == 0;
	case DNS_T_TXT:
		return 1;
	default:
		return 0;
	}
}

int
dns_answer_add(struct dns_answer *a, const void *rec, size_t len)
{
	if (a->n == DNS_RECORDS_MAX || len > DNS_RECORD_MAX ||
	    len + 1 > DNS_DATA_MAX - a->used)
		return -1;
	a->off[a->n] = a->used;
	a->len[a->n] = len;
	memcpy(a->data + a->used, rec, len);
	a->data[a->used + len] = '\0';
	a->used += len + 1;
	a->n++;
	return 0;
}

int
dns_read_answer(const void *payload, size_t len, struct dns_answer *a)
{
	struct msgread	 mr;
	const void	*rec;
	uint32_t	 i, n, rlen;

	memset(a, 0, sizeof(*a));
	reader_init(&mr, payload, len);
	a->req = mr_u32(&mr);
	a->tag = mr_u32(&mr);
	a->qtype = mr_u32(&mr);
	a->status = mr_u32(&mr);
	a->ttl = mr_u32(&mr);
	n = mr_u32(&mr);
	if (mr.err || !dns_qtype_ok(a->qtype) || a->status > DNS_PERMFAIL ||
	    n > DNS_RECORDS_MAX || (a->status == DNS_OK) != (n > 0))
		return -1;
	for (i = 0; i < n; i++) {
		rlen = mr_u32(&mr);
		if (mr.err || rlen > DNS_RECORD_MAX ||
		    (rec = mr_data(&mr, rlen)) == NULL ||
		    dns_answer_add(a, rec, rlen) == -1 ||
		    !dns_record_ok(a->qtype, a->data + a->off[i], rlen))
			return -1;
	}
	return mr_end(&mr);
}

void
dns_build_answer(struct msgbuild *mb, const struct dns_answer *a)
{
	uint32_t	i;

	mb_init(mb);
	mb_u32(mb, a->req);
	mb_u32(mb, a->tag);
	mb_u32(mb, a->qtype);
	mb_u32(mb, a->status);
	mb_u32(mb, a->ttl);
	mb_u32(mb, a->n);
	for (i = 0; i < a->n; i++) {
		mb_u32(mb, a->len[i]);
		mb_data(mb, a->data + a->off[i], a->len[i]);
	}
}

/* The labels of an address, last octet or nibble first. */
static int
reverse_labels(const struct sockaddr *sa, char *out, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const struct sockaddr_in6 *sin6 = (const void *)sa;
	const struct sockaddr_in *sin = (const void *)sa;
	const uint8_t		*b;
	size_t			 i, o = 0;

	if (sa->sa_family == AF_INET ||
	    (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))) {
		b = sa->sa_family == AF_INET ?
		    (const uint8_t *)&sin->sin_addr :
		    sin6->sin6_addr.s6_addr + 12;
		return snprintf(out, len, "%u.%u.%u.%u", b[3], b[2], b[1],
		    b[0]) >= (int)len ? -1 : 0;
	}
	if (sa->sa_family != AF_INET6 || len < 64)
		return -1;
	b = sin6->sin6_addr.s6_addr;
	for (i = 16; i-- > 0;) {
		out[o++] = hex[b[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[b[i] >> 4];
		out[o++] = i > 0 ? '.' : '\0';
	}
	return 0;
}

int
dns_reverse_name(const struct sockaddr *sa, const char *zone, char *out,
    size_t len)
{
	char	labels[64];
	int	n;

	if (reverse_labels(sa, labels, sizeof(labels)) == -1)
		return -1;
	n = snprintf(out, len, "%s.%s", labels, zone);
	if (n < 0 || (size_t)n >= len || n > MX_NAME_MAX)
		return -1;
	return 0;
}
