/*
 * Starting the helper processes and dropping privileges.
 */
#ifndef PYMAILD_PROC_H
#define PYMAILD_PROC_H

#include <sys/types.h>

#include "config.h"
#include "imsg.h"
#include "proto.h"

/* Start-up flags sent with IMSG_CONF. */
#define PROCF_FOREGROUND	0x01	/* log to stderr */
#define PROCF_VERBOSE		0x02
#define PROCF_SYSLOG		0x04

/* Find a helper binary: installed libexec, or the build tree. */
int	proc_helper_path(const char *name, char *buf, size_t len);

/*
 * Fork and exec a helper: its channel to the parent goes on
 * PROC_PARENT_FD, its channels to other helpers (peerfds[role], -1 for
 * none) after it in proto.h's order, stderr on logfd. Returns the pid.
 */
pid_t	proc_spawn(const char *path, enum proc_role role, int parentfd,
	    const int *peerfds, int logfd);

/* Parent side: send the config text (in a memfd) and flags to a child. */
int	proc_send_conf(struct imsgbuf *ib, int type, const char *text,
	    const char *path, uint32_t flags);
/* Child side: read a config message into conf; -1 with err on failure. */
int	proc_recv_conf(const struct imsg *im, struct config *conf,
	    uint32_t *flags, char *err, size_t errlen);

/*
 * The first thing a helper's main() does: refuse to run by hand, set the
 * process title, read the config from the parent and set up logging.
 */
void	proc_child_start(int argc, char **argv, enum proc_role role,
	    struct imsgbuf *ib, struct config *conf, uint32_t *flags);

/*
 * As root: chroot (when dir is not NULL), then drop to user for good and
 * check that it cannot be undone. Not root: nothing (the parent warns).
 */
void	proc_drop_privs(const char *user, const char *chrootdir);

/*
 * After a change of user: sanitizer builds make the process dumpable
 * again, since LeakSanitizer needs /proc/self at exit. Else nothing.
 */
void	proc_after_setuid(void);

#endif
