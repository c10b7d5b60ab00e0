/*
 * CRC-32C (common/crc32c.c): the published check values, and every
 * length and alignment of both ways of computing it (the processor's
 * instruction where there is one, and the tables) against a bit-at-a-time
 * reference, so a journal written by one build is read by any other.
 */
#include <stdint.h>
#include <stdlib.h>

#include "crc32c.h"
#include "unit.h"

static uint32_t
crc_ref(uint32_t crc, const unsigned char *p, size_t len)
{
	int	k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78U : crc >> 1;
	}
	return ~crc;
}

static void
check_vectors(void)
{
	unsigned char	buf[32];
	int		i;

	CHECK("123456789", crc32c(0, "123456789", 9) == 0xe3069283U);
	CHECK("123456789 tables",
	    crc32c_tables(0, "123456789", 9) == 0xe3069283U);
	memset(buf, 0, sizeof(buf));
	CHECK("32 zeros (RFC 3720)", crc32c(0, buf, 32) == 0x8a9136aaU);
	memset(buf, 0xff, sizeof(buf));
	CHECK("32 ones (RFC 3720)", crc32c(0, buf, 32) == 0x62a8ab43U);
	for (i = 0; i < 32; i++)
		buf[i] = i;
	CHECK("0..31 (RFC 3720)", crc32c(0, buf, 32) == 0x46dd794eU);
	CHECK("empty", crc32c(0, buf, 0) == 0 &&
	    crc32c(0x12345678U, buf, 0) == 0x12345678U);
}

/* Every start and length up to 600 octets, and the sum in two parts. */
static void
check_all_shapes(void)
{
	unsigned char	*buf;
	size_t		 off, len, cut;
	uint32_t	 want;
	int		 bad = 0, badt = 0, badsplit = 0;

	buf = malloc(700);
	srandom(7);
	for (off = 0; off < 700; off++)
		buf[off] = random();
	for (off = 0; off < 16; off++)
		for (len = 0; len <= 600; len++) {
			want = crc_ref(0, buf + off, len);
			bad += crc32c(0, buf + off, len) != want;
			badt += crc32c_tables(0, buf + off, len) != want;
			cut = len / 3;
			badsplit += crc32c(crc32c(0, buf + off, cut),
			    buf + off + cut, len - cut) != want;
		}
	CHECK("every start and length", bad == 0);
	CHECK("every start and length, tables", badt == 0);
	CHECK("in two parts", badsplit == 0);
	free(buf);
}

int
main(void)
{
	check_vectors();
	check_all_shapes();
	UNIT_EXIT();
}
