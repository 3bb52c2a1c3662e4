/* admin.c - libeventbus: the schema registry and stats, and the answer
 * readers the admin calls share (client.h; consumer groups, dead letters
 * and replay: groups.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events.h"

int eb__no_memory(eb_client *c, const void *result)
{
    eb_result_free(result);
    return eb__fail(c, EB_ENOMEM, "out of memory");
}

/* GET path, whose answer must hold the array `member`: *arr. */
int eb__get_list(eb_client *c, const char *path, const char *member, const eb_json **arr)
{
    eb__path(c, path);
    const eb_json *root;
    int rc = eb__call(c, "GET", false, 0, &root);
    if (rc)
        return rc;
    *arr = eb_json_get(root, member);
    if (!eb_json_is(*arr, EB_JSON_ARRAY)) {
        char what[64];
        snprintf(what, sizeof what, "no \"%s\" list", member);
        return eb__bad_answer(c, what);
    }
    return 0;
}

/* An array member of o as a NULL-safe list: its length, or 0. */
size_t eb__arr_len(const eb_json *o, const char *key)
{
    const eb_json *a = eb_json_get(o, key);
    return eb_json_is(a, EB_JSON_ARRAY) ? a->len : 0;
}

uint64_t eb__u64_of(const eb_json *o, const char *key)
{
    uint64_t v = 0;
    eb__get_u64(o, key, &v);
    return v;
}

static int need(eb_client *c, const char *v, const char *what)
{
    return v && *v ? 0 : eb__fail(c, EB_EINVAL, "%s is required", what);
}

/* --- schema registry ------------------------------------------------------ */

static int schema_body(eb_client *c, const char *type, const char *schema, const char *compat)
{
    int rc = need(c, type, "an event type");
    if (rc || (rc = need(c, schema, "a schema")) ||
        (rc = eb__check_json(c, "schema", schema, strlen(schema))))
        return rc;
    eb_jw w;
    eb__body(c, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "schema");
    eb_jw_raw(&w, schema, strlen(schema));
    if (compat) {
        eb_jw_key(&w, "compatibility");
        eb_jw_str(&w, compat);
    }
    eb_jw_obj_close(&w);
    eb__path(c, "/v1/schemas/");
    eb__path_seg(c, type);
    return 0;
}

int eb_schemas_register(eb_client *c, const char *type, const char *schema, const char *compat,
                        eb_schemas_result *res)
{
    int rc = EB__OUT_CHECK(c, eb_schemas_result, compatibility, res);
    if (rc || (rc = schema_body(c, type, schema, compat)))
        return rc;
    const eb_json *root;
    if ((rc = eb__call(c, "PUT", true, 0, &root)))
        return rc;
    eb_schemas_result r = {.size = sizeof r};
    uint64_t v = 0;
    const eb_json *ex = eb_json_get(root, "existing");
    r.existing = ex && ex->type == EB_JSON_TRUE;
    if (!eb__get_u64(root, "version", &v) ||
        !eb__get_str(root, "compatibility", r.compatibility, sizeof r.compatibility))
        return eb__bad_answer(c, "no version or compatibility");
    r.version = (uint32_t)v;
    eb__out_put(res, &r, sizeof r);
    return 0;
}

/* The changes of a check answer into v. */
static int read_verdict(eb_client *c, const eb_json *root, eb_schemas_verdict *v)
{
    uint64_t ver = 0;
    if (!eb__get_bool(root, "compatible", &v->compatible) ||
        !eb__get_u64(root, "version", &ver) || !(v->compatibility = eb__str(root, "compatibility")))
        return eb__bad_answer(c, "no compatible, version or compatibility");
    v->version = (uint32_t)ver;
    eb__get_bool(root, "existing", &v->existing);
    const eb_json *arr = eb_json_get(root, "changes");
    size_t n = eb__arr_len(root, "changes"), i = 0;
    eb_schemas_change **ch = eb__result_alloc(v, n * sizeof *ch);
    if (!ch)
        return eb__no_memory(c, NULL);
    for (const eb_json *e = n ? arr->child : NULL; e; e = e->next) {
        if (!eb_json_is(e, EB_JSON_OBJECT))
            continue;
        eb_schemas_change *x = eb__result_alloc(v, sizeof *x);
        if (!x)
            return eb__no_memory(c, NULL);
        const char *path = eb__str(e, "path"), *msg = eb__str(e, "message");
        x->path = path ? path : "";
        x->message = msg ? msg : "";
        eb__get_bool(e, "undecidable", &x->undecidable);
        ch[i++] = x;
    }
    v->nchanges = i;
    v->changes = (const eb_schemas_change *const *)ch;
    return 0;
}

int eb_schemas_check(eb_client *c, const char *type, const char *schema, const char *compat,
                     eb_schemas_verdict **out)
{
    if (out)
        *out = NULL;
    int rc = schema_body(c, type, schema, compat);
    const eb_json *root;
    if (rc)
        return rc;
    eb__path_lit(c, "/check");
    if ((rc = eb__call(c, "POST", true, 0, &root)))
        return rc;
    if (!out) { /* only the verdict's presence is checked */
        bool ok;
        return eb__get_bool(root, "compatible", &ok) ? 0 : eb__bad_answer(c, "no compatible");
    }
    eb_schemas_verdict *v = eb__result_new(c, sizeof *v);
    if (!v)
        return eb__no_memory(c, NULL);
    if ((rc = read_verdict(c, root, v))) {
        eb_result_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* A version object {"version","registered_at","schema"} (NULL: malformed). */
static const eb_schemas_version *read_version(void *res, const char *text, const eb_json *o)
{
    const eb_json *schema = eb_json_get(o, "schema");
    uint64_t ver = 0;
    eb_schemas_version *v = eb__result_alloc(res, sizeof *v);
    if (!v || !schema || !eb__get_u64(o, "version", &ver))
        return NULL;
    v->version = (uint32_t)ver;
    v->registered_at = eb__str(o, "registered_at");
    char *s = eb__result_alloc(res, (size_t)schema->src_len + 1);
    if (!s)
        return NULL;
    memcpy(s, text + schema->src_off, schema->src_len);
    v->schema = s;
    v->schema_len = schema->src_len;
    return v;
}

/* A type object {"type","compatibility","versions"[,"latest"]} into t. */
static bool read_type(void *res, const char *text, const eb_json *o, eb_schemas_type *t)
{
    t->type = eb__str(o, "type");
    t->compatibility = eb__str(o, "compatibility");
    const eb_json *vs = eb_json_get(o, "versions");
    size_t n = eb__arr_len(o, "versions"), i = 0;
    uint32_t *v = eb__result_alloc(res, n * sizeof *v);
    if (!t->type || !v)
        return false;
    for (const eb_json *e = n ? vs->child : NULL; e; e = e->next)
        if (eb_json_is(e, EB_JSON_NUMBER) && (e->flags & EB_JSON_F_INT) && e->i64 >= 0)
            v[i++] = (uint32_t)e->i64;
    t->nversions = i;
    t->versions = v;
    const eb_json *latest = eb_json_get(o, "latest");
    return !latest || (t->version = read_version(res, text, latest));
}

int eb_schemas_list(eb_client *c, eb_schemas_registry **out)
{
    if (out)
        *out = NULL;
    const eb_json *arr;
    int rc = eb__get_list(c, "/v1/schemas", "schemas", &arr);
    if (rc || !out)
        return rc;
    const char *text = c->answer.data;
    eb_schemas_registry *l = eb__result_new(c, sizeof *l);
    eb_schemas_type **v = l ? eb__result_alloc(l, arr->len * sizeof *v) : NULL;
    if (!v)
        return eb__no_memory(c, l);
    for (const eb_json *e = arr->child; e; e = e->next, l->n++) {
        eb_schemas_type *t = eb__result_alloc(l, sizeof *t);
        if (!t)
            return eb__no_memory(c, l);
        if (!read_type(l, text, e, t)) {
            eb_result_free(l);
            return eb__bad_answer(c, "a schema type without its name or versions");
        }
        v[l->n] = t;
    }
    l->types = (const eb_schemas_type *const *)v;
    *out = l;
    return 0;
}

int eb_schemas_get(eb_client *c, const char *type, uint32_t version, eb_schemas_type **out)
{
    if (out)
        *out = NULL;
    int rc = need(c, type, "an event type");
    if (rc)
        return rc;
    eb__path(c, "/v1/schemas/");
    eb__path_seg(c, type);
    if (version) {
        char num[16];
        snprintf(num, sizeof num, "%u", version);
        eb__path_lit(c, "/versions/");
        eb__path_seg(c, num);
    }
    const eb_json *root;
    if ((rc = eb__call(c, "GET", false, 0, &root)))
        return rc;
    if (!out)
        return 0;
    const char *text = c->answer.data;
    eb_schemas_type *t = eb__result_new(c, sizeof *t);
    if (!t)
        return eb__no_memory(c, NULL);
    bool ok;
    if (version) { /* one version: {"type","version","registered_at","schema"} */
        t->type = eb__str(root, "type");
        ok = t->type && (t->version = read_version(t, text, root));
    } else {
        ok = read_type(t, text, root, t) && t->version;
    }
    if (!ok) {
        eb_result_free(t);
        return eb__bad_answer(c, "no schema version in the answer");
    }
    *out = t;
    return 0;
}

/* --- stats ----------------------------------------------------------------- */

int eb_stats(eb_client *c, eb_stats_info **out)
{
    if (out)
        *out = NULL;
    eb__path(c, "/v1/stats");
    const eb_json *root;
    int rc = eb__call(c, "GET", false, 0, &root);
    if (rc)
        return rc;
    const eb_json *ev = eb_json_get(root, "events"), *groups = eb_json_get(root, "groups");
    if (!eb_json_is(ev, EB_JSON_OBJECT) || !eb_json_is(groups, EB_JSON_ARRAY))
        return eb__bad_answer(c, "no \"events\" or \"groups\" in the stats");
    if (!out)
        return 0;
    eb_stats_info *s = eb__result_new(c, sizeof *s);
    if (!s)
        return eb__no_memory(c, NULL);
    s->published = eb__u64_of(ev, "published");
    s->first_seq = eb__u64_of(ev, "first_seq");
    s->head_seq = eb__u64_of(ev, "head_seq");
    s->bytes = eb__u64_of(ev, "bytes");
    s->segments = eb__u64_of(ev, "segments");
    s->publish_p50_ms = eb_json_num(eb_json_get(ev, "publish_p50_ms"));
    s->publish_p99_ms = eb_json_num(eb_json_get(ev, "publish_p99_ms"));
    if ((rc = eb__group_array(c, s, groups, &s->ngroups, &s->groups))) {
        eb_result_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
