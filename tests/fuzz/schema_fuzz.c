/* schema_fuzz.c - fuzz target for JSON Schema (src/schema): compile,
 * validate, compatibility.
 *
 * Input: SCHEMA 0x00 INSTANCE (the first NUL byte splits; raw NUL cannot
 * occur in JSON text). Without a NUL the text is both schema and instance.
 * Inputs over 64 KiB are ignored (the API bounds bodies; the fuzzer should
 * spend its time on structure, not size).
 *
 * The schema is compiled twice: as draft 2020-12 with a resolver that
 * serves the instance text for every external URI (so "$ref" to other
 * documents is exercised), and as draft-07 without a resolver. Each
 * compiled schema validates the instance without an error list (the
 * publish fast path) and with a small one (the cold path that explains a
 * refusal). Properties, abort() on any breach:
 *   - compile answers 0 with a schema, or ESYNTAX/EINVAL/EUNSUPP with a
 *     message;
 *   - both validation paths agree; an invalid instance yields at least one
 *     error (or a truncated list), a valid one none; error paths are JSON
 *     Pointers; a reset list gives the same answer again;
 *   - eb_schema_compat(schema, instance) in every mode answers 0 or
 *     ECONFLICT exactly when the report is empty or not.
 * No crash, leak or hang: sanitizers and libFuzzer's timeout. */
#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "fuzz.h"
#include "json/json.h"
#include "schema/schema.h"

#define MAX_BYTES (64u << 10)
#define MAX_ERRORS 3

typedef struct text {
    const char *p;
    size_t      n;
} text;

/* The resolver: every external document is the instance text. */
static int resolve_instance(void *arg, const char *uri, eb_buf *out)
{
    const text *t = arg;
    (void)uri;
    eb_buf_append(out, t->p, t->n);
    return eb_buf_failed(out) ? EB_ENOMEM : 0;
}

static void check_errors(const eb_schema_errors *e, int rc)
{
    if (rc == 0) {
        FUZZ_CHECK(e->n == 0 && !e->truncated);
        return;
    }
    FUZZ_CHECK(e->n > 0 || e->truncated);
    FUZZ_CHECK(e->n <= e->max);
    for (size_t i = 0; i < e->n; i++) {
        const eb_schema_error *it = eb_schema_errors_at(e, i);
        FUZZ_CHECK(it->path && (it->path[0] == '\0' || it->path[0] == '/'));
        FUZZ_CHECK(it->schema_path && it->message && it->message[0]);
    }
}

static void check_validate(const eb_schema *s, const eb_json *inst)
{
    int fast = eb_schema_validate(s, inst, NULL);
    FUZZ_CHECK(fast == 0 || fast == EB_ESCHEMA);
    eb_schema_errors errs;
    eb_schema_errors_init(&errs, MAX_ERRORS);
    int full = eb_schema_validate(s, inst, &errs);
    FUZZ_CHECK(full == fast);
    check_errors(&errs, full);
    eb_schema_errors_reset(&errs);
    FUZZ_CHECK(eb_schema_validate(s, inst, &errs) == fast);
    check_errors(&errs, fast);
    eb_schema_errors_free(&errs);
}

static void compile_and_validate(text schema, text inst_text, const eb_json *inst,
                                 eb_schema_draft draft, bool resolver)
{
    eb_schema_opts o = {.default_draft = draft};
    if (resolver) {
        o.resolve = resolve_instance;
        o.resolve_arg = &inst_text;
    }
    eb_buf err = EB_BUF_INIT;
    eb_schema *s = NULL;
    int rc = eb_schema_compile(schema.p, schema.n, &o, &s, &err);
    if (rc) {
        FUZZ_CHECK(rc == EB_ESYNTAX || rc == EB_EINVAL || rc == EB_EUNSUPP);
        FUZZ_CHECK(s == NULL && err.len > 0);
    } else {
        FUZZ_CHECK(s != NULL);
        if (inst)
            check_validate(s, inst);
        eb_schema_free(s);
    }
    eb_buf_free(&err);
}

static void check_compat(text a, text b)
{
    static const eb_compat_mode modes[] = {EB_COMPAT_BACKWARD, EB_COMPAT_FORWARD,
                                           EB_COMPAT_FULL};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        eb_compat_report r;
        eb_compat_report_init(&r);
        int rc = eb_schema_compat(a.p, a.n, b.p, b.n, modes[i], &r);
        FUZZ_CHECK(rc == 0 || rc == EB_ECONFLICT);
        FUZZ_CHECK((rc == EB_ECONFLICT) == (eb_compat_report_count(&r) > 0));
        for (size_t k = 0; k < eb_compat_report_count(&r); k++) {
            const eb_compat_change *ch = eb_compat_report_at(&r, k);
            FUZZ_CHECK(ch->pointer && ch->message && ch->message[0]);
        }
        eb_compat_report_free(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_BYTES)
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    text schema = {(const char *)data, nul ? (size_t)(nul - data) : size};
    text inst = nul ? (text){(const char *)nul + 1, size - schema.n - 1} : schema;
    eb_json_doc *doc = eb_json_doc_new(), *sdoc = eb_json_doc_new();
    FUZZ_CHECK(doc && sdoc);
    const eb_json *root = eb_json_parse(doc, inst.p, inst.n, NULL, NULL) == 0
                              ? eb_json_root(doc) : NULL;
    compile_and_validate(schema, inst, root, EB_DRAFT_2020_12, true);
    compile_and_validate(schema, inst, root, EB_DRAFT_07, false);
    if (root && eb_json_parse(sdoc, schema.p, schema.n, NULL, NULL) == 0)
        check_compat(schema, inst);
    eb_json_doc_free(doc);
    eb_json_doc_free(sdoc);
    return 0;
}
