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

/* Each lane is one thread running its jobs in order. */
struct lane {
	pthread_cond_t	 cond;
	struct bgjob	*todo_head, *todo_tail;
};

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static struct lane	 lanes[BGJOB_LANES];
static struct bgjob	*done_head, *done_tail;
static int		 wakefd[2] = { -1, -1 };
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
bg_thread(void *arg)
{
	struct lane	*l = arg;
	struct bgjob	*j;

	for (;;) {
		pthread_mutex_lock(&lock);
		while (l->todo_head == NULL)
			pthread_cond_wait(&l->cond, &lock);
		j = l->todo_head;
		if ((l->todo_head = j->next) == NULL)
			l->todo_tail = NULL;
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
	int		i;

	if (wakefd[0] != -1)
		return;
	if (pipe2(wakefd, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("bgjob: pipe");
	event_set(&ev_wake, wakefd[0], EV_READ | EV_PERSIST, on_wake, NULL);
	event_base_set(base, &ev_wake);
	event_add(&ev_wake, NULL);
	for (i = 0; i < BGJOB_LANES; i++) {
		pthread_cond_init(&lanes[i].cond, NULL);
		if (pthread_create(&t, NULL, bg_thread, &lanes[i]) != 0)
			fatalx("bgjob: cannot start a thread");
		pthread_detach(t);
	}
}

void
bgjob_submit_on(int lane, bgjob_fn work, bgjob_fn done, void *arg)
{
	struct bgjob	*j = xcalloc(1, sizeof(*j));
	struct lane	*l = &lanes[lane];

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&lock);
	push(&l->todo_head, &l->todo_tail, j);
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&lock);
}

void
bgjob_submit(bgjob_fn work, bgjob_fn done, void *arg)
{
	bgjob_submit_on(0, work, done, arg);
}
