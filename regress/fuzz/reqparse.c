/*
 * The parent's payload readers (pymaild/reqparse.c): the first byte picks
 * the request type, the rest is its payload. Checked for a payload a
 * reader takes: every string ends within its buffer, holds no byte the
 * reader refuses, and the fields re-encode to exactly the payload (so a
 * count matches the bytes it came from and nothing was skipped).
 */
#include <string.h>

#include "imsg.h"
#include "../../pymaild/reqparse.h"
#include "qop.h"
#include "fuzz.h"

#define STR_OK(s)	(memchr((s), '\0', sizeof(s)) != NULL)

static void
same_bytes(const struct msgbuild *mb, const uint8_t *p, size_t len)
{
	FUZZ_ASSERT(!mb->overflow && mb->len == len);
	FUZZ_ASSERT(memcmp(mb->buf, p, len) == 0);
}

static void
put_list(struct msgbuild *mb, const struct req_list *l, const uint8_t *p,
    size_t len)
{
	size_t	i;

	FUZZ_ASSERT(l->n * sizeof(uint32_t) <= len);
	FUZZ_ASSERT(l->n == 0 || (l->p >= p &&
	    l->p + l->n * sizeof(uint32_t) == p + len));
	for (i = 0; i < l->n; i++)
		mb_u32(mb, req_entry(l, i));
}

static void
check(uint8_t type, const uint8_t *p, size_t len, struct msgbuild *mb)
{
	union {
		struct req_hello		hello;
		struct req_stats_reply		stats;
		struct req_log_reopened		logre;
		struct req_auth			auth;
		struct req_rcpt_check		rcpt;
		struct req_pop3_login		login;
		struct req_pop3_open		open;
		struct req_pop3_update		update;
		struct req_pop3_release		release;
		struct req_deliver		deliver;
		struct req_mx_save		mxsave;
		struct req_mx_refresh_done	mxdone;
		struct req_tls_sign		sign;
		struct req_queue_op_reply	qreply;
		struct req_metrics_reply	metrics;
		struct qop			qop;
		struct req_relay_cred		cred;
		struct req_deliver_cancel	dcancel;
	} r;

	mb_init(mb);
	switch (type) {
	case IMSG_HELLO:
		if (req_read_hello(p, len, &r.hello) == -1)
			return;
		mb_u32(mb, r.hello.role);
		break;
	case IMSG_STATS_REPLY:
		if (req_read_stats_reply(p, len, &r.stats) == -1)
			return;
		mb_u32(mb, r.stats.count);
		break;
	case IMSG_LOG_REOPENED:
		if (req_read_log_reopened(p, len, &r.logre) == -1)
			return;
		mb_u32(mb, r.logre.generation);
		break;
	case IMSG_AUTH:
		if (req_read_auth(p, len, &r.auth) == -1)
			return;
		FUZZ_ASSERT(STR_OK(r.auth.user) && STR_OK(r.auth.password) &&
		    STR_OK(r.auth.addr));
		mb_u32(mb, r.auth.reqid);
		mb_str(mb, r.auth.user);
		mb_str(mb, r.auth.password);
		mb_str(mb, r.auth.addr);
		break;
	case IMSG_RCPT_CHECK:
		if (req_read_rcpt_check(p, len, &r.rcpt) == -1)
			return;
		FUZZ_ASSERT(STR_OK(r.rcpt.user));
		mb_u32(mb, r.rcpt.reqid);
		mb_str(mb, r.rcpt.user);
		mb_u64(mb, r.rcpt.size);
		mb_u32(mb, r.rcpt.tag);
		break;
	case IMSG_POP3_LOGIN:
		if (req_read_pop3_login(p, len, &r.login) == -1)
			return;
		FUZZ_ASSERT(STR_OK(r.login.user) &&
		    STR_OK(r.login.password) && STR_OK(r.login.addr));
		mb_u32(mb, r.login.sid);
		mb_str(mb, r.login.user);
		mb_str(mb, r.login.password);
		mb_str(mb, r.login.addr);
		break;
	case IMSG_POP3_OPEN:
		if (req_read_pop3_open(p, len, &r.open) == -1)
			return;
		FUZZ_ASSERT(r.open.index.n >= 1);
		mb_u32(mb, r.open.sid);
		put_list(mb, &r.open.index, p, len);
		break;
	case IMSG_POP3_UPDATE:
		if (req_read_pop3_update(p, len, &r.update) == -1)
			return;
		mb_u32(mb, r.update.sid);
		mb_u32(mb, r.update.more);
		put_list(mb, &r.update.entry, p, len);
		break;
	case IMSG_POP3_RELEASE:
		if (req_read_pop3_release(p, len, &r.release) == -1)
			return;
		mb_u32(mb, r.release.sid);
		break;
	case IMSG_DELIVER:
		if (req_read_deliver(p, len, &r.deliver) == -1)
			return;
		FUZZ_ASSERT(STR_OK(r.deliver.id) && STR_OK(r.deliver.user) &&
		    STR_OK(r.deliver.sender) && STR_OK(r.deliver.rcpt));
		FUZZ_ASSERT(strpbrk(r.deliver.sender, "\r\n") == NULL &&
		    strpbrk(r.deliver.rcpt, "\r\n") == NULL);
		FUZZ_ASSERT(r.deliver.authres[0] == '\0' ||
		    authres_field_ok(r.deliver.authres));
		mb_u32(mb, r.deliver.req);
		mb_str(mb, r.deliver.id);
		mb_str(mb, r.deliver.user);
		mb_str(mb, r.deliver.sender);
		mb_str(mb, r.deliver.rcpt);
		/* as it came: without the final CRLF the reader added */
		if (r.deliver.authres[0] != '\0')
			r.deliver.authres[strlen(r.deliver.authres) - 2] = '\0';
		mb_str(mb, r.deliver.authres);
		break;
	case IMSG_MX_SAVE:
		if (req_read_mx_save(p, len, &r.mxsave) == -1)
			return;
		break;
	case IMSG_MX_REFRESH_DONE:
		if (req_read_mx_refresh_done(p, len, &r.mxdone) == -1)
			return;
		FUZZ_ASSERT(STR_OK(r.mxdone.reason));
		FUZZ_ASSERT(r.mxdone.failed <= r.mxdone.domains);
		mb_u32(mb, r.mxdone.domains);
		mb_u32(mb, r.mxdone.failed);
		mb_str(mb, r.mxdone.reason);
		break;
	case IMSG_QUEUE_OP_REPLY:
		if (req_read_queue_op_reply(p, len, &r.qreply) == -1)
			return;
		FUZZ_ASSERT(r.qreply.ok <= 1 &&
		    memchr(r.qreply.text, '\0', r.qreply.len) == NULL);
		mb_u32(mb, r.qreply.ok);
		mb_u32(mb, r.qreply.len);
		mb_data(mb, r.qreply.text, r.qreply.len);
		break;
	case IMSG_METRICS_REPLY:
		if (req_read_metrics_reply(p, len, &r.metrics) == -1)
			return;
		FUZZ_ASSERT(strspn(r.metrics.text, "abcdefghijklmnopqrstuvwxyz"
		    "0123456789_ \n{}=\".+-I") == strlen(r.metrics.text));
		/* the names check walks lines the reader let through */
		(void)req_metrics_names_ok(r.metrics.text, PROC_SMTPD);
		(void)req_metrics_names_ok(r.metrics.text, PROC_QUEUED);
		mb_str(mb, r.metrics.text);
		break;
	case IMSG_CTL_QUEUE:
	case IMSG_QUEUE_OP:
		if (qop_read(p, len, type == IMSG_QUEUE_OP, &r.qop) == -1)
			return;
		FUZZ_ASSERT(r.qop.match != QMATCH_ID || (r.qop.nids >= 1 &&
		    qop_id_ok(r.qop.ids[r.qop.nids - 1])));
		FUZZ_ASSERT((r.qop.op == QOP_SYNC) ==
		    (r.qop.match == QMATCH_NONE));
		qop_build(mb, &r.qop, type == IMSG_QUEUE_OP);
		break;
	case IMSG_TLS_SIGN:
		if (req_read_tls_sign(p, len, &r.sign) == -1)
			return;
		FUZZ_ASSERT(r.sign.len >= 1 && r.sign.len <=
		    TLS_SIGN_DATA_MAX && r.sign.index < TLS_PAIRS_MAX);
		mb_u32(mb, r.sign.reqid);
		mb_u32(mb, r.sign.generation);
		mb_u32(mb, r.sign.index);
		mb_u32(mb, r.sign.alg);
		mb_u32(mb, r.sign.md);
		mb_u32(mb, r.sign.len);
		mb_data(mb, r.sign.data, r.sign.len);
		break;
	case IMSG_RELAY_CRED:
		if (req_read_relay_cred(p, len, &r.cred) == -1)
			return;
		mb_u32(mb, r.cred.req);
		break;
	case IMSG_DELIVER_CANCEL:
		if (req_read_deliver_cancel(p, len, &r.dcancel) == -1)
			return;
		FUZZ_ASSERT(qop_id_ok(r.dcancel.id));
		mb_str(mb, r.dcancel.id);
		break;
	default:
		return;
	}
	same_bytes(mb, p, len);
}

FUZZ_ENTRY(reqparse)
{
	static struct msgbuild	 mb;

	/* The input itself, not a copy: reading past it is caught. */
	if (size < 1 || size - 1 > IMSG_DATA_MAX)
		return 0;
	check(data[0], data + 1, size - 1, &mb);
	return 0;
}
