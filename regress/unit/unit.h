/*
 * A tiny unit test harness. Each check prints "PASS name" or
 * "FAIL name: why"; the regress runner counts those lines.
 */
#ifndef PYMAILD_UNIT_H
#define PYMAILD_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed;

#define CHECK(name, cond) do {						\
	if (cond)							\
		printf("PASS %s\n", (name));				\
	else {								\
		printf("FAIL %s: %s (%s:%d)\n", (name), #cond,		\
		    __FILE__, __LINE__);				\
		unit_failed++;						\
	}								\
	fflush(stdout);							\
} while (0)

#define UNIT_EXIT()	return (unit_failed ? 1 : 0)

#endif
