/* match.h - the type -> groups index: which consumer groups want an event
 * of a given type, found without testing every group.
 *
 * Patterns are today's group `types` syntax: an exact name ("order.created"),
 * a prefix ("order.*": "order." and one or more segments) or "*". Each
 * pattern is a key of a hash map holding the groups that listed it; a type
 * "a.b.c" is matched by looking up "a.b.c", "a.b.*", "a.*" and "*" (one
 * lookup per segment, whatever the number of groups), and the deduplicated
 * answer is cached per type until the next change. Segment wildcards (a
 * `*` or `>` in the middle, issue 17) slot in as another kind of key: the
 * lookup walks the type's segments the same way.
 *
 * Groups are opaque pointers (the caller's); the index is built when groups
 * change (eb_matcher_add / eb_matcher_remove), not per event. Memory: one
 * map slot per distinct pattern plus one pointer per (pattern, group); the
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
