/*
 * pymailadm dkimkey DOMAIN [SELECTOR] [--ed25519] [-o FILE]: a new DKIM
 * signing key (RSA 2048, or Ed25519), the DNS record to publish and the
 * configuration lines that use it. pymailadm dnsrecords DOMAIN: every
 * record a local domain needs (MX, SPF, DKIM of its configured keys,
 * DMARC), from the configuration.
 *
 * The key goes to FILE, or to dkim/DOMAIN.SELECTOR.key beside the
 * configuration file (/etc/pymaild/dkim for /etc/pymaild.conf): written whole under a temporary name (mode 0600),
 * synced, then renamed into place only if nothing has that name, so an
 * existing key (maybe published, maybe signing) is never replaced. As
 * root, the file is given to `user`, the account the parent runs as
 * after start: a reload reads the keys again.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base64.h"
#include "dkim.h"
#include "pymailadm.h"
#include "util.h"

#define TXT_STRING_MAX	255	/* octets of one DNS character-string */

static EVP_PKEY *
key_make(int ed25519)
{
	EVP_PKEY_CTX	*pc;
	EVP_PKEY	*k = NULL;

	pc = EVP_PKEY_CTX_new_id(ed25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA,
	    NULL);
	if (pc == NULL || EVP_PKEY_keygen_init(pc) != 1 ||
	    (!ed25519 && EVP_PKEY_CTX_set_rsa_keygen_bits(pc, 2048) != 1) ||
	    EVP_PKEY_keygen(pc, &k) != 1)
		die("cannot make a key");
	EVP_PKEY_CTX_free(pc);
	return k;
}

/* The p= value: the SubjectPublicKeyInfo of an RSA key, the 32 octets
 * of an Ed25519 one (RFC 8463 4.2), in base64. */
static char *
public_b64(EVP_PKEY *k, int ed25519)
{
	unsigned char	*der = NULL, raw[32];
	char		*out;
	size_t		 rawlen = sizeof(raw);
	int		 len;

	if (ed25519) {
		if (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) != 1)
			die("cannot read the public key");
		out = xmalloc(64);
		base64_encode(raw, rawlen, out, 64);
		return out;
	}
	if ((len = i2d_PUBKEY(k, &der)) <= 0)
		die("cannot encode the public key");
	out = xmalloc(len * 2 + 4);
	base64_encode(der, len, out, len * 2 + 4);
	OPENSSL_free(der);
	return out;
}

/* As root: the daemon's account may read it (a reload does). */
static void
give_to_daemon(int fd, const char *path)
{
	struct passwd	*pw;

	if (geteuid() != 0 || (pw = getpwnam(adm.conf.user)) == NULL)
		return;
	if ((fd != -1 ? fchown(fd, pw->pw_uid, pw->pw_gid) :
	    chown(path, pw->pw_uid, pw->pw_gid)) == -1)
		die("chown %s: %s", path, strerror(errno));
}

/*
 * dkim/ in the folder of the configuration file; for the system's own
 * (/etc/pymaild.conf), /etc/pymaild/dkim rather than a folder of /etc.
 */
static void
default_path(const char *domain, const char *sel, char *path, size_t len)
{
	char	dir[1024];

	if (strcmp(adm.conf.basedir, "/etc") == 0) {
		if (mkdir("/etc/pymaild", 0755) == -1 && errno != EEXIST)
			die("/etc/pymaild: %s", strerror(errno));
		strlcpy(dir, "/etc/pymaild/dkim", sizeof(dir));
	} else
		snprintf(dir, sizeof(dir), "%s/dkim", adm.conf.basedir);
	if (mkdir(dir, 0700) == 0)
		give_to_daemon(-1, dir);
	else if (errno != EEXIST)
		die("%s: %s", dir, strerror(errno));
	if (snprintf(path, len, "%s/%s.%s.key", dir, domain, sel) >= (int)len)
		die("%s: path too long", dir);
}


static void
key_write(EVP_PKEY *k, const char *path)
{
	char	 tmp[1200], dir[1024], *slash;
	FILE	*f;
	int	 fd, dfd;

	if (access(path, F_OK) == 0)
		die("%s exists: a key is never replaced (choose another "
		    "selector)", path);
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		die("%s: path too long", path);
	if ((fd = mkstemp(tmp)) == -1)
		die("%s: %s", tmp, strerror(errno));
	give_to_daemon(fd, tmp);
	if ((f = fdopen(fd, "w")) == NULL ||
	    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(f) != 0 || fsync(fd) == -1) {
		unlink(tmp);
		die("%s: cannot write the key", tmp);
	}
	fclose(f);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == -1) {
		unlink(tmp);
		die("%s: %s", path, strerror(errno));
	}
	strlcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	if ((dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY |
	    O_DIRECTORY)) != -1) {
		fsync(dfd);
		close(dfd);
	}
}

/* The record, split into character-strings of 255 octets at most. */
static void
print_record(const char *domain, const char *sel, int ed25519,
    const char *pub)
{
	char	 txt[2048];
	size_t	 i, n, len;

	snprintf(txt, sizeof(txt), "v=DKIM1; k=%s; p=%s",
	    ed25519 ? "ed25519" : "rsa", pub);
	len = strlen(txt);
	printf("%s._domainkey.%s. IN TXT", sel, domain);
	for (i = 0; i < len; i += n) {
		n = len - i < TXT_STRING_MAX ? len - i : TXT_STRING_MAX;
		printf(" \"%.*s\"", (int)n, txt + i);
	}
	printf("\n");
}

int
cmd_dkimkey(int argc, char **argv)
{
	const char	*domain = NULL, *out = NULL;
	char		 sel[DKIM_SELECTOR_MAX + 1] = "", path[1100], *pub;
	EVP_PKEY	*k;
	time_t		 now = time(NULL);
	int		 i, ed25519 = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ed25519") == 0)
			ed25519 = 1;
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] == '-')
			usage_error("usage: dkimkey DOMAIN [SELECTOR] "
			    "[--ed25519] [-o FILE]");
		else if (domain == NULL)
			domain = argv[i];
		else if (sel[0] == '\0')
			strlcpy(sel, argv[i], sizeof(sel));
		else
			usage_error("usage: dkimkey DOMAIN [SELECTOR] "
			    "[--ed25519] [-o FILE]");
	}
	if (domain == NULL)
		usage_error("usage: dkimkey DOMAIN [SELECTOR] [--ed25519] "
		    "[-o FILE]");
	if (!config_is_localdomain(&adm.conf, domain))
		die("%s is not one of localdomains: only our own mail is "
		    "signed", domain);
	if (sel[0] == '\0')	/* a new one each month: rotation is easy */
		strftime(sel, sizeof(sel), ed25519 ? "e%Y%m" : "s%Y%m",
		    gmtime(&now));
	if (!dkim_selector_ok(sel))
		die("'%s' is not a selector: letters, digits and '-', at most "
		    "63", sel);
	if (out != NULL)
		strlcpy(path, out, sizeof(path));
	else
		default_path(domain, sel, path, sizeof(path));
	k = key_make(ed25519);
	key_write(k, path);
	pub = public_b64(k, ed25519);
	EVP_PKEY_free(k);
	printf("Key written to %s\n", path);
	printf("Publish this record in DNS:\n");
	print_record(domain, sel, ed25519, pub);
	printf("Then add this entry to the dkim list of %s and reload:\n",
	    adm.confpath);
	printf("dkim = ( { domain = \"%s\"; selector = \"%s\"; key = \"%s\"; "
	    "} );\n", domain, sel, path);
	free(pub);
	return 0;
}

/* The public half of a configured key file, to publish. */
static void
print_key_record(const struct config_dkim *d)
{
	EVP_PKEY	*k;
	FILE		*fp;
	char		*pub;
	int		 ed25519;

	if ((fp = fopen(d->key, "r")) == NULL)
		die("%s: %s", d->key, strerror(errno));
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL)
		die("%s: not a private key", d->key);
	ed25519 = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;
	pub = public_b64(k, ed25519);
	EVP_PKEY_free(k);
	print_record(d->domain, d->selector, ed25519, pub);
	free(pub);
}

int
cmd_dnsrecords(int argc, char **argv)
{
	const struct config	*c = &adm.conf;
	const char		*domain;
	size_t			 i, nkeys = 0;

	if (argc != 1 || argv[0][0] == '-')
		usage_error("usage: dnsrecords DOMAIN");
	domain = argv[0];
	if (!config_is_localdomain(c, domain))
		die("%s is not one of localdomains", domain);
	printf("; DNS records for %s, from %s\n", domain, adm.confpath);
	printf("; mail for the domain comes to this host (%s needs an A or "
	    "AAAA record,\n; and its address a PTR record naming it)\n",
	    c->serverhostname);
	printf("%s. IN MX 10 %s.\n", domain, c->serverhostname);
	printf("; the hosts that send its mail: its MX hosts%s\n",
	    c->usesmtprelay ? " (add the smarthost's, which sends it)" : "");
	printf("%s. IN TXT \"v=spf1 mx -all\"\n", domain);
	for (i = 0; i < c->ndkim; i++) {
		if (strcasecmp(c->dkim[i].domain, domain) != 0)
			continue;
		if (nkeys++ == 0)
			printf("; the keys its mail is signed with\n");
		print_key_record(&c->dkim[i]);
	}
	if (nkeys == 0)
		printf("; no dkim key for it: pymailadm dkimkey %s makes one\n",
		    domain);
	printf("; what receivers do with mail that fails both: quarantine "
	    "(p=reject once\n; every sender of the domain signs)\n");
	printf("_dmarc.%s. IN TXT \"v=DMARC1; p=quarantine; adkim=r; "
	    "aspf=r\"\n", domain);
	return 0;
}
