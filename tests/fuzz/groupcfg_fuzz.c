/* groupcfg_fuzz.c - fuzz target for a consumer group's configuration as
 * PUT /v1/groups/{g} reads it (src/bus/group_cfg.c): its type patterns
 * (src/bus/subject_match.c) and its filter (src/bus/filter.c).
 *
 * Input: byte 0 picks the mode. Even: the rest is a JSON body, parsed as
 * the API parses it, then eb_group_cfg_parse. Odd: the rest is "pattern\n
 * type" for the pattern matcher alone. Properties, abort() on a breach:
 *   - a refused config names a field ("" or a JSON Pointer) and a reason;
 *   - an accepted one writes JSON that parses and is accepted again, and
 *     writes the same text the second time (the stored record round-trips);
 *   - an accepted filter can be evaluated on the body itself as an event;
 *   - a pattern eb_subject_pattern_valid accepts is at most 128 bytes, and
 *     matching it against a type never reads past either; an exact type
 *     name as a pattern matches exactly itself. */
#include <stdlib.h>
#include <string.h>

#include "bus/group_types.h"
#include "bus/subject_match.h"
#include "eventbus/err.h"
#include "fuzz.h"
#include "json/json.h"

static void check_patterns(const char *s, size_t n)
{
    const char *nl = memchr(s, '\n', n);
    size_t pl = nl ? (size_t)(nl - s) : n;
    char *p = malloc(pl + 1), *t = malloc(n - pl + 1);
    FUZZ_CHECK(p && t);
    memcpy(p, s, pl);
    p[pl] = '\0';
    size_t tl = nl ? n - pl - 1 : 0;
    memcpy(t, nl ? nl + 1 : "", tl);
    if (eb_subject_pattern_valid(p, pl)) {
        FUZZ_CHECK(pl <= EB_EVENT_MAX_TYPE);
        bool m = eb_subject_match(p, t, tl);
        if (!eb_subject_has_wildcard(p))
            FUZZ_CHECK(m == (pl == tl && memcmp(p, t, tl) == 0));
    }
    free(p);
    free(t);
}

static void check_config(const char *s, size_t n)
{
    eb_json_doc *doc = eb_json_doc_new(), *again = eb_json_doc_new();
    FUZZ_CHECK(doc && again);
    eb_json_opts o = {.max_depth = 128, .reject_dup_keys = true};
    if (eb_json_parse(doc, s, n, &o, NULL) == 0) {
        eb_group_cfg cfg, cfg2;
        eb_field_error fe;
        if (eb_group_cfg_parse(eb_json_root(doc), &cfg, &fe) != 0) {
            FUZZ_CHECK(fe.field[0] == '\0' || fe.field[0] == '/');
            FUZZ_CHECK(fe.message[0] != '\0');
        } else {
            eb_buf b1 = EB_BUF_INIT, b2 = EB_BUF_INIT;
            eb_jw w;
            eb_jw_init(&w, &b1);
            eb_group_cfg_write(&w, &cfg);
            FUZZ_CHECK(eb_json_parse(again, b1.data, b1.len, &o, NULL) == 0);
            FUZZ_CHECK(eb_group_cfg_parse(eb_json_root(again), &cfg2, &fe) == 0);
            eb_jw_init(&w, &b2);
            eb_group_cfg_write(&w, &cfg2);
            FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
            eb_filter_event ev;
            eb_filter_event_of(eb_json_root(doc), &ev);
            (void)eb_group_cfg_passes(&cfg, &ev);
            eb_group_cfg_free(&cfg2);
            eb_group_cfg_free(&cfg);
            eb_buf_free(&b1);
            eb_buf_free(&b2);
        }
    }
    eb_json_doc_free(doc);
    eb_json_doc_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (64u << 10))
        return 0;
    char *s = malloc(size); /* exactly the input: reads past it are caught */
    FUZZ_CHECK(s != NULL);
    memcpy(s, data + 1, size - 1);
    if (data[0] & 1)
        check_patterns(s, size - 1);
    else
        check_config(s, size - 1);
    free(s);
    return 0;
}
