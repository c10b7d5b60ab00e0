/*
 * The spool's write-ahead journal: what makes a message durable before
 * smtpd may answer 250.
 *
 * A commit appends one record per message (its envelope text and its
 * data) to the active segment and syncs that one file, so a batch costs
 * one sequential write and one cache flush whatever its size. The
 * message's own files (msg/ID, env/ID) are written after the answer and
 * reach the disk later; until they do, the journal is what recovery
 * reads. Before a segment is written over, a syncfs() makes every file
 * finalized so far durable, so no record in it is needed any more.
 *
 * Two segments, journal/0 and journal/1, used in turn. Each starts with
 * a header carrying a sequence number; a record counts only when it
 * carries its segment's number and its checksum matches, so what an
 * earlier round left behind, or a write cut by a crash, ends the scan.
 *
 * Everything here but journal_init() runs on the sync thread, one job at
 * a time, except journal_finalized(), which the event loop calls when a
 * message got its files or left the queue (hence the atomic counter).
 */
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/tree.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "queued.h"
#include "util.h"

#define JNL_DIR		"journal"
#define JNL_HDR_SIZE	4096
#define JNL_SEG_SIZE	(32 * 1024 * 1024)	/* then the other one */
#define JNL_GROW	(1024 * 1024)		/* zeros written ahead */
#define JNL_MAGIC	0x314a4d50U		/* "PMJ1" */
#define JNL_SEG_MAGIC	"pymaild journal segment\n"

enum { REC_COMMIT = 1, REC_DONE = 2 };

struct rechdr {
	uint32_t	magic;
	uint32_t	type;
	uint32_t	envlen;
	uint32_t	datalen;
	uint64_t	seq;		/* the segment's */
	uint32_t	crc;		/* of this header (crc 0) and payload */
	uint32_t	zero;
};

struct seghdr {
	char		magic[32];
	uint64_t	seq;
	uint32_t	crc;
	uint32_t	zero;
};

struct segment {
	int		fd;
	uint64_t	seq;
	off_t		off;		/* where the next record goes */
	off_t		alloc;		/* written (with zeros) up to here */
	size_t		pending;	/* records still needed: the loop
					 * decrements (journal_finalized) */
};

static struct segment	segs[2];
static int		active;
static int		dir_root = -1;

static size_t
rec_size(size_t envlen, size_t datalen)
{
	return (sizeof(struct rechdr) + envlen + datalen + 7) & ~(size_t)7;
}

/* ---- writing (sync thread) ------------------------------------------- */

/*
 * The header of a record whose envelope (or id) and data are already in
 * place behind it in buf; the sequence number and the checksum come when
 * journal_write knows the segment. Returns the record's size.
 */
static size_t
rec_put(char *buf, uint32_t type, size_t envlen, size_t datalen)
{
	struct rechdr	h;
	size_t		len = rec_size(envlen, datalen);

	memset(&h, 0, sizeof(h));
	h.magic = JNL_MAGIC;
	h.type = type;
	h.envlen = envlen;
	h.datalen = datalen;
	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h) + envlen + datalen, 0,
	    len - sizeof(h) - envlen - datalen);
	return len;
}

/* Write a segment's first block (hdr, or zeros to void it) and sync. */
static int
seg_put_header(struct segment *s, const struct seghdr *hdr)
{
	char	block[JNL_HDR_SIZE];

	memset(block, 0, sizeof(block));
	if (hdr != NULL)
		memcpy(block, hdr, sizeof(*hdr));
	if (pwrite(s->fd, block, sizeof(block), 0) != sizeof(block) ||
	    fdatasync(s->fd) == -1)
		return -1;
	s->off = JNL_HDR_SIZE;
	s->alloc = MAX(s->alloc, JNL_HDR_SIZE);
	return 0;
}

static int
seg_start(struct segment *s, uint64_t seq)
{
	struct seghdr	h;

	memset(&h, 0, sizeof(h));
	strlcpy(h.magic, JNL_SEG_MAGIC, sizeof(h.magic));
	h.seq = seq;
	h.crc = crc32c(0, &h, sizeof(h));
	if (seg_put_header(s, &h) == -1)
		return -1;
	s->seq = seq;
	return 0;
}

static int
seg_void(struct segment *s)
{
	return seg_put_header(s, NULL);
}

/*
 * Records are written over zeros already on disk, so the file's size
 * does not change and fdatasync() has only the data to write, not the
 * inode. The zeros go ahead in steps, once per segment's life.
 */
static int
seg_grow(struct segment *s, off_t upto)
{
	static const char	zeros[64 * 1024];
	off_t			want;
	size_t			n;

	if (upto <= s->alloc)
		return 0;
	want = (upto + JNL_GROW - 1) / JNL_GROW * JNL_GROW;
	while (s->alloc < want) {
		n = MIN(sizeof(zeros), (size_t)(want - s->alloc));
		if (pwrite(s->fd, zeros, n, s->alloc) != (ssize_t)n) {
			if (errno == 0)
				errno = ENOSPC;
			return -1;
		}
		s->alloc += n;
	}
	return 0;
}

/*
 * Make the other segment the active one. Its records must all be in
 * their files, and those files on disk: hence the syncfs.
 */
static int
rotate(void)
{
	struct segment	*next = &segs[!active];

	if (__atomic_load_n(&next->pending, __ATOMIC_ACQUIRE) > 0) {
		errno = EAGAIN;
		return -1;
	}
	if (syncfs(dir_root) == -1 ||
	    seg_start(next, segs[active].seq + 1) == -1)
		return -1;
	active = !active;
	log_debug("journal: now segment %d, sequence %llu", active,
	    (unsigned long long)next->seq);
	return 0;
}

/*
 * Write a batch prepared in jb->buf (records without sequence number and
 * checksum yet) and sync it. -1 with errno EAGAIN when the journal has no room (the
 * caller then commits the old way), else errno of the failure.
 */
int
journal_write(struct jbatch *jb)
{
	struct segment	*s = &segs[active];
	struct rechdr	 h;
	size_t		 off;

	if (jb->len > JNL_SEG_SIZE / 2) {
		errno = EAGAIN;
		return -1;
	}
	if (s->off + (off_t)jb->len > JNL_SEG_SIZE) {
		if (rotate() == -1)
			return -1;
		s = &segs[active];
	}
	if (seg_grow(s, s->off + jb->len) == -1)
		return -1;
	/* Stamp each record with the segment's number, and sum it. */
	for (off = 0; off < jb->len; off += rec_size(h.envlen, h.datalen)) {
		memcpy(&h, jb->buf + off, sizeof(h));
		h.seq = s->seq;
		h.crc = crc32c(crc32c(0, &h, sizeof(h)),
		    jb->buf + off + sizeof(h), h.envlen + h.datalen);
		memcpy(jb->buf + off, &h, sizeof(h));
	}
	if (pwrite(s->fd, jb->buf, jb->len, s->off) != (ssize_t)jb->len) {
		if (errno == 0)
			errno = ENOSPC;
		return -1;
	}
	if (fdatasync(s->fd) == -1)
		return -1;
	s->off += jb->len;
	__atomic_add_fetch(&s->pending, jb->ncommits, __ATOMIC_RELEASE);
	jb->seg = active;
	return 0;
}

/* Room for a record in the batch buffer; returns where its data goes. */
char *
jbatch_reserve(struct jbatch *jb, size_t envlen, size_t datalen)
{
	size_t	need = rec_size(envlen, datalen);

	if (jb->len + need > jb->cap) {
		jb->cap = MAX(jb->cap * 2, jb->len + need);
		jb->buf = xreallocarray(jb->buf, jb->cap, 1);
	}
	return jb->buf + jb->len + sizeof(struct rechdr) + envlen;
}

/* After jbatch_reserve: the record's data is in place. */
void
jbatch_commit(struct jbatch *jb, const char *env, size_t envlen,
    size_t datalen)
{
	char	*rec = jb->buf + jb->len;

	memcpy(rec + sizeof(struct rechdr), env, envlen);
	jb->len += rec_put(rec, REC_COMMIT, envlen, datalen);
	jb->ncommits++;
}

void
jbatch_done(struct jbatch *jb, const char *id)
{
	size_t	 len = strlen(id);
	char	*rec;

	jbatch_reserve(jb, len, 0);
	rec = jb->buf + jb->len;
	memcpy(rec + sizeof(struct rechdr), id, len);
	jb->len += rec_put(rec, REC_DONE, len, 0);
}

void
jbatch_free(struct jbatch *jb)
{
	free(jb->buf);
	memset(jb, 0, sizeof(*jb));
}

/* A record of segment seg is no longer needed: its message is in its
 * files, or gone. */
void
journal_finalized(int seg)
{
	__atomic_sub_fetch(&segs[seg].pending, 1, __ATOMIC_RELEASE);
}

/*
 * At a clean stop: when every record is in its files, make those durable
 * and void both segments, so that the files alone say what is queued (an
 * admin may edit them while the daemon is stopped). -1 when a record
 * still waits for its files.
 */
int
journal_close(void)
{
	if (__atomic_load_n(&segs[0].pending, __ATOMIC_ACQUIRE) > 0 ||
	    __atomic_load_n(&segs[1].pending, __ATOMIC_ACQUIRE) > 0)
		return -1;
	if (syncfs(dir_root) == -1 || seg_void(&segs[0]) == -1 ||
	    seg_void(&segs[1]) == -1)
		return -1;
	return 0;
}

/* ---- recovery (at start, before the sync thread has work) ------------- */

struct found {
	RB_ENTRY(found)	 entry;
	char		 id[QUEUE_ID_LEN + 1];
	int		 done;
	char		*env;		/* envelope text, NUL-terminated */
	char		*data;
	size_t		 datalen;
};

RB_HEAD(foundtree, found);
int	found_cmp(struct found *, struct found *);
RB_PROTOTYPE(foundtree, found, entry, found_cmp);

int
found_cmp(struct found *a, struct found *b)
{
	return strcmp(a->id, b->id);
}

RB_GENERATE(foundtree, found, entry, found_cmp);

static struct foundtree	found = RB_INITIALIZER(&found);

static struct found *
found_get(const char *id)
{
	struct found	key, *f;

	strlcpy(key.id, id, sizeof(key.id));
	if ((f = RB_FIND(foundtree, &found, &key)) != NULL)
		return f;
	f = xcalloc(1, sizeof(*f));
	strlcpy(f->id, id, sizeof(f->id));
	RB_INSERT(foundtree, &found, f);
	return f;
}

static int
seg_read_header(struct segment *s)
{
	struct seghdr	h;
	uint32_t	crc;

	if (pread(s->fd, &h, sizeof(h), 0) != sizeof(h))
		return -1;
	crc = h.crc;
	h.crc = 0;
	if (crc != crc32c(0, &h, sizeof(h)) ||
	    strncmp(h.magic, JNL_SEG_MAGIC, sizeof(h.magic)) != 0)
		return -1;
	s->seq = h.seq;
	return 0;
}

/* The id an envelope text names (its "id: " line). */
static int
env_id(const char *text, char *id)
{
	struct envelope	*e = envelope_new("");
	char		 why[256];
	int		 r = -1;

	if (envelope_parse(text, e, why, sizeof(why)) == 0 &&
	    strlen(e->id) == QUEUE_ID_LEN) {
		strlcpy(id, e->id, QUEUE_ID_LEN + 1);
		r = 0;
	}
	envelope_free(e);
	return r;
}

/* One record at off; 0 and its size in *len, -1 at the end of the log. */
static int
scan_record(struct segment *s, off_t off, off_t end, size_t *len)
{
	struct rechdr	 h;
	struct found	*f;
	char		*p, id[QUEUE_ID_LEN + 1];
	uint32_t	 crc;

	if (off + (off_t)sizeof(h) > end ||
	    pread(s->fd, &h, sizeof(h), off) != sizeof(h) ||
	    h.magic != JNL_MAGIC || h.seq != s->seq ||
	    (h.type != REC_COMMIT && h.type != REC_DONE) ||
	    h.envlen > ENV_TEXT_MAX || h.datalen > JNL_INLINE_MAX ||
	    off + (off_t)rec_size(h.envlen, h.datalen) > end)
		return -1;
	p = xmalloc(h.envlen + h.datalen + 1);
	if (pread(s->fd, p, h.envlen + h.datalen, off + sizeof(h)) !=
	    (ssize_t)(h.envlen + h.datalen))
		goto bad;
	crc = h.crc;
	h.crc = 0;
	if (crc != crc32c(crc32c(0, &h, sizeof(h)), p, h.envlen +
	    h.datalen))
		goto bad;
	*len = rec_size(h.envlen, h.datalen);
	if (h.type == REC_DONE) {
		p[h.envlen] = '\0';
		if (h.envlen == QUEUE_ID_LEN)
			found_get(p)->done = 1;
		free(p);
		return 0;
	}
	/* A commit: the envelope text, then the data. */
	memmove(p + h.envlen + 1, p + h.envlen, h.datalen);
	p[h.envlen] = '\0';
	if (env_id(p, id) == -1) {
		log_warnx("journal: a record at %lld has a bad envelope; "
		    "skipped", (long long)off);
		free(p);
		return 0;
	}
	f = found_get(id);
	free(f->env);
	f->env = p;
	f->data = p + h.envlen + 1;
	f->datalen = h.datalen;
	return 0;
bad:
	free(p);
	return -1;
}

static void
seg_scan(struct segment *s)
{
	struct stat	st;
	off_t		off = JNL_HDR_SIZE;
	size_t		len, n = 0;

	if (fstat(s->fd, &st) == -1 || seg_read_header(s) == -1)
		return;
	while (scan_record(s, off, st.st_size, &len) == 0) {
		off += len;
		n++;
	}
	log_debug("journal: segment sequence %llu: %zu records",
	    (unsigned long long)s->seq, n);
}

/* Does env/ID hold this message already (maybe updated since)? */
static int
files_complete(const struct found *f)
{
	struct envelope	*e;
	struct stat	 st;
	char		 path[64], why[256], *text;
	int		 ok;

	snprintf(path, sizeof(path), "env/%s", f->id);
	if (file_read_all(path, ENV_TEXT_MAX, &text, NULL) == -1)
		return 0;
	e = envelope_new("");
	ok = envelope_parse(text, e, why, sizeof(why)) == 0 &&
	    strcmp(e->id, f->id) == 0 && e->datasize == (long long)f->datalen;
	free(text);
	envelope_free(e);
	snprintf(path, sizeof(path), "msg/%s", f->id);
	return ok && stat(path, &st) == 0 && st.st_size == (off_t)f->datalen;
}

static int
write_file(const char *tmp, const char *path, const char *p, size_t len)
{
	int	fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (write_full(fd, p, len) == -1) {
		close(fd);
		return -1;
	}
	if (close(fd) == -1)
		return -1;
	return rename(tmp, path);
}

/* Write a committed message's files back from its record. */
static void
restore(const struct found *f)
{
	char	tmp[64], path[64];

	snprintf(tmp, sizeof(tmp), "incoming/%s", f->id);
	snprintf(path, sizeof(path), "msg/%s", f->id);
	if (write_file(tmp, path, f->data, f->datalen) == -1) {
		log_warn("journal: cannot restore %s", path);
		return;
	}
	snprintf(tmp, sizeof(tmp), "incoming/%s.env", f->id);
	snprintf(path, sizeof(path), "env/%s", f->id);
	if (write_file(tmp, path, f->env, strlen(f->env)) == -1) {
		log_warn("journal: cannot restore %s", path);
		return;
	}
	log_info("queue id=%s result=restored reason=journal", f->id);
}

static void
replay(void)
{
	struct found	*f;
	size_t		 n = 0;

	/* The order does not matter: a removal is noted whichever segment
	 * holds it, and a message is committed once. */
	seg_scan(&segs[0]);
	seg_scan(&segs[1]);
	while ((f = RB_ROOT(&found)) != NULL) {
		if (f->env != NULL && !f->done && !files_complete(f)) {
			restore(f);
			n++;
		}
		RB_REMOVE(foundtree, &found, f);
		free(f->env);
		free(f);
	}
	if (n > 0)
		log_info("journal: %zu messages restored", n);
}

static void
seg_open(struct segment *s, int i)
{
	struct stat	st;
	char		path[64];

	snprintf(path, sizeof(path), JNL_DIR "/%d", i);
	s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->fd == -1 || fstat(s->fd, &st) == -1)
		fatal("journal: open %s", path);
	s->alloc = st.st_size;
	s->seq = 0;
	s->pending = 0;
}

/*
 * At start: put back what the journal holds that the files do not, make
 * it all durable, and begin a fresh segment. Runs before the spool reads
 * env/, so restored messages are queued like any other.
 */
void
journal_init(int rootfd)
{
	int	i;

	dir_root = rootfd;
	if (mkdir(JNL_DIR, 0700) == -1 && errno != EEXIST)
		fatal("journal: mkdir " JNL_DIR);
	for (i = 0; i < 2; i++)
		seg_open(&segs[i], i);
	replay();
	if (syncfs(dir_root) == -1)
		fatal("journal: syncfs");
	/*
	 * Both segments are spent now: the other one is voided, or its
	 * records would be replayed again after the next crash, and the
	 * older one starts the new round.
	 */
	active = segs[0].seq <= segs[1].seq ? 0 : 1;
	if (seg_void(&segs[!active]) == -1 ||
	    seg_start(&segs[active], MAX(segs[0].seq, segs[1].seq) + 1) == -1)
		fatal("journal: cannot start a segment");
}
