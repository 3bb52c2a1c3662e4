/* log_impl.h - the log's insides, shared by its files (log.c: open,
 * close, retention, stats; recover.c: segment and index files, recovery;
 * writer.c: the group-commit writer thread and appends; reader.c: reads,
 * scans, time seeks). Not for use outside src/log. */
#ifndef EB_LOG_IMPL_H
#define EB_LOG_IMPL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "eventbus/err.h"
#include "log/log_int.h"

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
/* Out of space: the writer probes with PROBE_BYTES at the end of the active
 * segment, first after PROBE_MIN_MS, doubling up to PROBE_MAX_MS. */
#define PROBE_BYTES (64u << 10)
#define PROBE_MIN_MS 100u
#define PROBE_MAX_MS 5000u

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
    /* sealed: the segment file mapped read-only (size bytes), or NULL
     * (then pread): reads copy from it, no system call per record */
    const unsigned char *data;
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
    bool             full;    /* out of space: appends refused, the writer probes */
    uint64_t         probe_ms;      /* full: backoff of the next probe */
    uint64_t         probe_due_ms;  /* full: when (mono ms) */
    bool             closing;
    bool             writing; /* the writer holds a batch (work) */
    bool             dirty;   /* INTERVAL: written, not yet synced */
    pthread_t        writer;
    void           (*hook)(void *, uint64_t);
    void            *hook_arg;
    void           (*seal_hook)(void *, const eb_log_seg_info *);
    void            *seal_arg;
    eb_log_stats     st;
};

/* The active segment's index grows under `rw` taken exclusively (readers
 * may be walking it). */
static inline uint64_t eb__log_idx_off(const seg *s, uint64_t i) { return eb__get64(s->idx + i * EB_LOG_IDX_ENT); }
static inline uint64_t eb__log_idx_ts(const seg *s, uint64_t i) { return eb__get64(s->idx + i * EB_LOG_IDX_ENT + 8); }

/* A write that failed for want of space (the log can recover from it). */
static inline bool eb__log_no_space(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT || rc == EB_ENOSPC;
}

/* The status an append's callback gets: EB_ENOSPC for want of space. */
static inline int eb__log_map_status(int rc)
{
    return eb__log_no_space(rc) ? EB_ENOSPC : rc;
}

/* --- recover.c: files and recovery --- */
/* path of the file `ext` of the segment based at base */
void eb__log_seg_path(const eb_log *l, uint64_t base, const char *ext, char *out, size_t n);
int  eb__log_fsync_dir(eb_log *l);
int  eb__log_write_all(int fd, const void *p, size_t n, uint64_t off);
void eb__log_seg_free(seg *s);
/* Writes s's index file (temp file, fdatasync, rename, directory fsync). */
int  eb__log_write_index(eb_log *l, const seg *s);
/* Creates a new empty active segment at base (caller holds rw exclusively
 * once the log is running). */
int  eb__log_new_segment(eb_log *l, uint64_t base);
/* Opens every segment of l->dir (see ARCHITECTURE.md, "Recovery"). */
int  eb__log_recover(eb_log *l, eb_log_recovery *rep);
/* Maps sealed segment s for reading (s->data); left NULL if mmap fails. */
void eb__log_map_data(seg *s);

/* --- writer.c --- */
void *eb__log_writer_main(void *arg);

#endif
