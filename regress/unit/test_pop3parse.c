/*
 * The POP3 command parser (pop3d/parse.c): verbs, argument counts,
 * message numbers and TOP line counts at their edges, the raw password
 * of PASS, the AUTH mechanism and initial response, SASL response lines.
 *
 * The parser is linked alone (UNIT_EXTRA_* in the Makefile): it needs
 * nothing but libcommon.a, which is the point.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pop3d.h"
#include "unit.h"

static struct pop3_cmd	cmd;
static char		buf[2048];

/* Parse a copy of s (the parser splits its line in place). */
static int
parse(const char *s)
{
	size_t	len = strlen(s);

	memcpy(buf, s, len + 1);
	return pop3_parse(buf, len, &cmd);
}

static int
parse_n(const char *s, size_t len)
{
	memcpy(buf, s, len);
	buf[len] = '\0';
	return pop3_parse(buf, len, &cmd);
}

static int
is_ok(const char *s, enum pop3_verb verb, int nargs)
{
	return parse(s) == 0 && cmd.verb == verb && cmd.nargs == nargs &&
	    cmd.error == NULL && cmd.argerror == NULL;
}

/* Refused whatever the state: no verb. */
static int
refused(const char *s, size_t len, const char *why)
{
	return parse_n(s, len) == -1 && cmd.verb == POP3_NONE &&
	    cmd.error != NULL && strcmp(cmd.error, why) == 0;
}

/* A known verb, refused for its arguments. */
static int
argbad(const char *s, enum pop3_verb verb, const char *why)
{
	return parse(s) == -1 && cmd.verb == verb && cmd.error == NULL &&
	    cmd.argerror != NULL && strcmp(cmd.argerror, why) == 0;
}

static int
msgno_is(const char *s, uint64_t n)
{
	return parse(s) == 0 && cmd.nargs >= 1 && cmd.msgno == n;
}

static void
test_verbs(void)
{
	CHECK("every verb", is_ok("CAPA", POP3_CAPA, 0) &&
	    is_ok("USER a", POP3_USER, 1) && is_ok("PASS p", POP3_PASS, 1) &&
	    is_ok("AUTH", POP3_AUTH, 0) && is_ok("QUIT", POP3_QUIT, 0) &&
	    is_ok("NOOP", POP3_NOOP, 0) && is_ok("STAT", POP3_STAT, 0) &&
	    is_ok("LIST", POP3_LIST, 0) && is_ok("UIDL", POP3_UIDL, 0) &&
	    is_ok("RETR 1", POP3_RETR, 1) && is_ok("TOP 1 2", POP3_TOP, 2) &&
	    is_ok("DELE 1", POP3_DELE, 1) && is_ok("RSET", POP3_RSET, 0));
	CHECK("verbs ignore case", is_ok("noop", POP3_NOOP, 0) &&
	    is_ok("rEtR 3", POP3_RETR, 1) && is_ok("top 1 0", POP3_TOP, 2));
	CHECK("unknown verb", refused("NOPE", 4, "unknown command") &&
	    refused("NOOPS", 5, "unknown command") &&
	    refused("NOO", 3, "unknown command") &&
	    refused("APOP a b", 8, "unknown command"));
	CHECK("STLS", is_ok("STLS", POP3_STLS, 0) && is_ok("stls", POP3_STLS,
	    0) && argbad("STLS now", POP3_STLS, "STLS takes no argument"));
	CHECK("empty line", refused("", 0, "unknown command"));
	CHECK("a space before the verb",
	    refused(" NOOP", 5, "unknown command"));
	CHECK("a tab is no separator",
	    refused("NOOP\t", 5, "unknown command") &&
	    refused("RETR\t1", 6, "unknown command"));
	CHECK("a space after the verb", is_ok("NOOP ", POP3_NOOP, 0) &&
	    is_ok("STAT   ", POP3_STAT, 0));
	CHECK("QUIT takes anything", is_ok("QUIT now please", POP3_QUIT, 2));
	CHECK("no argument where none is taken",
	    argbad("CAPA x", POP3_CAPA, "CAPA takes no argument") &&
	    argbad("NOOP 1", POP3_NOOP, "NOOP takes no argument") &&
	    argbad("STAT 1", POP3_STAT, "STAT takes no argument") &&
	    argbad("RSET 1", POP3_RSET, "RSET takes no argument"));
}

static void
test_line(void)
{
	char	long_ok[POP3_CMD_MAX + 2];

	memset(long_ok, 'a', sizeof(long_ok));
	memcpy(long_ok, "USER ", 5);
	long_ok[POP3_CMD_MAX] = '\0';
	CHECK("253 octets", is_ok(long_ok, POP3_USER, 1) &&
	    strlen(cmd.arg) == POP3_CMD_MAX - 5);
	long_ok[POP3_CMD_MAX] = 'a';
	long_ok[POP3_CMD_MAX + 1] = '\0';
	CHECK("254 octets", refused(long_ok, POP3_CMD_MAX + 1,
	    "line too long"));
	CHECK("NUL inside", refused("NOOP\0", 5, "NUL in command") &&
	    refused("\0", 1, "NUL in command") &&
	    refused("USER a\0b", 8, "NUL in command"));
	memset(long_ok, 'x', sizeof(long_ok));
	long_ok[0] = '\0';
	CHECK("NUL told before length", refused(long_ok, sizeof(long_ok),
	    "NUL in command"));
	CHECK("a CR is no line end", refused("NO\rOP", 5, "unknown command"));
	CHECK("octets over 127", refused("\xff\xfe", 2, "unknown command"));
	/* Too many arguments is known only once the verb is allowed. */
	CHECK("four arguments", parse("USER a b c d") == -1 &&
	    cmd.verb == POP3_USER && cmd.error != NULL &&
	    strcmp(cmd.error, "too many arguments") == 0);
	CHECK("three arguments are no line error", parse("USER a b c") == -1 &&
	    cmd.error == NULL && cmd.argerror != NULL);
	CHECK("four arguments to QUIT", parse("QUIT a b c d") == -1 &&
	    cmd.verb == POP3_QUIT && cmd.error != NULL);
}

static void
test_user_pass(void)
{
	CHECK("USER name", is_ok("USER alice", POP3_USER, 1) &&
	    strcmp(cmd.arg, "alice") == 0);
	CHECK("USER spaces around", is_ok("USER   alice  ", POP3_USER, 1) &&
	    strcmp(cmd.arg, "alice") == 0);
	CHECK("USER keeps case and octets", is_ok("USER Al\xc3\xa9@x/..",
	    POP3_USER, 1) && strcmp(cmd.arg, "Al\xc3\xa9@x/..") == 0);
	CHECK("USER without a name",
	    argbad("USER", POP3_USER, "USER takes one argument") &&
	    argbad("USER ", POP3_USER, "USER takes one argument"));
	CHECK("USER with two names",
	    argbad("USER a b", POP3_USER, "USER takes one argument"));
	CHECK("PASS as is", is_ok("PASS  two  spaces ", POP3_PASS, 1) &&
	    strcmp(cmd.arg, " two  spaces ") == 0);
	CHECK("PASS of many words", is_ok("PASS a b c d e", POP3_PASS, 1) &&
	    strcmp(cmd.arg, "a b c d e") == 0);
	CHECK("PASS alone", argbad("PASS", POP3_PASS,
	    "PASS takes the password") && cmd.nargs == 0);
	CHECK("PASS empty", argbad("PASS ", POP3_PASS,
	    "PASS takes the password"));
	CHECK("pass in lower case", is_ok("pass x", POP3_PASS, 1) &&
	    strcmp(cmd.arg, "x") == 0);
}

static void
test_auth(void)
{
	CHECK("AUTH alone lists", is_ok("AUTH", POP3_AUTH, 0) &&
	    cmd.arg == NULL && cmd.resp == NULL);
	CHECK("AUTH PLAIN", is_ok("AUTH PLAIN", POP3_AUTH, 1) &&
	    strcmp(cmd.arg, "PLAIN") == 0 && cmd.resp == NULL);
	CHECK("AUTH plain", is_ok("AUTH plain", POP3_AUTH, 1));
	CHECK("AUTH PLAIN initial response",
	    is_ok("AUTH PLAIN AGFsaWNlAHB3", POP3_AUTH, 2) &&
	    strcmp(cmd.resp, "AGFsaWNlAHB3") == 0);
	CHECK("AUTH PLAIN =", is_ok("AUTH PLAIN =", POP3_AUTH, 2) &&
	    strcmp(cmd.resp, "=") == 0);
	CHECK("AUTH PLAIN response, spaces after",
	    is_ok("AUTH PLAIN abc   ", POP3_AUTH, 2) &&
	    strcmp(cmd.resp, "abc") == 0);
	CHECK("other mechanisms", argbad("AUTH LOGIN", POP3_AUTH,
	    "unsupported authentication mechanism") &&
	    argbad("AUTH CRAM-MD5 x", POP3_AUTH,
	    "unsupported authentication mechanism") &&
	    argbad("AUTH PLAINX", POP3_AUTH,
	    "unsupported authentication mechanism") &&
	    argbad("AUTH LOGIN a b", POP3_AUTH,
	    "unsupported authentication mechanism"));
	CHECK("AUTH PLAIN, two responses",
	    argbad("AUTH PLAIN a b", POP3_AUTH, "too many arguments"));
	CHECK("AUTH, four words", parse("AUTH PLAIN a b c") == -1 &&
	    cmd.verb == POP3_AUTH && cmd.error != NULL &&
	    cmd.argerror == NULL);
}

static void
test_msgno(void)
{
	CHECK("msgno 1", msgno_is("RETR 1", 1));
	CHECK("msgno 0 is no message, not a bad one", msgno_is("RETR 0", 0));
	CHECK("msgno leading zeros", msgno_is("RETR 0007", 7) &&
	    msgno_is("DELE 0000000001", 1));
	CHECK("msgno 2^31", msgno_is("RETR 2147483648", 2147483648ULL));
	CHECK("msgno 2^32 - 1", msgno_is("RETR 4294967295", 4294967295ULL));
	CHECK("msgno 2^32", msgno_is("RETR 4294967296", 4294967296ULL));
	CHECK("msgno of ten nines", msgno_is("LIST 9999999999",
	    9999999999ULL));
	/* Longer than any message number: no such message, not bad. */
	CHECK("msgno of eleven digits", msgno_is("RETR 00000000001", 0) &&
	    msgno_is("RETR 10000000000", 0));
	CHECK("msgno of 18 digits", msgno_is("UIDL 999999999999999999", 0));
	CHECK("msgno of 19 digits", argbad("RETR 1000000000000000000",
	    POP3_RETR, "invalid message number"));
	CHECK("msgno 2^64", argbad("RETR 18446744073709551616", POP3_RETR,
	    "invalid message number"));
	CHECK("msgno negative", argbad("RETR -1", POP3_RETR,
	    "invalid message number") && argbad("DELE -0", POP3_DELE,
	    "invalid message number"));
	CHECK("msgno leading +", argbad("RETR +1", POP3_RETR,
	    "invalid message number"));
	CHECK("msgno not digits", argbad("LIST 1a", POP3_LIST,
	    "invalid message number") && argbad("UIDL x", POP3_UIDL,
	    "invalid message number") && argbad("RETR 1.0", POP3_RETR,
	    "invalid message number") && argbad("RETR 0x1", POP3_RETR,
	    "invalid message number") && argbad("RETR \xd9\xa1", POP3_RETR,
	    "invalid message number"));
	CHECK("msgno spaces around", msgno_is("RETR   12  ", 12));
	CHECK("msgno and a tab", argbad("RETR 1\t", POP3_RETR,
	    "invalid message number"));
	CHECK("RETR arity", argbad("RETR", POP3_RETR,
	    "RETR takes a message number") && argbad("RETR 1 2", POP3_RETR,
	    "RETR takes a message number"));
	CHECK("DELE arity", argbad("DELE", POP3_DELE,
	    "DELE takes a message number"));
	CHECK("LIST and UIDL arity", argbad("LIST 1 2", POP3_LIST,
	    "LIST takes at most one argument") && argbad("UIDL 1 2",
	    POP3_UIDL, "UIDL takes at most one argument"));
	CHECK("LIST alone", is_ok("LIST", POP3_LIST, 0) && cmd.msgno == 0);
}

static void
test_top(void)
{
	CHECK("TOP 1 0", is_ok("TOP 1 0", POP3_TOP, 2) && cmd.msgno == 1 &&
	    cmd.lines == 0);
	CHECK("TOP lines 2^31, 2^32", is_ok("TOP 2 2147483648", POP3_TOP, 2) &&
	    cmd.lines == 2147483648ULL && is_ok("TOP 2 4294967296",
	    POP3_TOP, 2) && cmd.lines == 4294967296ULL);
	CHECK("TOP lines of 18 digits", is_ok("TOP 3 999999999999999999",
	    POP3_TOP, 2) && cmd.lines == 999999999999999999ULL);
	CHECK("TOP lines of 19 digits", argbad("TOP 3 1000000000000000000",
	    POP3_TOP, "invalid line count"));
	CHECK("TOP lines negative or signed", argbad("TOP 1 -1", POP3_TOP,
	    "invalid line count") && argbad("TOP 1 +1", POP3_TOP,
	    "invalid line count"));
	CHECK("TOP lines checked before the message number",
	    argbad("TOP x y", POP3_TOP, "invalid line count"));
	CHECK("TOP bad message number", argbad("TOP x 1", POP3_TOP,
	    "invalid message number"));
	CHECK("TOP far message number", is_ok("TOP 99999999999 1", POP3_TOP,
	    2) && cmd.msgno == 0);
	CHECK("TOP arity", argbad("TOP", POP3_TOP,
	    "TOP takes a message number and a line count") &&
	    argbad("TOP 1", POP3_TOP,
	    "TOP takes a message number and a line count") &&
	    argbad("TOP 1 2 3", POP3_TOP,
	    "TOP takes a message number and a line count"));
}

static int
response(const char *s, size_t len, enum pop3_verb verb)
{
	return pop3_parse_response(s, len, &cmd) == (verb == POP3_NONE ?
	    -1 : 0) && cmd.verb == verb;
}

static void
test_response(void)
{
	CHECK("response", response("AGFsaWNlAHB3", 12, POP3_RESPONSE) &&
	    strcmp(cmd.arg, "AGFsaWNlAHB3") == 0);
	CHECK("response *", response("*", 1, POP3_CANCEL));
	CHECK("response * and more", response("* ", 2, POP3_RESPONSE) &&
	    response("**", 2, POP3_RESPONSE));
	CHECK("response empty", response("", 0, POP3_RESPONSE));
	CHECK("response with NUL", response("*\0", 2, POP3_NONE) &&
	    strcmp(cmd.error, "NUL in command") == 0);
	CHECK("response longer than a command", response(
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFB", 260, POP3_RESPONSE));
}

int
main(void)
{
	test_verbs();
	test_line();
	test_user_pass();
	test_auth();
	test_msgno();
	test_top();
	test_response();
	UNIT_EXIT();
}
