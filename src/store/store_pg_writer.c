/* store_pg_writer.c - the PostgreSQL engine's writer thread (one per
 * store): group commit by COPY, resolving a commit the connection lost,
 * probing a database that went away, compaction when asked for, and once
 * a second retention and the size; and the SQL helpers both files use. See
 * store_pg.c for the design. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventbus/err.h"
#include "store/store_pg_int.h"
#include "util/clock.h"
#include "util/logger.h"

static void ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* libpq's message on one line, into out. */
const char *eb__pg_one_line(PGconn *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s", c ? PQerrorMessage(c) : "");
    for (char *q = out; *q; q++)
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    size_t n = strlen(out);
    while (n && out[n - 1] == ' ')
        out[--n] = '\0';
    return out;
}

/* A connection with our defaults (the URI's own settings win); NULL with
 * the reason in err when it cannot be made. */
PGconn *eb__pg_connect(const char *uri, eb_store_sync sync, char *err, size_t errlen)
{
    /* A dead peer host is found by TCP within the store timeout: data
     * unacknowledged past it (tcp_user_timeout, Linux) or an idle
     * connection's keepalives unanswered; libpq's connect_timeout is 2 s at
     * least. A stopped server on a live host only the deadline of a wait
     * catches (store_pg_guard.c). */
    uint32_t to = eb__store_pg_timeout_ms;
    char ct[16], idle[16], intv[16], user[16];
    snprintf(ct, sizeof ct, "%u", !to ? 5 : to < 2000 ? 2 : (to + 999) / 1000);
    snprintf(idle, sizeof idle, "%u", !to ? 60 : to < 4000 ? 1 : to / 4000);
    snprintf(intv, sizeof intv, "%u", !to ? 10 : to < 8000 ? 1 : to / 8000);
    snprintf(user, sizeof user, "%u", to);
    const char *keys[] = {"connect_timeout", "fallback_application_name", "keepalives",
                          "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "dbname", NULL};
    const char *vals[] = {ct, "eventbusd", "1", idle, intv, "3", user, uri, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        if (c)
            eb__pg_one_line(c, err, errlen);
        else
            snprintf(err, errlen, "out of memory");
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    int g = eb__pg_guard_on(c);
    PGresult *r = PQexec(c, sync == EB_STORE_SYNC_ALWAYS ? "SET synchronous_commit = on"
                                                         : "SET synchronous_commit = off");
    PQclear(r);
    /* A session whose eventbusd died is ended within a second even while
     * it runs a statement or waits for a lock (PostgreSQL 14+; older ones
     * refuse the setting, and notice only when they next read): its locks
     * -- the leader's, a writer's -- are not held for a dead node. */
    PQclear(PQexec(c, "SET client_connection_check_interval = 1000"));
    if (eb__pg_guard_off(g) || PQstatus(c) != CONNECTION_OK) {
        eb__pg_one_line(c, err, errlen);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* What a failed statement means: EB_ECONNECT for a lost or refused
 * connection (recoverable), EB_ENOSPC when the database is out of
 * resources (class 53: recoverable), else EB_EIO (the store is broken). */
static int classify(PGconn *c, const PGresult *r)
{
    if (!c || PQstatus(c) != CONNECTION_OK)
        return EB_ECONNECT;
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!st || !strncmp(st, "08", 2) || !strncmp(st, "57P", 3))
        return EB_ECONNECT;
    if (!strncmp(st, "53", 2))
        return EB_ENOSPC;
    return EB_EIO;
}

/* Runs a statement with text parameters; 0 and *out (cleared by the
 * caller) or an error from classify. */
int eb__pg_run(PGconn *c, const char *sql, int n, const char *const *params, int binary,
               PGresult **out)
{
    int g = eb__pg_guard_on(c);
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, binary);
    eb__pg_guard_off(g);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    int rc = classify(c, r);
    PQclear(r);
    return rc;
}

int eb__pg_run0(PGconn *c, const char *sql)
{
    return eb__pg_run(c, sql, 0, NULL, 0, NULL);
}

/* The first column of the first row as a number (0 if NULL or none). */
uint64_t eb__pg_num0(const PGresult *r)
{
    return PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
}

/* A query whose answer is one number (NULL: 0). */
static int query_num(PGconn *c, const char *sql, uint64_t *out)
{
    PGresult *r = NULL;
    int rc = eb__pg_run(c, sql, 0, NULL, 0, &r);
    if (rc == 0) {
        *out = eb__pg_num0(r);
        PQclear(r);
    }
    return rc;
}

/* --- the writer thread ------------------------------------------------------ */

static void part_name(const pg_store *p, uint64_t idx, char *out, size_t cap)
{
    snprintf(out, cap, "%s_p%llu", p->table, (unsigned long long)idx);
}

/* EVENTS: creates the partitions up to the one holding seq `last`. */
static int ensure_parts(pg_store *p, uint64_t last)
{
    while (p->kind == EB_STORE_EVENTS && p->part_hi * PG_PART_SEQS <= last) {
        char name[64], sql[256];
        part_name(p, p->part_hi, name, sizeof name);
        snprintf(sql, sizeof sql,
                 "CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM (%llu) TO (%llu)",
                 name, p->table, (unsigned long long)(p->part_hi * PG_PART_SEQS),
                 (unsigned long long)((p->part_hi + 1) * PG_PART_SEQS));
        int rc = eb__pg_run0(p->wr, sql);
        if (rc)
            return rc;
        p->part_hi++;
        pthread_mutex_lock(&p->mu);
        p->lane_end = p->part_hi * PG_PART_SEQS;
        pthread_mutex_unlock(&p->mu);
    }
    return 0;
}

/* The lane's connection. */
static PGconn *lane_conn(pg_lane *l)
{
    return l == &l->p->lanes[0] ? l->p->wr : l->c;
}

/* Commits the lane's batch as one COPY on its connection (META: one
 * INSERT, store_pg_ins.c): 0; an error
 * (nothing committed); or PG_UNKNOWN when the connection broke while
 * committing. Lane 0 makes the partitions the batch needs first. */
static int write_batch_on(pg_lane *l, PGconn *c)
{
    pg_store *p = l->p;
    batch *b = &l->work;
    int rc = c == p->wr ? ensure_parts(p, b->first + b->records - 1) : 0;
    if (rc)
        return rc;
    if (p->kind == EB_STORE_META) /* one round trip (store_pg_ins.c) */
        return eb__pg_insert_batch(c, b);
    char sql[128];
    snprintf(sql, sizeof sql, "COPY %s (seq, ts, type, flags, data) FROM STDIN (FORMAT binary)",
             p->table);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        rc = classify(c, r);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    static const char head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    static const char trailer[2] = "\377\377";
    if (PQputCopyData(c, head, sizeof head) != 1 ||
        PQputCopyData(c, b->copy.data, (int)b->copy.len) != 1 ||
        PQputCopyData(c, trailer, sizeof trailer) != 1)
        return EB_ECONNECT; /* the COPY never ended: nothing committed */
    if (PQputCopyEnd(c, NULL) != 1)
        return PG_UNKNOWN;
    return eb__pg_commit_outcome(c);
}

/* write_batch_on within the store timeout: a commit that waits longer has
 * its connection dropped (store_pg_guard.c), which reads as a connection
 * lost while committing: resolved as those are. */
static int write_batch(pg_lane *l)
{
    PGconn *c = lane_conn(l);
    if (!l->work.records)
        return 0;
    if (!c || PQstatus(c) != CONNECTION_OK)
        return EB_ECONNECT;
    int g = eb__pg_guard_on(c);
    int rc = write_batch_on(l, c);
    eb__pg_guard_off(g);
    return rc;
}

/* After a statement that commits was sent: 0 once it committed; an error
 * the server sent (a SQLSTATE, the connection alive: rolled back); or
 * PG_UNKNOWN for any other failure (the commit's outcome is unknown). */
int eb__pg_commit_outcome(PGconn *c)
{
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(c))) {
        if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = PQstatus(c) == CONNECTION_OK && PQresultErrorField(r, PG_DIAG_SQLSTATE)
                     ? classify(c, r)
                     : PG_UNKNOWN;
        PQclear(r);
    }
    if (!rc && PQstatus(c) != CONNECTION_OK)
        rc = PG_UNKNOWN;
    return rc;
}

int eb__pg_classify(PGconn *c, const PGresult *r)
{
    return classify(c, r);
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* (Re)connects *c, a connection that writes, and takes its lock (class,
 * key): 0, EB_ECONNECT, or EB_EEXIST when another eventbusd holds the
 * database (or, with several nodes, led since this node's epoch: then,
 * past opening, fenced). Every connection that commits holds a lock of
 * its own: the writer (key = the store's kind) and each META lane > 0
 * (kind + PG_LOCK_LANE * lane), so fencing covers every commit. */
static int connect_locked(pg_store *p, PGconn **c, int key)
{
    if (*c && PQstatus(*c) == CONNECTION_OK)
        return 0;
    PQfinish(*c);
    char err[256];
    *c = eb__pg_connect(p->uri, p->sync, err, sizeof err);
    if (!*c)
        return EB_ECONNECT;
    /* One writer per database (the seqs are assigned here): a session
     * lock, held as long as this connection lives. Waited for a moment
     * (PG_LOCK_WAIT): a session this node or the old leader just closed
     * may not have ended on the server yet. */
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d, %d)", PG_LOCK_CLASS, key);
    PGresult *r = NULL;
    int rc = eb__pg_run0(*c, "SET lock_timeout = " PG_LOCK_WAIT);
    if (rc == 0) {
        int g = eb__pg_guard_on(*c);
        r = PQexec(*c, sql);
        eb__pg_guard_off(g);
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0
           : st && !strcmp(st, "55P03")          ? EB_EEXIST /* lock_not_available */
                                                 : classify(*c, r);
        PQclear(r);
    }
    if (rc == 0)
        rc = eb__pg_run0(*c, "SET lock_timeout = 0");
    /* Several nodes (store_pg_lead.c): the lock is ours, but if another
     * node led since (eb_leader's epoch moved on) our memory is stale. */
    uint64_t epoch = atomic_load(&eb__store_pg_epoch);
    if (rc == 0 && epoch) {
        rc = eb__pg_run(*c, "SELECT epoch FROM eb_leader WHERE id = 1", 0, NULL, 0, &r);
        if (rc == 0) {
            rc = eb__pg_num0(r) == epoch ? 0 : EB_EEXIST;
            PQclear(r);
        }
    }
    if (rc == 0 && p->kind == EB_STORE_META && p->opened) /* (at open: once the table is) */
        rc = eb__pg_prepare_insert(*c, p->table);
    if (rc) {
        PQfinish(*c);
        *c = NULL;
    }
    if (rc == EB_EEXIST && p->opened && eb__store_pg_fenced)
        eb__store_pg_fenced(epoch ? "a writer's lock is held elsewhere or another node led "
                                    "since" : "a writer's lock is held elsewhere");
    return rc;
}

int eb__pg_connect_wr(pg_store *p)
{
    return connect_locked(p, &p->wr, (int)p->kind);
}

int eb__pg_connect_lane(pg_lane *l)
{
    return connect_locked(l->p, &l->c, (int)l->p->kind + PG_LOCK_LANE * (int)(l - l->p->lanes));
}

/* After EB_ECONNECT from a statement that was not committed: the
 * connection may only be stale (the database restarted while we were
 * idle). True if a new one could be made at once (try again on it). */
static bool reconnect(pg_store *p)
{
    PQfinish(p->wr);
    p->wr = NULL;
    return eb__pg_connect_wr(p) == 0;
}

/* A lane's connection again, with its lock (lane 0's is the writer's).
 * True if it could be made. */
static bool relink(pg_lane *l)
{
    pg_store *p = l->p;
    if (l == &p->lanes[0])
        return reconnect(p);
    PQfinish(l->c);
    l->c = NULL;
    return eb__pg_connect_lane(l) == 0;
}

/* The connection broke while the lane's batch was committing: reconnects
 * (with backoff) and looks for its first record. 0 if it was committed,
 * EB_ECONNECT if not (or when closing and the database stays away). A
 * later batch cannot hold that seq: the rows of batches committed after
 * a failed one are deleted before any seq is handed out again. */
static int resolve(pg_lane *l)
{
    pg_store *p = l->p;
    uint64_t backoff = PG_BACKOFF_MIN_MS, t0 = eb_clock_mono_ms();
    for (int tries = 0;; tries++) {
        if (l == &p->lanes[0] ? eb__pg_connect_wr(p) == 0
                              : (PQstatus(l->c) == CONNECTION_OK || relink(l))) {
            char seq[24];
            snprintf(seq, sizeof seq, "%llu", (unsigned long long)l->work.first);
            char sql[96];
            snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE seq = $1", p->table);
            const char *params[] = {seq};
            PGresult *r = NULL;
            if (eb__pg_run(lane_conn(l), sql, 1, params, 0, &r) == 0) {
                int found = PQntuples(r);
                PQclear(r);
                return found ? 0 : EB_ECONNECT;
            }
        }
        pthread_mutex_lock(&p->mu);
        bool closing = p->closing;
        pthread_mutex_unlock(&p->mu);
        if (closing && tries >= 3)
            return EB_ECONNECT;
        /* The database stays away past the store timeout: the batch's
         * requests are answered (503) now, its outcome settled later
         * (settle). */
        if (eb__store_pg_timeout_ms && eb_clock_mono_ms() - t0 >= eb__store_pg_timeout_ms)
            return PG_GAVE_UP;
        sleep_ms(backoff);
        backoff = backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : backoff * 2;
    }
}

static void finish(batch *b, int status)
{
    for (size_t i = 0; i < b->ncbs; i++)
        b->cbs[i].cb(b->cbs[i].arg, status);
    b->ncbs = 0;
    b->records = 0;
    eb_buf_reset(&b->copy);
}

static int set_floor(pg_store *p, uint64_t floor)
{
    char sql[200], f[24];
    snprintf(f, sizeof f, "%llu", (unsigned long long)floor);
    snprintf(sql, sizeof sql,
             "INSERT INTO eb_state (name, floor) VALUES ('%s', $1) ON CONFLICT (name) DO "
             "UPDATE SET floor = GREATEST(eb_state.floor, EXCLUDED.floor)", p->table);
    const char *params[] = {f};
    return eb__pg_run(p->wr, sql, 1, params, 0, NULL);
}

/* EVENTS retention: drops the oldest partition while it is entirely
 * below the durable seq and older than --retention or over
 * --retention-bytes. *total is the events' size. */
static int apply_retention(pg_store *p, uint64_t *total)
{
    uint64_t now_us = eb_clock_wall_us();
    while (p->part_lo + 1 < p->part_hi &&
           (p->part_lo + 1) * PG_PART_SEQS <= atomic_load(&p->durable)) {
        char name[64], sql[200];
        part_name(p, p->part_lo, name, sizeof name);
        bool drop = p->retention_bytes && *total > p->retention_bytes;
        uint64_t newest = 0, sz = 0;
        int rc;
        if (!drop && p->retention_ms) {
            snprintf(sql, sizeof sql, "SELECT ts FROM %s ORDER BY seq DESC LIMIT 1", name);
            if ((rc = query_num(p->wr, sql, &newest)))
                return rc;
            drop = newest + p->retention_ms * 1000u < now_us;
        }
        if (!drop)
            break;
        snprintf(sql, sizeof sql, "SELECT pg_total_relation_size('%s')", name);
        if ((rc = query_num(p->wr, sql, &sz)))
            return rc;
        snprintf(sql, sizeof sql, "DROP TABLE %s", name);
        if ((rc = set_floor(p, atomic_load(&p->durable))) || (rc = eb__pg_run0(p->wr, sql)))
            return rc;
        p->part_lo++;
        if ((rc = eb__pg_sum_drop(p)))
            return rc;
        *total = *total > sz ? *total - sz : 0;
        uint64_t lo = p->part_lo * PG_PART_SEQS, first = atomic_load(&p->first);
        if (lo > first)
            atomic_store(&p->first, lo);
    }
    return 0;
}

/* META compaction: deletes the rows below the newest drop_before. Run as
 * the writer's next job once asked for (before the appends queued after
 * the request), not at a later tick: a node killed before that tick would
 * leave the rows, and its next start would not know they may go. */
static int compact(pg_store *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t drop = p->drop_req;
    pthread_mutex_unlock(&p->mu);
    if (p->kind != EB_STORE_META || drop <= p->dropped)
        return 0;
    char sql[96], s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)drop);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE seq < $1", p->table);
    const char *params[] = {s};
    int rc;
    if ((rc = set_floor(p, drop)) || (rc = eb__pg_run(p->wr, sql, 1, params, 0, NULL)))
        return rc;
    pthread_mutex_lock(&p->mu);
    p->dropped = drop;
    pthread_cond_broadcast(&p->wake); /* the lanes wait for it */
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Every PG_HOUSE_MS: retention (EVENTS), the size. */
static int housekeeping(pg_store *p)
{
    int rc = 0;
    char sql[256];
    if (p->kind == EB_STORE_EVENTS)
        snprintf(sql, sizeof sql, "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0), "
                 "count(*) FROM pg_inherits WHERE inhparent = '%s'::regclass", p->table);
    else
        snprintf(sql, sizeof sql, "SELECT pg_total_relation_size('%s'), 1", p->table);
    PGresult *r = NULL;
    if ((rc = eb__pg_run(p->wr, sql, 0, NULL, 0, &r)))
        return rc;
    uint64_t bytes = eb__pg_num0(r), parts = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (p->kind == EB_STORE_EVENTS && (p->retention_ms || p->retention_bytes)) {
        uint64_t before = p->part_lo;
        if ((rc = apply_retention(p, &bytes)))
            return rc;
        parts -= p->part_lo - before;
    }
    pthread_mutex_lock(&p->mu);
    p->bytes = bytes;
    p->parts = parts;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* mu held: enters the error state (appends refused) and says why once
 * (why: libpq's message, from the connection that failed). */
static void enter_error(pg_store *p, int rc, const char *why)
{
    if (p->err)
        return;
    p->err = rc;
    EB_WARN("postgresql (%s store): %s%s%s", p->table,
            rc == EB_ECONNECT ? "database unreachable" : eb_strerror(rc), *why ? ": " : "",
            why);
}

static void wait_ms(pg_store *p, uint64_t ms)
{
    struct timespec ts = eb_clock_deadline(CLOCK_REALTIME, ms);
    pthread_cond_timedwait(&p->wake, &p->mu, &ts);
}

/* Writer, mu held: while the database is away, probes it with backoff.
 * True while still in the error state. */
static bool probe(pg_store *p, uint64_t *backoff)
{
    if (!p->err || p->err == EB_EIO)
        return false;
    wait_ms(p, *backoff);
    if (p->closing)
        return true;
    pthread_mutex_unlock(&p->mu);
    int rc = eb__pg_connect_wr(p);
    if (rc == 0)
        rc = eb__pg_run0(p->wr, "SELECT 1");
    pthread_mutex_lock(&p->mu);
    if (rc == EB_EEXIST && *backoff == PG_BACKOFF_MIN_MS) /* said once per outage */
        EB_WARN("postgresql (%s store): the database's lock is held (by this node's old "
                "session until the server notices it is gone, or by another eventbusd); "
                "retrying", p->table);
    if (rc) {
        *backoff = *backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : *backoff * 2;
        return true;
    }
    EB_INFO("postgresql (%s store): database reachable again", p->table);
    p->err = 0;
    *backoff = PG_BACKOFF_MIN_MS;
    return false;
}

/* Writer, mu held: runs a job that is not an append (unlocked), once more
 * on a new connection if the old one was only stale; a failure enters
 * the error state. */
static void run_job(pg_store *p, int (*job)(pg_store *))
{
    pthread_mutex_unlock(&p->mu);
    int rc = job(p);
    if (rc == EB_ECONNECT && reconnect(p))
        rc = job(p);
    char why[256] = "";
    if (rc)
        eb__pg_one_line(p->wr, why, sizeof why);
    pthread_mutex_lock(&p->mu);
    if (rc)
        enter_error(p, rc, why);
}

/* --- lanes: batches committing concurrently, completed in seq order ------ */

/* mu held: lane l takes every pending append. */
static void take(pg_lane *l)
{
    pg_store *p = l->p;
    batch tmp = l->work;
    l->work = p->pend;
    p->pend = tmp;
    l->busy = true;
    l->done = false;
    p->fly[(p->fly_head + p->nfly++) % PG_LANES] = (int)(l - p->lanes);
    pthread_cond_broadcast(&p->space);
}

/* mu held: reports the batches whose commits have an outcome, oldest
 * first, as long as the oldest has one (a later batch waits for the
 * earlier ones: durable_seq only passes a committed prefix). One thread at
 * a time reports; another that finishes meanwhile leaves its batch to it.
 * A failed batch fails every batch after it, committed or not (their seqs
 * are handed out again, so rows committed past it are deleted first:
 * dirty); once none flies, the appends queued behind fail too. self: the
 * calling lane, idle by now (its buffers hold those appends meanwhile). */
static void complete(pg_lane *self)
{
    pg_store *p = self->p;
    if (p->completing)
        return;
    p->completing = true;
    while (p->nfly && p->lanes[p->fly[p->fly_head]].done) {
        pg_lane *l = &p->lanes[p->fly[p->fly_head]];
        p->fly_head = (p->fly_head + 1) % PG_LANES;
        p->nfly--;
        int st = p->fail ? p->fail : l->status;
        if (st == 0) {
            uint64_t was = atomic_load(&p->durable);
            atomic_store(&p->durable, l->work.first + l->work.records);
            eb__pg_sum_durable(p, was, l->work.first + l->work.records);
            p->commits += l->work.records != 0;
            p->house_now |= !p->bytes && l->work.records; /* the first rows: their size */
        } else if (!p->fail) {
            p->fail = st;
            enter_error(p, st, l->why);
        }
        pthread_mutex_unlock(&p->mu);
        finish(&l->work, st);
        pthread_mutex_lock(&p->mu);
        l->busy = false;
    }
    if (p->fail && !p->nfly) {
        /* The appends queued behind carry the seqs after it: fail them
         * too, and hand those seqs out again. */
        int st = p->fail;
        batch tmp = self->work;
        self->work = p->pend;
        p->pend = tmp;
        pthread_cond_broadcast(&p->space);
        pthread_mutex_unlock(&p->mu);
        finish(&self->work, st);
        pthread_mutex_lock(&p->mu);
        p->next_seq = atomic_load(&p->durable);
        p->dirty = true;
        p->fail = 0;
    }
    p->completing = false;
    pthread_cond_broadcast(&p->wake);
}

/* The lane commits the batch it took (mu not held); returns with mu held,
 * its completion reported. */
static void commit_lane(pg_lane *l)
{
    pg_store *p = l->p;
    int status = write_batch(l);
    if (status == EB_ECONNECT && relink(l)) /* not sent: a stale connection? */
        status = write_batch(l);
    if (status)
        eb__pg_one_line(lane_conn(l), l->why, sizeof l->why);
    for (bool again = true; status == PG_UNKNOWN;) {
        bool lost = PQstatus(lane_conn(l)) != CONNECTION_OK;
        /* META, its connection lost: resolved, and if not committed sent
         * again once, before new appends are refused -- the first batch
         * after a database restart found its idle connection closed, which
         * says nothing about the database now (another request must not get
         * a 503 for it). Otherwise new appends are refused while resolving. */
        bool retry = lost && again && p->kind == EB_STORE_META;
        if (!retry) {
            pthread_mutex_lock(&p->mu);
            enter_error(p, EB_ECONNECT, l->why);
            pthread_mutex_unlock(&p->mu);
        }
        status = resolve(l);
        if (status == PG_GAVE_UP) {
            /* Failed to its requests: rows of it that did commit are
             * deleted with those of the batches after it (dirty), once
             * this lane's old session is over (settle). */
            pthread_mutex_lock(&p->mu);
            enter_error(p, EB_ECONNECT, l->why);
            if (l != &p->lanes[0]) {
                l->unsure = true;
                p->unsure++;
            }
            pthread_mutex_unlock(&p->mu);
            status = EB_ECONNECT;
            break;
        }
        /* Not committed, as seen by a new session holding the lane's lock:
         * the lost session's transaction is over (a session's lock goes
         * only after it), so the batch is sent again, once. Its INSERT,
         * sent whole on a connection the server had closed while it was
         * idle (a database restart), ends here; a COPY found that out at
         * its COPY statement, before anything could commit. EVENTS batches
         * fail as before (their seqs go to the retries). */
        if (retry) {
            again = false;
            if (status == EB_ECONNECT && PQstatus(lane_conn(l)) == CONNECTION_OK &&
                (status = write_batch(l)))
                eb__pg_one_line(lane_conn(l), l->why, sizeof l->why);
            if (status) {
                pthread_mutex_lock(&p->mu);
                enter_error(p, EB_ECONNECT, l->why);
                pthread_mutex_unlock(&p->mu);
            }
        }
    }
    pthread_mutex_lock(&p->mu);
    l->status = status;
    l->done = true;
    complete(l);
}

/* mu held: lane l takes the pending appends and commits them; returns
 * with mu held, their completion reported. */
static void take_and_commit(pg_lane *l)
{
    take(l);
    pthread_mutex_unlock(&l->p->mu);
    commit_lane(l);
}

/* mu held: whether a lane may take the pending appends now: not while a
 * compaction or a clean-up waits (lane 0 runs those first). Lanes > 0
 * leave a batch that needs a new partition to lane 0. */
static bool can_take(pg_lane *l)
{
    pg_store *p = l->p;
    return p->pend.ncbs && !l->busy && !p->err && !p->fail && !p->dirty &&
           p->drop_req <= p->dropped && /* compaction goes before later appends */
           (l == &p->lanes[0] || p->pend.first + p->pend.records <= p->lane_end);
}

/* Rows at or past durable_seq were committed after a batch that failed:
 * nobody was told they are there, and their seqs are handed out again. */
/* Lane > 0, mu held, after its batch was failed unresolved: takes its
 * lock again on a new connection (so the session that may still commit
 * the batch is over), with backoff, before the rows past durable may be
 * deleted (clean_dirty waits for every such lane). Lane 0's is probe's
 * reconnect. */
static void settle(pg_lane *l)
{
    pg_store *p = l->p;
    uint64_t backoff = PG_BACKOFF_MIN_MS;
    for (int tries = 0; l->unsure; tries++) {
        if (p->closing && tries >= 3)
            return;
        pthread_mutex_unlock(&p->mu);
        bool ok = relink(l);
        pthread_mutex_lock(&p->mu);
        if (ok) {
            l->unsure = false;
            p->unsure--;
            pthread_cond_broadcast(&p->wake);
            return;
        }
        wait_ms(p, backoff);
        backoff = backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : backoff * 2;
    }
}

static int clean_dirty(pg_store *p)
{
    char sql[96], s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)atomic_load(&p->durable));
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE seq >= $1", p->table);
    const char *params[] = {s};
    int rc = eb__pg_run(p->wr, sql, 1, params, 0, NULL);
    if (rc == 0) {
        pthread_mutex_lock(&p->mu);
        p->dirty = false;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    return rc;
}

void *eb__pg_lane_main(void *arg)
{
    pg_lane *l = arg;
    pg_store *p = l->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closing && (!p->pend.ncbs || p->err))
            break; /* (lane 0 fails what the database cannot take) */
        if (!can_take(l)) {
            pthread_cond_wait(&p->wake, &p->mu);
            continue;
        }
        take_and_commit(l);
        settle(l);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void *eb__pg_writer_main(void *arg)
{
    pg_store *p = arg;
    pg_lane *l = &p->lanes[0];
    uint64_t next_house = 0, backoff = PG_BACKOFF_MIN_MS;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closing && !p->pend.ncbs) {
            if (!p->err && p->drop_req > p->dropped) { /* a compaction asked for: done */
                pthread_mutex_unlock(&p->mu);
                compact(p);
                pthread_mutex_lock(&p->mu);
            }
            break;
        }
        if ((p->nfly || p->completing) && (p->err || p->fail)) { /* the lanes finish first */
            wait_ms(p, PG_BACKOFF_MIN_MS);
            continue;
        }
        if (p->closing && p->err && p->pend.ncbs) { /* the database is away: fail them */
            int err = p->err;
            batch spare = l->work;
            l->work = p->pend;
            p->pend = spare;
            pthread_mutex_unlock(&p->mu);
            finish(&l->work, err);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (probe(p, &backoff))
            continue;
        if (p->dirty && !p->err && !p->unsure) {
            run_job(p, clean_dirty);
            continue;
        }
        if (p->drop_req > p->dropped && !p->err) {
            run_job(p, compact);
            continue;
        }
        uint64_t now = eb_clock_mono_ms();
        if (p->house_now) {
            p->house_now = false;
            next_house = 0;
        }
        if (now >= next_house && !p->err) {
            run_job(p, housekeeping);
            next_house = now + PG_HOUSE_MS;
            continue;
        }
        if (!can_take(l)) {
            wait_ms(p, next_house - now);
            continue;
        }
        take_and_commit(l);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}
