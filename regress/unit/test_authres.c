/*
 * Authentication-Results (common/authres.c): which arriving fields claim
 * our authserv-id, and the field we write.
 */
#include <string.h>

#include "authres.h"
#include "unit.h"

#define ID	"mx.example.org"

static int
ours(const char *v)
{
	return authres_is_ours(v, strlen(v), ID);
}

static void
test_is_ours(void)
{
	CHECK("ours", ours(" mx.example.org; spf=pass smtp.mailfrom=a.example"));
	CHECK("ours, other case", ours(" MX.Example.ORG; dkim=pass"));
	CHECK("ours, folded and commented",
	    ours("\r\n\t(a comment (nested)) mx.example.org\r\n (x) ;\r\n\t"
	    "dmarc=pass"));
	CHECK("ours with a version", ours(" mx.example.org 1; spf=pass"));
	CHECK("ours, quoted", ours(" \"mx.example.org\"; spf=pass"));
	CHECK("ours, nothing after", ours(" mx.example.org") &&
	    ours(" mx.example.org; none"));
	CHECK("another server's", !ours(" mx.google.example; spf=pass "
	    "smtp.mailfrom=mx.example.org"));
	CHECK("a longer name is another", !ours(" mx.example.org.evil; "
	    "spf=pass") && !ours(" xmx.example.org; spf=pass"));
	CHECK("unreadable and naming us: ours",
	    ours(" ((((((((((deep)))))))))) mx.example.org; spf=pass") &&
	    ours(" (unterminated mx.example.org; spf=pass") &&
	    ours(" mx.example.org junk; spf=pass"));
	CHECK("unreadable, not naming us: not ours",
	    !ours(" (unterminated other.example; spf=pass") &&
	    !ours("") && !ours(" ; spf=pass"));
}

static const char *
end(struct authres *ar)
{
	size_t	len;

	return authres_end(ar, &len);
}

static void
test_write(void)
{
	struct authres	 ar;
	const char	*f;
	char		 big[4000];

	authres_begin(&ar, ID);
	f = end(&ar);
	CHECK("no result: none", f != NULL && strcmp(f,
	    "Authentication-Results: mx.example.org; none\r\n") == 0);

	authres_begin(&ar, ID);
	authres_method(&ar, "spf", "pass", NULL);
	authres_prop(&ar, "smtp.mailfrom", "user@a.example");
	authres_method(&ar, "dkim", "fail", "bad \"sig\"\r\nX-Evil: 1");
	authres_prop(&ar, "header.d", "a.example");
	authres_prop(&ar, "header.s", "sel;evil\r\nX-Injected: yes");
	f = end(&ar);
	CHECK("methods on lines of their own", f != NULL && strstr(f,
	    "Authentication-Results: mx.example.org;\r\n\tspf=pass "
	    "smtp.mailfrom=user@a.example;\r\n\tdkim=fail reason=") != NULL);
	CHECK("no bare CR or LF from the network", f != NULL &&
	    strstr(f, "X-Evil") != NULL && strstr(f, "\nX-Evil") == NULL &&
	    strstr(f, "\nX-Injected") == NULL &&
	    strstr(f, "\"sel;evil??X-Injected: yes\"") != NULL &&
	    strstr(f, "reason=\"bad \\\"sig\\\"??X-Evil: 1\"") != NULL);
	CHECK("ends with one CRLF", f != NULL &&
	    strcmp(f + strlen(f) - 2, "\r\n") == 0);

	authres_begin(&ar, ID);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	authres_method(&ar, "spf", "pass", NULL);
	authres_prop(&ar, "smtp.mailfrom", big);
	f = end(&ar);
	CHECK("a huge value is cut, the field stays bounded", f != NULL &&
	    strlen(f) < AUTHRES_FIELD_MAX);
	authres_begin(&ar, ID);
	for (int i = 0; i < 40; i++) {
		authres_method(&ar, "dkim", "pass", NULL);
		authres_prop(&ar, "header.d", big);
	}
	CHECK("too much: NULL, never a cut field", end(&ar) == NULL);
}

static void
test_field_ok(void)
{
	struct authres	 ar;
	const char	*f;
	size_t		 len;

	authres_begin(&ar, ID);
	authres_method(&ar, "spf", "fail", "bad \"one\"\r\nX-Evil: 1");
	authres_prop(&ar, "smtp.mailfrom", "a@b.example");
	f = authres_end(&ar, &len);
	CHECK("what the builder writes passes", f != NULL &&
	    authres_field_ok(f));
	CHECK("the smallest field", authres_field_ok(
	    "Authentication-Results: x\r\n"));
	CHECK("no final CRLF", !authres_field_ok(
	    "Authentication-Results: x; none"));
	CHECK("another field name", !authres_field_ok("X-Evil: 1\r\n") &&
	    !authres_field_ok("authentication-results: x\r\n"));
	CHECK("a second field inside", !authres_field_ok(
	    "Authentication-Results: x; none\r\nX-Evil: 1\r\n"));
	CHECK("a bare LF or CR", !authres_field_ok(
	    "Authentication-Results: x;\n\tnone\r\n") && !authres_field_ok(
	    "Authentication-Results: x;\r\tnone\r\n"));
	CHECK("a fold without its TAB", !authres_field_ok(
	    "Authentication-Results: x;\r\n none\r\n"));
	CHECK("8-bit or NUL-free controls", !authres_field_ok(
	    "Authentication-Results: \xc3\xa9\r\n") && !authres_field_ok(
	    "Authentication-Results: \x01\r\n"));
}

int
main(void)
{
	test_is_ours();
	test_write();
	test_field_ok();
	UNIT_EXIT();
}
