/* subject_match.h - the grammar and matcher of type patterns in a group's
 * "types" (NATS / RabbitMQ topic style). A pattern is dot-separated
 * segments; each is a literal (the characters of a type name), "*" or ">":
 *
 *   "*"  not last: exactly one segment     ("*.created", "order.*.v2")
 *   "*"  last:     one or more segments    (today's "order.*", "*"; kept)
 *   ">"  last only: one or more segments   ("order.>", ">")
 *
 * A pattern without wildcards is a type name and matches only itself.
 * The server's own types (`eventbus.*`, e.g. eventbus.dead_letter) are not
 * matched by a pattern starting with a wildcard: only by "eventbus.…".
 * Pure: no allocation, no state; the type index (another module) calls
 * eb_subject_match for the patterns it cannot look up by name. */
#ifndef EB_BUS_SUBJECT_MATCH_H
#define EB_BUS_SUBJECT_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* True if s (length n) is a valid type name or pattern (at most 128 bytes;
 * "*" and ">" only as whole segments, ">" only last). */
bool eb_subject_pattern_valid(const char *s, size_t n);
/* True if pattern (NUL-terminated, valid) has a wildcard segment. */
bool eb_subject_has_wildcard(const char *pattern);
/* True if event type t (length n) matches the valid pattern. */
bool eb_subject_match(const char *pattern, const char *t, size_t n);

#endif
