/*
 * queued: the process. Channels to smtpd (the spool), the parent (local
 * delivery) and outbound (remote recipients).
 */
#include <stdlib.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "proc.h"
#include "sandbox.h"
#include "queued.h"

struct chan	smtpd_chan, outbound_chan;

void
queued_send_parent(uint32_t type, struct msgbuild *mb, int fd)
{
	if (chan_send(&proc->parent, mb, type, 0, fd) == -1)
		fatalx("cannot queue a message to the parent");
}

static int
smtpd_dispatch(struct chan *c, struct imsg *im)
{
	if (im->fd != -1)
		return -1;	/* smtpd never sends us descriptors */
	return spool_dispatch(im);
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	int	r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	switch (im->hdr.type) {
	case IMSG_DELIVER_REPLY:
		return runner_deliver_reply(im);
	case IMSG_FLUSH:
		if (im->datalen != 0)
			return -1;
		runner_flush();
		return 0;
	case IMSG_QUEUE_OP:
		return qops_dispatch(im);
	case IMSG_METRICS:
		return metrics_dispatch(im);
	case IMSG_DKIM_KEY:
		return signer_dispatch(im);
	default:
		return -1;
	}
}

static uint32_t
queued_stats(void)
{
	return spool_count();
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_QUEUED);
	proc->stats = queued_stats;
	proc->shutdown = runner_shutdown;
	/* Every spool path is relative: the chroot, or the folder. */
	if (chdir(proc->conf.spooldir) == -1)
		fatal("chdir %s", proc->conf.spooldir);
	proc_drop_privs(proc->conf.queueuser, proc->conf.spooldir);
	child_peer(&smtpd_chan, PROC_SMTPD, smtpd_dispatch);
	chan_init(&outbound_chan, proc->base, proc_peer_fd(PROC_QUEUED,
	    PROC_OUTBOUND), "outbound", outbound_dispatch, outbound_closed,
	    NULL);
	runner_init();
	spool_init();
	child_ready(parent_dispatch);
	sandbox_enter(PROC_QUEUED);
	event_base_dispatch(proc->base);
	return 0;
}
