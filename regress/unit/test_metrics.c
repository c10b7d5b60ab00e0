/*
 * common/metrics.c: where an observation lands (a value on a bound
 * belongs to that bound's bucket), the cumulative lines, the seconds
 * written from microseconds, and a text that runs out of room losing
 * whole lines, never half of one.
 */
#include <stdint.h>
#include <string.h>

#include "metrics.h"
#include "unit.h"

static const uint64_t bounds[] = { 1000, 2500, 1000000 };

static void
test_buckets(void)
{
	struct histogram	h = { .bounds_us = bounds, .nbounds = 3 };

	hist_observe(&h, 0);
	hist_observe(&h, 1000);		/* on the bound: le="0.001" */
	hist_observe(&h, 1001);
	hist_observe(&h, 2500000);	/* over every bound */
	CHECK("bucket 0.001", h.buckets[0] == 2);
	CHECK("bucket 0.0025", h.buckets[1] == 1);
	CHECK("bucket 1", h.buckets[2] == 0);
	CHECK("bucket +Inf", h.buckets[3] == 1);
	CHECK("count", h.count == 4);
	CHECK("sum", h.sum_us == 2502001);
}

static void
test_text(void)
{
	struct histogram	h = { .bounds_us = bounds, .nbounds = 3 };
	struct mtext		t;
	char			buf[512];

	hist_observe(&h, 1000);
	hist_observe(&h, 2000);
	hist_observe(&h, 5000000);
	mtext_init(&t, buf, sizeof(buf));
	mtext_value(&t, "a_total", 7);
	mtext_labeled(&t, "b_total", "reason", "relay-denied", 2);
	mtext_hist(&t, "h_seconds", &h);
	CHECK("text", strcmp(buf,
	    "a_total 7\n"
	    "b_total{reason=\"relay-denied\"} 2\n"
	    "h_seconds_bucket{le=\"0.001\"} 1\n"
	    "h_seconds_bucket{le=\"0.0025\"} 2\n"
	    "h_seconds_bucket{le=\"1\"} 2\n"
	    "h_seconds_bucket{le=\"+Inf\"} 3\n"
	    "h_seconds_sum 5.003000\n"
	    "h_seconds_count 3\n") == 0);
	CHECK("not short", !t.short_);
}

static void
test_short(void)
{
	struct mtext	t;
	char		buf[16];

	mtext_init(&t, buf, sizeof(buf));
	mtext_value(&t, "a_total", 1);		/* 10 octets */
	mtext_value(&t, "b_total", 2);		/* would end past 16 */
	mtext_value(&t, "c", 3);		/* fits, but after a loss */
	CHECK("whole lines only", strcmp(buf, "a_total 1\n") == 0);
	CHECK("marked short", t.short_);
}

static void
test_since(void)
{
	struct timespec	then;

	mono_now(&then);
	then.tv_sec += 10;			/* the future reads as 0 */
	CHECK("since future", usec_since(&then) == 0);
	then.tv_sec -= 11;
	CHECK("since a second", usec_since(&then) >= 1000000 &&
	    usec_since(&then) < 60000000);
}

int
main(void)
{
	test_buckets();
	test_text();
	test_short();
	test_since();
	UNIT_EXIT();
}
