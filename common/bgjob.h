/*
 * One background thread for the slow, blocking part of a job (fsync,
 * syncfs), so the event loop goes on serving while the disk works. Jobs
 * run in the order given; each one's done() runs back on the loop.
 */
#ifndef PYMAILD_BGJOB_H
#define PYMAILD_BGJOB_H

#include <event.h>

typedef void	(*bgjob_fn)(void *arg);

/* Start the thread: before the system call filter, which has no clone(2);
 * sandbox_enter() then puts the thread under the filter as well. */
void	bgjob_init(struct event_base *base);
/* work(arg) on the thread, then done(arg) on the loop. work must touch
 * nothing the loop touches meanwhile. */
void	bgjob_submit(bgjob_fn work, bgjob_fn done, void *arg);

/*
 * Other lanes: a thread and a queue each, for work that must not wait
 * behind the disk's (nor hold it up). bgjob_init and bgjob_submit are
 * the disk lane's.
 */
#define BGJOB_DISK	0
#define BGJOB_CPU	1	/* queued: DKIM signatures */
#define BGJOB_LANES	2
void	bgjob_init_lane(struct event_base *base, int lane);
void	bgjob_submit_lane(int lane, bgjob_fn work, bgjob_fn done, void *arg);

#endif
