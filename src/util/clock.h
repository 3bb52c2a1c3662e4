/* clock.h - the clocks of eventbus, in one place: wall time (for stamps
 * people and other machines read: append times, log lines, event ids) and
 * monotonic time (for timeouts, periods and durations, never shown).
 * Header-only and dependency-free so the server and libeventbus share it. */
#ifndef EB_UTIL_CLOCK_H
#define EB_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall time: µs since the Unix epoch (CLOCK_REALTIME; may jump). */
static inline uint64_t eb_clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Monotonic time in ms since an arbitrary start (CLOCK_MONOTONIC). */
static inline uint64_t eb_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Monotonic time in seconds, with ns resolution (rates, elapsed times). */
static inline double eb_clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The struct timespec for pthread_cond_timedwait on a condition variable
 * using `clock` (CLOCK_REALTIME unless the condattr says otherwise), ms
 * from now. */
static inline struct timespec eb_clock_deadline(clockid_t clock, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (ms % 1000u) * 1000000u;
    ts.tv_sec += (time_t)(ms / 1000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

#endif
