/*
 * pop3d: POP3 sessions (DESIGN.md A5), unprivileged and chrooted. The
 * mailbox lives with the parent: pop3d asks it to log in (which locks and
 * lists the mailbox), to open message n (a read-only descriptor comes
 * back) and to apply the deletions at QUIT. The payloads of those
 * messages are documented in pymaild/mailbox.c.
 */
#ifndef PYMAILD_POP3D_H
#define PYMAILD_POP3D_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/tree.h>

#include <event.h>
#include <stdint.h>

#include "imsg.h"
#include "proto.h"
#include "userdb.h"

/* RFC 2449: a command is at most 255 octets with its CRLF. */
#define POP3_CMD_MAX	253
/* A SASL response line may be longer than a command (RFC 5034 §4). */
#define POP3_IBUF	1024
/*
 * What one session may have waiting for the client: a small buffer for
 * the answer lines, a large one only while a multi-line answer is being
 * sent (fewer, larger writes), given back when the session waits again.
 */
#define POP3_OBUF_SMALL	2048
#define POP3_OBUF_LARGE	65536
/* Room kept free before an answer line is started. */
#define POP3_LINE_ROOM	512
#define POP3_BAD_MAX	20	/* bad commands before we hang up */
#define POP3_AUTHFAIL_MAX 3	/* failed logins before we hang up */
#define POP3_UID_MAX	70	/* RFC 1939 unique-id-listing */
#define POP3_PASS_MAX	1023	/* what the parent accepts */

#define POP3_UPDATE_BATCH	4000	/* entries per IMSG_POP3_UPDATE */
#define POP3_SLOTS	33	/* descriptors asked for, per session */
#define POP3_HELD_MAX	256	/* ... and asked for ahead, in all */
#define POP3_PRELOAD_MAX 16384	/* read ahead into memory, at most */
#define POP3_CLOSE_BATCH 32	/* descriptors closed together */

enum pop3_state {
	ST_AUTH,	/* AUTHORIZATION: USER, PASS, AUTH */
	ST_SASL,	/* AUTH PLAIN sent "+ ", waiting for the response */
	ST_LOGIN,	/* IMSG_POP3_LOGIN sent */
	ST_LISTING,	/* logged in, the listing is arriving */
	ST_TRANS,	/* TRANSACTION */
	ST_UPDATE,	/* QUIT: IMSG_POP3_UPDATE sent */
	ST_CLOSING	/* say the last words, then hang up */
};

/* What holds the command loop besides a full output buffer. */
enum pop3_wait {
	WAIT_NONE,
	WAIT_TLS,	/* STLS answered, or the handshake under way */
	WAIT_PARENT,	/* a reply from the parent */
	WAIT_DELAY,	/* the failed-login delay */
	WAIT_PRODUCE	/* a multi-line answer is being written */
};

/* One message of the locked mailbox, in listing order. */
struct pop3_msg {
	uint64_t	size;		/* octets RETR sends */
	uint32_t	uidoff;		/* into session.uids */
	uint8_t		uidlen;
	uint8_t		deleted;
	uint8_t		retrieved;	/* sent in full by RETR */
};

/* A message descriptor asked of the parent (open.c). */
enum pf_state {
	PF_FREE,
	PF_PENDING,
	PF_READY,
	PF_FAILED
};

/* Where a message's octets come from: its descriptor, or the octets
 * themselves once read ahead (data). */
struct msgsrc {
	int		fd;
	char		*data;
	uint64_t	size;
};

struct prefetch {
	enum pf_state	state;
	uint32_t	index;
	struct msgsrc	src;
};

/*
 * A message on its way out: LF becomes CRLF, a leading '.' is doubled,
 * and TOP stops after the header and `left` body lines.
 */
struct xfer {
	struct msgsrc	src;
	off_t		off;		/* next offset to read */
	int		bol;		/* at the start of a line */
	int		cr;		/* last octet sent was CR */
	size_t		linelen;	/* octets of the current line */
	int		top;
	int		inbody;
	uint64_t	left;		/* TOP: body lines still to send */
	int		eof;		/* nothing more to read */
	int		done;		/* terminator written */
};

/* Multi-line answers written as the output buffer drains. */
enum pop3_prod {
	PROD_NONE,
	PROD_LIST,
	PROD_UIDL,
	PROD_XFER
};

struct ipcount;
struct pop3_cmd;
struct ssl_st;

struct session {
	RB_ENTRY(session) entry;
	uint32_t	 id;
	int		 fd;
	struct event	 ev;
	short		 evflags;
	struct event	 timer;
	int		 timer_on;
	struct ipcount	*ip;
	char		 addr[64];
	struct sockaddr_storage peer;
	int		 kind;		/* its listener: LISTEN_* */

	/* TLS: ssl is NULL in plaintext */
	struct ssl_st	*ssl;
	int		 tls_handshake;	/* under way */
	int		 tls_starting;	/* once the +OK is out */
	int		 tls_want_write; /* the handshake or a read wants it */
	char		 tls_version[16];
	char		 tls_cipher[64];

	enum pop3_state	 state;
	enum pop3_wait	 wait;
	int		 eof;		/* the client closed its side */
	int		 discard;	/* skipping a line too long */
	int		 nbad;
	int		 nauthfail;
	int		 delayed;	/* login result, told later */
	int		 haveuser;
	char		 user[POP3_CMD_MAX + 1];
	int		 locked;	/* the parent holds our mailbox */
	int		 dead;		/* hang up now, silently */
	int		 activity;	/* the client made progress */

	struct pop3_msg	*msgs;
	uint32_t	 nmsgs;		/* in the snapshot */
	uint32_t	 nlisted;	/* received so far */
	char		*uids;
	size_t		 uidslen, uidscap;
	uint32_t	 ndel;
	uint64_t	 total;		/* octets of all messages */
	uint64_t	 delsize;	/* octets of the deleted ones */
	uint32_t	 nretr;

	/* The message RETR or TOP is sending, or waiting for. */
	uint32_t	 xfer_index;
	int		 xfer_top;
	uint64_t	 xfer_lines;
	int		 opening;	/* waiting for its descriptor */
	struct prefetch	 pf[POP3_SLOTS];
	uint32_t	 asking[POP3_SLOTS];	/* to send in one request */
	int		 nasking;

	enum pop3_prod	 prod;
	uint32_t	 prodpos;
	struct xfer	 xfer;

	size_t		 ilen;
	size_t		 inrun;		/* octets of the line being run */
	size_t		 olen, ooff;
	char		 ibuf[POP3_IBUF];
	char		*obuf;		/* sbuf, or a large one */
	size_t		 ocap;
	char		 sbuf[POP3_OBUF_SMALL];
};

/* pop3d.c */
extern struct event_base *pop3_base;
int		 pop3_timeout(void);
struct session	*session_find(uint32_t id);
void		 session_register(struct session *);
void		 session_unregister(struct session *);
void		 pop3_send(uint32_t type, struct msgbuild *);

/* session.c */
void	session_start(int fd, const char *addr, struct ipcount *,
	    const struct sockaddr_storage *, int kind);
/* STLS answered: the handshake once the answer is out. */
void	session_starttls(struct session *);
/* May USER, PASS and AUTH be taken on this connection? */
int	session_auth_allowed(const struct session *);
/* Can STLS be offered? */
int	session_tls_offered(const struct session *);
/* Run commands, write, and re-arm; may free s, so it comes last. */
void	session_update(struct session *);
int	session_printf(struct session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
size_t	session_room(const struct session *);
/* Take the large output buffer for a multi-line answer. */
void	session_grow(struct session *);
/* Arm the session timer for ms milliseconds (the failed-login delay). */
void	session_delay(struct session *, uint32_t ms);
/*
 * The commands waiting in the input behind the one being run, parsed,
 * handed to fn in order until it returns 0 or max were seen. For guesses
 * only: each is parsed again, and checked, in its turn.
 */
void	session_lookahead(struct session *, int max,
	    int (*fn)(struct session *, const struct pop3_cmd *));

/* commands.c */
void	session_greet(struct session *);
void	command_line(struct session *, char *line, size_t len);
/* The line at the head did not fit in the input buffer. */
void	command_toolong(struct session *);
void	command_delayed(struct session *);
void	command_timeout(struct session *);
/* Write more of a multi-line answer; 1 when it is finished. */
int	produce(struct session *);
/* The session ends: tell the parent what it must let go. */
void	session_release(struct session *);
int	reply_login(uint32_t id, struct msgread *);
int	reply_listing(uint32_t id, struct msgread *);
int	reply_update(uint32_t id, struct msgread *);

/* open.c */
/* Send message index (RETR, or TOP with lines) once its descriptor is in. */
void	msg_open(struct session *, uint32_t index, int top, uint64_t lines);
void	msg_sent(struct session *);
/* Idle while the client reads: read the next small message ahead. */
void	msg_preload(struct session *);
/* Give back every descriptor the session holds. */
void	msg_forget(struct session *);
/* Close the descriptors given back so far. */
void	msg_close_done(void);
int	reply_open(uint32_t id, struct msgread *, int fd);

/* xfer.c: pure functions over bounded buffers */
/* Send from src; the caller owns what it holds. */
void	xfer_init(struct xfer *, const struct msgsrc *, int top,
	    uint64_t lines);
/* Convert in[0..inlen) into out (room outlen); returns octets of in used,
 * *outn octets written. At in == NULL (end of file) finish the message. */
size_t	xfer_convert(struct xfer *, const char *in, size_t inlen,
	    char *out, size_t outlen, size_t *outn);

/* parse.c: the command parser, pure (no I/O, no session) */
enum pop3_verb {
	POP3_NONE,	/* not a command: error says why */
	POP3_CAPA,
	POP3_USER,
	POP3_PASS,
	POP3_AUTH,
	POP3_QUIT,
	POP3_NOOP,
	POP3_STAT,
	POP3_LIST,
	POP3_UIDL,
	POP3_RETR,
	POP3_TOP,
	POP3_DELE,
	POP3_RSET,
	POP3_STLS,	/* RFC 2595 */
	POP3_RESPONSE,	/* a line answering AUTH's "+ " */
	POP3_CANCEL,	/* "*" in its place */
	POP3_NVERBS
};
#define POP3_ARGS_MAX	3	/* words after a verb */
/* RFC 1939 message numbers fit in 10 digits in any mailbox we list. */
#define POP3_MSGNO_DIGITS	10
/* A number longer than this is not a number at all. */
#define POP3_NUMBER_DIGITS	18

/*
 * A parsed line. Its strings point into the line given, which the parser
 * splits in place: nothing is copied, so a password stays in the one
 * buffer that is wiped.
 */
struct pop3_cmd {
	enum pop3_verb	 verb;
	/* The line is refused: with POP3_NONE whatever the state, with a
	 * verb once the verb is allowed in the state (too many words). */
	const char	*error;
	/* The arguments do not suit the verb: told after the session's own
	 * checks (PASS before USER). */
	const char	*argerror;
	int		 nargs;
	/* USER: the name. PASS: the rest of the line as it is. AUTH: the
	 * mechanism. POP3_RESPONSE: the whole line. */
	const char	*arg;
	const char	*resp;		/* AUTH PLAIN: the initial response */
	/* LIST, UIDL, RETR, TOP, DELE: 1.. as given, 0 for a number that
	 * can name no message ("0", or longer than 10 digits) */
	uint64_t	 msgno;
	uint64_t	 lines;		/* TOP: 0..10^18-1 */
};
/*
 * A command line without its line end, len octets; line[len] is a NUL.
 * 0 when it is a command with fitting arguments; -1 when error or
 * argerror says why not. Where the verb is known, c->verb is set.
 */
int	pop3_parse(char *line, size_t len, struct pop3_cmd *);
/* A line in answer to "+ " (SASL): POP3_RESPONSE, POP3_CANCEL, or -1. */
int	pop3_parse_response(const char *line, size_t len, struct pop3_cmd *);

/* metrics.c: counted where each event happens, read by IMSG_METRICS */
struct pop3_counters {
	uint64_t	connections[2];	/* pop3, pop3s */
	uint64_t	logins[5];	/* ok, failed, blocked, in-use, tempfail */
	uint64_t	retrieved;	/* RETR sent in full */
	uint64_t	bytes;		/* their octets, before dot-stuffing */
	uint64_t	deleted;	/* removed at UPDATE */
};
extern struct pop3_counters	pop3count;
struct mtext;
void	pop3_connected(int kind);
void	pop3_login_counted(uint32_t result);
void	pop3d_metrics(struct mtext *);

#endif
