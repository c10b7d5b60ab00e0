/*
 * Just enough JSON for --json: one flat object.
 */
#include <stdio.h>

#include "pymailadm.h"

static int	json_first;

void
json_begin(void)
{
	json_first = 1;
	putchar('{');
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char	c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
json_key(const char *key)
{
	if (!json_first)
		fputs(", ", stdout);
	json_first = 0;
	json_string(key);
	fputs(": ", stdout);
}

void
json_str(const char *key, const char *value)
{
	json_key(key);
	json_string(value);
}

void
json_num(const char *key, long long value)
{
	json_key(key);
	printf("%lld", value);
}

void
json_bool(const char *key, int value)
{
	json_key(key);
	fputs(value ? "true" : "false", stdout);
}

void
json_end(void)
{
	puts("}");
}
