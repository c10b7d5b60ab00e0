/*
 * The readers of what queued and outbound send each other
 * (common/outmsg.c). What one side builds, the other reads back field
 * for field; what a compromised or broken peer could send instead is
 * refused: short or long payloads, a string holding a NUL or a control
 * character (CR LF would split an SMTP command, an envelope line, a log
 * line), a queue id that is not 16 hex digits, no recipients or more
 * than an envelope may hold, an empty domain or address, a result code
 * or an end mark out of range. The builder fills an attempt only as far
 * as one message holds.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "imsg.h"
#include "outmsg.h"
#include "unit.h"

static struct msgbuild	mb;

/* An attempt with n recipients "r<i>@remote.example" (or rcpt, if set). */
static void
attempt_payload(uint32_t id, const char *qid, const char *sender,
    const char *domain, uint64_t size, uint32_t n, const char *rcpt)
{
	char		addr[64];
	uint32_t	i;

	mb_init(&mb);
	mb_u32(&mb, id);
	mb_str(&mb, qid);
	mb_str(&mb, sender);
	mb_str(&mb, domain);
	mb_u64(&mb, size);
	mb_str(&mb, "");	/* no DKIM-Signature */
	for (i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "r%u@remote.example", i);
		mb_str(&mb, rcpt ? rcpt : addr);
	}
}

static int
attempt_ok(const char *qid, const char *sender, const char *domain,
    uint32_t n, const char *rcpt)
{
	struct out_attempt	a;
	int			ok;

	attempt_payload(1, qid, sender, domain, 10, n, rcpt);
	ok = out_read_attempt(mb.buf, mb.len, &a) == 0;
	CHECK("no recipient list left on failure", ok || a.rcpt == NULL);
	out_attempt_clear(&a);
	return ok;
}

static void
test_attempt(void)
{
	struct out_attempt	a;
	const char		*qid = "0123456789abcdef";
	char			 big[ADDR_PATH_MAX + 1];
	uint8_t			 nul[] = { 3, 0, 0, 0, 'a', 0, 'b' };

	attempt_payload(42, qid, "a@b.example", "remote.example", 4096, 3,
	    NULL);
	CHECK("attempt reads", out_read_attempt(mb.buf, mb.len, &a) == 0);
	CHECK("attempt fields", a.id == 42 && strcmp(a.qid, qid) == 0 &&
	    strcmp(a.sender, "a@b.example") == 0 &&
	    strcmp(a.domain, "remote.example") == 0 && a.size == 4096 &&
	    a.nrcpts == 3 && strcmp(a.rcpt[0], "r0@remote.example") == 0 &&
	    strcmp(a.rcpt[2], "r2@remote.example") == 0);
	out_attempt_clear(&a);
	CHECK("attempt one octet short",
	    out_read_attempt(mb.buf, mb.len - 1, &a) == -1);
	mb_u32(&mb, 0);
	CHECK("attempt with leftovers",
	    out_read_attempt(mb.buf, mb.len, &a) == -1);
	CHECK("null sender", attempt_ok(qid, "", "remote.example", 1, NULL));
	CHECK("no recipients",
	    !attempt_ok(qid, "a@b", "remote.example", 0, NULL));
	CHECK("as many recipients as an envelope",
	    attempt_ok(qid, "a@b", "r.example", ENV_MAX_RCPTS, "a@r"));
	CHECK("more recipients than an envelope",
	    !attempt_ok(qid, "a@b", "r.example", ENV_MAX_RCPTS + 1, "a@r"));
	CHECK("empty domain", !attempt_ok(qid, "a@b", "", 1, NULL));
	CHECK("short queue id",
	    !attempt_ok("0123", "a@b", "r.example", 1, NULL));
	CHECK("upper-case queue id",
	    !attempt_ok("0123456789ABCDEF", "a@b", "r.example", 1, NULL));
	CHECK("queue id with a slash",
	    !attempt_ok("0123456789abcde/", "a@b", "r.example", 1, NULL));
	CHECK("sender with CR LF",
	    !attempt_ok(qid, "a@b\r\nRCPT TO:<x@y>", "r.example", 1, NULL));
	CHECK("domain with a tab",
	    !attempt_ok(qid, "a@b", "r\texample", 1, NULL));
	CHECK("UTF-8 domain",
	    attempt_ok(qid, "a@b", "r\xc3\xa9.example", 1, NULL));
	CHECK("empty address", !attempt_ok(qid, "a@b", "r.example", 2, ""));
	CHECK("address with CR LF", !attempt_ok(qid, "a@b", "r.example", 1,
	    "x@r.example>\r\nDATA"));

	attempt_payload(1, qid, "a@b", "r.example", 10, 1, NULL);
	mb_data(&mb, nul, sizeof(nul));
	CHECK("address with a NUL",
	    out_read_attempt(mb.buf, mb.len, &a) == -1 && a.rcpt == NULL);
	memset(big, 'a', sizeof(big));
	big[ADDR_PATH_MAX - 1] = '\0';		/* the longest that fits */
	CHECK("address at ADDR_PATH_MAX - 1",
	    attempt_ok(qid, "a@b", "r.example", 1, big));
	big[ADDR_PATH_MAX - 1] = 'a';
	big[ADDR_PATH_MAX] = '\0';
	CHECK("address over ADDR_PATH_MAX",
	    !attempt_ok(qid, "a@b", "r.example", 1, big));
}

/* The DKIM-Signature fields outbound sends before the message: header
 * lines of that name only, never an empty line or a bare CR or LF. */
static int
dkim_ok(const char *fields)
{
	struct out_attempt	a;
	int			ok;

	mb_init(&mb);
	mb_u32(&mb, 1);
	mb_str(&mb, "0123456789abcdef");
	mb_str(&mb, "a@b");
	mb_str(&mb, "r.example");
	mb_u64(&mb, 10);
	mb_str(&mb, fields);
	mb_str(&mb, "x@r.example");
	ok = out_read_attempt(mb.buf, mb.len, &a) == 0;
	if (ok)
		ok = strcmp(a.dkim, fields) == 0;
	out_attempt_clear(&a);
	return ok;
}

static void
test_attempt_dkim(void)
{
	CHECK("dkim: none", dkim_ok(""));
	CHECK("dkim: one folded field", dkim_ok("DKIM-Signature: v=1;\r\n"
	    "\tb=abc\r\n"));
	CHECK("dkim: two fields", dkim_ok("DKIM-Signature: a\r\n"
	    "DKIM-Signature: b\r\n \tc\r\n"));
	CHECK("dkim: another field refused", !dkim_ok("DKIM-Signature: a\r\n"
	    "Bcc: x@y\r\n"));
	CHECK("dkim: another name refused", !dkim_ok("X-Other: a\r\n"));
	CHECK("dkim: an empty line refused", !dkim_ok("DKIM-Signature: a\r\n"
	    "\r\n"));
	CHECK("dkim: a bare LF refused", !dkim_ok("DKIM-Signature: a\n"));
	CHECK("dkim: a bare CR refused", !dkim_ok("DKIM-Signature: a\rb\r\n"));
	CHECK("dkim: no final CRLF refused", !dkim_ok("DKIM-Signature: a"));
	CHECK("dkim: a control octet refused",
	    !dkim_ok("DKIM-Signature: a\x01\r\n"));
}

/* The builder stops where the message is full, and reads back. */
static void
test_attempt_build(void)
{
	struct out_attempt_build	 b;
	struct out_attempt		 oa, back;
	char				 addr[ADDR_PATH_MAX];
	uint32_t			 n = 0;

	memset(&oa, 0, sizeof(oa));
	oa.id = 7;
	strlcpy(oa.qid, "0123456789abcdef", sizeof(oa.qid));
	strlcpy(oa.domain, "r.example", sizeof(oa.domain));
	out_attempt_begin(&b, &oa);
	memset(addr, 'x', sizeof(addr));
	addr[ADDR_PATH_MAX - 1] = '\0';
	memcpy(addr + ADDR_PATH_MAX - 11, "@r.example", 10);
	while (out_attempt_fits(&b, addr) && n < ENV_MAX_RCPTS + 1) {
		out_attempt_add(&b, addr);
		n++;
	}
	/* 62: the (empty) DKIM-Signature string takes a place too */
	CHECK("a full attempt holds 62 of the longest addresses",
	    n == 62 && b.nrcpts == n && !b.mb.overflow);
	CHECK("a full attempt reads back", out_read_attempt(b.mb.buf,
	    b.mb.len, &back) == 0 && back.nrcpts == n &&
	    strcmp(back.rcpt[n - 1], addr) == 0);
	out_attempt_clear(&back);
	out_attempt_begin(&b, &oa);
	for (n = 0; n < ENV_MAX_RCPTS + 5 && out_attempt_fits(&b, "a@r"); n++)
		out_attempt_add(&b, "a@r");
	CHECK("short addresses stop at ENV_MAX_RCPTS", n == ENV_MAX_RCPTS);
}

static int
result_ok(uint32_t result, uint32_t last, const char *text)
{
	struct out_result	r;

	mb_init(&mb);
	mb_u32(&mb, 5);
	mb_u32(&mb, 2);
	mb_u32(&mb, result);
	mb_u32(&mb, last);
	mb_str(&mb, text);
	return out_read_result(mb.buf, mb.len, &r) == 0 && r.id == 5 &&
	    r.index == 2 && r.result == result && r.last == last &&
	    strcmp(r.text, text) == 0;
}

static void
test_result(void)
{
	struct out_result	r;
	char			long_text[OUT_TEXT_MAX + 2];

	CHECK("delivered", result_ok(OUT_DELIVERED, 0, "250 2.0.0 ok"));
	CHECK("deferred, the last",
	    result_ok(OUT_DEFERRED, 1, "451 4.3.0 later"));
	CHECK("failed", result_ok(OUT_FAILED, 0, "550 5.1.1 no"));
	CHECK("last neither 0 nor 1", !result_ok(OUT_FAILED, 2, "550"));
	CHECK("result out of range", !result_ok(OUT_FAILED + 1, 0, "550"));
	CHECK("result text with LF",
	    !result_ok(OUT_FAILED, 0, "550\nX: y"));
	CHECK("result text with DEL",
	    !result_ok(OUT_FAILED, 0, "550 \x7f"));
	CHECK("result short", out_read_result(mb.buf, 3, &r) == -1);
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	CHECK("result text too long", !result_ok(OUT_FAILED, 0, long_text));
	long_text[OUT_TEXT_MAX] = '\0';
	CHECK("result text at the limit",
	    result_ok(OUT_FAILED, 1, long_text));
}

int
main(void)
{
	test_attempt();
	test_attempt_build();
	test_attempt_dkim();
	test_result();
	UNIT_EXIT();
}
