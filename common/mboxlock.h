/*
 * The lock of one mailbox on the store, shared by every host and tool
 * that changes the mailbox as a whole (see mboxlock.c).
 */
#ifndef PYMAILD_MBOXLOCK_H
#define PYMAILD_MBOXLOCK_H

#define MBOXLOCK_NAME	".pop3.lock"	/* in MAILDIR/USER/ */

/* How long pymailadm waits for a POP3 session to end before it gives up. */
#define MBOXLOCK_TOOL_WAIT_MS	5000

#define MBOXLOCK_OK	0	/* *fdp holds the lock: close it to let go */
#define MBOXLOCK_BUSY	1	/* another session or tool holds it */
#define MBOXLOCK_NOTFILE 2	/* a link, FIFO, folder...: never used */
#define MBOXLOCK_ERROR	(-1)	/* errno says why */

/* Try once, without waiting. */
int	mboxlock_take(const char *maildir, const char *user, int *fdp);
/* Try for up to ms milliseconds (tools, never the daemon's loop). */
int	mboxlock_wait(const char *maildir, const char *user, int ms,
	    int *fdp);

#endif
