/*
 * CRC-32C. The spool journal sums every message it holds, so this runs
 * over each octet queued accepts: one table lookup per octet cost more
 * than the rest of the journal's work. The x86 SSE4.2 instruction sums
 * eight octets at a time; elsewhere eight tables do (each octet's effect
 * on the sum eight positions ahead is looked up, so eight octets take
 * eight independent lookups instead of a chain of eight).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY	0x82f63b78U	/* reflected */

static uint32_t		tables[8][256];
static pthread_once_t	tables_once = PTHREAD_ONCE_INIT;

static void
tables_make(void)
{
	uint32_t	c;
	int		i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		tables[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			tables[k][i] = (tables[k - 1][i] >> 8) ^
			    tables[0][tables[k - 1][i] & 0xff];
}

/* On the inverted sum, as the instruction works. */
static uint32_t
sum_tables(uint32_t crc, const unsigned char *b, size_t len)
{
	uint32_t	lo, hi;

	pthread_once(&tables_once, tables_make);
	for (; len > 0 && ((uintptr_t)b & 7) != 0; len--)
		crc = tables[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
	for (; len >= 8; len -= 8, b += 8) {
		/* Little-endian order of the octets, on any host. */
		lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 |
		    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
		hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 |
		    (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
		crc = tables[7][lo & 0xff] ^ tables[6][(lo >> 8) & 0xff] ^
		    tables[5][(lo >> 16) & 0xff] ^ tables[4][lo >> 24] ^
		    tables[3][hi & 0xff] ^ tables[2][(hi >> 8) & 0xff] ^
		    tables[1][(hi >> 16) & 0xff] ^ tables[0][hi >> 24];
	}
	while (len--)
		crc = tables[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t
crc32c_tables(uint32_t crc, const void *p, size_t len)
{
	return ~sum_tables(~crc, p, len);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t
sum_sse42(uint32_t crc, const unsigned char *b, size_t len)
{
	uint64_t	c = crc, v;

	for (; len > 0 && ((uintptr_t)b & 7) != 0; len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&v, b, sizeof(v));
		c = __builtin_ia32_crc32di(c, v);
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
	return (uint32_t)c;
}

uint32_t
crc32c(uint32_t crc, const void *p, size_t len)
{
	if (__builtin_cpu_supports("sse4.2"))
		return ~sum_sse42(~crc, p, len);
	return ~sum_tables(~crc, p, len);
}
#else
uint32_t
crc32c(uint32_t crc, const void *p, size_t len)
{
	return ~sum_tables(~crc, p, len);
}
#endif
