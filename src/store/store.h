/* store.h - the storage engine interface: what the bus needs from a place
 * that keeps records durably. The bus holds two stores, one of kind EVENTS
 * (the events) and one of kind META (its own state changes); it opens them
 * through an eb_store_engine it is given and never knows which engine it
 * has. The embedded log (src/log, adapter store_log.c) is one engine; a
 * PostgreSQL engine implements the same calls.
 *
 * A store is an ordered sequence of records (type, flags, payload) with
 * strictly increasing sequence numbers from 1 and an append time stamped
 * by the store (µs since the epoch, non-decreasing). Records below
 * eb_store_durable_seq() are durable under the sync policy and readable.
 *
 * Threads: every call is made on one thread (the bus's loop thread), except
 * that completion callbacks run on an engine thread (see eb_store_done_cb).
 * Ownership: record payloads passed in are copied during the call; record
 * views passed out are borrowed for the duration of the callback. */
#ifndef EB_STORE_H
#define EB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* When an append counts as durable. */
typedef enum eb_store_sync {
    EB_STORE_SYNC_ALWAYS = 0, /* on stable storage (fdatasync, a commit) */
    EB_STORE_SYNC_INTERVAL,   /* written; synced within the interval */
    EB_STORE_SYNC_NEVER       /* written; synced when the system decides */
} eb_store_sync;

typedef enum eb_store_kind {
    EB_STORE_EVENTS = 0, /* events: aged out by the retention settings */
    EB_STORE_META        /* the bus's state: never aged out; compacted by the
                          * bus with eb_store_drop_before after a snapshot */
} eb_store_kind;

typedef struct eb_store_rec eb_store_rec;

/* What an EVENTS record is to its lookups and counts (views borrowed from
 * the record). */
typedef struct eb_store_desc {
    const char *type; /* the event's type */
    size_t      type_len;
    const char *key;  /* its key; key_len 0: none */
    size_t      key_len;
    uint64_t    version; /* within its key; 0: the key's next (records without one) */
    const char *id;
    size_t      id_len;
    int         client_id; /* the id was chosen by the client (not generated) */
    int         uncounted; /* not in the counts by type (what groups do not deliver) */
    int         unindexed; /* not in the key and id lookups (a copy of an event
                            * whose original is there) */
    /* Added for the lookup by (source, id): the event's source, decoded;
     * source_len 0: none (the empty source, as dedupe defines it). A view
     * of the record, or (when the stored JSON escapes it) of the
     * describing thread's storage, valid until its next describe call. */
    const char *source;
    size_t      source_len;
} eb_store_desc;
/* Fills *out and returns 1 if rec is an event, 0 if not (skipped). Pure:
 * may run on any engine thread, at open or later. */
typedef int (*eb_store_describe_fn)(const eb_store_rec *rec, eb_store_desc *out);

typedef struct eb_store_opts {
    const char   *data_dir;         /* where the engine keeps its data (or its name) */
    eb_store_kind kind;
    eb_store_sync sync;
    uint32_t      sync_interval_ms; /* EB_STORE_SYNC_INTERVAL: default 100 */
    uint64_t      retention_ms;     /* EVENTS: drop records older; 0 = keep */
    uint64_t      retention_bytes;  /* EVENTS: keep the total under; 0 = unlimited */
    /* EVENTS, optional: how to read a record's type, key, version and id.
     * With it an engine may keep its lookups and counts itself, across
     * crashes (the log engine: per sealed segment, see store/segsum.h;
     * the PostgreSQL engine: per complete partition), and report them covered (indexed_upto) at open; NULL: the bus
     * reports every retained event at open with index_add. */
    eb_store_describe_fn describe;
} eb_store_opts;

/* What opening found (for the startup log line); 0 where an engine has no
 * such thing. */
typedef struct eb_store_recovery {
    uint64_t segments;        /* files (or partitions) */
    uint64_t records;         /* records present after recovery */
    uint64_t first_seq;       /* oldest retained record, 0 if none */
    uint64_t last_seq;        /* newest record, 0 if none */
    uint64_t truncated_bytes; /* torn tail removed */
    uint32_t indexes_rebuilt;
    double   elapsed_ms;      /* time spent opening */
    /* Records read at open to fill lookups and counts the engine keeps
     * itself (opts.describe; the log engine: the active segment's, and a
     * sealed segment's whose summary was missing or damaged). */
    uint64_t records_read;
    uint32_t summaries_rebuilt; /* the log engine: segment summaries rebuilt */
} eb_store_recovery;

/* A record to append (data copied during the call). */
typedef struct eb_store_rec_in {
    uint16_t    type;
    uint16_t    flags;
    const void *data;
    uint32_t    len;
} eb_store_rec_in;

/* A record read back (data borrowed during the scan callback). */
struct eb_store_rec {
    uint64_t    seq;
    uint64_t    ts_us;
    uint16_t    type;
    uint16_t    flags;
    uint32_t    len;
    const void *data;
};

typedef struct eb_store_stats {
    uint64_t bytes;    /* on disk */
    uint64_t segments; /* files (or partitions) */
    uint64_t syncs;    /* syncs (fdatasync, commits) since open */
    int      error;    /* 0; EB_ENOSPC while out of space (appends fail with it
                        * and the engine clears it by itself once a write fits
                        * again); EB_ECONNECT while a database engine cannot
                        * reach its database (the same: cleared once it
                        * reconnects); or the error that broke the store */
    uint64_t ids_in_memory; /* EVENTS: entries of the id lookups held in
                             * memory (by id and by (source, id), with their
                             * collision chains); 0 for META */
} eb_store_stats;

/* Called once an append is durable (status 0) or failed: EB_ENOSPC (out of
 * space: nothing of it is kept, and its seqs are handed out again; the
 * store refuses appends with EB_ENOSPC until it finds room again, by
 * itself), EB_ECONNECT (the database was lost: the same, until it
 * reconnects), or another error (the store then refuses later appends). Runs on an engine thread: it must only hand the
 * completion to the loop (queue + wake), never block. */
typedef void (*eb_store_done_cb)(void *arg, int status);
/* Scan visitor: non-zero stops the scan. Runs on the calling thread. */
typedef int (*eb_store_scan_cb)(void *arg, const eb_store_rec *rec);

typedef struct eb_store eb_store;

/* The calls an engine implements. */
typedef struct eb_store_ops {
    /* Appends n records atomically (after a crash all or none), assigning
     * consecutive seqs from *first_seq and one append time *ts_us, both
     * set at once. Returns 0 (cb later), 1 if inline_ok and the records
     * are durable under the policy already (cb never called), or an error
     * (EB_ETOOBIG, EB_ECLOSED, EB_ENOSPC while out of space, EB_ECONNECT
     * while the database is unreachable, the error that
     * broke the store; cb never called). */
    int      (*append)(eb_store *s, const eb_store_rec_in *recs, size_t n, bool inline_ok,
                       uint64_t *first_seq, uint64_t *ts_us, eb_store_done_cb cb, void *arg);
    /* Visits up to max durable records with seq >= from (from the oldest
     * retained if older), in order; returns 0 or an I/O error. */
    int      (*scan)(eb_store *s, uint64_t from, size_t max, eb_store_scan_cb cb, void *arg);
    /* The first record appended at or after ts_us: 0 and *seq, or
     * EB_ENOTFOUND when every durable record is older. */
    int      (*seek_time)(eb_store *s, uint64_t ts_us, uint64_t *seq);
    uint64_t (*first_seq)(eb_store *s);   /* oldest retained (== next when empty) */
    uint64_t (*next_seq)(eb_store *s);    /* next seq to be assigned */
    uint64_t (*durable_seq)(eb_store *s); /* below this: durable and readable */
    void     (*stats)(eb_store *s, eb_store_stats *out);
    /* Forgets records below seq where it can (META compaction). */
    int      (*drop_before)(eb_store *s, uint64_t seq);
    /* Completes every pending append (their callbacks run), frees s. */
    void     (*close)(eb_store *s);

    /* --- lookups (EVENTS stores) ---------------------------------------
     * Per-key streams and ids, derived from the records: the bus reports
     * each event it appends (and, when it opens the store, every retained
     * one it does not cover yet, oldest first: see indexed_upto) with
     * index_add; the engine answers lookups for the records it still
     * retains. The log engine keeps them in memory and, with
     * opts.describe, in a summary file per sealed segment (ids stay there,
     * mapped); the PostgreSQL engine the same, a summary per partition in
     * a table. */
    /* Event `seq` is version `version` of key (klen 0: no key; version 0:
     * the key's next, for records that carry none) and has id `id`. 0 or
     * EB_ENOMEM (lookups lost, not records: the next open rebuilds them). */
    int      (*index_add)(eb_store *s, const char *key, size_t klen, uint64_t version,
                          const char *id, size_t idlen, uint64_t seq);
    /* The key's current version (its newest event's; 0: none). */
    uint64_t (*key_version)(eb_store *s, const char *key, size_t klen);
    /* Up to max seqs of key's durable, retained events of versions >=
     * from_version, in version order, into seqs; *first_version gets the
     * version of seqs[0]. Returns the count. */
    size_t   (*key_seqs)(eb_store *s, const char *key, size_t klen, uint64_t from_version,
                         uint64_t *seqs, size_t max, uint64_t *first_version);
    /* The seq of the newest retained event with this id, or 0 (a hint:
     * the caller checks the record's id). */
    uint64_t (*lookup_id)(eb_store *s, const char *id, size_t idlen);
    /* After open: the lookups already cover the records below this seq
     * (the log engine with opts.describe: every durable record, from its
     * segment summaries and a scan of the active segment, after a crash
     * too); the caller reports the records from here on with index_add.
     * 0: none are covered. */
    uint64_t (*indexed_upto)(eb_store *s);

    /* --- counts (EVENTS stores; optional, added after the lookups) ------
     * Events by type with from <= seq < to that the engine can count
     * without reading them: fn(arg, type, type_len, n) once per type, and
     * [*lo, *hi) the range those counts cover (from <= *lo <= *hi <= to;
     * *lo == *hi: nothing covered). The caller counts [from, *lo) and
     * [*hi, to) itself by a scan. The log engine covers whole sealed
     * segments (needs opts.describe); a SQL engine covers everything with
     * one GROUP BY. NULL: nothing covered. 0 or an I/O error. */
    int      (*type_counts)(eb_store *s, uint64_t from, uint64_t to, uint64_t *lo, uint64_t *hi,
                            void (*fn)(void *arg, const char *type, size_t type_len, uint64_t n),
                            void *arg);
    /* The next range at or after from that may hold events with a
     * client-chosen id (the bus refills its dedupe window from those):
     * [*lo, *hi), from <= *lo; *hi == UINT64_MAX: to the end. The log
     * engine skips sealed segments whose summary counts none; NULL (or
     * an engine that cannot tell): [from, end). */
    void     (*client_id_range)(eb_store *s, uint64_t from, uint64_t *lo, uint64_t *hi);

    /* --- lookups by (source, id) (EVENTS stores; optional, added later) --
     * CloudEvents ids are unique per source, so an id may be retained
     * several times; these find the one of a source. slen 0 is the empty
     * source (an event published without one). The bus reports each event
     * it reports with index_add here too; with opts.describe the log
     * engine also fills them from desc.source (and its summaries).
     * NULL: lookup_source_id answers 0 (the caller then looks further). */
    /* Event `seq` has id `id` from source `src`. 0 or EB_ENOMEM. */
    int      (*index_source_id)(eb_store *s, const char *src, size_t slen, const char *id,
                                size_t idlen, uint64_t seq);
    /* The seq of the newest retained event below seq `below` (UINT64_MAX:
     * any) whose (source, id) hashes as this one does, or 0: a hint, from
     * a hash of both. The caller checks the record's source and id; when
     * it is another event's (hashes collide) it asks again below it. */
    uint64_t (*lookup_source_id)(eb_store *s, const char *src, size_t slen, const char *id,
                                 size_t idlen, uint64_t below);
    /* lookup_id the same way: the newest below `below` whose id hashes as
     * this one does. NULL: only lookup_id's answer (for below UINT64_MAX). */
    uint64_t (*lookup_id_below)(eb_store *s, const char *id, size_t idlen, uint64_t below);
} eb_store_ops;

/* Every engine's store starts with this. */
struct eb_store {
    const eb_store_ops *ops;
};

/* An engine: opens (creating or recovering) a store. rep may be NULL.
 * *out is owned by the caller until eb_store_close. Returns 0,
 * EB_ECORRUPT for damage it cannot repair, or an I/O error. */
typedef struct eb_store_engine {
    const char *name;
    int (*open)(const eb_store_opts *o, eb_store **out, eb_store_recovery *rep);
} eb_store_engine;

static inline int eb_store_open(const eb_store_engine *e, const eb_store_opts *o,
                                eb_store **out, eb_store_recovery *rep)
{
    return e->open(o, out, rep);
}
static inline int eb_store_append(eb_store *s, const eb_store_rec_in *recs, size_t n,
                                  bool inline_ok, uint64_t *first_seq, uint64_t *ts_us,
                                  eb_store_done_cb cb, void *arg)
{
    return s->ops->append(s, recs, n, inline_ok, first_seq, ts_us, cb, arg);
}
static inline int eb_store_scan(eb_store *s, uint64_t from, size_t max, eb_store_scan_cb cb,
                                void *arg)
{
    return s->ops->scan(s, from, max, cb, arg);
}
static inline int eb_store_seek_time(eb_store *s, uint64_t ts_us, uint64_t *seq)
{
    return s->ops->seek_time(s, ts_us, seq);
}
static inline uint64_t eb_store_first_seq(eb_store *s) { return s->ops->first_seq(s); }
static inline uint64_t eb_store_next_seq(eb_store *s) { return s->ops->next_seq(s); }
static inline uint64_t eb_store_durable_seq(eb_store *s) { return s->ops->durable_seq(s); }
static inline void eb_store_stats_get(eb_store *s, eb_store_stats *out) { s->ops->stats(s, out); }
static inline int eb_store_drop_before(eb_store *s, uint64_t seq)
{
    return s->ops->drop_before(s, seq);
}
static inline void eb_store_close(eb_store *s) { s->ops->close(s); }
static inline int eb_store_index_add(eb_store *s, const char *key, size_t klen, uint64_t version,
                                     const char *id, size_t idlen, uint64_t seq)
{
    return s->ops->index_add(s, key, klen, version, id, idlen, seq);
}
static inline uint64_t eb_store_key_version(eb_store *s, const char *key, size_t klen)
{
    return s->ops->key_version(s, key, klen);
}
static inline size_t eb_store_key_seqs(eb_store *s, const char *key, size_t klen,
                                       uint64_t from_version, uint64_t *seqs, size_t max,
                                       uint64_t *first_version)
{
    return s->ops->key_seqs(s, key, klen, from_version, seqs, max, first_version);
}
static inline uint64_t eb_store_lookup_id(eb_store *s, const char *id, size_t idlen)
{
    return s->ops->lookup_id(s, id, idlen);
}
static inline uint64_t eb_store_indexed_upto(eb_store *s) { return s->ops->indexed_upto(s); }
static inline int eb_store_type_counts(eb_store *s, uint64_t from, uint64_t to, uint64_t *lo,
                                       uint64_t *hi,
                                       void (*fn)(void *, const char *, size_t, uint64_t),
                                       void *arg)
{
    *lo = *hi = from;
    return s->ops->type_counts ? s->ops->type_counts(s, from, to, lo, hi, fn, arg) : 0;
}
static inline void eb_store_client_id_range(eb_store *s, uint64_t from, uint64_t *lo,
                                            uint64_t *hi)
{
    *lo = from;
    *hi = UINT64_MAX;
    if (s->ops->client_id_range)
        s->ops->client_id_range(s, from, lo, hi);
}
static inline int eb_store_index_source_id(eb_store *s, const char *src, size_t slen,
                                           const char *id, size_t idlen, uint64_t seq)
{
    return s->ops->index_source_id ? s->ops->index_source_id(s, src, slen, id, idlen, seq) : 0;
}
static inline uint64_t eb_store_lookup_source_id(eb_store *s, const char *src, size_t slen,
                                                 const char *id, size_t idlen, uint64_t below)
{
    return s->ops->lookup_source_id ? s->ops->lookup_source_id(s, src, slen, id, idlen, below)
                                    : 0;
}
static inline uint64_t eb_store_lookup_id_below(eb_store *s, const char *id, size_t idlen,
                                                uint64_t below)
{
    if (s->ops->lookup_id_below)
        return s->ops->lookup_id_below(s, id, idlen, below);
    return below == UINT64_MAX ? s->ops->lookup_id(s, id, idlen) : 0;
}

#endif
