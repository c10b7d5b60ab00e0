/*
 * Counters and histograms a helper keeps for pymailadm stats: plain
 * integers bumped where the event happens, turned into "name value"
 * lines (proto.h, IMSG_METRICS_REPLY) only when the parent asks.
 */
#ifndef PYMAILD_METRICS_H
#define PYMAILD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HIST_BOUNDS_MAX	16

/*
 * Bucket i counts observations at most bounds_us[i] and over the bound
 * before it; the last one (nbounds) those over every bound. The lines
 * are cumulative, as Prometheus wants; the counting is not, so an
 * observation costs one short scan and one increment.
 */
struct histogram {
	const uint64_t	*bounds_us;	/* ascending, in microseconds */
	size_t		 nbounds;	/* at most HIST_BOUNDS_MAX */
	uint64_t	 buckets[HIST_BOUNDS_MAX + 1];
	uint64_t	 sum_us;
	uint64_t	 count;
};

/* A text being built; a line that does not fit is left out whole and
 * the text marked short (the parent would refuse a cut line). */
struct mtext {
	char	*buf;
	size_t	 size, len;
	int	 short_;
};

void	 hist_observe(struct histogram *, uint64_t usec);
/* Microseconds from *then to now on the monotonic clock (0 if before). */
uint64_t usec_since(const struct timespec *then);
void	 mono_now(struct timespec *);

void	 mtext_init(struct mtext *, char *buf, size_t size);
void	 mtext_value(struct mtext *, const char *name, uint64_t value);
/* name{label="lvalue"} value */
void	 mtext_labeled(struct mtext *, const char *name, const char *label,
	    const char *lvalue, uint64_t value);
/* name_bucket{le="..."} (cumulative, ending with +Inf), name_sum in
 * seconds, name_count. */
void	 mtext_hist(struct mtext *, const char *name, const struct histogram *);

#endif
