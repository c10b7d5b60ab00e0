/*
 * The counting side of pymailadm stats (metrics.h). Nothing here runs
 * on a message's path but hist_observe and the clock reads around it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

void
hist_observe(struct histogram *h, uint64_t usec)
{
	size_t	i = 0;

	while (i < h->nbounds && usec > h->bounds_us[i])
		i++;
	h->buckets[i]++;
	h->sum_us += usec;
	h->count++;
}

void
mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

uint64_t
usec_since(const struct timespec *then)
{
	struct timespec	now;
	int64_t		us;

	mono_now(&now);
	us = (int64_t)(now.tv_sec - then->tv_sec) * 1000000 +
	    (now.tv_nsec - then->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

void
mtext_init(struct mtext *t, char *buf, size_t size)
{
	t->buf = buf;
	t->size = size;
	t->len = 0;
	t->short_ = 0;
	if (size > 0)
		buf[0] = '\0';
}

static void
mtext_add(struct mtext *t, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (t->short_ || t->len >= t->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->size - t->len) {
		t->buf[t->len] = '\0';	/* no half line */
		t->short_ = 1;
		return;
	}
	t->len += n;
}

void
mtext_value(struct mtext *t, const char *name, uint64_t value)
{
	mtext_add(t, "%s %llu\n", name, (unsigned long long)value);
}

void
mtext_labeled(struct mtext *t, const char *name, const char *label,
    const char *lvalue, uint64_t value)
{
	mtext_add(t, "%s{%s=\"%s\"} %llu\n", name, label, lvalue,
	    (unsigned long long)value);
}

/* Seconds from microseconds, shortest form: 2500 -> "0.0025". */
static void
seconds_text(uint64_t us, char *buf, size_t size)
{
	size_t	len;

	snprintf(buf, size, "%llu.%06llu", (unsigned long long)(us / 1000000),
	    (unsigned long long)(us % 1000000));
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '0')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '.')
		buf[--len] = '\0';
}

void
mtext_hist(struct mtext *t, const char *name, const struct histogram *h)
{
	char		le[32];
	uint64_t	cum = 0;
	size_t		i;

	for (i = 0; i < h->nbounds; i++) {
		cum += h->buckets[i];
		seconds_text(h->bounds_us[i], le, sizeof(le));
		mtext_add(t, "%s_bucket{le=\"%s\"} %llu\n", name, le,
		    (unsigned long long)cum);
	}
	mtext_add(t, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)h->count);
	mtext_add(t, "%s_sum %llu.%06llu\n", name,
	    (unsigned long long)(h->sum_us / 1000000),
	    (unsigned long long)(h->sum_us % 1000000));
	mtext_add(t, "%s_count %llu\n", name, (unsigned long long)h->count);
}
