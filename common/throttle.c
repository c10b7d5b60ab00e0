#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <sha2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "throttle.h"
#include "util.h"

#define WAYS		8	/* slots a key may use */
#define SEED_MAX	32

struct tslot {
	char		key[THROTTLE_KEY_MAX + 1];
	uint8_t		n;		/* failures in when[], oldest first */
	time_t		when[THROTTLE_KEEP];
};

struct throttle {
	struct tslot	*slots;
	size_t		 nsets;
	uint8_t		 seed[SEED_MAX];
};

struct throttle *
throttle_new(size_t nslots, const void *seed, size_t seedlen)
{
	struct throttle	*t = xcalloc(1, sizeof(*t));

	t->nsets = (nslots + WAYS - 1) / WAYS;
	if (t->nsets == 0)
		t->nsets = 1;
	t->slots = xcalloc(t->nsets * WAYS, sizeof(*t->slots));
	memcpy(t->seed, seed, seedlen < SEED_MAX ? seedlen : SEED_MAX);
	return t;
}

void
throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t);
}

static struct tslot *
set_of(struct throttle *t, const char *key)
{
	SHA2_CTX	ctx;
	uint8_t		d[SHA256_DIGEST_LENGTH];
	uint64_t	h;

	SHA256Init(&ctx);
	SHA256Update(&ctx, t->seed, sizeof(t->seed));
	SHA256Update(&ctx, (const uint8_t *)key, strlen(key));
	SHA256Final(d, &ctx);
	memcpy(&h, d, sizeof(h));
	return &t->slots[(h % t->nsets) * WAYS];
}

static time_t
last_failure(const struct tslot *s)
{
	return s->n ? s->when[s->n - 1] : 0;
}

/* The key's slot, or NULL; with create, the set's stalest slot is
 * given to it when it has none. */
static struct tslot *
lookup(struct throttle *t, const char *key, int create)
{
	struct tslot	*set = set_of(t, key), *victim = set;
	char		 k[THROTTLE_KEY_MAX + 1];
	int		 i;

	strlcpy(k, key, sizeof(k));
	for (i = 0; i < WAYS; i++) {
		if (set[i].n && strcmp(set[i].key, k) == 0)
			return &set[i];
		if (last_failure(&set[i]) < last_failure(victim))
			victim = &set[i];
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	strlcpy(victim->key, k, sizeof(victim->key));
	return victim;
}

static int
recent(const struct tslot *s, time_t now, int window)
{
	int	i, n = 0;

	for (i = 0; i < s->n; i++)
		if (now - s->when[i] < window)
			n++;
	return n;
}

int
throttle_count(struct throttle *t, const char *key, time_t now, int window)
{
	struct tslot	*s;

	if ((s = lookup(t, key, 0)) == NULL)
		return 0;
	return recent(s, now, window);
}

int
throttle_add(struct throttle *t, const char *key, time_t now, int window)
{
	struct tslot	*s = lookup(t, key, 1);

	if (s->n == THROTTLE_KEEP) {
		memmove(s->when, s->when + 1, (THROTTLE_KEEP - 1) *
		    sizeof(s->when[0]));
		s->n--;
	}
	s->when[s->n++] = now;
	return recent(s, now, window);
}

void
throttle_addr_key(const char *addr, char key[THROTTLE_KEY_MAX + 1])
{
	struct in6_addr	a6;
	struct in_addr	a4;
	char		text[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, addr, &a4) == 1) {
		inet_ntop(AF_INET, &a4, key, THROTTLE_KEY_MAX + 1);
		return;
	}
	if (inet_pton(AF_INET6, addr, &a6) != 1) {
		strlcpy(key, addr, THROTTLE_KEY_MAX + 1);
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		inet_ntop(AF_INET, &a6.s6_addr[12], key, THROTTLE_KEY_MAX + 1);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	inet_ntop(AF_INET6, &a6, text, sizeof(text));
	strlcpy(key, text, THROTTLE_KEY_MAX + 1);
	strlcat(key, "/64", THROTTLE_KEY_MAX + 1);
}
