/* store_log.c - the adapter that makes the embedded log (src/log) a
 * storage engine (store.h). Records pass through without a copy: the
 * store's record structs have the log's layout (checked below), and the
 * log's inline append is the store's inline_ok append. */
#include "store/store_log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "eventbus/err.h"
#include "log/log.h"

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
    eb_store base; /* first: a log_store is an eb_store */
    eb_log  *log;
} log_store;

static eb_log *log_of(eb_store *s)
{
    return ((log_store *)(void *)s)->log;
}

static int ls_append(eb_store *s, const eb_store_rec_in *recs, size_t n, bool inline_ok,
                     uint64_t *first_seq, uint64_t *ts_us, eb_store_done_cb cb, void *arg)
{
    const eb_log_rec_in *lr = (const eb_log_rec_in *)(const void *)recs;
    return inline_ok ? eb_log_append_inline(log_of(s), lr, n, first_seq, ts_us, cb, arg)
                     : eb_log_append(log_of(s), lr, n, first_seq, ts_us, cb, arg);
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
    *out = (eb_store_stats){st.bytes, st.segments, st.syncs, st.broken != 0};
}

static int ls_drop_before(eb_store *s, uint64_t seq)
{
    uint64_t deleted = 0;
    return eb_log_drop_before(log_of(s), seq, &deleted);
}

static void ls_close(eb_store *s)
{
    eb_log_close(log_of(s));
    free(s);
}

static const eb_store_ops log_ops = {ls_append,      ls_scan,  ls_seek_time,   ls_first_seq,
                                     ls_next_seq,    ls_durable_seq, ls_stats, ls_drop_before,
                                     ls_close};

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
    log_store *ls = calloc(1, sizeof *ls);
    if (!ls)
        return EB_ENOMEM;
    eb_log_recovery lr = {0};
    int rc = eb_log_open(&lo, &ls->log, &lr);
    if (rc) {
        free(ls);
        return rc;
    }
    if (rep)
        *rep = (eb_store_recovery){lr.segments,  lr.records,         lr.first_seq,
                                   lr.last_seq,  lr.truncated_bytes, lr.indexes_rebuilt,
                                   lr.elapsed_ms};
    ls->base.ops = &log_ops;
    *out = &ls->base;
    return 0;
}

const eb_store_engine eb_store_log_engine = {"log", ls_open};
