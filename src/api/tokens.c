/* tokens.c - /v1/tokens (scope admin): create a token (its secret is in
 * that answer only), list tokens (never a secret), revoke one; and
 * /v1/tokens/self (any valid token): what the caller's own token may do. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "eventbus/err.h"
#include "util/duration.h"
#include "util/xmalloc.h"

static bool name_ok(const char *s, size_t n)
{
    if (!n || n > EB_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* The members of a token's description (an object left open). */
static void write_token(eb_jw *w, const eb_token *t, uint64_t now)
{
    eb_jw_key(w, "name");
    eb_jw_str(w, t->name);
    eb_jw_key(w, "scopes");
    eb_jw_arr_open(w);
    for (size_t i = 0; i < t->nscopes; i++)
        eb_jw_str(w, t->scopes[i]);
    eb_jw_arr_close(w);
    eb_jw_key(w, "created");
    eb_jw_uint(w, t->created_us / 1000u);
    eb_jw_key(w, "expires");
    if (t->expires_us)
        eb_jw_uint(w, t->expires_us / 1000u);
    else
        eb_jw_null(w);
    eb_jw_key(w, "expired");
    eb_jw_bool(w, t->expires_us && t->expires_us <= now);
}

/* A create waiting for durability: its answer is ready. */
typedef struct pending_answer {
    eb_http_req *req;
    int          status;
    size_t       len;
    char         body[];
} pending_answer;

static void on_durable(void *arg, int status)
{
    pending_answer *a = arg;
    if (status)
        eb__api_write_failed(a->req, status);
    else if (a->status == 204)
        eb__api_respond(a->req, 204, NULL, NULL, 0);
    else
        eb__api_respond(a->req, a->status, "application/json", a->body, a->len);
    free(a);
}

static pending_answer *answer_later(eb_http_req *req, int status, const eb_buf *b)
{
    size_t n = b ? b->len : 0;
    pending_answer *a = eb_xmalloc(sizeof *a + n + 1);
    a->req = req;
    a->status = status;
    a->len = n;
    if (n)
        memcpy(a->body, b->data, n);
    return a;
}

static void failed(eb_http_req *req, int rc)
{
    if (rc == EB_EFULL)
        eb__api_error(req, 409, "too_many_tokens", "the server keeps at most 1000 tokens", NULL);
    else if (rc == EB_ENOTFOUND)
        eb__api_error(req, 404, "not_found", "no such token", NULL);
    else
        eb__api_write_failed(req, rc); /* 507 storage_full, 503 shutting_down or 500 */
}

/* Fills t (scopes borrowed from arr) and a fresh secret. */
static int make_token(eb_token *t, const char *name, size_t nl, const char *const *scopes,
                      size_t n, char secret[EB_API_SECRET_LEN + 1])
{
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, nl);
    t->scopes = (char **)scopes;
    t->nscopes = n;
    t->created_us = eb__api_now_us();
    int rc = eb__api_new_secret(secret);
    if (rc == 0)
        eb__api_hash_secret(secret, EB_API_SECRET_LEN, t->hash);
    return rc;
}

int eb_api_token_create(eb_api *api, const char *name, const char *const *scopes, size_t n,
                        char secret[EB_API_SECRET_LEN + 1], eb_bus_done_cb cb, void *arg)
{
    if (!name_ok(name, strlen(name)) || n > EB_TOKEN_MAX_SCOPES)
        return EB_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!eb__api_scope_valid(scopes[i], strlen(scopes[i])))
            return EB_EINVAL;
    eb_token t;
    int rc = make_token(&t, name, strlen(name), scopes, n, secret);
    return rc ? rc : eb_bus_token_put(api->bus, &t, cb, arg);
}

void eb__api_token_post(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    const eb_json *body = eb__api_body(api, req, false);
    if (!body)
        return;
    if (!eb_json_is(body, EB_JSON_OBJECT)) {
        eb__api_bad_field(req, "", "the body must be an object {\"name\",\"scopes\"}");
        return;
    }
    const eb_json *name = eb_json_get(body, "name"), *sc = eb_json_get(body, "scopes"),
                  *exp = eb_json_get(body, "expires_in");
    for (const eb_json *k = body->child; k; k = k->next)
        if (strcmp(k->key, "name") && strcmp(k->key, "scopes") && strcmp(k->key, "expires_in")) {
            char f[80];
            snprintf(f, sizeof f, "/%.60s", k->key);
            eb__api_bad_field(req, f, "unknown field (allowed: name, scopes, expires_in)");
            return;
        }
    if (!eb_json_is(name, EB_JSON_STRING) || !name_ok(name->str, name->len)) {
        eb__api_bad_field(req, "/name", "must be 1 to 64 characters of [A-Za-z0-9._-]");
        return;
    }
    if (eb_bus_token_get(api->bus, name->str, name->len)) {
        eb__api_error(req, 409, "conflict", "a token of that name exists (revoke it first)",
                      NULL);
        return;
    }
    const char *scopes[EB_TOKEN_MAX_SCOPES];
    size_t n = 0;
    if (!eb_json_is(sc, EB_JSON_ARRAY) || !sc->child) {
        eb__api_bad_field(req, "/scopes", "must be a non-empty array of scopes");
        return;
    }
    for (const eb_json *e = sc->child; e; e = e->next) {
        if (n == EB_TOKEN_MAX_SCOPES) {
            eb__api_bad_field(req, "/scopes", "at most 32 scopes");
            return;
        }
        if (!eb_json_is(e, EB_JSON_STRING) || !eb__api_scope_valid(e->str, e->len)) {
            eb__api_bad_field(req, "/scopes",
                              "each must be publish:<type pattern>, consume:<group pattern>, "
                              "read, schemas:write, groups:write, metrics or admin");
            return;
        }
        scopes[n++] = e->str;
    }
    uint64_t ttl_us = 0;
    if (exp && (!eb_json_is(exp, EB_JSON_STRING) ||
                eb_duration_parse(exp->str, exp->len, 0, &ttl_us) || !ttl_us)) {
        eb__api_bad_field(req, "/expires_in", "must be a duration like \"30d\" or \"12h\"");
        return;
    }
    char secret[EB_API_SECRET_LEN + 1];
    eb_token t;
    int rc = make_token(&t, name->str, name->len, scopes, n, secret);
    if (ttl_us)
        t.expires_us = t.created_us + ttl_us;
    eb_buf *o = &api->out;
    eb_buf_reset(o);
    eb_jw w;
    eb_jw_init(&w, o);
    eb_jw_obj_open(&w);
    write_token(&w, &t, t.created_us);
    eb_jw_key(&w, "token");
    eb_jw_str(&w, secret);
    eb_jw_obj_close(&w);
    pending_answer *a = rc ? NULL : answer_later(req, 201, o);
    if (!a) {
        failed(req, rc ? rc : EB_ENOMEM);
        return;
    }
    if ((rc = eb_bus_token_put(api->bus, &t, on_durable, a)) != 0) {
        free(a);
        failed(req, rc);
    }
    OPENSSL_cleanse(secret, sizeof secret);
}

static void list_one(void *arg, const eb_token *t)
{
    eb_jw *w = arg;
    eb_jw_obj_open(w);
    write_token(w, t, eb__api_now_us());
    eb_jw_obj_close(w);
}

void eb__api_token_list(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_buf *o = &api->out;
    eb_buf_reset(o);
    eb_jw w;
    eb_jw_init(&w, o);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "tokens");
    eb_jw_arr_open(&w);
    eb_bus_tokens_each(api->bus, list_one, &w);
    eb_jw_arr_close(&w);
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}

void eb__api_token_delete(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    pending_answer *a = answer_later(req, 204, NULL);
    if (!a) {
        failed(req, EB_ENOMEM);
        return;
    }
    int rc = eb_bus_token_delete(api->bus, p->v[0].ptr, p->v[0].len, on_durable, a);
    if (rc) {
        free(a);
        failed(req, rc);
    }
}

/* 200 {"auth":"token", name, scopes, created, expires, expired} for the
 * caller's token (a bearer token or the one a client certificate's CN
 * names), or {"auth":"none"} when the server checks no token: everything
 * is allowed. Needs no scope beyond a valid token (EB_SCOPE_TOKEN). */
void eb__api_token_self(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)p;
    eb_jw w;
    eb__api_begin(api, &w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "auth");
    eb_jw_str(&w, api->who ? "token" : "none");
    if (api->who)
        write_token(&w, api->who, eb__api_now_us());
    eb_jw_obj_close(&w);
    eb__api_reply(api, req, 200);
}
