/*
 * The outbound client's reply parser (smtpreply.c): pure, so it links
 * alone into its unit test and fuzz harness.
 */
#ifndef PYMAILD_SMTPREPLY_H
#define PYMAILD_SMTPREPLY_H

#include <stddef.h>

#define SMTP_REPLY_LINE_MAX	4096	/* octets of a line, CRLF aside */
#define SMTP_REPLY_LINES_MAX	100	/* lines of a reply */
#define SMTP_EXT_PIPELINING	0x01	/* EHLO keywords */
#define SMTP_EXT_SIZE		0x02
#define SMTP_EXT_STARTTLS	0x04
#define SMTP_EXT_AUTH_PLAIN	0x08	/* AUTH and the mechanisms we use */
#define SMTP_EXT_AUTH_LOGIN	0x10

enum smtp_reply_status {
	SMTP_REPLY_MORE,	/* every whole line used; more octets wanted */
	SMTP_REPLY_DONE,	/* a reply ended: its code, text and ext */
	SMTP_REPLY_GARBLED,	/* not a reply line, or too many lines */
	SMTP_REPLY_TOOLONG	/* a line over SMTP_REPLY_LINE_MAX */
};

/* Kept from call to call while a reply comes in pieces. */
struct smtp_reply {
	int	ehlo;		/* the caller's: this answers EHLO */
	int	nlines;		/* lines of this reply so far */
	int	code;		/* the last line's */
	int	ext;		/* EHLO: the SMTP_EXT_ keywords listed */
	char	text[SMTP_REPLY_LINE_MAX];	/* the last line, printable */
};

/*
 * Read reply lines (CRLF or LF ended) from in[0..len), up to the end of
 * a reply: returns the octets used (whole lines only), *status says what
 * stopped it. The caller keeps the octets not used and calls again with
 * them and more.
 */
size_t	smtp_reply_parse(struct smtp_reply *, const char *in, size_t len,
	    enum smtp_reply_status *status);

#endif
