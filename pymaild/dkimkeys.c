/*
 * The DKIM signing keys: read here, and only here, then handed to queued,
 * the one helper that signs (it commits messages and builds bounces, and
 * faces no network). smtpd, pop3d, outbound and mxcache never get them.
 *
 * Keys are checked when they are read: an RSA key under 2048 bits is
 * refused (RFC 8301 asks signers for 2048; receivers are free to treat
 * a 1024-bit signature as none), so is one over 4096 bits (nobody
 * publishes those in one TXT string, and the key record must fit), and
 * anything but RSA or Ed25519. A domain has at most one key of each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"
#include "log.h"
#include "pymaild.h"
#include "util.h"

#define DKIM_RSA_BITS_MIN	2048
#define DKIM_RSA_BITS_MAX	4096
#define DKIM_KEYFILE_MAX	(64 * 1024)

struct dkimkey {
	const struct config_dkim	*cf;	/* its entry */
	int				 alg;
	unsigned char			*der;
	int				 derlen;
};

struct dkimset {
	struct dkimkey	key[CONFIG_DKIM_MAX];
	size_t		n;
};

static struct dkimset	current;
static uint32_t		generation;

static void
set_free(struct dkimset *set)
{
	size_t	i;

	for (i = 0; i < set->n; i++)
		if (set->key[i].der != NULL) {
			explicit_bzero(set->key[i].der, set->key[i].derlen);
			OPENSSL_free(set->key[i].der);
		}
	memset(set, 0, sizeof(*set));
}

static EVP_PKEY *
key_read(const char *path, char *err, size_t errlen)
{
	EVP_PKEY	*k;
	BIO		*in;
	char		*text;
	size_t		 len;

	if (file_read_all(path, DKIM_KEYFILE_MAX, &text, &len) == -1) {
		snprintf(err, errlen, "dkim: %s: cannot read: %s", path,
		    strerror(errno));
		return NULL;
	}
	in = BIO_new_mem_buf(text, len);
	k = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
	BIO_free(in);
	explicit_bzero(text, len);
	free(text);
	ERR_clear_error();
	if (k == NULL)
		snprintf(err, errlen, "dkim: %s: not a private key in PEM "
		    "(make one with pymailadm dkimkey)", path);
	return k;
}

static int
key_alg(EVP_PKEY *k, const char *path, char *err, size_t errlen)
{
	int	bits;

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(k);
		if (bits >= DKIM_RSA_BITS_MIN && bits <= DKIM_RSA_BITS_MAX)
			return DKIM_ALG_RSA;
		snprintf(err, errlen, "dkim: %s: an RSA key of %d bits; "
		    "signing needs %d to %d", path, bits, DKIM_RSA_BITS_MIN,
		    DKIM_RSA_BITS_MAX);
		return -1;
	case EVP_PKEY_ED25519:
		return DKIM_ALG_ED25519;
	default:
		snprintf(err, errlen, "dkim: %s: not an RSA or Ed25519 key",
		    path);
		return -1;
	}
}

static int
key_load(const struct config_dkim *cf, struct dkimkey *dk, char *err,
    size_t errlen)
{
	EVP_PKEY	*k;

	if ((k = key_read(cf->key, err, errlen)) == NULL)
		return -1;
	dk->cf = cf;
	dk->der = NULL;
	if ((dk->alg = key_alg(k, cf->key, err, errlen)) == -1) {
		EVP_PKEY_free(k);
		return -1;
	}
	dk->derlen = i2d_PrivateKey(k, &dk->der);
	EVP_PKEY_free(k);
	if (dk->derlen <= 0 || dk->derlen > DKIM_KEY_DER_MAX) {
		snprintf(err, errlen, "dkim: %s: cannot encode the key",
		    cf->key);
		return -1;
	}
	return 0;
}

static int
set_load(const struct config *conf, struct dkimset *set, char *err,
    size_t errlen)
{
	size_t	i, j;

	memset(set, 0, sizeof(*set));
	for (i = 0; i < conf->ndkim; i++) {
		set->n++;
		if (key_load(&conf->dkim[i], &set->key[i], err, errlen) == -1)
			goto fail;
		for (j = 0; j < i; j++)
			if (strcmp(conf->dkim[j].domain,
			    conf->dkim[i].domain) == 0 &&
			    set->key[j].alg == set->key[i].alg) {
				snprintf(err, errlen, "dkim: %s: a second %s "
				    "key for %s (one RSA and one Ed25519 at "
				    "most)", conf->dkim[i].key,
				    set->key[i].alg == DKIM_ALG_RSA ? "RSA" :
				    "Ed25519", conf->dkim[i].domain);
				goto fail;
			}
	}
	return 0;
 fail:
	set_free(set);
	return -1;
}

int
dkimkeys_check(const struct config *conf, char *err, size_t errlen)
{
	struct dkimset	set;

	if (set_load(conf, &set, err, errlen) == -1)
		return -1;
	set_free(&set);
	return 0;
}

/* At start, as root: a key file is often readable by root only. */
void
dkimkeys_init(void)
{
	char	err[512];

	if (set_load(&env->conf, &current, err, sizeof(err)) == -1)
		fatalx("%s", err);
	generation = 1;
}

static void
send_keys(void)
{
	struct msgbuild	mb;
	size_t		i;

	if (!env->children[PROC_QUEUED].ready)
		return;		/* its HELLO sends them */
	if (current.n == 0) {
		mb_init(&mb);
		mb_u32(&mb, generation);
		mb_u32(&mb, 0);
		mb_u32(&mb, 0);
		parent_send(PROC_QUEUED, IMSG_DKIM_KEY, &mb, -1);
		return;
	}
	for (i = 0; i < current.n; i++) {
		mb_init(&mb);
		mb_u32(&mb, generation);
		mb_u32(&mb, i);
		mb_u32(&mb, current.n);
		mb_str(&mb, current.key[i].cf->domain);
		mb_str(&mb, current.key[i].cf->selector);
		mb_u32(&mb, current.key[i].alg);
		mb_u32(&mb, current.key[i].derlen);
		mb_data(&mb, current.key[i].der, current.key[i].derlen);
		parent_send(PROC_QUEUED, IMSG_DKIM_KEY, &mb, -1);
		explicit_bzero(&mb, sizeof(mb));
	}
}

void
dkimkeys_hello(struct child *c)
{
	if (c->role == PROC_QUEUED)
		send_keys();
}

/*
 * Read the keys of nconf; on success they replace the ones in use once
 * the new config is in place (dkimkeys_commit), else the reload fails.
 * The entries point into the config: the set follows it.
 */
static struct dkimset	pending;

int
dkimkeys_reload(const struct config *nconf, char *err, size_t errlen)
{
	set_free(&pending);
	return set_load(nconf, &pending, err, errlen);
}

/* env->conf is the new config now: the keys read for it go to queued. */
void
dkimkeys_commit(void)
{
	size_t	i;

	set_free(&current);
	current = pending;
	/* the entries moved with the config: point at env->conf's own */
	for (i = 0; i < current.n; i++)
		current.key[i].cf = &env->conf.dkim[i];
	memset(&pending, 0, sizeof(pending));
	generation++;
	send_keys();
}
