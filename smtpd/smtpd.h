/*
 * smtpd: SMTP sessions (DESIGN.md A4, A7).
 */
#ifndef PYMAILD_SMTPD_H
#define PYMAILD_SMTPD_H

#include <sys/socket.h>
#include <sys/tree.h>

#include <event.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "addr.h"
#include "authres.h"
#include "chan.h"
#include "metrics.h"
#include "proto.h"
#include "userdb.h"

#define SMTP_CMD_MAX	512		/* octets, CRLF included (RFC 5321) */
#define SMTP_TEXT_MAX	998		/* a DATA line, CRLF excluded */
#define SMTP_INBUF	4096
#define SMTP_OUT_HIGH	(64 * 1024)	/* stop reading while replies pile */
#define SMTP_MAX_RCPTS	100
#define SMTP_MAX_ERRORS	10
#define SMTP_MAX_AUTHFAIL 3	/* failed AUTHs before we hang up */
#define SMTP_DATABUF	(64 * 1024)
#define SMTP_MAX_RECEIVED 100		/* hops before a loop (RFC 5321 6.3) */

enum smtp_cmd {
	CMD_UNKNOWN, CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA,
	CMD_RSET, CMD_NOOP, CMD_QUIT, CMD_VRFY, CMD_EXPN, CMD_HELP,
	CMD_AUTH, CMD_STARTTLS, CMD_BDAT
};

enum smtp_state {
	ST_CONNECTED,	/* before HELO/EHLO */
	ST_IDLE,	/* greeted, no transaction */
	ST_MAIL,	/* MAIL accepted */
	ST_RCPT,	/* at least one RCPT accepted */
	ST_DATA,	/* reading the message */
	ST_AUTH_PLAIN,	/* waiting for the PLAIN response */
	ST_AUTH_USER,	/* LOGIN: waiting for the user name */
	ST_AUTH_PASS,	/* LOGIN: waiting for the password */
	ST_CLOSING
};

/* What the session waits for before it reads on. */
enum smtp_wait {
	WAIT_NONE, WAIT_RCPT, WAIT_AUTH, WAIT_SPOOL, WAIT_SIZES, WAIT_COMMIT,
	WAIT_DELAY,
	WAIT_GREET,	/* the 220 waits: greetdelay, blocklists */
	WAIT_TLS,	/* STARTTLS answered, or the handshake under way */
	WAIT_CHECKS	/* end of DATA: SPF, DKIM, DMARC not all in */
};

struct mailparams {
	long long	size;		/* -1 when not given */
	int		body8bit;
	int		smtputf8;
};

struct rcpt {
	char	address[ADDR_PATH_MAX];	/* local@domain */
	char	user[USER_NAME_MAX + 1];	/* "" for remote */
	int	failed;			/* at end of DATA: RCPT_* */
	char	reason[128];
};

/* The DATA reader's state across reads. */
struct dataread {
	int		bol;		/* at the start of a line */
	int		cr;		/* the previous byte was CR */
	int		dot;		/* line began with a dot (held back) */
	size_t		linelen;
	long long	size;		/* unstuffed octets */
	int		bare;		/* saw a bare CR or LF */
	int		toolong;	/* a line over 998 octets */
	int		toobig;		/* over smtpmaxmailsize */
	int		refused;	/* any of the above: store no more */
	int		nul;		/* saw a NUL octet */
	int		ioerr;		/* errno of a failed spool write */
	int		inbody;		/* past the header section */
	size_t		hdrpos;		/* octets into this header line */
	unsigned int	hdrcand;	/* fields this line may still name */
	int		received;	/* Received: lines in the header */
	int		has_date;	/* a Date: field in the header */
	int		has_msgid;	/* a Message-ID: field */
	int		hdrseen;	/* its end was reported */
	int		hdrend;		/* the scan stopped at the header's end
					 * (its empty line last in buf); the
					 * caller clears it */
	unsigned char	*buf;
	size_t		 buflen;
	/*
	 * Authentication-Results fields in our name arrive forged: each
	 * such field is held in buf until it ends, then dropped if it is
	 * ours (authserv_id). In the header nothing from linestart (or the
	 * held field's start) on may be written out yet.
	 */
	char		 authserv_id[256];	/* "": keep every field */
	int		 ended;		/* smtp_data_end: all may go */
	size_t		 linestart;	/* buflen at this header line */
	int		 ar_hold;	/* the field is one being held */
	size_t		 ar_start;	/* buflen where it began */
	int		 ar_dropping;	/* too long: its octets are dropped */
	int		 ar_removed;	/* fields dropped */
};

struct session {
	RB_ENTRY(session)	 entry;
	uint32_t		 id;
	char			 sid[17];
	int			 fd;
	struct sockaddr_storage	 peer;
	char			 peeraddr[64];
	struct event		 ev_read, ev_write, ev_timer;
	int			 reading, writing;
	struct evbuffer		*out;

	enum smtp_state		 state;
	enum smtp_wait		 wait;
	int			 esmtp;
	int			 errors;
	int			 authfails;
	char			 helo[256];
	char			 authuser[USER_NAME_MAX + 1];
	char			 authname[256];	/* LOGIN user, pending */
	int			 authenticated;
	int			 noauth_ok;	/* client in noauthhosts */
	int			 kind;		/* its listener: LISTEN_* */
	int			 submission;	/* AUTH before MAIL, in TLS */
	struct dnsbl_check	*bl;		/* before the greeting */
	struct spfcheck		*spfc;		/* MAIL FROM to the end of DATA */
	struct msgcheck		*mc;		/* end of DATA: DKIM, DMARC */
	off_t			 msgstart;	/* after our Received: */
	char			 authres[AUTHRES_FIELD_MAX];	/* or "" */
	int			 blocked;	/* 554 at connect: QUIT only */

	/* TLS: ssl is NULL in plaintext */
	SSL			*ssl;
	int			 tls_handshake;	/* under way */
	int			 tls_starting;	/* once the 220 is out */
	int			 tls_write_on_read; /* a read wants writable */
	char			 tls_version[16];
	char			 tls_cipher[64];

	unsigned char		 in[SMTP_INBUF];
	size_t			 inlen;
	int			 discard;	/* rest of an overlong line */
	int			 eof;
	int			 dead;		/* ended, memory freed soon */

	/* the transaction */
	char			 from[ADDR_PATH_MAX];
	int			 has_from;
	struct mailparams	 params;
	struct rcpt		*rcpts;
	size_t			 nrcpts;
	struct rcpt		 pending;	/* RCPT being checked */
	size_t			 sizechecks;	/* end of DATA checks left */
	char			 qid[QUEUE_ID_LEN + 1];
	int			 spoolfd;
	int			 spoolasked;	/* a spool file is on its way */
	struct dataread		 dr;
	struct timespec		 dot_at;	/* end of DATA read, for the
						 * latency of the reply */
};

RB_HEAD(sessiontree, session);
RB_PROTOTYPE(sessiontree, session, entry, session_cmp);

/* smtpd.c */
extern struct chan	 queued_chan;
int	session_cmp(struct session *, struct session *);
struct session *session_find(uint32_t id);
void	smtpd_session_closed(struct session *);
void	smtpd_send_parent(uint32_t type, struct msgbuild *);
void	smtpd_send_queued(uint32_t type, struct msgbuild *);
void	smtpd_spool_abort(uint32_t sess, const char *id);
void	smtpd_send_mxcache(uint32_t type, struct msgbuild *);
void	smtpd_dns_ask(uint32_t req, uint32_t tag, uint32_t qtype,
	    const char *qname);

/* dnsbl.c: the blocklists and the greeting delay (port 25 only) */
struct dns_answer;
/* 1 when the greeting waits (s->wait = WAIT_GREET), 0 to send it now. */
int	dnsbl_start(struct session *);
void	dnsbl_on_answer(const struct dns_answer *);
/* Input or EOF while WAIT_GREET. */
void	dnsbl_talked_first(struct session *);
void	dnsbl_free(struct session *);

/*
 * The tag of an smtpd DNS question says whose it is: the blocklists use
 * small numbers, SPF this bit and a sequence number.
 */
#define DNS_TAG_SPF	0x40000000u
#define DNS_TAG_DKIM	0x20000000u	/* | the signature's index */
#define DNS_TAG_DMARC	0x30000000u	/* | a sequence number */
#define DNS_TAG_SEQ	0xffffu

/* spfcheck.c: SPF of mail received on port 25 */
void	spfcheck_start(struct session *);
void	spfcheck_on_answer(const struct dns_answer *);
int	spfcheck_pending(const struct session *);
const char *spfcheck_result(const struct session *);
const char *spfcheck_explain(const struct session *);
/* 1 and the reply when `spfreject` refuses the message (an SPF fail). */
int	spfcheck_refusal(const struct session *, char *, size_t);
void	spfcheck_free(struct session *);
struct authres;
void	spfcheck_authres(const struct session *, struct authres *);

/* msgcheck.c: DKIM and DMARC of mail received on port 25 */
struct dmarc_verdict;
/* At the 354, then each run of octets as it is written to the spool,
 * then at the end of DATA (1: the checks wait for DNS). */
void	msgcheck_data_begin(struct session *, off_t skip);
void	msgcheck_data(struct session *, const char *, size_t);
int	msgcheck_start(struct session *);
void	msgcheck_on_answer(const struct dns_answer *);
int	msgcheck_pending(const struct session *);
int	msgcheck_from_refusal(const struct session *, char *, size_t);
void	msgcheck_authres(const struct session *, struct authres *,
	    const char *spf_domain, int spf_pass, struct dmarc_verdict *);
void	msgcheck_free(struct session *);
/* The SPF identity and whether it passed, for DMARC. */
const char *spfcheck_domain(const struct session *, int *pass);

/* session.c */
void	session_on_checks_done(struct session *);
struct session *session_new(int fd, struct sockaddr_storage *, socklen_t,
	    int kind);
/* The greeting, or the TLS handshake first; may end the session. */
void	session_start(struct session *);
/* The greeting (220 or 554) is queued: on with the session. */
void	session_greeted(struct session *);
void	session_end(struct session *);
void	session_reply(struct session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_close_with(struct session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_on_rcpt_reply(struct session *, uint32_t result);
void	session_on_size_reply(struct session *, uint32_t idx,
	    uint32_t result);
void	session_on_auth_reply(struct session *, uint32_t result,
	    uint32_t delay_ms);
void	session_on_spool(struct session *, const char *id, int fd);
void	session_on_commit(struct session *, const char *id, uint32_t result);

/* metrics.c: counted where each event happens, read by IMSG_METRICS */
struct smtp_counters {
	uint64_t		connections[3];	/* smtp, submission, smtps */
	uint64_t		auth_ok, auth_failed, auth_blocked;
	uint64_t		accepted;	/* 250 after the dot */
	struct histogram	data_latency;	/* the dot read to the 250 */
};
extern struct smtp_counters	smtpcount;
/* reason: one of the words of metrics.c's table (else counted "other") */
void	smtp_refused(const char *reason);
void	smtp_refused_verdict(uint32_t verdict);
void	smtp_connected(int kind);
void	smtpd_metrics(struct mtext *);

/* parse.c: pure functions */
enum smtp_cmd	smtp_parse_command(char *line, char **arg);
/* "FROM:<path> params" / "TO:<path> params": 0 ok, else an SMTP reply. */
const char	*smtp_parse_path_arg(char *arg, const char *keyword,
		    int flags, struct mailaddr *a, char **params);
const char	*smtp_parse_mail_params(char *params, struct mailparams *mp);
const char	*smtp_parse_rcpt_params(char *params);

/* data.c: pure. Start reading DATA into buf, at the start of a line and
 * of the header section. */
void		 smtp_data_start(struct dataread *dr, unsigned char *buf);
/* Unstuff up to n bytes of DATA into dr->buf (bufcap
 * octets), counting them in dr->size; returns the bytes used: fewer when
 * the buffer is full (under two octets left), at the end of the header
 * section (dr->hdrend set) or at the end of data, "<CRLF>.<CRLF>" (*end
 * set; the rest is the next command). */
/* The data is over: a field still held is judged. */
void		 smtp_data_end(struct dataread *dr);
/* How much of buf may be written out now (the rest is held). */
size_t		 smtp_data_flushable(const struct dataread *dr);
size_t		 smtp_data_frame(struct dataread *dr, const unsigned char *p,
		    size_t n, size_t bufcap, int *end);

#endif
