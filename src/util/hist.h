/* hist.h - a fixed-bucket latency histogram in the Prometheus style
 * (cumulative buckets in seconds, a sum and a count). Not thread-safe. */
#ifndef EB_UTIL_HIST_H
#define EB_UTIL_HIST_H

#include <stdint.h>

#include "util/buf.h"

#define EB_HIST_BUCKETS 16

typedef struct eb_hist {
    uint64_t count[EB_HIST_BUCKETS + 1]; /* per bucket; last = +Inf */
    uint64_t n;
    uint64_t sum_us;
} eb_hist;

/* Upper bounds of the buckets, in µs. */
extern const uint64_t eb_hist_bounds_us[EB_HIST_BUCKETS];

void eb_hist_add(eb_hist *h, uint64_t us);
/* The q-quantile (0..1) estimated from the buckets, in µs (0 if empty). */
uint64_t eb_hist_quantile(const eb_hist *h, double q);
/* Appends the Prometheus text of histogram `name` (with HELP). */
void eb_hist_prom(const eb_hist *h, const char *name, const char *help, eb_buf *out);

#endif
