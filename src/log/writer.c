/* writer.c - the log's group commit: appenders encode into the pending
 * batch under `mu`; the writer thread (or an inline appender under
 * interval/never) writes it, syncs it under the policy, publishes it to
 * readers and runs its callbacks; rolling segments; running out of space
 * and probing for it again (see log.h, ARCHITECTURE.md "Group commit"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log_impl.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/xmalloc.h"

/* --- the writer thread -------------------------------------------------------- */

/* The active segment. Only the writer thread adds segments and retention
 * never removes the active one, so the pointer stays valid for the writer;
 * the lock covers reading the array itself. */
static seg *active(eb_log *l)
{
    pthread_rwlock_rdlock(&l->rw);
    seg *a = l->segs[l->nsegs - 1];
    pthread_rwlock_unlock(&l->rw);
    return a;
}

static void grow_seg_idx(seg *s, uint64_t need)
{
    if (need <= s->idx_cap)
        return;
    size_t cap = s->idx_cap ? s->idx_cap : 1024;
    while (cap < need)
        cap *= 2;
    s->idx = eb_xrealloc(s->idx, cap * EB_LOG_IDX_ENT);
    s->idx_cap = cap;
}

/* Seals the active segment (index file written) and starts a new one. */
static int roll(eb_log *l)
{
    seg *a = active(l);
    /* Under interval and never the tail may be unsynced, and the periodic
     * sync only ever syncs the active segment: sync it now, or a power cut
     * leaves a sealed segment shorter than its index and its successor's
     * base (a gap: the log refuses to open). */
    int rc = l->o.fsync == EB_FSYNC_ALWAYS || fdatasync(a->fd) == 0 ? 0 : -errno;
    if (!rc)
        rc = eb__log_write_index(l, a);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&l->rw);
    a->sealed = true;
    eb__log_map_data(a);
    eb_log_seg_info sealed = {a->base, a->count, a->size};
    rc = eb__log_new_segment(l, a->base + a->count);
    pthread_rwlock_unlock(&l->rw);
    if (!rc && l->seal_hook)
        l->seal_hook(l->seal_arg, &sealed);
    if (!rc && (l->o.retention_ms || l->o.retention_bytes))
        eb_log_enforce_retention(l, l->o.clock(l->o.clock_arg), NULL);
    return rc;
}

/* Whether a batch of len bytes must go to a new segment. */
static bool needs_roll(const eb_log *l, const seg *a, size_t len)
{
    return a->count && a->size + len > l->o.segment_bytes;
}

/* Counts a batch written by write_batch (mu held: eb_log_get_stats reads
 * the counters and the writer reads dirty under it). */
static void count_write(eb_log *l)
{
    l->st.writes++;
    if (l->o.fsync == EB_FSYNC_ALWAYS)
        l->st.syncs++;
    l->dirty = l->o.fsync == EB_FSYNC_INTERVAL;
}

/* Writes one batch at the end of the active segment and makes it durable
 * under the policy; then publishes it to readers. Runs without mu (the
 * writer thread) or with it (an inline appender): it touches no field that
 * mu guards; the caller counts the write with count_write under mu. */
static int write_batch(eb_log *l, batch *b)
{
    seg *a = active(l);
    if (needs_roll(l, a, b->bytes.len)) {
        int rc = roll(l);
        if (rc)
            return rc;
        a = active(l);
    }
    if (a->count + b->records > a->idx_cap) { /* realloc moves it: not under readers */
        pthread_rwlock_wrlock(&l->rw);
        grow_seg_idx(a, a->count + b->records);
        pthread_rwlock_unlock(&l->rw);
    }
    int rc = eb__log_write_all(a->fd, b->bytes.data, b->bytes.len, a->size);
    if (!rc && l->o.fsync == EB_FSYNC_ALWAYS)
        rc = RECORD_DATASYNC(a->fd) == 0 ? 0 : -errno;
    if (rc && eb__log_no_space(rc) && ftruncate(a->fd, (off_t)a->size) != 0)
        rc = -errno; /* the torn bytes stay: stop for good */
    if (rc)
        return rc;
    /* Publish: index entries for each record, then the durable mark. */
    pthread_rwlock_wrlock(&l->rw);
    const unsigned char *p = (const unsigned char *)b->bytes.data;
    uint64_t off = a->size, last = 0;
    for (uint64_t i = 0; i < b->records; i++) {
        eb_log_rhdr h;
        eb__log_rhdr_decode(p, &h);
        unsigned char *e = a->idx + (a->count + i) * EB_LOG_IDX_ENT;
        eb__put64(e, off);
        eb__put64(e + 8, h.ts_us);
        off += EB_LOG_REC_HDR + h.len;
        p += EB_LOG_REC_HDR + h.len;
        last = h.seq;
    }
    a->count += b->records;
    a->size = off;
    atomic_store(&l->durable, last + 1);
    pthread_rwlock_unlock(&l->rw);
    return 0;
}

static void finish(eb_log *l, batch *b, int status)
{
    for (size_t i = 0; i < b->ncbs; i++)
        if (b->cbs[i].cb)
            b->cbs[i].cb(b->cbs[i].arg, status);
    if (status == 0 && l->hook && b->records)
        l->hook(l->hook_arg, atomic_load(&l->durable));
    eb_buf_reset(&b->bytes);
    b->ncbs = 0;
    b->records = 0;
}

/* Out of space (mu held): refuse appends until a probe finds room. */
static void enter_full(eb_log *l)
{
    l->full = true;
    l->probe_ms = PROBE_MIN_MS;
    l->probe_due_ms = eb_clock_mono_ms() + l->probe_ms;
    l->st.full_events++;
}

/* Full (mu held, released during the I/O): whether PROBE_BYTES fit at the
 * end of the active segment now; writes them and cuts them off again. */
static void probe_space(eb_log *l)
{
    seg *a = active(l);
    static const char zeros[PROBE_BYTES];
    pthread_mutex_unlock(&l->mu);
    int rc = eb__log_write_all(a->fd, zeros, sizeof zeros, a->size);
    if (ftruncate(a->fd, (off_t)a->size) != 0 && !rc)
        rc = -errno;
    pthread_mutex_lock(&l->mu);
    l->st.probes++;
    if (rc == 0) {
        l->full = false;
        pthread_cond_broadcast(&l->space);
    } else if (eb__log_no_space(rc)) {
        l->probe_ms = l->probe_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : l->probe_ms * 2;
        l->probe_due_ms = eb_clock_mono_ms() + l->probe_ms;
    } else if (!l->broken) {
        l->broken = rc;
        l->full = false;
    }
}

/* Waits for work; under INTERVAL syncs when due; while full, probes for
 * space with backoff. */
static void wait_for_work(eb_log *l, uint64_t *last_sync)
{
    while (!l->pend.ncbs && !l->closing) {
        uint64_t now = eb_clock_mono_ms();
        bool probing = l->full && !l->broken;
        if (probing && now >= l->probe_due_ms) {
            probe_space(l);
            continue;
        }
        bool syncing = l->o.fsync == EB_FSYNC_INTERVAL && l->dirty;
        uint64_t due = *last_sync + l->o.fsync_interval_ms;
        if (syncing && now >= due) {
            l->dirty = false;
            int fd = active(l)->fd;
            pthread_mutex_unlock(&l->mu);
            int rc = RECORD_DATASYNC(fd) == 0 ? 0 : -errno;
            pthread_mutex_lock(&l->mu);
            if (rc && !l->broken)
                l->broken = rc;
            l->st.syncs++;
            *last_sync = eb_clock_mono_ms();
            continue;
        }
        if (!probing && !syncing) {
            pthread_cond_wait(&l->wake, &l->mu);
            continue;
        }
        uint64_t at = probing && (!syncing || l->probe_due_ms < due) ? l->probe_due_ms : due;
        struct timespec ts = eb_clock_deadline(CLOCK_REALTIME, at - now);
        pthread_cond_timedwait(&l->wake, &l->mu, &ts);
    }
}

void *eb__log_writer_main(void *arg)
{
    eb_log *l = arg;
    uint64_t last_sync = eb_clock_mono_ms();
    pthread_mutex_lock(&l->mu);
    for (;;) {
        wait_for_work(l, &last_sync);
        if (!l->pend.ncbs && l->closing)
            break;
        batch tmp = l->work;
        l->work = l->pend;
        l->pend = tmp;
        l->writing = true;
        pthread_cond_broadcast(&l->space);
        int status = l->broken;
        pthread_mutex_unlock(&l->mu);
        if (!status)
            status = write_batch(l, &l->work);
        pthread_mutex_lock(&l->mu);
        if (status && !l->broken) {
            if (eb__log_no_space(status))
                enter_full(l); /* nothing of the batch is kept: it may be sent again */
            else
                l->broken = status; /* a failed write or sync: stop for good */
        } else if (!status) {
            count_write(l);
        }
        pthread_mutex_unlock(&l->mu);
        finish(l, &l->work, status ? eb__log_map_status(status) : 0);
        pthread_mutex_lock(&l->mu);
        if (l->full) {
            /* The appends queued behind the failed batch carry the seqs
             * after it: fail them too, and hand those seqs out again. */
            batch spare = l->work; /* finished: empty */
            l->work = l->pend;
            l->pend = spare;
            pthread_cond_broadcast(&l->space);
            pthread_mutex_unlock(&l->mu);
            finish(l, &l->work, EB_ENOSPC);
            pthread_mutex_lock(&l->mu);
            l->next_seq = atomic_load(&l->durable);
        }
        l->writing = false;
    }
    bool sync = l->dirty && !l->broken;
    pthread_mutex_unlock(&l->mu);
    if (sync)
        fdatasync(active(l)->fd);
    return NULL;
}

/* --- appending ---------------------------------------------------------------- */

static void push_cb(batch *b, eb_log_done_cb cb, void *arg)
{
    if (b->ncbs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        b->cbs = eb_xrealloc(b->cbs, cap * sizeof *b->cbs);
        b->cap = cap;
    }
    b->cbs[b->ncbs++] = (pend_cb){cb, arg};
}

static void encode(eb_log *l, const eb_log_rec_in *recs, size_t n, uint64_t seq, uint64_t ts)
{
    for (size_t i = 0; i < n; i++) {
        eb_log_rhdr h = {recs[i].len, 0, seq + i, ts, recs[i].type, recs[i].flags,
                         (uint32_t)(n - 1 - i)};
        unsigned char hb[EB_LOG_REC_HDR];
        eb__log_rhdr_encode(&h, hb);
        eb__put32(hb + 4, eb__log_rec_crc(hb, recs[i].data, recs[i].len));
        eb_buf_append(&l->pend.bytes, hb, sizeof hb);
        eb_buf_append(&l->pend.bytes, recs[i].data, recs[i].len);
    }
}

/* The encoded size of n records in *bytes; EB_ETOOBIG if one is over the bound. */
static int batch_bytes(const eb_log *l, const eb_log_rec_in *recs, size_t n, size_t *bytes)
{
    *bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len > l->o.max_record_bytes)
            return EB_ETOOBIG;
        *bytes += EB_LOG_REC_HDR + recs[i].len;
    }
    return 0;
}

/* Writes n records on the calling thread (mu held, nothing pending or
 * being written, the batch fits the active segment): pend is used as the
 * scratch batch and left empty. */
static int write_inline(eb_log *l, const eb_log_rec_in *recs, size_t n, uint64_t now,
                        uint64_t *first_seq, uint64_t *ts_us)
{
    uint64_t ts = now > l->last_ts ? now : l->last_ts;
    encode(l, recs, n, l->next_seq, ts);
    l->pend.records = n;
    bool was_dirty = l->dirty;
    int rc = write_batch(l, &l->pend);
    eb_buf_reset(&l->pend.bytes);
    l->pend.records = 0;
    if (rc && eb__log_no_space(rc)) {
        enter_full(l);
        pthread_cond_signal(&l->wake); /* the writer probes */
        return EB_ENOSPC;
    }
    if (rc) {
        l->broken = rc;
        return rc;
    }
    count_write(l);
    l->last_ts = ts;
    *first_seq = l->next_seq;
    *ts_us = ts;
    l->next_seq += n;
    l->st.appends++;
    l->st.records += n;
    if (l->dirty && !was_dirty)
        pthread_cond_signal(&l->wake); /* the writer times the next fdatasync */
    return 0;
}

/* Whether the caller may write a batch of `bytes` itself now (mu held):
 * a policy that answers after write(), nothing pending or being written,
 * no error, and no segment to roll (the writer rolls). */
static bool can_write_inline(eb_log *l, size_t bytes)
{
    return l->o.fsync != EB_FSYNC_ALWAYS && !l->pend.ncbs && !l->writing && !l->broken &&
           !l->full && !l->closing && !needs_roll(l, active(l), bytes) &&
           eb_buf_reserve(&l->pend.bytes, bytes);
}

/* eb_log_append, and eb_log_append_inline when may_inline. */
static int append(eb_log *l, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                  uint64_t *ts_us, eb_log_done_cb cb, void *arg, bool may_inline)
{
    size_t bytes;
    if (batch_bytes(l, recs, n, &bytes))
        return EB_ETOOBIG;
    uint64_t now = l->o.clock(l->o.clock_arg);
    pthread_mutex_lock(&l->mu);
    if (l->full && !l->broken) { /* refused at once: the writer probes for space */
        pthread_mutex_unlock(&l->mu);
        return EB_ENOSPC;
    }
    if (may_inline && n && can_write_inline(l, bytes)) {
        int rc = write_inline(l, recs, n, now, first_seq, ts_us);
        pthread_mutex_unlock(&l->mu);
        return rc ? rc : 1;
    }
    while (l->pend.bytes.len > MAX_PENDING_BYTES && !l->broken && !l->full && !l->closing)
        pthread_cond_wait(&l->space, &l->mu);
    int rc = l->broken ? l->broken : l->full ? EB_ENOSPC : l->closing ? EB_ECLOSED : 0;
    if (!rc && !eb_buf_reserve(&l->pend.bytes, bytes))
        rc = EB_ENOMEM; /* only where no out-of-memory handler is set (eb_buf) */
    if (!rc) {
        push_cb(&l->pend, cb, arg);
        uint64_t ts = now > l->last_ts ? now : l->last_ts; /* never step back */
        l->last_ts = ts;
        encode(l, recs, n, l->next_seq, ts);
        *first_seq = l->next_seq;
        *ts_us = ts;
        l->next_seq += n;
        l->pend.records += n;
        l->st.appends++;
        l->st.records += n;
        pthread_cond_signal(&l->wake);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int eb_log_append(eb_log *l, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                  uint64_t *ts_us, eb_log_done_cb cb, void *arg)
{
    return append(l, recs, n, first_seq, ts_us, cb, arg, false);
}

int eb_log_append_inline(eb_log *l, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                         uint64_t *ts_us, eb_log_done_cb cb, void *arg)
{
    return append(l, recs, n, first_seq, ts_us, cb, arg, true);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             done, status;
} sync_wait;

static void sync_done(void *arg, int status)
{
    sync_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int eb_log_append_sync(eb_log *l, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                       uint64_t *ts_us)
{
    sync_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    int rc = eb_log_append(l, recs, n, first_seq, ts_us, sync_done, &w);
    if (rc)
        return rc;
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.status;
}
