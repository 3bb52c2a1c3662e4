/* store_log.c - the adapter that makes the embedded log (src/log) a
 * storage engine (store.h). Records pass through without a copy: the
 * store's record structs have the log's layout (checked below), and the
 * log's inline append is the store's inline_ok append. The lookups are
 * keyidx.c's, in memory, and the sealed segments' summaries (segsum.c):
 * written by a thread of this file as the log seals segments, read at open
 * instead of the segments; only the active segment is read there. */
#include "store/store_log.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log.h"
#include "store/keyidx.h"
#include "store/segsum.h"
#include "util/xmalloc.h"

#define SAME_FIELD(a, b, f) (offsetof(a, f) == offsetof(b, f) && \
                             sizeof(((a *)0)->f) == sizeof(((b *)0)->f))
_Static_assert(sizeof(eb_store_rec_in) == sizeof(eb_log_rec_in) &&
                   SAME_FIELD(eb_store_rec_in, eb_log_rec_in, type) &&
                   SAME_FIELD(eb_store_rec_in, eb_log_rec_in, flags) &&
                   SAME_FIELD(eb_store_rec_in, eb_log_rec_in, data) &&
                   SAME_FIELD(eb_store_rec_in, eb_log_rec_in, len),
               "eb_store_rec_in must have eb_log_rec_in's layout");
_Static_assert(sizeof(eb_store_rec) == sizeof(eb_log_rec) &&
                   SAME_FIELD(eb_store_rec, eb_log_rec, seq) &&
                   SAME_FIELD(eb_store_rec, eb_log_rec, ts_us) &&
                   SAME_FIELD(eb_store_rec, eb_log_rec, type) &&
                   SAME_FIELD(eb_store_rec, eb_log_rec, flags) &&
                   SAME_FIELD(eb_store_rec, eb_log_rec, len) &&
                   SAME_FIELD(eb_store_rec, eb_log_rec, data),
               "eb_store_rec must have eb_log_rec's layout");

typedef struct log_store {
    eb_store  base; /* first: a log_store is an eb_store */
    eb_log   *log;
    eb_keyidx kidx;         /* key streams; ids of the records since open and
                             * of the active segment at open that no
                             * installed summary covers yet (loop thread) */
    uint64_t  cut_at;       /* `covered` at the last id generation cut (loop) */
    uint64_t  indexed_upto; /* at open: the lookups cover below this */
    eb_store_describe_fn describe; /* EVENTS with summaries, else NULL */
    /* The summaries of sealed segments (segsum.h), oldest first, and the
     * summarizer thread's queue of segments sealed since open. */
    pthread_mutex_t mu;     /* sums, queue, stop */
    pthread_cond_t  cv;
    eb_segsum     **sums;
    size_t          nsums, sums_cap;
    eb_log_seg_info *queue;
    size_t          nqueue, queue_cap;
    bool            stop, thread_started;
    pthread_t       thread;
    /* The summaries installed cover every seq below this (contiguously
     * from the first; it stops at a segment whose summary failed, until a
     * reopen rebuilds it): written under mu, read by the loop thread. */
    _Atomic uint64_t covered;
    bool            gap;       /* a summary failed: covered stays (mu) */
    uint64_t        described; /* records read at open to summarize or index */
    /* The records since the active segment at open, described as they are
     * appended (EVENTS with describe): a sealed segment's summary is
     * written from this, without reading the segment back. Appended to on
     * the loop thread, split at each seal by the summarizer (acc_mu, held
     * by the loop across an append and its description, so a seal never
     * finds its records undescribed). */
    pthread_mutex_t acc_mu;
    eb_segsum_acc   acc;
    uint64_t        from_acc;  /* segments sealed since open whose summary
                                * was written from acc (acc_mu) */
    uint64_t        read_back; /* ... and built by reading them (acc_mu) */
    /* The id hashes of the last append's records (loop thread): the
     * bus's index_add of those records reuses them. */
    uint64_t        hseq;
    size_t          hn, hcap;
    uint64_t      (*hs)[2];
    uint32_t        rebuilt;   /* summaries rebuilt at open */
} log_store;

static eb_log *log_of(eb_store *s)
{
    return ((log_store *)(void *)s)->log;
}

/* Describes the n records just appended from seq first (acc_mu held). */
static void describe_appended(log_store *ls, const eb_store_rec_in *recs, size_t n,
                              uint64_t first, uint64_t ts)
{
    eb_segsum_acc *a = &ls->acc;
    if (first != a->base + a->n) {
        /* seqs handed out again after a failed append: forget what was
         * described from there (a gap, never expected, starts afresh: the
         * segment it falls in is read back) */
        eb_segsum_acc pre;
        bool keep = first >= a->base && first < a->base + a->n;
        if (keep)
            eb__segsum_acc_split(a, first, &pre);
        eb__segsum_acc_free(a);
        if (keep)
            *a = pre;
        else
            eb__segsum_acc_init(a, first);
    }
    if (n > ls->hcap) {
        ls->hcap = n > 2 * ls->hcap ? n : 2 * ls->hcap;
        ls->hs = eb_xrealloc(ls->hs, ls->hcap * sizeof *ls->hs);
    }
    ls->hseq = first;
    ls->hn = n;
    for (size_t i = 0; i < n; i++) {
        eb_store_rec r = {.seq = first + i, .ts_us = ts, .type = recs[i].type,
                          .flags = recs[i].flags, .len = recs[i].len, .data = recs[i].data};
        eb_store_desc d;
        int ev = ls->describe(&r, &d);
        eb__segsum_acc_add(a, first + i, ev ? &d : NULL, &ls->hs[i][0], &ls->hs[i][1]);
    }
}

static int ls_append(eb_store *s, const eb_store_rec_in *recs, size_t n, bool inline_ok,
                     uint64_t *first_seq, uint64_t *ts_us, eb_store_done_cb cb, void *arg)
{
    log_store *ls = (log_store *)(void *)s;
    const eb_log_rec_in *lr = (const eb_log_rec_in *)(const void *)recs;
    if (!ls->thread_started)
        return inline_ok ? eb_log_append_inline(ls->log, lr, n, first_seq, ts_us, cb, arg)
                         : eb_log_append(ls->log, lr, n, first_seq, ts_us, cb, arg);
    pthread_mutex_lock(&ls->acc_mu);
    int rc = inline_ok ? eb_log_append_inline(ls->log, lr, n, first_seq, ts_us, cb, arg)
                       : eb_log_append(ls->log, lr, n, first_seq, ts_us, cb, arg);
    if (rc >= 0 && n)
        describe_appended(ls, recs, n, *first_seq, *ts_us);
    pthread_mutex_unlock(&ls->acc_mu);
    return rc;
}

/* The hash (which: 0 the id's, 1 the (source, id)'s) describe_appended
 * found for seq, or 0. */
static uint64_t appended_hash(const log_store *ls, uint64_t seq, int which)
{
    return seq >= ls->hseq && seq - ls->hseq < ls->hn ? ls->hs[seq - ls->hseq][which] : 0;
}

typedef struct scan_ctx {
    eb_store_scan_cb cb;
    void            *arg;
} scan_ctx;

static int scan_one(void *arg, const eb_log_rec *rec)
{
    scan_ctx *c = arg;
    return c->cb(c->arg, (const eb_store_rec *)(const void *)rec);
}

static int ls_scan(eb_store *s, uint64_t from, size_t max, eb_store_scan_cb cb, void *arg)
{
    scan_ctx c = {cb, arg};
    return eb_log_scan(log_of(s), from, max, scan_one, &c);
}

static int ls_seek_time(eb_store *s, uint64_t ts_us, uint64_t *seq)
{
    return eb_log_seek_time(log_of(s), ts_us, seq);
}

static uint64_t ls_first_seq(eb_store *s) { return eb_log_first_seq(log_of(s)); }
static uint64_t ls_next_seq(eb_store *s) { return eb_log_next_seq(log_of(s)); }
static uint64_t ls_durable_seq(eb_store *s) { return eb_log_durable_seq(log_of(s)); }

static void ls_stats(eb_store *s, eb_store_stats *out)
{
    eb_log_stats st;
    eb_log_get_stats(log_of(s), &st);
    *out = (eb_store_stats){st.bytes, st.segments, st.syncs, st.error,
                            eb__keyidx_ids_held(&((log_store *)(void *)s)->kidx)};
}

static int ls_drop_before(eb_store *s, uint64_t seq)
{
    uint64_t deleted = 0;
    return eb_log_drop_before(log_of(s), seq, &deleted);
}

static void stop_summarizer(log_store *ls);
static void free_sums(log_store *ls);

static void ls_close(eb_store *s)
{
    log_store *ls = (log_store *)(void *)s;
    /* A segment sealed from here on (the close drains the pending appends)
     * gets its summary at the next open. */
    stop_summarizer(ls);
    eb_log_close(ls->log);
    free_sums(ls);
    eb__keyidx_free(&ls->kidx);
    eb__segsum_acc_free(&ls->acc);
    free(ls->hs);
    pthread_mutex_destroy(&ls->acc_mu);
    pthread_mutex_destroy(&ls->mu);
    pthread_cond_destroy(&ls->cv);
    free(ls);
}

static eb_keyidx *kidx_of(eb_store *s)
{
    return &((log_store *)(void *)s)->kidx;
}

/* Frees the id generations the summaries installed since the last cut
 * cover (loop thread; one atomic load per event while none was). */
static void cut_ids(log_store *ls)
{
    uint64_t covered = atomic_load_explicit(&ls->covered, memory_order_acquire);
    if (covered != ls->cut_at) {
        ls->cut_at = covered;
        eb__keyidx_ids_cut(&ls->kidx, covered);
    }
}

static int ls_index_add(eb_store *s, const char *key, size_t klen, uint64_t version,
                        const char *id, size_t idlen, uint64_t seq)
{
    log_store *ls = (log_store *)(void *)s;
    cut_ids(ls);
    if (klen)
        eb__keyidx_add(&ls->kidx, key, klen, version, seq);
    uint64_t h = appended_hash(ls, seq, 0);
    if (h)
        eb__keyidx_add_id_hash(&ls->kidx, h, seq);
    else
        eb__keyidx_add_id(&ls->kidx, id, idlen, seq);
    return 0;
}

static uint64_t ls_key_version(eb_store *s, const char *key, size_t klen)
{
    return eb__keyidx_version(kidx_of(s), key, klen);
}

static size_t ls_key_seqs(eb_store *s, const char *key, size_t klen, uint64_t from_version,
                          uint64_t *seqs, size_t max, uint64_t *first_version)
{
    return eb__keyidx_range(kidx_of(s), key, klen, from_version, ls_first_seq(s),
                            ls_durable_seq(s), seqs, max, first_version);
}

/* Forgets the summaries of segments retention removed (mu held). */
static void trim_sums(log_store *ls)
{
    uint64_t first = eb_log_first_seq(ls->log);
    size_t k = 0;
    while (k < ls->nsums && ls->sums[k]->seg.base + ls->sums[k]->seg.count <= first) {
        eb__segsum_free(ls->sums[k]);
        free(ls->sums[k]);
        k++;
    }
    if (k) {
        memmove(ls->sums, ls->sums + k, (ls->nsums - k) * sizeof *ls->sums);
        ls->nsums -= k;
    }
}

/* The ids of the records since open (and of the active segment at open)
 * are in memory until a summary covers them, the sealed segments' in their
 * mapped summaries: the newest below `below` is found first (memory holds
 * every record newer than the ids it freed, and than the summaries read at
 * open); a hit older than the freed ids may have a newer one in a summary. */
static uint64_t lookup(log_store *ls, bool by_source, const char *src, size_t slen,
                       const char *id, size_t idlen, uint64_t below)
{
    cut_ids(ls);
    uint64_t first = ls_first_seq(&ls->base), durable = ls_durable_seq(&ls->base);
    if (below > durable)
        below = durable;
    uint64_t seq = by_source ? eb__keyidx_find_source_id(&ls->kidx, src, slen, id, idlen, below)
                             : eb__keyidx_find_id(&ls->kidx, id, idlen, below);
    if (seq && seq >= first && seq >= eb__keyidx_ids_gone_below(&ls->kidx))
        return seq;
    uint64_t mem = seq >= first ? seq : 0;
    uint64_t h = by_source ? eb__keyidx_source_id_hash(src, slen, id, idlen)
                           : eb__keyidx_id_hash(id, idlen);
    pthread_mutex_lock(&ls->mu);
    trim_sums(ls);
    seq = eb__segsum_set_find(ls->sums, ls->nsums, by_source, h, below);
    pthread_mutex_unlock(&ls->mu);
    if (seq < mem)
        seq = mem;
    return seq >= first ? seq : 0;
}

static uint64_t ls_lookup_id(eb_store *s, const char *id, size_t idlen)
{
    return lookup((log_store *)(void *)s, false, NULL, 0, id, idlen, UINT64_MAX);
}

static uint64_t ls_lookup_id_below(eb_store *s, const char *id, size_t idlen, uint64_t below)
{
    return lookup((log_store *)(void *)s, false, NULL, 0, id, idlen, below);
}

static int ls_index_source_id(eb_store *s, const char *src, size_t slen, const char *id,
                              size_t idlen, uint64_t seq)
{
    log_store *ls = (log_store *)(void *)s;
    cut_ids(ls);
    uint64_t h = appended_hash(ls, seq, 1);
    if (h)
        return eb__keyidx_add_source_id_hash(&ls->kidx, h, seq);
    return eb__keyidx_add_source_id(&ls->kidx, src, slen, id, idlen, seq);
}

static uint64_t ls_lookup_source_id(eb_store *s, const char *src, size_t slen, const char *id,
                                    size_t idlen, uint64_t below)
{
    return lookup((log_store *)(void *)s, true, src, slen, id, idlen, below);
}

static uint64_t ls_indexed_upto(eb_store *s)
{
    return ((log_store *)(void *)s)->indexed_upto;
}

/* Whole summarized segments inside [from, to): their counts by type. */
static int ls_type_counts(eb_store *s, uint64_t from, uint64_t to, uint64_t *lo, uint64_t *hi,
                          void (*fn)(void *, const char *, size_t, uint64_t), void *arg)
{
    log_store *ls = (log_store *)(void *)s;
    pthread_mutex_lock(&ls->mu);
    trim_sums(ls);
    eb__segsum_set_type_counts(ls->sums, ls->nsums, from, to, lo, hi, fn, arg);
    pthread_mutex_unlock(&ls->mu);
    return 0;
}

/* Skips the sealed segments whose summary counts no client-chosen id. */
static void ls_client_id_range(eb_store *s, uint64_t from, uint64_t *lo, uint64_t *hi)
{
    log_store *ls = (log_store *)(void *)s;
    pthread_mutex_lock(&ls->mu);
    trim_sums(ls);
    eb__segsum_set_client_id_range(ls->sums, ls->nsums, from, lo, hi);
    pthread_mutex_unlock(&ls->mu);
}

static const eb_store_ops log_ops = {
    ls_append,     ls_scan,        ls_seek_time, ls_first_seq, ls_next_seq,
    ls_durable_seq, ls_stats,      ls_drop_before, ls_close,   ls_index_add,
    ls_key_version, ls_key_seqs,   ls_lookup_id, ls_indexed_upto, ls_type_counts,
    ls_client_id_range, ls_index_source_id, ls_lookup_source_id, ls_lookup_id_below};

/* --- summaries -------------------------------------------------------------------- */

/* Segment seg's ids need no memory (mu held): a summary of it is
 * installed (ok), or it is gone (retention deleted it while it was being
 * summarized). Segments come in seal order; one that is neither makes a
 * gap: covered stops there (its ids stay in memory) until a reopen. */
static void cover(log_store *ls, const eb_log_seg_info *seg, bool ok)
{
    uint64_t covered = atomic_load_explicit(&ls->covered, memory_order_relaxed);
    if (!ok && seg->base + seg->count > eb_log_first_seq(ls->log))
        ls->gap = true;
    if (!ls->gap && (covered == 0 || seg->base <= covered))
        atomic_store_explicit(&ls->covered, seg->base + seg->count, memory_order_release);
    else
        ls->gap = true;
}

/* Appends a loaded summary (mu held, or before the thread runs); the
 * summaries are installed in seal order. */
static void add_sum(log_store *ls, eb_segsum *m)
{
    cover(ls, &m->seg, true);
    if (ls->nsums == ls->sums_cap) {
        ls->sums_cap = ls->sums_cap ? ls->sums_cap * 2 : 16;
        ls->sums = eb_xrealloc(ls->sums, ls->sums_cap * sizeof *ls->sums);
    }
    ls->sums[ls->nsums++] = m;
}

static void free_sums(log_store *ls)
{
    for (size_t i = 0; i < ls->nsums; i++) {
        eb__segsum_free(ls->sums[i]);
        free(ls->sums[i]);
    }
    free(ls->sums);
    free(ls->queue);
}

static void key_entry(void *arg, const char *key, size_t len, uint64_t version, uint64_t seq)
{
    eb__keyidx_add(arg, key, len, version, seq);
}

/* Loads the summary of sealed segment seg, writing it first when it is
 * missing or damaged: from the description of its records as they were
 * appended (the summarizer: appended), else by reading the segment back;
 * with_keys: its key entries into the key streams. */
static int summarize(log_store *ls, const eb_log_seg_info *seg, bool with_keys,
                     uint64_t *described, bool appended)
{
    char path[4200];
    eb_log_aux_path(ls->log, seg->base, path, sizeof path);
    eb_segsum_acc piece;
    if (appended) { /* the segment's records leave the description */
        pthread_mutex_lock(&ls->acc_mu);
        eb__segsum_acc_split(&ls->acc, seg->base + seg->count, &piece);
        pthread_mutex_unlock(&ls->acc_mu);
    }
    eb_segsum *m = eb_xcalloc(1, sizeof *m);
    eb_segsum_key_fn kf = with_keys ? key_entry : NULL;
    int rc = eb__segsum_load(path, seg, m, kf, &ls->kidx);
    if (rc && appended && eb__segsum_write(&piece, seg, path) == 0) {
        rc = eb__segsum_load(path, seg, m, kf, &ls->kidx);
        pthread_mutex_lock(&ls->acc_mu);
        ls->from_acc++;
        pthread_mutex_unlock(&ls->acc_mu);
    }
    if (appended)
        eb__segsum_acc_free(&piece);
    if (rc) {
        if (with_keys)
            ls->rebuilt++;
        if (appended) {
            pthread_mutex_lock(&ls->acc_mu);
            ls->read_back++;
            pthread_mutex_unlock(&ls->acc_mu);
        }
        rc = eb__segsum_build(ls->log, seg, ls->describe, path, described);
        if (rc == 0)
            rc = eb__segsum_load(path, seg, m, kf, &ls->kidx);
    }
    if (rc) {
        free(m);
        pthread_mutex_lock(&ls->mu);
        cover(ls, seg, false);
        pthread_mutex_unlock(&ls->mu);
        return rc;
    }
    pthread_mutex_lock(&ls->mu);
    add_sum(ls, m);
    pthread_mutex_unlock(&ls->mu);
    return 0;
}

/* The summarizer thread: summarizes each segment the log seals (the key
 * streams have those keys already: the bus reported them). */
static void *summarizer(void *arg)
{
    log_store *ls = arg;
    pthread_mutex_lock(&ls->mu);
    for (;;) {
        while (!ls->nqueue && !ls->stop)
            pthread_cond_wait(&ls->cv, &ls->mu);
        if (!ls->nqueue)
            break;
        eb_log_seg_info seg = ls->queue[0];
        memmove(ls->queue, ls->queue + 1, --ls->nqueue * sizeof *ls->queue);
        pthread_mutex_unlock(&ls->mu);
        /* A failure costs a rebuild at the next open, not a record. */
        summarize(ls, &seg, false, NULL, true);
        pthread_mutex_lock(&ls->mu);
    }
    pthread_mutex_unlock(&ls->mu);
    return NULL;
}

/* The log's seal hook (writer thread): queue the segment. */
static void on_seal(void *arg, const eb_log_seg_info *seg)
{
    log_store *ls = arg;
    pthread_mutex_lock(&ls->mu);
    if (ls->nqueue == ls->queue_cap) {
        ls->queue_cap = ls->queue_cap ? ls->queue_cap * 2 : 8;
        ls->queue = eb_xrealloc(ls->queue, ls->queue_cap * sizeof *ls->queue);
    }
    ls->queue[ls->nqueue++] = *seg;
    pthread_cond_signal(&ls->cv);
    pthread_mutex_unlock(&ls->mu);
}

void eb__store_log_summarized(eb_store *s, uint64_t *appended, uint64_t *read_back)
{
    log_store *ls = (log_store *)(void *)s;
    pthread_mutex_lock(&ls->acc_mu);
    *appended = ls->from_acc;
    *read_back = ls->read_back;
    pthread_mutex_unlock(&ls->acc_mu);
}

static void stop_summarizer(log_store *ls)
{
    if (!ls->thread_started)
        return;
    eb_log_set_seal_hook(ls->log, NULL, NULL);
    pthread_mutex_lock(&ls->mu);
    ls->stop = true;
    pthread_cond_signal(&ls->cv);
    pthread_mutex_unlock(&ls->mu);
    pthread_join(ls->thread, NULL);
    ls->thread_started = false;
}

/* Removes summaries whose segment is gone (retention deleted it while its
 * summary was being written) and the lookups file of earlier versions. */
static void remove_strays(log_store *ls, const char *data_dir, const char *dir,
                          const eb_log_seg_info *segs, size_t n)
{
    char path[4400];
    snprintf(path, sizeof path, "%.4096s/events.lookups", data_dir);
    unlink(path);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        uint64_t base = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20 || strncmp(end, "." EB_LOG_AUX_EXT, 4) != 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = segs[i].base == base && end[4] == '\0';
        if (!known) { /* also a temp file a crash left */
            snprintf(path, sizeof path, "%.4096s/%.255s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    (void)ls;
}

static int index_one(void *arg, const eb_log_rec *rec)
{
    log_store *ls = arg;
    eb_store_desc d;
    ls->described++;
    int ev = ls->describe((const eb_store_rec *)(const void *)rec, &d);
    if (rec->seq == ls->acc.base + ls->acc.n) /* the summary of the active segment */
        eb__segsum_acc_add(&ls->acc, rec->seq, ev ? &d : NULL, NULL, NULL);
    if (ev && !d.unindexed) {
        if (d.key_len)
            eb__keyidx_add(&ls->kidx, d.key, d.key_len, d.version, rec->seq);
        eb__keyidx_add_id(&ls->kidx, d.id, d.id_len, rec->seq);
        eb__keyidx_add_source_id(&ls->kidx, d.source, d.source_len, d.id, d.id_len, rec->seq);
    }
    return 0;
}

/* EVENTS with describe: the lookups and counts at open, reading only the
 * active segment (and the sealed ones whose summary is missing or
 * damaged); then the summarizer thread for the segments sealed later. */
static int open_summaries(log_store *ls, const char *data_dir, const char *dir)
{
    size_t n = eb_log_sealed(ls->log, NULL, 0);
    eb_log_seg_info *segs = eb_xmalloc((n ? n : 1) * sizeof *segs);
    n = eb_log_sealed(ls->log, segs, n);
    remove_strays(ls, data_dir, dir, segs, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t read = 0;
        rc = summarize(ls, &segs[i], true, &read, false);
        ls->described += read;
    }
    uint64_t from = n ? segs[n - 1].base + segs[n - 1].count : eb_log_first_seq(ls->log);
    free(segs);
    eb__segsum_acc_free(&ls->acc);
    eb__segsum_acc_init(&ls->acc, from);
    uint64_t durable = eb_log_durable_seq(ls->log);
    while (rc == 0 && from < durable) {
        uint64_t before = ls->described;
        rc = eb_log_scan(ls->log, from, durable - from, index_one, ls);
        if (ls->described == before)
            break;
        from += ls->described - before;
    }
    if (rc)
        return rc;
    ls->indexed_upto = durable;
    if (pthread_create(&ls->thread, NULL, summarizer, ls) != 0)
        return EB_ENOMEM;
    ls->thread_started = true;
    eb_log_set_seal_hook(ls->log, on_seal, ls);
    return 0;
}

static int ls_open(const eb_store_opts *o, eb_store **out, eb_store_recovery *rep)
{
    if (mkdir(o->data_dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", o->data_dir, o->kind == EB_STORE_META ? "meta" : "events");
    eb_log_opts lo = {.dir = dir,
                      .fsync = o->sync == EB_STORE_SYNC_ALWAYS     ? EB_FSYNC_ALWAYS
                               : o->sync == EB_STORE_SYNC_INTERVAL ? EB_FSYNC_INTERVAL
                                                                   : EB_FSYNC_NEVER,
                      .fsync_interval_ms = o->sync_interval_ms};
    if (o->kind == EB_STORE_META) {
        lo.segment_bytes = 16u << 20; /* state is never aged out */
    } else {
        lo.retention_ms = o->retention_ms;
        lo.retention_bytes = o->retention_bytes;
    }
    log_store *ls = eb_xcalloc(1, sizeof *ls);
    eb__keyidx_init(&ls->kidx);
    pthread_mutex_init(&ls->mu, NULL);
    pthread_mutex_init(&ls->acc_mu, NULL);
    eb__segsum_acc_init(&ls->acc, 0);
    pthread_cond_init(&ls->cv, NULL);
    ls->base.ops = &log_ops;
    eb_log_recovery lr = {0};
    int rc = eb_log_open(&lo, &ls->log, &lr);
    if (rc) {
        eb__keyidx_free(&ls->kidx);
        free(ls);
        return rc;
    }
    if (o->kind == EB_STORE_EVENTS && o->describe) {
        ls->describe = o->describe;
        if ((rc = open_summaries(ls, o->data_dir, dir)) != 0) {
            ls_close(&ls->base);
            return rc;
        }
    }
    if (rep)
        *rep = (eb_store_recovery){lr.segments,  lr.records,         lr.first_seq,
                                   lr.last_seq,  lr.truncated_bytes, lr.indexes_rebuilt,
                                   lr.elapsed_ms, ls->described, ls->rebuilt};
    *out = &ls->base;
    return 0;
}

const eb_store_engine eb_store_log_engine = {"log", ls_open};
