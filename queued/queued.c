/*
 * queued: the durable queue, chrooted in the spool as `queueuser`.
 */
#include <stdlib.h>

#include "child.h"
#include "log.h"
#include "proc.h"

static struct chan smtpd, mxcache;

static int
peer_dispatch(struct chan *c, struct imsg *im)
{
	return -1;	/* no requests yet */
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	int	r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	return -1;
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_QUEUED);
	proc_drop_privs(proc->conf.queueuser, proc->conf.spooldir);
	child_peer(&smtpd, PROC_SMTPD, peer_dispatch);
	child_peer(&mxcache, PROC_MXCACHE, peer_dispatch);
	child_ready(parent_dispatch);
	event_base_dispatch(proc->base);
	return 0;
}
