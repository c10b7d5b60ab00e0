/*
 * mxcache: MX resolution with ldns. The resolver is set up before the
 * chroot, since /etc/resolv.conf is not there afterwards.
 */
#include <stdlib.h>

#include "child.h"
#include "log.h"
#include "proc.h"
#include "sandbox.h"

static struct chan queued;

static int
queued_dispatch(struct chan *c, struct imsg *im)
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
	child_start(argc, argv, PROC_MXCACHE);
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_peer(&queued, PROC_QUEUED, queued_dispatch);
	child_ready(parent_dispatch);
	sandbox_enter(PROC_MXCACHE);
	event_base_dispatch(proc->base);
	return 0;
}
