/*
 * Maildir++ quota file (USER/Maildir/maildirsize), the format Courier
 * and Dovecot keep: a limit line ("NS" bytes, "NC" messages, either or
 * both, comma-separated), then "bytes count" lines, one appended by each
 * delivery (positive) and deletion (negative). The usage is their sum.
 */
#ifndef PYMAILD_MAILDIRSIZE_H
#define PYMAILD_MAILDIRSIZE_H

#include <stddef.h>

#define MDSIZE_NAME		"maildirsize"	/* in USER/Maildir/ */
/* The Maildir++ rules for a full recount, which rewrites the file. */
#define MDSIZE_RECOUNT_BYTES	5120
#define MDSIZE_RECOUNT_AGE	(15 * 60)	/* seconds */
/* Longer is never ours: read no more (a recount follows). */
#define MDSIZE_READ_MAX		(64 * 1024)
/* A figure beyond this on a line is garbage, not a mailbox. */
#define MDSIZE_FIGURE_MAX	(1LL << 50)
#define MDSIZE_LINE_MAX		64

struct mdsize {
	long long	limit_bytes;	/* -1: none given */
	long long	limit_count;	/* -1: none given */
	long long	bytes;		/* the sums, never negative */
	long long	count;
	size_t		lines;		/* usage lines */
};

/*
 * Parse the whole file: 0 when every line is well formed, each ends in
 * a newline (a line cut by a crash is not trusted) and the sums are
 * neither negative nor beyond MDSIZE_FIGURE_MAX; else -1 and *why says
 * what was wrong, and the caller recounts the Maildir.
 */
int	mdsize_parse(const char *buf, size_t len, struct mdsize *out,
	    const char **why);
/* "bytes count\n" into buf; its length, or -1 when it does not fit. */
int	mdsize_line(char *buf, size_t len, long long bytes, long long count);
/* The limit line for a limit in bytes ("NS\n"; "0S\n" for none). */
int	mdsize_limit_line(char *buf, size_t len, long long limit_bytes);

#endif
