/*
 * DATA framing: a pure state machine over the bytes a client sends after
 * 354, so it can be unit-tested and fuzzed alone. Only <CRLF>.<CRLF>
 * ends the data (a bare LF or CR never does: the SMTP smuggling
 * variants), dot-stuffing is undone, and a bare CR or LF or a line over
 * 998 octets is noted for the session to refuse at the end.
 */
#include "smtpd.h"

/* Put one unstuffed octet; the caller keeps room for two. */
static inline void
frame_put(struct dataread *dr, unsigned char c)
{
	dr->buf[dr->buflen++] = c;
	dr->size++;
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
				continue;
			}
			dr->bare = 1;	/* CR not followed by LF */
			frame_put(dr, '\r');
			dr->linelen++;
		}
		if (c == '\r') {
			dr->cr = 1;
			continue;
		}
		if (c == '\n')
			dr->bare = 1;	/* LF without CR */
		if (dr->bol && c == '.' && !dr->dot) {
			/* Either the end marker or a stuffed dot. */
			dr->dot = 1;
			continue;
		}
		dr->bol = 0;
		if (++dr->linelen > SMTP_TEXT_MAX)
			dr->toolong = 1;
		frame_put(dr, c);
	}
	return i;
}
