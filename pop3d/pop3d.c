/*
 * pop3d: POP3 sessions, unprivileged and chrooted; every mailbox access
 * goes through the parent.
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
pop3d_shutdown(void)
{
	int	i;

	for (i = 0; i < nlisten; i++)
		close(listenfds[i]);
	nlisten = 0;
	exit(0);
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_POP3D);
	proc->shutdown = pop3d_shutdown;
	proc_drop_privs(proc->conf.user, "/var/empty");
	child_ready(parent_dispatch);
	event_base_dispatch(proc->base);
	return 0;
}
