/* store_pg_int.h - the insides of the PostgreSQL engine, shared by its
 * two files: store_pg.c (the calls, on the caller's thread, and opening)
 * and store_pg_writer.c (the writer thread and the SQL helpers). */
#ifndef EB_STORE_PG_INT_H
#define EB_STORE_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/keyidx.h"
#include "store/store_pg.h"
#include "util/buf.h"

#define PG_MAX_RECORD     (64u << 20)  /* largest record accepted */
#define PG_MAX_PENDING    (64u << 20)  /* appends wait past this many bytes queued */
#define PG_SCAN_ROWS      1000         /* rows fetched per query of a scan (META) */
#define PG_CHUNK_ROWS     2048         /* EVENTS: rows of a backlog chunk (one query) at most */
#define PG_CHUNK_MIN      64           /* EVENTS: scans of fewer records read only those */
#define PG_BACK_RECS      65536u       /* EVENTS: the backlog window's bounds */
#define PG_BACK_BYTES     (16u << 20)
#define PG_HOUSE_MS       1000         /* stats, retention and compaction period */
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_UNKNOWN        1            /* write_work: the commit's outcome is unknown */
#define PG_GAVE_UP        2            /* resolve: not known within the store timeout */
#define PG_LOCK_CLASS     0x6562       /* advisory lock (class, kind): "eb" */
#define PG_LOCK_LEADER    0x100        /* (class, this): the leader lock (store_pg_lead.c) */
#define PG_LOCK_WAIT      "'1s'"       /* a writer's lock is waited for this long */
#define PG_LANES          3            /* writer connections a store: batches commit concurrently */
#define PG_LOCK_LANE      0x10         /* lane i > 0 locks (class, kind + this * i) */
#define PG_EVENTS_LANES   2            /* EVENTS: the next batch commits while one waits for its flush */
#define PG_BATCH_RECORDS  65536        /* EVENTS: records a batch holds at most (an append
                                          * waits past it; one append is never split: the
                                          * bus appends at most 1000 records at once) */
/* EVENTS: the last seqs searched for a gap at open (PG_LANES batches). */
#define PG_GAP_WINDOW     ((uint64_t)PG_LANES * PG_BATCH_RECORDS)

#define PG_PART_SEQS eb__store_pg_part_seqs

typedef struct pend_cb {
    eb_store_done_cb cb;
    void            *arg;
} pend_cb;

/* Appends queued for one COPY. */
typedef struct batch {
    eb_buf   copy;    /* the records as COPY binary tuples */
    size_t   records;
    uint64_t first;   /* seq of the first record */
    pend_cb *cbs;
    size_t   ncbs, cap;
} batch;

struct pg_store;

/* A writer connection and the batch it commits. Lane 0 is the writer
 * thread's (its connection is p->wr, which holds the store's lock; it
 * also does the housekeeping); the others are threads of their own that
 * only commit (and leave a batch that needs a new EVENTS partition to
 * lane 0). A lane takes the whole pending batch when idle, so while
 * one batch waits for its commit the next one is already committing on
 * another connection, and the database flushes their WAL together.
 * Completions are reported in seq order (eb__pg_complete). */
typedef struct pg_lane {
    struct pg_store *p;
    PGconn          *c;      /* lanes > 0: its own connection (lane 0: p->wr) */
    batch            work;   /* the lane's: what it commits */
    int              status; /* mu: the commit's outcome, once done */
    bool             busy;   /* mu: holds a batch (taken, not yet completed) */
    bool             done;   /* mu: its commit has an outcome */
    char             why[256]; /* libpq's message when the commit failed */
    bool             unsure;   /* mu: lane > 0 failed a batch unresolved; settle() pending */
    pthread_t        thr;
} pg_lane;

/* One cached record (store_pg_cache.c). */
typedef struct pg_cached {
    uint64_t ts;
    uint16_t type, flags;
    uint32_t len;
    char    *data; /* owned */
} pg_cached;

/* A window of records, seqs [lo, hi), loop thread only: the newest this
 * node appended, or the backlog read from the table. */
typedef struct pg_cache {
    pg_cached *v;      /* ring, indexed by seq */
    uint64_t   lo, hi;
    size_t     bytes;
    int        pinned; /* scans in progress: evict nothing by bytes */
    uint32_t   recs;   /* bounds: records (a power of two) and bytes */
    size_t     max_bytes;
} pg_cache;

typedef struct pg_store {
    eb_store         base; /* first: a pg_store is an eb_store */
    eb_store_kind    kind;
    char            *uri;
    const char      *table;
    eb_store_sync    sync;
    uint64_t         retention_ms, retention_bytes;
    PGconn          *rd;          /* reads, on the calling thread */
    uint64_t         rd_retry_ms; /* no reconnect before */
    PGconn          *wr;          /* the writer thread's */
    pthread_t        thr;
    pthread_mutex_t  mu;
    pthread_cond_t   wake, space;
    batch            pend;        /* mu: the appends not taken by a lane yet */
    pg_lane          lanes[PG_LANES];
    int              nlanes;      /* META PG_LANES, EVENTS PG_EVENTS_LANES (a gap at a crash: see load) */
    int              fly[PG_LANES];  /* mu: the busy lanes, oldest batch first (a ring) */
    int              fly_head, nfly; /* mu */
    bool             completing;  /* mu: a thread is reporting completions */
    int              fail;        /* mu: a batch failed; so do the ones after it (until none flies) */
    int              unsure;      /* mu: lanes with settle() pending (clean_dirty waits) */
    bool             dirty;       /* mu: rows at or past durable may exist (committed after a
                                   * batch that failed): deleted before any batch is taken */
    uint64_t         lane_end;    /* mu: lanes > 0 take batches that end below this seq (the
                                   * partitions that exist: lane 0 makes new ones) */
    bool             house_now;   /* mu: the first rows committed: their size at once */
    bool             closing;     /* mu */
    int              err;         /* mu: 0, EB_ECONNECT / EB_ENOSPC (recovering), or broken */
    uint64_t         next_seq, last_ts; /* mu */
    uint64_t         drop_req;    /* mu: META rows below this may go */
    uint64_t         bytes, parts, commits; /* mu: stats */
    _Atomic uint64_t first, durable;
    uint64_t         part_lo, part_hi; /* writer: partitions [lo, hi) exist */
    uint64_t         dropped;     /* mu (written by the writer): META rows below this are deleted */
    bool             opened;      /* past pg_open: a lock lost now means fenced */
    eb_keyidx        kidx;
    pg_cache         cache;       /* EVENTS: the newest records */
    pg_cache         back;        /* EVENTS: the backlog window (rows read in chunks) */
    bool             ahead;       /* a read-ahead of the chunk at back.hi is in flight on rd */
    uint64_t         reads;       /* read queries sent (eb__store_pg_read_queries) */
    uint64_t         chunk_avg;   /* bytes a record in the last chunk read (0: none yet) */
    /* EVENTS with opts.describe: the summaries of complete partitions
     * (segsum.h's format, table eb_summaries; store_pg_sum.c). */
    eb_store_describe_fn describe;
    pthread_mutex_t  sum_mu;      /* sums, nsums, sum_stop */
    pthread_cond_t   sum_cv;
    struct eb_segsum **sums;      /* sum_mu: installed, consecutive, oldest first */
    size_t           nsums, sums_cap;
    bool             sum_stop, sum_started;
    pthread_t        sum_thr;
    PGconn          *sc;          /* the summarizer's connection */
    _Atomic uint64_t covered;     /* the summaries cover every id below this */
    uint64_t         cut_at;      /* loop: covered at the last id generation cut */
    uint64_t         indexed_upto; /* at open: the lookups cover below this */
    _Atomic uint64_t sums_written; /* summaries this node wrote (tests, stats) */
} pg_store;

static inline pg_store *pg_of(eb_store *s)
{
    return (pg_store *)(void *)s;
}

/* A binary result's big-endian numbers. */
static inline uint64_t eb__pg_be64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u[i];
    return v;
}

static inline uint32_t eb__pg_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Row i of a binary result of (seq, ts, type, flags, data) as a record
 * (its data borrowed from r). */
static inline eb_store_rec eb__pg_row_rec(const PGresult *r, int i)
{
    return (eb_store_rec){eb__pg_be64(PQgetvalue(r, i, 0)), eb__pg_be64(PQgetvalue(r, i, 1)),
                          (uint16_t)eb__pg_be32(PQgetvalue(r, i, 2)),
                          (uint16_t)eb__pg_be32(PQgetvalue(r, i, 3)),
                          (uint32_t)PQgetlength(r, i, 4), PQgetvalue(r, i, 4)};
}

/* --- the bound on a wait for the database (store_pg_guard.c) -------------- */

/* Arms the store timeout (eb__store_pg_timeout_ms) for a blocking wait on
 * c by this thread: past it the watchdog shuts c's socket down, so the
 * wait ends as a lost connection. Returns a handle for eb__pg_guard_off
 * (-1: not armed; c must stay open until then). */
int  eb__pg_guard_on(PGconn *c);
/* Disarms; true if the deadline passed (the connection was dropped). */
bool eb__pg_guard_off(int g);

/* --- the cache of the newest records (store_pg_cache.c) ------------------- */

/* Empty, its window starting at next (the newest records' bounds). */
void eb__pg_cache_init(pg_cache *c, uint64_t next);
/* The same with other bounds (recs a power of two). */
void eb__pg_cache_init_cap(pg_cache *c, uint64_t next, uint32_t recs, size_t bytes);
/* Adds a copy of record seq: the window grows when seq is its next one,
 * else it starts again at seq; the oldest go past the bounds. */
void eb__pg_cache_add(pg_cache *c, uint64_t seq, uint64_t ts, uint16_t type, uint16_t flags,
                      const void *data, uint32_t len);
/* Forgets the records at and after seq `to` (their seqs are handed out again). */
void eb__pg_cache_truncate(pg_cache *c, uint64_t to);
/* Record seq if cached (valid until the next add or truncate), else NULL. */
const pg_cached *eb__pg_cache_get(pg_cache *c, uint64_t seq);
void eb__pg_cache_free(pg_cache *c);

/* --- partition summaries (store_pg_sum.c) ---------------------------------- */

/* After load: the summaries table, the summaries of the partitions from
 * the first on (their key entries into kidx; covered, indexed_upto), and
 * the summarizer thread. 0 or an error. */
int      eb__pg_sum_open(pg_store *p);
/* Stops the summarizer and frees the summaries (any store: nothing when
 * none; sum_mu and sum_cv are the store's, made and destroyed with it). */
void     eb__pg_sum_close(pg_store *p);
/* Loop thread: frees the id generations the summaries now cover. */
void     eb__pg_sum_cut(pg_store *p);
/* Loop thread: store.h's lookup_id_below / lookup_source_id through memory
 * then the summaries. */
uint64_t eb__pg_sum_lookup(pg_store *p, bool by_source, const char *src, size_t slen,
                           const char *id, size_t idlen, uint64_t below);
/* store.h's type_counts and client_id_range from the summaries. */
int      eb__pg_sum_type_counts(eb_store *s, uint64_t from, uint64_t to, uint64_t *lo,
                                uint64_t *hi,
                                void (*fn)(void *, const char *, size_t, uint64_t), void *arg);
void     eb__pg_sum_client_id_range(eb_store *s, uint64_t from, uint64_t *lo, uint64_t *hi);
/* durable_seq moved from `from` to `to` (mu held): a partition complete
 * wakes the summarizer. */
void     eb__pg_sum_durable(pg_store *p, uint64_t from, uint64_t to);
/* Writer, after retention dropped partitions: their summaries go. */
int      eb__pg_sum_drop(pg_store *p);

/* --- SQL helpers (store_pg_writer.c) -------------------------------------- */

/* A connection with our defaults (the URI's own settings win); NULL with
 * the reason in err when it cannot be made. */
PGconn *eb__pg_connect(const char *uri, eb_store_sync sync, char *err, size_t errlen);
/* libpq's last message on one line, into out. */
const char *eb__pg_one_line(PGconn *c, char *out, size_t cap);
/* Runs a statement with text parameters (binary: results in binary): 0 and
 * *out (the caller clears it; out may be NULL), or EB_ECONNECT (connection
 * lost or refused), EB_ENOSPC (SQLSTATE class 53), EB_EIO (anything else). */
int eb__pg_run(PGconn *c, const char *sql, int n, const char *const *params, int binary,
               PGresult **out);
/* eb__pg_run of a statement without parameters or rows. */
int eb__pg_run0(PGconn *c, const char *sql);
/* The first column of the first row as a number (0 if NULL or none). */
uint64_t eb__pg_num0(const PGresult *r);
/* (Re)connects the writer and takes the store's lock: 0, EB_ECONNECT, or
 * EB_EEXIST while the lock is held elsewhere. */
int eb__pg_connect_wr(pg_store *p);
/* A META lane > 0's connection and its lock (the same outcomes). */
int eb__pg_connect_lane(pg_lane *l);
/* classify() of store_pg_writer.c: what a failed statement means. */
int eb__pg_classify(PGconn *c, const PGresult *r);
/* After a statement that commits was sent: 0 once committed; the error
 * the server sent (rolled back); or PG_UNKNOWN (the outcome unknown). */
int eb__pg_commit_outcome(PGconn *c);

/* --- META commits (store_pg_ins.c) ------------------------------------------ */

/* Prepares the insert of a batch on a new META connection: 0 or an error. */
int eb__pg_prepare_insert(PGconn *c, const char *table);
/* Commits batch b on c as one prepared INSERT of arrays (one round trip):
 * 0; EB_ECONNECT (not sent: nothing committed); the error the server sent;
 * or PG_UNKNOWN (the connection broke while committing). */
int eb__pg_insert_batch(PGconn *c, const batch *b);

/* The writer thread (arg: the pg_store). */
void *eb__pg_writer_main(void *arg);
/* A lane's thread (arg: the pg_lane, index > 0). */
void *eb__pg_lane_main(void *arg);

#endif
