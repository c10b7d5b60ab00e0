/*
 * Keys without their private half: an RSA or EC key whose public part
 * comes from the certificate and whose signing operation is asked of the
 * parent, which alone reads the key file.
 *
 * OpenSSL's RSA_METHOD and EC_KEY_METHOD hooks are deprecated in 3.0 but
 * still supported, and they leave everything else (matching the key to
 * the certificate, choosing signature algorithms) to OpenSSL's own key
 * management. A provider would do the same with that key management
 * written again for two key types; the hooks keep this file short. Hence
 * the one file built with the deprecated declarations allowed.
 *
 * The request is synchronous, with a bounded wait: a helper has one
 * signature in flight at a time, and an ECDSA signature costs the parent
 * tens of microseconds, an RSA-2048 one about a millisecond.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "log.h"
#include "proto.h"
#include "tls.h"
#include "util.h"

#define SIGN_WAIT_MS	5000	/* the parent answers in milliseconds */

struct remote {
	uint32_t	gen;
	uint32_t	index;
};

static struct imsgbuf	 signer;
static int		 signer_ok;
static uint32_t		 next_reqid;
static RSA_METHOD	*rsa_meth;
static EC_KEY_METHOD	*ec_meth;
static int		 rsa_idx = -1, ec_idx = -1;

void
tls_remote_signer(int fd)
{
	imsgbuf_init(&signer, fd);
	set_nonblock(fd);
	signer_ok = 1;
}

static int
ms_left(const struct timespec *end)
{
	struct timespec	now;
	long long	ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (end->tv_sec - now.tv_sec) * 1000LL +
	    (end->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

static int
wait_fd(short events, const struct timespec *end)
{
	struct pollfd	pfd = { signer.fd, events, 0 };
	int		r;

	do {
		r = poll(&pfd, 1, ms_left(end));
	} while (r == -1 && errno == EINTR);
	return r == 1 ? 0 : -1;
}

static int
send_request(struct msgbuild *mb, const struct timespec *end)
{
	if (mb_send(mb, &signer, IMSG_TLS_SIGN, 0, -1) == -1)
		return -1;
	while (signer.whead != NULL) {
		if (imsgbuf_flush(&signer) == -1 ||
		    (signer.whead != NULL && wait_fd(POLLOUT, end) == -1))
			return -1;
	}
	return 0;
}

/* The reply to reqid: its signature into sig (room *siglen). */
static int
read_reply(uint32_t reqid, uint8_t *sig, size_t *siglen,
    const struct timespec *end)
{
	static struct imsg	 im;
	struct msgread		 mr;
	const void		*p;
	uint32_t		 id, result, len;
	ssize_t			 n;
	int			 r;

	for (;;) {
		while ((r = imsg_get(&signer, &im)) == 0) {
			if (wait_fd(POLLIN, end) == -1)
				return -1;
			n = imsgbuf_read(&signer);
			if (n == 0 || (n == -1 && errno != EAGAIN &&
			    errno != EINTR))
				return -1;
		}
		if (r == -1 || im.hdr.type != IMSG_TLS_SIGN_REPLY)
			return -1;
		mr_init(&mr, &im);
		id = mr_u32(&mr);
		result = mr_u32(&mr);
		len = mr_u32(&mr);
		p = mr.err || len > *siglen ? NULL : mr_data(&mr, len);
		if (mr_end(&mr) == -1)
			return -1;
		if (id != reqid)
			continue;	/* a late answer to one we gave up */
		if (result != 0 || len == 0)
			return -1;
		memcpy(sig, p, len);
		*siglen = len;
		return 0;
	}
}

static int
remote_sign(const struct remote *rk, uint32_t alg, uint32_t md,
    const uint8_t *data, size_t len, uint8_t *sig, size_t *siglen)
{
	struct msgbuild	mb;
	struct timespec	end;
	uint32_t	reqid = ++next_reqid;

	if (!signer_ok || len == 0 || len > TLS_SIGN_DATA_MAX)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += SIGN_WAIT_MS / 1000;
	mb_init(&mb);
	mb_u32(&mb, reqid);
	mb_u32(&mb, rk->gen);
	mb_u32(&mb, rk->index);
	mb_u32(&mb, alg);
	mb_u32(&mb, md);
	mb_u32(&mb, len);
	mb_data(&mb, data, len);
	if (send_request(&mb, &end) == 0 &&
	    read_reply(reqid, sig, siglen, &end) == 0)
		return 0;
	log_warnx("tls: no signature from the parent (key %u)", rk->index);
	return -1;
}

/* PKCS#1 v1.5 (TLS 1.2): the digest goes, the parent pads. */
static int
rsa_sign_hook(int type, const unsigned char *m, unsigned int mlen,
    unsigned char *sig, unsigned int *siglen, const RSA *rsa)
{
	const struct remote	*rk = RSA_get_ex_data(rsa, rsa_idx);
	size_t			 len = RSA_size(rsa);

	if (rk == NULL || remote_sign(rk, TLS_SIGN_RSA_PKCS1, type, m, mlen,
	    sig, &len) == -1 || len != (size_t)RSA_size(rsa))
		return 0;
	*siglen = len;
	return 1;
}

/* RSA-PSS: OpenSSL encodes the block, the parent checks its shape and
 * does the raw operation. */
static int
rsa_priv_enc_hook(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	const struct remote	*rk = RSA_get_ex_data(rsa, rsa_idx);
	size_t			 len = RSA_size(rsa);

	if (rk == NULL || padding != RSA_NO_PADDING || flen != RSA_size(rsa) ||
	    remote_sign(rk, TLS_SIGN_RSA_PSS, 0, from, flen, to, &len) == -1 ||
	    len != (size_t)RSA_size(rsa))
		return -1;
	return len;
}

static int
ec_sign_hook(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	const struct remote	*rk = EC_KEY_get_ex_data(ec, ec_idx);
	size_t			 len = ECDSA_size(ec);

	if (rk == NULL || dlen <= 0 || remote_sign(rk, TLS_SIGN_ECDSA, 0,
	    dgst, dlen, sig, &len) == -1)
		return 0;
	*siglen = len;
	return 1;
}

static void
remote_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	free(ptr);
}

static void
methods_init(void)
{
	if (rsa_meth != NULL)
		return;
	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, remote_free);
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, remote_free);
	if (rsa_idx == -1 || ec_idx == -1 ||
	    (rsa_meth = RSA_meth_dup(RSA_get_default_method())) == NULL ||
	    RSA_meth_set1_name(rsa_meth, "pymaild remote") != 1 ||
	    RSA_meth_set_sign(rsa_meth, rsa_sign_hook) != 1 ||
	    RSA_meth_set_priv_enc(rsa_meth, rsa_priv_enc_hook) != 1 ||
	    (ec_meth = EC_KEY_METHOD_new(EC_KEY_get_default_method())) ==
	    NULL)
		fatalx("tls: cannot make the remote key methods");
	EC_KEY_METHOD_set_sign(ec_meth, ec_sign_hook, NULL, NULL);
}

static struct remote *
remote_new(uint32_t gen, uint32_t index)
{
	struct remote	*rk = xmalloc(sizeof(*rk));

	rk->gen = gen;
	rk->index = index;
	return rk;
}

static EVP_PKEY *
rsa_remote(EVP_PKEY *pub, struct remote *rk)
{
	BIGNUM		*n = NULL, *e = NULL;
	RSA		*rsa;
	EVP_PKEY	*k;

	if (!EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_E, &e) ||
	    (rsa = RSA_new()) == NULL) {
		BN_free(n);
		BN_free(e);
		free(rk);
		return NULL;
	}
	RSA_set0_key(rsa, n, e, NULL);
	RSA_set_method(rsa, rsa_meth);
	RSA_set_ex_data(rsa, rsa_idx, rk);
	if ((k = EVP_PKEY_new()) == NULL || !EVP_PKEY_assign_RSA(k, rsa)) {
		EVP_PKEY_free(k);
		RSA_free(rsa);
		return NULL;
	}
	return k;
}

static EVP_PKEY *
ec_remote(EVP_PKEY *pub, struct remote *rk)
{
	const EC_KEY	*src;
	EC_KEY		*ec;
	EVP_PKEY	*k;

	if ((src = EVP_PKEY_get0_EC_KEY(pub)) == NULL ||
	    (ec = EC_KEY_new()) == NULL) {
		free(rk);
		return NULL;
	}
	EC_KEY_set_method(ec, ec_meth);
	EC_KEY_set_ex_data(ec, ec_idx, rk);
	if (!EC_KEY_set_group(ec, EC_KEY_get0_group(src)) ||
	    !EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) ||
	    (k = EVP_PKEY_new()) == NULL) {
		EC_KEY_free(ec);
		return NULL;
	}
	if (!EVP_PKEY_assign_EC_KEY(k, ec)) {
		EVP_PKEY_free(k);
		EC_KEY_free(ec);
		return NULL;
	}
	return k;
}

EVP_PKEY *
tls_remote_key(X509 *leaf, uint32_t gen, uint32_t index)
{
	EVP_PKEY	*pub, *k = NULL;

	methods_init();
	if ((pub = X509_get0_pubkey(leaf)) == NULL)
		return NULL;
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		k = rsa_remote(pub, remote_new(gen, index));
		break;
	case EVP_PKEY_EC:
		k = ec_remote(pub, remote_new(gen, index));
		break;
	}
	ERR_clear_error();
	return k;
}
