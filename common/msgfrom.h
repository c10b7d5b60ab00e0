/*
 * The domains of a message's From: field (msgfrom.c).
 */
#ifndef PYMAILD_MSGFROM_H
#define PYMAILD_MSGFROM_H

#include <stddef.h>

#define MSGFROM_DOMAIN_MAX	253

struct msgfrom {
	int	nmbox;		/* mailboxes in the list */
	int	same;		/* all in one domain */
	int	utf8;		/* a domain in UTF-8 */
	char	domain[MSGFROM_DOMAIN_MAX + 1];	/* the first's, lower case */
};

/* A From: value (after the colon, folding included): 0, or -1 when it
 * is not a mailbox list with a usable domain in each address. */
int	msgfrom_scan(const char *value, size_t len, struct msgfrom *);

/* The domain of a value that names exactly one mailbox, in ASCII: 0,
 * else -1. */
int	msgfrom_domain(const char *value, size_t len, char *dom,
	    size_t domlen);

enum msgfrom_result {
	MSGFROM_ONE,		/* one author's domain (or several of it) */
	MSGFROM_NONE,		/* no From: field */
	MSGFROM_FIELDS,		/* more than one From: field */
	MSGFROM_MANY,		/* authors of more than one domain */
	MSGFROM_UNCLEAR,	/* a From: no domain can be read from */
	MSGFROM_UTF8,		/* one author, a UTF-8 domain: not checked */
};

/* The header section (up to its empty line, or all of msg). */
enum msgfrom_result msgfrom_message(const char *msg, size_t len,
	    char *dom, size_t domlen);

#endif
