#include <string.h>

#include "base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
value_of(int c)
{
	const char	*p;

	if (c == '\0' || (p = strchr(alphabet, c)) == NULL)
		return -1;
	return p - alphabet;
}

int
base64_decode(const char *src, unsigned char *dst, size_t dstlen)
{
	size_t		len = strlen(src), i, out = 0;
	int		v[4], j, pad;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (j = 0; j < 4; j++) {
			if (src[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			/* '=' only at the very end, and nothing after it. */
			if (pad || (v[j] = value_of(src[i + j])) == -1)
				return -1;
		}
		if (out + 3 - pad > dstlen)
			return -1;
		dst[out++] = v[0] << 2 | v[1] >> 4;
		if (pad < 2)
			dst[out++] = (v[1] & 0xf) << 4 | v[2] >> 2;
		if (pad < 1)
			dst[out++] = (v[2] & 0x3) << 6 | v[3];
	}
	return (int)out;
}

int
base64_encode(const unsigned char *src, size_t len, char *dst, size_t dstlen)
{
	size_t		i, out = 0;
	unsigned int	n;

	if ((len + 2) / 3 * 4 + 1 > dstlen)
		return -1;
	for (i = 0; i < len; i += 3) {
		n = src[i] << 16;
		if (i + 1 < len)
			n |= src[i + 1] << 8;
		if (i + 2 < len)
			n |= src[i + 2];
		dst[out++] = alphabet[n >> 18 & 63];
		dst[out++] = alphabet[n >> 12 & 63];
		dst[out++] = i + 1 < len ? alphabet[n >> 6 & 63] : '=';
		dst[out++] = i + 2 < len ? alphabet[n & 63] : '=';
	}
	dst[out] = '\0';
	return (int)out;
}
