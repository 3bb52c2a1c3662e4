/* store_pg_sum.c - the PostgreSQL engine's partition summaries: what the
 * log engine's segment summaries are (segsum.h, the same format), one per
 * complete EVENTS partition, kept in the table
 * `eb_summaries (part bigint PRIMARY KEY, data bytea)`.
 *
 * A partition is complete once every seq of it is durable (its seqs are
 * never handed out again). A summarizer thread, on a connection of its
 * own, off the publish path, reads each complete partition's rows in
 * order, describes them (opts.describe), and upserts the summary
 * (idempotent: a summary is derived from committed rows, so any node
 * writes the same one; one an open refused is replaced); then installs it here and
 * moves `covered` past it, and the loop thread frees the ids below it
 * from keyidx (as store_log.c does), so memory holds about a partition of
 * ids. Lookups go memory, then the summaries (newest first), then the
 * bus reads the row by seq.
 *
 * At open (a restart, a takeover) the summaries of the retained
 * partitions are loaded, contiguous from the first retained seq; their
 * key entries fill the key streams, and indexed_upto is where they end:
 * the bus reads only the events after it. A complete partition without
 * a summary (a crash before it was written, a database of an older
 * version) and every partition after it is read by the bus at open as
 * before, and the summarizer writes the missing summaries in the
 * background, so the next open reads only the newest partition.
 * Retention drops a partition's summary with it (eb__pg_sum_drop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventbus/err.h"
#include "store/segsum.h"
#include "store/store_pg_int.h"
#include "util/clock.h"
#include "util/xmalloc.h"

#define SUM_ROWS 256 /* rows a query of the summarizer (records up to 64 MiB: bounded) */

/* sum_mu held: forgets the summaries of partitions retention dropped. */
static void trim(pg_store *p)
{
    uint64_t first = atomic_load(&p->first);
    size_t k = 0;
    while (k < p->nsums && p->sums[k]->seg.base + p->sums[k]->seg.count <= first) {
        eb__segsum_free(p->sums[k]);
        free(p->sums[k]);
        k++;
    }
    if (k) {
        memmove(p->sums, p->sums + k, (p->nsums - k) * sizeof *p->sums);
        p->nsums -= k;
    }
}

/* sum_mu held: installs m (the next partition's) and covers it. */
static void install(pg_store *p, eb_segsum *m)
{
    if (p->nsums == p->sums_cap) {
        p->sums_cap = p->sums_cap ? p->sums_cap * 2 : 16;
        p->sums = eb_xrealloc(p->sums, p->sums_cap * sizeof *p->sums);
    }
    p->sums[p->nsums++] = m;
    atomic_store(&p->covered, m->seg.base + m->seg.count);
}

static void key_entry(void *arg, const char *key, size_t len, uint64_t version, uint64_t seq)
{
    eb__keyidx_add(arg, key, len, version, seq);
}

/* --- the summarizer ------------------------------------------------------------ */

typedef struct builder {
    pg_store     *p;
    eb_segsum_acc acc;
    bool          started, gap;
} builder;

/* Describes the rows of r (in seq order) into b->acc. */
static void describe_rows(builder *b, const PGresult *r)
{
    for (int i = 0; i < PQntuples(r) && !b->gap; i++) {
        eb_store_rec rec = eb__pg_row_rec(r, i);
        if (!b->started) {
            eb__segsum_acc_free(&b->acc);
            eb__segsum_acc_init(&b->acc, rec.seq);
            b->started = true;
        }
        if (rec.seq != b->acc.base + b->acc.n) {
            b->gap = true; /* never expected in a complete partition */
            break;
        }
        eb_store_desc d;
        int ev = b->p->describe(&rec, &d);
        eb__segsum_acc_add(&b->acc, rec.seq, ev ? &d : NULL, NULL, NULL);
    }
}

/* Writes the summary of partition `part` (enc). */
static int insert_sum(pg_store *p, uint64_t part, const eb_buf *enc)
{
    char k[24];
    snprintf(k, sizeof k, "%llu", (unsigned long long)part);
    const char *vals[] = {k, enc->data};
    int lens[] = {0, (int)enc->len}, fmts[] = {0, 1};
    int g = eb__pg_guard_on(p->sc);
    PGresult *r = PQexecParams(p->sc, "INSERT INTO eb_summaries (part, data) VALUES ($1, $2) "
                               "ON CONFLICT (part) DO UPDATE SET data = EXCLUDED.data", 2, NULL, vals, lens, fmts, 0);
    eb__pg_guard_off(g);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : eb__pg_classify(p->sc, r);
    PQclear(r);
    return rc;
}

/* Summarizes partition `part` from its rows: *out (made here) on 0;
 * EB_EGONE when retention dropped it meanwhile (nothing written); or an
 * error (tried again later). */
static int build(pg_store *p, uint64_t part, eb_segsum **out)
{
    uint64_t lo = part * PG_PART_SEQS, hi = lo + PG_PART_SEQS;
    builder b = {.p = p};
    eb__segsum_acc_init(&b.acc, lo);
    int rc = 0;
    for (uint64_t from = lo; from < hi && !b.gap && !rc;) {
        pthread_mutex_lock(&p->sum_mu);
        rc = p->sum_stop ? EB_ECLOSED : 0; /* closing: the next open writes it */
        pthread_mutex_unlock(&p->sum_mu);
        if (rc)
            break;
        char a[24], e[24], sql[160];
        snprintf(sql, sizeof sql, "SELECT seq, ts, type, flags, data FROM %s WHERE seq >= $1 "
                 "AND seq < $2 ORDER BY seq LIMIT %d", p->table, SUM_ROWS);
        snprintf(a, sizeof a, "%llu", (unsigned long long)from);
        snprintf(e, sizeof e, "%llu", (unsigned long long)hi);
        const char *params[] = {a, e};
        PGresult *r = NULL;
        if ((rc = eb__pg_run(p->sc, sql, 2, params, 1, &r)))
            break;
        int n = PQntuples(r);
        describe_rows(&b, r);
        PQclear(r);
        if (n < SUM_ROWS)
            break;
        from = b.acc.base + b.acc.n;
    }
    if (!rc && (!b.started || b.gap || b.acc.base + b.acc.n != hi))
        rc = EB_EGONE; /* dropped while read (or damaged): not summarized */
    eb_buf enc = EB_BUF_INIT;
    eb_log_seg_info seg = {b.acc.base, b.acc.n, 0};
    if (!rc)
        rc = eb__segsum_encode(&b.acc, &seg, &enc);
    eb__segsum_acc_free(&b.acc);
    if (!rc)
        rc = insert_sum(p, part, &enc);
    eb_segsum *m = eb_xcalloc(1, sizeof *m);
    if (!rc)
        rc = eb__segsum_load_mem(enc.data, enc.len, &seg, m, NULL, NULL);
    eb_buf_free(&enc);
    if (rc)
        free(m);
    else
        *out = m;
    return rc;
}

static void sum_wait(pg_store *p, uint64_t ms)
{
    struct timespec ts = eb_clock_deadline(CLOCK_REALTIME, ms);
    pthread_cond_timedwait(&p->sum_cv, &p->sum_mu, &ts);
}

/* The summarizer thread: summarizes each partition once complete, in
 * order, from the one covered ends in. */
static void *summarizer(void *arg)
{
    pg_store *p = arg;
    pthread_mutex_lock(&p->sum_mu);
    while (!p->sum_stop) {
        trim(p);
        uint64_t covered = atomic_load(&p->covered), first = atomic_load(&p->first);
        uint64_t part = (covered > first ? covered : first) / PG_PART_SEQS;
        if (part >= atomic_load(&p->durable) / PG_PART_SEQS) { /* not complete yet */
            sum_wait(p, PG_HOUSE_MS);
            continue;
        }
        pthread_mutex_unlock(&p->sum_mu);
        char err[256];
        if (!p->sc || PQstatus(p->sc) != CONNECTION_OK) {
            PQfinish(p->sc);
            p->sc = eb__pg_connect(p->uri, p->sync, err, sizeof err);
        }
        eb_segsum *m = NULL;
        int rc = p->sc ? build(p, part, &m) : EB_ECONNECT;
        pthread_mutex_lock(&p->sum_mu);
        if (rc == 0) {
            install(p, m);
            atomic_fetch_add(&p->sums_written, 1);
        } else if (rc == EB_EGONE) {
            if ((part + 1) * PG_PART_SEQS > atomic_load(&p->covered))
                atomic_store(&p->covered, (part + 1) * PG_PART_SEQS); /* ids below first */
        } else {
            sum_wait(p, PG_HOUSE_MS); /* its ids stay in memory until then */
        }
    }
    pthread_mutex_unlock(&p->sum_mu);
    return NULL;
}

/* --- opening and closing --------------------------------------------------------- */

#define SUM_PAGE 8 /* summaries a query of the open reads (about 2 MiB each) */

/* Installs the summaries of r (rows part, data, in order) while they run
 * on from *expect without a gap; false at the first that does not (or
 * does not load), which ends the loading. */
static bool install_rows(pg_store *p, PGresult *r, uint64_t *expect, uint64_t durable)
{
    for (int i = 0; i < PQntuples(r); i++) {
        eb_segsum *m = eb_xcalloc(1, sizeof *m);
        /* checked first (no key entry is taken from a summary refused) */
        if (eb__segsum_load_mem(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), NULL, m,
                                NULL, NULL) != 0 ||
            m->seg.base > *expect || m->seg.base + m->seg.count <= *expect ||
            m->seg.base + m->seg.count > durable ||
            eb__pg_be64(PQgetvalue(r, i, 0)) != m->seg.base / PG_PART_SEQS) {
            eb__segsum_free(m);
            free(m);
            return false;
        }
        eb__segsum_free(m);
        eb__segsum_load_mem(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), NULL, m,
                            key_entry, &p->kidx);
        install(p, m);
        *expect = m->seg.base + m->seg.count;
    }
    return PQntuples(r) == SUM_PAGE;
}

/* Loads the summaries from the first retained partition on while they run
 * on without a gap (a summary past a gap is written again by the
 * summarizer, and the bus reads its events), SUM_PAGE at a time: what a
 * query holds stays bounded however many partitions are retained, and
 * each query stays well within --store-timeout. */
static int load_sums(pg_store *p)
{
    char sql[160], lo[24];
    snprintf(lo, sizeof lo, "%llu", (unsigned long long)p->part_lo);
    const char *params[] = {lo};
    int rc = eb__pg_run(p->rd, "DELETE FROM eb_summaries WHERE part < $1", 1, params, 0, NULL);
    snprintf(sql, sizeof sql, "SELECT part, data FROM eb_summaries WHERE part >= $1 "
             "ORDER BY part LIMIT %d", SUM_PAGE);
    uint64_t expect = atomic_load(&p->first), durable = atomic_load(&p->durable);
    bool more = rc == 0;
    while (more) {
        PGresult *r = NULL;
        if ((rc = eb__pg_run(p->rd, sql, 1, params, 1, &r)))
            return rc;
        more = install_rows(p, r, &expect, durable);
        PQclear(r);
        snprintf(lo, sizeof lo, "%llu", (unsigned long long)(expect / PG_PART_SEQS));
    }
    if (rc)
        return rc;
    p->indexed_upto = atomic_load(&p->covered);
    return 0;
}

int eb__pg_sum_open(pg_store *p)
{
    int rc = eb__pg_run0(p->rd, "CREATE TABLE IF NOT EXISTS eb_summaries (part bigint PRIMARY "
                                "KEY, data bytea NOT NULL)");
    if (!rc)
        rc = load_sums(p);
    if (!rc && pthread_create(&p->sum_thr, NULL, summarizer, p) != 0)
        rc = EB_ENOMEM;
    p->sum_started = !rc;
    return rc;
}

void eb__pg_sum_close(pg_store *p)
{
    if (p->sum_started) {
        pthread_mutex_lock(&p->sum_mu);
        p->sum_stop = true;
        pthread_cond_signal(&p->sum_cv);
        pthread_mutex_unlock(&p->sum_mu);
        pthread_join(p->sum_thr, NULL);
    }
    for (size_t i = 0; i < p->nsums; i++) {
        eb__segsum_free(p->sums[i]);
        free(p->sums[i]);
    }
    free(p->sums);
    PQfinish(p->sc);
}

/* --- the calls --------------------------------------------------------------------- */

void eb__pg_sum_cut(pg_store *p)
{
    uint64_t covered = atomic_load(&p->covered);
    if (covered != p->cut_at) {
        p->cut_at = covered;
        eb__keyidx_ids_cut(&p->kidx, covered);
    }
}

/* Memory holds every id newer than those it freed: a hit there at or
 * above the freed ones is the newest; below them a summary may hold a
 * newer one. */
uint64_t eb__pg_sum_lookup(pg_store *p, bool by_source, const char *src, size_t slen,
                           const char *id, size_t idlen, uint64_t below)
{
    uint64_t first = atomic_load(&p->first), durable = atomic_load(&p->durable);
    if (below > durable)
        below = durable;
    if (p->describe)
        eb__pg_sum_cut(p);
    uint64_t seq = by_source ? eb__keyidx_find_source_id(&p->kidx, src, slen, id, idlen, below)
                             : eb__keyidx_find_id(&p->kidx, id, idlen, below);
    if (!p->describe || (seq && seq >= first && seq >= eb__keyidx_ids_gone_below(&p->kidx)))
        return seq >= first ? seq : 0;
    uint64_t mem = seq >= first ? seq : 0;
    uint64_t h = by_source ? eb__keyidx_source_id_hash(src, slen, id, idlen)
                           : eb__keyidx_id_hash(id, idlen);
    pthread_mutex_lock(&p->sum_mu);
    seq = eb__segsum_set_find(p->sums, p->nsums, by_source, h, below);
    pthread_mutex_unlock(&p->sum_mu);
    if (seq < mem)
        seq = mem;
    return seq >= first ? seq : 0;
}

int eb__pg_sum_type_counts(eb_store *s, uint64_t from, uint64_t to, uint64_t *lo, uint64_t *hi,
                           void (*fn)(void *, const char *, size_t, uint64_t), void *arg)
{
    pg_store *p = pg_of(s);
    *lo = *hi = from;
    if (!p->describe)
        return 0;
    pthread_mutex_lock(&p->sum_mu);
    eb__segsum_set_type_counts(p->sums, p->nsums, from, to, lo, hi, fn, arg);
    pthread_mutex_unlock(&p->sum_mu);
    return 0;
}

void eb__pg_sum_client_id_range(eb_store *s, uint64_t from, uint64_t *lo, uint64_t *hi)
{
    pg_store *p = pg_of(s);
    *lo = from;
    *hi = UINT64_MAX;
    if (!p->describe)
        return;
    pthread_mutex_lock(&p->sum_mu);
    eb__segsum_set_client_id_range(p->sums, p->nsums, from, lo, hi);
    pthread_mutex_unlock(&p->sum_mu);
}

void eb__pg_sum_durable(pg_store *p, uint64_t from, uint64_t to)
{
    if (!p->describe || from / PG_PART_SEQS == to / PG_PART_SEQS)
        return;
    pthread_mutex_lock(&p->sum_mu); /* (mu -> sum_mu: the summarizer never takes mu) */
    pthread_cond_signal(&p->sum_cv);
    pthread_mutex_unlock(&p->sum_mu);
}

int eb__pg_sum_drop(pg_store *p)
{
    if (!p->describe)
        return 0;
    char lo[24];
    snprintf(lo, sizeof lo, "%llu", (unsigned long long)p->part_lo);
    const char *params[] = {lo};
    return eb__pg_run(p->wr, "DELETE FROM eb_summaries WHERE part < $1", 1, params, 0, NULL);
}
