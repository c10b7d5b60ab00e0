/*
 * Mail loops: the hops a message made, counted from its header
 * (RFC 5321 6.3: more than 100 Received: lines is a loop).
 */
#ifndef PYMAILD_HOPS_H
#define PYMAILD_HOPS_H

#include <stddef.h>

#define HOPS_MAX	100	/* more Received: lines than this: a loop */

/*
 * The Received: lines of the header at the start of buf (len octets,
 * CRLF or LF line ends). *complete is set when the header's end, an empty
 * line, lies within buf; else the count is of what buf holds. Pure: no
 * I/O, any octets.
 */
int	header_hops(const char *buf, size_t len, int *complete);

#endif
