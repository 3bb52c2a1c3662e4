/* map.h - an open-addressing hash map from byte-string keys to pointers.
 *
 * Used for the schema registry (type -> subject), the dedupe window
 * (event id -> entry) and consumer groups (name -> group). Keys are copied
 * into the map; values are the caller's (the map never frees them).
 * Linear probing with backward-shift deletion (no tombstones), power-of-two
 * capacity, load factor <= 0.75. Not thread-safe. */
#ifndef EB_UTIL_MAP_H
#define EB_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct eb_map_slot {
    char    *key;   /* owned copy, NUL-terminated; NULL = empty slot */
    uint32_t klen;  /* key length in bytes */
    uint32_t hash;  /* cached hash of the key */
    void    *val;   /* caller's value */
} eb_map_slot;

typedef struct eb_map {
    eb_map_slot *slots; /* cap entries */
    size_t       cap;   /* 0 or a power of two */
    size_t       len;   /* used slots */
} eb_map;

#define EB_MAP_INIT {NULL, 0, 0}

uint32_t eb_hash(const void *p, size_t n);

void eb_map_init(eb_map *m);
/* Frees the map's memory and key copies; values are untouched. */
void eb_map_free(eb_map *m);
/* The value for key, or NULL. */
void *eb_map_get(const eb_map *m, const char *key, size_t klen);
/* Sets key to val. If the key was present its old value is returned through
 * *old (if old is non-NULL) and replaced. Aborts on allocation failure
 * (util/xmalloc.h: server-only, like imap, heap and rangeset). */
void eb_map_put(eb_map *m, const char *key, size_t klen, void *val, void **old);
/* Removes key; returns its value, or NULL if absent. */
void *eb_map_del(eb_map *m, const char *key, size_t klen);
/* Iteration: start with *it = 0; returns the next used slot or NULL.
 * The map must not be modified during iteration. */
const eb_map_slot *eb_map_next(const eb_map *m, size_t *it);

#endif
