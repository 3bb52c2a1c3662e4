/* auth.c - who may call what: bearer tokens, scopes, the per-address
 * backoff after failed authentications, and the audit log of writes.
 *
 * The dispatcher calls eb__api_authorize() once per request, after routing
 * and before the route's handler, with the route's scope from the route
 * table (api.c). Secrets never reach the bus: a presented secret is hashed
 * (SHA-256) and the bus is asked for the token with that hash (compared in
 * constant time). A token is "ebt_" + 43 base64url characters (256 random
 * bits from OpenSSL's CSPRNG), so leaked tokens are easy to find. */
#include <arpa/inet.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "bus/group_types.h"
#include "eventbus/err.h"
#include "util/logger.h"
#include "util/xmalloc.h"

/* --- the Authorization header ---------------------------------------------- */

static bool token68_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

int eb__api_bearer(const char *v, size_t n, eb_str *secret)
{
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (n - i < 7 || strncasecmp(v + i, "bearer", 6) != 0 || (v[i + 6] != ' ' && v[i + 6] != '\t'))
        return EB_EINVAL;
    i += 6;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    size_t s = i;
    while (i < n && token68_char((unsigned char)v[i]))
        i++;
    size_t e = i;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (e == s || i != n || e - s > EB_API_SECRET_MAX)
        return EB_EINVAL;
    *secret = (eb_str){v + s, e - s};
    return 0;
}

/* --- scopes ---------------------------------------------------------------- */

static const char *const scope_names[] = {
    [EB_SCOPE_UNSET] = "admin", [EB_SCOPE_OPEN] = "", [EB_SCOPE_PUBLISH] = "publish", [EB_SCOPE_CONSUME] = "consume",
    [EB_SCOPE_READ] = "read", [EB_SCOPE_SCHEMAS_WRITE] = "schemas:write",
    [EB_SCOPE_GROUPS_WRITE] = "groups:write", [EB_SCOPE_METRICS] = "metrics",
    [EB_SCOPE_ADMIN] = "admin", [EB_SCOPE_TOKEN] = ""};

const char *eb__api_scope_name(eb_scope s)
{
    return scope_names[s];
}

/* A pattern of publish:/consume: ("a.b", "a.*", "*"; group names may use
 * any of [A-Za-z0-9._-]). */
static bool pattern_ok(const char *p, size_t n)
{
    if (!n || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!token68_char(c) && c != '*')
            return false;
        if (c == '*' && (i != n - 1 || (i > 0 && p[i - 1] != '.')))
            return false;
    }
    return true;
}

bool eb__api_scope_valid(const char *s, size_t n)
{
    for (int k = EB_SCOPE_READ; k <= EB_SCOPE_ADMIN; k++)
        if (n == strlen(scope_names[k]) && !memcmp(s, scope_names[k], n))
            return true;
    if (n > 8 && !memcmp(s, "publish:", 8))
        return pattern_ok(s + 8, n - 8);
    if (n > 8 && !memcmp(s, "consume:", 8))
        return pattern_ok(s + 8, n - 8);
    return false;
}

/* True if t carries scope `want`; for publish and consume, one whose
 * pattern matches subject (any pattern when subject.ptr is NULL). */
bool eb__api_token_has(const eb_token *t, eb_scope want, eb_str subject)
{
    const char *name = scope_names[want];
    size_t nl = strlen(name);
    bool pattern = want == EB_SCOPE_PUBLISH || want == EB_SCOPE_CONSUME;
    for (size_t i = 0; i < t->nscopes; i++) {
        const char *s = t->scopes[i];
        if (!pattern) {
            if (!strcmp(s, name))
                return true;
            continue;
        }
        if (strncmp(s, name, nl) != 0 || s[nl] != ':')
            continue;
        if (!subject.ptr || eb_group_type_match(s + nl + 1, subject.ptr, subject.len))
            return true;
    }
    return false;
}

/* --- backoff per address ----------------------------------------------------- */

static uint32_t addr_hash(const uint8_t *a)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h;
}

/* The slot of the address (direct-mapped: a newcomer takes over a slot). */
static eb_auth_slot *slot_of(eb_api *api, const uint8_t *a, bool claim)
{
    eb_auth_slot *s = &api->auth.slots[addr_hash(a) % EB_AUTH_SLOTS];
    if (memcmp(s->addr, a, 16) == 0 && s->used)
        return s;
    if (!claim)
        return NULL;
    memset(s, 0, sizeof *s);
    memcpy(s->addr, a, 16);
    s->used = true;
    return s;
}

static void peer_key(const eb_http_req *req, uint8_t out[16])
{
    struct sockaddr_storage ss;
    memset(out, 0, 16);
    if (eb_http_req_peer(req, &ss) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        out[10] = out[11] = 0xff; /* v4-mapped */
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

/* Seconds the address must still wait, 0 if none. */
static uint64_t blocked_for(eb_api *api, const uint8_t *a, uint64_t now)
{
    eb_auth_slot *s = slot_of(api, a, false);
    return s && s->until_us > now ? (s->until_us - now + 999999u) / 1000000u : 0;
}

static void note_failure(eb_api *api, const uint8_t *a, uint64_t now)
{
    api->auth.failures++;
    uint32_t limit = api->opts.auth_fail_limit;
    if (!limit)
        return;
    eb_auth_slot *s = slot_of(api, a, true);
    if (++s->fails < limit)
        return;
    uint32_t k = s->fails - limit; /* 1 s, 2 s, 4 s, ... up to 60 s */
    uint64_t wait = k >= 6 ? 60 : (1u << k);
    s->until_us = now + wait * 1000000u;
}

/* --- the check ----------------------------------------------------------------- */

static void unauthorized(eb_http_req *req, const char *msg)
{
    eb_http_set_header(req, "WWW-Authenticate", "Bearer realm=\"eventbus\"");
    eb__api_error(req, 401, "unauthorized", msg, NULL);
}

void eb__api_forbidden(eb_http_req *req, eb_scope want, eb_str subject)
{
    char scope[EB_TOKEN_SCOPE_MAX + 16], msg[EB_TOKEN_SCOPE_MAX + 80];
    if (want == EB_SCOPE_PUBLISH || want == EB_SCOPE_CONSUME)
        snprintf(scope, sizeof scope, "%s:%.*s", scope_names[want],
                 subject.len > EB_TOKEN_SCOPE_MAX ? EB_TOKEN_SCOPE_MAX : (int)subject.len,
                 subject.ptr ? subject.ptr : "");
    else
        snprintf(scope, sizeof scope, "%s", scope_names[want]);
    snprintf(msg, sizeof msg, "this token lacks the scope %s", scope);
    eb_buf d = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &d);
    eb_jw_arr_open(&w);
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "scope");
    eb_jw_str(&w, scope);
    eb_jw_obj_close(&w);
    eb_jw_arr_close(&w);
    eb__api_error(req, 403, "forbidden", msg, eb_buf_failed(&d) ? NULL : d.data);
    eb_buf_free(&d);
}

void eb__api_hash_secret(const char *s, size_t n, uint8_t out[EB_TOKEN_HASH_LEN])
{
    SHA256((const unsigned char *)s, n, out);
}

bool eb__api_authorize(eb_api *api, eb_http_req *req, eb_scope want, eb_str subject)
{
    api->who = NULL;
    if (want == EB_SCOPE_UNSET)
        want = EB_SCOPE_ADMIN; /* fail closed */
    if (api->opts.auth == EB_AUTH_NONE || want == EB_SCOPE_OPEN ||
        (want == EB_SCOPE_METRICS && api->opts.metrics_public))
        return true;
    uint64_t now = eb__api_now_us();
    uint8_t addr[16];
    peer_key(req, addr);
    uint64_t wait = blocked_for(api, addr, now);
    if (wait) {
        char ra[24];
        snprintf(ra, sizeof ra, "%llu", (unsigned long long)wait);
        api->auth.backoffs++;
        eb_http_set_header(req, "Retry-After", ra);
        eb__api_error(req, 429, "auth_backoff",
                      "too many failed authentications from this address; retry later", NULL);
        return false;
    }
    size_t n = 0;
    const char *h = eb_http_req_header(req, "authorization", &n);
    eb_str secret;
    char cn[EB_TOKEN_NAME_MAX + 1];
    uint8_t hash[EB_TOKEN_HASH_LEN];
    const eb_token *t = NULL;
    if (!h && eb_http_req_tls_cn(req, cn, sizeof cn)) {
        /* mutual TLS: the client certificate's CN names the token whose
         * scopes apply (its secret is not needed) */
        if (!(t = eb_bus_token_get(api->bus, cn, strlen(cn)))) {
            note_failure(api, addr, now);
            unauthorized(req, "the client certificate's CN names no token");
            return false;
        }
    } else if (!h) {
        unauthorized(req, "this endpoint needs a token: Authorization: Bearer <token>");
        return false;
    } else if (eb__api_bearer(h, n, &secret) == 0) {
        eb__api_hash_secret(secret.ptr, secret.len, hash);
        t = eb_bus_token_by_hash(api->bus, hash);
    }
    if (!t || (t->expires_us && t->expires_us <= now)) {
        note_failure(api, addr, now);
        unauthorized(req, !t ? "unknown or malformed token" : "the token has expired");
        return false;
    }
    eb_auth_slot *s = slot_of(api, addr, false);
    if (s)
        s->used = false; /* a success forgets the address's failures */
    api->who = t;
    eb_api_audit *a = req->app;
    if (a)
        snprintf(a->who, sizeof a->who, "%s", t->name);
    if (want != EB_SCOPE_PUBLISH && want != EB_SCOPE_TOKEN &&
        !eb__api_token_has(t, want, subject)) {
        eb__api_forbidden(req, want, subject);
        return false;
    }
    return true;
}

bool eb__api_may_publish(eb_api *api, eb_http_req *req, const eb_str *types, size_t n)
{
    if (!api->who)
        return true; /* auth none */
    for (size_t i = 0; i < n; i++)
        if (!eb__api_token_has(api->who, EB_SCOPE_PUBLISH, types[i])) {
            eb__api_forbidden(req, EB_SCOPE_PUBLISH, types[i]);
            return false;
        }
    return true;
}

/* --- secrets ---------------------------------------------------------------------- */

int eb__api_new_secret(char out[EB_API_SECRET_LEN + 1])
{
    static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[33];
    if (RAND_bytes(r, sizeof r) != 1)
        return EB_EIO;
    memcpy(out, "ebt_", 4);
    /* 43 characters of 6 bits: 258 bits drawn, 256 used in full. */
    for (size_t i = 0; i < 43; i++) {
        size_t bit = i * 6, byte = bit / 8, sh = bit % 8;
        unsigned v = ((unsigned)r[byte] << 8 | r[byte + 1]) >> (10 - sh);
        out[4 + i] = b64url[v & 63];
    }
    out[EB_API_SECRET_LEN] = '\0';
    return 0;
}

/* --- audit ------------------------------------------------------------------------ */

void eb__api_audit_begin(eb_api *api, eb_http_req *req, const char *method)
{
    eb_api_audit *a = eb_xmalloc(sizeof *a);
    (void)api;
    snprintf(a->who, sizeof a->who, "-");
    snprintf(a->route, sizeof a->route, "%s %.*s", method,
             req->path_len > 200 ? 200 : (int)req->path_len, req->path);
    req->app = a;
}

void eb__api_respond(eb_http_req *req, int status, const char *content_type, const char *body,
                     size_t len)
{
    eb_api_audit *a = req->app;
    if (a) {
        req->app = NULL;
        EB_INFO("audit: token=%s route=\"%s\" status=%d outcome=%s", a->who, a->route, status,
                status < 400 ? "ok" : "refused");
        free(a);
    }
    eb_http_respond(req, status, content_type, body, len);
}
