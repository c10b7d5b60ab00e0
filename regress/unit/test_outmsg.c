/*
 * The readers of what queued and outbound send each other
 * (common/outmsg.c). What one side builds, the other reads back field
 * for field; what a compromised or broken peer could send instead is
 * refused: short or long payloads, a string holding a NUL or a control
 * character (CR LF would split an SMTP command, an envelope line, a log
 * line), a queue id that is not 16 hex digits, no recipients or more
 * than an envelope may hold, an empty domain or address, a result code
 * out of range.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "imsg.h"
#include "outmsg.h"
#include "unit.h"

static struct msgbuild	mb;

static void
attempt_payload(uint32_t id, const char *qid, const char *sender,
    const char *domain, uint64_t size, uint32_t n)
{
	mb_init(&mb);
	mb_u32(&mb, id);
	mb_str(&mb, qid);
	mb_str(&mb, sender);
	mb_str(&mb, domain);
	mb_u64(&mb, size);
	mb_u32(&mb, n);
}

static int
attempt_ok(const char *qid, const char *sender, const char *domain,
    uint32_t n)
{
	struct out_attempt	a;

	attempt_payload(1, qid, sender, domain, 10, n);
	return out_read_attempt(mb.buf, mb.len, &a) == 0;
}

static void
test_attempt(void)
{
	struct out_attempt	a;
	const char		*qid = "0123456789abcdef";

	attempt_payload(42, qid, "a@b.example", "remote.example", 4096, 3);
	CHECK("attempt reads", out_read_attempt(mb.buf, mb.len, &a) == 0);
	CHECK("attempt fields", a.id == 42 && strcmp(a.qid, qid) == 0 &&
	    strcmp(a.sender, "a@b.example") == 0 &&
	    strcmp(a.domain, "remote.example") == 0 && a.size == 4096 &&
	    a.nrcpts == 3);
	CHECK("attempt one octet short",
	    out_read_attempt(mb.buf, mb.len - 1, &a) == -1);
	mb_u32(&mb, 0);
	CHECK("attempt with leftovers",
	    out_read_attempt(mb.buf, mb.len, &a) == -1);
	CHECK("null sender", attempt_ok(qid, "", "remote.example", 1));
	CHECK("no recipients", !attempt_ok(qid, "a@b", "remote.example", 0));
	CHECK("as many recipients as an envelope",
	    attempt_ok(qid, "a@b", "remote.example", ENV_MAX_RCPTS));
	CHECK("more recipients than an envelope",
	    !attempt_ok(qid, "a@b", "remote.example", ENV_MAX_RCPTS + 1));
	CHECK("empty domain", !attempt_ok(qid, "a@b", "", 1));
	CHECK("short queue id", !attempt_ok("0123", "a@b", "r.example", 1));
	CHECK("upper-case queue id",
	    !attempt_ok("0123456789ABCDEF", "a@b", "r.example", 1));
	CHECK("queue id with a slash",
	    !attempt_ok("0123456789abcde/", "a@b", "r.example", 1));
	CHECK("sender with CR LF",
	    !attempt_ok(qid, "a@b\r\nRCPT TO:<x@y>", "r.example", 1));
	CHECK("domain with a tab", !attempt_ok(qid, "a@b", "r\texample", 1));
	CHECK("UTF-8 domain", attempt_ok(qid, "a@b", "r\xc3\xa9.example", 1));
}

static void
test_rcpt(void)
{
	struct out_rcpt	r;
	char		big[ADDR_PATH_MAX + 1];
	uint8_t		nul[] = { 1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b' };

	mb_init(&mb);
	mb_u32(&mb, 9);
	mb_str(&mb, "x@remote.example");
	CHECK("rcpt reads", out_read_rcpt(mb.buf, mb.len, &r) == 0 &&
	    r.id == 9 && strcmp(r.address, "x@remote.example") == 0);
	mb_init(&mb);
	mb_u32(&mb, 9);
	mb_str(&mb, "");
	CHECK("empty address", out_read_rcpt(mb.buf, mb.len, &r) == -1);
	mb_init(&mb);
	mb_u32(&mb, 9);
	mb_str(&mb, "x@r.example>\r\nDATA");
	CHECK("address with CR LF", out_read_rcpt(mb.buf, mb.len, &r) == -1);
	CHECK("address with a NUL",
	    out_read_rcpt(nul, sizeof(nul), &r) == -1);
	memset(big, 'a', sizeof(big));
	big[ADDR_PATH_MAX - 1] = '\0';		/* the longest that fits */
	mb_init(&mb);
	mb_u32(&mb, 9);
	mb_str(&mb, big);
	CHECK("address at ADDR_PATH_MAX - 1",
	    out_read_rcpt(mb.buf, mb.len, &r) == 0);
	big[ADDR_PATH_MAX - 1] = 'a';
	big[ADDR_PATH_MAX] = '\0';
	mb_init(&mb);
	mb_u32(&mb, 9);
	mb_str(&mb, big);
	CHECK("address over ADDR_PATH_MAX",
	    out_read_rcpt(mb.buf, mb.len, &r) == -1);
}

static int
result_ok(uint32_t result, const char *text)
{
	struct out_result	r;

	mb_init(&mb);
	mb_u32(&mb, 5);
	mb_u32(&mb, 2);
	mb_u32(&mb, result);
	mb_str(&mb, text);
	return out_read_result(mb.buf, mb.len, &r) == 0 && r.id == 5 &&
	    r.index == 2 && r.result == result && strcmp(r.text, text) == 0;
}

static void
test_result_done(void)
{
	struct out_done	d;
	char		long_text[OUT_TEXT_MAX + 2];

	CHECK("delivered", result_ok(OUT_DELIVERED, "250 2.0.0 ok"));
	CHECK("deferred", result_ok(OUT_DEFERRED, "451 4.3.0 later"));
	CHECK("failed", result_ok(OUT_FAILED, "550 5.1.1 no"));
	CHECK("result out of range", !result_ok(OUT_FAILED + 1, "550"));
	CHECK("result text with LF", !result_ok(OUT_FAILED, "550\nX: y"));
	CHECK("result text with DEL", !result_ok(OUT_FAILED, "550 \x7f"));
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	CHECK("result text too long", !result_ok(OUT_FAILED, long_text));
	long_text[OUT_TEXT_MAX] = '\0';
	CHECK("result text at the limit", result_ok(OUT_FAILED, long_text));

	mb_init(&mb);
	mb_u32(&mb, 77);
	mb_str(&mb, "mx[192.0.2.1]:25: timed out");
	CHECK("done reads", out_read_done(mb.buf, mb.len, &d) == 0 &&
	    d.id == 77 && strcmp(d.lasterror, "mx[192.0.2.1]:25: timed "
	    "out") == 0);
	CHECK("done short", out_read_done(mb.buf, 3, &d) == -1);
	mb_init(&mb);
	mb_u32(&mb, 77);
	mb_str(&mb, "a\rb");
	CHECK("done with CR", out_read_done(mb.buf, mb.len, &d) == -1);
}

int
main(void)
{
	test_attempt();
	test_rcpt();
	test_result_done();
	UNIT_EXIT();
}
