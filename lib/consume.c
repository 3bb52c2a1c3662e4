/* consume.c - libeventbus: eb_consume, the consumer loop.
 *
 *   pull (long poll) --> handler(ev) per event, in order
 *                          | 0: remembered for the batch's ack
 *                          | else: nacked at once with the handler's message
 *                        ack the batch's successes in one request
 *
 * While a batch is being handled, a helper thread (the "keeper", with its
 * own connection, since a handle is single-threaded) extends the deadlines
 * of the batch's unsettled deliveries every extend_every_ms, so a slow
 * handler keeps its lease. The stop flag only cuts the long poll short: a
 * running handler finishes, its batch is settled (events not yet handled
 * are released with a nack of delay 0), then the loop returns. Unreachable
 * or stopping servers are retried with backoff (100 ms doubling to 5 s).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "util/clock.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000


static bool raised(const volatile sig_atomic_t *f)
{
    return f && *f;
}

/* Sleeps ms, in slices, returning early when a flag rises. */
static void nap(const volatile sig_atomic_t *a, const volatile sig_atomic_t *b, uint32_t ms)
{
    uint64_t end = eb_clock_mono_ms() + ms;
    while (!raised(a) && !raised(b)) {
        uint64_t now = eb_clock_mono_ms();
        if (now >= end)
            return;
        uint64_t slice = end - now < 50 ? end - now : 50;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* --- the keeper: extends a batch's deadlines from its own thread ---------- */

typedef struct keeper {
    pthread_t       thr;
    pthread_mutex_t mu;
    pthread_cond_t  cv;      /* CLOCK_MONOTONIC */
    bool            quit;
    eb_client      *c;       /* its own connection */
    const char     *group;   /* not owned (the caller's) */
    const char    **ids;     /* the batch's unsettled delivery ids (not owned; valid while set) */
    size_t          n;
    uint64_t        due_ms;  /* next extension, monotonic ms */
    uint32_t        every_ms;
    uint64_t        extended;
} keeper;

/* Copies the ids under the lock, then extends without holding it. */
static void keeper_extend(keeper *k)
{
    size_t n = k->n;
    char **copy = calloc(n, sizeof *copy);
    size_t got = 0;
    for (size_t i = 0; copy && i < n; i++, got++)
        if (!(copy[i] = strdup(k->ids[i])))
            break;
    k->due_ms = eb_clock_mono_ms() + k->every_ms;
    pthread_mutex_unlock(&k->mu);
    eb_settle_result r = {.size = sizeof r};
    if (copy && got == n)
        eb_extend(k->c, k->group, (const char *const *)copy, n, 0, &r);
    for (size_t i = 0; i < got; i++)
        free(copy[i]);
    free(copy);
    pthread_mutex_lock(&k->mu);
    k->extended += r.done;
}

static void *keeper_main(void *arg)
{
    keeper *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->quit) {
        uint64_t now = eb_clock_mono_ms();
        if (k->n == 0) {
            pthread_cond_wait(&k->cv, &k->mu);
        } else if (now < k->due_ms) {
            struct timespec ts = eb_clock_deadline(CLOCK_MONOTONIC, k->due_ms - now);
            pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        } else {
            keeper_extend(k);
        }
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* Starts the keeper with all signals blocked (they belong to the caller's
 * thread, whose long poll they must interrupt). */
static int keeper_start(keeper *k, eb_client *c, const char *group, uint32_t every_ms)
{
    memset(k, 0, sizeof *k);
    k->group = group;
    k->every_ms = every_ms;
    eb_client_opts o = {.size = sizeof o, .url = c->urls, .connect_timeout_ms = c->connect_timeout_ms,
                        .timeout_ms = c->timeout_ms, .cancel = c->cancel, .token = c->token,
                        .cafile = c->cafile};
    int rc = eb_client_new(&o, &k->c);
    if (rc)
        return eb__fail(c, rc, "cannot make the extension thread's client");
    k->c->cur = c->cur; /* start where the caller's client is */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&k->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&k->thr, NULL, keeper_main, k);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        eb_client_free(k->c);
        k->c = NULL;
        return eb__fail(c, EB_ENOMEM, "cannot start the extension thread");
    }
    return 0;
}

static void keeper_set(keeper *k, const char **ids, size_t n)
{
    if (!k->c)
        return;
    pthread_mutex_lock(&k->mu);
    k->ids = ids;
    k->n = n;
    k->due_ms = eb_clock_mono_ms() + k->every_ms;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static uint64_t keeper_stop(keeper *k)
{
    if (!k->c)
        return 0;
    pthread_mutex_lock(&k->mu);
    k->quit = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thr, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    eb_client_free(k->c);
    k->c = NULL;
    return k->extended;
}

/* --- the loop ---------------------------------------------------------------- */

typedef struct loop {
    eb_client       *c;
    const char      *group;
    const char      *consumer;
    eb_handler       handler;
    eb_consume_opts  o;
    eb_consume_stats st;
    keeper           k;
    uint64_t         failing_since; /* monotonic ms of the first transient failure; 0: none */
    uint32_t         backoff_ms;
} loop;

static bool transient(int rc)
{
    return rc == EB_ECONNECT || rc == EB_ETIMEDOUT || rc == EB_ECLOSED;
}

static void publish_stats(loop *l)
{
    eb__out_put(l->o.stats, &l->st, sizeof l->st);
}

/* After a failed request: true to try again (after a nap), false to give up. */
static bool retry_after(loop *l, int rc)
{
    if (!transient(rc))
        return false;
    uint64_t now = eb_clock_mono_ms();
    if (!l->failing_since) {
        l->failing_since = now;
        l->backoff_ms = RETRY_FIRST_MS;
    }
    if (l->o.retry_max_ms && now - l->failing_since >= l->o.retry_max_ms)
        return false;
    nap(l->o.stop, l->c->cancel, l->backoff_ms);
    l->backoff_ms = l->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->backoff_ms * 2;
    return !raised(l->c->cancel);
}

/* Acks (error == NULL) or nacks ids, retrying transient failures. A stop
 * request does not cut this short: settling is how the loop stops cleanly. */
static int settle(loop *l, const char **ids, size_t n, const char *error, int64_t delay_ms,
                  bool dead_letter, uint64_t *count)
{
    for (;;) {
        eb_settle_result r = {.size = sizeof r};
        int rc = dead_letter ? eb_nack_dead_letter(l->c, l->group, ids, n, error, &r)
                 : error     ? eb_nack(l->c, l->group, ids, n, error, delay_ms, &r)
                             : eb_ack(l->c, l->group, ids, n, &r);
        if (rc == 0) {
            l->failing_since = 0;
            *count += r.done;
            l->st.lost += r.unknown;
            return 0;
        }
        if (!retry_after(l, rc))
            return rc;
    }
}

static bool should_stop(const loop *l)
{
    return raised(l->o.stop) || (l->o.max_events && l->st.handled >= l->o.max_events);
}

/* Runs the handler over one pulled batch and settles it. */
static int handle_batch(loop *l, eb_events *evs)
{
    size_t n = eb_events_count(evs), nok = 0, done = 0;
    const char **ids = calloc(n, sizeof *ids), **ok = calloc(n, sizeof *ok);
    if (!ids || !ok) {
        free(ids);
        free(ok);
        return eb__fail(l->c, EB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = eb_events_at(evs, i)->delivery_id;
    keeper_set(&l->k, ids, n);
    int rc = 0;
    for (; done < n && !should_stop(l) && !rc; done++) {
        const eb_event *ev = eb_events_at(evs, done);
        char err[512] = "";
        int hr = l->handler(ev, l->o.arg, err, sizeof err);
        l->st.handled++;
        if (hr == 0) {
            ok[nok++] = ev->delivery_id;
            continue;
        }
        bool dead = hr == EB_HANDLER_DEAD_LETTER;
        if (!err[0] && dead)
            snprintf(err, sizeof err, "handler failed: not retryable");
        else if (!err[0])
            snprintf(err, sizeof err, "handler failed: %s (%d)", eb_strerror(hr), hr);
        rc = settle(l, &ids[done], 1, err, -1, dead, dead ? &l->st.dead_lettered : &l->st.nacked);
        publish_stats(l);
    }
    if (!rc && nok)
        rc = settle(l, ok, nok, NULL, 0, false, &l->st.acked);
    if (!rc && done < n)
        rc = settle(l, &ids[done], n - done, "consumer stopped before handling it", 0, false,
                    &l->st.released);
    keeper_set(&l->k, NULL, 0);
    free(ids);
    free(ok);
    publish_stats(l);
    return rc;
}

/* One long poll, bounded by what is left of idle_ms, for no more events
 * than max_events still allows (so `-n 3` leases 3, not a batch). */
static int pull_once(loop *l, uint64_t last_event, eb_events **evs)
{
    uint32_t wait = l->o.wait_ms;
    uint64_t now = eb_clock_mono_ms();
    if (l->o.idle_ms) {
        uint64_t idle_end = last_event + l->o.idle_ms;
        uint64_t idle_left = idle_end > now ? idle_end - now : 0;
        if (idle_left < wait)
            wait = (uint32_t)idle_left;
    }
    uint32_t max = l->o.max; /* never lease more than max_events still allows */
    if (l->o.max_events && l->o.max_events - l->st.handled < max)
        max = (uint32_t)(l->o.max_events - l->st.handled);
    eb__set_stop(l->c, l->o.stop); /* the stop flag cuts the wait short */
    int rc = eb_pull(l->c, l->group, l->consumer, max, wait, evs);
    eb__set_stop(l->c, NULL);
    return rc;
}

static int run(loop *l)
{
    uint64_t last_event = eb_clock_mono_ms();
    for (;;) {
        if (should_stop(l))
            return 0;
        if (l->o.idle_ms && eb_clock_mono_ms() - last_event >= l->o.idle_ms)
            return 0;
        eb_events *evs = NULL;
        int rc = pull_once(l, last_event, &evs);
        if (rc == EB_ECANCELED && raised(l->o.stop) && !raised(l->c->cancel))
            return 0;
        if (rc) {
            if (retry_after(l, rc))
                continue;
            return rc;
        }
        l->failing_since = 0;
        if (eb_events_count(evs))
            last_event = eb_clock_mono_ms();
        rc = handle_batch(l, evs);
        eb_events_free(evs);
        if (rc)
            return rc;
    }
}

/* The group's ack timeout (for the extension period), retrying while the
 * server is unreachable. */
static int group_ack_timeout(loop *l, uint32_t *ms)
{
    for (;;) {
        eb_groups_info *g;
        int rc = eb_groups_get(l->c, l->group, &g);
        if (rc == 0) {
            *ms = g->ack_timeout_ms ? g->ack_timeout_ms : 30000;
            eb_result_free(g);
            l->failing_since = 0;
            return 0;
        }
        if (!retry_after(l, rc) || raised(l->o.stop))
            return rc;
    }
}

int eb_consume(eb_client *c, const char *group, const char *consumer, eb_handler handler,
               const eb_consume_opts *opts)
{
    loop l = {.c = c, .group = group, .consumer = consumer, .handler = handler,
              .st = {.size = sizeof l.st}};
    int rc = EB__OPTS_IN(c, eb_consume_opts, stats, opts, &l.o);
    if (rc || (rc = EB__OUT_CHECK(c, eb_consume_stats, lost, l.o.stats)))
        return rc;
    if (!group || !*group || !consumer || !*consumer || !handler)
        return eb__fail(c, EB_EINVAL, "eb_consume needs a group, a consumer name and a handler");
    if (!l.o.max)
        l.o.max = 10;
    if (!l.o.wait_ms)
        l.o.wait_ms = 20000;
    publish_stats(&l);
    uint32_t ack_timeout = 0;
    rc = group_ack_timeout(&l, &ack_timeout);
    if (rc)
        return raised(l.o.stop) ? 0 : rc; /* stopped while waiting for the server */
    uint32_t every = l.o.extend_every_ms ? l.o.extend_every_ms : ack_timeout / 3;
    if (!l.o.no_extend && (rc = keeper_start(&l.k, c, group, every < 50 ? 50 : every)))
        return rc;
    rc = run(&l);
    l.st.extended = keeper_stop(&l.k);
    publish_stats(&l);
    return rc;
}
