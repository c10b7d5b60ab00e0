/*
 * The parent's payload readers (see reqparse.h). Each reads its fields in
 * wire order with common/imsg.c's msgread, which checks every length
 * against what is left and every string for a NUL, then insists that
 * nothing is left over.
 */
#include <string.h>

#include "imsg.h"
#include "mxlookup.h"
#include "qop.h"
#include "reqparse.h"

_Static_assert(REQ_REASON_MAX == MX_REASON_MAX, "reason sizes differ");

static void
req_begin(struct msgread *mr, const void *payload, size_t len)
{
	mr->p = payload;
	mr->len = len;
	mr->off = 0;
	mr->err = 0;
}

/* The rest of the payload as u32 entries: a whole number of them. */
static int
req_rest(struct msgread *mr, struct req_list *l)
{
	size_t	left;

	if (mr->err)
		return -1;
	left = mr->len - mr->off;
	if (left % sizeof(uint32_t) != 0)
		return -1;
	l->n = left / sizeof(uint32_t);
	l->p = mr_data(mr, left);
	return 0;
}

uint32_t
req_entry(const struct req_list *l, size_t i)
{
	uint32_t	v;

	memcpy(&v, l->p + i * sizeof(v), sizeof(v));
	return v;
}

int
req_read_hello(const void *payload, size_t len, struct req_hello *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->role = mr_u32(&mr);
	return mr_end(&mr);
}

int
req_read_stats_reply(const void *payload, size_t len,
    struct req_stats_reply *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->count = mr_u32(&mr);
	return mr_end(&mr);
}

int
req_read_log_reopened(const void *payload, size_t len,
    struct req_log_reopened *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->generation = mr_u32(&mr);
	return mr_end(&mr);
}

int
req_read_auth(const void *payload, size_t len, struct req_auth *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->reqid = mr_u32(&mr);
	mr_str(&mr, r->user, sizeof(r->user));
	mr_str(&mr, r->password, sizeof(r->password));
	mr_str(&mr, r->addr, sizeof(r->addr));
	return mr_end(&mr);
}

int
req_read_rcpt_check(const void *payload, size_t len,
    struct req_rcpt_check *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->reqid = mr_u32(&mr);
	mr_str(&mr, r->user, sizeof(r->user));
	r->size = mr_u64(&mr);
	r->tag = mr_u32(&mr);
	return mr_end(&mr);
}

int
req_read_pop3_login(const void *payload, size_t len,
    struct req_pop3_login *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->sid = mr_u32(&mr);
	mr_str(&mr, r->user, sizeof(r->user));
	mr_str(&mr, r->password, sizeof(r->password));
	mr_str(&mr, r->addr, sizeof(r->addr));
	return mr_end(&mr);
}

/* A session id, then the indexes to open: asking for none is no request. */
int
req_read_pop3_open(const void *payload, size_t len, struct req_pop3_open *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->sid = mr_u32(&mr);
	if (req_rest(&mr, &r->index) == -1 || r->index.n == 0)
		return -1;
	return mr_end(&mr);
}

/* A session id, whether more follows, then any number of entries. */
int
req_read_pop3_update(const void *payload, size_t len,
    struct req_pop3_update *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->sid = mr_u32(&mr);
	r->more = mr_u32(&mr);
	if (req_rest(&mr, &r->entry) == -1)
		return -1;
	return mr_end(&mr);
}

int
req_read_pop3_release(const void *payload, size_t len,
    struct req_pop3_release *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->sid = mr_u32(&mr);
	return mr_end(&mr);
}

/* The addresses go into a header line: no line breaks in them. */
int
req_read_deliver(const void *payload, size_t len, struct req_deliver *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->req = mr_u32(&mr);
	mr_str(&mr, r->id, sizeof(r->id));
	mr_str(&mr, r->user, sizeof(r->user));
	mr_str(&mr, r->sender, sizeof(r->sender));
	mr_str(&mr, r->rcpt, sizeof(r->rcpt));
	mr_str(&mr, r->authres, sizeof(r->authres) - 2);
	if (mr_end(&mr) == -1 || strpbrk(r->sender, "\r\n") != NULL ||
	    strpbrk(r->rcpt, "\r\n") != NULL)
		return -1;
	if (r->authres[0] == '\0')
		return 0;
	strlcat(r->authres, "\r\n", sizeof(r->authres));
	return authres_field_ok(r->authres) ? 0 : -1;
}

int
req_read_mx_save(const void *payload, size_t len, struct req_mx_save *r)
{
	(void)payload;
	r->unused = 0;
	return len == 0 ? 0 : -1;
}

int
req_read_mx_refresh_done(const void *payload, size_t len,
    struct req_mx_refresh_done *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->domains = mr_u32(&mr);
	r->failed = mr_u32(&mr);
	mr_str(&mr, r->reason, sizeof(r->reason));
	if (mr_end(&mr) == -1 || r->failed > r->domains)
		return -1;
	return 0;
}

int
req_read_tls_sign(const void *payload, size_t len, struct req_tls_sign *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->reqid = mr_u32(&mr);
	r->generation = mr_u32(&mr);
	r->index = mr_u32(&mr);
	r->alg = mr_u32(&mr);
	r->md = mr_u32(&mr);
	r->len = mr_u32(&mr);
	if (mr.err || r->len == 0 || r->len > TLS_SIGN_DATA_MAX ||
	    r->index >= TLS_PAIRS_MAX || r->alg < TLS_SIGN_RSA_PKCS1 ||
	    r->alg > TLS_SIGN_ECDSA)
		return -1;
	r->data = mr_data(&mr, r->len);
	return mr_end(&mr);
}

int
req_read_queue_op_reply(const void *payload, size_t len,
    struct req_queue_op_reply *r)
{
	struct msgread	mr;
	uint32_t	n;
	size_t		i;

	req_begin(&mr, payload, len);
	r->ok = mr_u32(&mr);
	n = mr_u32(&mr);
	if (mr.err || r->ok > 1 || n != mr.len - mr.off)
		return -1;
	r->text = (const char *)mr_data(&mr, n);
	r->len = n;
	if (mr_end(&mr) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if ((r->text[i] < 0x20 && r->text[i] != '\n') ||
		    r->text[i] == 0x7f)
			return -1;
	return 0;
}

#define METRIC_NAME_CHARS	"abcdefghijklmnopqrstuvwxyz0123456789_"
#define METRIC_LABEL_CHARS	"abcdefghijklmnopqrstuvwxyz_"
#define METRIC_LVALUE_CHARS	"abcdefghijklmnopqrstuvwxyz0123456789_.+-I"

/* {label="value"}: returns its length, 0 if malformed. */
static size_t
metrics_label_len(const char *t)
{
	size_t	label, value;

	if (*t != '{')
		return 0;
	label = strspn(t + 1, METRIC_LABEL_CHARS);
	if (label == 0 || label > 16 || strncmp(t + 1 + label, "=\"", 2))
		return 0;
	t += 1 + label + 2;
	value = strspn(t, METRIC_LVALUE_CHARS);
	if (value == 0 || value > 32 || strncmp(t + value, "\"}", 2))
		return 0;
	return 1 + label + 2 + value + 2;
}

/*
 * Each line "name value\n" or "name{label=\"v\"} value\n": a name of
 * [a-z0-9_], a label of [a-z_], a label value of [a-z0-9_.+-] or +Inf,
 * a decimal value (digits, or digits, a point and up to 6 digits).
 */
static int
metrics_lines_ok(const char *t)
{
	size_t	name, value, frac;

	while (*t) {
		name = strspn(t, METRIC_NAME_CHARS);
		if (name == 0 || name > 64)
			return 0;
		t += name;
		if (*t == '{') {
			if ((name = metrics_label_len(t)) == 0)
				return 0;
			t += name;
		}
		if (*t++ != ' ')
			return 0;
		value = strspn(t, "0123456789");
		if (value == 0 || value > 20)
			return 0;
		t += value;
		if (*t == '.') {
			frac = strspn(t + 1, "0123456789");
			if (frac == 0 || frac > 6)
				return 0;
			t += 1 + frac;
		}
		if (*t++ != '\n')
			return 0;
	}
	return 1;
}

/*
 * Whose names these are: smtpd's begin "smtp_", pop3d's "pop3_", and
 * queued's neither, so that no helper answers for another (or for the
 * parent's uptime_seconds and outbound_attempts).
 */
int
req_metrics_names_ok(const char *t, enum proc_role role)
{
	const char	*own = role == PROC_SMTPD ? "smtp_" :
			    role == PROC_POP3D ? "pop3_" : NULL;
	const char	*line;

	for (line = t; *line; line = strchr(line, '\n') + 1) {
		if (own != NULL && strncmp(line, own, 5) != 0)
			return 0;
		if (own == NULL && (strncmp(line, "smtp_", 5) == 0 ||
		    strncmp(line, "pop3_", 5) == 0 ||
		    strncmp(line, "uptime_seconds", 14) == 0 ||
		    strncmp(line, "outbound_attempts", 17) == 0))
			return 0;
	}
	return 1;
}

int
req_read_metrics_reply(const void *payload, size_t len,
    struct req_metrics_reply *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	mr_str(&mr, r->text, sizeof(r->text));
	if (mr_end(&mr) == -1)
		return -1;
	return metrics_lines_ok(r->text) ? 0 : -1;
}

int
req_read_relay_cred(const void *payload, size_t len, struct req_relay_cred *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	r->req = mr_u32(&mr);
	return mr_end(&mr);
}

int
req_read_deliver_cancel(const void *payload, size_t len,
    struct req_deliver_cancel *r)
{
	struct msgread	mr;

	req_begin(&mr, payload, len);
	mr_str(&mr, r->id, sizeof(r->id));
	if (mr_end(&mr) == -1 || !qop_id_ok(r->id))
		return -1;
	return 0;
}
