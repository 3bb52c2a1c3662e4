/* test_store.c - the storage engine contract (store.h), run against the
 * embedded log engine (test_store) and, built with EB_TEST_PG, against
 * the PostgreSQL engine (test_store_pg, run by tests/tools/pgcluster.py,
 * which gives it a database in EB_TEST_PG_URI; each test starts from
 * empty tables). Checks about one engine's own files or connections say
 * so and skip on the other. */
#include "runner.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "eventbus/err.h"
#include "store/keyidx.h"
#include "store/store_log.h"

#ifdef EB_TEST_PG
#include <libpq-fe.h>

#include "bus/group.h"
#include "bus/meta.h"
#include "store/store_pg.h"
static const eb_store_engine *const engine = &eb_store_pg_engine;

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Runs sql on the test's database (not through the engine). */
static void pg_sql(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("EB_TEST_PG_URI"));
    CHECK(PQstatus(c) == CONNECTION_OK);
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        eb_test_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The number a query on the test's database answers (NULL: 0). */
static uint64_t pg_num(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("EB_TEST_PG_URI"));
    CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        eb_test_fail(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(c));
    uint64_t n = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10)
                                                      : 0;
    PQclear(r);
    PQfinish(c);
    return n;
}

static const char *store_dir(void)
{
    static bool fresh;
    const char *uri = getenv("EB_TEST_PG_URI");
    if (!uri)
        eb_test_skip("no EB_TEST_PG_URI (run through tests/tools/pgcluster.py)");
    if (!fresh) /* each test (its own process) starts from empty tables */
        pg_sql("DROP TABLE IF EXISTS eb_events, eb_meta, eb_state CASCADE");
    fresh = true;
    return uri;
}
#else
static const eb_store_engine *const engine = &eb_store_log_engine;

static const char *store_dir(void)
{
    return eb_test_tmpdir();
}
#endif

static eb_store *open_store(eb_store_kind kind, eb_store_sync sync, eb_store_recovery *rep)
{
    eb_store_opts o = {.data_dir = store_dir(), .kind = kind, .sync = sync};
    eb_store *s = NULL;
    CHECK_OK(eb_store_open(engine, &o, &s, rep));
    return s;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             done, status;
} waiter;

static void on_done(void *arg, int status)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_done(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* Appends "<tag>-<i>" records [0, n) as one batch and waits until durable;
 * its first seq, its append time in *ts_out. */
static uint64_t append_batch_ts(eb_store *s, const char *tag, int n, bool inline_ok,
                                uint64_t *ts_out)
{
    char text[64][16];
    eb_store_rec_in recs[64];
    for (int i = 0; i < n; i++) {
        int len = snprintf(text[i], sizeof text[i], "%s-%d", tag, i);
        recs[i] = (eb_store_rec_in){5, 0, text[i], (uint32_t)len};
    }
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    uint64_t first = 0, ts = 0;
    int rc = eb_store_append(s, recs, (size_t)n, inline_ok, &first, &ts, on_done, &w);
    CHECK(rc == 0 || (rc == 1 && inline_ok));
    if (rc == 0) {
        wait_done(&w);
        CHECK_EQ(w.status, 0);
    }
    CHECK_EQ(w.done, rc == 0); /* rc 1: the callback never fires */
    CHECK(ts > 0);
    *ts_out = ts;
    return first;
}

static uint64_t append_batch(eb_store *s, const char *tag, int n, bool inline_ok)
{
    uint64_t ts;
    return append_batch_ts(s, tag, n, inline_ok, &ts);
}

typedef struct seen {
    uint64_t seqs[256];
    char     data[256][16];
    size_t   n, stop_after;
} seen;

static int visit(void *arg, const eb_store_rec *r)
{
    seen *v = arg;
    v->seqs[v->n] = r->seq;
    memcpy(v->data[v->n], r->data, r->len < 15 ? r->len : 15);
    v->n++;
    return v->stop_after && v->n >= v->stop_after;
}

/* Appends are numbered from 1, durable on completion, read back in order,
 * and a scan stops when asked. */
TEST(store_appends_scans_in_order)
{
    eb_store_recovery rep;
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, &rep);
    CHECK_EQ(rep.records, 0);
    CHECK_EQ(eb_store_first_seq(s), 1);
    CHECK_EQ(eb_store_next_seq(s), 1);
    CHECK_EQ(append_batch(s, "a", 3, false), 1);
    CHECK_EQ(append_batch(s, "b", 2, true), 4); /* ALWAYS: never inline, cb fires */
    CHECK_EQ(eb_store_durable_seq(s), 6);
    seen v = {.stop_after = 0};
    CHECK_OK(eb_store_scan(s, 2, 100, visit, &v));
    CHECK_EQ(v.n, 4);
    CHECK_EQ(v.seqs[0], 2);
    CHECK_STR(v.data[0], "a-1");
    CHECK_STR(v.data[3], "b-1");
    seen w = {.stop_after = 2};
    CHECK_OK(eb_store_scan(s, 1, 100, visit, &w));
    CHECK_EQ(w.n, 2);
    eb_store_stats st;
    eb_store_stats_get(s, &st);
    /* The size comes from the engine's housekeeping (PostgreSQL: run by the
     * writer thread soon after the first commit, whichever lane made it). */
    for (int i = 0; i < 500 && !st.bytes; i++) {
        usleep(10000);
        eb_store_stats_get(s, &st);
    }
    CHECK(st.bytes > 0);
    CHECK(st.syncs > 0);
    eb_store_close(s);
    s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, &rep); /* reopen: all there */
    CHECK_EQ(rep.records, 5);
    CHECK_EQ(rep.last_seq, 5);
    CHECK_EQ(eb_store_next_seq(s), 6);
    eb_store_close(s);
}

/* inline_ok under INTERVAL: durable at once (1, no callback) when idle. */
TEST(store_inline_append_is_durable_at_once)
{
    eb_store *s = open_store(EB_STORE_META, EB_STORE_SYNC_INTERVAL, NULL);
    append_batch(s, "m", 4, true);
    CHECK_EQ(eb_store_durable_seq(s), 5);
    seen v = {.stop_after = 0};
    CHECK_OK(eb_store_scan(s, 1, 100, visit, &v));
    CHECK_EQ(v.n, 4);
    CHECK_OK(eb_store_drop_before(s, 3)); /* compaction may keep them: no error */
    eb_store_close(s);
}

/* seek_time finds the first record at or after a time; later than all is
 * EB_ENOTFOUND. */
TEST(store_seek_time)
{
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_NEVER, NULL);
    append_batch(s, "x", 2, false);
    uint64_t seq = 0;
    CHECK_OK(eb_store_seek_time(s, 0, &seq));
    CHECK_EQ(seq, 1);
    CHECK_EQ(eb_store_seek_time(s, UINT64_MAX / 2, &seq), EB_ENOTFOUND);
    eb_store_close(s);
}

/* seek_time over batches of different sizes and times (on PostgreSQL
 * across partitions of 4 seqs: a binary search on seq, no index on ts):
 * a batch's own time, just before it and just after it find the first
 * record at or after that time; past the last, EB_ENOTFOUND. */
TEST(store_seek_time_finds_each_batch)
{
#ifdef EB_TEST_PG
    eb__store_pg_part_seqs = 4;
#endif
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_NEVER, NULL);
    enum { NB = 12 };
    uint64_t first[NB], ts[NB], seq = 0;
    for (int i = 0; i < NB; i++) {
        first[i] = append_batch_ts(s, "t", 1 + (i * 5) % 7, false, &ts[i]);
        CHECK(i == 0 || ts[i] > ts[i - 1] + 1);
        usleep(2000); /* the next batch's time is later */
    }
    for (int i = 0; i < NB; i++) {
        CHECK_OK(eb_store_seek_time(s, ts[i], &seq));
        CHECK_EQ(seq, first[i]);
        CHECK_OK(eb_store_seek_time(s, ts[i] - 1, &seq));
        CHECK_EQ(seq, first[i]);
        if (i + 1 < NB) {
            CHECK_OK(eb_store_seek_time(s, ts[i] + 1, &seq));
            CHECK_EQ(seq, first[i + 1]);
        } else {
            CHECK_EQ(eb_store_seek_time(s, ts[i] + 1, &seq), EB_ENOTFOUND);
        }
    }
    CHECK_OK(eb_store_seek_time(s, 0, &seq));
    CHECK_EQ(seq, first[0]);
    eb_store_close(s);
}

TEST(key_lookup_versions_trim_and_ids)
{
    eb_keyidx x;
    eb__keyidx_init(&x);
    uint64_t seqs[16], first = 0;
    CHECK_EQ(eb__keyidx_version(&x, "a", 1), 0);
    /* Format-1 records (version 0) count from 1; format 2 carry theirs. */
    CHECK_OK(eb__keyidx_add(&x, "a", 1, 0, 10));
    CHECK_OK(eb__keyidx_add(&x, "a", 1, 0, 12));
    CHECK_OK(eb__keyidx_add(&x, "a", 1, 3, 15));
    CHECK_OK(eb__keyidx_add(&x, "b", 1, 7, 16)); /* older ones retained no more */
    CHECK_EQ(eb__keyidx_version(&x, "a", 1), 3);
    CHECK_EQ(eb__keyidx_version(&x, "b", 1), 7);
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 0, 1, 100, seqs, 16, &first), 3);
    CHECK(first == 1 && seqs[0] == 10 && seqs[2] == 15);
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 2, 1, 100, seqs, 1, &first), 1);
    CHECK(first == 2 && seqs[0] == 12);
    /* Not durable yet (below_seq) is not handed out. */
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 0, 1, 15, seqs, 16, &first), 2);
    /* Retention removed seqs below 13: trimmed, the version stays. */
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 0, 13, 100, seqs, 16, &first), 1);
    CHECK(first == 3 && seqs[0] == 15);
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 0, 20, 100, seqs, 16, &first), 0);
    CHECK_EQ(eb__keyidx_version(&x, "a", 1), 3);
    CHECK_OK(eb__keyidx_add(&x, "a", 1, 4, 30));
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 0, 20, 100, seqs, 16, &first), 1);
    CHECK(first == 4 && seqs[0] == 30);
    /* A gap in versions (records lost to damage) restarts the stream there. */
    CHECK_OK(eb__keyidx_add(&x, "a", 1, 9, 31));
    CHECK_EQ(eb__keyidx_range(&x, "a", 1, 0, 1, 100, seqs, 16, &first), 1);
    CHECK(first == 9 && seqs[0] == 31);
    CHECK_EQ(eb__keyidx_range(&x, "zz", 2, 0, 1, 100, seqs, 16, &first), 0);
    /* Ids: the newest event of an id wins. */
    CHECK_OK(eb__keyidx_add_id(&x, "id-1", 4, 10));
    CHECK_OK(eb__keyidx_add_id(&x, "id-2", 4, 11));
    CHECK_OK(eb__keyidx_add_id(&x, "id-1", 4, 40));
    CHECK(eb__keyidx_find_id(&x, "id-1", 4, UINT64_MAX) == 40 &&
          eb__keyidx_find_id(&x, "id-2", 4, UINT64_MAX) == 11);
    CHECK(eb__keyidx_find_id(&x, "id-1", 4, 40) == 10); /* the older one, below 40 */
    CHECK(eb__keyidx_find_id(&x, "id-1", 4, 10) == 0);
    CHECK(eb__keyidx_find_id(&x, "id-3", 4, UINT64_MAX) == 0);
    /* (source, id): each source's newest; no source is the empty one; the
     * length prefix keeps ("a", "bc") and ("ab", "c") apart. */
    CHECK_OK(eb__keyidx_add_source_id(&x, "a", 1, "bc", 2, 50));
    CHECK_OK(eb__keyidx_add_source_id(&x, "ab", 2, "c", 1, 51));
    CHECK_OK(eb__keyidx_add_source_id(&x, NULL, 0, "bc", 2, 52));
    CHECK_OK(eb__keyidx_add_source_id(&x, "a", 1, "bc", 2, 53));
    CHECK(eb__keyidx_find_source_id(&x, "a", 1, "bc", 2, UINT64_MAX) == 53);
    CHECK(eb__keyidx_find_source_id(&x, "a", 1, "bc", 2, 53) == 50);
    CHECK(eb__keyidx_find_source_id(&x, "ab", 2, "c", 1, UINT64_MAX) == 51);
    CHECK(eb__keyidx_find_source_id(&x, "", 0, "bc", 2, UINT64_MAX) == 52);
    CHECK(eb__keyidx_find_source_id(&x, "b", 1, "bc", 2, UINT64_MAX) == 0);
    CHECK(eb__keyidx_source_id_hash("a", 1, "bc", 2) != eb__keyidx_source_id_hash("ab", 2, "c", 1));
    CHECK(eb__keyidx_source_id_hash(NULL, 0, "x", 1) == eb__keyidx_source_id_hash("", 0, "x", 1));
    eb__keyidx_free(&x);
}

/* Forced collisions (2-bit hashes: 4 of them for 40 ids): every hash's
 * events are chained newest first, so walking below each wrong hit finds
 * each event; one reported out of order goes in its place. */
TEST(keyidx_collisions_are_chained)
{
    eb__keyidx_test_hash_bits(2);
    eb_keyidx x;
    eb__keyidx_init(&x);
    char id[16];
    for (int i = 0; i < 40; i++) {
        int n = snprintf(id, sizeof id, "c-%d", i);
        CHECK_OK(eb__keyidx_add_source_id(&x, "s", 1, id, (size_t)n, 100 + (uint64_t)i * 2));
        CHECK_OK(eb__keyidx_add_id(&x, id, (size_t)n, 100 + (uint64_t)i * 2));
    }
    CHECK_OK(eb__keyidx_add_id(&x, "late", 4, 101)); /* out of order */
    CHECK_OK(eb__keyidx_add_id(&x, "late", 4, 101)); /* and again: ignored */
    size_t walked = 0;
    for (int i = 0; i < 40; i++) {
        int n = snprintf(id, sizeof id, "c-%d", i);
        uint64_t want = 100 + (uint64_t)i * 2, seq = UINT64_MAX, by_id = UINT64_MAX;
        do {
            seq = eb__keyidx_find_source_id(&x, "s", 1, id, (size_t)n, seq);
            walked++;
        } while (seq && seq != want);
        CHECK_EQ(seq, want);
        do
            by_id = eb__keyidx_find_id(&x, id, (size_t)n, by_id);
        while (by_id && by_id != want);
        CHECK_EQ(by_id, want);
    }
    CHECK(walked > 40); /* there were collisions to walk */
    uint64_t seq = UINT64_MAX;
    do
        seq = eb__keyidx_find_id(&x, "late", 4, seq);
    while (seq && seq != 101);
    CHECK_EQ(seq, 101);
    eb__keyidx_free(&x);
    eb__keyidx_test_hash_bits(0);
}

/* Ids wait unput until lookups come: found while waiting, put as they
 * come once a lookup came (the backlog drained too), found across the
 * maps and the waiting list (colliding hashes walked through both), and
 * dropped unput by a cut that covers them. */
TEST(keyidx_ids_wait_until_lookups_come)
{
    eb__keyidx_test_hash_bits(6); /* collisions across both */
    eb_keyidx x;
    eb__keyidx_init(&x);
    char id[16];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(id, sizeof id, "w-%d", i);
        CHECK_OK(eb__keyidx_add_id(&x, id, (size_t)n, 10 + (uint64_t)i));
    }
    CHECK_EQ(x.npend - x.phead, 5000); /* nothing put: no lookup yet */
    CHECK_EQ(eb__keyidx_ids_held(&x), 5000);
    uint64_t seq = UINT64_MAX; /* found while waiting, collisions walked */
    do
        seq = eb__keyidx_find_id(&x, "w-17", 4, seq);
    while (seq && seq != 27);
    CHECK_EQ(seq, 27);
    CHECK_EQ(x.npend - x.phead, 5000); /* read, not put */
    for (int i = 5000; i < 10000; i++) {
        int n = snprintf(id, sizeof id, "w-%d", i);
        CHECK_OK(eb__keyidx_add_id(&x, id, (size_t)n, 10 + (uint64_t)i));
    }
    CHECK(x.npend - x.phead < EB_KEYIDX_PENDING); /* eager: the backlog drained */
    for (int i = 0; i < 10000; i += 7) { /* every one found, from either place */
        int n = snprintf(id, sizeof id, "w-%d", i);
        seq = UINT64_MAX;
        do
            seq = eb__keyidx_find_id(&x, id, (size_t)n, seq);
        while (seq && seq != 10 + (uint64_t)i);
        CHECK_EQ(seq, 10 + (uint64_t)i);
    }
    /* A cut: lazy again; the waiting ids it covers go unput. */
    eb__keyidx_ids_cut(&x, 10 + 10000);
    CHECK_EQ(eb__keyidx_ids_held(&x), 0);
    for (int i = 10000; i < 10300; i++) {
        int n = snprintf(id, sizeof id, "w-%d", i);
        CHECK_OK(eb__keyidx_add_id(&x, id, (size_t)n, 10 + (uint64_t)i));
    }
    CHECK_EQ(x.npend - x.phead, 300);
    eb__keyidx_ids_cut(&x, 10 + 10200);
    CHECK_EQ(x.npend - x.phead, 100);
    CHECK_EQ(eb__keyidx_ids_gone_below(&x), 10 + 10200);
    CHECK_EQ(eb__keyidx_find_id(&x, "w-10250", 7, UINT64_MAX) >= 10 + 10200, true);
    eb__keyidx_free(&x);
    eb__keyidx_test_hash_bits(0);
}

/* The lookups through the interface: only durable, retained records are
 * answered; a key's version survives as long as the store has it. */
TEST(store_lookups)
{
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_NEVER, NULL);
    uint64_t first = append_batch(s, "e", 3, false), seqs[8], fv = 0;
    CHECK_OK(eb_store_index_add(s, "k", 1, 1, "id-a", 4, first));
    CHECK_OK(eb_store_index_add(s, NULL, 0, 0, "id-b", 4, first + 1));
    CHECK_OK(eb_store_index_add(s, "k", 1, 2, "id-c", 4, first + 2));
    CHECK_EQ(eb_store_key_version(s, "k", 1), 2);
    CHECK_EQ(eb_store_key_version(s, "nope", 4), 0);
    CHECK_EQ(eb_store_key_seqs(s, "k", 1, 0, seqs, 8, &fv), 2);
    CHECK(fv == 1 && seqs[0] == first && seqs[1] == first + 2);
    CHECK_EQ(eb_store_key_seqs(s, "k", 1, 2, seqs, 8, &fv), 1);
    CHECK(fv == 2 && seqs[0] == first + 2);
    CHECK(eb_store_lookup_id(s, "id-b", 4) == first + 1);
    CHECK(eb_store_lookup_id(s, "id-x", 4) == 0);
    /* By (source, id): one id from two sources and from none. */
    CHECK_OK(eb_store_index_source_id(s, "src-1", 5, "id-a", 4, first));
    CHECK_OK(eb_store_index_source_id(s, "src-2", 5, "id-a", 4, first + 1));
    CHECK_OK(eb_store_index_source_id(s, NULL, 0, "id-a", 4, first + 2));
    CHECK(eb_store_lookup_source_id(s, "src-1", 5, "id-a", 4, UINT64_MAX) == first);
    CHECK(eb_store_lookup_source_id(s, "src-2", 5, "id-a", 4, UINT64_MAX) == first + 1);
    CHECK(eb_store_lookup_source_id(s, "", 0, "id-a", 4, UINT64_MAX) == first + 2);
    CHECK(eb_store_lookup_source_id(s, "src-3", 5, "id-a", 4, UINT64_MAX) == 0);
    /* Below a seq: the next older with the hash. */
    CHECK_OK(eb_store_index_add(s, NULL, 0, 0, "id-b", 4, first + 2));
    CHECK(eb_store_lookup_id_below(s, "id-b", 4, UINT64_MAX) == first + 2);
    CHECK(eb_store_lookup_id_below(s, "id-b", 4, first + 2) == first + 1);
    CHECK(eb_store_lookup_id_below(s, "id-b", 4, first + 1) == 0);
    /* Not appended (past the durable seq): not answered. */
    CHECK_OK(eb_store_index_add(s, "k", 1, 3, "id-d", 4, first + 10));
    CHECK_OK(eb_store_index_source_id(s, "src-1", 5, "id-d", 4, first + 10));
    CHECK_EQ(eb_store_key_seqs(s, "k", 1, 3, seqs, 8, &fv), 0);
    CHECK(eb_store_lookup_id(s, "id-d", 4) == 0);
    CHECK(eb_store_lookup_source_id(s, "src-1", 5, "id-d", 4, UINT64_MAX) == 0);
    eb_store_close(s);
}

#ifdef EB_TEST_PG
static int store_error(eb_store *s)
{
    eb_store_stats st;
    eb_store_stats_get(s, &st);
    return st.error;
}

/* Appends n records and returns the callback's status (or append's error). */
static int try_append(eb_store *s, int n, uint64_t *first)
{
    eb_store_rec_in recs[8];
    for (int i = 0; i < n; i++)
        recs[i] = (eb_store_rec_in){5, 0, "r", 1};
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    uint64_t ts = 0;
    int rc = eb_store_append(s, recs, (size_t)n, false, first, &ts, on_done, &w);
    if (rc)
        return rc;
    wait_done(&w);
    return w.status;
}

/* The database drops every connection of the store: appends fail with
 * EB_ECONNECT (never a wrong success), stats say so, the engine reconnects
 * by itself, the seqs go on without a gap or a duplicate, and what was
 * acknowledged is all there. */
static void reconnects(eb_store_kind kind)
{
    eb_store *s = open_store(kind, EB_STORE_SYNC_ALWAYS, NULL);
    CHECK_EQ(append_batch(s, "a", 3, false), 1);
    pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE application_name = 'eventbusd'");
    int failed = 0, ok = 0;
    uint64_t acked = 4;
    for (int i = 0; i < 2000 && ok < 3; i++) {
        uint64_t first = 0;
        int rc = try_append(s, 2, &first);
        if (rc == 0) {
            CHECK_EQ(first, acked); /* the seqs of failed appends were handed out again */
            acked += 2;
            ok++;
        } else {
            CHECK_EQ(rc, EB_ECONNECT);
            failed++;
            usleep(5000);
        }
    }
    CHECK_EQ(ok, 3);
    CHECK_EQ(store_error(s), 0);
    CHECK_EQ(eb_store_durable_seq(s), acked);
    seen v = {.stop_after = 0};
    CHECK_OK(eb_store_scan(s, 1, 100, visit, &v)); /* the reader reconnects too */
    CHECK_EQ(v.n, acked - 1);
    for (size_t i = 0; i < v.n; i++)
        CHECK_EQ(v.seqs[i], i + 1);
    eb_store_close(s);
    s = open_store(kind, EB_STORE_SYNC_ALWAYS, NULL);
    CHECK_EQ(eb_store_next_seq(s), acked);
    seen w = {.stop_after = 0}; /* from the table now, not the cache of the newest */
    CHECK_OK(eb_store_scan(s, 2, 100, visit, &w));
    CHECK_EQ(w.n, acked - 2);
    for (size_t i = 0; i < w.n; i++)
        CHECK(w.seqs[i] == i + 2 && !memcmp(w.data[i], v.data[i + 1], 16));
    eb_store_close(s);
    (void)failed; /* 0 if the writer noticed before the first append */
}

TEST(pg_store_reconnects_after_losing_the_database)
{
    reconnects(EB_STORE_EVENTS);
}

/* META commits with a statement prepared on each connection
 * (store_pg_ins.c): a new connection prepares it again. */
TEST(pg_store_meta_reconnects_after_losing_the_database)
{
    reconnects(EB_STORE_META);
}

/* Appends n records "r-<i>" (i from 0) padded with 'x' to size bytes, in
 * batches of 64, each waited for. */
static void append_sized(eb_store *s, int n, size_t size)
{
    char *buf = malloc(64 * size);
    for (int i = 0; i < n; i += 64) {
        eb_store_rec_in recs[64];
        int k = n - i < 64 ? n - i : 64;
        for (int j = 0; j < k; j++) {
            char *d = buf + (size_t)j * size;
            memset(d, 'x', size);
            int len = snprintf(d, size, "r-%d", i + j);
            d[len] = 'x';
            recs[j] = (eb_store_rec_in){5, 0, d, (uint32_t)size};
        }
        waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
        uint64_t first = 0, ts = 0;
        CHECK_OK(eb_store_append(s, recs, (size_t)k, false, &first, &ts, on_done, &w));
        wait_done(&w);
        CHECK_EQ(w.status, 0);
        CHECK_EQ(first, (uint64_t)i + 1);
    }
    free(buf);
}

/* A reader of the records "r-<seq - 1>" of size bytes: checks each one and
 * stops after `want` (as a group's fill stops once it has a pull's worth). */
typedef struct cursor {
    uint64_t next;
    size_t   size, got, want;
} cursor;

static int read_sized(void *arg, const eb_store_rec *r)
{
    cursor *c = arg;
    char head[32];
    int len = snprintf(head, sizeof head, "r-%llu", (unsigned long long)(r->seq - 1));
    if (r->seq != c->next || r->len != c->size || memcmp(r->data, head, (size_t)len) ||
        ((const char *)r->data)[len] != 'x')
        eb_test_fail(__FILE__, __LINE__, "seq %llu (expected %llu), %u bytes",
                     (unsigned long long)r->seq, (unsigned long long)c->next, r->len);
    c->next++;
    return ++c->got >= c->want;
}

/* Reads [c->next, end) as pulls of want records each. */
static void read_all(eb_store *s, cursor *c, uint64_t end)
{
    while (c->next < end) {
        uint64_t before = c->next;
        c->got = 0;
        CHECK_OK(eb_store_scan(s, c->next, 1024, read_sized, c));
        CHECK(c->next > before);
    }
}

/* A backlog below the cache of the newest records (here: all of it, after
 * a reopen) is read from the table in chunks into the backlog window, once
 * for all the readers going through it together, not a query per pull and
 * reader (each pull of 100 read 1,000 rows and used 100 before). Readers
 * far apart read it right too. */
TEST(pg_store_backlog_is_read_in_chunks_once_for_all_readers)
{
    const int n = 10000;
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, NULL);
    append_sized(s, n, 100);
    eb_store_close(s);
    s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, NULL);
    cursor c[3] = {{1, 100, 0, 100}, {1, 100, 0, 100}, {1, 100, 0, 100}};
    uint64_t q0 = eb__store_pg_read_queries(s);
    while (c[2].next <= (uint64_t)n) /* three groups, pull by pull, in turn */
        for (int i = 0; i < 3; i++) {
            c[i].got = 0;
            CHECK_OK(eb_store_scan(s, c[i].next, 1024, read_sized, &c[i]));
        }
    CHECK_EQ(c[0].next, (uint64_t)n + 1);
    uint64_t queries = eb__store_pg_read_queries(s) - q0;
    /* 3 readers × 100 pulls of 100 read 30,000 records: a query per 1,000
     * records at the most (chunks of 2,048: 5, and the read-ahead's end). */
    CHECK(queries >= 1 && queries * 1000 <= (uint64_t)n);
    cursor far[2] = {{1, 100, 0, 100}, {(uint64_t)n - 300, 100, 0, 100}};
    for (int round = 0; round < 3; round++) /* apart by 9,700: each reads its own */
        for (int i = 0; i < 2; i++) {
            far[i].got = 0;
            CHECK_OK(eb_store_scan(s, far[i].next, 1024, read_sized, &far[i]));
        }
    read_all(s, &far[0], (uint64_t)n + 1);
    read_all(s, &far[1], (uint64_t)n + 1);
    eb_store_close(s);
}

/* Records larger than the backlog window holds in one chunk (24 of 1 MiB
 * against 16 MiB) are all read, in order, each once per pass. */
TEST(pg_store_backlog_of_records_past_the_window)
{
    const int n = 24;
    const size_t size = 1u << 20;
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, NULL);
    append_sized(s, n, size);
    eb_store_close(s);
    s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, NULL);
    cursor c = {1, size, 0, 1000};
    read_all(s, &c, (uint64_t)n + 1);
    cursor one = {1, size, 0, 1}; /* again, a record a pull */
    read_all(s, &one, (uint64_t)n + 1);
    eb_store_close(s);
}

/* A database that cannot be reached: open fails with EB_ECONNECT. */
TEST(pg_store_open_unreachable)
{
    store_dir();
    eb_store_opts o = {.data_dir = "postgresql://eb@/none?host=/nonexistent-eb-dir",
                       .kind = EB_STORE_EVENTS};
    eb_store *s = NULL;
    CHECK_EQ(eb_store_open(engine, &o, &s, NULL), EB_ECONNECT);
}

/* One node per database: a second open of the same store is refused
 * while the first holds it, and allowed once it is closed. */
TEST(pg_store_second_node_refused)
{
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_ALWAYS, NULL);
    eb_store_opts o = {.data_dir = store_dir(), .kind = EB_STORE_EVENTS};
    eb_store *t = NULL;
    CHECK_EQ(eb_store_open(engine, &o, &t, NULL), EB_EEXIST);
    o.kind = EB_STORE_META; /* the other store is another lock */
    CHECK_OK(eb_store_open(engine, &o, &t, NULL));
    eb_store_close(t);
    eb_store_close(s);
    o.kind = EB_STORE_EVENTS;
    CHECK_OK(eb_store_open(engine, &o, &t, NULL));
    eb_store_close(t);
}

/* A database made by an older version has an index on eb_events (ts):
 * the open drops it (it only cost every insert) and seeks still work. */
TEST(pg_store_open_drops_the_old_ts_index)
{
    store_dir();
    pg_sql("CREATE TABLE eb_events (seq bigint PRIMARY KEY, ts bigint NOT NULL, type integer "
           "NOT NULL, flags integer NOT NULL, data bytea NOT NULL) PARTITION BY RANGE (seq); "
           "CREATE INDEX eb_events_ts ON eb_events (ts); CREATE TABLE eb_events_p0 PARTITION "
           "OF eb_events FOR VALUES FROM (0) TO (65536); INSERT INTO eb_events VALUES "
           "(1, 100, 5, 0, 'a'), (2, 200, 5, 0, 'b'), (3, 200, 5, 0, 'c')");
    CHECK_EQ(pg_num("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'eb_events%ts%'"), 2);
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_NEVER, NULL);
    CHECK_EQ(pg_num("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'eb_events%ts%'"), 0);
    uint64_t seq = 0;
    CHECK_OK(eb_store_seek_time(s, 150, &seq));
    CHECK_EQ(seq, 2);
    CHECK_EQ(eb_store_next_seq(s), 4);
    eb_store_close(s);
}

/* While another session holds the table, the old index stays (the DROP
 * waits a second, not forever) and the store opens and works anyway; the
 * next open drops it. */
TEST(pg_store_open_keeps_the_old_ts_index_while_the_table_is_held)
{
    store_dir();
    pg_sql("CREATE TABLE eb_events (seq bigint PRIMARY KEY, ts bigint NOT NULL, type integer "
           "NOT NULL, flags integer NOT NULL, data bytea NOT NULL) PARTITION BY RANGE (seq); "
           "CREATE INDEX eb_events_ts ON eb_events (ts); CREATE TABLE eb_events_p0 PARTITION "
           "OF eb_events FOR VALUES FROM (0) TO (65536)");
    PGconn *c = PQconnectdb(getenv("EB_TEST_PG_URI"));
    CHECK(PQstatus(c) == CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN"));
    PGresult *r = PQexec(c, "LOCK TABLE eb_events IN ACCESS SHARE MODE");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    eb_store *s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_NEVER, NULL);
    CHECK_EQ(pg_num("SELECT count(*) FROM pg_indexes WHERE indexname = 'eb_events_ts'"), 1);
    PQfinish(c); /* the table is free again */
    CHECK_EQ(append_batch(s, "k", 3, false), 1);
    uint64_t seq = 0;
    CHECK_OK(eb_store_seek_time(s, 0, &seq));
    CHECK_EQ(seq, 1);
    eb_store_close(s);
    s = open_store(EB_STORE_EVENTS, EB_STORE_SYNC_NEVER, NULL);
    CHECK_EQ(pg_num("SELECT count(*) FROM pg_indexes WHERE indexname = 'eb_events_ts'"), 0);
    eb_store_close(s);
}

/* Retention drops whole partitions (4 seqs each here), oldest first,
 * never the newest nor one that holds seqs not yet durable; first_seq
 * follows, reads start there, a reopen finds the same, the seqs go on. */
TEST(pg_store_retention_drops_partitions)
{
    eb__store_pg_part_seqs = 4;
    eb_store_opts o = {.data_dir = store_dir(), .kind = EB_STORE_EVENTS,
                       .sync = EB_STORE_SYNC_ALWAYS, .retention_bytes = 1};
    eb_store *s = NULL;
    CHECK_OK(eb_store_open(engine, &o, &s, NULL));
    for (int i = 0; i < 5; i++)
        append_batch(s, "r", 4, false); /* seqs 1..20: partitions [0,4) .. [20,24) */
    eb_store_stats st = {0};
    for (int i = 0; i < 200 && (eb_store_first_seq(s) < 20 || st.segments != 1); i++) {
        usleep(100 * 1000); /* the writer looks once a second */
        eb_store_stats_get(s, &st);
    }
    CHECK_EQ(eb_store_first_seq(s), 20); /* all but the newest partition, [20,24) */
    CHECK_EQ(st.segments, 1);
    seen v = {.stop_after = 0};
    CHECK_OK(eb_store_scan(s, 1, 100, visit, &v));
    CHECK(v.n == 1 && v.seqs[0] == 20);
    eb_store_close(s);
    eb_store_recovery rep;
    o.retention_bytes = 0;
    CHECK_OK(eb_store_open(engine, &o, &s, &rep));
    CHECK(rep.first_seq == 20 && rep.records == 1 && rep.segments == 1);
    CHECK_EQ(eb_store_next_seq(s), 21);
    CHECK_EQ(append_batch(s, "n", 4, false), 21); /* 21..24: [24,28) made */
    usleep(1500 * 1000);
    CHECK_EQ(eb_store_first_seq(s), 20); /* no retention: kept */
    eb_store_close(s);
    /* By age: older than 1 ms goes, but never the newest partition. */
    o.retention_ms = 1;
    CHECK_OK(eb_store_open(engine, &o, &s, NULL));
    for (int i = 0; i < 200 && eb_store_first_seq(s) < 24; i++)
        usleep(100 * 1000);
    CHECK_EQ(eb_store_first_seq(s), 24);
    CHECK_EQ(eb_store_next_seq(s), 25);
    eb_store_close(s);
}

/* META compaction deletes rows: after drop_before and a reopen, first_seq
 * is there and next_seq goes on. */
TEST(pg_store_meta_drop_before_deletes)
{
    eb_store *s = open_store(EB_STORE_META, EB_STORE_SYNC_ALWAYS, NULL);
    append_batch(s, "m", 6, false);
    CHECK_OK(eb_store_drop_before(s, 5));
    CHECK_EQ(eb_store_first_seq(s), 5);
    seen v = {.stop_after = 0};
    CHECK_OK(eb_store_scan(s, 1, 100, visit, &v));
    CHECK_EQ(v.n, 2);
    eb_store_close(s); /* deleted within a second, or at close */
    eb_store_recovery rep;
    s = open_store(EB_STORE_META, EB_STORE_SYNC_ALWAYS, &rep);
    CHECK_EQ(rep.records, 2);
    CHECK_EQ(eb_store_first_seq(s), 5);
    CHECK_EQ(eb_store_next_seq(s), 7);
    eb_store_close(s);
}

/* drop_before while appends are in flight: the rows below go as the
 * writer's next job, before any append made after the call commits (not
 * at a later housekeeping tick, which a node killed meanwhile never
 * reaches: CI saw the compaction of test_groups' snapshot test lost so). */
TEST(pg_store_meta_drop_before_is_the_next_job)
{
    eb_store *s = open_store(EB_STORE_META, EB_STORE_SYNC_ALWAYS, NULL);
    append_batch(s, "m", 6, false); /* 1..6 */
    waiter w[4];
    for (int i = 0; i < 4; i++) { /* 7..10, in flight */
        w[i] = (waiter){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
        eb_store_rec_in r = {5, 0, "f", 1};
        uint64_t first = 0, ts = 0;
        CHECK_OK(eb_store_append(s, &r, 1, false, &first, &ts, on_done, &w[i]));
        CHECK_EQ(first, 7 + (uint64_t)i);
    }
    CHECK_OK(eb_store_drop_before(s, 5));
    CHECK_EQ(append_batch(s, "n", 1, false), 11);
    for (int i = 0; i < 4; i++) {
        wait_done(&w[i]);
        CHECK_EQ(w[i].status, 0);
    }
    CHECK_EQ(pg_num("SELECT min(seq) FROM eb_meta"), 5);
    CHECK_EQ(pg_num("SELECT count(*) FROM eb_meta"), 7);
    CHECK_OK(eb_store_drop_before(s, 9));
    CHECK_EQ(append_batch(s, "o", 1, false), 12);
    CHECK_EQ(pg_num("SELECT min(seq) FROM eb_meta"), 9);
    eb_store_close(s);
}

typedef struct order_seen {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    uint64_t        next;   /* the seq whose completion is due next */
    int             n, bad;
} order_seen;

typedef struct order_arg {
    order_seen *o;
    uint64_t    seq;
    eb_store   *s;
} order_arg;

static void on_order(void *arg, int status)
{
    order_arg *a = arg;
    order_seen *o = a->o;
    pthread_mutex_lock(&o->mu);
    /* in seq order, and durable_seq already past it */
    if (status || a->seq != o->next || eb_store_durable_seq(a->s) <= a->seq)
        o->bad++;
    o->next = a->seq + 1;
    o->n++;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* Both stores commit batches on several connections at once: completions
 * still come in seq order, each once durable_seq has passed it, and a
 * reopen finds every record. */
static void lanes_complete_in_order(eb_store_kind kind)
{
    eb_store *s = open_store(kind, EB_STORE_SYNC_ALWAYS, NULL);
    enum { N = 400 };
    static order_arg args[N];
    order_seen o = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 0, 0};
    for (int i = 0; i < N; i++) {
        eb_store_rec_in r = {5, 0, "lane", 4};
        uint64_t first = 0, ts = 0;
        args[i] = (order_arg){&o, 0, s};
        pthread_mutex_lock(&o.mu); /* args[i].seq set before its callback reads it */
        CHECK_OK(eb_store_append(s, &r, 1, false, &first, &ts, on_order, &args[i]));
        args[i].seq = first;
        pthread_mutex_unlock(&o.mu);
        CHECK_EQ(first, (uint64_t)i + 1);
        if (i % 7 == 0)
            usleep(200); /* batches of several sizes */
    }
    pthread_mutex_lock(&o.mu);
    while (o.n < N)
        pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);
    CHECK_EQ(o.bad, 0);
    CHECK_EQ(eb_store_durable_seq(s), N + 1);
    eb_store_close(s);
    eb_store_recovery rep;
    s = open_store(kind, EB_STORE_SYNC_ALWAYS, &rep);
    CHECK_EQ(rep.records, N);
    eb_store_close(s);
}

TEST(pg_store_meta_lanes_complete_in_order)
{
    lanes_complete_in_order(EB_STORE_META);
}

TEST(pg_store_events_lanes_complete_in_order)
{
    lanes_complete_in_order(EB_STORE_EVENTS);
}

/* A crash while batches were committing on several connections can keep
 * a batch past one that was lost: nothing past the gap was ever
 * acknowledged, and the open deletes it (and hands its seqs out again).
 * META and EVENTS alike. */
static void open_cuts_at_a_gap(eb_store_kind kind, const char *table)
{
    eb_store *s = open_store(kind, EB_STORE_SYNC_ALWAYS, NULL);
    append_batch(s, "m", 3, false); /* 1..3 */
    eb_store_close(s);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (5, 1, 5, 0, 'x'), (6, 1, 5, 0, 'y')",
             table); /* 4 lost */
    pg_sql(sql);
    eb_store_recovery rep;
    s = open_store(kind, EB_STORE_SYNC_ALWAYS, &rep);
    CHECK_EQ(rep.records, 3);
    CHECK_EQ(eb_store_next_seq(s), 4);
    CHECK_EQ(append_batch(s, "n", 1, false), 4);
    eb_store_close(s);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    CHECK_EQ(pg_num(sql), 4);
}

TEST(pg_store_meta_open_cuts_at_a_gap)
{
    open_cuts_at_a_gap(EB_STORE_META, "eb_meta");
}

TEST(pg_store_events_open_cuts_at_a_gap)
{
    open_cuts_at_a_gap(EB_STORE_EVENTS, "eb_events");
}

static int count_replayed(void *arg, uint16_t kind, uint64_t seq, const eb_json *rec)
{
    (void)kind;
    (void)seq;
    (void)rec;
    ++*(int *)arg;
    return 0;
}

/* A node stopped after a snapshot committed but before its rows below
 * were deleted (kill -9 then): the next open of the meta log replays
 * everything and drops what is before the newest snapshot itself. */
TEST(pg_meta_open_drops_before_the_newest_snapshot)
{
    eb_store *s = open_store(EB_STORE_META, EB_STORE_SYNC_ALWAYS, NULL);
    const char *recs[][2] = {{"33", "{}"}, {"42", "{}"}, {"33", "{}"}, {"42", "{}"},
                             {"33", "{}"}};
    for (size_t i = 0; i < 5; i++) {
        eb_store_rec_in r = {(uint16_t)atoi(recs[i][0]), 0, recs[i][1], 2};
        waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
        uint64_t first = 0, ts = 0;
        CHECK_OK(eb_store_append(s, &r, 1, false, &first, &ts, on_done, &w));
        wait_done(&w);
        CHECK_EQ(w.status, 0);
    }
    CHECK_EQ(EB_META_SNAP, 42);
    eb_store_close(s); /* no drop_before: as if killed before it */
    eb_store_opts o = {.data_dir = store_dir(), .sync = EB_STORE_SYNC_ALWAYS};
    eb_meta *m = NULL;
    int replayed = 0;
    CHECK_OK(eb_meta_open(engine, &o, &m, NULL, count_replayed, &replayed));
    CHECK_EQ(replayed, 5);
    eb_meta_close(m); /* the deletion asked for is done at the latest by the close */
    CHECK_EQ(pg_num("SELECT min(seq) FROM eb_meta"), 4);
    replayed = 0;
    CHECK_OK(eb_meta_open(engine, &o, &m, NULL, count_replayed, &replayed));
    CHECK_EQ(replayed, 2); /* from the snapshot on */
    eb_meta_close(m);
}
#endif

#ifdef EB_TEST_PG
#define PG_TESTS , T(pg_store_reconnects_after_losing_the_database), \
                 T(pg_store_meta_reconnects_after_losing_the_database), \
                 T(pg_store_backlog_is_read_in_chunks_once_for_all_readers), \
                 T(pg_store_backlog_of_records_past_the_window), T(pg_store_open_unreachable), \
                 T(pg_store_second_node_refused), T(pg_store_retention_drops_partitions), \
                 T(pg_store_meta_drop_before_deletes), T(pg_store_meta_drop_before_is_the_next_job), \
                 T(pg_meta_open_drops_before_the_newest_snapshot), \
                 T(pg_store_meta_lanes_complete_in_order), T(pg_store_meta_open_cuts_at_a_gap), \
                 T(pg_store_events_lanes_complete_in_order), T(pg_store_events_open_cuts_at_a_gap), \
                 T(pg_store_open_drops_the_old_ts_index), \
                 T(pg_store_open_keeps_the_old_ts_index_while_the_table_is_held)
#else
#define PG_TESTS
#endif

TEST_MAIN(T(key_lookup_versions_trim_and_ids), T(keyidx_collisions_are_chained), T(keyidx_ids_wait_until_lookups_come), T(store_lookups),
          T(store_appends_scans_in_order), T(store_inline_append_is_durable_at_once),
          T(store_seek_time), T(store_seek_time_finds_each_batch) PG_TESTS)
