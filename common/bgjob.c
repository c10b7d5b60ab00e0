#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "bgjob.h"
#include "log.h"
#include "util.h"

struct bgjob {
	struct bgjob	*next;
	bgjob_fn	 work, done;
	void		*arg;
};

/* One thread, its queue and its way back to the loop, per lane. */
struct lane {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct bgjob	*todo_head, *todo_tail, *done_head, *done_tail;
	int		 wakefd[2];
	int		 running;
	struct event	 ev_wake;
};

static struct lane	lanes[BGJOB_LANES];

static void
push(struct bgjob **head, struct bgjob **tail, struct bgjob *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *
bg_thread(void *arg)
{
	struct lane	*l = arg;
	struct bgjob	*j;

	pthread_mutex_lock(&l->lock);
	l->running = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	for (;;) {
		pthread_mutex_lock(&l->lock);
		while (l->todo_head == NULL)
			pthread_cond_wait(&l->cond, &l->lock);
		j = l->todo_head;
		if ((l->todo_head = j->next) == NULL)
			l->todo_tail = NULL;
		pthread_mutex_unlock(&l->lock);

		j->work(j->arg);

		pthread_mutex_lock(&l->lock);
		push(&l->done_head, &l->done_tail, j);
		pthread_mutex_unlock(&l->lock);
		if (write(l->wakefd[1], "", 1) == -1 && errno != EAGAIN)
			log_warn("bgjob: wake-up");
	}
	return NULL;
}

static void
on_wake(int fd, short ev, void *arg)
{
	struct lane	*l = arg;
	struct bgjob	*j, *next;
	char		 buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&l->lock);
	j = l->done_head;
	l->done_head = l->done_tail = NULL;
	pthread_mutex_unlock(&l->lock);
	for (; j != NULL; j = next) {
		next = j->next;
		j->done(j->arg);
		free(j);
	}
}

void
bgjob_init_lane(struct event_base *base, int lane)
{
	struct lane	*l = &lanes[lane];
	pthread_t	 t;

	if (pthread_mutex_init(&l->lock, NULL) != 0 ||
	    pthread_cond_init(&l->cond, NULL) != 0)
		fatalx("bgjob: cannot make a lock");
	if (pipe2(l->wakefd, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("bgjob: pipe");
	event_set(&l->ev_wake, l->wakefd[0], EV_READ | EV_PERSIST, on_wake, l);
	event_base_set(base, &l->ev_wake);
	event_add(&l->ev_wake, NULL);
	if (pthread_create(&t, NULL, bg_thread, l) != 0)
		fatalx("bgjob: cannot start the thread");
	pthread_detach(t);
	/*
	 * Wait until the thread runs: what the C library does at a thread's
	 * start (rseq, robust futex list) must be done before a system call
	 * filter that is then applied to every thread exists.
	 */
	pthread_mutex_lock(&l->lock);
	while (!l->running)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

void
bgjob_init(struct event_base *base)
{
	bgjob_init_lane(base, BGJOB_DISK);
}

void
bgjob_submit_lane(int lane, bgjob_fn work, bgjob_fn done, void *arg)
{
	struct lane	*l = &lanes[lane];
	struct bgjob	*j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&l->lock);
	push(&l->todo_head, &l->todo_tail, j);
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

void
bgjob_submit(bgjob_fn work, bgjob_fn done, void *arg)
{
	bgjob_submit_lane(BGJOB_DISK, work, done, arg);
}
