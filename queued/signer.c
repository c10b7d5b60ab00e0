/*
 * DKIM signing of mail that leaves (RFC 6376, RFC 8463). The parent reads
 * the keys and hands them here; queued is the one process that holds
 * them, since it faces no network.
 *
 * A message is signed once, when it is committed (or, for a bounce,
 * when it is built): the signature lines go into its envelope, so every
 * attempt, after any restart, sends the same bytes, and the spool data
 * stays as smtpd wrote it (local recipients of the same message get it
 * unsigned). Only a message with a remote recipient whose From: domain
 * is one of ours with a key is signed; the commit of local mail does
 * not look at its header at all.
 *
 * Commits are signed on a thread of their own (spool.c, the CPU lane),
 * bounces on the loop: both use a key set by reference, counted on the
 * loop, so a reload never frees keys a signature is being made with.
 */
#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "child.h"
#include "dkim.h"
#include "log.h"
#include "msgfrom.h"
#include "queued.h"
#include "util.h"

struct dkimset {
	int		 refs;
	struct dkim_key	 key[DKIM_KEYS_MAX];
	size_t		 n;
};

static struct dkimset	*current;	/* in use; NULL: none */
static struct dkimset	*coming;	/* a generation arriving */
static uint32_t		 coming_gen;

/* Domains already logged as sent unsigned, since the last key set. */
static char		(*nokey)[256];
static size_t		 nnokey;
#define NOKEY_MAX	256

static void
set_unref(struct dkimset *s)
{
	size_t	i;

	if (s == NULL || --s->refs > 0)
		return;
	for (i = 0; i < s->n; i++)
		EVP_PKEY_free(s->key[i].pkey);
	free(s);
}

struct dkimset *
signer_keys(void)
{
	if (current != NULL)
		current->refs++;
	return current;
}

void
signer_keys_done(struct dkimset *s)
{
	set_unref(s);
}

/*
 * IMSG_DKIM_KEY (proto.h). Only the parent sends it, but a payload is
 * still read by its bounds: a key that does not parse, or one out of
 * turn, is a parent gone wrong and closes the channel.
 */
static int
read_key(struct imsg *im, uint32_t *gen, uint32_t *idx, uint32_t *count,
    struct dkim_key *k)
{
	struct msgread		 mr;
	unsigned char		 der[DKIM_KEY_DER_MAX];
	const unsigned char	*p = der;
	const void		*src;
	uint32_t		 len;

	mr_init(&mr, im);
	*gen = mr_u32(&mr);
	*idx = mr_u32(&mr);
	*count = mr_u32(&mr);
	if (*count == 0)
		return mr_end(&mr) == -1 || *idx != 0 ? -1 : 0;
	mr_str(&mr, k->domain, sizeof(k->domain));
	mr_str(&mr, k->selector, sizeof(k->selector));
	k->alg = mr_u32(&mr);
	len = mr_u32(&mr);
	if (mr.err || len == 0 || len > sizeof(der) ||
	    (src = mr_data(&mr, len)) == NULL)
		return -1;
	memcpy(der, src, len);
	if (mr_end(&mr) == -1 || *count > DKIM_KEYS_MAX || *idx >= *count ||
	    (k->alg != DKIM_ALG_RSA && k->alg != DKIM_ALG_ED25519) ||
	    !dkim_selector_ok(k->selector) || k->domain[0] == '\0')
		return -1;
	k->pkey = d2i_AutoPrivateKey(NULL, &p, len);
	explicit_bzero(der, sizeof(der));
	if (k->pkey == NULL || (EVP_PKEY_get_base_id(k->pkey) ==
	    EVP_PKEY_ED25519) != (k->alg == DKIM_ALG_ED25519)) {
		EVP_PKEY_free(k->pkey);
		return -1;
	}
	return 0;
}

static void
set_in_use(struct dkimset *s)
{
	set_unref(current);
	current = s;
	free(nokey);
	nokey = NULL;
	nnokey = 0;
	log_info("dkim: %zu signing keys", s ? s->n : 0);
}

int
signer_dispatch(struct imsg *im)
{
	struct dkim_key	k;
	uint32_t	gen, idx, count;

	memset(&k, 0, sizeof(k));
	if (read_key(im, &gen, &idx, &count, &k) == -1) {
		log_warnx("dkim: the parent sent a malformed key");
		return -1;
	}
	if (count == 0) {
		set_unref(coming);
		coming = NULL;
		set_in_use(NULL);
		return 0;
	}
	if (idx == 0) {
		set_unref(coming);
		coming = xcalloc(1, sizeof(*coming));
		coming->refs = 1;
		coming_gen = gen;
	}
	if (coming == NULL || gen != coming_gen || idx != coming->n) {
		EVP_PKEY_free(k.pkey);
		log_warnx("dkim: a key out of turn from the parent");
		return -1;
	}
	coming->key[coming->n++] = k;
	if (coming->n == count) {
		set_in_use(coming);
		coming = NULL;
	}
	return 0;
}

/* Does e have a recipient that leaves? Local mail is never signed. */
int
signer_wanted(const struct envelope *e)
{
	size_t	i;

	if (current == NULL)
		return 0;
	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].user[0] == '\0' &&
		    e->rcpts[i].status == RS_PENDING)
			return 1;
	return 0;
}

/* Is dom the key's domain or under it (From: a host of ours, signed
 * d= the domain: DMARC's relaxed alignment takes it)? */
static int
domain_covers(const char *keydom, const char *dom)
{
	size_t	kl = strlen(keydom), dl = strlen(dom);

	if (strcmp(keydom, dom) == 0)
		return 1;
	return dl > kl && dom[dl - kl - 1] == '.' &&
	    strcmp(dom + dl - kl, keydom) == 0;
}

/*
 * The keys of the closest domain covering dom, into out (RSA first, then
 * Ed25519: one of each at most, as the parent allows); how many.
 */
static size_t
keys_for(const struct dkimset *s, const char *dom, struct dkim_key *out)
{
	static const int	 order[] = { DKIM_ALG_RSA, DKIM_ALG_ED25519 };
	size_t			 i, j, n = 0, best = 0, len;

	for (i = 0; i < s->n; i++)
		if (domain_covers(s->key[i].domain, dom) &&
		    (len = strlen(s->key[i].domain)) > best)
			best = len;
	for (j = 0; j < 2; j++)
		for (i = 0; i < s->n; i++)
			if (s->key[i].alg == order[j] &&
			    strlen(s->key[i].domain) == best &&
			    domain_covers(s->key[i].domain, dom)) {
				out[n++] = s->key[i];
				break;
			}
	return n;
}

/*
 * Sign msg for e with the keys of s (either thread). Returns 1 signed,
 * 0 no From: domain to sign for, -1 not signed: nokeydom then names the
 * From: domain, for signer_log_nokey on the loop.
 */
int
signer_sign(struct dkimset *s, struct envelope *e, const char *msg,
    size_t len, char *nokeydom, size_t nokeylen)
{
	struct dkim_key	 keys[2];
	char		 dom[256], *sigs;
	size_t		 n;

	nokeydom[0] = '\0';
	if (s == NULL || msgfrom_message(msg, len, dom, sizeof(dom)) !=
	    MSGFROM_ONE)
		return 0;
	if ((n = keys_for(s, dom, keys)) == 0) {
		/* whether it is ours is the loop's to say (the config
		 * changes there) */
		strlcpy(nokeydom, dom, nokeylen);
		return -1;
	}
	sigs = xmalloc(2 * DKIM_SIG_MAX + 2);
	if (dkim_sign(msg, len, keys, n, e->created, sigs,
	    2 * DKIM_SIG_MAX + 2) == -1) {
		free(sigs);
		strlcpy(nokeydom, dom, nokeylen);
		return -1;
	}
	free(e->dkim);
	e->dkim = sigs;
	return 1;
}

/* On the loop: a domain of ours sent unsigned, said once per key set. */
void
signer_log_nokey(const char *id, const char *dom)
{
	size_t	i;

	if (dom[0] == '\0' || !config_is_localdomain(&proc->conf, dom))
		return;
	for (i = 0; i < nnokey; i++)
		if (strcmp(nokey[i], dom) == 0)
			return;
	log_warnx("dkim: id=%s from domain %s sent unsigned (no key for it, "
	    "or it could not be signed); said once", id, dom);
	if (nnokey == NOKEY_MAX)
		return;
	nokey = xreallocarray(nokey, nnokey + 1, sizeof(*nokey));
	strlcpy(nokey[nnokey++], dom, sizeof(*nokey));
}

/* A commit, on the CPU lane: the sealed memfd, mapped read-only. */
int
signer_sign_fd(struct dkimset *s, struct envelope *e, int fd,
    char *nokeydom, size_t nokeylen)
{
	void	*p;
	int	 r;

	nokeydom[0] = '\0';
	if (e->datasize <= 0)
		return 0;
	p = mmap(NULL, e->datasize, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return 0;
	r = signer_sign(s, e, p, e->datasize, nokeydom, nokeylen);
	munmap(p, e->datasize);
	return r;
}
