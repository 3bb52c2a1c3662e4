/* registry.c - the schema registry (see registry.h). */
#include "bus/registry.h"

#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"
#include "json/json.h"
#include "util/xmalloc.h"

void eb_registry_init(eb_registry *r)
{
    eb_map_init(&r->subjects);
}

static void subject_free(eb_subject *s)
{
    for (size_t i = 0; i < s->nvers; i++) {
        free(s->vers[i].text);
        eb_schema_free(s->vers[i].compiled);
    }
    free(s->vers);
    free(s->type);
    free(s);
}

void eb_registry_free(eb_registry *r)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&r->subjects, &it)))
        subject_free(s->val);
    eb_map_free(&r->subjects);
}

eb_subject *eb_registry_subject(const eb_registry *r, const char *type, size_t n)
{
    return eb_map_get(&r->subjects, type, n);
}

const eb_schema_ver *eb_registry_get(const eb_registry *r, const char *type, size_t n,
                                     uint32_t version)
{
    eb_subject *s = eb_registry_subject(r, type, n);
    if (!s || s->nvers == 0)
        return NULL;
    if (version == 0)
        return &s->vers[s->nvers - 1];
    return version <= s->nvers ? &s->vers[version - 1] : NULL;
}

const char *eb_compat_mode_name(eb_compat_mode m)
{
    switch (m) {
    case EB_COMPAT_NONE:     return "none";
    case EB_COMPAT_BACKWARD: return "backward";
    case EB_COMPAT_FORWARD:  return "forward";
    case EB_COMPAT_FULL:     return "full";
    }
    return "backward";
}

int eb_compat_mode_parse(const char *s, size_t n, eb_compat_mode *m)
{
    static const eb_compat_mode all[] = {EB_COMPAT_NONE, EB_COMPAT_BACKWARD,
                                         EB_COMPAT_FORWARD, EB_COMPAT_FULL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *name = eb_compat_mode_name(all[i]);
        if (strlen(name) == n && memcmp(name, s, n) == 0) {
            *m = all[i];
            return 0;
        }
    }
    return EB_EINVAL;
}

/* Non-zero version of an existing schema equal (as JSON) to `doc`. */
static uint32_t find_same(const eb_subject *s, const eb_json *cand, eb_json_doc *tmp)
{
    for (size_t i = s->nvers; i-- > 0;) {
        if (eb_json_parse(tmp, s->vers[i].text, s->vers[i].len, NULL, NULL) == 0 &&
            eb_json_equal(eb_json_root(tmp), cand))
            return s->vers[i].version;
    }
    return 0;
}

int eb_registry_check(eb_registry *r, const char *type, size_t n, const char *schema,
                      size_t len, bool mode_given, eb_compat_mode mode,
                      eb_registry_verdict *out, eb_schema **compiled)
{
    memset(out, 0, sizeof *out);
    eb_buf_init(&out->error);
    eb_compat_report_init(&out->report);
    eb_subject *s = eb_registry_subject(r, type, n);
    out->mode = mode_given ? mode : (s ? s->compat : EB_COMPAT_BACKWARD);
    out->next = s ? (uint32_t)s->nvers + 1 : 1;

    eb_schema *cs = NULL;
    int rc = eb_schema_compile(schema, len, NULL, &cs, &out->error);
    if (rc)
        return rc;
    if (s && s->nvers) {
        eb_json_doc *a = eb_json_doc_new(), *b = eb_json_doc_new();
        if (eb_json_parse(a, schema, len, NULL, NULL) == 0)
            out->same_as = find_same(s, eb_json_root(a), b);
        eb_json_doc_free(a);
        eb_json_doc_free(b);
        const eb_schema_ver *latest = &s->vers[s->nvers - 1];
        if (rc == 0 && !out->same_as && out->mode != EB_COMPAT_NONE)
            rc = eb_schema_compat(latest->text, latest->len, schema, len, out->mode,
                                  &out->report);
    }
    if (rc == 0 && compiled)
        *compiled = cs;
    else
        eb_schema_free(cs);
    return rc;
}

void eb_registry_check_done(eb_registry_verdict *c)
{
    eb_buf_free(&c->error);
    eb_compat_report_free(&c->report);
}

static eb_subject *subject_get_or_add(eb_registry *r, const char *type, size_t n)
{
    eb_subject *s = eb_registry_subject(r, type, n);
    if (s)
        return s;
    s = eb_xcalloc(1, sizeof *s);
    s->type = eb_xstrndup(type, n);
    eb_map_put(&r->subjects, type, n, s, NULL);
    s->compat = EB_COMPAT_BACKWARD;
    return s;
}

int eb_registry_apply(eb_registry *r, const char *type, size_t n, uint32_t version,
                      eb_compat_mode mode, const char *schema, size_t len, uint64_t ts_us,
                      eb_schema *compiled)
{
    eb_subject *s = subject_get_or_add(r, type, n);
    int rc = version != s->nvers + 1 ? EB_ECORRUPT : 0;
    if (rc == 0 && !compiled)
        rc = eb_schema_compile(schema, len, NULL, &compiled, NULL) ? EB_ECORRUPT : 0;
    if (rc) {
        eb_schema_free(compiled);
        return rc;
    }
    if (s->nvers == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->vers = eb_xrealloc(s->vers, s->cap * sizeof *s->vers);
    }
    char *text = eb_xstrndup(schema, len);
    s->vers[s->nvers++] = (eb_schema_ver){version, text, len, compiled, ts_us};
    r->versions++;
    s->compat = mode;
    return 0;
}
