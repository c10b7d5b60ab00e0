/*
 * Background threads for the slow, blocking part of a job (fsync,
 * syncfs), so the event loop goes on serving while the disk works. Each
 * lane is one thread: its jobs run in the order given, and each one's
 * done() runs back on the loop. Jobs of different lanes run side by side.
 */
#ifndef PYMAILD_BGJOB_H
#define PYMAILD_BGJOB_H

#include <event.h>

typedef void	(*bgjob_fn)(void *arg);

#define BGJOB_LANES	2

/* Start the threads; before any sandbox, since it needs clone(2). */
void	bgjob_init(struct event_base *base);
/* work(arg) on lane 0's thread, then done(arg) on the loop. work must
 * touch nothing the loop touches meanwhile. */
void	bgjob_submit(bgjob_fn work, bgjob_fn done, void *arg);
/* The same on another lane (0 .. BGJOB_LANES - 1). */
void	bgjob_submit_on(int lane, bgjob_fn work, bgjob_fn done, void *arg);

#endif
