/*
 * Counting a message's hops: its Received: header lines (RFC 5321 6.3).
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "hops.h"

/* A field named "Received" (any case), blanks allowed before the colon. */
static int
is_received(const char *line, size_t len)
{
	static const char	name[] = "received";
	size_t			i = sizeof(name) - 1;

	if (len < i || strncasecmp(line, name, i) != 0)
		return 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < len && line[i] == ':';
}

int
header_hops(const char *buf, size_t len, int *complete)
{
	const char	*p = buf, *end = buf + len, *nl;
	size_t		 linelen;
	int		 hops = 0;

	*complete = 0;
	while (p < end) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			break;	/* the line goes on past buf */
		linelen = nl - p;
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
		if (linelen == 0) {
			*complete = 1;
			break;
		}
		if (is_received(p, linelen))
			hops++;
		p = nl + 1;
	}
	return hops;
}
