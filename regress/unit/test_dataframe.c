/*
 * Unit tests for smtpd/data.c, the DATA framing: only <CRLF>.<CRLF> ends
 * the data (the SMTP smuggling variants do not), dot-stuffing is undone,
 * bare CR / LF and long lines are noted, and a full buffer stops the scan
 * without losing a byte.
 */
#include <string.h>

#include "smtpd.h"
#include "unit.h"

static unsigned char	 buf[SMTP_DATABUF];
static struct dataread	 dr;
static size_t		 used;
static int		 end;
static char		 line[SMTP_TEXT_MAX + 4];

/* Frame s (a C string) from the start of the data. */
static void
frame(const char *s)
{
	smtp_data_start(&dr, buf);
	used = smtp_data_frame(&dr, (const unsigned char *)s, strlen(s),
	    sizeof(buf), &end);
}

static int
stored(const char *want)
{
	return dr.buflen == strlen(want) && memcmp(buf, want, dr.buflen) == 0;
}

/* n header lines of text, then a body. */
static void
received_lines(int n, const char *text)
{
	static char	big[SMTP_DATABUF];
	size_t		len = 0;
	int		i;

	for (i = 0; i < n && len + strlen(text) + 8 < sizeof(big); i++) {
		memcpy(big + len, text, strlen(text));
		len += strlen(text);
	}
	memcpy(big + len, "\r\nbody\r\n", 9);
	big[len + 9] = '\0';
	frame(big);
}

/*
 * The data s framed as smtpd does it, chunk octets at a time, writing
 * out what smtp_data_flushable lets go after every chunk into out;
 * returns out (what reaches the spool) or NULL on a broken invariant.
 */
static const char *
spooled(const char *s, const char *id, size_t chunk)
{
	static char	out[4 * SMTP_DATABUF];
	size_t		n = strlen(s), off = 0, outlen = 0, f, k;

	smtp_data_start(&dr, buf);
	strlcpy(dr.authserv_id, id, sizeof(dr.authserv_id));
	end = 0;
	while (off < n && !end) {
		k = n - off < chunk ? n - off : chunk;
		off += smtp_data_frame(&dr, (const unsigned char *)s + off, k,
		    sizeof(buf), &end);
		if (end)
			smtp_data_end(&dr);
		f = smtp_data_flushable(&dr);
		if (f > dr.buflen || outlen + f >= sizeof(out))
			return NULL;
		memcpy(out + outlen, buf, f);
		outlen += f;
		memmove(buf, buf + f, dr.buflen - f);
		dr.buflen -= f;
		dr.linestart -= dr.linestart < f ? dr.linestart : f;
		dr.ar_start -= dr.ar_start < f ? dr.ar_start : f;
	}
	out[outlen] = '\0';
	return out;
}

static void
test_authres(void)
{
	static char	big[3 * SMTP_DATABUF];
	const char	*o;
	size_t		 chunk, i;
	int		 all;

	for (all = 1, chunk = 1; chunk <= 64; chunk *= 4) {
		o = spooled("Received: x\r\nAuthentication-Results: "
		    "mx.example;\r\n\tspf=pass\r\nSubject: a\r\n\r\nbody\r\n"
		    ".\r\n", "mx.example", chunk);
		all = all && o != NULL && strcmp(o, "Received: x\r\n"
		    "Subject: a\r\n\r\nbody\r\n") == 0 && dr.ar_removed == 1 &&
		    dr.size == (long long)strlen(o);
	}
	CHECK("a folded field in our name is dropped, any chunking", all);
	o = spooled("Authentication-Results: other.example; spf=pass\r\n"
	    "\r\nb\r\n.\r\n", "mx.example", 7);
	CHECK("another server's field stays", o != NULL && strcmp(o,
	    "Authentication-Results: other.example; spf=pass\r\n\r\nb\r\n")
	    == 0 && dr.ar_removed == 0);
	o = spooled("A: 1\r\nAUTHENTICATION-RESULTS : mx.example; x\r\n"
	    "Authentication-Results:\tmx.example;\r\n none\r\n.\r\n",
	    "mx.example", 3);
	CHECK("the obsolete spacing and a header without a body",
	    o != NULL && strcmp(o, "A: 1\r\n") == 0 && dr.ar_removed == 2);
	o = spooled("Authentication-Results: mx.example; spf=pass\r\n"
	    ".\r\n", "", 5);
	CHECK("no id: every field stays", o != NULL && strcmp(o,
	    "Authentication-Results: mx.example; spf=pass\r\n") == 0);
	/* A field longer than anything real: dropped whoever it names. */
	i = (size_t)snprintf(big, sizeof(big), "Authentication-Results: "
	    "other.example;\r\n");
	while (i < 20000)
		i += (size_t)snprintf(big + i, sizeof(big) - i,
		    "\tspf=pass smtp.mailfrom=someone@example.org\r\n");
	snprintf(big + i, sizeof(big) - i, "Subject: s\r\n\r\nb\r\n.\r\n");
	o = spooled(big, "mx.example", 100);
	CHECK("a huge field is dropped, the rest kept", o != NULL &&
	    strcmp(o, "Subject: s\r\n\r\nb\r\n") == 0 &&
	    dr.size == (long long)strlen(o));
	o = spooled("Subject: s\r\n\r\nAuthentication-Results: mx.example;"
	    " x\r\n.\r\n", "mx.example", 4);
	CHECK("the body is never touched", o != NULL && strcmp(o,
	    "Subject: s\r\n\r\nAuthentication-Results: mx.example; x\r\n")
	    == 0);
}

int
main(void)
{
	test_authres();
	frame("a\r\n.\r\nQUIT\r\n");
	CHECK("end at CRLF.CRLF", end && used == 6 && stored("a\r\n"));
	frame(".\r\n");
	CHECK("end at the very start", end && used == 3 && dr.buflen == 0);
	frame("a\r\n.\nb\r\n");
	CHECK("CRLF.LF does not end", !end && used == 8 && dr.bare);
	frame("a\n.\r\nb\r\n");
	CHECK("LF.CRLF does not end", !end && dr.bare);
	frame("a\n.\nb");
	CHECK("LF.LF does not end", !end && dr.bare);
	frame("a\r.\rb");
	CHECK("CR.CR does not end", !end && dr.bare);
	frame("a\r\n..b\r\n..\r\n.\r\n");
	CHECK("dot-stuffing undone", end && stored("a\r\n.b\r\n.\r\n"));
	frame("a\r\n.x\r\n.\r\n");
	CHECK("a lone leading dot is dropped", end && stored("a\r\nx\r\n"));
	frame("a\r\nb\r\n");
	CHECK("clean lines", !end && !dr.bare && !dr.toolong &&
	    dr.size == 6 && stored("a\r\nb\r\n"));

	memset(line, 'x', SMTP_TEXT_MAX);
	strcpy(line + SMTP_TEXT_MAX, "\r\n");
	frame(line);
	CHECK("998 octets is not too long", !dr.toolong);
	memset(line, 'x', SMTP_TEXT_MAX + 1);
	strcpy(line + SMTP_TEXT_MAX + 1, "\r\n");
	frame(line);
	CHECK("999 octets is too long", dr.toolong);

	/* A NUL ends a line for some servers: the message is refused. */
	smtp_data_start(&dr, buf);
	used = smtp_data_frame(&dr, (const unsigned char *)"a\r\n\0.\r\n",
	    7, sizeof(buf), &end);
	CHECK("NUL is noted and does not end", !end && dr.nul && dr.refused);
	frame("a\r\nb\r\n");
	CHECK("nothing refused in clean lines", !dr.refused && !dr.nul);

	received_lines(SMTP_MAX_RECEIVED, "Received: x\r\n");
	CHECK("100 Received: lines pass", dr.received == SMTP_MAX_RECEIVED &&
	    !dr.refused);
	received_lines(SMTP_MAX_RECEIVED + 1, "rEcEiVeD:x\r\n");
	CHECK("101 are a loop, whatever the case", dr.refused);
	received_lines(SMTP_MAX_RECEIVED + 1, "X-Received: x\r\n");
	CHECK("other fields do not count", dr.received == 0);
	frame("Subject: x\r\n\r\nReceived: x\r\n");
	CHECK("the body does not count", dr.received == 0);

	frame("Date: x\r\nmessage-id: <a@b>\r\n\r\nbody\r\n.\r\n");
	CHECK("Date: and Message-ID: noted", dr.has_date && dr.has_msgid);
	CHECK("the scan stops after the header's empty line", dr.hdrend &&
	    !end && used == strlen("Date: x\r\nmessage-id: <a@b>\r\n\r\n") &&
	    dr.buflen == used);
	frame("X-Date: x\r\nMessage-IDs: y\r\nDat: z\r\n\r\n");
	CHECK("other fields are no Date: or Message-ID:", !dr.has_date &&
	    !dr.has_msgid);
	frame("Subject: x\r\n\r\nDate: x\r\n");
	CHECK("a Date: in the body is none", !dr.has_date);
	frame("\r\nbody\r\n\r\nmore\r\n");
	CHECK("an empty header ends at the first line", dr.hdrend &&
	    used == 2);
	dr.hdrend = 0;
	used += smtp_data_frame(&dr, (const unsigned char *)
	    "\r\nbody\r\n\r\nmore\r\n" + used, 16 - used, sizeof(buf),
	    &end);
	CHECK("and only once", !dr.hdrend && used == 16);

	/* A buffer with room for 4 octets takes "ab\r\n" and stops. */
	smtp_data_start(&dr, buf);
	used = smtp_data_frame(&dr, (const unsigned char *)"ab\r\ncd\r\n.\r\n",
	    11, 4, &end);
	CHECK("a full buffer stops the scan", !end && used == 4 &&
	    dr.buflen == 4);
	dr.buflen = 0;
	used += smtp_data_frame(&dr, (const unsigned char *)
	    "ab\r\ncd\r\n.\r\n" + used, 11 - used, 4, &end);
	CHECK("and the next call goes on", !end && used == 8 &&
	    stored("cd\r\n"));
	dr.buflen = 0;
	used += smtp_data_frame(&dr, (const unsigned char *)
	    "ab\r\ncd\r\n.\r\n" + used, 11 - used, 4, &end);
	CHECK("to the end", end && used == 11 && dr.size == 8);
	UNIT_EXIT();
}
