/* store_pg_guard.c - the bound on a wait for PostgreSQL (--store-timeout).
 * libpq's blocking calls wait for the server without a limit; a database
 * that stops answering without closing its connections (a frozen or
 * partitioned host, a machine that lost power: no RST ever comes) would
 * hold a commit, and everything queued behind it, for the kernel's TCP
 * retransmission timeout (~15 minutes). TCP keepalives and
 * tcp_user_timeout (eb__pg_connect) catch a dead peer host; a host that
 * still acknowledges but whose server does not answer (a stopped
 * process) only a deadline catches. A thread arms the deadline around
 * each wait (eb__pg_guard_on/off); a watchdog thread shuts the socket of
 * a wait past it down (shutdown(2): the descriptor stays libpq's), so
 * libpq's wait ends as a lost connection does and the caller's existing
 * path for that runs (resolve, reconnect with backoff, 503). */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

#include "store/store_pg_int.h"
#include "util/clock.h"
#include "util/logger.h"

#define GUARD_SLOTS 64

uint32_t eb__store_pg_timeout_ms = 10000;

typedef struct {
    int      fd;     /* -1: free */
    uint64_t until;  /* monotonic ms */
    bool     fired;
} slot;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  cv;
static slot            slots[GUARD_SLOTS];
static pthread_once_t  once = PTHREAD_ONCE_INIT;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleeps while nothing is armed; else until the nearest deadline. */
static void *watchdog(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        uint64_t now = now_ms(), next = UINT64_MAX;
        for (int i = 0; i < GUARD_SLOTS; i++) {
            slot *s = &slots[i];
            if (s->fd < 0 || s->fired)
                continue;
            if (s->until <= now) {
                s->fired = true;
                shutdown(s->fd, SHUT_RDWR);
            } else if (s->until < next) {
                next = s->until;
            }
        }
        if (next == UINT64_MAX) {
            pthread_cond_wait(&cv, &mu);
        } else {
            struct timespec ts = eb_clock_deadline(CLOCK_MONOTONIC, next - now);
            pthread_cond_timedwait(&cv, &mu, &ts);
        }
    }
    return NULL;
}

static void start(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &a);
    pthread_condattr_destroy(&a);
    for (int i = 0; i < GUARD_SLOTS; i++)
        slots[i].fd = -1;
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0)
        pthread_detach(t);
}

int eb__pg_guard_on(PGconn *c)
{
    pthread_once(&once, start);
    int fd = c ? PQsocket(c) : -1;
    if (fd < 0 || !eb__store_pg_timeout_ms)
        return -1;
    pthread_mutex_lock(&mu);
    int i = 0;
    while (i < GUARD_SLOTS && slots[i].fd >= 0)
        i++;
    if (i < GUARD_SLOTS) {
        slots[i] = (slot){fd, now_ms() + eb__store_pg_timeout_ms, false};
        pthread_cond_signal(&cv);
    } else {
        i = -1; /* more waits than slots: this one unbounded */
    }
    pthread_mutex_unlock(&mu);
    return i;
}

bool eb__pg_guard_off(int g)
{
    if (g < 0)
        return false;
    pthread_mutex_lock(&mu);
    bool fired = slots[g].fired;
    slots[g].fd = -1;
    pthread_mutex_unlock(&mu);
    if (fired)
        EB_WARN("postgresql: no answer within --store-timeout (%u ms): connection dropped",
                eb__store_pg_timeout_ms);
    return fired;
}
