/* match.h - the type -> groups index: which consumer groups want an event
 * of a given type, found without testing every group.
 *
 * Patterns are a group's `types` (subject_match.h: exact names, `*` one
 * segment, `>` or a last `*` the rest). Each pattern is a key of a hash map
 * holding the groups that listed it; a type is matched by looking itself up
 * and testing the wildcard patterns with eb_subject_match, once per type:
 * the deduplicated answer is cached per type until the next change, so an
 * event's cost does not grow with the number of groups.
 *
 * Groups are opaque pointers (the caller's); the index is built when groups
 * change (eb_matcher_add / eb_matcher_remove), not per event. Memory: one
 * map slot per distinct pattern plus, per (pattern, group), one pointer and
 * one slot of the pattern's group -> place map (so add and remove cost O(1)
 * whatever the number of groups, and loading 10,000 groups is linear); the
 * cache holds at most EB_MATCHER_CACHE types (cleared when full).
 * Loop thread only. */
#ifndef EB_BUS_MATCH_H
#define EB_BUS_MATCH_H

#include <stddef.h>

#include "util/map.h"

#define EB_MATCHER_CACHE 4096 /* types whose answer is kept */

typedef struct eb_matcher {
    eb_map pats;    /* pattern -> eb__mlist* (groups that listed it) */
    eb_map cache;   /* type -> eb__mlist* (deduplicated answer) */
    void **scratch; /* one answer being built */
    size_t scap;
} eb_matcher;

void eb_matcher_init(eb_matcher *m);
void eb_matcher_free(eb_matcher *m);
/* Adds group under pattern (a group listing a pattern twice is kept once). */
void eb_matcher_add(eb_matcher *m, void *group, const char *pattern);
/* Removes group from pattern (nothing if absent). */
void eb_matcher_remove(eb_matcher *m, void *group, const char *pattern);
/* Forgets every group. */
void eb_matcher_clear(eb_matcher *m);
/* The groups matching type t[0..n), each once: *out (borrowed until the next
 * add, remove, clear or match) and the count. */
size_t eb_matcher_match(eb_matcher *m, const char *t, size_t n, void *const **out);
/* qsort order of pointers (answers are sorted by it). */
int eb_matcher_ptr_cmp(const void *a, const void *b);

#endif
