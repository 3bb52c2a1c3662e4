/* test_segsum.c - the events store's segment summaries (store/segsum.h)
 * through the log engine: written as segments seal, read at open instead
 * of the segments (only the active segment's records are read: counted),
 * rebuilt from the segment when missing or damaged, dropped with it. */
#include "runner.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "store/keyidx.h"
#include "store/segsum.h"
#include "store/store_log.h"

/* Records "type|key|version|id[|source]" (key and source may be empty);
 * type 7 is not an event. */
static int describe(const eb_store_rec *rec, eb_store_desc *out)
{
    if (rec->type != 5)
        return 0;
    const char *p = rec->data, *end = p + rec->len, *f[5];
    size_t n[5];
    for (int i = 0; i < 5; i++) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *e = bar ? bar : end;
        f[i] = p;
        n[i] = (size_t)(e - p);
        p = e < end ? e + 1 : end;
    }
    *out = (eb_store_desc){f[0], n[0], f[1], n[1], strtoull(f[2], NULL, 10), f[3], n[3],
                           /* ids "id-<i>" with i % 1000 == 7 count as the client's */
                           n[3] > 3 && strtoull(f[3] + 3, NULL, 10) % 1000 == 7,
                           .source = f[4], .source_len = n[4]};
    return 1;
}

/* Reports an appended record to the lookups, as the bus does. */
static void report(eb_store *s, const eb_store_rec *r)
{
    eb_store_desc d;
    if (!describe(r, &d))
        return;
    CHECK_OK(eb_store_index_add(s, d.key, d.key_len, d.version, d.id, d.id_len, r->seq));
    CHECK_OK(eb_store_index_source_id(s, d.source, d.source_len, d.id, d.id_len, r->seq));
}

#define EVENTS 3000
#define KEYS 7

static eb_store *open_events(const char *dir, eb_store_recovery *rep)
{
    eb_store_opts o = {.data_dir = dir, .kind = EB_STORE_EVENTS,
                       .sync = EB_STORE_SYNC_NEVER, .describe = describe};
    eb_store *s = NULL;
    CHECK_OK(eb_store_open(&eb_store_log_engine, &o, &s, rep));
    return s;
}

static void append_wait(eb_store *s, eb_store_rec_in *recs, size_t n, uint64_t *first)
{
    uint64_t ts;
    int rc = eb_store_append(s, recs, n, true, first, &ts, NULL, NULL);
    CHECK(rc == 0 || rc == 1);
    while (eb_store_durable_seq(s) < *first + n)
        usleep(1000);
}

/* Appends EVENTS records in batches of 10: event i has type "t<i%3>", key
 * "k<i%KEYS>" (every other event), id "id-<i>"; every 50th record is not
 * an event. Reports each event to the lookups, as the bus does. Returns
 * the seq of event 0. */
static uint64_t fill(eb_store *s, uint64_t versions[KEYS])
{
    uint64_t first0 = 0;
    for (int b = 0; b < EVENTS / 10; b++) {
        char text[10][64];
        eb_store_rec_in recs[10];
        for (int k = 0; k < 10; k++) {
            int i = b * 10 + k, len;
            if (i % 2 == 0) {
                uint64_t v = ++versions[i % KEYS];
                len = snprintf(text[k], sizeof text[k], "t%d|k%d|%llu|id-%d|s%d", i % 3, i % KEYS,
                               (unsigned long long)v, i, i % 3);
            } else {
                len = snprintf(text[k], sizeof text[k], "t%d||0|id-%d|s%d", i % 3, i, i % 3);
            }
            recs[k] = (eb_store_rec_in){i % 50 == 49 ? 7 : 5, 0, text[k], (uint32_t)len};
        }
        uint64_t first = 0;
        append_wait(s, recs, 10, &first);
        if (b == 0)
            first0 = first;
        for (int k = 0; k < 10; k++) {
            eb_store_rec r = {first + (uint64_t)k, 0, recs[k].type, 0, recs[k].len, recs[k].data};
            report(s, &r);
        }
    }
    return first0;
}

typedef struct tally {
    uint64_t by_type[3];
} tally;

static void add_type(void *arg, const char *type, size_t len, uint64_t n)
{
    tally *t = arg;
    CHECK(len == 2 && type[0] == 't');
    t->by_type[type[1] - '0'] += n;
}

static int walk_type(void *arg, const eb_store_rec *rec)
{
    eb_store_desc d;
    if (describe(rec, &d))
        add_type(arg, d.type, d.type_len, 1);
    return 0;
}

/* Every answer the summaries give, against what fill() wrote. */
static void check_answers(eb_store *s, uint64_t first0, const uint64_t versions[KEYS])
{
    for (int k = 0; k < KEYS; k++) {
        char key[8];
        int n = snprintf(key, sizeof key, "k%d", k);
        CHECK_EQ(eb_store_key_version(s, key, (size_t)n), versions[k]);
        uint64_t seqs[1000], fv = 0;
        size_t got = eb_store_key_seqs(s, key, (size_t)n, 1, seqs, 1000, &fv);
        CHECK_EQ(got, versions[k]);
        CHECK_EQ(fv, 1);
        /* version v of key k is event i = k + 2*KEYS*(v-1) (even i, i % KEYS == k) */
        for (size_t v = 0; v < got; v++) {
            uint64_t i = (uint64_t)k + (k % 2 ? KEYS : 0) + 2 * KEYS * v;
            CHECK_EQ(seqs[v], first0 + i);
        }
    }
    for (int i = 0; i < EVENTS; i += 37) {
        char id[16];
        int n = snprintf(id, sizeof id, "id-%d", i);
        CHECK_EQ(eb_store_lookup_id(s, id, (size_t)n), i % 50 == 49 ? 0 : first0 + (uint64_t)i);
        char src[4] = {'s', (char)('0' + i % 3), 0, 0}, other[4] = {'s', (char)('0' + (i + 1) % 3)};
        CHECK_EQ(eb_store_lookup_source_id(s, src, 2, id, (size_t)n, UINT64_MAX),
                 i % 50 == 49 ? 0 : first0 + (uint64_t)i);
        CHECK_EQ(eb_store_lookup_source_id(s, other, 2, id, (size_t)n, UINT64_MAX), 0);
        CHECK_EQ(eb_store_lookup_source_id(s, NULL, 0, id, (size_t)n, UINT64_MAX), 0);
    }
    CHECK_EQ(eb_store_lookup_id(s, "id-none", 7), 0);
    /* Counts by type: the summaries' plus a walk of the rest, against a walk of all. */
    uint64_t from = eb_store_first_seq(s), to = eb_store_durable_seq(s), lo, hi;
    tally got = {{0}}, want = {{0}};
    CHECK_OK(eb_store_type_counts(s, from, to, &lo, &hi, add_type, &got));
    CHECK(from <= lo && lo <= hi && hi <= to);
    CHECK(hi > lo); /* sealed segments are covered */
    CHECK_OK(eb_store_scan(s, from, lo - from, walk_type, &got));
    CHECK_OK(eb_store_scan(s, hi, to - hi, walk_type, &got));
    CHECK_OK(eb_store_scan(s, from, to - from, walk_type, &want));
    for (int t = 0; t < 3; t++)
        CHECK_EQ(got.by_type[t], want.by_type[t]);
}

static size_t count_sums(const char *dir, char first_path[600])
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s/events/*.sum 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    char line[600];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        if (n++ == 1 && first_path) /* the second one: not the oldest */
            snprintf(first_path, 600, "%s", line);
    }
    pclose(p);
    return n;
}

/* Sealed segments get summaries; a reopen reads only the active segment's
 * records (a ratio: at most one segment's worth against the whole log),
 * and answers as before. */
TEST(summaries_written_at_seal_and_read_at_open)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    uint64_t versions[KEYS] = {0};
    eb_store_recovery rep;
    eb_store *s = open_events(dir, &rep);
    CHECK_EQ(rep.records_read, 0);
    uint64_t first0 = fill(s, versions);
    check_answers(s, first0, versions);
    eb_store_close(s);
    size_t sums = count_sums(dir, NULL);
    CHECK(sums >= 20); /* ~60 records a segment */
    s = open_events(dir, &rep);
    CHECK_EQ(rep.summaries_rebuilt, 0);
    CHECK(rep.records_read > 0);
    CHECK(rep.records_read * 20 < EVENTS); /* the active segment only */
    check_answers(s, first0, versions);
    eb_store_close(s);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* A damaged summary and a missing one are rebuilt from their segments
 * (their records read), never trusted; the answers stay the same. */
TEST(damaged_or_missing_summaries_are_rebuilt)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    uint64_t versions[KEYS] = {0};
    eb_store_recovery rep;
    eb_store *s = open_events(dir, &rep);
    uint64_t first0 = fill(s, versions);
    eb_store_close(s);
    s = open_events(dir, &rep);
    uint64_t clean = rep.records_read;
    eb_store_close(s);
    char path[600];
    CHECK(count_sums(dir, path) > 2);
    struct stat st;
    CHECK_OK(stat(path, &st));
    FILE *f = fopen(path, "r+b"); /* one byte of an id entry */
    CHECK(f != NULL);
    fseek(f, 90, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 90, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    char cmd[700]; /* and the oldest one gone */
    snprintf(cmd, sizeof cmd, "rm $(ls %s/events/*.sum | head -1)", dir);
    CHECK_EQ(system(cmd), 0);
    s = open_events(dir, &rep);
    CHECK_EQ(rep.summaries_rebuilt, 2);
    CHECK(rep.records_read > clean);
    check_answers(s, first0, versions);
    eb_store_close(s);
    s = open_events(dir, &rep); /* rewritten whole */
    CHECK_EQ(rep.summaries_rebuilt, 0);
    CHECK_EQ(rep.records_read, clean);
    eb_store_close(s);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* The format itself: a summary built from a segment loads back with the
 * counts, keys and ids; one that describes another segment does not. */
TEST(summary_round_trip_and_foreign_file)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    uint64_t versions[KEYS] = {0};
    eb_store *s = open_events(dir, NULL);
    fill(s, versions);
    eb_store_close(s);
    char path[600];
    CHECK(count_sums(dir, path) > 2);
    uint64_t base = strtoull(strrchr(path, '/') + 1, NULL, 10);
    eb_log_opts lo = {.dir = NULL};
    char ldir[600];
    snprintf(ldir, sizeof ldir, "%s/events", dir);
    lo.dir = ldir;
    eb_log *log = NULL;
    CHECK_OK(eb_log_open(&lo, &log, NULL));
    eb_log_seg_info segs[256];
    size_t n = eb_log_sealed(log, segs, 256), at = n;
    for (size_t i = 0; i < n; i++)
        if (segs[i].base == base)
            at = i;
    CHECK(at < n);
    char again[700];
    snprintf(again, sizeof again, "%s.again", path);
    uint64_t read = 0;
    CHECK_OK(eb__segsum_build(log, &segs[at], describe, again, &read));
    CHECK_EQ(read, segs[at].count);
    eb_segsum m;
    CHECK_OK(eb__segsum_load(again, &segs[at], &m, NULL, NULL));
    uint64_t events = 0;
    for (size_t t = 0; t < m.ntypes; t++)
        events += m.types[t].n;
    CHECK_EQ(m.nids, events);
    CHECK(events > 0 && events <= segs[at].count);
    eb__segsum_free(&m);
    /* Identical to the one written at seal. */
    char cmp[1500];
    snprintf(cmp, sizeof cmp, "cmp -s %s %s", path, again);
    CHECK_EQ(system(cmp), 0);
    /* Foreign: loaded for another segment, refused. */
    CHECK_EQ(eb__segsum_load(again, &segs[at - 1], &m, NULL, NULL), EB_ECORRUPT);
    CHECK_EQ(eb__segsum_load("/nonexistent.sum", &segs[at], &m, NULL, NULL), EB_ENOTFOUND);
    eb_log_close(log);
    unlink(again);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* The summaries of segments sealed while the store runs are written from
 * the description of their records made at append, never by reading a
 * segment back, and are the bytes a read-back builds. */
TEST(summaries_written_from_appends_not_read_back)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    uint64_t versions[KEYS] = {0};
    eb_store *s = open_events(dir, NULL);
    fill(s, versions);
    eb_store_stats st;
    eb_store_stats_get(s, &st);
    uint64_t sealed = st.segments - 1, appended = 0, read_back = 0;
    CHECK(sealed >= 20);
    for (int i = 0; i < 5000 && appended + read_back < sealed; i++) {
        usleep(1000);
        eb__store_log_summarized(s, &appended, &read_back);
    }
    CHECK_EQ(read_back, 0);
    CHECK_EQ(appended, sealed);
    eb_store_close(s);
    char ldir[600];
    snprintf(ldir, sizeof ldir, "%s/events", dir);
    eb_log_opts lo = {.dir = ldir};
    eb_log *log = NULL;
    CHECK_OK(eb_log_open(&lo, &log, NULL));
    eb_log_seg_info segs[256];
    size_t n = eb_log_sealed(log, segs, 256);
    CHECK_EQ(n, sealed);
    for (size_t i = 0; i < n; i++) {
        char path[600], again[700], cmp[1500];
        eb_log_aux_path(log, segs[i].base, path, sizeof path);
        snprintf(again, sizeof again, "%s.again", path);
        CHECK_OK(eb__segsum_build(log, &segs[i], describe, again, NULL));
        snprintf(cmp, sizeof cmp, "cmp -s %s %s", path, again);
        CHECK_EQ(system(cmp), 0);
        unlink(again);
    }
    eb_log_close(log);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* Splitting a description moves the records from the split on, with
 * their counts, ids and keys; what stays is what a summary of the first
 * part holds. */
TEST(description_split_keeps_counts_ids_and_keys)
{
    eb_segsum_acc a, b;
    eb__segsum_acc_init(&a, 100);
    for (int i = 0; i < 50; i++) {
        char id[16], key[16];
        snprintf(id, sizeof id, "id-%d", i);
        snprintf(key, sizeof key, "k%d", i % 4);
        eb_store_desc d = {i % 2 ? "odd" : "even", i % 2 ? 3 : 4, key, i % 3 ? 0 : strlen(key),
                           (uint64_t)i + 1, id, strlen(id), i % 5 == 0, i == 7, i == 9,
                           "src", 3};
        uint64_t h = 0, sh = 0;
        eb__segsum_acc_add(&a, 100 + (uint64_t)i, i == 11 ? NULL : &d, &h, &sh);
        CHECK_EQ(h != 0, i != 9 && i != 11);
        CHECK_EQ(sh != 0, h != 0);
        if (h)
            CHECK_EQ(h, eb__keyidx_id_hash(id, strlen(id)));
    }
    eb__segsum_acc_split(&a, 130, &b); /* b: 100..129, a: 130..149 */
    CHECK_EQ(b.base, 100);
    CHECK_EQ(b.n, 30);
    CHECK_EQ(a.base, 130);
    CHECK_EQ(a.n, 20);
    uint64_t nb = 0, na = 0;
    for (size_t t = 0; t < b.ntypes; t++)
        nb += b.types[t].n;
    for (size_t t = 0; t < a.ntypes; t++)
        na += a.types[t].n;
    CHECK_EQ(nb, 28); /* 30 less the uncounted (7) and the non-event (11) */
    CHECK_EQ(na, 20);
    CHECK_EQ(b.nids, 28); /* less the unindexed (9) and the non-event */
    CHECK_EQ(a.nids, 20);
    CHECK_EQ(b.ids[b.nids - 1].seq, 129);
    CHECK_EQ(a.ids[0].seq, 130);
    CHECK_EQ(b.client_ids, 6); /* 0, 5, 10, 15, 20, 25 */
    CHECK_EQ(a.client_ids, 4);
    CHECK_EQ(b.nkeys + a.nkeys, 16); /* i % 3 == 0, but 9 (unindexed) */
    CHECK_EQ(a.nkeys, 7);            /* 30, 33, ..., 48 */
    eb__segsum_acc_free(&a);
    eb__segsum_acc_free(&b);
}

/* Dropping segments drops their summaries: their ids are not answered,
 * their counts not covered. */
TEST(summaries_dropped_with_their_segments)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    uint64_t versions[KEYS] = {0};
    eb_store *s = open_events(dir, NULL);
    uint64_t first0 = fill(s, versions);
    eb_store_close(s); /* every summary written */
    s = open_events(dir, NULL);
    size_t before = count_sums(dir, NULL);
    uint64_t cut = first0 + EVENTS / 2;
    CHECK_OK(eb_store_drop_before(s, cut));
    uint64_t first = eb_store_first_seq(s);
    CHECK(first > first0 && first <= cut);
    CHECK(count_sums(dir, NULL) < before);
    CHECK_EQ(eb_store_lookup_id(s, "id-0", 4), 0);
    uint64_t lo, hi;
    tally t = {{0}};
    CHECK_OK(eb_store_type_counts(s, first0, eb_store_durable_seq(s), &lo, &hi, add_type, &t));
    CHECK(lo >= first || lo == hi);
    eb_store_close(s);
    /* And after a reopen (no summary of a dropped segment is read). */
    eb_store_recovery rep;
    s = open_events(dir, &rep);
    CHECK_EQ(rep.summaries_rebuilt, 0);
    CHECK_EQ(eb_store_lookup_id(s, "id-0", 4), 0);
    char id[16];
    int n = snprintf(id, sizeof id, "id-%d", EVENTS - 2);
    CHECK_EQ(eb_store_lookup_id(s, id, (size_t)n), first0 + EVENTS - 2);
    eb_store_close(s);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* Appends ten events (texts as describe() reads them), reporting them;
 * seq[k] gets text k's seq. */
static void append_texts(eb_store *s, char text[10][48], uint64_t *seq)
{
    eb_store_rec_in recs[10];
    for (int k = 0; k < 10; k++)
        recs[k] = (eb_store_rec_in){5, 0, text[k], (uint32_t)strlen(text[k])};
    uint64_t first = 0;
    append_wait(s, recs, 10, &first);
    for (int k = 0; k < 10; k++) {
        eb_store_rec r = {first + (uint64_t)k, 0, 5, 0, recs[k].len, recs[k].data};
        report(s, &r);
        seq[k] = r.seq;
    }
}

/* Appends n events from event `from` (id "m-<i % 3000>": each id twice,
 * 3000 events apart, from the same source "s<i % 3>"), reporting them;
 * seq[i] gets event i's seq. */
static void append_many(eb_store *s, int from, int n, uint64_t *seq)
{
    for (int b = from; b < from + n; b += 10) {
        char text[10][48];
        for (int k = 0; k < 10; k++)
            snprintf(text[k], sizeof text[k], "t0||0|m-%d|s%d", (b + k) % 3000, (b + k) % 3);
        append_texts(s, text, seq + b);
    }
}

/* The id entries in memory once the summarizer has caught up (a lookup
 * frees what the installed summaries cover; waits up to 20 s for them). */
static uint64_t ids_held(eb_store *s, uint64_t bound)
{
    eb_store_stats st;
    for (int i = 0; i < 2000; i++) {
        (void)eb_store_lookup_id(s, "none", 4);
        eb_store_stats_get(s, &st);
        if (st.ids_in_memory <= bound)
            break;
        usleep(10000);
    }
    return st.ids_in_memory;
}

/* Every event's id and (source, id) answer its newest seq; below it, the
 * older copy (in a summary, or in memory), below that nothing. */
static void check_many(eb_store *s, int n, const uint64_t *seq)
{
    for (int i = 0; i < n; i += 7) {
        char id[16], src[4];
        int len = snprintf(id, sizeof id, "m-%d", i % 3000);
        snprintf(src, sizeof src, "s%d", i % 3);
        int newest = i % 3000 + 3000 < n ? i % 3000 + 3000 : i % 3000;
        CHECK_EQ(eb_store_lookup_id(s, id, (size_t)len), seq[newest]);
        CHECK_EQ(eb_store_lookup_source_id(s, src, 2, id, (size_t)len, UINT64_MAX), seq[newest]);
        uint64_t older = newest >= 3000 ? seq[newest - 3000] : 0;
        CHECK_EQ(eb_store_lookup_id_below(s, id, (size_t)len, seq[newest]), older);
        CHECK_EQ(eb_store_lookup_source_id(s, src, 2, id, (size_t)len, seq[newest]), older);
        if (older)
            CHECK_EQ(eb_store_lookup_id_below(s, id, (size_t)len, older), 0);
        CHECK_EQ(eb_store_lookup_source_id(s, "s9", 2, id, (size_t)len, UINT64_MAX), 0);
    }
}

/* Memory holds the ids no installed summary covers: while the events
 * published grow 10x (over many small segments), the id entries in memory
 * stay about two segments' worth (a ratio against the events per
 * segment), and every id is still answered, before and after a reopen. */
TEST(ids_in_memory_bounded_by_segments_not_events)
{
    setenv("EB_TEST_SEGMENT_BYTES", "16384", 1);
    const char *dir = eb_test_tmpdir();
    eb_store *s = open_events(dir, NULL);
    static uint64_t seq[6000];
    append_many(s, 0, 600, seq);
    eb_store_stats st;
    eb_store_stats_get(s, &st);
    CHECK(st.segments >= 2);
    uint64_t per_seg = 600 / st.segments;           /* events in a segment */
    uint64_t bound = 2 * (3 * per_seg) + EB_KEYIDX_PENDING; /* 2 entries an event */
    uint64_t held_600 = ids_held(s, bound);
    CHECK(held_600 <= bound);
    append_many(s, 600, 5400, seq);
    eb_store_stats_get(s, &st);
    CHECK(st.segments >= 10);
    uint64_t held = ids_held(s, bound);
    CHECK(held <= bound);                  /* 10x the events: still ~2 segments */
    CHECK(held * 4 < 2 * 6000);            /* before: an entry per id and source id */
    check_many(s, 6000, seq);
    eb_store_close(s);
    eb_store_recovery rep;
    s = open_events(dir, &rep);
    CHECK_EQ(rep.summaries_rebuilt, 0);
    CHECK(ids_held(s, bound) <= bound);
    check_many(s, 6000, seq);
    eb_store_close(s);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* The ranges that may hold client-chosen ids skip the sealed segments
 * whose summaries count none, and hold every one there is. */
TEST(client_id_ranges_skip_segments_without_any)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    uint64_t versions[KEYS] = {0};
    eb_store *s = open_events(dir, NULL);
    uint64_t first0 = fill(s, versions);
    eb_store_close(s);
    s = open_events(dir, NULL);
    uint64_t from = eb_store_first_seq(s), durable = eb_store_durable_seq(s), covered = 0;
    bool seen[3] = {false, false, false};
    while (from < durable) {
        uint64_t lo, hi;
        eb_store_client_id_range(s, from, &lo, &hi);
        CHECK(lo >= from && hi > lo);
        uint64_t end = hi < durable ? hi : durable;
        if (lo < end)
            covered += end - lo;
        for (int k = 0; k < 3; k++) {
            uint64_t seq = first0 + 7 + 1000 * (uint64_t)k;
            if (seq >= lo && seq < end)
                seen[k] = true;
        }
        from = hi;
    }
    CHECK(seen[0] && seen[1] && seen[2]);
    CHECK(covered * 4 < durable - eb_store_first_seq(s)); /* 3 segments and the active one */
    eb_store_close(s);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

/* For each of the nsrc sources in turn, appends 200 events
 * "t0||0|<prefix>-<i>|<source>" (i = 0..199) in batches of 10 and reports
 * them; seq[r][i] gets the seq of source r's event i. */
static void append_ids(eb_store *s, const char *prefix, const char *const *srcs, int nsrc,
                       uint64_t seq[][200])
{
    for (int r = 0; r < nsrc; r++)
        for (int b = 0; b < 20; b++) {
            char text[10][48];
            for (int k = 0; k < 10; k++)
                snprintf(text[k], sizeof text[k], "t0||0|%s-%d|%s", prefix, b * 10 + k, srcs[r]);
            append_texts(s, text, &seq[r][b * 10]);
        }
}

/* The same ids from three sources (and none), each source's copies in
 * other sealed segments: after a reopen (through the summaries) each
 * (source, id) is found, the newest by id alone; a repeat of a (source,
 * id) later answers the newer one. */
TEST(source_ids_across_sealed_segments)
{
    setenv("EB_TEST_SEGMENT_BYTES", "4096", 1);
    const char *dir = eb_test_tmpdir();
    eb_store_recovery rep;
    eb_store *s = open_events(dir, &rep);
    static const char *const srcs[] = {"a", "b", "", "a"}; /* "a" twice: a repeat */
    uint64_t seq[4][200];
    append_ids(s, "dup", srcs, 4, seq);
    eb_store_close(s);
    CHECK(count_sums(dir, NULL) >= 8);
    s = open_events(dir, &rep);
    CHECK_EQ(rep.summaries_rebuilt, 0);
    CHECK(rep.records_read * 4 < 800); /* the active segment only */
    for (int i = 0; i < 200; i += 3) {
        char id[16];
        int n = snprintf(id, sizeof id, "dup-%d", i);
        CHECK_EQ(eb_store_lookup_source_id(s, "a", 1, id, (size_t)n, UINT64_MAX), seq[3][i]);
        CHECK_EQ(eb_store_lookup_source_id(s, "a", 1, id, (size_t)n, seq[3][i]), seq[0][i]);
        CHECK_EQ(eb_store_lookup_source_id(s, "b", 1, id, (size_t)n, UINT64_MAX), seq[1][i]);
        CHECK_EQ(eb_store_lookup_source_id(s, "", 0, id, (size_t)n, UINT64_MAX), seq[2][i]);
        CHECK_EQ(eb_store_lookup_source_id(s, "c", 1, id, (size_t)n, UINT64_MAX), 0);
        CHECK_EQ(eb_store_lookup_id(s, id, (size_t)n), seq[3][i]);
    }
    eb_store_close(s);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

typedef struct check_rec {
    const char *src, *id; /* what the record must be */
    bool        match;
} check_rec;

static int check_one(void *arg, const eb_store_rec *rec)
{
    check_rec *c = arg;
    eb_store_desc d;
    c->match = describe(rec, &d) && d.id_len == strlen(c->id) && !memcmp(d.id, c->id, d.id_len) &&
               (!c->src || (d.source_len == strlen(c->src) &&
                            !memcmp(d.source, c->src, d.source_len)));
    return 1;
}

/* As the bus looks up: each hit is read and checked, and a wrong one
 * (another's, the hashes collide) asks again below it. src NULL: by id.
 * *reads gets the records read. */
static uint64_t find_checked(eb_store *s, const char *src, const char *id, size_t *reads)
{
    uint64_t at = UINT64_MAX;
    for (;;) {
        at = src ? eb_store_lookup_source_id(s, src, strlen(src), id, strlen(id), at)
                 : eb_store_lookup_id_below(s, id, strlen(id), at);
        if (!at)
            return 0;
        check_rec c = {src, id, false};
        CHECK_OK(eb_store_scan(s, at, 1, check_one, &c));
        ++*reads;
        if (c.match)
            return at;
    }
}

/* Forced collisions (4-bit hashes: 16 of them for 600 events) in memory
 * and in the summaries after a reopen: walking below each wrong hit finds
 * every event, newest first. */
/* seg_bytes: 4096 makes segments of fewer ids than segsum.c's radix sort
 * takes; 20000, of more (its ties, the collisions, must stay in seq order). */
static void forced_collisions(const char *seg_bytes)
{
    setenv("EB_TEST_SEGMENT_BYTES", seg_bytes, 1);
    eb__keyidx_test_hash_bits(4);
    const char *dir = eb_test_tmpdir();
    eb_store *s = open_events(dir, NULL);
    static const char *const srcs[] = {"s0", "s1", "s2"};
    uint64_t seq[3][200];
    append_ids(s, "c", srcs, 3, seq);
    for (int round = 0; round < 2; round++) {
        size_t reads = 0, lookups = 0;
        for (int i = 0; i < 200; i += 3) {
            char id[16], src[4];
            snprintf(id, sizeof id, "c-%d", i);
            for (int r = 0; r < 3; r++) {
                snprintf(src, sizeof src, "s%d", r);
                CHECK_EQ(find_checked(s, src, id, &reads), seq[r][i]);
                lookups++;
            }
            CHECK_EQ(find_checked(s, NULL, id, &reads), seq[2][i]);
            CHECK_EQ(find_checked(s, "s3", id, &reads), 0);
        }
        CHECK(reads > lookups); /* there were collisions to walk */
        eb_store_close(s);
        s = open_events(dir, NULL); /* round 1: the sealed segments' from their summaries */
    }
    eb_store_close(s);
    eb__keyidx_test_hash_bits(0);
    unsetenv("EB_TEST_SEGMENT_BYTES");
}

TEST(forced_collisions_are_walked_in_summaries_too)
{
    forced_collisions("4096");
    forced_collisions("20000");
}

TEST_MAIN(T(summaries_written_from_appends_not_read_back), T(description_split_keeps_counts_ids_and_keys), T(ids_in_memory_bounded_by_segments_not_events), T(source_ids_across_sealed_segments), T(forced_collisions_are_walked_in_summaries_too), T(client_id_ranges_skip_segments_without_any), T(summaries_written_at_seal_and_read_at_open), T(damaged_or_missing_summaries_are_rebuilt),
          T(summary_round_trip_and_foreign_file), T(summaries_dropped_with_their_segments))
