/*
 * Unit tests for common/throttle.c: the key a client address counts
 * under (IPv6 by /64), and the bounded failure table.
 */
#include <stdio.h>
#include <string.h>

#include "throttle.h"
#include "unit.h"

#define WIN	(15 * 60)

static int
key_is(const char *addr, const char *want)
{
	char	key[THROTTLE_KEY_MAX + 1];

	throttle_addr_key(addr, key);
	if (strcmp(key, want) != 0)
		printf("# %s -> %s, want %s\n", addr, key, want);
	return strcmp(key, want) == 0;
}

static int
same_key(const char *a, const char *b)
{
	char	ka[THROTTLE_KEY_MAX + 1], kb[THROTTLE_KEY_MAX + 1];

	throttle_addr_key(a, ka);
	throttle_addr_key(b, kb);
	return strcmp(ka, kb) == 0;
}

static void
test_addr_key(void)
{
	CHECK("ipv4 is its own key", key_is("192.0.2.7", "192.0.2.7"));
	CHECK("ipv4 addresses differ", !same_key("127.0.0.1", "127.0.0.2"));
	CHECK("ipv6 counts by /64", key_is("2001:db8:1:2:aaaa:bbbb:cccc:dddd",
	    "2001:db8:1:2::/64"));
	CHECK("one /64, several addresses", same_key("2001:db8::1",
	    "2001:db8::ffff:ffff:ffff:ffff") && same_key("2001:db8::1",
	    "2001:0db8:0000:0000:1234::9") && same_key("::1", "::2"));
	CHECK("next /64 differs", !same_key("2001:db8:0:0::1",
	    "2001:db8:0:1::1") && !same_key("2001:db8::1", "2001:db9::1"));
	CHECK("ipv4-mapped ipv6 is the ipv4 address",
	    key_is("::ffff:192.0.2.7", "192.0.2.7") &&
	    !same_key("::ffff:192.0.2.7", "::ffff:192.0.2.8"));
	CHECK("text that is no address stays itself, bounded",
	    key_is("garbage", "garbage") && key_is(
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789", 
	    "0123456789012345678901234567890123456789012345678901234567890123"));
}

static void
test_counting(void)
{
	struct throttle	*t = throttle_new(64, "seed", 4);
	int		 i, n = 0;

	CHECK("unknown key has none", throttle_count(t, "a", 1000, WIN) == 0);
	for (i = 0; i < 5; i++)
		n = throttle_add(t, "a", 1000 + i, WIN);
	CHECK("five failures counted", n == 5 &&
	    throttle_count(t, "a", 1010, WIN) == 5);
	CHECK("other keys untouched", throttle_count(t, "b", 1010, WIN) == 0);
	CHECK("failures leave the window", throttle_count(t, "a",
	    1002 + WIN, WIN) == 2 && throttle_count(t, "a", 1004 + WIN,
	    WIN) == 0);
	for (i = 0; i < 100; i++)
		n = throttle_add(t, "c", 5000, WIN);
	CHECK("count capped by what is remembered", n == THROTTLE_KEEP);
	throttle_free(t);
}

static void
test_bounded(void)
{
	struct throttle	*t = throttle_new(256, "seed2", 5);
	char		 key[32];
	int		 i, kept = 0, recent = 1;

	for (i = 0; i < 20; i++)
		throttle_add(t, "victim", 100000, WIN);
	/* A flood of user names or addresses, long ago and now, one new
	 * key a second. */
	for (i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "flood%d", i);
		throttle_add(t, key, i < 100000 ? 1000 : i, WIN);
	}
	kept = throttle_count(t, "victim", 100100, WIN);
	for (i = 199990; i < 200000; i++) {
		snprintf(key, sizeof(key), "flood%d", i);
		recent &= throttle_count(t, key, 200000, WIN) == 1;
	}
	CHECK("latest keys of a flood are remembered", recent);
	/* The flood may evict the victim (the table is bounded), but the
	 * table never holds more keys than its slots. */
	CHECK("victim counted or forgotten, never miscounted",
	    kept == 20 || kept == 0);
	throttle_free(t);
}

int
main(void)
{
	test_addr_key();
	test_counting();
	test_bounded();
	UNIT_EXIT();
}
