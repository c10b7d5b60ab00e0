/*
 * Password verification off the event loop. yescrypt costs ~60 ms, so a
 * few worker threads do it while the loop keeps serving deliveries and
 * POP3 requests; results come back through a pipe the loop watches.
 *
 * Also the per-address failure memory behind AUTH throttling (A7).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

struct job {
	struct job	*next;
	char		 hash[USER_HASH_MAX + 1];
	char		 password[1024];
	int		 upgrade;
	int		 ok;
	char		 newhash[USER_HASH_MAX + 1];
	auth_done_fn	 done;
	void		*arg;
};

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cond = PTHREAD_COND_INITIALIZER;
static struct job	*todo_head, *todo_tail, *done_head;
static int		 wakefd[2];
static struct event	 ev_wake;

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

		pthread_mutex_lock(&lock);
		j->next = done_head;
		done_head = j;
		pthread_mutex_unlock(&lock);
		if (write(wakefd[1], "", 1) == -1 && errno != EAGAIN)
			log_warn("auth wake-up");
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
auth_submit(const char *hash, const char *password, int upgrade,
    auth_done_fn done, void *arg)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	strlcpy(j->hash, hash, sizeof(j->hash));
	strlcpy(j->password, password, sizeof(j->password));
	j->upgrade = upgrade;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&lock);
	if (todo_tail)
		todo_tail->next = j;
	else
		todo_head = j;
	todo_tail = j;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
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
