#include <sys/prctl.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "util.h"

struct childproc	*proc;

#ifdef PYMAILD_SANITIZE
/* LeakSanitizer cannot work inside the chroot (no /proc): it would fail
 * at exit instead of reporting. The parent and pymailadm keep it. */
const char	*__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static void
parent_gone(struct chan *c)
{
	/* The parent died or closed us: nothing to serve any more. */
	log_debug("%s: parent channel closed, exiting",
	    proc_names[proc->role]);
	exit(0);
}

void
child_start(int argc, char **argv, enum proc_role role)
{
	struct imsgbuf	ib;

	proc = xcalloc(1, sizeof(*proc));
	/* Load the time zone now: /etc/localtime is not in the chroot. */
	tzset();
	proc->role = role;
	proc_child_start(argc, argv, role, &ib, &proc->conf, &proc->flags);
	if ((proc->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	signal(SIGPIPE, SIG_IGN);
	/* Stops come over the channel; a terminal's ^C is the parent's. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* A service manager's TERM to the whole group must not kill the
	 * helpers under the parent: it stops them in order itself. */
	signal(SIGTERM, SIG_IGN);
}

void
child_ready(chan_dispatch_fn dispatch)
{
	uint32_t	role = proc->role;

	/*
	 * A helper stuck in a loop never reads the parent's EOF: let the
	 * kernel end it when the parent goes. Set after the change of user,
	 * which clears it; it only works when the parent runs as the same
	 * account (queued, as root, is ended by pymailadm stop instead).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		log_warn("prctl PR_SET_PDEATHSIG");

	chan_init(&proc->parent, proc->base, PROC_PARENT_FD, "parent",
	    dispatch, parent_gone, NULL);
	chan_compose(&proc->parent, IMSG_HELLO, 0, -1, &role, sizeof(role));
}

static void
peer_gone(struct chan *c)
{
	/* A sibling exits first during a stop, or died: then the parent
	 * stops everything. Either way there is nothing to do here. */
	log_debug("%s: channel to %s closed", proc_names[proc->role], c->name);
}

void
child_peer(struct chan *c, enum proc_role peer, chan_dispatch_fn fn)
{
	int	fd = proc_peer_fd(proc->role, peer);

	if (fd == -1)
		fatalx("%s may not talk to %s", proc_names[proc->role],
		    proc_names[peer]);
	chan_init(c, proc->base, fd, proc_names[peer], fn, peer_gone, NULL);
}

static int
child_reload(struct imsg *im)
{
	struct config	nconf;
	uint32_t	flags;
	char		err[512];

	if (proc_recv_conf(im, &nconf, &flags, err, sizeof(err)) == -1) {
		/* The parent validated it; failing here means tampering. */
		log_warnx("reload: %s", err);
		if (im->fd != -1)
			close(im->fd);
		return -1;
	}
	close(im->fd);
	config_free(&proc->conf);
	proc->conf = nconf;
	log_setlevel((flags & PROCF_VERBOSE) ? 3 : proc->conf.loglevel);
	if (proc->reloaded)
		proc->reloaded();
	return 1;
}

/*
 * The parent rotated the log: write to the new file from now on (an
 * atomic swap of standard error, so no line is split or lost), then say
 * so, which is what `pymailadm reload` waits for.
 */
static int
child_log_reopen(struct imsg *im)
{
	struct msgread	mr;
	uint32_t	gen;

	mr_init(&mr, im);
	gen = mr_u32(&mr);
	if (mr_end(&mr) == -1 || im->fd == -1 || gen == 0) {
		if (im->fd != -1)
			close(im->fd);
		return -1;
	}
	if (!(proc->flags & PROCF_SYSLOG) &&
	    dup2(im->fd, STDERR_FILENO) == -1)
		log_warn("log reopen generation=%u result=failed", gen);
	close(im->fd);
	chan_compose(&proc->parent, IMSG_LOG_REOPENED, 0, -1, &gen,
	    sizeof(gen));
	return 1;
}

/* Counted in the helper, sent only when asked: no imsg per event. */
static int
child_metrics(struct imsg *im)
{
	char		text[METRICS_TEXT_MAX];
	struct mtext	t;
	struct msgbuild	mb;

	if (im->datalen != 0)
		return -1;
	mtext_init(&t, text, sizeof(text));
	proc->metrics(&t);
	if (t.short_)
		log_warnx("stats: the figures outgrew %d octets; some left "
		    "out", METRICS_TEXT_MAX);
	mb_init(&mb);
	mb_str(&mb, text);
	chan_send(&proc->parent, &mb, IMSG_METRICS_REPLY, im->hdr.peerid,
	    -1);
	return 1;
}

int
child_common_dispatch(struct imsg *im)
{
	uint32_t	n;

	switch (im->hdr.type) {
	case IMSG_RELOAD:
		return child_reload(im);
	case IMSG_LOG_REOPEN:
		return child_log_reopen(im);
	case IMSG_STATS:
		if (im->datalen != 0)
			return -1;
		n = proc->stats ? proc->stats() : 0;
		chan_compose(&proc->parent, IMSG_STATS_REPLY, im->hdr.peerid,
		    -1, &n, sizeof(n));
		return 1;
	case IMSG_METRICS:
		return proc->metrics ? child_metrics(im) : 0;
	case IMSG_SHUTDOWN:
		if (im->datalen != 0)
			return -1;
		if (proc->shutdown == NULL)
			exit(0);
		proc->shutdown();
		return 1;
	default:
		return 0;
	}
}
