/* cloudevents.c - CloudEvents 1.0 HTTP bindings (see cloudevents.h). */
#include "api/cloudevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eventbus/err.h"
#include "util/xmalloc.h"

#define CE_MAX_EXT 64
#define CHUNK_BYTES 16384

struct eb_ce_chunk {
    eb_ce_chunk *next;
    size_t       used;                 /* bytes of mem handed out */
    _Alignas(16) char mem[CHUNK_BYTES];
};

/* The extensions object being built for one event. */
typedef struct ext_build {
    eb_ce_scratch *sc;
    eb_json       *obj;  /* NULL until the first extension */
    eb_json       *last; /* its last member */
} ext_build;

void eb_ce_scratch_reset(eb_ce_scratch *s)
{
    while (s->head) {
        eb_ce_chunk *c = s->head;
        s->head = c->next;
        c->next = s->free;
        s->free = c;
    }
}

void eb_ce_scratch_free(eb_ce_scratch *s)
{
    eb_ce_scratch_reset(s);
    while (s->free) {
        eb_ce_chunk *c = s->free;
        s->free = c->next;
        free(c);
    }
}

static void *scratch_alloc(eb_ce_scratch *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > CHUNK_BYTES)
        return NULL;
    if (!s->head || s->head->used + n > CHUNK_BYTES) {
        eb_ce_chunk *c = s->free;
        if (c)
            s->free = c->next;
        else
            c = eb_xmalloc(sizeof *c);
        c->used = 0;
        c->next = s->head;
        s->head = c;
    }
    void *p = s->head->mem + s->head->used;
    s->head->used += n;
    return p;
}

static int ce_err(eb_field_error *err, const char *field, const char *msg)
{
    snprintf(err->field, sizeof err->field, "%.60s", field);
    snprintf(err->message, sizeof err->message, "%s", msg);
    return EB_EINVAL;
}

static bool has_ct(const eb_http_req *req, const char *want)
{
    size_t n = 0;
    const char *ct = eb_http_req_header(req, "content-type", &n);
    size_t wl = strlen(want);
    return ct && n >= wl && strncasecmp(ct, want, wl) == 0 &&
           (n == wl || ct[wl] == ';' || ct[wl] == ' ');
}

eb_ce_mode eb_ce_detect(const eb_http_req *req)
{
    size_t n;
    if (eb_http_req_header(req, "ce-specversion", &n))
        return EB_CE_BINARY;
    if (has_ct(req, "application/cloudevents+json"))
        return EB_CE_STRUCTURED;
    if (has_ct(req, "application/cloudevents-batch+json"))
        return EB_CE_BATCH;
    return EB_CE_NONE;
}

/* Where a CloudEvents attribute goes in our envelope. */
typedef struct ce_attr {
    const char *name;
    size_t      off; /* offsetof(eb_event_in, eb_str field) */
} ce_attr;

static const ce_attr ce_attrs[] = {
    {"id", offsetof(eb_event_in, id)},
    {"source", offsetof(eb_event_in, source)},
    {"type", offsetof(eb_event_in, type)},
    {"subject", offsetof(eb_event_in, subject)},
    {"datacontenttype", offsetof(eb_event_in, datacontenttype)},
    {"partitionkey", offsetof(eb_event_in, key)},
    {"correlationid", offsetof(eb_event_in, correlation_id)},
    {"causationid", offsetof(eb_event_in, causation_id)},
    {"deliverat", offsetof(eb_event_in, deliver_at)}, /* deliver_at: names are [a-z0-9] */
    {"delay", offsetof(eb_event_in, delay)},
};

static const ce_attr *find_attr(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof ce_attrs / sizeof ce_attrs[0]; i++)
        if (strlen(ce_attrs[i].name) == n && memcmp(ce_attrs[i].name, name, n) == 0)
            return &ce_attrs[i];
    return NULL;
}

static int oom(eb_field_error *err)
{
    return ce_err(err, "", "out of memory");
}

/* Whether name is a valid CloudEvents attribute name: [a-z0-9]{1,20}. */
/* The checks CloudEvents puts on an attribute we keep under "extensions"
 * (time, dataschema and true extensions): its name, its type (string,
 * 32-bit integer or boolean: CloudEvents has no other JSON types) and a
 * time's syntax. */
static int ext_check(const eb_json *v, eb_field_error *err)
{
    char field[80];
    snprintf(field, sizeof field, "/%.*s", v->key_len > 70 ? 70 : (int)v->key_len, v->key);
    if (!eb_ce_name_valid(v->key, v->key_len))
        return ce_err(err, field, "CloudEvents attribute names are 1 to 20 lowercase letters "
                      "or digits");
    if (v->type != EB_JSON_STRING && v->type != EB_JSON_NUMBER && v->type != EB_JSON_TRUE &&
        v->type != EB_JSON_FALSE)
        return ce_err(err, field, "a CloudEvents attribute is a string, integer or boolean");
    if (v->type == EB_JSON_NUMBER &&
        (!(v->flags & EB_JSON_F_INT) || v->i64 < INT32_MIN || v->i64 > INT32_MAX))
        return ce_err(err, field, "a CloudEvents integer is whole, from -2^31 to 2^31-1");
    uint64_t ts;
    if (eb_json_key_is(v, "time") &&
        (v->type != EB_JSON_STRING || eb_time_parse(v->str, v->len, &ts) != 0))
        return ce_err(err, "/time", "must be an RFC 3339 time, like 2026-11-23T06:25:37Z");
    return 0;
}

/* Adds a member to the event's synthetic extensions object (a shallow copy
 * of v, which keeps its key). */
static int ext_add(ext_build *b, const eb_json *v, eb_field_error *err)
{
    if (v->type == EB_JSON_NULL) /* CloudEvents: null is absent */
        return 0;
    int rc = ext_check(v, err);
    if (rc)
        return rc;
    if (!b->obj) {
        if (!(b->obj = scratch_alloc(b->sc, sizeof *b->obj)))
            return oom(err);
        memset(b->obj, 0, sizeof *b->obj);
        b->obj->type = EB_JSON_OBJECT;
    }
    if (b->obj->len >= CE_MAX_EXT)
        return ce_err(err, "", "too many CloudEvents extension attributes (max 64)");
    eb_json *n = scratch_alloc(b->sc, sizeof *n);
    if (!n)
        return oom(err);
    *n = *v;
    n->next = NULL;
    if (b->last)
        b->last->next = n;
    else
        b->obj->child = n;
    b->last = n;
    b->obj->len++;
    return 0;
}

/* Copies s into scratch memory, NUL-terminated; NULL when out of memory. */
static const char *scratch_copy(eb_ce_scratch *sc, const char *s, size_t n)
{
    char *d = scratch_alloc(sc, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int set_version(eb_event_in *ev, const char *s, size_t n, eb_field_error *err)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > INT32_MAX)
            return ce_err(err, "/schemaversion", "must be a positive integer");
        v = v * 10 + (s[i] - '0');
    }
    if (n == 0 || v < 1 || v > INT32_MAX)
        return ce_err(err, "/schemaversion", "must be a positive integer");
    ev->version = v;
    return 0;
}

static int check_required(const eb_event_in *ev, bool spec_ok, eb_field_error *err)
{
    if (!spec_ok)
        return ce_err(err, "/specversion", "CloudEvents specversion \"1.0\" required");
    if (!ev->id.ptr)
        return ce_err(err, "/id", "CloudEvents attribute \"id\" required");
    if (!ev->source.ptr)
        return ce_err(err, "/source", "CloudEvents attribute \"source\" required");
    if (!ev->type.ptr)
        return ce_err(err, "/type", "CloudEvents attribute \"type\" required");
    return 0;
}

static int member(ext_build *b, const eb_json *m, const char *body, eb_event_in *ev,
                  bool *spec_ok, eb_field_error *err)
{
    char field[80];
    snprintf(field, sizeof field, "/%.70s", m->key);
    if (eb_json_key_is(m, "specversion")) {
        *spec_ok = m->type == EB_JSON_STRING && m->len == 3 && !memcmp(m->str, "1.0", 3);
        return 0;
    }
    if (eb_json_key_is(m, "data")) {
        ev->data = m;
        if (body)
            ev->data_raw = (eb_str){body + m->src_off, m->src_len};
        return 0;
    }
    if (eb_json_key_is(m, "data_base64"))
        return ce_err(err, "/data_base64", "binary data (data_base64) is not supported: "
                      "send JSON data");
    if (eb_json_key_is(m, "schemaversion")) {
        if (m->type == EB_JSON_NUMBER && (m->flags & EB_JSON_F_INT) && m->i64 > 0 &&
            m->i64 <= INT32_MAX) {
            ev->version = m->i64;
            return 0;
        }
        return m->type == EB_JSON_STRING ? set_version(ev, m->str, m->len, err)
                                         : ce_err(err, field, "must be a positive integer");
    }
    const ce_attr *a = find_attr(m->key, m->key_len);
    if (!a)
        return ext_add(b, m, err);
    if (m->type != EB_JSON_STRING || m->len == 0)
        return ce_err(err, field, "must be a non-empty string");
    eb_str *dst = (eb_str *)((char *)ev + a->off);
    *dst = (eb_str){m->str, m->len};
    return 0;
}

int eb_ce_from_json(eb_ce_scratch *sc, const eb_json *obj, const char *body,
                    eb_event_in *ev, eb_field_error *err)
{
    memset(ev, 0, sizeof *ev);
    if (!eb_json_is(obj, EB_JSON_OBJECT))
        return ce_err(err, "", "a CloudEvent must be a JSON object");
    ext_build b = {sc, NULL, NULL};
    bool spec_ok = false;
    for (const eb_json *m = obj->child; m; m = m->next) {
        int rc = member(&b, m, body, ev, &spec_ok, err);
        if (rc)
            return rc;
    }
    ev->extensions = b.obj;
    return check_required(ev, spec_ok, err);
}

/* --- binary mode --------------------------------------------------------- */

static int binary_header(ext_build *b, const eb_http_header *h, eb_event_in *ev,
                         bool *spec_ok, eb_field_error *err)
{
    const char *name = h->name + 3;
    size_t n = h->name_len - 3;
    if (n == 11 && !memcmp(name, "specversion", 11)) {
        *spec_ok = h->value_len == 3 && !memcmp(h->value, "1.0", 3);
        return 0;
    }
    if (n == 13 && !memcmp(name, "schemaversion", 13))
        return set_version(ev, h->value, h->value_len, err);
    if (!eb_json_utf8_valid(h->value, h->value_len)) { /* stored in JSON as it is */
        char field[80];
        snprintf(field, sizeof field, "/%.*s", (int)(n < 70 ? n : 70), name);
        return ce_err(err, field, "must be valid UTF-8");
    }
    const char *val = scratch_copy(b->sc, h->value, h->value_len);
    const char *key = scratch_copy(b->sc, name, n);
    if (!val || !key)
        return oom(err);
    const ce_attr *a = find_attr(name, n);
    if (a) {
        *(eb_str *)((char *)ev + a->off) = (eb_str){val, h->value_len};
        return 0;
    }
    eb_json s = {.type = EB_JSON_STRING, .len = (uint32_t)h->value_len, .str = val,
                 .key = key, .key_len = (uint32_t)n};
    return ext_add(b, &s, err);
}

int eb_ce_from_binary(eb_ce_scratch *sc, const eb_http_req *req, eb_json_doc *doc,
                      eb_event_in *ev, eb_field_error *err)
{
    memset(ev, 0, sizeof *ev);
    ext_build b = {sc, NULL, NULL};
    bool spec_ok = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const eb_http_header *h = &req->headers[i];
        if (h->name_len > 3 && !strncmp(h->name, "ce-", 3)) {
            int rc = binary_header(&b, h, ev, &spec_ok, err);
            if (rc)
                return rc;
        }
    }
    int rc = check_required(ev, spec_ok, err);
    if (rc)
        return rc;
    size_t ctn = 0;
    const char *ct = eb_http_req_header(req, "content-type", &ctn);
    if (req->body_len) {
        bool json = ct && ((ctn >= 16 && !strncasecmp(ct, "application/json", 16)) ||
                           memmem(ct, ctn, "+json", 5));
        if (!json)
            return ce_err(err, "/datacontenttype",
                          "binary-mode data must be JSON (Content-Type application/json)");
        eb_json_error je;
        if (eb_json_parse(doc, req->body, req->body_len, NULL, &je) != 0) {
            snprintf(err->field, sizeof err->field, "/data");
            snprintf(err->message, sizeof err->message,
                     "malformed JSON at line %u, column %u: %s", je.line, je.column, je.msg);
            return EB_EINVAL;
        }
        ev->data = eb_json_root(doc);
        ev->data_raw = (eb_str){req->body, req->body_len};
    }
    if (ct && !ev->datacontenttype.ptr) {
        if (!eb_json_utf8_valid(ct, ctn))
            return ce_err(err, "/datacontenttype", "Content-Type must be valid UTF-8");
        const char *c = scratch_copy(sc, ct, ctn);
        if (!c)
            return oom(err);
        ev->datacontenttype = (eb_str){c, ctn};
    }
    ev->extensions = b.obj;
    return 0;
}
