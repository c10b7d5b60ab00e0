/*
 * queued: the durable queue (DESIGN.md B2), chrooted in SPOOLDIR.
 *
 * Layout, relative to the chroot:
 *   incoming/ID        a committed message's data, queued's copy of the
 *                      memfd smtpd wrote it into (spool.c)
 *   incoming/ID.env    its envelope, before the commit renames
 *   msg/ID             committed message data (CRLF lines, dot-unstuffed)
 *   env/ID             committed envelope: its presence is the commit
 *   corrupt/           envelopes that could not be read, set aside
 */
#ifndef PYMAILD_QUEUED_H
#define PYMAILD_QUEUED_H

#include "chan.h"
#include "envelope.h"
#include "metrics.h"
#include "proto.h"

/* One message's recipients of one domain, handed to outbound. */
struct attempt {
	TAILQ_ENTRY(attempt)	 entry;
	uint32_t		 id;
	struct envelope		*env;
	char			 domain[256];
	size_t			*rcpts;		/* indexes into env->rcpts */
	uint8_t			*answered;	/* per rcpts[] entry */
	size_t			 nrcpts, nanswered;
};

/* queued.c */
extern struct chan	smtpd_chan, outbound_chan;
void	queued_send_parent(uint32_t type, struct msgbuild *, int fd);

/* fpool.c */
#define FPOOL_FILE_MAX	(128 * 1024)	/* larger ones are removed */
void	fpool_init(void);
int	fpool_take(const char *path);
int	fpool_give(const char *path, off_t size);
int	fpool_give_data(const char *path, const struct envelope *);

/* journal.c */
#define JNL_INLINE_MAX	(1024 * 1024)	/* larger messages: syncfs */
struct jbatch {
	char	*buf;
	size_t	 len, cap;
	size_t	 ncommits;
	int	 seg;		/* where journal_write put them */
};
void	journal_init(int rootfd);
int	journal_write(struct jbatch *);
char	*jbatch_reserve(struct jbatch *, size_t envlen, size_t datalen);
void	jbatch_commit(struct jbatch *, const char *env, size_t envlen,
	    size_t datalen);
void	jbatch_done(struct jbatch *, const char *id);
void	jbatch_free(struct jbatch *);
void	journal_finalized(int seg);
int	journal_close(void);

/* held.c */
void	held_init(void);
void	held_add(struct envelope *, int seg, int memfd);
int	held_finalize(const struct envelope *);
int	held_finalize_all(void);
int	held_remove(const struct envelope *);
void	held_data_path(const struct envelope *, char *path, size_t len);
int	held_memfd(const struct envelope *);

/* spool.c */
int	spool_write_env(int fd, const char *text, int dosync);
int	spool_files_commit(const char *id);
void	spool_init(void);
int	spool_dispatch(struct imsg *);
/* Write a message and its envelope straight into the queue (bounces). */
int	spool_inject(struct envelope *, const char *data, size_t len);
/* Rewrite a queued envelope (after a deferral). */
int	spool_update(struct envelope *);
/* The message is done: remove it from disk. */
void	spool_remove(struct envelope *);
/* Removed by pymailadm while under way: forget it on disk now. */
void	spool_forget(struct envelope *);
void	spool_exit(void);
int	spool_open_data(const struct envelope *);
void	spool_new_id(char *id);
size_t	spool_count(void);

/* runner.c */
void	runner_init(void);
void	runner_add(struct envelope *);
void	runner_restore(struct envelope *);
int	runner_deliver_reply(struct imsg *);
void	runner_shutdown(void);
void	runner_flush(void);
void	runner_collect(struct envelope ***, size_t *);
void	runner_collect_one(struct envelope *, struct envelope ***, size_t *,
	    size_t *);
int	runner_remove(struct envelope *);
int	runner_local_inflight(const struct envelope *);
int	runner_hold(struct envelope *);
int	runner_release(struct envelope *);

/* outbound.c */
/* Start delivering e's pending remote recipients: 0 out of slots, 1 all
 * under way, 2 some wait for a busy domain. */
int	outbound_start(struct envelope *e);
int	outbound_busy(void);
int	outbound_dispatch(struct chan *, struct imsg *);
void	outbound_closed(struct chan *);
void	outbound_collect(struct envelope ***, size_t *, size_t *);
int	outbound_cancel(struct envelope *);

/* runner.c, for outbound */
void	runner_attempt_done(struct envelope *, const char *);
void	runner_outbound_gone(void);

/* qops.c */
int	qops_dispatch(struct imsg *);
void	qops_local_result(struct envelope *, const char *rcpt,
	    uint32_t result, int left);
int	envelope_ptr_cmp(const void *, const void *);	/* for qsort */

/* metrics.c: counted since start, where each event happens */
struct qcounters {
	uint64_t	accepted;		/* messages, 250 sent */
	uint64_t	delivered_local;	/* recipients */
	uint64_t	relayed;		/* recipients, 2xx at the dot */
	uint64_t	failed;			/* recipients, for good */
	uint64_t	deferred;		/* attempts that left some */
	uint64_t	bounced;		/* messages with failures settled */
	uint64_t	removed;		/* by pymailadm */
	struct histogram delivery;		/* the 250 to each recipient
						 * delivered or relayed */
};
extern struct qcounters	qcount;
int	metrics_dispatch(struct imsg *);
void	metrics_committed(struct envelope *);
void	metrics_delivered(const struct envelope *);

/* signer.c: DKIM signatures of mail that leaves */
struct dkimset;
int	signer_dispatch(struct imsg *);
struct dkimset *signer_keys(void);	/* a reference, or NULL */
void	signer_keys_done(struct dkimset *);
int	signer_wanted(const struct envelope *);
int	signer_sign(struct dkimset *, struct envelope *, const char *msg,
	    size_t len, char *nokeydom, size_t nokeylen);
int	signer_sign_fd(struct dkimset *, struct envelope *, int fd,
	    char *nokeydom, size_t nokeylen);
void	signer_log_nokey(const char *id, const char *dom);

/* bounce.c */
void	bounce_failed(struct envelope *);

#endif
