/*
 * smtpd: SMTP sessions, unprivileged and chrooted. This file is the
 * process: start-up, the parent's and queued's channels, the listeners.
 */
#include <stdlib.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#define MAX_LISTEN	64

static int	listenfds[MAX_LISTEN];
static int	nlisten;
static struct chan queued;

static int
queued_dispatch(struct chan *c, struct imsg *im)
{
	return -1;	/* queued has nothing to say yet */
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	int	r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	switch (im->hdr.type) {
	case IMSG_LISTEN:
		if (im->fd == -1 || nlisten == MAX_LISTEN)
			return -1;
		listenfds[nlisten++] = im->fd;
		return 0;
	default:
		return -1;
	}
}

static void
smtpd_shutdown(void)
{
	int	i;

	/* Close the listeners first: new connections are refused. */
	for (i = 0; i < nlisten; i++)
		close(listenfds[i]);
	nlisten = 0;
	exit(0);
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_SMTPD);
	proc->shutdown = smtpd_shutdown;
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_peer(&queued, PROC_QUEUED, queued_dispatch);
	child_ready(parent_dispatch);
	event_base_dispatch(proc->base);
	return 0;
}
