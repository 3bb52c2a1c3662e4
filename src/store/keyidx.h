/* keyidx.h - the log engine's lookups over an events store (store.h's
 * index calls): per-key streams (key -> its events' seqs, in version order)
 * and ids (hash of the id -> the newest event's seq).
 *
 * Derived data: kept in memory, filled as the bus reports appended events
 * (eb_store_index_add) and rebuilt when the bus opens the store (it reports
 * every retained event again), so it holds nothing the store does not. Versions come
 * from the records (format 2 stores each event's key_version), so a key's
 * version survives a restart as long as one of its events is retained.
 * Entries below the store's first retained seq are skipped on reads and
 * trimmed as a stream is read (retention drops them from the store).
 * Not thread-safe: the loop thread only. */
#ifndef EB_STORE_KEYIDX_H
#define EB_STORE_KEYIDX_H

#include <stddef.h>
#include <stdint.h>

#include "util/imap.h"
#include "util/map.h"

typedef struct eb_keyidx {
    eb_map  keys; /* key -> eb_keystream* */
    eb_imap ids;  /* id hash (never 0) -> seq (as a pointer-sized integer) */
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

/* Remembers that the newest event with this id is seq; 0 or EB_ENOMEM. */
int      eb__keyidx_add_id(eb_keyidx *x, const char *id, size_t n, uint64_t seq);
/* The seq of the newest event with this id (verify: hashes may collide),
 * or 0. */
uint64_t eb__keyidx_find_id(const eb_keyidx *x, const char *id, size_t n);

/* --- the lookups file --------------------------------------------------------
 * Written at a clean close so the next open need not rebuild the lookups
 * from the whole log; derived data (no durability promise: when it is
 * missing, damaged, or describes more records than the log has, the
 * lookups are rebuilt from the log). Format 1, little-endian:
 *   0  "EBLOOKUP"   8 u32 format (1)   12 u32 0
 *   16 u64 upto: the entries describe exactly the records below this seq
 *   24 u64 number of keys   32 u64 number of ids
 *   40 keys: u32 key length, key bytes, u64 base version, u64 n, n u64 seqs
 *      ids:  u64 hash, u64 seq
 *   end: u32 CRC32C of every byte before it. */
#define EB_KEYIDX_FILE_FORMAT 1
/* Writes x (describing the records below upto) to path, leaving out what
 * describes records below min_seq (retention removed them; a key keeps its
 * newest entry, its version): a temp file, fdatasync, rename, then the
 * directory synced. 0 or an I/O error. */
int eb__keyidx_save(const eb_keyidx *x, uint64_t min_seq, uint64_t upto, const char *path);
/* Loads path into x (empty) and sets *upto: 0, EB_ENOTFOUND (no file) or
 * EB_ECORRUPT (not a whole, valid file: x is emptied). The file is removed
 * once read: after a crash it would describe a log that has moved on. */
int eb__keyidx_load(eb_keyidx *x, const char *path, uint64_t *upto);

#endif
