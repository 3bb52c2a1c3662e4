/* json_fuzz.c - fuzz target for the JSON parser and writer (src/json).
 *
 * The input is JSON text. It is parsed twice: with the defaults (depth 128,
 * duplicate keys allowed) and strictly (depth 4, duplicate keys refused,
 * as the API parses envelopes). Properties checked, abort() on any breach:
 *   - a refusal has a reason and an offset, line and column inside the input;
 *   - the strict parse accepts only what the default parse accepts, with
 *     the same tree; it refuses only for depth or duplicate keys then;
 *   - round trip: the tree written back with eb_jw_value() parses again
 *     into the same tree (eb__fuzz_json_same), and writing that gives the
 *     same bytes (the writer's output is a fixed point);
 *   - each top-level member's source span (src_off/src_len, used to store
 *     event data verbatim) parses alone into the same value;
 *   - eb_json_equal() holds between the two trees (checked where duplicate
 *     keys are refused, since it matches members by name);
 *   - eb_jw_double() writes every finite number so that it reads back equal;
 *   - eb_json_escape() turns the raw input bytes, whatever they are, into a
 *     JSON string that parses; when they are valid UTF-8 it decodes to
 *     exactly those bytes.
 * Never crash, leak or hang is checked by the sanitizers and libFuzzer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "fuzz.h"
#include "json/json.h"

#define MAX_BYTES (1u << 20)

static void check_error(int rc, const eb_json_error *e, size_t size)
{
    FUZZ_CHECK(rc == EB_ESYNTAX || rc == EB_EDEPTH || rc == EB_ETOOBIG);
    FUZZ_CHECK(e->offset <= size);
    FUZZ_CHECK(e->line >= 1 && e->column >= 1);
    FUZZ_CHECK(e->msg[0] != '\0');
}

/* Writes v with the streaming writer into out (reset first). */
static void write_tree(const eb_json *v, eb_buf *out)
{
    eb_jw w;
    eb_buf_reset(out);
    eb_jw_init(&w, out);
    eb_jw_value(&w, v);
    FUZZ_CHECK(!eb_buf_failed(out));
    FUZZ_CHECK(w.depth == 0);
}

/* Numbers: every finite value written by eb_jw_double reads back equal. */
static void check_doubles(const eb_json *v, eb_buf *tmp, int *budget)
{
    for (; v && *budget > 0; v = v->next) {
        if (v->type == EB_JSON_NUMBER) {
            --*budget;
            double d = eb_json_num(v);
            if (!isfinite(d))
                continue;
            eb_jw w;
            eb_buf_reset(tmp);
            eb_jw_init(&w, tmp);
            eb_jw_double(&w, d);
            FUZZ_CHECK(tmp->len > 0 && strtod(tmp->data, NULL) == d);
        } else if (v->child) {
            check_doubles(v->child, tmp, budget);
        }
    }
}

/* The source span of each top-level member parses alone into the same value. */
static void check_spans(const uint8_t *data, const eb_json *root, eb_json_doc *doc)
{
    const eb_json *first = (root->type == EB_JSON_ARRAY || root->type == EB_JSON_OBJECT)
                               ? root->child : NULL;
    int n = 0;
    for (const eb_json *m = first; m && n < 16; m = m->next, n++) {
        FUZZ_CHECK(m->src_off >= root->src_off);
        FUZZ_CHECK(m->src_off + m->src_len <= root->src_off + root->src_len);
        int rc = eb_json_parse(doc, (const char *)data + m->src_off, m->src_len, NULL, NULL);
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(eb__fuzz_json_same(m, eb_json_root(doc)));
    }
}

/* Round trip: write, re-parse, compare, write again. */
static void round_trip(const eb_json *root, const eb_json_opts *o, bool by_value)
{
    eb_buf out = EB_BUF_INIT, again = EB_BUF_INIT;
    eb_json_doc *doc = eb_json_doc_new();
    FUZZ_CHECK(doc != NULL);
    write_tree(root, &out);
    eb_json_error e;
    int rc = eb_json_parse(doc, out.data, out.len, o, &e);
    FUZZ_CHECK(rc == 0);
    const eb_json *back = eb_json_root(doc);
    FUZZ_CHECK(eb__fuzz_json_same(root, back));
    if (by_value)
        FUZZ_CHECK(eb_json_equal(root, back));
    write_tree(back, &again);
    FUZZ_CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    eb_json_doc_free(doc);
    eb_buf_free(&out);
    eb_buf_free(&again);
}

/* Any bytes escape to a valid JSON string; valid UTF-8 comes back as is. */
static void check_escape(const char *text, size_t size, eb_json_doc *doc)
{
    eb_buf out = EB_BUF_INIT;
    eb_json_escape(&out, text, size);
    FUZZ_CHECK(!eb_buf_failed(&out));
    FUZZ_CHECK(eb_json_parse(doc, out.data, out.len, NULL, NULL) == 0);
    const eb_json *s = eb_json_root(doc);
    FUZZ_CHECK(s->type == EB_JSON_STRING);
    if (eb_json_utf8_valid(text, size))
        FUZZ_CHECK(s->len == size && !memcmp(s->str, text, size));
    eb_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_BYTES)
        return 0;
    const char *text = (const char *)data;
    eb_json_doc *dflt = eb_json_doc_new(), *strict = eb_json_doc_new(), *tmp = eb_json_doc_new();
    FUZZ_CHECK(dflt && strict && tmp);
    eb_json_error e1, e2;
    const eb_json_opts so = {.max_depth = 4, .reject_dup_keys = true};
    int rc1 = eb_json_parse(dflt, text, size, NULL, &e1);
    int rc2 = eb_json_parse(strict, text, size, &so, &e2);
    check_escape(text, size, tmp);
    if (rc1)
        check_error(rc1, &e1, size);
    if (rc2)
        check_error(rc2, &e2, size);
    FUZZ_CHECK((rc1 == 0) == (eb_json_root(dflt) != NULL));
    FUZZ_CHECK((rc2 == 0) == (eb_json_root(strict) != NULL));
    if (rc2 == 0) {
        FUZZ_CHECK(rc1 == 0);
        FUZZ_CHECK(eb__fuzz_json_same(eb_json_root(dflt), eb_json_root(strict)));
        round_trip(eb_json_root(strict), &so, true);
    } else if (rc1 == 0) {
        FUZZ_CHECK(rc2 == EB_EDEPTH ||
                   (rc2 == EB_ESYNTAX && !strcmp(e2.msg, "duplicate key in object")));
    }
    if (rc1 == 0) {
        const eb_json *root = eb_json_root(dflt);
        FUZZ_CHECK(root->src_len <= size);
        round_trip(root, NULL, false);
        eb_buf nums = EB_BUF_INIT;
        int budget = 64;
        check_doubles(root, &nums, &budget);
        eb_buf_free(&nums);
        check_spans(data, root, tmp);
    }
    eb_json_doc_free(dflt);
    eb_json_doc_free(strict);
    eb_json_doc_free(tmp);
    return 0;
}
