/*
 * DKIM (RFC 6376, RFC 8463): the pure parts, shared by the signer in
 * queued and the verifier to come. Header splitting, relaxed header and
 * body canonicalization (the body streamed), the From: domain, the
 * signature header's tag list and its folding. Nothing here touches a
 * file or the network; every output is bounded by its caller's buffer.
 */
#ifndef PYMAILD_DKIM_H
#define PYMAILD_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define DKIM_FIELDS_MAX		1000	/* header fields looked at */
#define DKIM_HEADER_MAX		(256 * 1024)	/* octets of the header */
#define DKIM_SELECTOR_MAX	63	/* one DNS label */
#define DKIM_SIG_MAX		2048	/* one unfolded DKIM-Signature line */
#define DKIM_PREFIX_MAX		(2 * (DKIM_SIG_MAX + 64))	/* folded, both */
#define DKIM_KEYS_MAX		64	/* keys in a configuration */

#define DKIM_ALG_RSA		1	/* rsa-sha256 */
#define DKIM_ALG_ED25519	2	/* ed25519-sha256 */

/* One header field of a message: offsets into the caller's buffer. */
struct dkim_field {
	size_t	off;		/* first octet of the name */
	size_t	len;		/* through its final CRLF (if any) */
	size_t	namelen;	/* the name, without WSP before the colon */
};

/*
 * Split the header of msg (up to the empty line, or the end) into
 * fields. Returns the number of fields, or -1 when a line is not a
 * field (no colon, starts with a colon, a continuation first), there are
 * more than max, or the header is longer than DKIM_HEADER_MAX. *bodyoff
 * is where the body starts (len when there is none).
 */
int	dkim_header_split(const char *msg, size_t len, struct dkim_field *f,
	    size_t max, size_t *bodyoff);

/* Field f's name is name (case-insensitive). */
int	dkim_field_is(const char *msg, const struct dkim_field *f,
	    const char *name);

/*
 * Relaxed canonical form of one field (RFC 6376 3.4.2), "name:value\r\n",
 * into out. Returns the length it needs (write nothing past outlen; the
 * caller checks the return against outlen).
 */
size_t	dkim_canon_header(const char *field, size_t len, char *out,
	    size_t outlen);

/*
 * Body canonicalization fed in chunks, into SHA-256: relaxed (3.4.4) by
 * default, simple (3.4.3) after dkim_body_simple. count is the length of
 * the canonical body; only its first limit octets are hashed (l=, 3.5).
 */
struct dkim_body {
	EVP_MD_CTX	*md;
	size_t		 blank;		/* empty lines held back */
	int		 cr;		/* a CR held back */
	int		 wsp;		/* WSP held back */
	int		 content;	/* the line has a non-WSP octet */
	int		 simple;	/* simple, not relaxed */
	int		 midline;	/* simple: octets of this line sent */
	uint64_t	 limit;		/* octets hashed at most */
	uint64_t	 count;		/* canonical octets so far */
	size_t		 nout;		/* octets waiting in out */
	char		 out[512];	/* small emits gathered for the hash */
};
int	dkim_body_init(struct dkim_body *);
/* After init, before any update. */
void	dkim_body_simple(struct dkim_body *);
void	dkim_body_limit(struct dkim_body *, uint64_t);
int	dkim_body_update(struct dkim_body *, const char *, size_t);
/* The hash, and the context freed; -1 on a digest failure. */
int	dkim_body_final(struct dkim_body *, unsigned char hash[32]);
void	dkim_body_free(struct dkim_body *);

/* A key the signer holds. */
struct dkim_key {
	char		 domain[256];
	char		 selector[DKIM_SELECTOR_MAX + 1];
	int		 alg;		/* DKIM_ALG_* */
	EVP_PKEY	*pkey;
};

/*
 * Sign msg (CRLF lines, header and body) with each of keys[0..nkeys),
 * all of one domain, at time t. Each signature is one unfolded line
 * "DKIM-Signature: v=1; ..." (no CRLF), written one after the other into
 * out separated by '\n'. 0 on success; -1 when the message cannot be
 * signed (no From:, a header we cannot split) or a key fails.
 */
int	dkim_sign(const char *msg, size_t len, const struct dkim_key *keys,
	    size_t nkeys, long long t, char *out, size_t outlen);

/*
 * The lines of dkim_sign's output (or an envelope's), folded for the
 * wire: each becomes a header field of lines under 80 octets ending in
 * CRLF. Returns the length, or 0 when it does not fit outlen or a line
 * is not a DKIM-Signature we made.
 */
size_t	dkim_fold(const char *sigs, char *out, size_t outlen);

/* "name" is a DNS label a selector may be: [a-z0-9-], 1..63, no edge '-'. */
int	dkim_selector_ok(const char *);

#endif
