/*
 * Base64 (RFC 4648) for SASL exchanges.
 */
#ifndef PYMAILD_BASE64_H
#define PYMAILD_BASE64_H

#include <stddef.h>

/* Decode src (NUL-terminated, no whitespace) into dst; returns the number
 * of bytes or -1 on bad input or when dst is too small. */
int	base64_decode(const char *src, unsigned char *dst, size_t dstlen);
/* Encode into dst (NUL-terminated); -1 when it does not fit. */
int	base64_encode(const unsigned char *src, size_t len, char *dst,
	    size_t dstlen);

#endif
