/* store_pg.c - PostgreSQL as a storage engine (store.h). A store is one
 * table: EVENTS is `eb_events`, partitioned by seq range (PG_PART_SEQS
 * seqs a partition, so retention drops whole partitions), META is
 * `eb_meta` (compacted with DELETE); `eb_state` keeps each store's floor
 * of seqs (the next seq is never below it, even once its rows are gone).
 *
 * Appends: the loop thread assigns seqs and the append time (this node
 * knows the next seq: one node per database, see ARCHITECTURE.md,
 * "PostgreSQL engine") and encodes the records as COPY binary tuples
 * into the pending batch; a writer thread takes every pending append at
 * once and sends it as one COPY (one statement, one transaction, one
 * commit: group commit). The loop never waits on the database to append.
 * durable_seq moves past a batch once its commit returned; the writer
 * commits batches one after another in seq order, so what is below
 * durable_seq is a committed prefix.
 *
 * Lost connection: the append that was being committed is resolved after
 * reconnecting (its first seq is in the table or not); it and every
 * append queued behind it fail with EB_ECONNECT when not committed, and
 * their seqs are handed out again (like EB_ENOSPC in the log). While the
 * database is unreachable appends are refused at once with EB_ECONNECT and
 * stats report it; the writer reconnects by itself with backoff
 * (100 ms doubling to 5 s) and clears it.
 *
 * Reads (scan, seek_time) run on the calling thread over their own
 * connection. The lookups (key versions, key streams, ids) are kept in
 * memory like the log engine's (keyidx.c): a key's version must count
 * the appends still in flight, which no query can see; the bus feeds them
 * at open from a scan (indexed_upto 0). */
#include "store/store_pg.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventbus/err.h"
#include "store/keyidx.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/logger.h"
#include "util/xmalloc.h"

#define PG_MAX_RECORD     (64u << 20)  /* largest record accepted */
#define PG_MAX_PENDING    (64u << 20)  /* appends wait past this many bytes queued */
#define PG_SCAN_ROWS      1000         /* rows fetched per query of a scan */
#define PG_HOUSE_MS       1000         /* stats, retention and compaction period */
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_UNKNOWN        1            /* write_work: the commit's outcome is unknown */
#define PG_LOCK_CLASS     0x6562       /* advisory lock (class, kind): "eb" */

uint64_t eb__store_pg_part_seqs = 65536; /* seqs per events partition */
#define PG_PART_SEQS eb__store_pg_part_seqs

typedef struct pend_cb {
    eb_store_done_cb cb;
    void            *arg;
} pend_cb;

/* Appends queued for one COPY. */
typedef struct batch {
    eb_buf   copy;    /* the records as COPY binary tuples */
    size_t   records;
    uint64_t first;   /* seq of the first record */
    pend_cb *cbs;
    size_t   ncbs, cap;
} batch;

typedef struct pg_store {
    eb_store         base; /* first: a pg_store is an eb_store */
    eb_store_kind    kind;
    char            *uri;
    const char      *table;
    eb_store_sync    sync;
    uint64_t         retention_ms, retention_bytes;
    PGconn          *rd;          /* reads, on the calling thread */
    uint64_t         rd_retry_ms; /* no reconnect before */
    PGconn          *wr;          /* the writer thread's */
    pthread_t        thr;
    pthread_mutex_t  mu;
    pthread_cond_t   wake, space;
    batch            pend, work;  /* mu: pend; the writer: work */
    bool             closing;     /* mu */
    int              err;         /* mu: 0, EB_ECONNECT / EB_ENOSPC (recovering), or broken */
    uint64_t         next_seq, last_ts; /* mu */
    uint64_t         drop_req;    /* mu: META rows below this may go */
    uint64_t         bytes, parts, commits; /* mu: stats */
    _Atomic uint64_t first, durable;
    uint64_t         part_lo, part_hi; /* writer: partitions [lo, hi) exist */
    uint64_t         dropped;     /* writer: META rows below this are deleted */
    eb_keyidx        kidx;
} pg_store;

static pg_store *pg_of(eb_store *s)
{
    return (pg_store *)(void *)s;
}

static void ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* libpq's message on one line, into out. */
static const char *one_line(PGconn *c, char *out, size_t cap)
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
static PGconn *connect_db(const char *uri, eb_store_sync sync, char *err, size_t errlen)
{
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"5", "eventbusd", uri, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        if (c)
            one_line(c, err, errlen);
        else
            snprintf(err, errlen, "out of memory");
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    PGresult *r = PQexec(c, sync == EB_STORE_SYNC_ALWAYS ? "SET synchronous_commit = on"
                                                         : "SET synchronous_commit = off");
    PQclear(r);
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
static int run(PGconn *c, const char *sql, int n, const char *const *params, int binary,
               PGresult **out)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, binary);
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

static int run0(PGconn *c, const char *sql)
{
    return run(c, sql, 0, NULL, 0, NULL);
}

/* The first column of the first row as a number (0 if NULL or none). */
static uint64_t num0(const PGresult *r)
{
    return PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
}

/* A query whose answer is one number (NULL: 0). */
static int query_num(PGconn *c, const char *sql, uint64_t *out)
{
    PGresult *r = NULL;
    int rc = run(c, sql, 0, NULL, 0, &r);
    if (rc == 0) {
        *out = num0(r);
        PQclear(r);
    }
    return rc;
}

static uint64_t be64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u[i];
    return v;
}

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void put_be(eb_buf *b, uint64_t v, int bytes)
{
    unsigned char t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    eb_buf_append(b, t, (size_t)bytes);
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
        int rc = run0(p->wr, sql);
        if (rc)
            return rc;
        p->part_hi++;
    }
    return 0;
}

/* Commits the work batch as one COPY: 0; an error (nothing committed);
 * or PG_UNKNOWN when the connection broke while committing. */
static int write_work(pg_store *p)
{
    batch *b = &p->work;
    if (!b->records)
        return 0;
    if (!p->wr || PQstatus(p->wr) != CONNECTION_OK)
        return EB_ECONNECT;
    int rc = ensure_parts(p, b->first + b->records - 1);
    if (rc)
        return rc;
    char sql[128];
    snprintf(sql, sizeof sql, "COPY %s (seq, ts, type, flags, data) FROM STDIN (FORMAT binary)",
             p->table);
    PGresult *r = PQexec(p->wr, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        rc = classify(p->wr, r);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    static const char head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    static const char trailer[2] = "\377\377";
    if (PQputCopyData(p->wr, head, sizeof head) != 1 ||
        PQputCopyData(p->wr, b->copy.data, (int)b->copy.len) != 1 ||
        PQputCopyData(p->wr, trailer, sizeof trailer) != 1)
        return EB_ECONNECT; /* the COPY never ended: nothing committed */
    if (PQputCopyEnd(p->wr, NULL) != 1)
        return PG_UNKNOWN;
    rc = 0;
    while ((r = PQgetResult(p->wr))) {
        if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = PQstatus(p->wr) == CONNECTION_OK ? classify(p->wr, r) : PG_UNKNOWN;
        PQclear(r);
    }
    if (!rc && PQstatus(p->wr) != CONNECTION_OK)
        rc = PG_UNKNOWN;
    return rc;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* (Re)connects the writer and takes the store's lock: 0, EB_ECONNECT, or
 * EB_EEXIST when another eventbusd holds the database. */
static int connect_wr(pg_store *p)
{
    if (p->wr && PQstatus(p->wr) == CONNECTION_OK)
        return 0;
    PQfinish(p->wr);
    char err[256];
    p->wr = connect_db(p->uri, p->sync, err, sizeof err);
    if (!p->wr)
        return EB_ECONNECT;
    /* One node per database (the seqs are assigned here): a session lock,
     * held as long as this connection lives. */
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", PG_LOCK_CLASS,
             (int)p->kind);
    PGresult *r = NULL;
    int rc = run(p->wr, sql, 0, NULL, 0, &r);
    if (rc == 0) {
        rc = PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't' ? 0 : EB_EEXIST;
        PQclear(r);
    }
    if (rc) {
        PQfinish(p->wr);
        p->wr = NULL;
    }
    return rc;
}

/* The connection broke while the work batch was committing: reconnects
 * (with backoff) and looks for its first record. 0 if it was committed,
 * EB_ECONNECT if not (or when closing and the database stays away). */
static int resolve(pg_store *p)
{
    uint64_t backoff = PG_BACKOFF_MIN_MS;
    for (int tries = 0;; tries++) {
        int rc = connect_wr(p);
        if (rc == EB_EEXIST)
            return EB_EIO; /* another node has the database: stop */
        if (rc == 0) {
            char seq[24];
            snprintf(seq, sizeof seq, "%llu", (unsigned long long)p->work.first);
            char sql[96];
            snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE seq = $1", p->table);
            const char *params[] = {seq};
            PGresult *r = NULL;
            if (run(p->wr, sql, 1, params, 0, &r) == 0) {
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
    return run(p->wr, sql, 1, params, 0, NULL);
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
            snprintf(sql, sizeof sql, "SELECT max(ts) FROM %s", name);
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
        if ((rc = set_floor(p, atomic_load(&p->durable))) || (rc = run0(p->wr, sql)))
            return rc;
        p->part_lo++;
        *total = *total > sz ? *total - sz : 0;
        uint64_t lo = p->part_lo * PG_PART_SEQS, first = atomic_load(&p->first);
        if (lo > first)
            atomic_store(&p->first, lo);
    }
    return 0;
}

/* Every PG_HOUSE_MS: compaction (META), retention (EVENTS), the size. */
static int housekeeping(pg_store *p)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    uint64_t drop = p->drop_req;
    pthread_mutex_unlock(&p->mu);
    if (p->kind == EB_STORE_META && drop > p->dropped) {
        char sql[96], s[24];
        snprintf(s, sizeof s, "%llu", (unsigned long long)drop);
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE seq < $1", p->table);
        const char *params[] = {s};
        if ((rc = set_floor(p, drop)) || (rc = run(p->wr, sql, 1, params, 0, NULL)))
            return rc;
        p->dropped = drop;
    }
    char sql[256];
    if (p->kind == EB_STORE_EVENTS)
        snprintf(sql, sizeof sql, "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0), "
                 "count(*) FROM pg_inherits WHERE inhparent = '%s'::regclass", p->table);
    else
        snprintf(sql, sizeof sql, "SELECT pg_total_relation_size('%s'), 1", p->table);
    PGresult *r = NULL;
    if ((rc = run(p->wr, sql, 0, NULL, 0, &r)))
        return rc;
    uint64_t bytes = num0(r), parts = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
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

/* mu held: enters the error state (appends refused) and says why once. */
static void enter_error(pg_store *p, int rc)
{
    if (p->err)
        return;
    p->err = rc;
    char buf[512];
    const char *why = one_line(p->wr, buf, sizeof buf);
    EB_WARN("postgresql (%s store): %s%s%s", p->table,
            rc == EB_ECONNECT ? "database unreachable" : eb_strerror(rc), *why ? ": " : "",
            why);
}

static void wait_ms(pg_store *p, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
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
    int rc = connect_wr(p);
    if (rc == 0)
        rc = run0(p->wr, "SELECT 1");
    pthread_mutex_lock(&p->mu);
    if (rc == EB_EEXIST) { /* another node took the database meanwhile */
        EB_ERROR("postgresql (%s store): another eventbusd holds the database; writes stop",
                 p->table);
        p->err = EB_EIO;
        return false;
    }
    if (rc) {
        *backoff = *backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : *backoff * 2;
        return true;
    }
    EB_INFO("postgresql (%s store): database reachable again", p->table);
    p->err = 0;
    *backoff = PG_BACKOFF_MIN_MS;
    return false;
}

static void *writer_main(void *arg)
{
    pg_store *p = arg;
    uint64_t next_house = 0, backoff = PG_BACKOFF_MIN_MS;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closing && !p->pend.ncbs)
            break;
        if (probe(p, &backoff))
            continue;
        uint64_t now = eb_clock_mono_ms();
        if (now >= next_house && !p->err) {
            pthread_mutex_unlock(&p->mu);
            int rc = housekeeping(p);
            pthread_mutex_lock(&p->mu);
            if (rc)
                enter_error(p, rc);
            next_house = now + PG_HOUSE_MS;
            continue;
        }
        if (!p->pend.ncbs) {
            wait_ms(p, next_house - now);
            continue;
        }
        batch tmp = p->work;
        p->work = p->pend;
        p->pend = tmp;
        pthread_cond_broadcast(&p->space);
        pthread_mutex_unlock(&p->mu);
        int status = write_work(p);
        if (status == PG_UNKNOWN) { /* refuse new appends while resolving */
            pthread_mutex_lock(&p->mu);
            enter_error(p, EB_ECONNECT);
            pthread_mutex_unlock(&p->mu);
            status = resolve(p);
        }
        pthread_mutex_lock(&p->mu);
        if (status == 0) {
            atomic_store(&p->durable, p->work.first + p->work.records);
            p->commits += p->work.records != 0;
            if (!p->bytes && p->work.records)
                next_house = 0; /* the first rows: their size at once */
        } else {
            enter_error(p, status);
            if (status == EB_EIO)
                p->err = EB_EIO; /* broken for good, even if resolving */
        }
        pthread_mutex_unlock(&p->mu);
        finish(&p->work, status);
        pthread_mutex_lock(&p->mu);
        if (status) {
            /* The appends queued behind carry the seqs after it: fail them
             * too, and hand those seqs out again. */
            batch spare = p->work;
            p->work = p->pend;
            p->pend = spare;
            pthread_cond_broadcast(&p->space);
            pthread_mutex_unlock(&p->mu);
            finish(&p->work, status);
            pthread_mutex_lock(&p->mu);
            p->next_seq = atomic_load(&p->durable);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* --- the calls, on the loop thread ---------------------------------------- */

static int push_cb(batch *b, eb_store_done_cb cb, void *arg)
{
    if (b->ncbs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        b->cbs = eb_xrealloc(b->cbs, cap * sizeof *b->cbs);
        b->cap = cap;
    }
    b->cbs[b->ncbs++] = (pend_cb){cb, arg};
    return 0;
}

static int pg_append(eb_store *s, const eb_store_rec_in *recs, size_t n, bool inline_ok,
                     uint64_t *first_seq, uint64_t *ts_us, eb_store_done_cb cb, void *arg)
{
    (void)inline_ok; /* durable only once committed: never inline */
    pg_store *p = pg_of(s);
    for (size_t i = 0; i < n; i++)
        if (recs[i].len > PG_MAX_RECORD)
            return EB_ETOOBIG;
    uint64_t now = eb_clock_wall_us();
    pthread_mutex_lock(&p->mu);
    while (p->pend.copy.len > PG_MAX_PENDING && !p->err && !p->closing)
        pthread_cond_wait(&p->space, &p->mu);
    int rc = p->err ? p->err : p->closing ? EB_ECLOSED : 0;
    if (rc) {
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    uint64_t ts = now > p->last_ts ? now : p->last_ts; /* never step back */
    p->last_ts = ts;
    if (!p->pend.records)
        p->pend.first = p->next_seq;
    for (size_t i = 0; i < n; i++) {
        eb_buf *b = &p->pend.copy;
        put_be(b, 5, 2);
        put_be(b, 8, 4);
        put_be(b, p->next_seq + i, 8);
        put_be(b, 8, 4);
        put_be(b, ts, 8);
        put_be(b, 4, 4);
        put_be(b, recs[i].type, 4);
        put_be(b, 4, 4);
        put_be(b, recs[i].flags, 4);
        put_be(b, recs[i].len, 4);
        eb_buf_append(b, recs[i].data, recs[i].len);
    }
    push_cb(&p->pend, cb, arg);
    *first_seq = p->next_seq;
    *ts_us = ts;
    p->next_seq += n;
    p->pend.records += n;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* The read connection: one found broken is made again at once; after a
 * failed connect, the next try waits PG_BACKOFF_MIN_MS (a read while the
 * database is away fails fast). */
static PGconn *reader(pg_store *p)
{
    if (p->rd && PQstatus(p->rd) == CONNECTION_OK)
        return p->rd;
    uint64_t now = eb_clock_mono_ms();
    if (!p->rd && now < p->rd_retry_ms)
        return NULL;
    PQfinish(p->rd);
    char err[256];
    p->rd = connect_db(p->uri, p->sync, err, sizeof err);
    if (!p->rd)
        p->rd_retry_ms = now + PG_BACKOFF_MIN_MS;
    return p->rd;
}

/* A read query; when the connection failed it (the database may have
 * restarted since the last read) it is tried once more on a new one. */
static int read_query(pg_store *p, const char *sql, int n, const char *const *params,
                      PGresult **out)
{
    for (int attempt = 0;; attempt++) {
        PGconn *c = reader(p);
        if (!c)
            return EB_ECONNECT;
        int rc = run(c, sql, n, params, 1, out);
        if (rc != EB_ECONNECT || attempt)
            return rc;
        PQfinish(p->rd); /* after "terminating connection" it may still look fine */
        p->rd = NULL;
        p->rd_retry_ms = 0;
    }
}

static int pg_scan(eb_store *s, uint64_t from, size_t max, eb_store_scan_cb cb, void *arg)
{
    pg_store *p = pg_of(s);
    uint64_t first = atomic_load(&p->first), end = atomic_load(&p->durable);
    if (from < first)
        from = first;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT seq, ts, type, flags, data FROM %s WHERE seq >= $1 AND "
             "seq < $2 ORDER BY seq LIMIT $3", p->table);
    while (max && from < end) {
        char a[24], b[24], l[24];
        snprintf(a, sizeof a, "%llu", (unsigned long long)from);
        snprintf(b, sizeof b, "%llu", (unsigned long long)end);
        snprintf(l, sizeof l, "%zu", max < PG_SCAN_ROWS ? max : (size_t)PG_SCAN_ROWS);
        const char *params[] = {a, b, l};
        PGresult *r = NULL;
        int rc = read_query(p, sql, 3, params, &r);
        if (rc)
            return rc;
        int rows = PQntuples(r), stop = 0;
        for (int i = 0; i < rows && !stop; i++) {
            eb_store_rec rec = {be64(PQgetvalue(r, i, 0)), be64(PQgetvalue(r, i, 1)),
                                (uint16_t)be32(PQgetvalue(r, i, 2)),
                                (uint16_t)be32(PQgetvalue(r, i, 3)),
                                (uint32_t)PQgetlength(r, i, 4), PQgetvalue(r, i, 4)};
            from = rec.seq + 1;
            max--;
            stop = cb(arg, &rec);
        }
        PQclear(r);
        if (stop || rows == 0)
            break;
    }
    return 0;
}

static int pg_seek_time(eb_store *s, uint64_t ts_us, uint64_t *seq)
{
    pg_store *p = pg_of(s);
    char sql[160], t[24], a[24], b[24];
    snprintf(sql, sizeof sql, "SELECT seq FROM %s WHERE ts >= $1 AND seq >= $2 AND seq < $3 "
             "ORDER BY ts, seq LIMIT 1", p->table);
    snprintf(t, sizeof t, "%llu", (unsigned long long)(ts_us > INT64_MAX ? INT64_MAX : ts_us));
    snprintf(a, sizeof a, "%llu", (unsigned long long)atomic_load(&p->first));
    snprintf(b, sizeof b, "%llu", (unsigned long long)atomic_load(&p->durable));
    const char *params[] = {t, a, b};
    PGresult *r = NULL;
    int rc = read_query(p, sql, 3, params, &r);
    if (rc)
        return rc;
    rc = PQntuples(r) ? 0 : EB_ENOTFOUND;
    if (!rc)
        *seq = be64(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

static uint64_t pg_first_seq(eb_store *s) { return atomic_load(&pg_of(s)->first); }
static uint64_t pg_durable_seq(eb_store *s) { return atomic_load(&pg_of(s)->durable); }

static uint64_t pg_next_seq(eb_store *s)
{
    pg_store *p = pg_of(s);
    pthread_mutex_lock(&p->mu);
    uint64_t n = p->next_seq;
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void pg_stats(eb_store *s, eb_store_stats *out)
{
    pg_store *p = pg_of(s);
    pthread_mutex_lock(&p->mu);
    *out = (eb_store_stats){p->bytes, p->parts, p->commits, p->err};
    pthread_mutex_unlock(&p->mu);
}

/* META: the rows below seq are deleted by the writer within PG_HOUSE_MS;
 * they are out of reach at once. EVENTS: retention only. */
static int pg_drop_before(eb_store *s, uint64_t seq)
{
    pg_store *p = pg_of(s);
    if (p->kind != EB_STORE_META)
        return 0;
    uint64_t durable = atomic_load(&p->durable);
    if (seq > durable)
        seq = durable;
    pthread_mutex_lock(&p->mu);
    if (seq > p->drop_req)
        p->drop_req = seq;
    pthread_mutex_unlock(&p->mu);
    if (seq > atomic_load(&p->first))
        atomic_store(&p->first, seq);
    return 0;
}

static void pg_free(pg_store *p)
{
    PQfinish(p->rd);
    PQfinish(p->wr);
    eb_buf_free(&p->pend.copy);
    eb_buf_free(&p->work.copy);
    free(p->pend.cbs);
    free(p->work.cbs);
    eb__keyidx_free(&p->kidx);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->space);
    free(p->uri);
    free(p);
}

static void pg_close(eb_store *s)
{
    pg_store *p = pg_of(s);
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->wake);
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thr, NULL);
    pg_free(p);
}

static int pg_index_add(eb_store *s, const char *key, size_t klen, uint64_t version,
                        const char *id, size_t idlen, uint64_t seq)
{
    pg_store *p = pg_of(s);
    int rc = klen ? eb__keyidx_add(&p->kidx, key, klen, version, seq) : 0;
    int rc2 = eb__keyidx_add_id(&p->kidx, id, idlen, seq);
    return rc ? rc : rc2;
}

static uint64_t pg_key_version(eb_store *s, const char *key, size_t klen)
{
    return eb__keyidx_version(&pg_of(s)->kidx, key, klen);
}

static size_t pg_key_seqs(eb_store *s, const char *key, size_t klen, uint64_t from_version,
                          uint64_t *seqs, size_t max, uint64_t *first_version)
{
    return eb__keyidx_range(&pg_of(s)->kidx, key, klen, from_version, pg_first_seq(s),
                            pg_durable_seq(s), seqs, max, first_version);
}

static uint64_t pg_lookup_id(eb_store *s, const char *id, size_t idlen)
{
    uint64_t seq = eb__keyidx_find_id(&pg_of(s)->kidx, id, idlen);
    return seq >= pg_first_seq(s) && seq < pg_durable_seq(s) ? seq : 0;
}

static uint64_t pg_indexed_upto(eb_store *s)
{
    (void)s;
    return 0; /* the bus reports every retained event at open */
}

static const eb_store_ops pg_ops = {
    pg_append,      pg_scan,     pg_seek_time, pg_first_seq,  pg_next_seq,
    pg_durable_seq, pg_stats,    pg_drop_before, pg_close,    pg_index_add,
    pg_key_version, pg_key_seqs, pg_lookup_id, pg_indexed_upto};

/* --- opening -------------------------------------------------------------- */

/* Creates the tables if needed and reads where the store stands. */
static int load(pg_store *p, eb_store_recovery *rep)
{
    char cols[] = "(seq bigint PRIMARY KEY, ts bigint NOT NULL, type integer NOT NULL, "
                  "flags integer NOT NULL, data bytea NOT NULL)";
    char sql[512];
    int rc = run0(p->rd, "CREATE TABLE IF NOT EXISTS eb_state (name text PRIMARY KEY, "
                         "floor bigint NOT NULL)");
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s %s%s", p->table, cols,
             p->kind == EB_STORE_EVENTS ? " PARTITION BY RANGE (seq)" : "");
    if (!rc)
        rc = run0(p->rd, sql);
    if (!rc && p->kind == EB_STORE_EVENTS)
        rc = run0(p->rd, "CREATE INDEX IF NOT EXISTS eb_events_ts ON eb_events (ts)");
    PGresult *r = NULL;
    snprintf(sql, sizeof sql, "SELECT min(seq), max(seq), count(*), (SELECT floor FROM "
             "eb_state WHERE name = '%s'), (SELECT max(ts) FROM %s) FROM %s", p->table,
             p->table, p->table);
    if (rc || (rc = run(p->rd, sql, 0, NULL, 0, &r)))
        return rc;
    uint64_t min = num0(r), max = strtoull(PQgetvalue(r, 0, 1), NULL, 10),
             count = strtoull(PQgetvalue(r, 0, 2), NULL, 10),
             floor = strtoull(PQgetvalue(r, 0, 3), NULL, 10),
             last_ts = strtoull(PQgetvalue(r, 0, 4), NULL, 10);
    PQclear(r);
    uint64_t next = count ? max + 1 : 1;
    if (floor > next)
        next = floor;
    p->next_seq = next;
    p->last_ts = last_ts;
    atomic_store(&p->durable, next);
    atomic_store(&p->first, count ? min : next);
    p->part_lo = p->part_hi = next / PG_PART_SEQS;
    p->parts = 1;
    if (p->kind == EB_STORE_EVENTS) {
        snprintf(sql, sizeof sql, "SELECT min(substring(c.relname from '_p([0-9]+)$')::bigint), "
                 "max(substring(c.relname from '_p([0-9]+)$')::bigint), count(*) FROM "
                 "pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                 "'%s'::regclass", p->table);
        if ((rc = run(p->rd, sql, 0, NULL, 0, &r)))
            return rc;
        p->parts = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
        if (p->parts) {
            p->part_lo = num0(r);
            p->part_hi = strtoull(PQgetvalue(r, 0, 1), NULL, 10) + 1;
        }
        PQclear(r);
    }
    if (rep)
        *rep = (eb_store_recovery){.segments = p->parts, .records = count,
                                   .first_seq = count ? min : 0, .last_seq = count ? max : 0};
    return 0;
}

static int pg_open(const eb_store_opts *o, eb_store **out, eb_store_recovery *rep)
{
    uint64_t t0 = eb_clock_mono_ms();
    pg_store *p = eb_xcalloc(1, sizeof *p);
    p->base.ops = &pg_ops;
    p->kind = o->kind;
    p->uri = eb_xstrdup(o->data_dir);
    p->table = o->kind == EB_STORE_META ? "eb_meta" : "eb_events";
    p->sync = o->sync;
    p->retention_ms = o->retention_ms;
    p->retention_bytes = o->retention_bytes;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->space, NULL);
    eb_buf_init(&p->pend.copy);
    eb_buf_init(&p->work.copy);
    eb__keyidx_init(&p->kidx);
    char err[256];
    int rc = 0;
    if (!(p->rd = connect_db(p->uri, p->sync, err, sizeof err))) {
        EB_ERROR("postgresql: cannot connect: %s", err);
        rc = EB_ECONNECT;
    }
    if (!rc && (rc = connect_wr(p)) == EB_EEXIST)
        EB_ERROR("postgresql (%s store): the database is in use by another eventbusd",
                 p->table);
    if (!rc && (rc = load(p, rep)))
        EB_ERROR("postgresql (%s store): cannot open: %s", p->table,
                 one_line(p->rd, err, sizeof err));
    if (!rc && pthread_create(&p->thr, NULL, writer_main, p) != 0)
        rc = EB_ENOMEM;
    if (rc) {
        pg_free(p);
        return rc;
    }
    if (rep)
        rep->elapsed_ms = (double)(eb_clock_mono_ms() - t0);
    *out = &p->base;
    return 0;
}

const eb_store_engine eb_store_pg_engine = {"postgresql", pg_open};
