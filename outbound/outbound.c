/*
 * outbound: the process. Channels to the parent (config, stop, status),
 * queued (attempts in, results out) and mxcache (hosts).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "outbound.h"
#include "proc.h"
#include "sandbox.h"
#include "tls.h"
#include "util.h"

struct chan	queued_chan, mxcache_chan;

static int
queued_dispatch(struct chan *c, struct imsg *im)
{
	switch (im->hdr.type) {
	case IMSG_OUT_ATTEMPT:
		return attempt_new(im);
	case IMSG_OUT_CANCEL:
		return attempt_cancel(im);
	default:
		return -1;
	}
}

static int
mxcache_dispatch(struct chan *c, struct imsg *im)
{
	if (im->fd != -1)
		return -1;
	if (im->hdr.type == IMSG_TLSA_REPLY)
		return attempt_tlsa_reply(im);
	if (im->hdr.type != IMSG_MX_REPLY)
		return -1;
	return attempt_mx_reply(im);
}

/*
 * queued gone: a stop, or queued failed (then the parent stops us
 * anyway). What is under way cannot report any more: leave.
 */
static void
queued_gone(struct chan *c)
{
	if (c->failure != NULL)
		fatalx("queued sent what it may not: %s", c->failure);
	log_debug("outbound: queued closed its channel; exiting");
	exit(0);
}

static int
parent_dispatch(struct chan *c, struct imsg *im)
{
	int	r;

	if ((r = child_common_dispatch(im)) != 0)
		return r == 1 ? 0 : -1;
	if (im->hdr.type == IMSG_RELAY_CRED_REPLY && im->fd == -1)
		return smtpc_cred_reply(im);
	return -1;
}

/*
 * The CA bundle that checks the smarthost, read before the chroot (an
 * empty folder): at a reload that names another file, or turns "verify"
 * on, the bundle cannot be read any more; the smarthost then fails with
 * a last error that says so, until a restart.
 */
static char	*cafile;

static void
load_cafile(void)
{
	if (proc->conf.relaytls != RELAYTLS_VERIFY)
		return;
	if (tls_client_load_ca(proc->conf.relaycafile) == -1)
		fatalx("smtprelaycafile %s: %s", proc->conf.relaycafile,
		    tls_error());
	cafile = xstrdup(proc->conf.relaycafile);
}

static void
reloaded(void)
{
	if (proc->conf.relaytls == RELAYTLS_VERIFY && (cafile == NULL ||
	    strcmp(cafile, proc->conf.relaycafile) != 0))
		log_warnx("outbound: smtprelaycafile %s is read at start "
		    "only: restart pymaild to use it", proc->conf.relaycafile);
	attempt_reloaded();
}

int
main(int argc, char *argv[])
{
	child_start(argc, argv, PROC_OUTBOUND);
	tls_init();	/* OpenSSL reads its files before the chroot */
	proc->stats = attempt_count;
	proc->reloaded = reloaded;
	load_cafile();
	/* Nothing on disk at all: an empty root, an account of its own. */
	proc_drop_privs(proc->conf.outbounduser, "/var/empty");
	chan_init(&queued_chan, proc->base, proc_peer_fd(PROC_OUTBOUND,
	    PROC_QUEUED), "queued", queued_dispatch, queued_gone, NULL);
	child_peer(&mxcache_chan, PROC_MXCACHE, mxcache_dispatch);
	attempt_init();
	child_ready(parent_dispatch);
	sandbox_enter(PROC_OUTBOUND);
	event_base_dispatch(proc->base);
	return 0;
}
