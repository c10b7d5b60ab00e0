/*
 * POP3 commands (RFC 1939, 2449, 5034) and the parent's answers to the
 * requests they make. The session's state says which commands are valid;
 * a command that needs the parent sets WAIT_PARENT, and the next command
 * is taken only when the answer arrived, so pipelining keeps its order.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pop3d.h"
#include "proto.h"
#include "sasl.h"
#include "util.h"

#define LISTING_MAX	(16u * 1024 * 1024)	/* messages listed */

struct command {
	int		 auth;		/* valid in AUTHORIZATION */
	int		 trans;		/* valid in TRANSACTION */
	void		(*fn)(struct session *, const struct pop3_cmd *);
};

static void	cmd_capa(struct session *, const struct pop3_cmd *);
static void	cmd_user(struct session *, const struct pop3_cmd *);
static void	cmd_pass(struct session *, const struct pop3_cmd *);
static void	cmd_auth(struct session *, const struct pop3_cmd *);
static void	cmd_quit(struct session *, const struct pop3_cmd *);
static void	cmd_noop(struct session *, const struct pop3_cmd *);
static void	cmd_stat(struct session *, const struct pop3_cmd *);
static void	cmd_list(struct session *, const struct pop3_cmd *);
static void	cmd_uidl(struct session *, const struct pop3_cmd *);
static void	cmd_retr(struct session *, const struct pop3_cmd *);
static void	cmd_top(struct session *, const struct pop3_cmd *);
static void	cmd_dele(struct session *, const struct pop3_cmd *);
static void	cmd_rset(struct session *, const struct pop3_cmd *);
static void	cmd_stls(struct session *, const struct pop3_cmd *);

static const struct command commands[POP3_NVERBS] = {
	[POP3_CAPA] = { 1, 1, cmd_capa },
	[POP3_USER] = { 1, 0, cmd_user },
	[POP3_PASS] = { 1, 0, cmd_pass },
	[POP3_AUTH] = { 1, 0, cmd_auth },
	[POP3_QUIT] = { 1, 1, cmd_quit },
	[POP3_NOOP] = { 1, 1, cmd_noop },
	[POP3_STAT] = { 0, 1, cmd_stat },
	[POP3_LIST] = { 0, 1, cmd_list },
	[POP3_UIDL] = { 0, 1, cmd_uidl },
	[POP3_RETR] = { 0, 1, cmd_retr },
	[POP3_TOP]  = { 0, 1, cmd_top },
	[POP3_DELE] = { 0, 1, cmd_dele },
	[POP3_RSET] = { 0, 1, cmd_rset },
	[POP3_STLS] = { 1, 0, cmd_stls },
};

/*
 * The capabilities of DESIGN.md A5, in that order; USER and SASL only
 * where a password may be taken (RFC 2595 4), STLS where TLS can start.
 */
static void
capa_list(struct session *s)
{
	int	login = session_auth_allowed(s);

	session_printf(s, "+OK Capability list follows\r\n%s"
	    "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
	    "AUTH-RESP-CODE\r\n%s%sIMPLEMENTATION pymaild\r\n.\r\n",
	    login ? "USER\r\n" : "", login ? "SASL PLAIN\r\n" : "",
	    s->state == ST_AUTH && session_tls_offered(s) ? "STLS\r\n" : "");
}

static void	finish_login(struct session *);

/* A client error: answered, counted, and too many end the session. */
static void
bad(struct session *s, const char *answer)
{
	session_printf(s, "-ERR %s\r\n", answer);
	if (++s->nbad < POP3_BAD_MAX)
		return;
	log_info("pop3 session=%08x from=%s result=closed reason=\"too many "
	    "bad commands\"", s->id, s->addr);
	session_printf(s, "-ERR too many bad commands, bye\r\n");
	s->state = ST_CLOSING;
}

void
session_greet(struct session *s)
{
	session_printf(s, "+OK pymaild ready\r\n");
}

void
command_toolong(struct session *s)
{
	if (s->state == ST_SASL)
		s->state = ST_AUTH;
	bad(s, "line too long");
}

void
command_timeout(struct session *s)
{
	/* Still not reading our last words after another period. */
	if (s->state == ST_CLOSING) {
		s->dead = 1;
		return;
	}
	log_info("pop3 session=%08x from=%s result=closed reason=idle "
	    "seconds=%d", s->id, s->addr, pop3_timeout());
	if (session_room(s) >= POP3_LINE_ROOM)
		session_printf(s, "-ERR autologout: idle for too long\r\n");
	s->state = ST_CLOSING;
}

static void	sasl_response(struct session *, const char *, size_t);

static int
allowed(const struct session *s, enum pop3_verb verb)
{
	if (s->state == ST_AUTH)
		return commands[verb].auth;
	if (s->state == ST_TRANS)
		return commands[verb].trans;
	return 0;
}

void
command_line(struct session *s, char *line, size_t len)
{
	struct pop3_cmd	c;

	if (s->state == ST_SASL) {
		sasl_response(s, line, len);
		return;
	}
	pop3_parse(line, len, &c);
	if (c.verb == POP3_NONE) {
		bad(s, c.error);
		return;
	}
	if (!allowed(s, c.verb)) {
		bad(s, "command not valid in this state");
		return;
	}
	if (c.error != NULL) {
		bad(s, c.error);
		return;
	}
	commands[c.verb].fn(s, &c);
}

/* Arguments that do not suit the verb: answered, 1. */
static int
refused(struct session *s, const struct pop3_cmd *c)
{
	if (c->argerror == NULL)
		return 0;
	bad(s, c->argerror);
	return 1;
}

static void
cmd_capa(struct session *s, const struct pop3_cmd *c)
{
	if (refused(s, c))
		return;
	capa_list(s);
}

/* Not in plaintext from afar once TLS can be had (DESIGN.md A7). */
static int
login_refused(struct session *s)
{
	if (session_auth_allowed(s))
		return 0;
	bad(s, "[AUTH] plaintext login refused: use STLS first");
	return 1;
}

static void
cmd_stls(struct session *s, const struct pop3_cmd *c)
{
	if (refused(s, c))
		return;
	if (!session_tls_offered(s)) {
		bad(s, s->ssl != NULL ? "TLS already active" :
		    "TLS not available");
		return;
	}
	s->haveuser = 0;
	session_printf(s, "+OK Begin TLS negotiation\r\n");
	session_starttls(s);
}

static void
cmd_noop(struct session *s, const struct pop3_cmd *c)
{
	if (refused(s, c))
		return;
	session_printf(s, "+OK\r\n");
}

/*
 * The session's marks for the parent, in IMSG_POP3_UPDATE parts: at QUIT
 * (commit) the deletions and the messages sent in full, the last part
 * with more = 0 to apply them; when the session just ends, the messages
 * sent in full only, every part with more = 1, and RELEASE after them.
 */
static uint32_t
mark_of(const struct pop3_msg *m, uint32_t i, int commit)
{
	if (commit && m->deleted)
		return i;
	if (m->retrieved)
		return i | POP3_UPDATE_SEEN;
	return UINT32_MAX;
}

static void
send_marks(struct session *s, int commit)
{
	struct msgbuild	mb;
	uint32_t	i = 0, e, k, n, total = 0, sent = 0;

	for (i = 0; i < s->nmsgs; i++)
		total += mark_of(&s->msgs[i], i, commit) != UINT32_MAX;
	if (total == 0 && !commit)
		return;
	i = 0;
	do {
		n = total - sent;
		if (n > POP3_UPDATE_BATCH)
			n = POP3_UPDATE_BATCH;
		mb_init(&mb);
		mb_u32(&mb, s->id);
		mb_u32(&mb, !commit || sent + n < total);
		for (k = 0; k < n; i++) {
			e = mark_of(&s->msgs[i], i, commit);
			if (e != UINT32_MAX) {
				mb_u32(&mb, e);
				k++;
			}
		}
		sent += n;
		pop3_send(IMSG_POP3_UPDATE, &mb);
	} while (sent < total);
}

static void
cmd_quit(struct session *s, const struct pop3_cmd *c)
{
	if (s->state == ST_AUTH) {
		session_printf(s, "+OK pymaild signing off\r\n");
		s->state = ST_CLOSING;
		return;
	}
	send_marks(s, 1);
	s->locked = 0;		/* the parent unlocks after applying */
	s->state = ST_UPDATE;
	s->wait = WAIT_PARENT;
}

/* ---------------------------------------------------------------- */
/* AUTHORIZATION */

static void
send_login(struct session *s, const char *user, const char *pass)
{
	struct msgbuild	mb;

	strlcpy(s->user, user, sizeof(s->user));
	mb_init(&mb);
	mb_u32(&mb, s->id);
	mb_str(&mb, user);
	mb_str(&mb, pass);
	mb_str(&mb, s->addr);
	pop3_send(IMSG_POP3_LOGIN, &mb);
	explicit_bzero(&mb, sizeof(mb));
	s->state = ST_LOGIN;
	s->wait = WAIT_PARENT;
}

static void
cmd_user(struct session *s, const struct pop3_cmd *c)
{
	if (refused(s, c) || login_refused(s))
		return;
	/* The same answer whether the user exists or not. */
	strlcpy(s->user, c->arg, sizeof(s->user));
	s->haveuser = 1;
	session_printf(s, "+OK\r\n");
}

static void
cmd_pass(struct session *s, const struct pop3_cmd *c)
{
	if (!s->haveuser) {
		bad(s, "USER first");
		return;
	}
	if (refused(s, c))
		return;
	s->haveuser = 0;
	send_login(s, s->user, c->arg);
}

static void
plain_login(struct session *s, const char *b64)
{
	struct sasl_cred	c;

	if (sasl_plain(b64, &c) == -1) {
		bad(s, "[AUTH] malformed PLAIN response");
		return;
	}
	send_login(s, c.user, c.pass);
	sasl_cred_wipe(&c);
}

static void
sasl_response(struct session *s, const char *line, size_t len)
{
	struct pop3_cmd	c;

	s->state = ST_AUTH;
	if (pop3_parse_response(line, len, &c) == -1) {
		bad(s, c.error);
		return;
	}
	if (c.verb == POP3_CANCEL) {
		session_printf(s, "-ERR authentication cancelled\r\n");
		return;
	}
	plain_login(s, c.arg);
}

static void
cmd_auth(struct session *s, const struct pop3_cmd *c)
{
	s->haveuser = 0;
	if (refused(s, c) || login_refused(s))
		return;
	if (c->nargs == 0) {
		/* What some clients send to learn the mechanisms. */
		session_printf(s, "+OK\r\nPLAIN\r\n.\r\n");
		return;
	}
	if (c->resp != NULL) {
		plain_login(s, c->resp);
		return;
	}
	session_printf(s, "+ \r\n");
	s->state = ST_SASL;
}

/*
 * Guesses pipelined behind a failure would each hold the session through
 * another delay: a few failures end it, as a client with a wrong
 * password needs only one to tell its user.
 */
static void
login_failed(struct session *s)
{
	if (++s->nauthfail < POP3_AUTHFAIL_MAX)
		return;
	log_info("pop3 session=%08x from=%s result=closed reason=\"too many "
	    "failed logins\"", s->id, s->addr);
	s->state = ST_CLOSING;
}

static void
login_answer(struct session *s, uint32_t result)
{
	s->state = ST_AUTH;
	s->wait = WAIT_NONE;
	switch (result) {
	case POP3_LOGIN_FAIL:
		session_printf(s, "-ERR [AUTH] authentication failed\r\n");
		login_failed(s);
		break;
	case POP3_LOGIN_BLOCKED:
		session_printf(s, "-ERR [SYS/TEMP] too many failed logins, "
		    "try again later\r\n");
		break;
	case POP3_LOGIN_INUSE:
		session_printf(s, "-ERR [IN-USE] mailbox is locked by another "
		    "session\r\n");
		break;
	default:
		session_printf(s, "-ERR [SYS/TEMP] mailbox unavailable, try "
		    "again later\r\n");
		break;
	}
}

void
command_delayed(struct session *s)
{
	login_answer(s, s->delayed);
}

int
reply_login(uint32_t id, struct msgread *mr)
{
	struct session	*s;
	struct msgbuild	 mb;
	uint32_t	 result, delay, count;

	result = mr_u32(mr);
	delay = mr_u32(mr);
	count = mr_u32(mr);
	if (mr_end(mr) == -1 || count > LISTING_MAX)
		return -1;
	if ((s = session_find(id)) == NULL) {
		/* The client left while the password was checked: give the
		 * mailbox back; its listing will be ignored. */
		if (result == POP3_LOGIN_OK) {
			mb_init(&mb);
			mb_u32(&mb, id);
			pop3_send(IMSG_POP3_RELEASE, &mb);
		}
		return 0;
	}
	if (s->state != ST_LOGIN)
		return -1;
	pop3_login_counted(result);
	if (result != POP3_LOGIN_OK) {
		if (result == POP3_LOGIN_FAIL && delay > 0) {
			s->delayed = result;
			session_delay(s, delay > 60000 ? 60000 : delay);
		} else
			login_answer(s, result);
		session_update(s);
		return 0;
	}
	s->locked = 1;
	s->state = ST_LISTING;
	s->nmsgs = count;
	s->msgs = xreallocarray(NULL, count, sizeof(*s->msgs));
	if (count == 0)
		finish_login(s);
	session_update(s);
	return 0;
}

static void
finish_login(struct session *s)
{
	s->state = ST_TRANS;
	s->wait = WAIT_NONE;
	log_info("pop3 session=%08x from=%s user=%s result=ok messages=%u",
	    s->id, s->addr, s->user, s->nmsgs);
	session_printf(s, "+OK maildrop has %u messages (%llu octets)\r\n",
	    s->nmsgs, (unsigned long long)s->total);
}

static int
uid_valid(const char *uid, size_t len)
{
	size_t	i;

	if (len == 0 || len > POP3_UID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (uid[i] < 0x21 || uid[i] > 0x7e)
			return 0;
	return 1;
}

static int
add_listing(struct session *s, struct msgread *mr)
{
	struct pop3_msg	*m;
	char		 uid[POP3_UID_MAX + 1];
	uint64_t	 size;
	size_t		 len;

	size = mr_u64(mr);
	mr_str(mr, uid, sizeof(uid));
	len = strlen(uid);
	if (mr->err || !uid_valid(uid, len) || s->nlisted == s->nmsgs)
		return -1;
	if (s->uidslen + len > s->uidscap) {
		s->uidscap = s->uidscap ? s->uidscap * 2 : 4096;
		s->uids = xreallocarray(s->uids, 1, s->uidscap);
	}
	memcpy(s->uids + s->uidslen, uid, len);
	m = &s->msgs[s->nlisted++];
	m->size = size;
	m->uidoff = s->uidslen;
	m->uidlen = len;
	m->deleted = 0;
	m->retrieved = 0;
	s->uidslen += len;
	s->total += size;
	return 0;
}

int
reply_listing(uint32_t id, struct msgread *mr)
{
	struct session	*s;
	uint32_t	 n, i;

	n = mr_u32(mr);
	if ((s = session_find(id)) == NULL || s->state != ST_LISTING)
		return 0;	/* released already */
	for (i = 0; i < n; i++)
		if (add_listing(s, mr) == -1)
			return -1;
	if (mr_end(mr) == -1)
		return -1;
	if (s->nlisted == s->nmsgs) {
		finish_login(s);
		session_update(s);
	}
	return 0;
}

/* The session ends: a mailbox still locked for it is given back. */
void
session_release(struct session *s)
{
	struct msgbuild	mb;

	if (!s->locked)
		return;
	send_marks(s, 0);
	mb_init(&mb);
	mb_u32(&mb, s->id);
	pop3_send(IMSG_POP3_RELEASE, &mb);
	s->locked = 0;
}

/* ---------------------------------------------------------------- */
/* TRANSACTION */

/* The message a command names, or NULL after answering. */
static struct pop3_msg *
msg_arg(struct session *s, const struct pop3_cmd *c, uint32_t *no)
{
	struct pop3_msg	*m;

	if (c->msgno == 0 || c->msgno > s->nmsgs) {
		session_printf(s, "-ERR no such message\r\n");
		return NULL;
	}
	*no = (uint32_t)c->msgno;
	m = &s->msgs[*no - 1];
	if (m->deleted) {
		session_printf(s, "-ERR message %u is deleted\r\n", *no);
		return NULL;
	}
	return m;
}

static void
cmd_stat(struct session *s, const struct pop3_cmd *c)
{
	if (refused(s, c))
		return;
	session_printf(s, "+OK %u %llu\r\n", s->nmsgs - s->ndel,
	    (unsigned long long)(s->total - s->delsize));
}

static void
start_listing(struct session *s, enum pop3_prod what)
{
	session_grow(s);
	session_printf(s, "+OK %u messages (%llu octets)\r\n",
	    s->nmsgs - s->ndel, (unsigned long long)(s->total - s->delsize));
	s->prod = what;
	s->prodpos = 0;
	s->wait = WAIT_PRODUCE;
}

static void
cmd_list(struct session *s, const struct pop3_cmd *c)
{
	struct pop3_msg	*m;
	uint32_t	 no;

	if (refused(s, c))
		return;
	if (c->nargs == 0) {
		start_listing(s, PROD_LIST);
		return;
	}
	if ((m = msg_arg(s, c, &no)) != NULL)
		session_printf(s, "+OK %u %llu\r\n", no,
		    (unsigned long long)m->size);
}

static void
cmd_uidl(struct session *s, const struct pop3_cmd *c)
{
	struct pop3_msg	*m;
	uint32_t	 no;

	if (refused(s, c))
		return;
	if (c->nargs == 0) {
		start_listing(s, PROD_UIDL);
		return;
	}
	if ((m = msg_arg(s, c, &no)) != NULL)
		session_printf(s, "+OK %u %.*s\r\n", no, (int)m->uidlen,
		    s->uids + m->uidoff);
}

static void
cmd_retr(struct session *s, const struct pop3_cmd *c)
{
	uint32_t	no;

	if (refused(s, c))
		return;
	if (msg_arg(s, c, &no) != NULL)
		msg_open(s, no - 1, 0, 0);
}

static void
cmd_top(struct session *s, const struct pop3_cmd *c)
{
	uint32_t	no;

	if (refused(s, c))
		return;
	if (msg_arg(s, c, &no) != NULL)
		msg_open(s, no - 1, 1, c->lines);
}

static void
cmd_dele(struct session *s, const struct pop3_cmd *c)
{
	struct pop3_msg	*m;
	uint32_t	 no;

	if (refused(s, c))
		return;
	if ((m = msg_arg(s, c, &no)) == NULL)
		return;
	m->deleted = 1;
	s->ndel++;
	s->delsize += m->size;
	session_printf(s, "+OK message %u deleted\r\n", no);
}

static void
cmd_rset(struct session *s, const struct pop3_cmd *c)
{
	uint32_t	i;

	if (refused(s, c))
		return;
	for (i = 0; i < s->nmsgs; i++)
		s->msgs[i].deleted = 0;
	s->ndel = 0;
	s->delsize = 0;
	session_printf(s, "+OK maildrop has %u messages (%llu octets)\r\n",
	    s->nmsgs, (unsigned long long)s->total);
}

int
reply_update(uint32_t id, struct msgread *mr)
{
	struct session	*s;
	uint32_t	 result, left;

	result = mr_u32(mr);
	left = mr_u32(mr);
	if (mr_end(mr) == -1)
		return -1;
	if ((s = session_find(id)) == NULL)
		return 0;	/* dropped during QUIT: applied all the same */
	if (s->state != ST_UPDATE)
		return -1;
	s->wait = WAIT_NONE;
	if (result == 0) {
		pop3count.deleted += s->ndel;
		session_printf(s, "+OK pymaild signing off (%u messages "
		    "left)\r\n", left);
	} else
		session_printf(s, "-ERR [SYS/TEMP] some deleted messages were "
		    "not removed\r\n");
	s->state = ST_CLOSING;
	session_update(s);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Multi-line answers, written as the output buffer drains. */

static int
produce_list(struct session *s)
{
	struct pop3_msg	*m;

	while (s->prodpos < s->nmsgs) {
		if (session_room(s) < POP3_UID_MAX + 32)
			return 0;
		m = &s->msgs[s->prodpos++];
		if (m->deleted)
			continue;
		if (s->prod == PROD_LIST)
			session_printf(s, "%u %llu\r\n", s->prodpos,
			    (unsigned long long)m->size);
		else
			session_printf(s, "%u %.*s\r\n", s->prodpos,
			    (int)m->uidlen, s->uids + m->uidoff);
	}
	if (session_room(s) < 3)
		return 0;
	session_printf(s, ".\r\n");
	return 1;
}

static int
produce_xfer(struct session *s)
{
	static char	 scratch[POP3_OBUF_LARGE];
	struct xfer	*x = &s->xfer;
	size_t		 room, used, outn;
	ssize_t		 n;

	while (!x->done && (room = session_room(s)) >= 8) {
		if (x->eof) {
			xfer_convert(x, NULL, 0, s->obuf + s->olen, room,
			    &outn);
			s->olen += outn;
			continue;
		}
		if ((uint64_t)x->off >= x->src.size) {
			/* The size came with the descriptor: no read to
			 * learn of the end. */
			x->eof = 1;
			continue;
		}
		if (x->src.data != NULL) {
			used = xfer_convert(x, x->src.data + x->off,
			    x->src.size - x->off, s->obuf + s->olen, room,
			    &outn);
			x->off += used;
			s->olen += outn;
			continue;
		}
		n = pread(x->src.fd, scratch, room, x->off);
		if (n == -1) {
			log_warn("pop3 session=%08x: reading message %u",
			    s->id, s->xfer_index + 1);
			/* The framing cannot be kept: hang up. */
			s->dead = 1;
			return 0;
		}
		if (n == 0) {
			x->eof = 1;
			continue;
		}
		used = xfer_convert(x, scratch, n, s->obuf + s->olen, room,
		    &outn);
		x->off += used;
		s->olen += outn;
	}
	if (!x->done)
		return 0;
	msg_sent(s);
	return 1;
}

int
produce(struct session *s)
{
	int	done;

	if (s->prod == PROD_XFER)
		done = produce_xfer(s);
	else
		done = produce_list(s);
	if (done)
		s->prod = PROD_NONE;
	return done;
}
