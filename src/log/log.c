/* log.c - the log: open and recovery, the group-commit writer thread,
 * appends, reads, time seeks, retention (see log.h).
 *
 * Locks: `mu` guards the pending batch (appenders and the writer);
 * `rw` guards the segment list and indexes (readers share it; the writer
 * takes it exclusively to grow an index, publish a durable batch, roll, or
 * delete). The writer is the writer thread, or an inline appender holding
 * `mu` while the writer thread holds no batch (`writing`). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "log/log_int.h"
#include "util/clock.h"
#include "util/crc32c.h"

#define READ_CHUNK (256u << 10)

/* Planted faults (meson -Dfault=skip_datasync|skip_dir_fsync, never in a
 * real build): each removes one sync so the power-loss test
 * (tests/powerloss) can show that it notices a missing one. */
#ifdef EB_FAULT_SKIP_DATASYNC
#define RECORD_DATASYNC(fd) ((void)(fd), 0)
#else
#define RECORD_DATASYNC(fd) fdatasync(fd)
#endif
#ifdef EB_FAULT_SKIP_DIR_FSYNC
#define DIR_FSYNC(fd) ((void)(fd), 0)
#else
#define DIR_FSYNC(fd) fsync(fd)
#endif

#define MAX_PENDING_BYTES (64u << 20)

/* One segment file. */
typedef struct seg {
    uint64_t       base;      /* seq of its first record */
    uint64_t       count;     /* durable records */
    uint64_t       size;      /* durable bytes (header included) */
    int            fd;        /* read (and, for the active one, write) */
    bool           sealed;    /* no more appends; index is a file */
    unsigned char *idx;       /* count entries: offset u64, ts u64 */
    size_t         idx_cap;   /* entries allocated (active, or rebuilt) */
    void          *map;       /* sealed: mmap of the .idx file, or NULL */
    size_t         map_len;
} seg;

/* An appender waiting for its batch. */
typedef struct pend_cb {
    eb_log_done_cb cb;
    void          *arg;
} pend_cb;

typedef struct batch {
    eb_buf   bytes; /* encoded records */
    pend_cb *cbs;
    size_t   ncbs, cap;
    uint64_t records;
} batch;

struct eb_log {
    eb_log_opts      o;
    char             dir[1024];
    int              dir_fd;
    pthread_rwlock_t rw;      /* segs, indexes */
    seg            **segs;
    size_t           nsegs, segs_cap;
    pthread_mutex_t  mu;      /* pend, next_seq, last_ts, flags */
    pthread_cond_t   wake;    /* writer: work to do */
    pthread_cond_t   space;   /* appenders: pending has room */
    batch            pend;    /* filled by appenders */
    batch            work;    /* being written by the writer */
    uint64_t         next_seq;
    uint64_t         last_ts;
    _Atomic uint64_t durable; /* records below are durable */
    _Atomic uint64_t first;   /* oldest retained */
    int              broken;  /* first write/sync error, sticky */
    bool             closing;
    bool             writing; /* the writer holds a batch (work) */
    bool             dirty;   /* INTERVAL: written, not yet synced */
    pthread_t        writer;
    void           (*hook)(void *, uint64_t);
    void            *hook_arg;
    eb_log_stats     st;
};

static uint64_t real_us(void *arg)
{
    (void)arg;
    return eb_clock_wall_us();
}

/* --- files ------------------------------------------------------------------ */

static void seg_path(const eb_log *l, uint64_t base, const char *ext, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRIu64 ".%s", l->dir, base, ext);
}

static int fsync_dir(eb_log *l)
{
    return DIR_FSYNC(l->dir_fd) == 0 ? 0 : -errno;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const char *s = p;
    while (n) {
        ssize_t w = pwrite(fd, s, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        s += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static uint64_t idx_off(const seg *s, uint64_t i) { return eb__get64(s->idx + i * EB_LOG_IDX_ENT); }
static uint64_t idx_ts(const seg *s, uint64_t i) { return eb__get64(s->idx + i * EB_LOG_IDX_ENT + 8); }

static void seg_free(seg *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->map)
        munmap(s->map, s->map_len);
    else
        free(s->idx);
    free(s);
}

/* Index file: header (48 bytes) then count entries.
 *   0 magic "EBLOGIDX", 8 u32 version, 12 u32 entry size (16), 16 u64 base,
 *   24 u64 count, 32 u64 segment file size it describes, 40 u32 CRC32C of
 *   the entries, 44 u32 CRC32C of bytes 0..43. */
static int write_index(eb_log *l, const seg *s)
{
    char path[1200], tmp[1210];
    seg_path(l, s->base, "idx", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unsigned char h[EB_LOG_IDX_HDR] = {0};
    memcpy(h, EB_LOG_IDX_MAGIC, 8);
    eb__put32(h + 8, EB_LOG_VERSION);
    eb__put32(h + 12, EB_LOG_IDX_ENT);
    eb__put64(h + 16, s->base);
    eb__put64(h + 24, s->count);
    eb__put64(h + 32, s->size);
    eb__put32(h + 40, s->count ? eb_crc32c(0, s->idx, s->count * EB_LOG_IDX_ENT) : 0);
    eb__put32(h + 44, eb_crc32c(0, h, 44));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, h, sizeof h, 0);
    if (!rc && s->count)
        rc = write_all(fd, s->idx, s->count * EB_LOG_IDX_ENT, EB_LOG_IDX_HDR);
    if (!rc && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    return rc ? rc : fsync_dir(l);
}

/* Maps a sealed segment's index file if it matches the segment; -1 if it
 * is missing or stale. */
static int load_index(eb_log *l, seg *s, uint64_t seg_size)
{
    char path[1200];
    seg_path(l, s->base, "idx", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    unsigned char h[EB_LOG_IDX_HDR];
    int ok = fstat(fd, &st) == 0 && pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h &&
             !memcmp(h, EB_LOG_IDX_MAGIC, 8) && eb__get32(h + 8) == EB_LOG_VERSION &&
             eb__get32(h + 12) == EB_LOG_IDX_ENT && eb__get64(h + 16) == s->base &&
             eb__get64(h + 32) == seg_size && eb__get32(h + 44) == eb_crc32c(0, h, 44);
    uint64_t count = ok ? eb__get64(h + 24) : 0;
    ok = ok && (uint64_t)st.st_size == EB_LOG_IDX_HDR + count * EB_LOG_IDX_ENT && count > 0;
    void *map = ok ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    unsigned char *ents = (unsigned char *)map + EB_LOG_IDX_HDR;
    if (eb_crc32c(0, ents, count * EB_LOG_IDX_ENT) != eb__get32(h + 40)) {
        munmap(map, (size_t)st.st_size);
        return -1;
    }
    s->map = map;
    s->map_len = (size_t)st.st_size;
    s->idx = ents;
    s->count = count;
    s->size = seg_size;
    return 0;
}

static int add_seg(eb_log *l, seg *s)
{
    if (l->nsegs == l->segs_cap) {
        size_t cap = l->segs_cap ? l->segs_cap * 2 : 16;
        seg **p = realloc(l->segs, cap * sizeof *p);
        if (!p)
            return EB_ENOMEM;
        l->segs = p;
        l->segs_cap = cap;
    }
    l->segs[l->nsegs++] = s;
    return 0;
}

/* Creates a new empty active segment starting at base. */
static int new_segment(eb_log *l, uint64_t base)
{
    char path[1200];
    seg_path(l, base, "seg", path, sizeof path);
    seg *s = calloc(1, sizeof *s);
    if (!s)
        return EB_ENOMEM;
    s->base = base;
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        int e = -errno;
        free(s);
        return e;
    }
    unsigned char h[EB_LOG_SEG_HDR];
    eb__log_seg_hdr(h, base, l->o.clock(l->o.clock_arg));
    int rc = write_all(s->fd, h, sizeof h, 0);
    if (!rc && fdatasync(s->fd) != 0)
        rc = -errno;
    if (!rc)
        rc = fsync_dir(l);
    s->size = EB_LOG_SEG_HDR;
    if (!rc)
        rc = add_seg(l, s);
    if (rc) {
        seg_free(s);
        unlink(path);
    }
    return rc;
}

/* --- recovery --------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the base seqs of the *.seg files, sorted. */
static int list_segments(eb_log *l, uint64_t **bases, size_t *n)
{
    DIR *d = opendir(l->dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    *n = 0;
    *bases = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char *end;
        if (len != 24 || strcmp(e->d_name + 20, ".seg") != 0)
            continue;
        uint64_t b = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *p = realloc(*bases, cap * sizeof *p);
            if (!p) {
                closedir(d);
                return EB_ENOMEM;
            }
            *bases = p;
        }
        (*bases)[(*n)++] = b;
    }
    closedir(d);
    if (*n > 1)
        qsort(*bases, *n, sizeof **bases, cmp_u64);
    return 0;
}

/* Opens a segment: sealed ones through their index file (rebuilt if
 * needed), the active one by scanning it and cutting a torn tail. */
static int open_segment(eb_log *l, uint64_t base, bool active, eb_log_recovery *rep)
{
    char path[1200];
    seg_path(l, base, "seg", path, sizeof path);
    seg *s = calloc(1, sizeof *s);
    if (!s)
        return EB_ENOMEM;
    s->base = base;
    s->sealed = !active;
    s->fd = open(path, (active ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        int e = -errno;
        seg_free(s);
        return e;
    }
    if (!active && load_index(l, s, (uint64_t)st.st_size) == 0)
        return add_seg(l, s);
    eb__seg_scan sc;
    int rc = eb__log_scan_segment(path, l->o.max_record_bytes, &sc);
    if (!rc && sc.base != base)
        sc.problem = "segment header names another base";
    if (!rc && sc.problem && !active) {
        rc = EB_ECORRUPT; /* damage inside a sealed segment: not a torn tail */
    } else if (!rc && sc.problem) {
        rep->truncated_bytes += sc.file_size - sc.valid_end;
        if (sc.valid_end < EB_LOG_SEG_HDR) { /* torn header: rewrite it */
            unsigned char h[EB_LOG_SEG_HDR];
            eb__log_seg_hdr(h, base, l->o.clock(l->o.clock_arg));
            rc = write_all(s->fd, h, sizeof h, 0);
            sc.valid_end = EB_LOG_SEG_HDR;
        }
        if (!rc && (ftruncate(s->fd, (off_t)sc.valid_end) != 0 || fdatasync(s->fd) != 0))
            rc = -errno;
    }
    if (rc) {
        free(sc.idx);
        seg_free(s);
        return rc;
    }
    s->idx = sc.idx;
    s->idx_cap = sc.count;
    s->count = sc.count;
    s->size = sc.valid_end;
    if (!active) {
        rep->indexes_rebuilt++;
        rc = write_index(l, s);
    }
    return rc ? rc : add_seg(l, s);
}

static int recover(eb_log *l, eb_log_recovery *rep)
{
    uint64_t *bases = NULL;
    size_t n = 0;
    int rc = list_segments(l, &bases, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++)
        rc = open_segment(l, bases[i], i + 1 == n, rep);
    free(bases);
    for (size_t i = 1; i < l->nsegs && !rc; i++)
        if (l->segs[i]->base != l->segs[i - 1]->base + l->segs[i - 1]->count)
            rc = EB_ECORRUPT; /* a gap or overlap between segments */
    if (!rc && l->nsegs == 0)
        rc = new_segment(l, 1);
    if (rc)
        return rc;
    seg *a = l->segs[l->nsegs - 1];
    l->next_seq = a->base + a->count;
    for (size_t i = l->nsegs; i-- > 0;)
        if (l->segs[i]->count) {
            l->last_ts = idx_ts(l->segs[i], l->segs[i]->count - 1);
            break;
        }
    atomic_store(&l->durable, l->next_seq);
    atomic_store(&l->first, l->segs[0]->base);
    rep->segments = l->nsegs;
    rep->first_seq = l->next_seq > l->segs[0]->base ? l->segs[0]->base : 0;
    rep->last_seq = l->next_seq > l->segs[0]->base ? l->next_seq - 1 : 0;
    rep->records = l->next_seq - l->segs[0]->base;
    return 0;
}

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

static int grow_seg_idx(seg *s, uint64_t need)
{
    if (need <= s->idx_cap)
        return 0;
    size_t cap = s->idx_cap ? s->idx_cap : 1024;
    while (cap < need)
        cap *= 2;
    unsigned char *p = realloc(s->idx, cap * EB_LOG_IDX_ENT);
    if (!p)
        return EB_ENOMEM;
    s->idx = p;
    s->idx_cap = cap;
    return 0;
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
        rc = write_index(l, a);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&l->rw);
    a->sealed = true;
    rc = new_segment(l, a->base + a->count);
    pthread_rwlock_unlock(&l->rw);
    if (!rc && (l->o.retention_ms || l->o.retention_bytes))
        eb_log_enforce_retention(l, l->o.clock(l->o.clock_arg), NULL);
    return rc;
}

/* Whether a batch of len bytes must go to a new segment. */
static bool needs_roll(const eb_log *l, const seg *a, size_t len)
{
    return a->count && a->size + len > l->o.segment_bytes;
}

/* Writes one batch at the end of the active segment and makes it durable
 * under the policy; then publishes it to readers. */
static int write_batch(eb_log *l, batch *b)
{
    seg *a = active(l);
    if (needs_roll(l, a, b->bytes.len)) {
        int rc = roll(l);
        if (rc)
            return rc;
        a = active(l);
    }
    int rc = 0;
    if (a->count + b->records > a->idx_cap) { /* realloc moves it: not under readers */
        pthread_rwlock_wrlock(&l->rw);
        rc = grow_seg_idx(a, a->count + b->records);
        pthread_rwlock_unlock(&l->rw);
    }
    if (!rc)
        rc = write_all(a->fd, b->bytes.data, b->bytes.len, a->size);
    if (!rc && l->o.fsync == EB_FSYNC_ALWAYS) {
        rc = RECORD_DATASYNC(a->fd) == 0 ? 0 : -errno;
        l->st.syncs++;
    }
    if (rc)
        return rc;
    l->dirty = l->o.fsync == EB_FSYNC_INTERVAL;
    l->st.writes++;
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

/* INTERVAL: waits for work or the next sync, syncing when due. */
static void wait_for_work(eb_log *l, uint64_t *last_sync)
{
    while (!l->pend.ncbs && !l->closing) {
        if (l->o.fsync != EB_FSYNC_INTERVAL || !l->dirty) {
            pthread_cond_wait(&l->wake, &l->mu);
            continue;
        }
        uint64_t due = *last_sync + l->o.fsync_interval_ms, now = eb_clock_mono_ms();
        if (now >= due) {
            l->dirty = false;
            int fd = active(l)->fd;
            pthread_mutex_unlock(&l->mu);
            if (RECORD_DATASYNC(fd) != 0 && !l->broken)
                l->broken = -errno;
            l->st.syncs++;
            pthread_mutex_lock(&l->mu);
            *last_sync = eb_clock_mono_ms();
            continue;
        }
        struct timespec ts = eb_clock_deadline(CLOCK_REALTIME, due - now);
        pthread_cond_timedwait(&l->wake, &l->mu, &ts);
    }
}

static void *writer_main(void *arg)
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
        if (status && !l->broken)
            l->broken = status; /* a failed write or sync: stop for good */
        pthread_mutex_unlock(&l->mu);
        finish(l, &l->work, status);
        pthread_mutex_lock(&l->mu);
        l->writing = false;
    }
    pthread_mutex_unlock(&l->mu);
    if (l->dirty && !l->broken)
        fdatasync(active(l)->fd);
    return NULL;
}

/* --- appending ---------------------------------------------------------------- */

static int push_cb(batch *b, eb_log_done_cb cb, void *arg)
{
    if (b->ncbs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        pend_cb *p = realloc(b->cbs, cap * sizeof *p);
        if (!p)
            return EB_ENOMEM;
        b->cbs = p;
        b->cap = cap;
    }
    b->cbs[b->ncbs++] = (pend_cb){cb, arg};
    return 0;
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
    if (rc) {
        l->broken = rc;
        return rc;
    }
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
           !l->closing && !needs_roll(l, active(l), bytes) &&
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
    if (may_inline && n && can_write_inline(l, bytes)) {
        int rc = write_inline(l, recs, n, now, first_seq, ts_us);
        pthread_mutex_unlock(&l->mu);
        return rc ? rc : 1;
    }
    while (l->pend.bytes.len > MAX_PENDING_BYTES && !l->broken && !l->closing)
        pthread_cond_wait(&l->space, &l->mu);
    int rc = l->broken ? l->broken : l->closing ? EB_ECLOSED : 0;
    if (!rc && (!eb_buf_reserve(&l->pend.bytes, bytes) || push_cb(&l->pend, cb, arg)))
        rc = EB_ENOMEM;
    if (!rc) {
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

/* --- reading -------------------------------------------------------------------- */

/* The segment holding seq (caller holds rw), or NULL. */
static seg *find_seg(eb_log *l, uint64_t seq)
{
    size_t lo = 0, hi = l->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->segs[mid]->base <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    seg *s = l->segs[lo - 1];
    return seq < s->base + s->count ? s : NULL;
}

int eb_log_read(eb_log *l, uint64_t seq, eb_log_rec *rec, eb_buf *scratch)
{
    if (seq >= atomic_load(&l->durable))
        return EB_ENOTFOUND;
    pthread_rwlock_rdlock(&l->rw);
    seg *s = find_seg(l, seq);
    int rc = 0;
    if (!s) {
        rc = seq < l->segs[0]->base ? EB_EGONE : EB_ENOTFOUND;
    } else {
        uint64_t off = idx_off(s, seq - s->base);
        unsigned char hb[EB_LOG_REC_HDR];
        eb_log_rhdr h;
        if (pread(s->fd, hb, sizeof hb, (off_t)off) != (ssize_t)sizeof hb) {
            rc = EB_EIO;
        } else {
            eb__log_rhdr_decode(hb, &h);
            eb_buf_reset(scratch);
            if (h.len > l->o.max_record_bytes || !eb_buf_reserve(scratch, h.len))
                rc = h.len > l->o.max_record_bytes ? EB_ECORRUPT : EB_ENOMEM;
            else if (pread(s->fd, scratch->data, h.len, (off_t)(off + EB_LOG_REC_HDR)) !=
                     (ssize_t)h.len)
                rc = EB_EIO;
            else if (eb__log_rec_crc(hb, scratch->data, h.len) != h.crc || h.seq != seq)
                rc = EB_ECORRUPT;
            if (!rc) {
                scratch->len = h.len;
                *rec = (eb_log_rec){h.seq, h.ts_us, h.type, h.flags, h.len, scratch->data};
            }
        }
    }
    pthread_rwlock_unlock(&l->rw);
    return rc;
}

/* Reads up to READ_CHUNK bytes of whole records starting at seq into buf.
 * Returns the number of records in it (0 at the end), or an error. */
static long read_chunk(eb_log *l, uint64_t seq, size_t max, eb_buf *buf, uint64_t *first)
{
    uint64_t durable = atomic_load(&l->durable);
    pthread_rwlock_rdlock(&l->rw);
    if (seq < l->segs[0]->base)
        seq = l->segs[0]->base;
    *first = seq;
    seg *s = seq < durable ? find_seg(l, seq) : NULL;
    long n = 0;
    if (s) {
        uint64_t i = seq - s->base, end_i = i, limit = s->count;
        uint64_t start = idx_off(s, i);
        if (durable - s->base < limit)
            limit = durable - s->base;
        /* Take whole records while they fit in the chunk (at least one). */
        while (end_i < limit && (uint64_t)(end_i - i) < max) {
            uint64_t next = end_i + 1 < s->count ? idx_off(s, end_i + 1) : s->size;
            if (end_i > i && next - start > READ_CHUNK)
                break;
            end_i++;
        }
        uint64_t stop = end_i < s->count ? idx_off(s, end_i) : s->size;
        size_t len = (size_t)(stop - start);
        eb_buf_reset(buf);
        if (!eb_buf_reserve(buf, len))
            n = EB_ENOMEM;
        else if (pread(s->fd, buf->data, len, (off_t)start) != (ssize_t)len)
            n = EB_EIO;
        else {
            buf->len = len;
            n = (long)(end_i - i);
        }
    }
    pthread_rwlock_unlock(&l->rw);
    return n;
}

int eb_log_scan(eb_log *l, uint64_t from_seq, size_t max,
                int (*cb)(void *arg, const eb_log_rec *rec), void *arg)
{
    eb_buf buf = EB_BUF_INIT;
    int rc = 0;
    uint64_t seq = from_seq;
    while (max > 0 && rc == 0) {
        uint64_t first;
        long n = read_chunk(l, seq, max, &buf, &first);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        const unsigned char *p = (const unsigned char *)buf.data;
        for (long i = 0; i < n; i++) {
            eb_log_rhdr h;
            eb__log_rhdr_decode(p, &h);
            if (h.seq != first + (uint64_t)i ||
                eb__log_rec_crc(p, p + EB_LOG_REC_HDR, h.len) != h.crc) {
                rc = EB_ECORRUPT;
                break;
            }
            eb_log_rec r = {h.seq, h.ts_us, h.type, h.flags, h.len, p + EB_LOG_REC_HDR};
            p += EB_LOG_REC_HDR + h.len;
            max--;
            if (cb(arg, &r)) {
                max = 0;
                break;
            }
        }
        seq = first + (uint64_t)n;
    }
    eb_buf_free(&buf);
    return rc;
}

int eb_log_seek_time(eb_log *l, uint64_t ts_us, uint64_t *seq)
{
    uint64_t durable = atomic_load(&l->durable);
    int rc = EB_ENOTFOUND;
    pthread_rwlock_rdlock(&l->rw);
    for (size_t k = 0; k < l->nsegs; k++) { /* segments: few; records: binary search */
        seg *s = l->segs[k];
        uint64_t n = s->count;
        if (s->base + n > durable)
            n = durable > s->base ? durable - s->base : 0;
        if (n == 0 || idx_ts(s, n - 1) < ts_us)
            continue;
        uint64_t lo = 0, hi = n - 1;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (idx_ts(s, mid) >= ts_us)
                hi = mid;
            else
                lo = mid + 1;
        }
        *seq = s->base + lo;
        rc = 0;
        break;
    }
    pthread_rwlock_unlock(&l->rw);
    return rc;
}

uint64_t eb_log_first_seq(eb_log *l) { return atomic_load(&l->first); }
uint64_t eb_log_durable_seq(eb_log *l) { return atomic_load(&l->durable); }

uint64_t eb_log_next_seq(eb_log *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->next_seq;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void eb_log_set_durable_hook(eb_log *l, void (*hook)(void *, uint64_t), void *arg)
{
    pthread_mutex_lock(&l->mu);
    l->hook = hook;
    l->hook_arg = arg;
    pthread_mutex_unlock(&l->mu);
}

/* --- retention ---------------------------------------------------------------- */

/* Removes the oldest segment (sealed, caller holds rw exclusively), and
 * syncs the directory before another one may go: of a run of deletes a
 * power cut then keeps a prefix, never a segment after a gap (a gap
 * between segments refuses to open). */
static int drop_oldest(eb_log *l)
{
    seg *s = l->segs[0];
    char path[1200];
    seg_path(l, s->base, "seg", path, sizeof path);
    unlink(path);
    seg_path(l, s->base, "idx", path, sizeof path);
    unlink(path);
    memmove(l->segs, l->segs + 1, (l->nsegs - 1) * sizeof *l->segs);
    l->nsegs--;
    atomic_store(&l->first, l->segs[0]->base);
    seg_free(s);
    return fsync_dir(l);
}

static uint64_t total_bytes(const eb_log *l)
{
    uint64_t t = 0;
    for (size_t i = 0; i < l->nsegs; i++)
        t += l->segs[i]->size;
    return t;
}

int eb_log_enforce_retention(eb_log *l, uint64_t now_us, uint64_t *deleted)
{
    uint64_t n = 0;
    int rc = 0;
    pthread_rwlock_wrlock(&l->rw);
    while (!rc && l->nsegs > 1 && l->segs[0]->sealed) {
        seg *s = l->segs[0];
        bool old = l->o.retention_ms && s->count &&
                   idx_ts(s, s->count - 1) + l->o.retention_ms * 1000u < now_us;
        bool big = l->o.retention_bytes && total_bytes(l) > l->o.retention_bytes;
        if (!old && !big)
            break;
        rc = drop_oldest(l);
        n++;
    }
    pthread_rwlock_unlock(&l->rw);
    if (deleted)
        *deleted = n;
    return rc;
}

int eb_log_drop_before(eb_log *l, uint64_t seq, uint64_t *deleted)
{
    uint64_t n = 0;
    pthread_rwlock_wrlock(&l->rw);
    /* What makes the dropped records obsolete (the meta store's snapshot)
     * was only written under interval and never: sync it before the
     * deletes can reach the disk, or a power cut keeps neither. */
    int rc = 0;
    if (l->o.fsync != EB_FSYNC_ALWAYS && l->nsegs > 1 && l->segs[0]->sealed &&
        l->segs[0]->base + l->segs[0]->count <= seq)
        rc = fdatasync(l->segs[l->nsegs - 1]->fd) == 0 ? 0 : -errno;
    while (!rc && l->nsegs > 1 && l->segs[0]->sealed &&
           l->segs[0]->base + l->segs[0]->count <= seq) {
        rc = drop_oldest(l);
        n++;
    }
    pthread_rwlock_unlock(&l->rw);
    if (deleted)
        *deleted = n;
    return rc;
}

void eb_log_get_stats(eb_log *l, eb_log_stats *st)
{
    pthread_mutex_lock(&l->mu);
    *st = l->st;
    st->broken = l->broken;
    pthread_mutex_unlock(&l->mu);
    pthread_rwlock_rdlock(&l->rw);
    st->bytes = total_bytes(l);
    st->segments = l->nsegs;
    pthread_rwlock_unlock(&l->rw);
}

/* --- open / close -------------------------------------------------------------- */

/* Creates one directory if missing. A new one is made durable by an fsync
 * of its parent: until then a power cut may drop its name, and with it
 * every segment in it, synced or not. */
static int make_dir(char *path)
{
    if (mkdir(path, 0755) != 0)
        return errno == EEXIST ? 0 : -errno;
    char *slash = strrchr(path, '/');
    const char *parent = ".";
    if (slash == path)
        parent = "/";
    else if (slash)
        *slash = '\0', parent = path;
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : fsync(fd) == 0 ? 0 : -errno;
    if (fd >= 0)
        close(fd);
    if (slash && slash != path)
        *slash = '/';
    return rc;
}

static int make_dirs(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = make_dir(tmp);
        if (rc)
            return rc;
        *p = '/';
    }
    return make_dir(tmp);
}

static void free_log(eb_log *l)
{
    for (size_t i = 0; i < l->nsegs; i++)
        seg_free(l->segs[i]);
    free(l->segs);
    eb_buf_free(&l->pend.bytes);
    eb_buf_free(&l->work.bytes);
    free(l->pend.cbs);
    free(l->work.cbs);
    if (l->dir_fd >= 0)
        close(l->dir_fd);
    pthread_rwlock_destroy(&l->rw);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->wake);
    pthread_cond_destroy(&l->space);
    free(l);
}

int eb_log_open(const eb_log_opts *o, eb_log **out, eb_log_recovery *rep)
{
    eb_log_recovery dummy;
    if (!rep)
        rep = &dummy;
    memset(rep, 0, sizeof *rep);
    double t0 = eb_clock_mono_s();
    if (!o || !o->dir || strlen(o->dir) >= sizeof ((eb_log *)0)->dir)
        return EB_EINVAL;
    eb_log *l = calloc(1, sizeof *l);
    if (!l)
        return EB_ENOMEM;
    l->o = *o;
    snprintf(l->dir, sizeof l->dir, "%s", o->dir);
    l->o.dir = l->dir;
    if (!l->o.clock)
        l->o.clock = real_us;
    if (!l->o.segment_bytes)
        l->o.segment_bytes = 64u << 20;
    if (!l->o.max_record_bytes)
        l->o.max_record_bytes = 16u << 20;
    if (!l->o.fsync_interval_ms)
        l->o.fsync_interval_ms = 100;
    /* Test hook: tests/powerloss rolls segments (and so deletes and
     * snapshots) in a small workload. Not a user setting. */
    const char *tsb = getenv("EB_TEST_SEGMENT_BYTES");
    if (tsb && strtoull(tsb, NULL, 10) >= 4096)
        l->o.segment_bytes = strtoull(tsb, NULL, 10);
    l->dir_fd = -1;
    pthread_rwlock_init(&l->rw, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->wake, NULL);
    pthread_cond_init(&l->space, NULL);
    int rc = make_dirs(l->dir);
    if (!rc && (l->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = -errno;
    if (!rc)
        rc = recover(l, rep);
    if (!rc && pthread_create(&l->writer, NULL, writer_main, l) != 0)
        rc = EB_ENOMEM;
    if (rc) {
        free_log(l);
        return rc;
    }
    rep->elapsed_ms = (eb_clock_mono_s() - t0) * 1e3;
    *out = l;
    return 0;
}

void eb_log_close(eb_log *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    pthread_cond_broadcast(&l->wake);
    pthread_cond_broadcast(&l->space);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    free_log(l);
}
