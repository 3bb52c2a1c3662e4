/* groups.c - the consumer-group routes of the HTTP API: group admin
 * (create, change, list, get, delete, pause, resume), and what the group
 * route files share (group_routes.h: the deferred answer of a change, the
 * body checks). Pull and ack/nack/extend: deliveries.c; dead letters and
 * replay: dlq.c. Every route calls the bus's command API (bus.h) and
 * renders the plain results; the group views and monitoring endpoints are
 * rendered in monitor.c.
 *
 * A change is answered when its meta records are durable: the answer body
 * is made as soon as the call returns; when the bus says the change is
 * durable already (1) it is sent at once, otherwise it is kept in a
 * `deferred` until the bus calls back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/group_routes.h"
#include "eventbus/err.h"
#include "util/pct.h"
#include "util/xmalloc.h"

void eb__api_deferred_free(deferred *d)
{
    if (d->body != d->small)
        free(d->body);
    free(d);
}

void eb__api_on_durable_answer(void *arg, int status)
{
    deferred *d = arg;
    if (status)
        eb__api_write_failed(d->req, status);
    else if (d->status == 204)
        eb__api_respond(d->req, 204, NULL, NULL, 0);
    else
        eb__api_respond(d->req, d->status, "application/json", d->body, d->len);
    eb__api_deferred_free(d);
}

/* The cb arg for a change answered on req. */
deferred *eb__api_defer(eb_http_req *req)
{
    deferred *d = eb_xcalloc(1, sizeof *d);
    d->req = req;
    d->body = d->small;
    return d;
}

/* Answers the outcome of a bus change call that returned rc < 0. */
void eb__api_change_failed(eb_http_req *req, int rc)
{
    if (rc == EB_ENOTFOUND)
        eb__api_error(req, 404, "not_found", "no such consumer group", NULL);
    else if (rc == EB_ERANGE) /* only a new group past --max-groups */
        eb__api_error(req, 409, "limit_exceeded", "the server holds its maximum number of "
                      "consumer groups (--max-groups): delete one first", NULL);
    else
        eb__api_write_failed(req, rc);
}

/* A bus change called with d returned rc, and api->out holds its answer:
 * sends it now (rc 1: durable already), keeps it in d for the bus's
 * callback (rc 0), or answers the error (rc < 0). */
void eb__api_change_made(eb_api *api, eb_http_req *req, deferred *d, int rc, int status)
{
    if (rc != 0) {
        eb__api_deferred_free(d);
        if (rc < 0)
            eb__api_change_failed(req, rc);
        else if (status == 204)
            eb__api_respond(req, 204, NULL, NULL, 0);
        else
            eb__api_reply(api, req, status);
        return;
    }
    size_t n = api->out.len;
    if (n > sizeof d->small)
        d->body = eb_xmalloc(n);
    d->status = status;
    d->len = n;
    if (n)
        memcpy(d->body, api->out.data, n);
}

/* Answers {"<key>": n} (after a change call returned rc on d). */
void eb__api_answer_count(eb_api *api, eb_http_req *req, deferred *d, int rc, const char *key,
                          size_t n)
{
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, key);
    eb_jw_uint(&w, n);
    eb_jw_obj_close(&w);
    eb__api_change_made(api, req, d, rc, 200);
}

/* --- names and lookups -------------------------------------------------------- */

/* 1-128 of A-Z a-z 0-9 . _ -, but not "." or "..": a URL cannot address
 * those (clients and proxies resolve them as path segments). */
static bool name_ok(const eb_str *s)
{
    if (s->len < 1 || s->len > EB_GROUP_MAX_NAME)
        return false;
    if ((s->len == 1 && s->ptr[0] == '.') || (s->len == 2 && !memcmp(s->ptr, "..", 2)))
        return false;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Whether the group named by the path exists; answers 404 if not. */
static bool find_group(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (name_ok(&p->v[0]) && eb_bus_group_exists(api->bus, p->v[0].ptr, p->v[0].len))
        return true;
    char msg[200];
    snprintf(msg, sizeof msg, "no consumer group named \"%.*s\"",
             (int)(p->v[0].len > 128 ? 128 : p->v[0].len), p->v[0].ptr);
    eb__api_error(req, 404, "not_found", msg, NULL);
    return false;
}

bool eb__api_find_group(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    return find_group(api, req, p);
}

/* Checks that every member of obj is one of `allowed` (NULL-terminated). */
bool eb__api_only_fields(eb_http_req *req, const eb_json *obj, const char *const *allowed)
{
    for (const eb_json *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(m->key, allowed[i]) == 0;
        if (!ok) {
            char f[80], msg[256], list[160] = "";
            snprintf(f, sizeof f, "/%.60s", m->key);
            for (size_t i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         allowed[i]);
            snprintf(msg, sizeof msg, "unknown field (allowed: %s)", list);
            eb__api_bad_field(req, f, msg);
            return false;
        }
    }
    return true;
}

/* An optional integer member in [lo, hi]; *out keeps its default if absent. */
bool eb__api_int_field(eb_http_req *req, const eb_json *obj, const char *key, int64_t lo,
                       int64_t hi, int64_t *out)
{
    const eb_json *v = eb_json_get(obj, key);
    if (!v)
        return true;
    if (v->type != EB_JSON_NUMBER || !(v->flags & EB_JSON_F_INT) || v->i64 < lo || v->i64 > hi) {
        char f[40], msg[96];
        snprintf(f, sizeof f, "/%s", key);
        snprintf(msg, sizeof msg, "must be an integer from %lld to %lld", (long long)lo,
                 (long long)hi);
        eb__api_bad_field(req, f, msg);
        return false;
    }
    *out = v->i64;
    return true;
}

/* The body as an object, or answers and returns NULL. */
const eb_json *eb__api_body_object(eb_api *api, eb_http_req *req, bool empty_ok)
{
    if (empty_ok && req->body_len == 0) {
        static const eb_json empty = {.type = EB_JSON_OBJECT};
        return &empty;
    }
    const eb_json *b = eb__api_body(api, req, false);
    if (b && b->type != EB_JSON_OBJECT) {
        eb__api_bad_field(req, "", "the body must be a JSON object");
        return NULL;
    }
    return b;
}

/* --- admin --------------------------------------------------------------------- */

/* Makes cfg_obj the group's config (created if new): the one path of PUT
 * and PATCH. */
static void put_config(eb_api *api, eb_http_req *req, const eb_str *gname, const eb_json *cfg_obj)
{
    eb_group_cfg cfg;
    eb_field_error fe;
    if (eb_group_cfg_parse(cfg_obj, &cfg, &fe) != 0) {
        eb__api_bad_field(req, fe.field, fe.message);
        return;
    }
    char name[EB_GROUP_MAX_NAME + 1];
    memcpy(name, gname->ptr, gname->len);
    name[gname->len] = '\0';
    eb_group_info in;
    bool old = eb_bus_group_info(api->bus, name, gname->len, &in) == 0;
    if (old) { /* where a group started is history: an update keeps it */
        cfg.start = in.cfg->start;
        cfg.start_us = in.cfg->start_us;
    }
    if (cfg.push && eb_push_cfg_resolve(cfg.push, old ? in.cfg->push : NULL, eb__api_now_us(),
                                        &fe) != 0) { /* the bus settles it again, the same */
        eb_group_cfg_free(&cfg);
        eb__api_bad_field(req, fe.field, fe.message);
        return;
    }
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, name);
    eb_jw_key(&w, "created");
    eb_jw_bool(&w, !old);
    eb_jw_key(&w, "config");
    eb_group_cfg_write(&w, &cfg);
    eb_jw_obj_close(&w);
    deferred *d = eb__api_defer(req);
    bool created;
    int rc = eb_bus_group_put(api->bus, name, &cfg, &created, eb__api_on_durable_answer, d);
    eb_group_cfg_free(&cfg); /* empty unless the put failed */
    eb__api_change_made(api, req, d, rc, old ? 200 : 201);
}

static bool group_name_ok(eb_http_req *req, const eb_str *name)
{
    if (name_ok(name))
        return true;
    eb__api_bad_field(req, "/group", "group names are 1 to 128 characters of "
                      "A-Z a-z 0-9 . _ -, and not \".\" or \"..\"");
    return false;
}

void eb__api_group_put(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!group_name_ok(req, &p->v[0]))
        return;
    const eb_json *b = eb__api_body_object(api, req, false);
    if (b)
        put_config(api, req, &p->v[0], b);
}

/* PATCH: a JSON merge patch (RFC 7396) on the group's config as GET shows
 * it; the result is checked and made durable as a PUT of it would be. */
void eb__api_group_patch(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    if (!group_name_ok(req, &p->v[0]) || !find_group(api, req, p))
        return;
    const eb_json *patch = eb__api_body_object(api, req, false);
    if (!patch)
        return;
    eb_group_info in;
    if (eb_bus_group_info(api->bus, p->v[0].ptr, p->v[0].len, &in) != 0) {
        eb__api_error(req, 500, "internal", "the group went away", NULL);
        return;
    }
    eb_buf cur = EB_BUF_INIT, merged = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &cur);
    eb_group_cfg_write(&w, in.cfg);
    eb_json_doc *doc = eb_json_doc_new();
    int rc = eb_json_parse(doc, cur.data, cur.len, NULL, NULL);
    if (rc == 0) {
        eb_jw_init(&w, &merged);
        eb_json_merge_patch(&w, eb_json_root(doc), patch); /* patch lives in api->doc */
        rc = eb_json_parse(doc, merged.data, merged.len, NULL, NULL);
    }
    if (rc == 0)
        put_config(api, req, &p->v[0], eb_json_root(doc));
    else
        eb__api_error(req, 500, "internal", eb_strerror(rc), NULL);
    eb_json_doc_free(doc);
    eb_buf_free(&cur);
    eb_buf_free(&merged);
}

void eb__api_group_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb__api_render_groups(api);
    eb__api_reply(api, req, 200);
}

void eb__api_group_get(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    eb_group_info in;
    if (!find_group(api, req, p))
        return;
    eb_bus_group_info(api->bus, p->v[0].ptr, p->v[0].len, &in); /* it exists: 0 */
    eb__api_render_group(api, &in);
    eb__api_reply(api, req, 200);
}

/* For a change of the group named by the path: its name into name[] and
 * the cb arg, or NULL (answered: no such group). */
static deferred *begin_change(eb_api *api, eb_http_req *req, const eb_api_params *p,
                              char name[EB_GROUP_MAX_NAME + 1])
{
    if (!find_group(api, req, p))
        return NULL;
    memcpy(name, p->v[0].ptr, p->v[0].len);
    name[p->v[0].len] = '\0';
    return eb__api_defer(req);
}

void eb__api_group_delete(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    char name[EB_GROUP_MAX_NAME + 1];
    deferred *d = begin_change(api, req, p, name);
    if (!d)
        return;
    int rc = eb_bus_group_delete(api->bus, name, eb__api_on_durable_answer, d);
    eb_buf_reset(&api->out);
    eb__api_change_made(api, req, d, rc, 204);
}

static void pause_resume(eb_api *api, eb_http_req *req, const eb_api_params *p, bool paused)
{
    char name[EB_GROUP_MAX_NAME + 1];
    deferred *d = begin_change(api, req, p, name);
    if (!d)
        return;
    int rc = eb_bus_group_pause(api->bus, name, paused, eb__api_on_durable_answer, d);
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, name);
    eb_jw_key(&w, "paused");
    eb_jw_bool(&w, paused);
    eb_jw_obj_close(&w);
    eb__api_change_made(api, req, d, rc, 200);
}

void eb__api_group_pause(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    pause_resume(api, req, p, true);
}

void eb__api_group_resume(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    pause_resume(api, req, p, false);
}
