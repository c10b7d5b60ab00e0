/*
 * DATA framing: a pure state machine over the bytes a client sends after
 * 354, so it can be unit-tested and fuzzed alone. Only <CRLF>.<CRLF>
 * ends the data (a bare LF or CR never does: the SMTP smuggling
 * variants), dot-stuffing is undone, and what gets the message refused
 * at the end is noted: a bare CR or LF, a NUL, a line over 998 octets,
 * more than SMTP_MAX_RECEIVED Received: lines in the header.
 */
#include <string.h>

#include "authres.h"
#include "smtpd.h"

/*
 * Read the field names of the header section (it ends at the first empty
 * line) as the unstuffed octets go by, without keeping them. Received:
 * lines are counted: a message that went round more than
 * SMTP_MAX_RECEIVED hops is a loop (RFC 5321 6.3). Date: and Message-ID:
 * are noted: a submission without them gets them (RFC 6409 8).
 */
static const char *const fields[] = { "received:", "date:", "message-id:",
    "authentication-results:", "authentication-results ",
    "authentication-results\t" };
#define FIELD_RECEIVED	0
#define FIELD_DATE	1
#define FIELD_MSGID	2
#define FIELD_AUTHRES	3	/* and the two after it: the obsolete
				 * syntax's white space before the colon */
/* A held field longer than this is dropped whoever it names: no real
 * verdict is that long, and holding more would fill the buffer. */
#define AUTHRES_HOLD_MAX	8192
#define FIELDS_ALL	((1u << (sizeof(fields) / sizeof(fields[0]))) - 1)

static void
field_named(struct dataread *dr, int f)
{
	if (f >= FIELD_AUTHRES) {
		if (dr->authserv_id[0] != '\0') {
			dr->ar_hold = 1;
			dr->ar_start = dr->linestart;
		}
	} else if (f == FIELD_DATE)
		dr->has_date = 1;
	else if (f == FIELD_MSGID)
		dr->has_msgid = 1;
	else if (++dr->received > SMTP_MAX_RECEIVED)
		dr->refused = 1;
}

static void
header_track(struct dataread *dr, unsigned char c)
{
	size_t	f, len;

	if (c == '\r')
		return;
	if (c == '\n') {
		if (dr->hdrpos == 0)
			dr->inbody = 1;
		dr->hdrpos = 0;
		dr->hdrcand = FIELDS_ALL;
		return;
	}
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		if (!(dr->hdrcand & (1u << f)))
			continue;
		len = strlen(fields[f]);
		if (c != (unsigned char)fields[f][dr->hdrpos]) {
			dr->hdrcand &= ~(1u << f);
			continue;
		}
		if (dr->hdrpos == len - 1) {
			field_named(dr, f);
			dr->hdrcand &= ~(1u << f);
		}
	}
	dr->hdrpos++;
}

/* The held field is complete: drop it if it speaks in our name. */
static void
authres_done(struct dataread *dr)
{
	size_t	name = strlen(fields[FIELD_AUTHRES]), len;

	if (dr->ar_dropping || (dr->buflen - dr->ar_start > name &&
	    authres_is_ours((const char *)dr->buf + dr->ar_start + name,
	    dr->buflen - dr->ar_start - name, dr->authserv_id))) {
		len = dr->buflen - dr->ar_start;
		dr->buflen = dr->ar_start;
		dr->size -= len;
		dr->ar_removed++;
	}
	dr->ar_hold = dr->ar_dropping = 0;
}

/* A header line begins with c: a field, a continuation, or the end. */
static void
header_line(struct dataread *dr, unsigned char c)
{
	if (c == ' ' || c == '\t')
		return;		/* the held field goes on */
	if (dr->ar_hold)
		authres_done(dr);
	dr->linestart = dr->buflen;
}

/* Put one unstuffed octet; the caller keeps room for two. */
static inline void
frame_put(struct dataread *dr, unsigned char c)
{
	if (!dr->inbody) {
		if (dr->hdrpos == 0 && c != '\n')
			header_line(dr, c);
		header_track(dr, c);
		if (dr->ar_hold && !dr->ar_dropping &&
		    dr->buflen - dr->ar_start >= AUTHRES_HOLD_MAX) {
			dr->size -= dr->buflen - dr->ar_start;
			dr->buflen = dr->ar_start;
			dr->ar_dropping = 1;
		}
		if (dr->ar_dropping)
			return;
	}
	dr->buf[dr->buflen++] = c;
	dr->size++;
}

void
smtp_data_end(struct dataread *dr)
{
	if (dr->ar_hold)
		authres_done(dr);
	dr->ended = 1;
}

size_t
smtp_data_flushable(const struct dataread *dr)
{
	if (dr->inbody || dr->ended || dr->authserv_id[0] == '\0')
		return dr->buflen;
	return dr->ar_hold ? dr->ar_start : dr->linestart;
}

void
smtp_data_start(struct dataread *dr, unsigned char *buf)
{
	memset(dr, 0, sizeof(*dr));
	dr->buf = buf;
	dr->bol = 1;
	dr->hdrcand = FIELDS_ALL;
}

size_t
smtp_data_frame(struct dataread *dr, const unsigned char *p, size_t n,
    size_t bufcap, int *end)
{
	size_t		i;
	unsigned char	c;

	*end = 0;
	for (i = 0; i < n && bufcap - dr->buflen >= 2; i++) {
		c = p[i];
		if (dr->cr) {
			dr->cr = 0;
			if (c == '\n') {
				if (dr->dot && dr->linelen == 0) {
					*end = 1;
					return i + 1;
				}
				frame_put(dr, '\r');
				frame_put(dr, '\n');
				dr->bol = 1;
				dr->dot = 0;
				dr->linelen = 0;
				/* The empty line after the header: the
				 * caller may add fields before it. */
				if (dr->inbody && dr->hdrpos == 0 &&
				    !dr->hdrseen) {
					dr->hdrseen = dr->hdrend = 1;
					return i + 1;
				}
				continue;
			}
			dr->bare = dr->refused = 1;	/* CR without LF */
			frame_put(dr, '\r');
			dr->linelen++;
		}
		if (c == '\r') {
			dr->cr = 1;
			continue;
		}
		if (c == '\n')
			dr->bare = dr->refused = 1;	/* LF without CR */
		else if (c == '\0')
			dr->nul = dr->refused = 1;	/* a line end to some */
		if (dr->bol && c == '.' && !dr->dot) {
			/* Either the end marker or a stuffed dot. */
			dr->dot = 1;
			continue;
		}
		dr->bol = 0;
		if (++dr->linelen > SMTP_TEXT_MAX)
			dr->toolong = dr->refused = 1;
		frame_put(dr, c);
	}
	return i;
}
