/*
 * Password verification off the event loop. yescrypt costs ~60 ms, so a
 * few worker threads do it while the loop keeps serving deliveries and
 * POP3 requests; results come back through a pipe the loop watches.
 *
 * A short-lived cache of successful verifications spares a polling
 * client (the same user and password every minute) the full cost; it
 * keeps an HMAC of user, password and stored hash under a random key
 * made at start, never the password. A failure is never cached, and a
 * first login, or one with a changed password or hash, pays in full.
 *
 * Also the failure memory behind AUTH throttling (A7): per client
 * address (an IPv6 client by its /64), which slows and then refuses an
 * address, and per account, which locks an account that many addresses
 * together fail on. A locked account's answer is a wrong password's, so
 * a guesser cannot tell the lock from a miss, nor a right guess.
 */
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sha2.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pymaild.h"
#include "throttle.h"
#include "util.h"

#define FAIL_WINDOW	(15 * 60)
#define ADDR_BLOCK	20	/* failures of an address before 421 */
#define ADDR_DELAY_MS	1000	/* per failure of the address ... */
#define MAX_DELAY_MS	5000	/* ... up to this */
/*
 * Failures of an account, from any addresses, that lock it. Above
 * ADDR_BLOCK, so that one client of the owner with a stale password gets
 * its own address refused before it can lock the owner out; low enough
 * to hold a guesser with many addresses to about three thousand guesses
 * a day per account.
 */
#define ACCOUNT_LOCK	30
#define ADDR_SLOTS	8192	/* client addresses remembered */
#define ACCOUNT_SLOTS	8192	/* accounts remembered */
#define VCACHE_SLOTS	4096	/* successful checks remembered */
#define VCACHE_TTL_MS	(10 * 60 * 1000)

struct job {
	struct job	*next;
	char		 hash[USER_HASH_MAX + 1];
	char		 password[1024];
	int		 upgrade;
	int		 locked;	/* fails whatever the password */
	int		 ok;
	int		 cacheable;
	uint8_t		 mac[SHA256_DIGEST_LENGTH];
	char		 newhash[USER_HASH_MAX + 1];
	auth_done_fn	 done;
	void		*arg;
};

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cond = PTHREAD_COND_INITIALIZER;
static struct job	*todo_head, *todo_tail, *done_head;
static int		 wakefd[2];
static struct event	 ev_wake;

static struct vcache {
	uint8_t		mac[SHA256_DIGEST_LENGTH];
	long long	expires;	/* now_ms(); 0 when empty */
} vcache[VCACHE_SLOTS];
static uint8_t		 vkey[SHA256_BLOCK_LENGTH];
static struct throttle	*addr_fails, *account_fails;
static char		 dummy_hash[USER_HASH_MAX + 1];

/* HMAC-SHA256 (RFC 2104) under vkey of user NUL password NUL hash. */
static void
vcache_mac(const char *user, const char *password, const char *hash,
    uint8_t out[SHA256_DIGEST_LENGTH])
{
	SHA2_CTX	ctx;
	uint8_t		pad[SHA256_BLOCK_LENGTH];
	uint8_t		inner[SHA256_DIGEST_LENGTH];
	size_t		i;

	for (i = 0; i < sizeof(pad); i++)
		pad[i] = vkey[i] ^ 0x36;
	SHA256Init(&ctx);
	SHA256Update(&ctx, pad, sizeof(pad));
	SHA256Update(&ctx, (const uint8_t *)user, strlen(user) + 1);
	SHA256Update(&ctx, (const uint8_t *)password, strlen(password) + 1);
	SHA256Update(&ctx, (const uint8_t *)hash, strlen(hash));
	SHA256Final(inner, &ctx);
	for (i = 0; i < sizeof(pad); i++)
		pad[i] = vkey[i] ^ 0x5c;
	SHA256Init(&ctx);
	SHA256Update(&ctx, pad, sizeof(pad));
	SHA256Update(&ctx, inner, sizeof(inner));
	SHA256Final(out, &ctx);
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(inner, sizeof(inner));
	explicit_bzero(&ctx, sizeof(ctx));
}

static struct vcache *
vcache_slot(const uint8_t *mac)
{
	uint32_t	h;

	memcpy(&h, mac, sizeof(h));
	return &vcache[h % VCACHE_SLOTS];
}

static int
vcache_hit(const uint8_t *mac)
{
	struct vcache	*c = vcache_slot(mac);

	return c->expires > now_ms() && ct_memeq(c->mac, mac, sizeof(c->mac));
}

static void
vcache_put(const uint8_t *mac)
{
	struct vcache	*c = vcache_slot(mac);

	memcpy(c->mac, mac, sizeof(c->mac));
	c->expires = now_ms() + VCACHE_TTL_MS;
}

static void
job_finished(struct job *j)
{
	pthread_mutex_lock(&lock);
	j->next = done_head;
	done_head = j;
	pthread_mutex_unlock(&lock);
	if (write(wakefd[1], "", 1) == -1 && errno != EAGAIN)
		log_warn("auth wake-up");
}

/*
 * Every check costs one yescrypt whatever the stored hash: an md5 hash
 * (or bcrypt at a low cost) would answer in microseconds and tell an
 * imported account from the others. An upgrade's new hash is that cost
 * already.
 */
static void
verify(struct job *j)
{
	int	paid = strncmp(j->hash, "$y$", 3) == 0;

	j->ok = password_verify(j->password, j->hash);
	if (j->ok && j->upgrade) {
		if (password_hash(j->password, j->newhash,
		    sizeof(j->newhash)) == -1)
			j->newhash[0] = '\0';
		paid = 1;
	}
	if (!paid)
		(void)password_verify(j->password, dummy_hash);
}

static void *
worker(void *arg)
{
	struct job	*j;

	for (;;) {
		pthread_mutex_lock(&lock);
		while (todo_head == NULL)
			pthread_cond_wait(&cond, &lock);
		j = todo_head;
		todo_head = j->next;
		if (todo_head == NULL)
			todo_tail = NULL;
		pthread_mutex_unlock(&lock);

		verify(j);
		explicit_bzero(j->password, sizeof(j->password));
		job_finished(j);
	}
	return NULL;
}

static void
on_wake(int fd, short ev, void *arg)
{
	char		 buf[256];
	struct job	*j, *next;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&lock);
	j = done_head;
	done_head = NULL;
	pthread_mutex_unlock(&lock);
	for (; j != NULL; j = next) {
		next = j->next;
		if (j->locked) {
			j->ok = 0;
			j->newhash[0] = '\0';
		}
		if (j->ok && j->cacheable)
			vcache_put(j->mac);
		j->done(j->arg, j->ok, j->newhash[0] ? j->newhash : NULL);
		explicit_bzero(j, sizeof(*j));
		free(j);
	}
}

void
auth_init(struct event_base *base, int nthreads)
{
	pthread_t	t;
	uint8_t		seed[32];
	int		i;

	if (getrandom(vkey, sizeof(vkey), 0) != sizeof(vkey) ||
	    getrandom(seed, sizeof(seed), 0) != sizeof(seed))
		fatal("getrandom");
	/* Unknown users are checked against this, and cheaper hashes
	 * topped up with it: see verify(). */
	if (password_hash("pymaild-no-such-user", dummy_hash,
	    sizeof(dummy_hash)) == -1)
		fatalx("cannot hash with yescrypt");
	addr_fails = throttle_new(ADDR_SLOTS, seed, sizeof(seed));
	seed[0] ^= 1;
	account_fails = throttle_new(ACCOUNT_SLOTS, seed, sizeof(seed));
	explicit_bzero(seed, sizeof(seed));
	if (pipe2(wakefd, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	event_set(&ev_wake, wakefd[0], EV_READ | EV_PERSIST, on_wake, NULL);
	event_base_set(base, &ev_wake);
	event_add(&ev_wake, NULL);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&t, NULL, worker, NULL) != 0)
			fatalx("cannot start auth threads");
		pthread_detach(t);
	}
}

static int
account_locked(const char *user)
{
	return throttle_count(account_fails, user, time(NULL), FAIL_WINDOW) >=
	    ACCOUNT_LOCK;
}

void
auth_check(const char *user, const char *hash, const char *password,
    int upgrade, auth_done_fn done, void *arg)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->done = done;
	j->arg = arg;
	/* A locked account pays in full and fails, so that its answer
	 * comes when a wrong password's would. A hash due for an upgrade
	 * must be seen by a worker. */
	j->locked = account_locked(user);
	if (!upgrade && !j->locked) {
		vcache_mac(user, password, hash, j->mac);
		j->cacheable = 1;
		if (vcache_hit(j->mac)) {
			/* Answered through the pipe all the same, so the
			 * caller never sees its callback run early. */
			j->ok = 1;
			job_finished(j);
			return;
		}
	}
	strlcpy(j->hash, hash, sizeof(j->hash));
	strlcpy(j->password, password, sizeof(j->password));
	j->upgrade = upgrade;
	pthread_mutex_lock(&lock);
	if (todo_tail)
		todo_tail->next = j;
	else
		todo_head = j;
	todo_tail = j;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

const char *
auth_dummy_hash(void)
{
	return dummy_hash;
}

int
auth_blocked(const char *addr)
{
	char	key[THROTTLE_KEY_MAX + 1];

	throttle_addr_key(addr, key);
	return throttle_count(addr_fails, key, time(NULL), FAIL_WINDOW) >=
	    ADDR_BLOCK;
}

/*
 * Unknown users are not counted: their names would only push real
 * accounts out of the table, and the lock cannot be seen anyway.
 */
int
auth_record_failure(const char *addr, const char *user, int known)
{
	char	key[THROTTLE_KEY_MAX + 1];
	time_t	now = time(NULL);
	int	n;

	if (known && throttle_add(account_fails, user, now, FAIL_WINDOW) ==
	    ACCOUNT_LOCK)
		log_warnx("auth user=%s result=locked failures=%d "
		    "minutes=%d", user, ACCOUNT_LOCK, FAIL_WINDOW / 60);
	throttle_addr_key(addr, key);
	n = throttle_add(addr_fails, key, now, FAIL_WINDOW);
	return n;
}

uint32_t
auth_delay_ms(int failures)
{
	if (failures >= MAX_DELAY_MS / ADDR_DELAY_MS)
		return MAX_DELAY_MS;
	return failures * ADDR_DELAY_MS;
}
