/*
 * The TLS private keys: read here, and only here (DESIGN.md B2). smtpd
 * and pop3d get the certificate chains and a socket each on which they
 * ask for the one signature a full handshake needs; a broken-into helper
 * can ask for signatures while it runs, never for the key.
 *
 * The signatures are made on a thread of their own, not on the event
 * loop: an RSA-2048 signature costs about a millisecond, and the loop
 * also serves deliveries and logins. The thread takes one request per
 * helper per round, so neither helper can starve the other, and each
 * helper waits for its answer before it asks again (one in flight).
 *
 * What a helper may have signed is checked against the key: a digest of
 * a known length for PKCS#1 v1.5 and ECDSA; for RSA-PSS, whose padding
 * OpenSSL's RSA_METHOD hook leaves to the helper, a block that is a
 * well-formed PSS encoding, so the raw RSA operation never decrypts
 * anything that was encrypted to this key.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "log.h"
#include "pymaild.h"
#include "reqparse.h"
#include "util.h"

#define RSA_BITS_MIN	2048

struct tlspair {
	EVP_PKEY	*key;
	int		 type;		/* TLS_KEY_* */
	char		*chain;		/* PEM, certificates only */
	size_t		 chainlen;
};

struct tlsset {
	struct tlspair	 pair[TLS_PAIRS_MAX];
	size_t		 n;
};

/* The set in use; the signing thread reads it under the lock. */
static pthread_mutex_t	 keylock = PTHREAD_MUTEX_INITIALIZER;
static struct tlsset	 current;
static uint32_t		 generation;
/*
 * The set a reload replaced, generation - 1, kept a short while: a
 * handshake that began just before the reload asks for a signature by
 * the key of the certificate it has already shown. Not for longer: a key
 * an administrator replaced because it leaked must stop signing soon.
 */
#define PREVIOUS_GRACE	60	/* seconds */
static struct tlsset	 previous;
static struct event	 ev_previous;

/* The helpers' signing sockets, the thread's side; -1 when closed. */
static const enum proc_role signer_roles[] = { PROC_SMTPD, PROC_POP3D };
#define NSIGNERS	(sizeof(signer_roles) / sizeof(signer_roles[0]))
static int		 signer_fd[NSIGNERS] = { -1, -1 };
static int		 signer_child_fd[NSIGNERS] = { -1, -1 };
static int		 signer_sent[NSIGNERS];
/* The thread tells the loop of a helper that broke the rules. */
static int		 failpipe[2] = { -1, -1 };
static struct event	 ev_fail;

static void
set_free(struct tlsset *set)
{
	size_t	i;

	for (i = 0; i < set->n; i++) {
		EVP_PKEY_free(set->pair[i].key);
		free(set->pair[i].chain);
	}
	memset(set, 0, sizeof(*set));
}

/* The first reason OpenSSL gives, for a message naming the file. */
static const char *
ssl_reason(void)
{
	static char	buf[160];
	unsigned long	e = ERR_peek_last_error();

	if (e == 0)
		return "not in PEM format";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int
cert_dates_ok(X509 *x, const char *path, char *err, size_t errlen)
{
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		snprintf(err, errlen, "%s: the certificate has expired", path);
		return -1;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		snprintf(err, errlen, "%s: the certificate is not valid yet",
		    path);
		return -1;
	}
	return 0;
}

/*
 * The chain of path, written out again certificate by certificate, so
 * that nothing else the file holds (a private key, for one) ever leaves
 * this process. *leaf: the server's certificate, the file's first.
 */
static int
chain_load(const char *path, X509 **leaf, struct tlspair *p, char *err,
    size_t errlen)
{
	BIO	*in, *out;
	X509	*x;
	char	*mem;
	long	 len;
	int	 n = 0;

	*leaf = NULL;
	if ((in = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(errno));
		ERR_clear_error();
		return -1;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new");
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
		if (!PEM_write_bio_X509(out, x))
			fatalx("PEM_write_bio_X509");
		if (n++ == 0)
			*leaf = x;
		else
			X509_free(x);
	}
	ERR_clear_error();
	BIO_free(in);
	len = BIO_get_mem_data(out, &mem);
	if (*leaf == NULL || len <= 0 || len > TLS_CHAIN_MAX) {
		snprintf(err, errlen, *leaf == NULL ? "%s: no certificate in "
		    "it (PEM expected)" : "%s: the certificate chain is "
		    "longer than %d octets", path, TLS_CHAIN_MAX);
		BIO_free(out);
		X509_free(*leaf);
		*leaf = NULL;
		return -1;
	}
	p->chain = xmalloc(len);
	memcpy(p->chain, mem, len);
	p->chainlen = len;
	BIO_free(out);
	return 0;
}

static EVP_PKEY *
key_load(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*k;
	BIO		*in;

	if ((in = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
	BIO_free(in);
	if (k == NULL)
		snprintf(err, errlen, "%s: no private key in it (%s)", path,
		    ssl_reason());
	return k;
}

static int
key_type(EVP_PKEY *k, const char *path, char *err, size_t errlen)
{
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(k) >= RSA_BITS_MIN)
			return TLS_KEY_RSA;
		snprintf(err, errlen, "%s: an RSA key of %d bits; at least %d "
		    "are needed", path, EVP_PKEY_get_bits(k), RSA_BITS_MIN);
		return -1;
	case EVP_PKEY_EC:
		return TLS_KEY_EC;
	default:
		snprintf(err, errlen, "%s: not an RSA or ECDSA key", path);
		return -1;
	}
}

static int
pair_load(const char *certpath, const char *keypath, struct tlspair *p,
    char *err, size_t errlen)
{
	X509	*leaf;
	int	 rv = -1;

	if (chain_load(certpath, &leaf, p, err, errlen) == -1)
		return -1;
	if (cert_dates_ok(leaf, certpath, err, errlen) == -1)
		goto done;
	if ((p->key = key_load(keypath, err, errlen)) == NULL)
		goto done;
	if ((p->type = key_type(p->key, keypath, err, errlen)) == -1)
		goto done;
	if (X509_check_private_key(leaf, p->key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: the key does not match the "
		    "certificate %s", keypath, certpath);
		goto done;
	}
	rv = 0;
 done:
	X509_free(leaf);
	return rv;
}

static int
set_load(const struct config *conf, struct tlsset *set, char *err,
    size_t errlen)
{
	size_t	i;

	memset(set, 0, sizeof(*set));
	for (i = 0; i < conf->ntls; i++) {
		set->n++;
		if (pair_load(conf->tls_cert[i], conf->tls_key[i],
		    &set->pair[i], err, errlen) == -1)
			goto fail;
		/* The server can present one certificate per key type. */
		if (i > 0 && set->pair[i].type == set->pair[0].type) {
			snprintf(err, errlen, "%s: a second key of the same "
			    "type as %s; pair an RSA key with an ECDSA one",
			    conf->tls_key[i], conf->tls_key[0]);
			goto fail;
		}
	}
	return 0;
 fail:
	set_free(set);
	return -1;
}

int
tlskeys_check(const struct config *conf, char *err, size_t errlen)
{
	struct tlsset	set;

	if (set_load(conf, &set, err, errlen) == -1)
		return -1;
	set_free(&set);
	return 0;
}

/* ---- signing --------------------------------------------------------- */

static const EVP_MD *
digest_of(uint32_t nid, uint32_t len)
{
	const EVP_MD	*md;

	if (nid != NID_sha256 && nid != NID_sha384 && nid != NID_sha512)
		return NULL;
	if ((md = EVP_get_digestbynid(nid)) == NULL ||
	    (uint32_t)EVP_MD_get_size(md) != len)
		return NULL;
	return md;
}

static int
mgf1(const EVP_MD *md, const uint8_t *seed, size_t seedlen, uint8_t *mask,
    size_t len)
{
	uint8_t		 h[EVP_MAX_MD_SIZE], c[4];
	unsigned int	 hlen;
	uint32_t	 i;
	size_t		 off = 0, n;
	EVP_MD_CTX	*ctx;
	int		 rv = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	for (i = 0; off < len; i++) {
		c[0] = i >> 24;
		c[1] = i >> 16;
		c[2] = i >> 8;
		c[3] = i;
		if (!EVP_DigestInit_ex(ctx, md, NULL) ||
		    !EVP_DigestUpdate(ctx, seed, seedlen) ||
		    !EVP_DigestUpdate(ctx, c, sizeof(c)) ||
		    !EVP_DigestFinal_ex(ctx, h, &hlen))
			goto done;
		n = len - off < hlen ? len - off : hlen;
		memcpy(mask + off, h, n);
		off += n;
	}
	rv = 0;
 done:
	EVP_MD_CTX_free(ctx);
	return rv;
}

/*
 * Is em (the key's size in octets) an EMSA-PSS encoding (RFC 8017 9.1)
 * with this digest for MGF1 and a salt as long as the digest, as TLS
 * uses? Only the shape is checked: the message hash is not known here.
 */
static int
pss_shape_with(const EVP_MD *md, const uint8_t *em, size_t len, int msbits)
{
	uint8_t	db[TLS_SIGN_DATA_MAX];
	size_t	hlen = EVP_MD_get_size(md), dblen, i;

	if (len < 2 * hlen + 2 || em[len - 1] != 0xbc)
		return 0;
	dblen = len - hlen - 1;
	if (mgf1(md, em + dblen, hlen, db, dblen) == -1)
		return 0;
	for (i = 0; i < dblen; i++)
		db[i] ^= em[i];
	if (msbits != 0)
		db[0] &= 0xff >> (8 - msbits);
	/* PS (zeros), 0x01, then the salt: hlen octets. */
	for (i = 0; i < dblen - hlen - 1; i++)
		if (db[i] != 0)
			return 0;
	return db[dblen - hlen - 1] == 0x01;
}

static int
pss_shape_ok(EVP_PKEY *key, const uint8_t *em, size_t len)
{
	static const int	nids[] = { NID_sha256, NID_sha384, NID_sha512 };
	int			bits = EVP_PKEY_get_bits(key);
	int			msbits = (bits - 1) & 7;
	size_t			i;

	if (len != (size_t)EVP_PKEY_get_size(key))
		return 0;
	/* The bits above the modulus' top are zero. */
	if (msbits == 0) {
		if (em[0] != 0)
			return 0;
		em++;
		len--;
	} else if (em[0] & (0xff << msbits))
		return 0;
	for (i = 0; i < sizeof(nids) / sizeof(nids[0]); i++)
		if (pss_shape_with(EVP_get_digestbynid(nids[i]), em, len,
		    msbits))
			return 1;
	return 0;
}

/* What may be signed with this key: 0 when the request suits it. */
static int
request_fits(const struct tlspair *p, const struct req_tls_sign *rq,
    const EVP_MD **md)
{
	*md = NULL;
	switch (rq->alg) {
	case TLS_SIGN_RSA_PKCS1:
		*md = digest_of(rq->md, rq->len);
		return p->type == TLS_KEY_RSA && *md != NULL ? 0 : -1;
	case TLS_SIGN_RSA_PSS:
		return p->type == TLS_KEY_RSA && rq->md == 0 &&
		    pss_shape_ok(p->key, rq->data, rq->len) ? 0 : -1;
	case TLS_SIGN_ECDSA:
		return p->type == TLS_KEY_EC && rq->md == 0 && (rq->len ==
		    32 || rq->len == 48 || rq->len == 64) ? 0 : -1;
	default:
		return -1;
	}
}

static int
sign_with(const struct tlspair *p, const struct req_tls_sign *rq,
    const EVP_MD *md, uint8_t *sig, size_t *siglen)
{
	EVP_PKEY_CTX	*ctx;
	int		 ok;

	if ((ctx = EVP_PKEY_CTX_new(p->key, NULL)) == NULL)
		return -1;
	ok = EVP_PKEY_sign_init(ctx) > 0;
	if (ok && rq->alg == TLS_SIGN_RSA_PKCS1)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
	if (ok && rq->alg == TLS_SIGN_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0;
	if (ok)
		ok = EVP_PKEY_sign(ctx, sig, siglen, rq->data, rq->len) > 0;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* One request: 0 answered (maybe with a failure), -1 hostile. */
static int
serve_one(struct imsgbuf *ib, const struct imsg *im)
{
	struct req_tls_sign	 rq;
	struct msgbuild		 mb;
	const struct tlspair	*p = NULL;
	const EVP_MD		*md;
	uint8_t			 sig[TLS_SIGN_DATA_MAX];
	size_t			 siglen = sizeof(sig);
	uint32_t		 result = 1;

	if (im->hdr.type != IMSG_TLS_SIGN || im->fd != -1 ||
	    req_read_tls_sign(im->data, im->datalen, &rq) == -1)
		return -1;
	pthread_mutex_lock(&keylock);
	/* A request for an older set, or for the one before the last reload
	 * once its grace is over, gets a failure: that handshake fails. */
	if (rq.generation == generation && rq.index < current.n)
		p = &current.pair[rq.index];
	else if (rq.generation + 1 == generation && rq.index < previous.n)
		p = &previous.pair[rq.index];
	if (p != NULL && request_fits(p, &rq, &md) == 0 &&
	    sign_with(p, &rq, md, sig, &siglen) == 0)
		result = 0;
	pthread_mutex_unlock(&keylock);
	if (result != 0) {
		siglen = 0;
		log_warnx("tls: refused a signing request (generation %u, "
		    "key %u, algorithm %u, %u octets)", rq.generation,
		    rq.index, rq.alg, rq.len);
	}
	mb_init(&mb);
	mb_u32(&mb, rq.reqid);
	mb_u32(&mb, result);
	mb_u32(&mb, siglen);
	mb_data(&mb, sig, siglen);
	explicit_bzero(sig, sizeof(sig));
	if (mb_send(&mb, ib, IMSG_TLS_SIGN_REPLY, 0, -1) == -1 ||
	    imsgbuf_flush_all(ib) == -1)
		return -1;
	return 0;
}

/* The helper's requests: one per call. -1 when its socket is done. */
static int
serve_helper(size_t i, struct imsgbuf *ib, struct imsg *im)
{
	ssize_t	n;
	int	r;

	if ((r = imsg_get(ib, im)) == 0) {
		n = imsgbuf_read(ib);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;	/* it exited: the loop hears of it */
		r = imsg_get(ib, im);
	}
	if (r == 0)
		return 0;
	if (r == 1 && serve_one(ib, im) == 0)
		return 0;
	/* Only a broken-into helper sends anything else here. */
	if (write(failpipe[1], &signer_roles[i], sizeof(signer_roles[i])) ==
	    -1)
		log_warn("tls: signer");
	return -1;
}

static void *
signer_main(void *arg)
{
	static struct imsgbuf	ib[NSIGNERS];
	static struct imsg	im;
	struct pollfd		pfd[NSIGNERS];
	size_t			i;
	int			open = 0;

	for (i = 0; i < NSIGNERS; i++) {
		imsgbuf_init(&ib[i], signer_fd[i]);
		if (signer_fd[i] != -1)
			open++;
	}
	while (open > 0) {
		for (i = 0; i < NSIGNERS; i++) {
			pfd[i].fd = ib[i].fd;
			pfd[i].events = POLLIN;
		}
		if (poll(pfd, NSIGNERS, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("tls: poll");
		}
		for (i = 0; i < NSIGNERS; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			if (serve_helper(i, &ib[i], &im) == 0)
				continue;
			imsgbuf_clear(&ib[i]);
			close(ib[i].fd);
			ib[i].fd = -1;
			open--;
		}
	}
	return NULL;
}

static void
signer_failed(int fd, short ev, void *arg)
{
	enum proc_role	role;

	if (read(fd, &role, sizeof(role)) != sizeof(role) ||
	    role >= PROC_COUNT)
		return;
	/* As for a malformed frame on its channel: that helper is cut off
	 * (it exits when it sees it), then everything stops. */
	chan_close(&env->children[role].chan);
	parent_fail(&env->children[role], "sent a malformed signing "
	    "request");
}

/* ---- start, reload, the helpers ------------------------------------- */

/* At start, as root: the keys, and a signing socket per TLS helper. */
void
tlskeys_init(void)
{
	char	err[512];
	int	sp[2];
	size_t	i;

	if (env->conf.ntls == 0)
		return;
	if (set_load(&env->conf, &current, err, sizeof(err)) == -1)
		fatalx("%s", err);
	generation = 1;
	for (i = 0; i < NSIGNERS; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) ==
		    -1)
			fatal("socketpair");
		signer_fd[i] = sp[0];
		signer_child_fd[i] = sp[1];
	}
	if (pipe2(failpipe, O_CLOEXEC) == -1)
		fatal("pipe");
}

/* On the loop, once it exists. */
void
tlskeys_start(void)
{
	pthread_t	t;

	if (env->conf.ntls == 0)
		return;
	event_set(&ev_fail, failpipe[0], EV_READ | EV_PERSIST, signer_failed,
	    NULL);
	event_base_set(env->base, &ev_fail);
	event_add(&ev_fail, NULL);
	if (pthread_create(&t, NULL, signer_main, NULL) != 0)
		fatalx("tls: cannot start the signing thread");
	pthread_detach(t);
}

static void
send_certs(struct child *c)
{
	struct msgbuild	mb;
	size_t		i;

	for (i = 0; i < current.n; i++) {
		mb_init(&mb);
		mb_u32(&mb, generation);
		mb_u32(&mb, i);
		mb_u32(&mb, current.n);
		mb_u32(&mb, current.pair[i].type);
		mb_u32(&mb, current.pair[i].chainlen);
		mb_data(&mb, current.pair[i].chain, current.pair[i].chainlen);
		parent_send(c->role, IMSG_TLS_CERT, &mb, -1);
	}
}

/* A helper said hello: what it needs for TLS, before its listeners. */
void
tlskeys_hello(struct child *c)
{
	struct msgbuild	mb;
	size_t		i;

	if (env->conf.ntls == 0)
		return;
	for (i = 0; i < NSIGNERS; i++) {
		if (signer_roles[i] != c->role)
			continue;
		if (!signer_sent[i]) {
			signer_sent[i] = 1;
			mb_init(&mb);
			parent_send(c->role, IMSG_TLS_SIGNER, &mb,
			    signer_child_fd[i]);
			signer_child_fd[i] = -1;
		}
		pthread_mutex_lock(&keylock);
		send_certs(c);
		pthread_mutex_unlock(&keylock);
	}
}

/*
 * A reload reads the files again (a renewed certificate needs no
 * restart); a pair that fails keeps the old set and fails the reload.
 * After the privilege drop: the key must be readable by `user`.
 */
static void
previous_expired(int fd, short ev, void *arg)
{
	struct tlsset	old;

	(void)fd;
	(void)ev;
	(void)arg;
	pthread_mutex_lock(&keylock);
	old = previous;
	memset(&previous, 0, sizeof(previous));
	pthread_mutex_unlock(&keylock);
	set_free(&old);
}

int
tlskeys_reload(const struct config *nconf, char *err, size_t errlen)
{
	struct tlsset	set, old;
	struct timeval	grace = { PREVIOUS_GRACE, 0 };
	size_t		i;

	if ((nconf->ntls == 0) != (env->conf.ntls == 0)) {
		snprintf(err, errlen, "%s: tls: turning TLS on or off needs a "
		    "restart", nconf->path);
		return -1;
	}
	if (nconf->ntls == 0)
		return 0;
	if (set_load(nconf, &set, err, errlen) == -1)
		return -1;
	pthread_mutex_lock(&keylock);
	old = previous;
	previous = current;
	current = set;
	generation++;
	for (i = 0; i < NSIGNERS; i++)
		if (env->children[signer_roles[i]].ready)
			send_certs(&env->children[signer_roles[i]]);
	pthread_mutex_unlock(&keylock);
	set_free(&old);
	if (!evtimer_initialized(&ev_previous)) {
		evtimer_set(&ev_previous, previous_expired, NULL);
		event_base_set(env->base, &ev_previous);
	}
	evtimer_add(&ev_previous, &grace);
	return 0;
}
