/*
 * A pool of emptied spool files, so the queue does not allocate and free
 * an inode for every message.
 *
 * A delivered message's files are renamed into free/ instead of
 * unlinked, and the next message takes one back by renaming it to its
 * own name and writing over it; the writer cuts it to its new length.
 * Creating and deleting inodes, and freeing blocks, is the costly part of
 * a spool: on ext4 without a journal every new inode is searched for past
 * the ones freed in the last seconds (a busy queue makes each create
 * slower than the last), freed blocks may be discarded synchronously,
 * and a truncate waits for pages under writeback. A rename does none of
 * that.
 *
 * Only the event loop uses the pool, and only queued opens its files:
 * smtpd writes into a memfd (spool.c), so the old data of another
 * message that a reused file holds until it is cut is never within its
 * reach; a file whose descriptor went to outbound never comes back
 * (fpool_give_data). What free/ holds is old data of delivered messages, never read
 * again; after a crash it is taken back as it is. Large files are not kept, so the pool holds at most
 * FPOOL_MAX * FPOOL_FILE_MAX octets.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queued.h"
#include "util.h"

#define FPOOL_MAX	512		/* files kept for reuse */
#define FPOOL_DIR	"free"

/* A ring, oldest first: a file freed long ago has no page still being
 * written back, and cutting such a page would wait for the disk. */
static uint32_t	pool[FPOOL_MAX];
static size_t	pool_head, npool;
static uint32_t	next_name;

static uint32_t
pool_pop(void)
{
	uint32_t	n = pool[pool_head];

	pool_head = (pool_head + 1) % FPOOL_MAX;
	npool--;
	return n;
}

static void
pool_push(uint32_t n)
{
	pool[(pool_head + npool) % FPOOL_MAX] = n;
	npool++;
}

static void
pool_path(char *buf, size_t len, uint32_t n)
{
	snprintf(buf, len, FPOOL_DIR "/f%08x", n);
}

/*
 * Give path a file: one from the pool when there is one, else a new one.
 * Returns a descriptor open for reading and writing at offset 0, or -1.
 * The file may hold old data past what the caller writes: the caller
 * truncates.
 */
int
fpool_take(const char *path)
{
	char	from[64];
	int	fd;

	while (npool > 0) {
		pool_path(from, sizeof(from), pool_pop());
		if (rename(from, path) == -1) {
			if (errno == ENOENT)
				continue;	/* an admin removed it */
			break;
		}
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) != -1)
			return fd;
		unlink(path);
		return -1;
	}
	return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/*
 * Give path's file (size octets, or -1 when not known) to the pool, or
 * remove it when the pool is full or the file large.
 */
int
fpool_give(const char *path, off_t size)
{
	struct stat	st;
	char		to[64];

	if (size < 0)
		size = stat(path, &st) == 0 ? st.st_size : FPOOL_FILE_MAX + 1;
	if (npool == FPOOL_MAX || size > FPOOL_FILE_MAX)
		return unlink(path);
	pool_path(to, sizeof(to), next_name);
	if (rename(path, to) == -1)
		return unlink(path);
	pool_push(next_name++);
	return 0;
}

/*
 * A message's data file: into the pool, unless a descriptor of it went
 * to the outbound process. That one may still hold it (a compromised
 * one would keep it), and would read the next message written into it:
 * such a file is removed, so the descriptor keeps this message only.
 */
int
fpool_give_data(const char *path, const struct envelope *e)
{
	if (e->handed_out)
		return unlink(path);
	return fpool_give(path, e->datasize);
}

/* At start: take back what free/ holds, and name new ones past it. */
void
fpool_init(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[PATH_MAX], *end;
	unsigned long	 n;

	if (mkdir(FPOOL_DIR, 0700) == -1 && errno != EEXIST)
		fatal("spool: mkdir " FPOOL_DIR);
	if ((d = opendir(FPOOL_DIR)) == NULL)
		fatal("spool: opendir " FPOOL_DIR);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n = de->d_name[0] == 'f' ?
		    strtoul(de->d_name + 1, &end, 16) : 0;
		snprintf(path, sizeof(path), FPOOL_DIR "/%s", de->d_name);
		if (de->d_name[0] != 'f' || *end != '\0' ||
		    strlen(de->d_name) != 9 || npool == FPOOL_MAX) {
			unlink(path);
			continue;
		}
		pool_push((uint32_t)n);
		if ((uint32_t)n >= next_name)
			next_name = (uint32_t)n + 1;
	}
	closedir(d);
}
