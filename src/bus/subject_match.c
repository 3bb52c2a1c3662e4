/* subject_match.c - type patterns of group subscriptions: the validator and
 * the segment-by-segment matcher (grammar in subject_match.h). */
#include <string.h>

#include "bus/event.h"
#include "bus/subject_match.h"

static bool is_wild(const char *s, size_t n)
{
    return n == 1 && (s[0] == '*' || s[0] == '>');
}

/* The end of the segment starting at i. */
static size_t seg_end(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] != '.')
        i++;
    return i;
}

static bool has_wildcard(const char *s, size_t n)
{
    for (size_t i = 0; i <= n; i = seg_end(s, i, n) + 1)
        if (is_wild(s + i, seg_end(s, i, n) - i))
            return true;
    return false;
}

bool eb_subject_has_wildcard(const char *pattern)
{
    return has_wildcard(pattern, strlen(pattern));
}

static bool literal_valid(const char *s, size_t n, bool first)
{
    if (first && (n == 0 || s[0] == '-' || s[0] == '_'))
        return false; /* a type starts with a letter or digit */
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool eb_subject_pattern_valid(const char *s, size_t n)
{
    if (n == 0 || n > EB_EVENT_MAX_TYPE || memchr(s, '\0', n))
        return false;
    if (!has_wildcard(s, n))
        return eb_event_type_valid(s, n);
    for (size_t i = 0; i <= n;) {
        size_t e = seg_end(s, i, n);
        if (is_wild(s + i, e - i)) {
            if (s[i] == '>' && e != n)
                return false; /* ">" is a tail */
        } else if (!literal_valid(s + i, e - i, i == 0)) {
            return false;
        }
        i = e + 1;
    }
    return true;
}

bool eb_subject_match(const char *p, const char *t, size_t n)
{
    size_t pl = strlen(p), i = 0, j = 0; /* i, j: the current segment of each */
    if (n >= 9 && !memcmp(t, "eventbus.", 9) && is_wild(p, seg_end(p, 0, pl)))
        return false; /* the server's own events are matched by name only */
    for (;;) {
        if (i > pl)
            return j > n; /* the pattern is used up: so must the type be */
        if (j > n)
            return false;
        size_t pe = seg_end(p, i, pl), te = seg_end(t, j, n);
        if (pe == pl && is_wild(p + i, pe - i))
            return j < n; /* a tail wildcard: one or more segments left */
        if (!(pe - i == 1 && p[i] == '*') &&
            (pe - i != te - j || memcmp(p + i, t + j, te - j) != 0))
            return false;
        i = pe + 1;
        j = te + 1;
    }
}
