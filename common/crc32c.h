/*
 * CRC-32C (Castagnoli, as iSCSI and ext4 use it): crc32c(0, p, n) sums
 * p; crc32c(crc32c(0, a, n), b, m) sums a then b.
 */
#ifndef PYMAILD_CRC32C_H
#define PYMAILD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t	crc32c(uint32_t, const void *, size_t);
/* The same sum without the processor's instruction (for the tests). */
uint32_t	crc32c_tables(uint32_t, const void *, size_t);

#endif
