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

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cond = PTHREAD_COND_INITIALIZER;
static struct bgjob	*todo_head, *todo_tail, *done_head, *done_tail;
static int		 wakefd[2] = { -1, -1 };
static int		 running;
static struct event	 ev_wake;

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
bg_thread(void *unused)
{
	struct bgjob	*j;

	pthread_mutex_lock(&lock);
	running = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (;;) {
		pthread_mutex_lock(&lock);
		while (todo_head == NULL)
			pthread_cond_wait(&cond, &lock);
		j = todo_head;
		if ((todo_head = j->next) == NULL)
			todo_tail = NULL;
		pthread_mutex_unlock(&lock);

		j->work(j->arg);

		pthread_mutex_lock(&lock);
		push(&done_head, &done_tail, j);
		pthread_mutex_unlock(&lock);
		if (write(wakefd[1], "", 1) == -1 && errno != EAGAIN)
			log_warn("bgjob: wake-up");
	}
	return NULL;
}

static void
on_wake(int fd, short ev, void *arg)
{
	struct bgjob	*j, *next;
	char		 buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&lock);
	j = done_head;
	done_head = done_tail = NULL;
	pthread_mutex_unlock(&lock);
	for (; j != NULL; j = next) {
		next = j->next;
		j->done(j->arg);
		free(j);
	}
}

void
bgjob_init(struct event_base *base)
{
	pthread_t	t;

	if (pipe2(wakefd, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("bgjob: pipe");
	event_set(&ev_wake, wakefd[0], EV_READ | EV_PERSIST, on_wake, NULL);
	event_base_set(base, &ev_wake);
	event_add(&ev_wake, NULL);
	if (pthread_create(&t, NULL, bg_thread, NULL) != 0)
		fatalx("bgjob: cannot start the thread");
	pthread_detach(t);
	/*
	 * Wait until the thread runs: what the C library does at a thread's
	 * start (rseq, robust futex list) must be done before a system call
	 * filter that is then applied to every thread exists.
	 */
	pthread_mutex_lock(&lock);
	while (!running)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

void
bgjob_submit(bgjob_fn work, bgjob_fn done, void *arg)
{
	struct bgjob	*j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&lock);
	push(&todo_head, &todo_tail, j);
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}
