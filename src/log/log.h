/* log.h - the append-only, crash-safe event log.
 *
 * A log is a directory of segment files holding records (type, flags,
 * payload) numbered by a global, strictly increasing sequence number and
 * stamped with a monotonic append time. Appends from any thread are
 * batched by one writer thread into one write() + fdatasync() (group
 * commit); callers learn that their records are durable only after the
 * sync (under the fsync policy). Under the policies that answer after
 * write() (interval, never) eb_log_append_inline lets an appender write
 * its batch itself when the writer is idle. Readers on any thread see
 * durable records only. Each segment has an index (seq -> offset, time),
 * so a read by seq and a seek by time are O(log n) without scanning;
 * sealed segments' indexes are files, rebuilt when missing or stale, and
 * sealed segments are mapped for small reads (no system call per record).
 * Recovery at open scans only the active (last) segment and truncates a
 * torn tail.
 *
 * The log knows nothing of events, HTTP or the bus: the bus keeps its own
 * state in a second log. On-disk format and guarantees: ARCHITECTURE.md. */
#ifndef EB_LOG_H
#define EB_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct eb_log eb_log;

typedef enum eb_fsync_policy {
    EB_FSYNC_ALWAYS = 0, /* fdatasync before any append is reported durable */
    EB_FSYNC_INTERVAL,   /* write at once, fdatasync every interval */
    EB_FSYNC_NEVER       /* write at once, the OS decides when to sync */
} eb_fsync_policy;

typedef struct eb_log_opts {
    const char     *dir;               /* created if missing */
    eb_fsync_policy fsync;             /* default ALWAYS */
    uint32_t        fsync_interval_ms; /* INTERVAL: default 100 */
    uint64_t        segment_bytes;     /* roll target, default 64 MiB */
    uint64_t        retention_ms;      /* delete sealed segments older; 0 = keep */
    uint64_t        retention_bytes;   /* keep total under; 0 = unlimited */
    uint32_t        max_record_bytes;  /* payload bound, default 16 MiB */
    /* Clock for append times (µs since the epoch); NULL = CLOCK_REALTIME.
     * Tests inject one to step time back. */
    uint64_t      (*clock)(void *arg);
    void           *clock_arg;
} eb_log_opts;

/* What recovery found (reported in the daemon's startup line). */
typedef struct eb_log_recovery {
    uint64_t segments;        /* segment files */
    uint64_t records;         /* records present after recovery */
    uint64_t first_seq;       /* oldest retained record, 0 if none */
    uint64_t last_seq;        /* newest record, 0 if none */
    uint64_t truncated_bytes; /* torn or corrupt tail bytes removed */
    uint32_t indexes_rebuilt; /* sealed-segment index files rebuilt */
    double   elapsed_ms;      /* time spent opening */
} eb_log_recovery;

/* Opens (creating or recovering) the log in o->dir. *out is owned by the
 * caller until eb_log_close(). rep may be NULL. Returns 0, EB_ECORRUPT for
 * damage that is not a torn tail (see `eventbus-log verify`), or an I/O
 * error. */
int  eb_log_open(const eb_log_opts *o, eb_log **out, eb_log_recovery *rep);
/* Writes and syncs every pending append (their callbacks run), stops the
 * writer thread and frees the log. */
void eb_log_close(eb_log *log);

/* A record to append; data is copied during the call. */
typedef struct eb_log_rec_in {
    uint16_t    type;
    uint16_t    flags;
    const void *data;
    uint32_t    len;
} eb_log_rec_in;

/* Called on the writer thread once the append is durable (status 0) or
 * failed (the log then refuses every later append). Must not block, and
 * should be short: the writer runs a batch's callbacks (then the durable
 * hook) before it starts writing the next batch. Note the completion here
 * and wake other threads once per batch from the durable hook, not once
 * per append: in bench/log a wake-up per append cost 2-3x the throughput
 * at 64 appenders (ARCHITECTURE.md, "Throughput"). */
typedef void (*eb_log_done_cb)(void *arg, int status);

/* Appends n records atomically (after a crash all or none of them are
 * there), assigning consecutive seqs from *first_seq and one append time
 * *ts_us, both returned at once. cb(arg, status) runs later on the writer
 * thread. Thread-safe. Returns 0, EB_ETOOBIG, EB_ECLOSED, or the error
 * that broke the log. */
int eb_log_append(eb_log *log, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                  uint64_t *ts_us, eb_log_done_cb cb, void *arg);
/* The same, but under INTERVAL and NEVER, when no other append is pending
 * or being written and the records fit the active segment, writes them on
 * the calling thread (one write() into the page cache, no fdatasync, no
 * thread hop) and returns 1: they are durable under the policy and
 * readable now, and cb is never called (nor the durable hook). Otherwise
 * (ALWAYS, the writer busy, a segment to roll) it is eb_log_append and
 * returns 0 with cb to come. Negative: the errors of eb_log_append, or the
 * write error that broke the log. Thread-safe. */
int eb_log_append_inline(eb_log *log, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                         uint64_t *ts_us, eb_log_done_cb cb, void *arg);
/* eb_log_append, waiting until durable. */
int eb_log_append_sync(eb_log *log, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                       uint64_t *ts_us);

/* A record read back. data points into the caller's scratch buffer (read)
 * or the log's read buffer (scan callback), valid until the next call. */
typedef struct eb_log_rec {
    uint64_t    seq;
    uint64_t    ts_us;
    uint16_t    type;
    uint16_t    flags;
    uint32_t    len;
    const void *data;
} eb_log_rec;

/* Reads record seq. EB_EGONE below the oldest retained, EB_ENOTFOUND at or
 * past eb_log_durable_seq(). Thread-safe. */
int eb_log_read(eb_log *log, uint64_t seq, eb_log_rec *rec, eb_buf *scratch);
/* Visits up to max durable records with seq >= from_seq (from the oldest
 * retained if from_seq is older), in order, reading in large chunks; stops
 * early when cb returns non-zero. Returns 0 or an I/O error. Thread-safe. */
int eb_log_scan(eb_log *log, uint64_t from_seq, size_t max,
                int (*cb)(void *arg, const eb_log_rec *rec), void *arg);
/* The first record with append time >= ts_us: 0 and *seq, or EB_ENOTFOUND
 * when every durable record is older. O(log n). */
int eb_log_seek_time(eb_log *log, uint64_t ts_us, uint64_t *seq);

uint64_t eb_log_first_seq(eb_log *log);   /* oldest retained (== next when empty) */
uint64_t eb_log_next_seq(eb_log *log);    /* next seq to be assigned */
uint64_t eb_log_durable_seq(eb_log *log); /* records below this are durable and readable */

/* Called on the writer thread after each durable batch, after the batch's
 * callbacks, with the new eb_log_durable_seq(); e.g. to uv_async_send() a
 * loop. Set before use. */
void eb_log_set_durable_hook(eb_log *log, void (*hook)(void *arg, uint64_t durable),
                             void *arg);

/* Deletes sealed segments past the retention settings (the writer also
 * does this after each roll). */
int eb_log_enforce_retention(eb_log *log, uint64_t now_us, uint64_t *segments_deleted);
/* Deletes sealed segments whose records are all below seq (for compacted
 * state logs). */
int eb_log_drop_before(eb_log *log, uint64_t seq, uint64_t *segments_deleted);

/* --- sealed segments, for a user's derived files ---------------------------
 * A user of the log may keep one derived file per sealed segment (the
 * events store keeps its per-segment counts and lookups so: store/segsum.h).
 * The log names it (eb_log_aux_path) and deletes it with its segment
 * (retention, drop_before), before the segment itself. */
#define EB_LOG_AUX_EXT "sum"

typedef struct eb_log_seg_info {
    uint64_t base;  /* seq of its first record */
    uint64_t count; /* records */
    uint64_t bytes; /* file size */
} eb_log_seg_info;

/* The path of the derived file of the segment based at base, into out. */
void   eb_log_aux_path(const eb_log *log, uint64_t base, char *out, size_t n);
/* The sealed segments, oldest first, into out[0 .. max); returns how many
 * there are (may be more than max). Thread-safe. */
size_t eb_log_sealed(eb_log *log, eb_log_seg_info *out, size_t max);
/* Called on the writer thread each time a segment is sealed (its records
 * and index file durable), with that segment; it must not block (hand the
 * work to another thread). Set before the first append. */
void   eb_log_set_seal_hook(eb_log *log, void (*hook)(void *arg, const eb_log_seg_info *seg),
                            void *arg);

typedef struct eb_log_stats {
    uint64_t bytes;     /* on disk, all segments */
    uint64_t segments;
    uint64_t appends;   /* eb_log_append calls */
    uint64_t records;   /* records appended since open */
    uint64_t syncs;     /* fdatasync calls */
    uint64_t writes;    /* write batches */
    uint64_t full_events; /* times a write found no space (ENOSPC, EDQUOT) */
    uint64_t probes;      /* space probes while full */
    int      error;     /* 0; EB_ENOSPC while out of space (appends are refused
                         * with it, the writer probes with backoff and clears it
                         * by itself); or the error that broke the log for good */
} eb_log_stats;
void eb_log_get_stats(eb_log *log, eb_log_stats *st);

/* --- on-disk format (shared with tools/eventbus-log) ---------------------- */

#define EB_LOG_SEG_MAGIC "EBLOGSEG"
#define EB_LOG_IDX_MAGIC "EBLOGIDX"
#define EB_LOG_VERSION 1
#define EB_LOG_SEG_HDR 64  /* segment header bytes */
#define EB_LOG_REC_HDR 32  /* record header bytes */
#define EB_LOG_IDX_HDR 48  /* index header bytes */
#define EB_LOG_IDX_ENT 16  /* index entry bytes: offset u64, ts u64 */

/* A decoded record header. */
typedef struct eb_log_rhdr {
    uint32_t len;        /* payload bytes */
    uint32_t crc;        /* CRC32C of header bytes 8..31 and the payload */
    uint64_t seq;
    uint64_t ts_us;
    uint16_t type;
    uint16_t flags;
    uint32_t batch_left; /* records that follow in the same atomic append */
} eb_log_rhdr;

void     eb__log_rhdr_encode(const eb_log_rhdr *h, unsigned char out[EB_LOG_REC_HDR]);
void     eb__log_rhdr_decode(const unsigned char in[EB_LOG_REC_HDR], eb_log_rhdr *h);
uint32_t eb__log_rec_crc(const unsigned char hdr[EB_LOG_REC_HDR], const void *payload,
                         uint32_t len);

#endif
