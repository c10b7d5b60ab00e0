/*
 * Fuzz harnesses: each NAME.c defines its entry with FUZZ_ENTRY(NAME).
 * Built with clang and libFuzzer it is LLVMFuzzerTestOneInput; built for
 * the replay in make regress (any compiler, SANITIZE-able) it is
 * fuzz_NAME, called by replay.c over every file of corpus/NAME/.
 *
 * A harness checks invariants, not only survival: a broken one calls
 * FUZZ_ASSERT, which aborts, so libFuzzer keeps the input and the replay
 * fails on it.
 */
#ifndef PYMAILD_FUZZ_H
#define PYMAILD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Leaks that are not ours: libconfig 1.5's scanner loses what it had
 * allocated when a parse error stops it (strings, escapes); fixed
 * upstream in 1.7. It costs a few bytes per failed load of a
 * configuration or options file, which only an administrator writes.
 */
#define FUZZ_LSAN_SUPPRESSIONS	"leak:libconfig.so\n"

#ifdef FUZZ_REPLAY
#define FUZZ_ENTRY(name)						\
	int fuzz_##name(const uint8_t *, size_t);			\
	int fuzz_##name(const uint8_t *data, size_t size)
#else
#define FUZZ_ENTRY(name)						\
	int LLVMFuzzerTestOneInput(const uint8_t *, size_t);		\
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
/* Read by LeakSanitizer at start (one harness per fuzzer binary). */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return FUZZ_LSAN_SUPPRESSIONS;
}
#endif

#define FUZZ_ASSERT(cond) do {						\
	if (!(cond))							\
		fuzz_fail(#cond, __FILE__, __LINE__);			\
} while (0)

static inline void __attribute__((noreturn))
fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", what, file,
	    line);
	abort();
}

/* The input as a C string (it ends at its first NUL, as a parser over
 * text would see it); the caller frees it. */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char	*s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
