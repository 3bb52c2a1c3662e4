/* schemas.c - the schema registry routes:
 *   PUT  /v1/schemas/{type}                 register the next version
 *   POST /v1/schemas/{type}/check           the same checks, nothing written
 *   GET  /v1/schemas                        every type
 *   GET  /v1/schemas/{type}                 one type, its versions, the latest
 *   GET  /v1/schemas/{type}/versions/{n}    one version */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

typedef struct reg_req {
    eb_api      *api;
    eb_http_req *req;
    char         type[EB_EVENT_MAX_TYPE + 1];
    uint32_t     version;
    eb_compat_mode mode;
} reg_req;

static void write_changes(eb_jw *w, const eb_compat_report *r)
{
    eb_jw_arr_open(w);
    for (size_t i = 0; i < eb_compat_report_count(r); i++) {
        const eb_compat_change *c = eb_compat_report_at(r, i);
        eb_jw_obj_open(w);
        eb_jw_key(w, "path");
        eb_jw_str(w, c->pointer);
        eb_jw_key(w, "message");
        eb_jw_str(w, c->message);
        if (c->undecidable) {
            eb_jw_key(w, "undecidable");
            eb_jw_bool(w, true);
        }
        eb_jw_obj_close(w);
    }
    eb_jw_arr_close(w);
}

/* Reads {"schema": ..., "compatibility": ...} from the body. */
static int read_put_body(eb_api *api, eb_http_req *req, const eb_json **schema,
                         bool *mode_given, eb_compat_mode *mode)
{
    const eb_json *root = eb__api_body(api, req, false);
    if (!root)
        return -1;
    if (root->type != EB_JSON_OBJECT) {
        eb__api_bad_field(req, "", "expected {\"schema\": <JSON Schema>, \"compatibility\": ...}");
        return -1;
    }
    *schema = NULL;
    *mode_given = false;
    for (const eb_json *m = root->child; m; m = m->next) {
        if (!strcmp(m->key, "schema")) {
            *schema = m;
        } else if (!strcmp(m->key, "compatibility")) {
            if (m->type != EB_JSON_STRING || eb_compat_mode_parse(m->str, m->len, mode)) {
                eb__api_bad_field(req, "/compatibility",
                                  "must be one of backward, forward, full, none");
                return -1;
            }
            *mode_given = true;
        } else {
            char f[80], msg[120];
            snprintf(f, sizeof f, "/%.70s", m->key);
            snprintf(msg, sizeof msg, "unknown field \"%.70s\" (allowed: schema, compatibility)",
                     m->key);
            eb__api_bad_field(req, f, msg);
            return -1;
        }
    }
    if (!*schema || (*schema)->type == EB_JSON_NULL) {
        eb__api_bad_field(req, "/schema", "required field \"schema\" missing");
        return -1;
    }
    if ((*schema)->type != EB_JSON_OBJECT && !eb_json_is_bool(*schema)) {
        eb__api_bad_field(req, "/schema", "a JSON Schema is an object or a boolean");
        return -1;
    }
    return 0;
}

static bool type_ok(eb_http_req *req, const eb_str *t)
{
    if (eb_event_type_valid(t->ptr, t->len))
        return true;
    eb__api_bad_field(req, "/type", "invalid type name (1-128 characters: lowercase letters, "
                      "digits, '.', '-', '_'; starting with a letter or digit)");
    return false;
}

/* Answers a refused check: invalid schema (400) or incompatible (409). */
static void check_failed(eb_api *api, eb_http_req *req, int rc, eb_registry_verdict *chk,
                         const char *type)
{
    if (rc == EB_ECONFLICT) {
        eb_buf d = EB_BUF_INIT;
        eb_jw w;
        eb_jw_init(&w, &d);
        write_changes(&w, &chk->report);
        char msg[300];
        size_t n = eb_compat_report_count(&chk->report);
        const eb_compat_change *c0 = n ? eb_compat_report_at(&chk->report, 0) : NULL;
        snprintf(msg, sizeof msg, "schema is not %s compatible with %s v%u: %s%s",
                 eb_compat_mode_name(chk->mode), type, chk->next - 1,
                 c0 ? c0->message : "breaking change", n > 1 ? " (and more in details)" : "");
        eb__api_error(req, 409, "incompatible_schema", msg, d.data);
        eb_buf_free(&d);
    } else if (rc == EB_EUNSUPP) { /* a "$schema" draft or vocabulary we do not implement */
        char msg[600];
        snprintf(msg, sizeof msg, "unsupported JSON Schema: %s",
                 chk->error.len ? chk->error.data : eb_strerror(rc));
        eb__api_error(req, 422, "unsupported_schema", msg,
                      "[{\"field\":\"/$schema\",\"message\":\"only JSON Schema draft 2020-12 "
                      "and draft-07 are supported\"}]");
    } else {
        char msg[600];
        snprintf(msg, sizeof msg, "invalid JSON Schema: %s",
                 chk->error.len ? chk->error.data : eb_strerror(rc));
        eb__api_error(req, 400, "invalid_schema", msg, NULL);
    }
    (void)api;
}

static void write_registered(eb_jw *w, const char *type, uint32_t version, eb_compat_mode mode,
                             bool existing)
{
    eb_jw_obj_open(w);
    eb_jw_key(w, "type");
    eb_jw_str(w, type);
    eb_jw_key(w, "version");
    eb_jw_uint(w, version);
    eb_jw_key(w, "compatibility");
    eb_jw_str(w, eb_compat_mode_name(mode));
    if (existing) {
        eb_jw_key(w, "existing");
        eb_jw_bool(w, true);
    }
    eb_jw_obj_close(w);
}

static void on_registered(void *arg, int status)
{
    reg_req *rr = arg;
    if (status == 0) {
        eb_buf_reset(&rr->api->out);
        eb_jw w;
        eb_jw_init(&w, &rr->api->out);
        write_registered(&w, rr->type, rr->version, rr->mode, false);
        eb__api_reply(rr->api, rr->req, 201);
    } else {
        eb__api_write_failed(rr->req, status);
    }
    free(rr);
}

void eb__api_schema_put(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    const eb_json *schema;
    bool mode_given;
    eb_compat_mode mode = EB_COMPAT_BACKWARD;
    if (!type_ok(req, &p->v[0]) || read_put_body(api, req, &schema, &mode_given, &mode))
        return;
    reg_req *rr = eb_xcalloc(1, sizeof *rr);
    rr->api = api;
    rr->req = req;
    memcpy(rr->type, p->v[0].ptr, p->v[0].len);
    eb_registry_verdict chk;
    const char *text = req->body + schema->src_off;
    int rc = eb_bus_register_schema(api->bus, p->v[0].ptr, p->v[0].len, text, schema->src_len,
                                    mode_given, mode, &chk, on_registered, rr);
    rr->version = chk.next;
    rr->mode = chk.mode;
    if (rc == EB_EEXIST) {
        eb_buf_reset(&api->out);
        eb_jw w;
        eb_jw_init(&w, &api->out);
        write_registered(&w, rr->type, chk.same_as, chk.mode, true);
        eb__api_reply(api, req, 200);
    } else if (rc == EB_EFULL) {
        eb__api_error(req, 409, "conflict", "another version of this type's schema is being "
                      "registered; retry", NULL);
    } else if (rc == EB_ERANGE) {
        eb__api_error(req, 409, "limit_exceeded", "the schema registry holds its maximum "
                      "number of schema versions (--max-schemas)", NULL);
    } else if (rc == EB_ECLOSED || rc == EB_ENOSPC || rc == EB_ECONNECT) {
        eb__api_write_failed(req, rc);
    } else if (rc) {
        check_failed(api, req, rc, &chk, rr->type);
    }
    eb_registry_check_done(&chk);
    if (rc)
        free(rr);
}

void eb__api_schema_check(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    const eb_json *schema;
    bool mode_given;
    eb_compat_mode mode = EB_COMPAT_BACKWARD;
    if (!type_ok(req, &p->v[0]) || read_put_body(api, req, &schema, &mode_given, &mode))
        return;
    eb_registry_verdict chk;
    int rc = eb_bus_schema_check(api->bus, p->v[0].ptr, p->v[0].len,
                                 req->body + schema->src_off, schema->src_len, mode_given, mode,
                                 &chk);
    if (rc && rc != EB_ECONFLICT) {
        char type[EB_EVENT_MAX_TYPE + 1];
        snprintf(type, sizeof type, "%.*s", (int)p->v[0].len, p->v[0].ptr);
        check_failed(api, req, rc, &chk, type);
        eb_registry_check_done(&chk);
        return;
    }
    eb_buf_reset(&api->out);
    eb_jw w;
    eb_jw_init(&w, &api->out);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "compatible");
    eb_jw_bool(&w, rc == 0);
    eb_jw_key(&w, "compatibility");
    eb_jw_str(&w, eb_compat_mode_name(chk.mode));
    eb_jw_key(&w, "version");
    eb_jw_uint(&w, chk.same_as ? chk.same_as : chk.next);
    if (chk.same_as) {
        eb_jw_key(&w, "existing");
        eb_jw_bool(&w, true);
    }
    eb_jw_key(&w, "changes");
    write_changes(&w, &chk.report);
    eb_jw_obj_close(&w);
    eb_registry_check_done(&chk);
    eb__api_reply(api, req, 200);
}

static void write_version(eb_jw *w, const char *type, const eb_schema_ver *v)
{
    char t[32];
    size_t tn = eb_time_format(v->registered_us, t);
    eb_jw_obj_open(w);
    eb_jw_key(w, "type");
    eb_jw_str(w, type);
    eb_jw_key(w, "version");
    eb_jw_uint(w, v->version);
    eb_jw_key(w, "registered_at");
    eb_jw_strn(w, t, tn);
    eb_jw_key(w, "schema");
    eb_jw_raw(w, v->text, v->len);
    eb_jw_obj_close(w);
}

static void write_subject(eb_jw *w, const eb_subject *s, bool full)
{
    eb_jw_obj_open(w);
    eb_jw_key(w, "type");
    eb_jw_str(w, s->type);
    eb_jw_key(w, "compatibility");
    eb_jw_str(w, eb_compat_mode_name(s->compat));
    eb_jw_key(w, "versions");
    eb_jw_arr_open(w);
    for (size_t i = 0; i < s->nvers; i++)
        eb_jw_uint(w, s->vers[i].version);
    eb_jw_arr_close(w);
    if (full && s->nvers) {
        eb_jw_key(w, "latest");
        write_version(w, s->type, &s->vers[s->nvers - 1]);
    }
    eb_jw_obj_close(w);
}

static int cmp_subject(const void *a, const void *b)
{
    const eb_subject *x = *(const eb_subject *const *)a, *y = *(const eb_subject *const *)b;
    return strcmp(x->type, y->type);
}

typedef struct subjects {
    const eb_subject **v;
    size_t             n, cap;
} subjects;

static void collect_subject(void *arg, const eb_subject *s)
{
    subjects *c = arg;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = eb_xrealloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = s;
}

void eb__api_schema_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    subjects c = {0};
    eb_bus_schemas_each(api->bus, collect_subject, &c);
    const eb_subject **all = c.v;
    size_t n = c.n;
    if (n)
        qsort(all, n, sizeof *all, cmp_subject);
    eb_buf_reset(&api->out);
    eb_jw w;
    eb_jw_init(&w, &api->out);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "schemas");
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < n; i++)
        write_subject(&w, all[i], false);
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
    free(c.v);
    eb__api_reply(api, req, 200);
}

void eb__api_schema_get(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    const eb_subject *s = eb_bus_schema_subject(api->bus, p->v[0].ptr, p->v[0].len);
    if (!s)
        return eb__api_error(req, 404, "not_found", "no schema registered for this type", NULL);
    eb_buf_reset(&api->out);
    eb_jw w;
    eb_jw_init(&w, &api->out);
    write_subject(&w, s, true);
    eb__api_reply(api, req, 200);
}

void eb__api_schema_version(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < p->v[1].len && v < 1000000000u; i++) {
        char c = p->v[1].ptr[i];
        v = (c >= '0' && c <= '9') ? v * 10 + (uint64_t)(c - '0') : 1000000000u;
    }
    const eb_subject *s = eb_bus_schema_subject(api->bus, p->v[0].ptr, p->v[0].len);
    bool latest = p->v[1].len == 6 && !memcmp(p->v[1].ptr, "latest", 6);
    const eb_schema_ver *ver = NULL;
    if (s && s->nvers && (latest || (v >= 1 && v <= s->nvers)))
        ver = &s->vers[latest ? s->nvers - 1 : v - 1];
    if (!ver)
        return eb__api_error(req, 404, "not_found", "no such schema version", NULL);
    eb_buf_reset(&api->out);
    eb_jw w;
    eb_jw_init(&w, &api->out);
    write_version(&w, s->type, ver);
    eb__api_reply(api, req, 200);
}
