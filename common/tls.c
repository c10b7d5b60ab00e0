/*
 * The server side of TLS in smtpd and pop3d.
 *
 * Hygiene: TLS 1.2 and 1.3 only; in 1.2 only forward-secret AEAD suites
 * (Mozilla's "intermediate" list); no compression, no renegotiation.
 * Resumption by stateless tickets: a returning client skips the
 * signature. Their keys are the parent's, the same for every context
 * (a reload makes a new one) and rotated by the parent: the newest makes
 * tickets, the one before still opens them (and the ticket is renewed).
 *
 * A context is made when the parent has sent every certificate of a
 * generation; sessions already running keep the context they began with.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>

#include <string.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "child.h"
#include "log.h"
#include "proto.h"
#include "tls.h"
#include "util.h"

#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
	"DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS	"X25519:P-256:P-384"

static SSL_CTX		*ctx;		/* the generation in use */
static SSL_CTX		*building;	/* the one arriving */
static uint32_t		 building_gen;
static uint32_t		 building_next;	/* the index expected next */
static char		 lasterr[160];

struct ticket_key {
	unsigned char	name[16];
	unsigned char	aes[32];
	unsigned char	hmac[32];
};
static struct ticket_key ticket_keys[TLS_TICKET_KEYS_MAX];
static size_t		 nticket_keys;	/* 0: no tickets yet */

void
tls_init(void)
{
	if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL))
		fatalx("tls: cannot initialise OpenSSL");
}

int
tls_on_signer(struct imsg *im)
{
	static int	have;

	if (im->fd == -1 || im->datalen != 0 || have)
		return -1;
	have = 1;
	tls_remote_signer(im->fd);
	im->fd = -1;
	return 0;
}

int
tls_ready(void)
{
	return ctx != NULL;
}

/* IMSG_TLS_TICKET_KEYS: the parent's keys replace ours at once. */
int
tls_on_ticket_keys(struct imsg *im)
{
	struct msgread	 mr;
	const uint8_t	*p;
	uint32_t	 n, i;

	mr_init(&mr, im);
	n = mr_u32(&mr);
	if (mr.err || n == 0 || n > TLS_TICKET_KEYS_MAX ||
	    im->datalen != 4 + (size_t)n * TLS_TICKET_KEY_LEN || im->fd != -1)
		return -1;
	explicit_bzero(ticket_keys, sizeof(ticket_keys));
	p = (const uint8_t *)im->data + 4;
	for (i = 0; i < n; i++, p += TLS_TICKET_KEY_LEN) {
		memcpy(ticket_keys[i].name, p, 16);
		memcpy(ticket_keys[i].aes, p + 16, 32);
		memcpy(ticket_keys[i].hmac, p + 48, 32);
	}
	nticket_keys = n;
	explicit_bzero(im->data, im->datalen);
	return 0;
}

static int
ticket_hmac(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
	OSSL_PARAM	params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * OpenSSL's ticket callback: enc, seal a new ticket with the newest key
 * (none before the parent sent one: no ticket); else open one with the
 * key its name says, 2 (renew it) when that key is not the newest, 0
 * (a full handshake) when the key is gone.
 */
static int
ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	size_t	i;

	if (enc) {
		if (nticket_keys == 0)
			return 0;
		memcpy(name, ticket_keys[0].name, 16);
		if (RAND_bytes(iv, 16) != 1 ||
		    !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL,
		    ticket_keys[0].aes, iv) || !ticket_hmac(hctx, &ticket_keys[0]))
			return -1;
		return 1;
	}
	for (i = 0; i < nticket_keys; i++)
		if (memcmp(name, ticket_keys[i].name, 16) == 0)
			break;
	if (i == nticket_keys)
		return 0;
	if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL,
	    ticket_keys[i].aes, iv) || !ticket_hmac(hctx, &ticket_keys[i]))
		return -1;
	return i == 0 ? 1 : 2;
}

static SSL_CTX *
ctx_new(void)
{
	SSL_CTX	*c;

	if ((c = SSL_CTX_new(TLS_server_method())) == NULL)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(c, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(c, TLS_GROUPS) ||
	    !SSL_CTX_set_dh_auto(c, 1)) {
		SSL_CTX_free(c);
		return NULL;
	}
	/* OpenSSL 3 refuses a client's renegotiation already; this is
	 * every renegotiation. */
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* One ticket is enough for a mail client's next poll. */
	SSL_CTX_set_num_tickets(c, 1);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(c, ticket_cb);
	SSL_CTX_set_session_id_context(c, (const unsigned char *)"pymaild",
	    7);
	return c;
}

/* The chain in pem: the server's certificate, then the others. */
static int
ctx_add_pair(SSL_CTX *c, const char *pem, size_t len, uint32_t gen,
    uint32_t index)
{
	BIO		*in;
	X509		*leaf, *x;
	EVP_PKEY	*key;
	int		 ok = 0;

	if ((in = BIO_new_mem_buf(pem, len)) == NULL)
		return -1;
	if ((leaf = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL)
		goto done;
	if (!SSL_CTX_use_certificate(c, leaf))
		goto done;
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL)
		if (!SSL_CTX_add0_chain_cert(c, x)) {
			X509_free(x);
			goto done;
		}
	if ((key = tls_remote_key(leaf, gen, index)) == NULL)
		goto done;
	ok = SSL_CTX_use_PrivateKey(c, key);
	EVP_PKEY_free(key);
 done:
	if (!ok)
		log_warnx("tls: certificate %u refused: %s", index,
		    tls_error());
	ERR_clear_error();
	X509_free(leaf);
	BIO_free(in);
	return ok ? 0 : -1;
}

/*
 * Certificates arrive in order, 0 to count - 1, for one generation; a
 * message out of that order is not the parent's. A certificate that
 * OpenSSL refuses leaves TLS as it was (the parent checked them all).
 */
int
tls_on_cert(struct imsg *im)
{
	struct msgread	 mr;
	const char	*pem;
	uint32_t	 gen, index, count, type, len;

	mr_init(&mr, im);
	gen = mr_u32(&mr);
	index = mr_u32(&mr);
	count = mr_u32(&mr);
	type = mr_u32(&mr);
	len = mr_u32(&mr);
	pem = mr.err || len > TLS_CHAIN_MAX ? NULL : mr_data(&mr, len);
	if (mr_end(&mr) == -1 || count == 0 || count > TLS_PAIRS_MAX ||
	    index >= count || (type != TLS_KEY_RSA && type != TLS_KEY_EC))
		return -1;
	if (index == 0) {
		SSL_CTX_free(building);
		if ((building = ctx_new()) == NULL)
			fatalx("tls: cannot make a context");
		building_gen = gen;
		building_next = 0;
	}
	if (building == NULL || gen != building_gen || index != building_next)
		return -1;
	building_next++;
	if (ctx_add_pair(building, pem, len, gen, index) == -1) {
		SSL_CTX_free(building);
		building = NULL;
		return 0;
	}
	if (index + 1 < count)
		return 0;
	SSL_CTX_free(ctx);
	ctx = building;
	building = NULL;
	log_debug("tls: %u certificate(s) of generation %u in use", count,
	    gen);
	return 0;
}

SSL *
tls_session(int fd)
{
	SSL	*ssl;
	int	 on = 1;

	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL)
		return NULL;
	/*
	 * The session ticket leaves right after the handshake, and the
	 * greeting or the next reply right behind it: with Nagle's
	 * algorithm that reply would wait for the client to acknowledge
	 * the ticket, which it delays by 40 ms having nothing to say.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (!SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

static void
note_error(void)
{
	unsigned long	e = ERR_peek_last_error();

	if (e == 0)
		strlcpy(lasterr, "connection closed", sizeof(lasterr));
	else
		ERR_error_string_n(e, lasterr, sizeof(lasterr));
	ERR_clear_error();
}

static enum tls_io
io_status(SSL *ssl, int ret)
{
	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_IO_EOF;
	case SSL_ERROR_SYSCALL:
		note_error();
		return TLS_IO_EOF;
	default:
		note_error();
		return TLS_IO_FAIL;
	}
}

enum tls_io
tls_handshake(SSL *ssl)
{
	int	r;

	ERR_clear_error();
	if ((r = SSL_accept(ssl)) == 1)
		return TLS_IO_DONE;
	return io_status(ssl, r);
}

ssize_t
tls_read(SSL *ssl, void *buf, size_t len, enum tls_io *st)
{
	size_t	n;

	ERR_clear_error();
	if (SSL_read_ex(ssl, buf, len, &n) == 1) {
		*st = TLS_IO_DONE;
		return n;
	}
	*st = io_status(ssl, 0);
	return -1;
}

ssize_t
tls_write(SSL *ssl, const void *buf, size_t len, enum tls_io *st)
{
	size_t	n;

	ERR_clear_error();
	if (SSL_write_ex(ssl, buf, len, &n) == 1) {
		*st = TLS_IO_DONE;
		return n;
	}
	*st = io_status(ssl, 0);
	return -1;
}

void
tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
}

static SSL_CTX *
client_ctx_new(void)
{
	SSL_CTX	*c;

	if ((c = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(c, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(c, TLS_GROUPS)) {
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	/* Only a session given TLSA records checks them (tls_client_dane) */
	if (SSL_CTX_dane_enable(c) <= 0) {
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

SSL *
tls_client_session(const char *servername)
{
	static SSL_CTX	*cctx;
	unsigned char	 addr[16];
	SSL		*ssl;

	if (cctx == NULL && (cctx = client_ctx_new()) == NULL) {
		note_error();
		return NULL;
	}
	if ((ssl = SSL_new(cctx)) == NULL) {
		note_error();
		return NULL;
	}
	/* SNI carries host names only (RFC 6066 3) */
	if (inet_pton(AF_INET, servername, addr) != 1 &&
	    inet_pton(AF_INET6, servername, addr) != 1 &&
	    strchr(servername, '[') == NULL &&
	    !SSL_set_tlsext_host_name(ssl, servername)) {
		note_error();
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

/*
 * DANE (RFC 7672): only DANE-TA(2) and DANE-EE(3) count for SMTP (3.1.3
 * makes PKIX-TA and PKIX-EE unusable: no CA list to check them against);
 * for DANE-EE the name is not checked (3.1.1), for DANE-TA it is the MX
 * host's. The handshake goes on whatever the outcome (the verify mode is
 * NONE), so that tls_client_dane_check can say why it failed.
 */
int
tls_client_dane(SSL *ssl, const char *host, const struct tlsa_reply *r)
{
	uint32_t	i;
	int		usable = 0;

	if (SSL_dane_enable(ssl, host) <= 0) {
		note_error();
		return -1;
	}
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (i = 0; i < r->n; i++) {
		if (r->rr[i].usage != 2 && r->rr[i].usage != 3)
			continue;
		/* 0: a kind we cannot use; -1: malformed (wrong length) */
		if (SSL_dane_tlsa_add(ssl, r->rr[i].usage, r->rr[i].selector,
		    r->rr[i].mtype, r->rr[i].data, r->rr[i].len) > 0)
			usable++;
	}
	ERR_clear_error();
	return usable;
}

int
tls_client_dane_check(SSL *ssl, char *why, size_t len)
{
	long	v = SSL_get_verify_result(ssl);

	if (v == X509_V_OK && SSL_get0_dane_authority(ssl, NULL, NULL) >= 0)
		return 0;
	snprintf(why, len, "%s", v == X509_V_OK ? "no TLSA record matched" :
	    X509_verify_cert_error_string(v));
	return -1;
}

/*
 * The CA bundle for a verified smarthost. outbound reads it before its
 * chroot (an empty folder): the file is public, and reading it there
 * keeps a 200 KiB list of certificates off the parent's channel.
 */
static X509_STORE	*castore;

int
tls_client_load_ca(const char *file)
{
	X509_STORE	*st;

	lasterr[0] = '\0';
	if ((st = X509_STORE_new()) == NULL) {
		note_error();
		return -1;
	}
	if (X509_STORE_load_file(st, file) != 1) {
		note_error();
		X509_STORE_free(st);
		return -1;
	}
	X509_STORE_free(castore);
	castore = st;
	return 0;
}

/*
 * PKIX on a client session, before its handshake: the chain must end at
 * one of the bundle's CAs and the leaf must name host (a DNS name, or an
 * address when the smarthost is given as one). As for DANE the handshake
 * goes on whatever the outcome; tls_client_verify_check tells.
 */
int
tls_client_verify(SSL *ssl, const char *host)
{
	X509_VERIFY_PARAM	*param = SSL_get0_param(ssl);
	unsigned char		 addr[16];
	int			 ok;

	lasterr[0] = '\0';
	if (castore == NULL) {
		snprintf(lasterr, sizeof(lasterr), "no CA bundle loaded");
		return -1;
	}
	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
	else {
		X509_VERIFY_PARAM_set_hostflags(param,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set1_host(ssl, host);
	}
	if (ok != 1 || SSL_set1_verify_cert_store(ssl, castore) != 1) {
		note_error();
		return -1;
	}
	return 0;
}

int
tls_client_verify_check(SSL *ssl, char *why, size_t len)
{
	long	v = SSL_get_verify_result(ssl);

	if (v == X509_V_OK && SSL_get0_peer_certificate(ssl) != NULL)
		return 0;
	snprintf(why, len, "%s", v == X509_V_OK ? "no certificate" :
	    X509_verify_cert_error_string(v));
	return -1;
}

const char *
tls_error(void)
{
	if (lasterr[0] == '\0')
		note_error();
	return lasterr;
}

static int
loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t	v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff };
	const uint8_t		*a;

	if (ss->ss_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)ss)->
		    sin_addr)[0] == 127;
	if (ss->ss_family != AF_INET6)
		return 0;
	a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
	if (memcmp(a, v4mapped, 12) == 0)
		return a[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->
	    sin6_addr);
}

int
tls_auth_allowed(int intls, int submission,
    const struct sockaddr_storage *peer)
{
	if (intls)
		return 1;
	if (submission)
		return 0;
	return proc->conf.ntls == 0 || loopback(peer);
}
