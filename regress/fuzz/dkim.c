/*
 * DKIM's parsers (common/dkim.c) on a message from anywhere: the header
 * split, the relaxed canonicalization of each field and of the body,
 * the From: domain, the folding of a signature line. Checked: fields lie
 * within the message, in order, without overlap, and the body starts
 * after them; a canonical field is "name:value\r\n", with no CR or LF
 * inside, no WSP around the colon or at its ends, no WSP twice, and its
 * length said with no room is the length written; the body hash does
 * not depend on how the body is cut into chunks; a From: domain is
 * lower-case letters, digits, '-' and '.'; folded lines ('\n' apart)
 * stay DKIM-Signature fields whose lines end in CRLF, continuations
 * after the first.
 */
#include <ctype.h>
#include <string.h>

#include "dkim.h"
#include "msgfrom.h"
#include "fuzz.h"

#define FIELDS	64

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void
check_canon(const char *field, size_t len)
{
	static char	out[70000];
	size_t		need, n, i;
	char		*colon;

	need = dkim_canon_header(field, len, NULL, 0);
	if (need > sizeof(out))
		return;
	n = dkim_canon_header(field, len, out, sizeof(out));
	FUZZ_ASSERT(n == need && n <= len + 3);
	FUZZ_ASSERT(n >= 3 && memcmp(out + n - 2, "\r\n", 2) == 0);
	for (i = 0; i + 2 < n; i++) {
		FUZZ_ASSERT(out[i] != '\r' && out[i] != '\n' && out[i] != '\t');
		FUZZ_ASSERT(!(out[i] == ' ' && out[i + 1] == ' '));
	}
	colon = memchr(out, ':', n);
	FUZZ_ASSERT(colon != NULL);
	FUZZ_ASSERT(colon == out || !is_wsp(colon[-1]));
	FUZZ_ASSERT(!is_wsp(colon[1]));
	FUZZ_ASSERT(n == 3 || !is_wsp(out[n - 3]));
}

static void
body_hash(const char *p, size_t len, size_t step, unsigned char *h)
{
	struct dkim_body	b;
	size_t			off, n;

	FUZZ_ASSERT(dkim_body_init(&b) == 0);
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		FUZZ_ASSERT(dkim_body_update(&b, p + off, n) == 0);
	}
	FUZZ_ASSERT(dkim_body_final(&b, h) == 0);
}

static void
check_fold(const char *msg, size_t size)
{
	static char	line[DKIM_SIG_MAX + 1], out[4 * DKIM_SIG_MAX];
	size_t		n, i;

	n = size < DKIM_SIG_MAX - 16 ? size : DKIM_SIG_MAX - 16;
	memcpy(line, "DKIM-Signature: ", 16);
	memcpy(line + 16, msg, n);
	line[16 + n] = '\0';
	if (memchr(msg, '\0', n) != NULL)
		return;
	n = dkim_fold(line, out, sizeof(out));
	if (n == 0)
		return;
	FUZZ_ASSERT(n == strlen(out) && strncmp(out, line, 16) == 0);
	FUZZ_ASSERT(memcmp(out + n - 2, "\r\n", 2) == 0);
	for (i = 0; i + 2 < n; i++) {
		FUZZ_ASSERT(out[i] != '\n');
		if (out[i] == '\r') {
			/* a continuation, or the next line's field */
			FUZZ_ASSERT(out[i + 1] == '\n' && (out[i + 2] == '\t' ||
			    strncmp(out + i + 2, "DKIM-Signature: ", 16) == 0));
			i++;
		}
	}
}

FUZZ_ENTRY(dkim)
{
	static struct dkim_field f[FIELDS];
	const char	*msg = (const char *)data;
	unsigned char	 h1[32], h2[32];
	char		 dom[256];
	size_t		 bodyoff, prev = 0, i, vo;
	int		 nf;

	nf = dkim_header_split(msg, size, f, FIELDS, &bodyoff);
	FUZZ_ASSERT(nf >= -1 && nf <= FIELDS && bodyoff <= size);
	for (i = 0; nf > 0 && i < (size_t)nf; i++) {
		FUZZ_ASSERT(f[i].off == prev && f[i].len > 0);
		FUZZ_ASSERT(f[i].off + f[i].len <= bodyoff);
		FUZZ_ASSERT(f[i].namelen > 0 && f[i].namelen < f[i].len);
		prev = f[i].off + f[i].len;
		check_canon(msg + f[i].off, f[i].len);
		if (dkim_field_is(msg, &f[i], "from")) {
			vo = f[i].off + f[i].namelen;
			while (msg[vo] != ':')
				vo++;
			vo++;
			if (msgfrom_domain(msg + vo, f[i].off + f[i].len - vo,
			    dom, sizeof(dom)) == 0) {
				FUZZ_ASSERT(dom[0] != '\0');
				FUZZ_ASSERT(strspn(dom, "abcdefghijklmnopqrstuvwxyz"
				    "0123456789-.") == strlen(dom));
			}
		}
	}
	if (msgfrom_message(msg, size, dom, sizeof(dom)) == MSGFROM_ONE)
		FUZZ_ASSERT(dom[0] != '\0' && strspn(dom,
		    "abcdefghijklmnopqrstuvwxyz0123456789-.") == strlen(dom));
	body_hash(msg, size, size + 1, h1);
	body_hash(msg, size, 1 + size % 7, h2);
	FUZZ_ASSERT(memcmp(h1, h2, 32) == 0);
	check_fold(msg, size);
	return 0;
}
