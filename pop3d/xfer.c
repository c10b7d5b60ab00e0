/*
 * The message converter behind RETR and TOP. No I/O here; every function
 * works on bounded buffers it is given (the reads are produce_xfer's).
 */
#include <string.h>

#include "pop3d.h"

void
xfer_init(struct xfer *x, const struct msgsrc *src, int top, uint64_t lines)
{
	memset(x, 0, sizeof(*x));
	x->src = *src;
	x->bol = 1;
	x->top = top;
	x->left = lines;
}

static void
line_end(struct xfer *x)
{
	int	empty = x->linelen == 0 || (x->linelen == 1 && x->cr);

	if (x->top) {
		if (!x->inbody) {
			/* The empty line ends the header and is sent. */
			if (empty) {
				x->inbody = 1;
				if (x->left == 0)
					x->eof = 1;
			}
		} else if (--x->left == 0)
			x->eof = 1;
	}
	x->bol = 1;
	x->cr = 0;
	x->linelen = 0;
}

/* The end of a multi-line answer: close an unfinished line, then ".". */
static size_t
finish(struct xfer *x, char *out, size_t outlen, size_t *outn)
{
	size_t	o = 0;

	*outn = 0;
	if (outlen < (x->bol ? 3u : 5u))
		return 0;
	if (!x->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	*outn = o + 3;
	x->done = 1;
	return 0;
}

size_t
xfer_convert(struct xfer *x, const char *in, size_t inlen, char *out,
    size_t outlen, size_t *outn)
{
	const char	*nl;
	size_t		 i = 0, o = 0, run;

	if (in == NULL)
		return finish(x, out, outlen, outn);
	while (i < inlen && !x->eof) {
		if (x->bol && in[i] == '.') {
			/* Room for the stuffed dot and the dot itself. */
			if (outlen - o < 2)
				break;
			out[o++] = '.';
			x->bol = 0;
		}
		if (in[i] == '\n') {
			if (outlen - o < (x->cr ? 1u : 2u))
				break;
			/* A CRLF in the file stays one CRLF. */
			if (!x->cr)
				out[o++] = '\r';
			out[o++] = '\n';
			i++;
			line_end(x);
			continue;
		}
		x->bol = 0;
		nl = memchr(in + i, '\n', inlen - i);
		run = nl ? (size_t)(nl - (in + i)) : inlen - i;
		if (run > outlen - o)
			run = outlen - o;
		if (run == 0)
			break;
		memcpy(out + o, in + i, run);
		x->cr = in[i + run - 1] == '\r';
		x->linelen += run;
		o += run;
		i += run;
	}
	*outn = o;
	return i;
}
