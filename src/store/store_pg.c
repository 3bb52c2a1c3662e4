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
 * durable_seq moves past a batch once its commit returned and every batch
 * before it committed, so what is below durable_seq is a committed
 * prefix. Batches commit on several connections at once (lanes, see
 * store_pg_int.h and store_pg_writer.c).
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
 * connection; EVENTS keeps the newest records this node appended in
 * memory (store_pg_cache.c, 64 MiB) and serves scans of them from there. The lookups (key versions, key streams, ids) are kept in
 * memory like the log engine's (keyidx.c): a key's version must count
 * the appends still in flight, which no query can see; ids of complete
 * partitions leave memory for the partitions' summaries, and at open the
 * bus feeds them only the events after the last summary (indexed_upto:
 * store_pg_sum.c).
 *
 * This file: the calls (on the caller's thread) and opening; the writer
 * thread and the SQL helpers are store_pg_writer.c, the shared struct
 * store_pg_int.h. */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "store/store_pg_int.h"
#include "util/clock.h"
#include "util/logger.h"
#include "util/xmalloc.h"

uint64_t eb__store_pg_part_seqs = 65536;

static unsigned char *put_be(unsigned char *t, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return t + bytes;
}

/* A record as a COPY binary tuple: 5 fields, each its length and bytes
 * (the fixed part in one append). */
static void put_tuple(eb_buf *b, uint64_t seq, uint64_t ts, const eb_store_rec_in *r)
{
    unsigned char h[46], *t = h;
    t = put_be(t, 5, 2);
    t = put_be(t, 8, 4);
    t = put_be(t, seq, 8);
    t = put_be(t, 8, 4);
    t = put_be(t, ts, 8);
    t = put_be(t, 4, 4);
    t = put_be(t, r->type, 4);
    t = put_be(t, 4, 4);
    t = put_be(t, r->flags, 4);
    t = put_be(t, r->len, 4);
    eb_buf_reserve(b, sizeof h + r->len);
    eb_buf_append(b, h, (size_t)(t - h));
    eb_buf_append(b, r->data, r->len);
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
    while ((p->pend.copy.len > PG_MAX_PENDING ||
            (p->kind == EB_STORE_EVENTS && p->pend.records &&
             p->pend.records + n > PG_BATCH_RECORDS)) && !p->err && !p->closing)
        pthread_cond_wait(&p->space, &p->mu); /* until a lane takes the pending batch */
    int rc = p->err ? p->err : p->closing ? EB_ECLOSED : 0;
    if (rc) {
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    uint64_t ts = now > p->last_ts ? now : p->last_ts; /* never step back */
    p->last_ts = ts;
    if (!p->pend.records)
        p->pend.first = p->next_seq;
    if (p->kind == EB_STORE_EVENTS) { /* seqs of failed appends are handed out again */
        eb__pg_cache_truncate(&p->cache, p->next_seq);
        for (size_t i = 0; i < n; i++)
            eb__pg_cache_add(&p->cache, p->next_seq + i, ts, recs[i].type, recs[i].flags,
                             recs[i].data, recs[i].len);
    }
    for (size_t i = 0; i < n; i++)
        put_tuple(&p->pend.copy, p->next_seq + i, ts, &recs[i]);
    bool first = !p->pend.ncbs;
    push_cb(&p->pend, cb, arg);
    *first_seq = p->next_seq;
    *ts_us = ts;
    p->next_seq += n;
    p->pend.records += n;
    /* Every idle lane, at the first append of a batch: the first that can
     * takes it. (A lane that was busy looks again once it is done: later
     * appends to the same batch wake nobody.) */
    if (first)
        pthread_cond_broadcast(&p->wake);
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
    p->rd = eb__pg_connect(p->uri, p->sync, err, sizeof err);
    if (!p->rd)
        p->rd_retry_ms = now + PG_BACKOFF_MIN_MS;
    return p->rd;
}

/* A read query; when the connection failed it (the database may have
 * restarted since the last read) it is tried once more on a new one. */
static void ahead_collect(pg_store *p, bool wait);

static int read_query(pg_store *p, const char *sql, int n, const char *const *params,
                      PGresult **out)
{
    ahead_collect(p, true); /* the connection is free once its read-ahead is in */
    for (int attempt = 0;; attempt++) {
        PGconn *c = reader(p);
        if (!c)
            return EB_ECONNECT;
        p->reads++;
        int rc = eb__pg_run(c, sql, n, params, 1, out);
        if (rc != EB_ECONNECT || attempt)
            return rc;
        PQfinish(p->rd); /* after "terminating connection" it may still look fine */
        p->rd = NULL;
        p->rd_retry_ms = 0;
    }
}

/* Visits the records of window c from *from on (below end); 1 if cb
 * stopped. */
static int scan_cached(pg_cache *c, uint64_t *from, uint64_t end, size_t *max,
                       eb_store_scan_cb cb, void *arg)
{
    const pg_cached *e;
    int stop = 0;
    c->pinned++; /* cb may append (or read): what it visits stays */
    while (*max && *from < end && !stop && (e = eb__pg_cache_get(c, *from))) {
        eb_store_rec rec = {*from, e->ts, e->type, e->flags, e->len, e->data};
        ++*from;
        --*max;
        stop = cb(arg, &rec);
    }
    c->pinned--;
    return stop;
}

static const char *scan_sql(pg_store *p, char *sql, size_t cap)
{
    snprintf(sql, cap, "SELECT seq, ts, type, flags, data FROM %s WHERE seq >= $1 AND "
             "seq < $2 ORDER BY seq LIMIT $3", p->table);
    return sql;
}

/* Puts the rows of a chunk into the backlog window (unless a scan is
 * visiting it: then they are dropped). */
static void back_fill(pg_store *p, const PGresult *r)
{
    uint64_t bytes = 0;
    int n = PQntuples(r);
    for (int i = 0; i < n && !p->back.pinned; i++) {
        eb_store_rec rec = eb__pg_row_rec(r, i);
        eb__pg_cache_add(&p->back, rec.seq, rec.ts_us, rec.type, rec.flags, rec.data, rec.len);
        bytes += rec.len;
    }
    if (n && bytes)
        p->chunk_avg = bytes / (uint64_t)n;
}

/* The rows of a chunk: a quarter of the window's bytes at the records'
 * size so far (the last chunk's, else the newest records', else 4 KiB),
 * from 4 to PG_CHUNK_ROWS: what one query holds in memory stays bounded
 * whatever the records' size. */
static uint64_t chunk_rows(const pg_store *p)
{
    uint64_t avg = p->chunk_avg, held = p->cache.hi - p->cache.lo;
    if (!avg)
        avg = held && p->cache.bytes ? p->cache.bytes / held : 4096;
    uint64_t rows = PG_BACK_BYTES / 4 / (avg ? avg : 1);
    return rows < 4 ? 4 : rows > PG_CHUNK_ROWS ? PG_CHUNK_ROWS : rows;
}

/* The read-ahead in flight, if any: its rows go into the backlog window.
 * wait: until it is in; else only if it is in already. */
static void ahead_collect(pg_store *p, bool wait)
{
    if (!p->ahead)
        return;
    if (!wait && PQconsumeInput(p->rd) && PQisBusy(p->rd))
        return; /* not in yet (a broken connection: taken below, failed) */
    PGresult *r;
    int g = eb__pg_guard_on(p->rd);
    while ((r = PQgetResult(p->rd))) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            back_fill(p, r);
        PQclear(r);
    }
    eb__pg_guard_off(g);
    p->ahead = false;
    p->reads++;
}

/* EVENTS: a reader at seq `at` near the end of the backlog window (within
 * a chunk) sends the query of the chunk after it, unless one is in flight
 * or the window reaches the newest records: the database reads it while
 * the loop serves the window. */
static void ahead_start(pg_store *p, uint64_t at)
{
    uint64_t end = atomic_load(&p->durable), hi = p->back.hi;
    if (p->cache.lo < end)
        end = p->cache.lo;
    if (p->ahead || hi >= end || hi < p->back.lo + 1 || at + chunk_rows(p) < hi)
        return;
    PGconn *c = reader(p);
    if (!c)
        return;
    char sql[128], a[24], b[24], l[24];
    snprintf(a, sizeof a, "%llu", (unsigned long long)hi);
    snprintf(b, sizeof b, "%llu", (unsigned long long)end);
    snprintf(l, sizeof l, "%llu", (unsigned long long)chunk_rows(p));
    const char *params[] = {a, b, l};
    p->ahead = PQsendQueryParams(c, scan_sql(p, sql, sizeof sql), 3, NULL, params, NULL, NULL,
                                 1) == 1;
}

uint64_t eb__store_pg_read_queries(eb_store *s)
{
    pg_store *p = pg_of(s);
    return p->reads + p->ahead; /* (a read-ahead counts once collected, or now) */
}

static int pg_scan(eb_store *s, uint64_t from, size_t max, eb_store_scan_cb cb, void *arg)
{
    pg_store *p = pg_of(s);
    uint64_t first = atomic_load(&p->first), end = atomic_load(&p->durable);
    if (from < first)
        from = first;
    bool events = p->kind == EB_STORE_EVENTS;
    char sql[128];
    scan_sql(p, sql, sizeof sql);
    ahead_collect(p, false);
    while (max && from < end) {
        if (scan_cached(&p->cache, &from, end, &max, cb, arg) ||
            scan_cached(&p->back, &from, end, &max, cb, arg))
            break;
        if (!max || from >= end)
            break;
        if (eb__pg_cache_get(&p->cache, from))
            continue; /* the backlog window reached the newest records */
        if (p->ahead) { /* it may be bringing this very chunk */
            ahead_collect(p, true);
            if (eb__pg_cache_get(&p->back, from))
                continue;
        }
        /* Below the cache (or past it): from the table, up to where it
         * starts. EVENTS read a whole chunk into the backlog window (the
         * next scans, of this reader and of the others behind it, find it
         * there), unless a scan is visiting the window (a cb that reads)
         * or this one asks for a few records only (a lookup, a
         * redelivery: those read what they ask for, as before). */
        bool chunk = events && !p->back.pinned && max >= PG_CHUNK_MIN;
        uint64_t upto = from < p->cache.lo && p->cache.lo < end ? p->cache.lo : end;
        char a[24], b[24], l[24];
        snprintf(a, sizeof a, "%llu", (unsigned long long)from);
        snprintf(b, sizeof b, "%llu", (unsigned long long)upto);
        snprintf(l, sizeof l, "%llu", (unsigned long long)(chunk ? chunk_rows(p)
                                     : max < PG_SCAN_ROWS ? max : PG_SCAN_ROWS));
        const char *params[] = {a, b, l};
        PGresult *r = NULL;
        int rc = read_query(p, sql, 3, params, &r);
        if (rc)
            return rc;
        int rows = PQntuples(r), stop = 0;
        if (chunk)
            back_fill(p, r);
        /* Served from the window from here on; or, when the chunk did not
         * stay there (records past its bytes, or the rows start after a
         * gap), from the result. */
        for (int i = 0; (!chunk || !eb__pg_cache_get(&p->back, from)) && i < rows && max &&
                        !stop; i++) {
            eb_store_rec rec = eb__pg_row_rec(r, i);
            from = rec.seq + 1;
            max--;
            stop = cb(arg, &rec);
        }
        PQclear(r);
        if (stop)
            break;
        if (rows == 0) {
            if (upto == end)
                break;
            from = upto; /* a gap below the cache (dropped rows): go on there */
        }
    }
    if (events && p->back.lo <= from && from <= p->back.hi)
        ahead_start(p, from);
    return 0;
}

/* The first seq whose append time is >= ts_us. Append times never step
 * back as seqs grow (pg_append), so this is a binary search on seq through
 * the primary key, in one statement: each step reads the first row at or
 * after the middle (runtime partition pruning: one partition's index).
 * Invariant: rows below lo are older than ts_us; rows from hi on are not
 * (or hi is the end). There is no index on ts: it cost every insert a
 * second btree (ARCHITECTURE.md, "The PostgreSQL engine"). */
static int pg_seek_time(eb_store *s, uint64_t ts_us, uint64_t *seq)
{
    pg_store *p = pg_of(s);
    char sql[720], t[24], a[24], b[24];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE b(lo, hi) AS (SELECT $2::bigint, $3::bigint UNION ALL "
             "SELECT CASE WHEN r.ts < $1 THEN r.seq + 1 ELSE b.lo END, "
             "CASE WHEN r.seq IS NULL THEN (b.lo + b.hi) / 2 WHEN r.ts >= $1 THEN r.seq "
             "ELSE b.hi END FROM b LEFT JOIN LATERAL (SELECT seq, ts FROM %s WHERE "
             "seq >= (b.lo + b.hi) / 2 AND seq < b.hi ORDER BY seq LIMIT 1) r ON true "
             "WHERE b.lo < b.hi) "
             "SELECT seq FROM %s WHERE seq >= (SELECT max(lo) FROM b) AND seq < $3 "
             "AND ts >= $1 ORDER BY seq LIMIT 1", p->table, p->table);
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
        *seq = eb__pg_be64(PQgetvalue(r, 0, 0));
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
    *out = (eb_store_stats){p->bytes, p->parts, p->commits, p->err,
                            eb__keyidx_ids_held(&p->kidx)}; /* loop thread's */
    pthread_mutex_unlock(&p->mu);
}

/* META: the rows below seq are out of reach at once, and the writer
 * deletes them as its next job (before any append made after this call
 * commits). EVENTS: retention only. */
static int pg_drop_before(eb_store *s, uint64_t seq)
{
    pg_store *p = pg_of(s);
    if (p->kind != EB_STORE_META)
        return 0;
    uint64_t durable = atomic_load(&p->durable);
    if (seq > durable)
        seq = durable;
    pthread_mutex_lock(&p->mu);
    if (seq > p->drop_req) {
        p->drop_req = seq;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->mu);
    if (seq > atomic_load(&p->first))
        atomic_store(&p->first, seq);
    return 0;
}

static void pg_free(pg_store *p)
{
    eb__pg_sum_close(p);
    PQfinish(p->rd);
    PQfinish(p->wr);
    eb_buf_free(&p->pend.copy);
    free(p->pend.cbs);
    for (int i = 0; i < PG_LANES; i++) {
        if (i)
            PQfinish(p->lanes[i].c);
        eb_buf_free(&p->lanes[i].work.copy);
        free(p->lanes[i].work.cbs);
    }
    eb__keyidx_free(&p->kidx);
    eb__pg_cache_free(&p->cache);
    eb__pg_cache_free(&p->back);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->space);
    pthread_mutex_destroy(&p->sum_mu);
    pthread_cond_destroy(&p->sum_cv);
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
    for (int i = 1; i < p->nlanes; i++)
        pthread_join(p->lanes[i].thr, NULL);
    /* The lock goes with the session, but the server ends a session after
     * the connection closed: a store opened again at once (a restart)
     * could still find it held. Released here, it is free on return. */
    if (p->wr && PQstatus(p->wr) == CONNECTION_OK)
        eb__pg_run0(p->wr, "SELECT pg_advisory_unlock_all()");
    for (int i = 1; i < p->nlanes; i++)
        if (p->lanes[i].c && PQstatus(p->lanes[i].c) == CONNECTION_OK)
            eb__pg_run0(p->lanes[i].c, "SELECT pg_advisory_unlock_all()");
    pg_free(p);
}

static int pg_index_add(eb_store *s, const char *key, size_t klen, uint64_t version,
                        const char *id, size_t idlen, uint64_t seq)
{
    pg_store *p = pg_of(s);
    if (p->describe)
        eb__pg_sum_cut(p);
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

static uint64_t pg_lookup_id_below(eb_store *s, const char *id, size_t idlen, uint64_t below)
{
    return eb__pg_sum_lookup(pg_of(s), false, NULL, 0, id, idlen, below);
}

static uint64_t pg_lookup_id(eb_store *s, const char *id, size_t idlen)
{
    return pg_lookup_id_below(s, id, idlen, UINT64_MAX);
}

static int pg_index_source_id(eb_store *s, const char *src, size_t slen, const char *id,
                              size_t idlen, uint64_t seq)
{
    pg_store *p = pg_of(s);
    if (p->describe)
        eb__pg_sum_cut(p);
    return eb__keyidx_add_source_id(&p->kidx, src, slen, id, idlen, seq);
}

static uint64_t pg_lookup_source_id(eb_store *s, const char *src, size_t slen, const char *id,
                                    size_t idlen, uint64_t below)
{
    return eb__pg_sum_lookup(pg_of(s), true, src, slen, id, idlen, below);
}

/* EVENTS with describe: the summaries loaded at open cover below this
 * (store_pg_sum.c); otherwise 0, and the bus reports every retained event. */
static uint64_t pg_indexed_upto(eb_store *s)
{
    return pg_of(s)->indexed_upto;
}

static const eb_store_ops pg_ops = {
    pg_append,      pg_scan,     pg_seek_time, pg_first_seq,  pg_next_seq,
    pg_durable_seq, pg_stats,    pg_drop_before, pg_close,    pg_index_add,
    pg_key_version, pg_key_seqs, pg_lookup_id, pg_indexed_upto,
    .type_counts = eb__pg_sum_type_counts, .client_id_range = eb__pg_sum_client_id_range,
    .index_source_id = pg_index_source_id, .lookup_source_id = pg_lookup_source_id,
    .lookup_id_below = pg_lookup_id_below};

/* --- opening -------------------------------------------------------------- */

/* Before stop 15 EVENTS had an index on ts; seek_time now searches by
 * seq, and the index only cost every insert: an older version's goes. The
 * DROP needs the table to itself, so it waits at most PG_LOCK_WAIT for a
 * session still reading it (an old node's); then the index stays until
 * the next open (it costs inserts, nothing else). */
static int drop_old_ts_index(pg_store *p)
{
    int rc = eb__pg_run0(p->rd, "SET lock_timeout = " PG_LOCK_WAIT);
    if (rc)
        return rc;
    PGresult *r = PQexec(p->rd, "DROP INDEX IF EXISTS eb_events_ts");
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = st && !strcmp(st, "55P03") ? 0 : eb__pg_classify(p->rd, r);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !rc)
        EB_WARN("postgresql: the index eb_events_ts of an older version stays until the next "
                "start (another session holds its table)");
    PQclear(r);
    return rc ? rc : eb__pg_run0(p->rd, "SET lock_timeout = 0");
}

/* Creates the tables if needed and reads where the store stands. */
static int load(pg_store *p, eb_store_recovery *rep)
{
    char cols[] = "(seq bigint PRIMARY KEY, ts bigint NOT NULL, type integer NOT NULL, "
                  "flags integer NOT NULL, data bytea NOT NULL)";
    char sql[512];
    int rc = eb__pg_run0(p->rd, "CREATE TABLE IF NOT EXISTS eb_state (name text PRIMARY KEY, "
                         "floor bigint NOT NULL)");
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s %s%s", p->table, cols,
             p->kind == EB_STORE_EVENTS ? " PARTITION BY RANGE (seq)" : "");
    if (!rc)
        rc = eb__pg_run0(p->rd, sql);
    if (!rc && p->kind == EB_STORE_EVENTS)
        rc = drop_old_ts_index(p);
    /* Both stores commit batches on several connections, so a crash can
     * keep a batch and lose one before it: durable_seq never passed that
     * gap, so nothing after it was acknowledged, and a record there may
     * depend on one lost in it (a group's ack on its creation; an event
     * whose seq the next leader hands out again). It goes. A gap can only
     * be among the last PG_LANES batches, so EVENTS (a large table) looks
     * only at its last PG_GAP_WINDOW seqs. */
    if (!rc) {
        char tail[96] = "";
        if (p->kind == EB_STORE_EVENTS)
            snprintf(tail, sizeof tail, " WHERE seq >= (SELECT max(seq) FROM %s) - %llu",
                     p->table, (unsigned long long)PG_GAP_WINDOW);
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE seq >= (SELECT min(seq) FROM (SELECT "
                 "seq, lag(seq) OVER (ORDER BY seq) AS prev FROM %s%s) s WHERE seq <> prev + 1)",
                 p->table, p->table, tail);
        rc = eb__pg_run0(p->rd, sql);
    }
    PGresult *r = NULL;
    snprintf(sql, sizeof sql, "SELECT min(seq), max(seq), count(*), (SELECT floor FROM "
             "eb_state WHERE name = '%s'), (SELECT ts FROM %s ORDER BY seq DESC LIMIT 1) "
             "FROM %s", p->table, p->table, p->table);
    if (rc || (rc = eb__pg_run(p->rd, sql, 0, NULL, 0, &r)))
        return rc;
    uint64_t min = eb__pg_num0(r), max = strtoull(PQgetvalue(r, 0, 1), NULL, 10),
             count = strtoull(PQgetvalue(r, 0, 2), NULL, 10),
             floor = strtoull(PQgetvalue(r, 0, 3), NULL, 10),
             last_ts = strtoull(PQgetvalue(r, 0, 4), NULL, 10);
    PQclear(r);
    uint64_t next = count ? max + 1 : 1;
    if (floor > next)
        next = floor;
    p->next_seq = next;
    eb__pg_cache_init(&p->cache, next);
    eb__pg_cache_init_cap(&p->back, 0, PG_BACK_RECS, PG_BACK_BYTES);
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
        if ((rc = eb__pg_run(p->rd, sql, 0, NULL, 0, &r)))
            return rc;
        p->parts = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
        if (p->parts) {
            p->part_lo = eb__pg_num0(r);
            p->part_hi = strtoull(PQgetvalue(r, 0, 1), NULL, 10) + 1;
        }
        PQclear(r);
    }
    if (rep)
        *rep = (eb_store_recovery){.segments = p->parts, .records = count,
                                   .first_seq = count ? min : 0, .last_seq = count ? max : 0};
    return 0;
}

/* Test knob: smaller partitions, read once (a database made with another
 * size cannot be opened with this one: its partitions' names count theirs). */
static pthread_once_t part_seqs_once = PTHREAD_ONCE_INIT;

static void part_seqs_from_env(void)
{
    const char *ps = getenv("EB_TEST_PG_PART_SEQS");
    if (ps && strtoull(ps, NULL, 10) >= 64)
        eb__store_pg_part_seqs = strtoull(ps, NULL, 10);
}

static int pg_open(const eb_store_opts *o, eb_store **out, eb_store_recovery *rep)
{
    uint64_t t0 = eb_clock_mono_ms();
    pthread_once(&part_seqs_once, part_seqs_from_env);
    pg_store *p = eb_xcalloc(1, sizeof *p);
    p->base.ops = &pg_ops;
    p->kind = o->kind;
    p->uri = eb_xstrdup(o->data_dir);
    p->table = o->kind == EB_STORE_META ? "eb_meta" : "eb_events";
    p->nlanes = o->kind == EB_STORE_EVENTS ? PG_EVENTS_LANES : PG_LANES;
    p->sync = o->sync;
    p->retention_ms = o->retention_ms;
    p->retention_bytes = o->retention_bytes;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->space, NULL);
    pthread_mutex_init(&p->sum_mu, NULL);
    pthread_cond_init(&p->sum_cv, NULL);
    if (o->kind == EB_STORE_EVENTS)
        p->describe = o->describe;
    eb_buf_init(&p->pend.copy);
    for (int i = 0; i < PG_LANES; i++) {
        p->lanes[i].p = p;
        eb_buf_init(&p->lanes[i].work.copy);
    }
    eb__keyidx_init(&p->kidx);
    eb__pg_cache_init(&p->cache, 0);
    eb__pg_cache_init_cap(&p->back, 0, PG_BACK_RECS, PG_BACK_BYTES);
    char err[256];
    int rc = 0;
    if (!(p->rd = eb__pg_connect(p->uri, p->sync, err, sizeof err))) {
        EB_ERROR("postgresql: cannot connect: %s", err);
        rc = EB_ECONNECT;
    }
    if (!rc && (rc = eb__pg_connect_wr(p)) == EB_EEXIST)
        EB_ERROR("postgresql (%s store): the database is in use by another eventbusd",
                 p->table);
    /* The lanes' connections, each with its lock, before anything is read
     * (an old leader's lane still committing could land after the read)
     * and before the store counts as open: a lock an old leader's lane
     * still holds fails the open (retried by the caller), not a running
     * store (fenced). */
    for (int i = 1; !rc && i < p->nlanes; i++)
        if ((rc = eb__pg_connect_lane(&p->lanes[i])) == EB_EEXIST)
            EB_ERROR("postgresql (%s store): the database is in use by another eventbusd",
                     p->table);
    if (!rc && (rc = load(p, rep)))
        EB_ERROR("postgresql (%s store): cannot open: %s", p->table,
                 eb__pg_one_line(p->rd, err, sizeof err));
    if (!rc && p->describe && (rc = eb__pg_sum_open(p)))
        EB_ERROR("postgresql (%s store): cannot read the partition summaries: %s", p->table,
                 eb__pg_one_line(p->rd, err, sizeof err));
    /* META commits with a prepared INSERT (store_pg_ins.c): on each
     * connection, now that the table exists (a reconnect prepares it). */
    for (int i = 0; !rc && p->kind == EB_STORE_META && i < p->nlanes; i++)
        rc = eb__pg_prepare_insert(i ? p->lanes[i].c : p->wr, p->table);
    p->opened = !rc;
    p->lane_end = p->kind == EB_STORE_EVENTS ? p->part_hi * PG_PART_SEQS : UINT64_MAX;
    int lanes = 0; /* lane threads made */
    bool writer = !rc && pthread_create(&p->thr, NULL, eb__pg_writer_main, p) == 0;
    if (!rc && !writer)
        rc = EB_ENOMEM;
    for (int i = 1; !rc && i < p->nlanes; i++) {
        if (pthread_create(&p->lanes[i].thr, NULL, eb__pg_lane_main, &p->lanes[i]) != 0)
            rc = EB_ENOMEM;
        else
            lanes++;
    }
    if (rc) {
        pthread_mutex_lock(&p->mu); /* the threads made so far stop */
        p->closing = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        if (writer)
            pthread_join(p->thr, NULL);
        for (int i = 1; i <= lanes; i++)
            pthread_join(p->lanes[i].thr, NULL);
        pg_free(p);
        return rc;
    }
    if (rep) {
        rep->elapsed_ms = (double)(eb_clock_mono_ms() - t0);
        /* what the bus reads at open: the events the summaries do not cover */
        uint64_t from = p->indexed_upto > atomic_load(&p->first) ? p->indexed_upto
                                                                  : atomic_load(&p->first);
        rep->records_read = p->kind == EB_STORE_EVENTS && atomic_load(&p->durable) > from
                                ? atomic_load(&p->durable) - from : 0;
    }
    *out = &p->base;
    return 0;
}

const eb_store_engine eb_store_pg_engine = {"postgresql", pg_open};
