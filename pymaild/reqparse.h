/*
 * Readers of the payloads the parent takes from its helpers: bytes in, a
 * struct out, 0 when the payload has exactly the shape its type says
 * (common/proto.h), -1 when not. They do no I/O and keep no state, so
 * each links alone and is fuzzed (regress/fuzz/reqparse.c). What needs
 * the parent's state (is this session known, is this index listed) is
 * the handler's to check afterwards.
 */
#ifndef PYMAILD_REQPARSE_H
#define PYMAILD_REQPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "authres.h"
#include "proto.h"
#include "userdb.h"

/* The longest names and passwords a helper may pass on. */
#define REQ_USER_MAX		255
#define REQ_PASSWORD_MAX	1023
#define REQ_ADDR_MAX		63
#define REQ_MAILADDR_MAX	511
#define REQ_REASON_MAX		200	/* MX_REASON_MAX */

struct req_hello {
	uint32_t	role;
};

struct req_stats_reply {
	uint32_t	count;
};

struct req_log_reopened {
	uint32_t	generation;
};

/* Holds a password: explicit_bzero it after use. */
struct req_auth {
	uint32_t	reqid;
	char		user[REQ_USER_MAX + 1];
	char		password[REQ_PASSWORD_MAX + 1];
	char		addr[REQ_ADDR_MAX + 1];
};

struct req_rcpt_check {
	uint32_t	reqid;
	char		user[REQ_USER_MAX + 1];
	uint64_t	size;
	uint32_t	tag;
};

/* Holds a password: explicit_bzero it after use. */
struct req_pop3_login {
	uint32_t	sid;
	char		user[REQ_USER_MAX + 1];
	char		password[REQ_PASSWORD_MAX + 1];
	char		addr[REQ_ADDR_MAX + 1];
};

/*
 * A list of u32 entries, not copied: it points into the payload, which
 * outlives the handler's use of it. Read entry i with req_entry().
 */
struct req_list {
	const uint8_t	*p;
	size_t		 n;
};

struct req_pop3_open {
	uint32_t	sid;
	struct req_list	index;		/* at least one */
};

struct req_pop3_update {
	uint32_t	sid;
	uint32_t	more;		/* another UPDATE follows */
	struct req_list	entry;		/* index | POP3_UPDATE_SEEN */
};

struct req_pop3_release {
	uint32_t	sid;
};

struct req_deliver {
	uint32_t	req;
	char		id[QUEUE_ID_LEN + 1];
	char		user[USER_NAME_MAX + 1];
	char		sender[REQ_MAILADDR_MAX + 1];	/* no CR or LF */
	char		rcpt[REQ_MAILADDR_MAX + 1];	/* no CR or LF */
	/* "" or a field authres_field_ok takes, final CRLF added here */
	char		authres[AUTHRES_FIELD_MAX];
};

/* Nothing: the cache comes as the descriptor. */
struct req_mx_save {
	int		unused;
};

struct req_mx_refresh_done {
	uint32_t	domains;
	uint32_t	failed;		/* <= domains */
	char		reason[REQ_REASON_MAX + 1];
};

/* The octets point into the payload; len <= TLS_SIGN_DATA_MAX. What
 * suits the key (algorithm, digest, length) is pymaild/tlskeys.c's to
 * check against it. */
struct req_tls_sign {
	uint32_t	 reqid;
	uint32_t	 generation;
	uint32_t	 index;		/* < TLS_PAIRS_MAX */
	uint32_t	 alg;		/* TLS_SIGN_* */
	uint32_t	 md;
	uint32_t	 len;
	const uint8_t	*data;
};

/* The text points into the payload, len octets: printable, or LF. */
struct req_queue_op_reply {
	uint32_t	 ok;
	const char	*text;
	size_t		 len;
};

int	req_read_queue_op_reply(const void *, size_t,
	    struct req_queue_op_reply *);

/* "name value" lines (proto.h, METRICS_REPLY; the grammar in
 * reqparse.c), NUL-terminated. */
struct req_metrics_reply {
	char		text[METRICS_TEXT_MAX + 1];
};

int	req_read_metrics_reply(const void *, size_t,
	    struct req_metrics_reply *);
/* 1 if every name of a text req_read_metrics_reply took is role's. */
int	req_metrics_names_ok(const char *, enum proc_role);
int	req_read_hello(const void *, size_t, struct req_hello *);
int	req_read_stats_reply(const void *, size_t, struct req_stats_reply *);
int	req_read_log_reopened(const void *, size_t, struct req_log_reopened *);
int	req_read_auth(const void *, size_t, struct req_auth *);
int	req_read_rcpt_check(const void *, size_t, struct req_rcpt_check *);
int	req_read_pop3_login(const void *, size_t, struct req_pop3_login *);
int	req_read_pop3_open(const void *, size_t, struct req_pop3_open *);
int	req_read_pop3_update(const void *, size_t, struct req_pop3_update *);
int	req_read_pop3_release(const void *, size_t,
	    struct req_pop3_release *);
int	req_read_deliver(const void *, size_t, struct req_deliver *);
int	req_read_mx_save(const void *, size_t, struct req_mx_save *);
int	req_read_mx_refresh_done(const void *, size_t,
	    struct req_mx_refresh_done *);

/* RELAY_CRED: outbound asks for the smarthost's credentials. */
struct req_relay_cred {
	uint32_t	req;
};
int	req_read_relay_cred(const void *, size_t, struct req_relay_cred *);

int	req_read_tls_sign(const void *, size_t, struct req_tls_sign *);

/* DELIVER_CANCEL: the id of a removed message, 16 lower-case hex. */
struct req_deliver_cancel {
	char		id[QUEUE_ID_LEN + 1];
};
int	req_read_deliver_cancel(const void *, size_t,
	    struct req_deliver_cancel *);

uint32_t	req_entry(const struct req_list *, size_t i);

#endif
