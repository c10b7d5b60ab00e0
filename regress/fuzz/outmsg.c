/*
 * The readers of what queued and outbound send each other
 * (common/outmsg.c): the first byte picks the message (0 ATTEMPT,
 * 2 RESULT; 1 and 3 were messages since folded into these), the rest is
 * its payload. An attempt's DKIM-Signature fields are header lines and
 * nothing else. Checked for a payload a
 * reader takes: every string ends within its buffer and holds no control
 * character (it goes into SMTP commands, envelopes and logs), every
 * number is in its range, and the fields re-encode to exactly the
 * payload (nothing skipped, nothing read past).
 */
#include <string.h>

#include "envelope.h"
#include "imsg.h"
#include "outmsg.h"
#include "fuzz.h"

static void
printable(const char *s, size_t size)
{
	size_t	i;

	FUZZ_ASSERT(memchr(s, '\0', size) != NULL);
	for (i = 0; s[i]; i++)
		FUZZ_ASSERT((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

/* "" or DKIM-Signature fields: CRLF only as a field's line end, each
 * next line a continuation or another such field, never an empty line
 * (the message's header must go on after them). */
static void
dkim_fields(const char *s, size_t size)
{
	const char	*p;

	FUZZ_ASSERT(memchr(s, '\0', size) != NULL);
	if (*s == '\0')
		return;
	FUZZ_ASSERT(strncmp(s, "DKIM-Signature:", 15) == 0);
	for (p = s; *p; p++) {
		if (*p == '\r') {
			FUZZ_ASSERT(p[1] == '\n');
			FUZZ_ASSERT(p[2] == '\0' || p[2] == '\t' || p[2] == ' ' ||
			    strncmp(p + 2, "DKIM-Signature:", 15) == 0);
			p++;
			continue;
		}
		FUZZ_ASSERT(((unsigned char)*p >= 0x20 || *p == '\t') &&
		    *p != 0x7f);
	}
	FUZZ_ASSERT(p[-1] == '\n');
}

static void
check(uint8_t kind, const uint8_t *p, size_t len, struct msgbuild *mb)
{
	union {
		struct out_attempt	a;
		struct out_result	res;
	} m;
	uint32_t	i;

	mb_init(mb);
	switch (kind) {
	case 0:
		if (out_read_attempt(p, len, &m.a) == -1)
			return;
		FUZZ_ASSERT(strlen(m.a.qid) == QUEUE_ID_LEN);
		FUZZ_ASSERT(strspn(m.a.qid, "0123456789abcdef") ==
		    QUEUE_ID_LEN);
		printable(m.a.sender, sizeof(m.a.sender));
		printable(m.a.domain, sizeof(m.a.domain));
		FUZZ_ASSERT(m.a.domain[0] != '\0');
		FUZZ_ASSERT(m.a.nrcpts >= 1 && m.a.nrcpts <= ENV_MAX_RCPTS);
		mb_u32(mb, m.a.id);
		mb_str(mb, m.a.qid);
		mb_str(mb, m.a.sender);
		mb_str(mb, m.a.domain);
		mb_u64(mb, m.a.size);
		dkim_fields(m.a.dkim, sizeof(m.a.dkim));
		mb_str(mb, m.a.dkim);
		for (i = 0; i < m.a.nrcpts; i++) {
			printable(m.a.rcpt[i], sizeof(m.a.rcpt[i]));
			FUZZ_ASSERT(m.a.rcpt[i][0] != '\0');
			mb_str(mb, m.a.rcpt[i]);
		}
		out_attempt_clear(&m.a);
		break;
	case 2:
		if (out_read_result(p, len, &m.res) == -1)
			return;
		FUZZ_ASSERT(m.res.result <= OUT_FAILED && m.res.last <= 1);
		printable(m.res.text, sizeof(m.res.text));
		mb_u32(mb, m.res.id);
		mb_u32(mb, m.res.index);
		mb_u32(mb, m.res.result);
		mb_u32(mb, m.res.last);
		mb_str(mb, m.res.text);
		break;
	default:
		return;
	}
	FUZZ_ASSERT(!mb->overflow && mb->len == len);
	FUZZ_ASSERT(memcmp(mb->buf, p, len) == 0);
}

FUZZ_ENTRY(outmsg)
{
	static struct msgbuild	mb;

	/* The input itself, not a copy: reading past it is caught. */
	if (size < 1 || size - 1 > IMSG_DATA_MAX)
		return 0;
	check(data[0], data + 1, size - 1, &mb);
	return 0;
}
