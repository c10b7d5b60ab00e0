/*
 * The MX cache's data and its file, MAILDIR/mxservers (DESIGN.md A3).
 * Shared by mxcache (which keeps it), the parent (which writes it) and
 * pymailadm updatemx (which refreshes it with the daemon stopped).
 *
 * The file is plain text, one block per domain, blocks apart by a blank
 * line; '#' starts a comment line:
 *
 *	domain example.com
 *	expires 1764003600
 *	status ok
 *	mx 10 mx1.example.com 192.0.2.1
 *	mx 10 mx1.example.com 2001:db8::1
 *	mx 20 mx2.example.com 192.0.2.2
 *
 *	domain gone.example
 *	expires 1764000300
 *	status nxdomain
 *
 * `domain` is lower-case without the final dot; `expires` is a Unix time
 * (the answer's TTL clamped to [60 s, 1 day], 5 minutes for a negative
 * answer); `status` is ok, nxdomain, nullmx or nohosts (a temporary
 * failure is never stored); each `mx` line is one address to try, as
 * "preference host address", in preference order, a host's addresses
 * together. Only status ok has mx lines, at least one and at most
 * MX_MAX_HOSTS. Anything else makes the whole file corrupt: it is then
 * ignored (a cold start), never half-read.
 */
#ifndef PYMAILD_MXFILE_H
#define PYMAILD_MXFILE_H

#include <arpa/inet.h>

#include <stdio.h>
#include <stdint.h>
#include <time.h>

#include "proto.h"

#define MX_NAME_MAX		253	/* a domain name, no final dot */
#define MXFILE_MAX		(16 * 1024 * 1024)
#define MXFILE_NAME		"mxservers"

/* One address to try. */
struct mxrr {
	uint16_t	pref;
	char		host[MX_NAME_MAX + 1];
	char		addr[INET6_ADDRSTRLEN];
};

/* What is known about one domain. */
struct mxentry {
	char		 domain[MX_NAME_MAX + 1];
	time_t		 expires;
	int		 status;	/* MX_* of proto.h */
	size_t		 n;
	struct mxrr	*rr;		/* n of them, in the order to try */
};

struct mxset {
	struct mxentry	*v;
	size_t		 n, cap;
};

/* Lower-case a domain and drop one final dot; -1 when it is not a
 * plausible host name (empty or long labels, characters outside
 * [A-Za-z0-9_-]). */
int	 mx_domain_normalize(const char *in, char out[MX_NAME_MAX + 1]);

/* "ok", "nxdomain", ... and a short text for MX_REPLY's reason. */
const char *mx_status_name(int status);
const char *mx_status_reason(int status);

/* Parse a whole file; -1 with "line N: why" in err, set left empty. */
int	 mxfile_parse(const char *text, size_t len, struct mxset *set,
	    char *err, size_t errlen);
/* The comment the file starts with, then one block per entry. */
void	 mxfile_print_header(FILE *fp);
void	 mxfile_print(FILE *fp, const struct mxentry *e);
/* Read a file passed as a descriptor (a memfd) from its start, at most
 * max bytes, into a NUL-terminated buffer; -1 with errno set. */
int	 mxfile_read_fd(int fd, size_t max, char **text, size_t *len);

/* Entries expiring later than now + maxttl (a clock that went back, a
 * hand-edited file) expire then instead; returns how many did. */
size_t	 mxset_clamp(struct mxset *set, time_t now, time_t maxttl);

/* The set owns its entries' records. */
struct mxentry *mxset_add(struct mxset *set);
struct mxentry *mxset_find(const struct mxset *set, const char *domain);
void	 mxset_free(struct mxset *set);
void	 mxentry_free(struct mxentry *e);
/* Copy src into dst (dst's old records are not freed). */
void	 mxentry_copy(struct mxentry *dst, const struct mxentry *src);

#endif
