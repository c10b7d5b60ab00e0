/*
 * Logging: one line per event, key=value where it helps grepping.
 * Levels follow the config's loglevel: 0 system, 1 error, 2 info, 3 debug.
 */
#ifndef PYMAILD_LOG_H
#define PYMAILD_LOG_H

#include <stdarg.h>

#define LOG_TO_STDERR	0
#define LOG_TO_SYSLOG	1

void	log_init(int dest, int level, const char *procname);
void	log_setlevel(int level);
int	log_getlevel(void);
void	log_procname(const char *procname);

void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
