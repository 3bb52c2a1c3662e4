/* keyidx.h - the log engine's lookups over an events store (store.h's
 * index calls): per-key streams (key -> its events' seqs, in version order)
 * and ids (hash of the id -> the newest event's seq; hash of (source, id)
 * -> the newest event's seq with that source).
 *
 * Derived data: kept in memory (the ids by generation, see eb_keyidx),
 * filled as the bus reports appended events (eb_store_index_add) and, at open, from the segment summaries (the key
 * entries of sealed segments; their ids stay in the mapped summaries,
 * segsum.h) and a scan of the active segment, so it holds nothing the
 * store does not. Versions come
 * from the records (format 2 stores each event's key_version), so a key's
 * version survives a restart as long as one of its events is retained.
 * Entries below the store's first retained seq are skipped on reads and
 * trimmed as a stream is read (retention drops them from the store).
 * Not thread-safe: the loop thread only. */
#ifndef EB_STORE_KEYIDX_H
#define EB_STORE_KEYIDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/imap.h"
#include "util/map.h"

#define EB_KEYIDX_PENDING 128 /* ids put at once past the lazy bound (keyidx.c) */
#define EB_KEYIDX_LAZY_MAX (1u << 20) /* ids held unput at most (keyidx.c) */

/* The id lookups of one generation: the ids added between two cuts
 * (eb__keyidx_ids_cut). */
typedef struct eb__keyidx_gen {
    eb_imap  ids;    /* id hash (never 0) -> seq (as a pointer-sized integer) */
    eb_imap  srcids; /* (source, id) hash (never 0) -> seq */
    /* seq -> the next older seq with the same hash in this generation,
     * where a hash has several events (repeats of an id, or hashes that
     * collide): a lookup whose hit is another's record asks again below it. */
    eb_imap  ids_older, srcids_older;
    uint64_t max_seq; /* the newest seq it holds (0: none) */
} eb__keyidx_gen;

typedef struct eb_keyidx {
    eb_map keys; /* key -> eb_keystream* */
    /* The id lookups by generation, oldest first; new ids go into the
     * last. A store whose older ids another lookup answers (the log
     * engine's segment summaries) cuts a generation as that lookup grows
     * and frees those it covers, so memory holds only what it does not;
     * without cuts there is one generation (the PostgreSQL engine). */
    eb__keyidx_gen *gens;
    size_t          ngens;
    uint64_t        gone_below; /* every freed entry's seq is below this */
    /* Ids added but not yet in the maps, in the order added: pend[phead ..
     * npend). While no lookup came since the last cut, nothing is put
     * (past EB_KEYIDX_LAZY_MAX waiting, the oldest are put as more come):
     * a cut drops those its covered seq answers, so ids nobody looks up
     * while their segment is active are never put (publishing's CPU: the
     * puts were random cache misses and the maps' growth zeroed fresh
     * pages). A find reads the waiting ids as well as the maps and makes
     * the index eager until the next cut: then ids are put by chunks of
     * EB_KEYIDX_PENDING (slots prefetched), the backlog drained twice as
     * fast as ids come. */
    struct eb__keyidx_pend {
        uint64_t h, seq;
        int      by_source;
    } *pend;
    size_t phead, npend, pend_cap;
    bool   eager; /* a find came since the last cut */
} eb_keyidx;

void eb__keyidx_init(eb_keyidx *x);
void eb__keyidx_free(eb_keyidx *x);

/* The current version of key (0 if it has none). */
uint64_t eb__keyidx_version(const eb_keyidx *x, const char *key, size_t n);
/* Records that the event `seq` is version `version` of key (version 0:
 * the next one, for records of format 1). Versions of one key must come in
 * increasing order. Returns 0 or EB_ENOMEM. */
int eb__keyidx_add(eb_keyidx *x, const char *key, size_t n, uint64_t version, uint64_t seq);
/* Up to max seqs of key's versions >= from_version (from 1 if 0) with
 * seq >= min_seq and seq < below_seq, into seqs[]; *first_version gets
 * the version of seqs[0]. Returns the count. */
size_t eb__keyidx_range(eb_keyidx *x, const char *key, size_t n, uint64_t from_version,
                        uint64_t min_seq, uint64_t below_seq, uint64_t *seqs, size_t max,
                        uint64_t *first_version);

/* Remembers that the newest event with this id is seq (seqs of one id
 * come in increasing order); 0 or EB_ENOMEM. */
int      eb__keyidx_add_id(eb_keyidx *x, const char *id, size_t n, uint64_t seq);
/* The seq of the newest event below seq `below` (UINT64_MAX: any) whose
 * id has this id's hash (verify: hashes may collide; then ask again below
 * the record found), or 0. */
uint64_t eb__keyidx_find_id(eb_keyidx *x, const char *id, size_t n, uint64_t below);

/* The same keyed on (source, id) (slen 0: the empty source). */
int      eb__keyidx_add_source_id(eb_keyidx *x, const char *src, size_t slen, const char *id,
                                  size_t n, uint64_t seq);
uint64_t eb__keyidx_find_source_id(eb_keyidx *x, const char *src, size_t slen,
                                   const char *id, size_t n, uint64_t below);

/* The same two with the hash given (eb__keyidx_id_hash,
 * eb__keyidx_source_id_hash: computed once where the record was described). */
int      eb__keyidx_add_id_hash(eb_keyidx *x, uint64_t h, uint64_t seq);
int      eb__keyidx_add_source_id_hash(eb_keyidx *x, uint64_t h, uint64_t seq);
/* Frees the oldest generations of ids whose seqs are all below `covered`
 * (the caller answers those seqs elsewhere) and starts a new generation
 * for the ids added from now on. A find's answer below
 * eb__keyidx_ids_gone_below may have a newer one among the freed. */
void     eb__keyidx_ids_cut(eb_keyidx *x, uint64_t covered);
uint64_t eb__keyidx_ids_gone_below(const eb_keyidx *x);
/* The id entries held in memory (both lookups, their chains, pending). */
uint64_t eb__keyidx_ids_held(const eb_keyidx *x);

/* The hash of (source, id) in those lookups and the segment summaries:
 * FNV-1a over [source length, u32 LE][source][id] (the length keeps
 * ("a", "bc") and ("ab", "c") apart), never 0. */
uint64_t eb__keyidx_source_id_hash(const char *src, size_t slen, const char *id, size_t n);

/* The hash of an id in the id lookups (FNV-1a, 64 bits, never 0); also
 * the hash the segment summaries (segsum.h) store. */
uint64_t eb__keyidx_id_hash(const char *id, size_t n);

/* Test hook: keeps only the low `bits` bits (1..63) of both hashes, so
 * that tests can force collisions; 0: all 64. Also read once from the
 * environment (EB_TEST_ID_HASH_BITS) at the first hash. Call before any
 * store is opened (not thread-safe). */
void eb__keyidx_test_hash_bits(int bits);

#endif
