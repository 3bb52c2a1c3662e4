/* store_pg_lead.c - which of several eventbusd nodes on one PostgreSQL
 * database is the leader (the one whose bus exists and writes), and how
 * the others learn where it is. See ARCHITECTURE.md, "Several nodes on
 * one database".
 *
 * Leadership is a session advisory lock, (PG_LOCK_CLASS, PG_LOCK_LEADER),
 * held on a connection of its own (the gate). Taking it, a node bumps the
 * epoch in the one-row table eb_leader, writes its advertised URL there
 * and NOTIFYs eb_leader; only then does it open its bus, whose writer
 * connections take the stores' own locks (EVENTS, META) before reading
 * anything. A follower waits for the gate in a blocking
 * pg_advisory_lock (sent asynchronously: the same thread watches a
 * LISTEN eb_leader connection), so nothing polls at idle.
 *
 * Fencing: every write runs on a writer connection holding its store's
 * lock; a writer that (re)connects takes the lock and then checks that
 * eb_leader's epoch is still this node's (eb__pg_connect_wr). A leader
 * that finds either taken, or loses the gate and cannot take it back
 * with the same epoch, calls eb__store_pg_fenced: its memory may be
 * stale, it must stop at once (the daemon re-executes itself and comes
 * back as a follower).
 *
 * Threads: one thread per eb_pg_lead; the callback runs on it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "store/store_pg_int.h"
#include "util/logger.h"
#include "util/xmalloc.h"

_Atomic uint64_t eb__store_pg_epoch;
void (*eb__store_pg_fenced)(const char *why);

struct eb_pg_lead {
    char           *uri, *url;
    eb_pg_lead_fn   fn;
    void           *arg;
    PGconn         *gate;    /* holds the leader lock, or waits for it */
    uint64_t        wait_ms; /* follower: when the blocking lock was sent (0: told) */
    PGconn         *lis;     /* follower: LISTEN eb_leader */
    pthread_t       thr;
    int             wake[2]; /* a byte: stop */
    pthread_mutex_t mu;
    bool            leader;  /* mu */
    uint64_t        epoch;   /* mu: the leader's */
    char            leader_url[EB_PG_LEAD_URL_MAX]; /* mu: "" unknown */
};

#define HOLDER_TELL_MS 5000 /* a follower says who holds the lock after this */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Names a session in pg_stat_activity after the node ("eventbusd
 * <advertised URL>"), so an operator -- and a follower's report -- sees
 * who holds the lock. */
static PGconn *named(const eb_pg_lead *l, PGconn *c)
{
    char name[256];
    snprintf(name, sizeof name, "eventbusd %s", l->url);
    const char *params[] = {name};
    eb__pg_run(c, "SELECT set_config('application_name', $1, false)", 1, params, 0, NULL);
    return c;
}

static PGconn *connect_plain(const eb_pg_lead *l)
{
    char err[256];
    PGconn *c = eb__pg_connect(l->uri, EB_STORE_SYNC_ALWAYS, err, sizeof err);
    if (!c)
        EB_DEBUG("postgresql (leader): cannot connect: %s", err);
    return c ? named(l, c) : NULL;
}

static void notify_fn(eb_pg_lead *l)
{
    if (l->fn)
        l->fn(l->arg);
}

/* eb_leader's row into the state (no table or no row: no leader known). */
static int read_leader(eb_pg_lead *l, PGconn *c)
{
    PGresult *r = NULL;
    int rc = eb__pg_run(c, "SELECT url, epoch FROM eb_leader WHERE id = 1", 0, NULL, 0, &r);
    if (rc == EB_EIO) /* 42P01: no table yet, no leader ever */
        return 0;
    if (rc)
        return rc;
    pthread_mutex_lock(&l->mu);
    if (PQntuples(r) && !l->leader) {
        snprintf(l->leader_url, sizeof l->leader_url, "%s", PQgetvalue(r, 0, 0));
        l->epoch = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    }
    pthread_mutex_unlock(&l->mu);
    PQclear(r);
    return 0;
}

/* Holding the gate: a new epoch, our URL, and a NOTIFY. */
static int take_office(eb_pg_lead *l)
{
    int rc = eb__pg_run0(l->gate, "CREATE TABLE IF NOT EXISTS eb_leader (id integer PRIMARY "
                         "KEY, url text NOT NULL, epoch bigint NOT NULL)");
    const char *params[] = {l->url};
    PGresult *r = NULL;
    if (!rc)
        rc = eb__pg_run(l->gate, "INSERT INTO eb_leader (id, url, epoch) VALUES (1, $1, 1) "
                        "ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, epoch = "
                        "eb_leader.epoch + 1 RETURNING epoch", 1, params, 0, &r);
    if (rc)
        return rc;
    uint64_t epoch = eb__pg_num0(r);
    PQclear(r);
    eb__pg_run0(l->gate, "NOTIFY eb_leader");
    atomic_store(&eb__store_pg_epoch, epoch);
    pthread_mutex_lock(&l->mu);
    l->leader = true;
    l->epoch = epoch;
    snprintf(l->leader_url, sizeof l->leader_url, "%s", l->url);
    pthread_mutex_unlock(&l->mu);
    EB_INFO("postgresql: this node is the leader (epoch %llu, advertised as %s)",
            (unsigned long long)epoch, l->url);
    return 0;
}

/* One try at the gate without waiting: 1 taken, 0 held elsewhere, or an error. */
static int try_gate(eb_pg_lead *l)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", PG_LOCK_CLASS,
             PG_LOCK_LEADER);
    PGresult *r = NULL;
    int rc = eb__pg_run(l->gate, sql, 0, NULL, 0, &r);
    if (rc)
        return -rc;
    rc = PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}

static void drop(PGconn **c)
{
    PQfinish(*c);
    *c = NULL;
}

/* Waits for fd (or -1) to be readable, the stop byte, or ms (-1: no limit).
 * True when stopping. */
static bool wait_fds(eb_pg_lead *l, int fd1, int fd2, int ms)
{
    struct pollfd p[3] = {{l->wake[0], POLLIN, 0}, {fd1, POLLIN, 0}, {fd2, POLLIN, 0}};
    if (poll(p, 3, ms) < 0 && errno != EINTR)
        return false;
    return p[0].revents != 0;
}

/* The leader lost its gate connection: takes the lock back with its epoch
 * unchanged, or is fenced. Returns true when stopping. */
static bool regain(eb_pg_lead *l)
{
    int backoff = PG_BACKOFF_MIN_MS;
    uint64_t mine = atomic_load(&eb__store_pg_epoch);
    EB_WARN("postgresql (leader): the leader lock's connection was lost; taking it back");
    for (;;) {
        if ((l->gate = connect_plain(l))) {
            int got = try_gate(l);
            PGresult *r = NULL;
            if (got >= 0 && eb__pg_run(l->gate, "SELECT epoch FROM eb_leader WHERE id = 1", 0,
                                       NULL, 0, &r) == 0) {
                uint64_t now = eb__pg_num0(r);
                PQclear(r);
                /* Held, with eb_leader's epoch still ours: by this node's
                 * old session, cut off silently (a frozen database), which
                 * the server ends once it notices: tried again. Another
                 * node that took the lock moves the epoch on first. */
                if (now != mine && eb__store_pg_fenced)
                    eb__store_pg_fenced(got ? "another node led since (its epoch is newer)"
                                            : "another node holds the leader lock");
                if (got == 1) {
                    EB_INFO("postgresql (leader): the leader lock is held again (epoch %llu)",
                            (unsigned long long)mine);
                    return false;
                }
            }
            drop(&l->gate);
        }
        if (wait_fds(l, -1, -1, backoff))
            return true;
        /* Short: the followers retry every second; the leader should win
         * the lock back after a restart of the database. */
        backoff = backoff * 2 > 2 * PG_BACKOFF_MIN_MS ? 2 * PG_BACKOFF_MIN_MS : backoff * 2;
    }
}

/* Follower: the LISTEN connection, made (and the leader read) if missing. */
static void ensure_listen(eb_pg_lead *l)
{
    if (l->lis)
        return;
    if (!(l->lis = connect_plain(l)))
        return;
    if (eb__pg_run0(l->lis, "LISTEN eb_leader") || read_leader(l, l->lis)) {
        drop(&l->lis);
        return;
    }
    notify_fn(l);
}

/* Follower: the gate connection with its blocking lock sent. */
static void ensure_wait(eb_pg_lead *l)
{
    if (l->gate)
        return;
    if (!(l->gate = connect_plain(l)))
        return;
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_LEADER);
    if (!PQsendQuery(l->gate, sql))
        drop(&l->gate);
    else
        l->wait_ms = mono_ms();
}

/* Follower, once a wait has lasted HOLDER_TELL_MS: which session holds the
 * leader lock (a node whose advertised URL does not answer while its
 * session holds the lock is the case to look into). Asked on lis. */
static void tell_holder(eb_pg_lead *l)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, "
             "''), extract(epoch FROM now() - a.backend_start)::bigint FROM pg_locks k JOIN "
             "pg_stat_activity a ON a.pid = k.pid WHERE k.locktype = 'advisory' AND k.granted "
             "AND k.classid = %d AND k.objid = %d AND k.objsubid = 2 AND k.database = (SELECT "
             "oid FROM pg_database WHERE datname = current_database())", PG_LOCK_CLASS,
             PG_LOCK_LEADER);
    PGresult *r = NULL;
    l->wait_ms = 0;
    if (!l->lis || eb__pg_run(l->lis, sql, 0, NULL, 0, &r) != 0)
        return;
    if (PQntuples(r))
        EB_INFO("postgresql: following for %d s; the leader lock is held by the session of "
                "pid %s (\"%s\", %s, connected %s s ago)", HOLDER_TELL_MS / 1000,
                PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
                PQgetvalue(r, 0, 3));
    else
        EB_INFO("postgresql: following for %d s; no session holds the leader lock now",
                HOLDER_TELL_MS / 1000);
    PQclear(r);
}

/* Follower: input on the LISTEN connection. */
static void on_listen(eb_pg_lead *l)
{
    if (!PQconsumeInput(l->lis)) {
        drop(&l->lis);
        return;
    }
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(l->lis))) {
        any = true;
        PQfreemem(n);
    }
    if (any) {
        if (read_leader(l, l->lis))
            drop(&l->lis);
        else
            notify_fn(l);
    }
}

/* Follower: input on the gate connection; true once the lock is ours. */
static bool on_gate(eb_pg_lead *l)
{
    if (!PQconsumeInput(l->gate)) {
        drop(&l->gate);
        return false;
    }
    if (PQisBusy(l->gate))
        return false;
    bool ok = false;
    PGresult *r;
    while ((r = PQgetResult(l->gate))) {
        ok = ok || PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    int rc = ok ? take_office(l) : 0;
    if (!ok || rc) {
        char err[256];
        /* said, not silent: a follower that keeps failing here never leads */
        EB_WARN("postgresql (leader): %s: %s", ok ? "the leader lock is ours but taking "
                "office failed" : "waiting for the leader lock failed",
                eb__pg_one_line(l->gate, err, sizeof err));
        drop(&l->gate);
        return false;
    }
    return true;
}

static void *lead_main(void *arg)
{
    eb_pg_lead *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool leader = l->leader;
        pthread_mutex_unlock(&l->mu);
        if (leader) {
            /* An idle gate reads nothing: readable means closed (or a
             * notice); the lock lasts as long as the session. A session
             * cut off silently (a frozen or partitioned database) says
             * nothing: a query every half --store-timeout, bounded by it,
             * finds that out within the bound. */
            uint32_t to = eb__store_pg_timeout_ms;
            if (wait_fds(l, PQsocket(l->gate), -1, to ? (int)(to / 2) : -1))
                break;
            if (PQconsumeInput(l->gate) && PQstatus(l->gate) == CONNECTION_OK &&
                (!to || eb__pg_run0(l->gate, "SELECT 1") == 0))
                continue;
            drop(&l->gate);
            if (regain(l))
                break;
            continue;
        }
        ensure_listen(l);
        ensure_wait(l);
        int ms = l->lis && l->gate ? -1 : PG_BACKOFF_MAX_MS / 5;
        if (ms < 0 && l->wait_ms) { /* wakes once to say who holds the lock */
            uint64_t at = l->wait_ms + HOLDER_TELL_MS, now = mono_ms();
            ms = at > now ? (int)(at - now) : 0;
        }
        if (wait_fds(l, l->lis ? PQsocket(l->lis) : -1, l->gate ? PQsocket(l->gate) : -1, ms))
            break;
        if (l->wait_ms && l->gate && mono_ms() >= l->wait_ms + HOLDER_TELL_MS)
            tell_holder(l);
        if (l->lis)
            on_listen(l);
        if (l->gate && on_gate(l)) {
            drop(&l->lis);
            notify_fn(l);
        }
    }
    return NULL;
}

/* Everything an eb_pg_lead owns (its thread joined or never made). */
static void lead_free(eb_pg_lead *l)
{
    PQfinish(l->gate);
    PQfinish(l->lis);
    close(l->wake[0]);
    close(l->wake[1]);
    pthread_mutex_destroy(&l->mu);
    free(l->uri);
    free(l->url);
    free(l);
}

int eb_pg_lead_start(const char *uri, const char *url, eb_pg_lead_fn fn, void *arg,
                     eb_pg_lead **out)
{
    eb_pg_lead *l = eb_xcalloc(1, sizeof *l);
    l->uri = eb_xstrdup(uri);
    l->url = eb_xstrdup(url);
    l->fn = fn;
    l->arg = arg;
    pthread_mutex_init(&l->mu, NULL);
    if (pipe2(l->wake, O_CLOEXEC) != 0) {
        free(l->uri);
        free(l->url);
        free(l);
        return EB_EIO;
    }
    /* The first try is synchronous: a node that can lead at once opens
     * its bus before it serves, as a single node always did; a database
     * that cannot be reached at all fails the start (a wrong URI says so
     * at once). */
    char err[256];
    if (!(l->gate = eb__pg_connect(l->uri, EB_STORE_SYNC_ALWAYS, err, sizeof err))) {
        EB_ERROR("postgresql: cannot connect: %s", err);
        lead_free(l);
        return EB_ECONNECT;
    }
    named(l, l->gate);
    {
        int got = try_gate(l);
        if (got == 1 && take_office(l))
            EB_WARN("postgresql (leader): the leader lock is ours but taking office failed: %s",
                    eb__pg_one_line(l->gate, err, sizeof err));
        if (got != 1 || !l->leader)
            drop(&l->gate);
    }
    if (!l->leader) /* a follower knows the leader before it serves */
        ensure_listen(l);
    if (pthread_create(&l->thr, NULL, lead_main, l) != 0)
        abort();
    *out = l;
    return 0;
}

bool eb_pg_lead_state(eb_pg_lead *l, uint64_t *epoch, char *url, size_t cap)
{
    pthread_mutex_lock(&l->mu);
    bool leader = l->leader;
    if (epoch)
        *epoch = l->epoch;
    if (url)
        snprintf(url, cap, "%s", l->leader_url);
    pthread_mutex_unlock(&l->mu);
    return leader;
}

void eb_pg_lead_stop(eb_pg_lead *l)
{
    if (!l)
        return;
    char b = 1;
    if (write(l->wake[1], &b, 1) != 1)
        abort();
    pthread_join(l->thr, NULL);
    lead_free(l);
}
