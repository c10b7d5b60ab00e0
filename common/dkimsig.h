/*
 * What a DKIM verifier reads from the network (RFC 6376 3.5, 3.6.1;
 * RFC 8463; RFC 8301): the tags of a DKIM-Signature field and of a key
 * record. Parsing only; every size is bounded and a signature or key
 * that breaks a rule is refused with the reason, which becomes the
 * permerror's text.
 */
#ifndef PYMAILD_DKIMSIG_H
#define PYMAILD_DKIMSIG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DKIMSIG_TAGS_MAX	32
#define DKIMSIG_H_MAX		64	/* header names signed */
#define DKIMSIG_NAME_MAX	64	/* one header name we compare */
#define DKIMSIG_B_MAX		1024	/* octets of b=: RSA up to 8192 bits */
#define DKIMSIG_BH_MAX		64
#define DKIMSIG_KEY_MAX		2048	/* octets of p=, DER */
#define DKIMSIG_DOMAIN_MAX	253
#define DKIMSIG_SELECTOR_MAX	253	/* dotted selectors are allowed */
#define DKIMSIG_VALUE_MAX	4096	/* a field value we look at */

#define DKIMSIG_RSA_SHA256	1
#define DKIMSIG_ED25519_SHA256	2

#define DKIMSIG_SIMPLE		0
#define DKIMSIG_RELAXED		1

struct dkimsig {
	int		alg;
	int		hcanon, bcanon;
	char		d[DKIMSIG_DOMAIN_MAX + 1];	/* lower case */
	char		s[DKIMSIG_SELECTOR_MAX + 1];
	char		h[DKIMSIG_H_MAX][DKIMSIG_NAME_MAX + 1];
	size_t		nh;
	unsigned char	b[DKIMSIG_B_MAX];
	size_t		blen;
	unsigned char	bh[DKIMSIG_BH_MAX];
	size_t		bhlen;
	int		has_l;
	uint64_t	l;		/* body octets signed, when has_l */
	int		has_t, has_x;
	int64_t		t, x;
};

/*
 * value: the field's value (after "DKIM-Signature:"), folding included.
 * now: for x= (an expired signature is refused). 0, or -1 with why.
 */
int	dkimsig_parse(const char *value, size_t len, time_t now,
	    struct dkimsig *, char *why, size_t whylen);

struct dkimkey {
	int		alg;		/* DKIMSIG_RSA_SHA256 or ED25519 */
	unsigned char	p[DKIMSIG_KEY_MAX];
	size_t		plen;		/* 0: the key was revoked */
	int		testing;	/* t=y */
	int		strict;		/* t=s: i= must be d= exactly */
};

/* One TXT record (strings joined). 0, or -1 with why. */
int	dkimkey_parse(const char *txt, size_t len, struct dkimkey *,
	    char *why, size_t whylen);

/*
 * Where the value of the DKIM-Signature field that contains b= ends up
 * for hashing: b='s value removed, the rest kept (RFC 6376 3.7). out
 * gets value with the b= tag's value emptied; returns its length, or
 * (size_t)-1 when it does not fit.
 */
size_t	dkimsig_strip_b(const char *value, size_t len, char *out,
	    size_t outlen);

#endif
