/*
 * The server side of TLS for smtpd and pop3d: a context made of the
 * certificate chains the parent sends, with keys whose signatures the
 * parent makes (tlsremote.c), and non-blocking I/O on a session's socket.
 */
#ifndef PYMAILD_TLS_H
#define PYMAILD_TLS_H

#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "imsg.h"
#include "tlsamsg.h"

/* What an operation needs before it can go on. */
enum tls_io {
	TLS_IO_DONE,
	TLS_IO_WANT_READ,
	TLS_IO_WANT_WRITE,
	TLS_IO_EOF,		/* the peer closed (cleanly or not) */
	TLS_IO_FAIL		/* a protocol error: tls_error() says which */
};

/* Before the chroot: OpenSSL reads its configuration file. */
void	tls_init(void);
/* IMSG_TLS_SIGNER and IMSG_TLS_CERT from the parent; -1 when malformed. */
int	tls_on_signer(struct imsg *);
int	tls_on_cert(struct imsg *);
/* IMSG_TLS_TICKET_KEYS; -1 when malformed. */
int	tls_on_ticket_keys(struct imsg *);
/* A certificate is in place: STARTTLS / STLS may be offered. */
int	tls_ready(void);
/* A server session on fd (NULL when not ready). */
SSL	*tls_session(int fd);
enum tls_io tls_handshake(SSL *);
/* > 0 octets moved; else *st says why not. */
ssize_t	tls_read(SSL *, void *, size_t, enum tls_io *st);
ssize_t	tls_write(SSL *, const void *, size_t, enum tls_io *st);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for log lines and Received:. */
void	tls_describe(SSL *, char *buf, size_t len);
/* Why the last operation failed, one short line. */
const char *tls_error(void);
/* May a password be taken on this connection? Inside TLS always; in
 * plaintext only without tls in the config (nothing else to offer) or
 * from a loopback client, and never on a port that is TLS-only for
 * authentication (submission). */
int	tls_auth_allowed(int intls, int submission,
	    const struct sockaddr_storage *peer);

/*
 * The client side (outbound): a session to a mail server, opportunistic
 * (RFC 7435: any certificate, since the alternative is plaintext), its
 * SNI the server's host name unless that is an address; NULL on failure.
 */
SSL	*tls_client_session(const char *servername);
/*
 * DANE on a client session, before its handshake: the certificate must
 * match one of r's usable records (DANE-TA, DANE-EE). Returns how many
 * were usable (0: TLS without authentication, RFC 7672 2.2), -1 on
 * failure. After the handshake, tls_client_dane_check: 0 when it
 * matched, else -1 with why.
 */
int	tls_client_dane(SSL *, const char *host, const struct tlsa_reply *r);
int	tls_client_dane_check(SSL *, char *why, size_t len);
/*
 * A smarthost checked the web's way (PKIX): tls_client_load_ca before
 * the chroot (-1 and tls_error() on failure); tls_client_verify on a
 * client session before its handshake, the host name (or address) the
 * certificate must name; after it, tls_client_verify_check: 0 when the
 * chain ends at a CA of the bundle and names the host, else -1 and why.
 */
int	tls_client_load_ca(const char *file);
int	tls_client_verify(SSL *, const char *host);
int	tls_client_verify_check(SSL *, char *why, size_t len);

/* tlsremote.c: keys whose private half is the parent's */
void	tls_remote_signer(int fd);
/* The key of this leaf certificate, its signatures asked of the parent
 * for pair index of generation gen; NULL on failure. */
EVP_PKEY *tls_remote_key(X509 *leaf, uint32_t gen, uint32_t index);

#endif
