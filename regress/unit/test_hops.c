/*
 * Hop counting (common/hops.c): Received: lines of the header only,
 * whatever the case, folding or line ends; the body and cut input do
 * not count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hops.h"
#include "unit.h"

static int
hops(const char *s, int *complete)
{
	return header_hops(s, strlen(s), complete);
}

int
main(void)
{
	static const char	nul[] = "Received: \0\r\nReceived: b\r\n\r\n";
	char			*big, *p;
	int			 c, i;

	CHECK("empty", hops("", &c) == 0 && !c);
	CHECK("no header", hops("\r\nReceived: x\r\n", &c) == 0 && c);
	CHECK("two, CRLF", hops("Received: a\r\nreceived: b\r\n"
	    "Subject: x\r\n\r\nbody\r\n", &c) == 2 && c);
	CHECK("LF ends", hops("RECEIVED: a\nFrom: b\n\nReceived: c\n",
	    &c) == 1 && c);
	CHECK("blank before colon", hops("Received \t: a\r\n\r\n", &c) == 1);
	CHECK("folded lines are one",
	    hops("Received: a\r\n\tby b\r\n received: c\r\n\r\n", &c) == 1);
	CHECK("other names", hops("Received-SPF: pass\r\nX-Received: a\r\n"
	    "Receive: b\r\nReceived\r\n\r\n", &c) == 0 && c);
	CHECK("body not counted", hops("A: b\r\n\r\nReceived: x\r\n"
	    "Received: y\r\n", &c) == 0 && c);
	CHECK("cut in a line", hops("Received: a\r\nRecei", &c) == 1 && !c);
	CHECK("cut at a line end", hops("Received: a\r\n", &c) == 1 && !c);
	CHECK("NUL inside", header_hops(nul, sizeof(nul) - 1, &c) == 2 && c);

	big = malloc((HOPS_MAX + 2) * 16);
	for (p = big, i = 0; i <= HOPS_MAX; i++)
		p += sprintf(p, "Received: %04d\r\n", i);
	strcpy(p, "\r\n");
	CHECK("101 lines", hops(big, &c) == HOPS_MAX + 1 && c);
	free(big);
	UNIT_EXIT();
}
