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
 * Also the per-address failure memory behind AUTH throttling (A7).
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
#include "util.h"

#define FAIL_WINDOW	(15 * 60)
#define FAIL_SLOTS	1024	/* addresses remembered */
#define FAIL_PER_ADDR	32	/* failures remembered per address */
#define VCACHE_SLOTS	4096	/* successful checks remembered */
#define VCACHE_TTL_MS	(10 * 60 * 1000)

struct job {
	struct job	*next;
	char		 hash[USER_HASH_MAX + 1];
	char		 password[1024];
	int		 upgrade;
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

		j->ok = password_verify(j->password, j->hash);
		if (j->ok && j->upgrade &&
		    password_hash(j->password, j->newhash,
		    sizeof(j->newhash)) == -1)
			j->newhash[0] = '\0';
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
	int		i;

	if (getrandom(vkey, sizeof(vkey), 0) != sizeof(vkey))
		fatal("getrandom");
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

void
auth_check(const char *user, const char *hash, const char *password,
    int upgrade, auth_done_fn done, void *arg)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->done = done;
	j->arg = arg;
	/* A hash due for an upgrade must be seen by a worker. */
	if (!upgrade) {
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

void
auth_submit(const char *hash, const char *password, int upgrade,
    auth_done_fn done, void *arg)
{
	auth_check("", hash, password, upgrade, done, arg);
}

/*
 * Failure memory: a fixed table; the least recently failing address is
 * reused when it is full, so a flood of addresses cannot grow memory.
 */
static struct failslot {
	char	addr[64];
	time_t	when[FAIL_PER_ADDR];
	int	n;
	time_t	last;
} fails[FAIL_SLOTS];

static struct failslot *
fail_lookup(const char *addr, int create)
{
	struct failslot	*oldest = &fails[0];
	int		 i;

	for (i = 0; i < FAIL_SLOTS; i++) {
		if (fails[i].n && strcmp(fails[i].addr, addr) == 0)
			return &fails[i];
		if (fails[i].last < oldest->last)
			oldest = &fails[i];
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	strlcpy(oldest->addr, addr, sizeof(oldest->addr));
	return oldest;
}

int
auth_failures(const char *addr)
{
	struct failslot	*f = fail_lookup(addr, 0);
	time_t		 now = time(NULL);
	int		 i, n = 0;

	if (f == NULL)
		return 0;
	for (i = 0; i < f->n; i++)
		if (now - f->when[i] < FAIL_WINDOW)
			n++;
	return n;
}

void
auth_record_failure(const char *addr)
{
	struct failslot	*f = fail_lookup(addr, 1);
	time_t		 now = time(NULL);

	if (f->n == FAIL_PER_ADDR) {
		memmove(f->when, f->when + 1, (FAIL_PER_ADDR - 1) *
		    sizeof(time_t));
		f->n--;
	}
	f->when[f->n++] = now;
	f->last = now;
}
