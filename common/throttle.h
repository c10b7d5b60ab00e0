/*
 * Memory of failed logins, for AUTH throttling (DESIGN.md A7): how many
 * failures a key (a client address, an account) had in a recent window.
 * Pure: the caller says what time it is; no I/O.
 *
 * The table has a fixed number of slots, chosen at creation, so a flood
 * of addresses or user names cannot grow it: a key that does not fit
 * takes the slot, among the few it may use, whose last failure is the
 * oldest. Slots are picked by a hash under a random key, so an attacker
 * cannot aim its keys at the slot of somebody else's.
 */
#ifndef PYMAILD_THROTTLE_H
#define PYMAILD_THROTTLE_H

#include <stddef.h>
#include <time.h>

#define THROTTLE_KEY_MAX	64	/* octets of a key, NUL excluded */
#define THROTTLE_KEEP		32	/* failures remembered per key */

struct throttle;

/* A table of nslots keys (rounded up to a whole number of sets). */
struct throttle	*throttle_new(size_t nslots, const void *seed,
		    size_t seedlen);
void		 throttle_free(struct throttle *);
/* Failures of key in (now - window, now], at most THROTTLE_KEEP. */
int		 throttle_count(struct throttle *, const char *key,
		    time_t now, int window);
/* Count one more failure now; returns throttle_count after it. */
int		 throttle_add(struct throttle *, const char *key, time_t now,
		    int window);
/*
 * The key a client address's failures count under: IPv4 addresses one
 * by one, IPv6 ones by their /64 (a subscriber gets a whole /64, so
 * counting each address would give an attacker 2^64 fresh starts), an
 * IPv4-mapped IPv6 address as the IPv4 one. Text that is no address is
 * its own key, cut to fit.
 */
void		 throttle_addr_key(const char *addr,
		    char key[THROTTLE_KEY_MAX + 1]);

#endif
