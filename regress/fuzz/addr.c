/*
 * RFC 5321 paths (common/addr.c). The first byte picks the flags, the
 * rest is the text after "MAIL FROM:" or "RCPT TO:". A path that parses
 * formats to "local@domain", which parses back to the same address.
 */
#include <string.h>

#include "addr.h"
#include "fuzz.h"

static void
same_addr(const struct mailaddr *a, const struct mailaddr *b)
{
	FUZZ_ASSERT(strcmp(a->local, b->local) == 0);
	FUZZ_ASSERT(strcmp(a->domain, b->domain) == 0);
	FUZZ_ASSERT(a->quoted == b->quoted);
	FUZZ_ASSERT(a->literal == b->literal);
	FUZZ_ASSERT(a->null == b->null);
}

static void
check_path(const char *s, int flags)
{
	struct mailaddr	 a, b;
	const char	*rest, *why;
	char		 text[ADDR_PATH_MAX + 8], path[ADDR_PATH_MAX + 8];
	size_t		 i;

	if (addr_parse_path(s, flags, &a, &rest, &why) == -1) {
		FUZZ_ASSERT(why != NULL);
		return;
	}
	FUZZ_ASSERT(rest > s && rest <= s + strlen(s));
	FUZZ_ASSERT(strlen(a.local) <= ADDR_LOCAL_MAX);
	FUZZ_ASSERT(strlen(a.domain) <= ADDR_DOMAIN_MAX);
	FUZZ_ASSERT(!a.null || (flags & ADDR_ALLOW_NULL));
	for (i = 0; a.domain[i] != '\0'; i++)
		FUZZ_ASSERT(a.domain[i] < 'A' || a.domain[i] > 'Z');
	if (addr_format(&a, text, sizeof(text)) == -1)
		return;
	FUZZ_ASSERT(strlen(text) < ADDR_PATH_MAX);
	/* What a session stores is read back the same. */
	snprintf(path, sizeof(path), "<%s>", text);
	FUZZ_ASSERT(addr_parse_path(path, flags, &b, &rest, &why) == 0);
	FUZZ_ASSERT(*rest == '\0');
	same_addr(&a, &b);
	if (!a.null) {
		FUZZ_ASSERT(addr_parse_mailbox(text, flags, &b, &why) == 0);
		same_addr(&a, &b);
		FUZZ_ASSERT(addr_domain_valid(a.domain, flags));
	}
	(void)addr_has_route_chars(&a);
}

FUZZ_ENTRY(addr)
{
	struct mailaddr	 a;
	const char	*why;
	char		*s;
	int		 flags;

	if (size < 1)
		return 0;
	flags = data[0] & (ADDR_ALLOW_NULL | ADDR_UTF8);
	s = fuzz_cstr(data + 1, size - 1);
	check_path(s, flags);
	if (addr_parse_mailbox(s, flags, &a, &why) == 0)
		FUZZ_ASSERT(strlen(a.local) <= ADDR_LOCAL_MAX);
	(void)addr_domain_valid(s, flags);
	free(s);
	return 0;
}
