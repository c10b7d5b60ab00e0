/*
 * Replays every corpus file through its harness (make regress runs this
 * as regress/unit/test_fuzz_replay). Each harness runs in a child, so a
 * crash is reported with the file that caused it and the other harnesses
 * still run. Prints "PASS fuzz/NAME: N inputs" or "FAIL fuzz/NAME: why".
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_REPLAY
#include "fuzz.h"

#ifndef FUZZ_CORPUS
#define FUZZ_CORPUS	"regress/fuzz/corpus"
#endif
#define INPUT_MAX	(4 * 1024 * 1024)

typedef int (*fuzzfn)(const uint8_t *, size_t);

#define FUZZ_X(name)	int fuzz_##name(const uint8_t *, size_t);
#include "targets.h"
#undef FUZZ_X

static const struct {
	const char	*name;
	fuzzfn		 fn;
} targets[] = {
#define FUZZ_X(name)	{ #name, fuzz_##name },
#include "targets.h"
#undef FUZZ_X
};

/* Read by LeakSanitizer at start in a SANITIZE=1 build. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return FUZZ_LSAN_SUPPRESSIONS;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The file names of a folder, sorted; NULL when it cannot be read. */
static char **
list_dir(const char *dir, size_t *n)
{
	DIR		*d;
	struct dirent	*de;
	char		**v = NULL, **nv;

	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((nv = realloc(v, (*n + 1) * sizeof(*v))) == NULL ||
		    (nv[*n] = strdup(de->d_name)) == NULL)
			abort();
		v = nv;
		(*n)++;
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), name_cmp);
	return v;
}

static uint8_t *
read_input(const char *path, size_t *len)
{
	FILE	*fp;
	uint8_t	*buf;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	if ((buf = malloc(INPUT_MAX)) == NULL)
		abort();
	*len = fread(buf, 1, INPUT_MAX, fp);
	fclose(fp);
	return buf;
}

/* In the child: tell the parent each file before it runs, then run it. */
static int
replay_files(fuzzfn fn, const char *dir, char **files, size_t n, int report)
{
	char	 path[PATH_MAX];
	uint8_t	*buf;
	size_t	 i, len;

	for (i = 0; i < n; i++) {
		dprintf(report, "%s\n", files[i]);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    files[i]) >= sizeof(path) ||
		    (buf = read_input(path, &len)) == NULL) {
			dprintf(report, "cannot read %s\n", files[i]);
			return 2;
		}
		fn(buf, len);
		free(buf);
	}
	return 0;
}

/* The last line the child wrote: the file it was on. */
static void
last_line(int fd, char *out, size_t outlen)
{
	char	buf[4096], *nl;
	char	line[PATH_MAX] = "";
	ssize_t	n;
	size_t	have = 0;

	while ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			strlcpy(line, buf, sizeof(line));
			have -= nl + 1 - buf;
			memmove(buf, nl + 1, have);
			buf[have] = '\0';
		}
		if (have == sizeof(buf) - 1)
			have = 0;
	}
	strlcpy(out, line, outlen);
}

static int
replay_target(const char *name, fuzzfn fn)
{
	char	 dir[PATH_MAX], last[PATH_MAX];
	char	**files;
	size_t	 n, i;
	pid_t	 pid;
	int	 p[2], status, rc;

	snprintf(dir, sizeof(dir), "%s/%s", FUZZ_CORPUS, name);
	if ((files = list_dir(dir, &n)) == NULL || n == 0) {
		printf("FAIL fuzz/%s: no corpus in %s\n", name, dir);
		return 1;
	}
	if (pipe(p) == -1 || (pid = fork()) == -1) {
		printf("FAIL fuzz/%s: %s\n", name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		/* exit, not _exit: LeakSanitizer checks at exit. */
		exit(replay_files(fn, dir, files, n, p[1]));
	}
	close(p[1]);
	last_line(p[0], last, sizeof(last));
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	rc = 0;
	if (WIFSIGNALED(status)) {
		printf("FAIL fuzz/%s: %s/%s: killed by signal %d\n", name,
		    dir, last, WTERMSIG(status));
		rc = 1;
	} else if (WEXITSTATUS(status) != 0) {
		printf("FAIL fuzz/%s: %s/%s: exit status %d\n", name, dir,
		    last, WEXITSTATUS(status));
		rc = 1;
	} else
		printf("PASS fuzz/%s: %zu inputs\n", name, n);
	fflush(stdout);
	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
	return rc;
}

int
main(int argc, char *argv[])
{
	size_t	i;
	int	j, failed = 0, want;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		/* Arguments, when given, name the harnesses to replay. */
		want = argc < 2;
		for (j = 1; j < argc; j++)
			want |= strcmp(argv[j], targets[i].name) == 0;
		if (want)
			failed += replay_target(targets[i].name,
			    targets[i].fn);
	}
	return failed ? 1 : 0;
}
