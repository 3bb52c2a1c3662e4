/* segsum.h - the events store's summary of one sealed segment: what a
 * restart needs of the segment without reading its records. The log
 * engine writes one beside each sealed segment of the events log
 * (`NNNNNNNNNNNNNNNNNNNN.sum`, the log's derived file: deleted with its
 * segment) when the segment seals, and at open reads it instead of the
 * segment: the events per type (the group lag and the counters), the key
 * entries (the key streams) and the ids (the id lookup, answered from the
 * mapped file by a binary search, never loaded into memory). The
 * PostgreSQL engine keeps the same bytes per complete partition in a
 * table (store_pg_sum.c: eb__segsum_encode, eb__segsum_load_mem; base
 * and count are the partition's records, file bytes 0).
 *
 * Derived data: checked (magic, format, the segment it describes, size,
 * CRC32C of the whole file) before use, and rebuilt from its segment when
 * missing or damaged; written as a temp file, fdatasync, rename, fsync of
 * the directory, so a crash leaves the old state or the new one.
 *
 * Format 2, little-endian (a summary of format 1, without the (source, id)
 * hashes, fails the check and is rebuilt from its segment):
 *   0  "EBSEGSUM"  8 u32 format (2)  12 u32 header size (80)
 *   16 u64 base seq  24 u64 records  32 u64 segment file bytes
 *   40 u64 types  48 u64 key entries  56 u64 ids
 *   64 u64 events with a client-chosen id (0: the dedupe window's refill
 *      need not read the segment)
 *   72 u64 source ids (== ids)
 *   80 ids:   u64 id hash, u64 seq; sorted by hash, then seq
 *      source ids: u64 (source, id) hash (keyidx.h), u64 seq; sorted the same
 *      types: u32 length, name, u64 events of the type
 *      keys:  u32 length, key, u64 version (0: none stored), u64 seq; in seq order
 *   end: u32 CRC32C of every byte before it. */
#ifndef EB_STORE_SEGSUM_H
#define EB_STORE_SEGSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"
#include "util/buf.h"
#include "util/map.h"
#include "store/store.h"

#define EB_SEGSUM_FORMAT 2

typedef struct eb_segsum_type {
    char    *name; /* owned */
    size_t   len;
    uint64_t n;    /* events of the type in the segment */
} eb_segsum_type;

/* A loaded summary. */
typedef struct eb_segsum {
    eb_log_seg_info      seg;   /* the segment it describes */
    eb_segsum_type      *types; /* owned */
    size_t               ntypes;
    const unsigned char *ids;   /* nids (hash, seq) pairs, inside map */
    uint64_t             nids;
    const unsigned char *srcids; /* nsrcids ((source, id) hash, seq) pairs, inside map */
    uint64_t             nsrcids;
    uint64_t             client_ids; /* events with a client-chosen id */
    void                *map;   /* the file, mapped read-only (heap: a copy, malloc'd) */
    size_t               map_len;
    bool                 heap;
} eb_segsum;

/* An id's (or a (source, id)'s) hash and its event's seq. */
typedef struct eb_segsum_pair {
    uint64_t hash, seq;
} eb_segsum_pair;

/* What a summary is made of: consecutive records, base .. base + n - 1,
 * each described once (eb__segsum_acc_add). The log engine describes its
 * records as they are appended, so a sealed segment's summary is written
 * from this without reading the segment back (eb__segsum_acc_split, then
 * eb__segsum_write); eb__segsum_build fills one by reading the segment.
 * Not thread-safe: the owner locks. */
typedef struct eb_segsum_acc {
    uint64_t        base, n;
    uint32_t       *rec;      /* per record: its type's index in types, or
                               * EB_SEGSUM_UNCOUNTED; | EB_SEGSUM_CLIENT_ID */
    size_t          rec_cap;
    eb_segsum_type *types;    /* n: the described records of the type */
    size_t          ntypes, types_cap;
    uint32_t        last_type; /* the index found last (UINT32_MAX: none) */
    eb_map          type_ix;  /* type -> its index + 1 */
    eb_segsum_pair *ids, *srcids; /* nids each, in seq order */
    size_t          nids, ids_cap;
    eb_buf          keys;     /* the key entries, encoded */
    size_t         *keyoff;   /* where each key entry starts in keys */
    size_t          nkeys, keys_cap;
    uint64_t        client_ids;
} eb_segsum_acc;
#define EB_SEGSUM_UNCOUNTED 0x7fffffffu
#define EB_SEGSUM_CLIENT_ID 0x80000000u

/* An empty description starting at seq base; _free releases one (_init
 * again to reuse it). */
void eb__segsum_acc_init(eb_segsum_acc *a, uint64_t base);
void eb__segsum_acc_free(eb_segsum_acc *a);
/* Describes record seq (== a->base + a->n): d is its description, or
 * NULL when it is not an event (describe returned 0). *idh and *srch (may
 * be NULL) get its id's and (source, id)'s hashes, 0 when unindexed. */
void eb__segsum_acc_add(eb_segsum_acc *a, uint64_t seq, const eb_store_desc *d, uint64_t *idh,
                        uint64_t *srch);
/* Moves the description of the records below seq `end` into *out (made
 * here; a then starts at end, keeping the records from there). */
void eb__segsum_acc_split(eb_segsum_acc *a, uint64_t end, eb_segsum_acc *out);
/* Writes the summary of sealed segment seg from a, which must describe
 * exactly its records (EB_EINVAL if not: nothing written), to path; a's
 * id pairs are sorted in place. 0 or an I/O error. */
int eb__segsum_write(eb_segsum_acc *a, const eb_log_seg_info *seg, const char *path);
/* The same encoded into out (appended; the PostgreSQL engine keeps it in
 * a table): 0, EB_EINVAL or EB_ENOMEM. */
int eb__segsum_encode(eb_segsum_acc *a, const eb_log_seg_info *seg, eb_buf *out);
/* Reads the records of sealed segment seg from log (describing each with
 * d), and writes their summary to path. *described (may be NULL) gets the
 * number of records read. 0, EB_EGONE (retention removed the segment
 * meanwhile: nothing written), or an I/O error. Any thread. */
int eb__segsum_build(eb_log *log, const eb_log_seg_info *seg, eb_store_describe_fn d,
                     const char *path, uint64_t *described);

/* Called for each key entry of a loaded summary, in seq order. */
typedef void (*eb_segsum_key_fn)(void *arg, const char *key, size_t len, uint64_t version,
                                 uint64_t seq);
/* Loads the summary at path if it is whole and describes seg: *out owns
 * the mapping and the types (eb__segsum_free), key_fn (may be NULL) sees
 * the key entries. 0, EB_ENOTFOUND (no file) or EB_ECORRUPT (damaged,
 * foreign or stale: *out is empty). */
int eb__segsum_load(const char *path, const eb_log_seg_info *seg, eb_segsum *out,
                    eb_segsum_key_fn key_fn, void *arg);
/* The same from len bytes at p, copied into a scratch file without a name (O_TMPFILE) in
 * $TMPDIR (default /tmp), mapped (its pages evictable, as a summary
 * file's), or onto the heap when no such file can be written (heap);
 * *out owns the copy. seg NULL: whatever records it describes (then in
 * out->seg). */
int eb__segsum_load_mem(const void *p, size_t len, const eb_log_seg_info *seg, eb_segsum *out,
                        eb_segsum_key_fn key_fn, void *arg);
/* The newest seq below `below` (UINT64_MAX: any) in the segment whose id
 * has hash h, or 0. O(log ids). */
uint64_t eb__segsum_find_id(const eb_segsum *s, uint64_t h, uint64_t below);
/* The same for a (source, id) hash (eb__keyidx_source_id_hash). */
uint64_t eb__segsum_find_source_id(const eb_segsum *s, uint64_t h, uint64_t below);
void     eb__segsum_free(eb_segsum *s);

/* A store's summaries: n of them, of consecutive ranges, oldest first
 * (the caller locks). The newest seq below `below` whose id (by_source:
 * (source, id)) hashes to h, or 0. */
uint64_t eb__segsum_set_find(eb_segsum *const *sums, size_t n, bool by_source, uint64_t h,
                             uint64_t below);
/* store.h's type_counts over the whole summaries inside [from, to). */
void     eb__segsum_set_type_counts(eb_segsum *const *sums, size_t n, uint64_t from, uint64_t to,
                                    uint64_t *lo, uint64_t *hi,
                                    void (*fn)(void *, const char *, size_t, uint64_t), void *arg);
/* store.h's client_id_range: skips the summaries that count no client id. */
void     eb__segsum_set_client_id_range(eb_segsum *const *sums, size_t n, uint64_t from,
                                        uint64_t *lo, uint64_t *hi);

#endif
