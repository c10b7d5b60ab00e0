/*
 * pymailadm: the administration command line.
 */
#ifndef PYMAILADM_H
#define PYMAILADM_H

#include "config.h"
#include "userdb.h"

struct adm {
	const char	*confpath;
	struct config	 conf;
	int		 json;
};

extern struct adm	adm;

/* Print one line on stderr and exit 1. */
void	die(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	usage_error(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* users.c */
/* As root, act as the daemon's user from here on (creating MAILDIR). */
void	become_owner(void);
int	cmd_adduser(int argc, char **argv);
int	cmd_rmuser(int argc, char **argv);
int	cmd_chpasswd(int argc, char **argv);
int	cmd_chopt(int argc, char **argv);
int	cmd_chdefaultopt(int argc, char **argv);
int	cmd_getinfo(int argc, char **argv);
int	cmd_users(int argc, char **argv);

/* daemon.c */
int	ctl_connect(void);
const char *ctl_request(int fd, uint32_t type, int *ok);
const char *ctl_request_data(int fd, uint32_t type, const void *, size_t,
	    int *ok);
const char *ctl_request_within(int fd, uint32_t type, const void *, size_t,
	    int *ok, int ms);
int	cmd_start(int argc, char **argv);
int	cmd_stop(int argc, char **argv);
int	cmd_status(int argc, char **argv);
int	cmd_reload(int argc, char **argv);
int	cmd_flush(int argc, char **argv);

/* updatemx.c */
int	cmd_updatemx(int argc, char **argv);

/* queue.c */
int	cmd_queue(int argc, char **argv);
int	cmd_show(int argc, char **argv);
struct envelope;
int	queue_load(const char *id, struct envelope *);
void	queue_ids(char **ids, size_t *n);
int	cmd_stats(int argc, char **argv);	/* stats.c */
/* qops.c */
int	cmd_remove(int argc, char **argv);
int	cmd_hold(int argc, char **argv);
int	cmd_release(int argc, char **argv);
void	queue_sync(void);
int	cmd_import(int argc, char **argv);	/* import.c */
int	cmd_dkimkey(int argc, char **argv);	/* dkimkey.c */
int	cmd_dnsrecords(int argc, char **argv);	/* dkimkey.c */

/* json.c */
void	json_begin(void);
void	json_str(const char *key, const char *value);
void	json_num(const char *key, long long value);
void	json_bool(const char *key, int value);
void	json_end(void);

#endif
