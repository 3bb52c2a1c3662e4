/* hist.c - fixed-bucket latency histogram (see hist.h). */
#include "util/hist.h"

const uint64_t eb_hist_bounds_us[EB_HIST_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000};

void eb_hist_add(eb_hist *h, uint64_t us)
{
    int i = 0;
    while (i < EB_HIST_BUCKETS && us > eb_hist_bounds_us[i])
        i++;
    h->count[i]++;
    h->n++;
    h->sum_us += us;
}

uint64_t eb_hist_quantile(const eb_hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->n + 0.5), acc = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < EB_HIST_BUCKETS; i++) {
        acc += h->count[i];
        if (acc >= want)
            return eb_hist_bounds_us[i];
    }
    return eb_hist_bounds_us[EB_HIST_BUCKETS - 1];
}

void eb_hist_prom(const eb_hist *h, const char *name, const char *help, eb_buf *out)
{
    eb_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t acc = 0;
    for (int i = 0; i < EB_HIST_BUCKETS; i++) {
        acc += h->count[i];
        eb_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
                      (double)eb_hist_bounds_us[i] / 1e6, (unsigned long long)acc);
    }
    eb_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                  (unsigned long long)h->n, name, (double)h->sum_us / 1e6, name,
                  (unsigned long long)h->n);
}
