/* push_cfg.c - the "push" member of a group's config (webhook delivery,
 * src/push): parsing with errors naming the field, the masked view of the
 * secret, secret rotation, and writing it back out. Pure: no I/O. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bus/group_types.h"
#include "eventbus/err.h"
#include "util/base64.h"

#define PREFIX "whsec_"
#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */


void eb_push_secret_mask(const char *secret, char out[32])
{
    size_t n = secret ? strlen(secret) : 0;
    const char *tail = n > EB_PUSH_MASK_TAIL ? secret + n - EB_PUSH_MASK_TAIL : "";
    snprintf(out, 32, PREFIX ELLIPSIS "%s", tail);
}

static bool is_masked(const char *s, size_t n)
{
    size_t head = strlen(PREFIX ELLIPSIS);
    return n == head + EB_PUSH_MASK_TAIL && !memcmp(s, PREFIX ELLIPSIS, head);
}

int eb_push_secret_key(const char *secret, eb_buf *out)
{
    size_t n = strlen(secret), pl = strlen(PREFIX);
    if (n <= pl || memcmp(secret, PREFIX, pl) != 0)
        return EB_EINVAL;
    eb_buf_reset(out);
    if (eb_base64_decode(out, secret + pl, n - pl) != 0 || out->len < 24 || out->len > 64)
        return EB_EINVAL;
    return 0;
}

static int parse_secret(const eb_json *v, eb_push_cfg *p, eb_field_error *err)
{
    static const char msg[] = "must be \"whsec_\" and the base64 of 24 to 64 random bytes "
                              "(Standard Webhooks), or the masked text the group's view shows "
                              "(keeps the current secret)";
    if (!eb_json_is(v, EB_JSON_STRING) || v->len > 200 || memchr(v->str, '\0', v->len))
        return eb__cfg_err(err, "/push/secret", msg);
    p->masked = is_masked(v->str, v->len);
    p->secret = strndup(v->str, v->len);
    if (!p->secret)
        return eb__cfg_err(err, "/push/secret", "out of memory");
    if (!p->masked) {
        eb_buf k = EB_BUF_INIT;
        int rc = eb_push_secret_key(p->secret, &k);
        eb_buf_free(&k);
        if (rc)
            return eb__cfg_err(err, "/push/secret", msg);
    }
    return 0;
}

/* A host: a name or IPv4 address (letters, digits, '-', '.', '_'), or an
 * IPv6 address in brackets; then an optional :port (1-65535). */
static bool authority_ok(const char *a, size_t n)
{
    const char *at = memchr(a, '@', n);
    if (at) /* userinfo: kept as given (libcurl sends it as basic auth) */
        n -= (size_t)(at + 1 - a), a = at + 1;
    size_t i = 0;
    if (n && a[0] == '[') {
        for (i = 1; i < n && a[i] != ']'; i++)
            if (!isxdigit((unsigned char)a[i]) && a[i] != ':' && a[i] != '.')
                return false;
        if (i == n || i < 3)
            return false;
        i++;
    } else {
        for (; i < n && a[i] != ':'; i++)
            if (!isalnum((unsigned char)a[i]) && a[i] != '-' && a[i] != '.' && a[i] != '_')
                return false;
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (a[i] != ':' || i + 1 == n || n - i - 1 > 5)
        return false;
    unsigned port = 0;
    for (i++; i < n; i++) {
        if (!isdigit((unsigned char)a[i]))
            return false;
        port = port * 10 + (unsigned)(a[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* http:// or https://, a host (authority_ok), no whitespace or control
 * characters: what libcurl parses (test_push.c checks each against it). */
static int parse_url(const eb_json *v, eb_push_cfg *p, eb_field_error *err)
{
    static const char msg[] = "must be an http:// or https:// URL with a host and an optional "
                              "port 1-65535 (at most 2048 characters, no spaces)";
    if (!eb_json_is(v, EB_JSON_STRING) || v->len > EB_PUSH_MAX_URL)
        return eb__cfg_err(err, "/push/url", msg);
    size_t skip = 0;
    if (v->len > 8 && !strncmp(v->str, "https://", 8))
        skip = 8;
    else if (v->len > 7 && !strncmp(v->str, "http://", 7))
        skip = 7;
    if (!skip)
        return eb__cfg_err(err, "/push/url", msg);
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->str[i];
        if (c <= 0x20 || c == 0x7f)
            return eb__cfg_err(err, "/push/url", msg);
    }
    size_t end = skip;
    while (end < v->len && !strchr("/?#", v->str[end]))
        end++;
    if (!authority_ok(v->str + skip, end - skip))
        return eb__cfg_err(err, "/push/url", msg);
    if (!(p->url = strndup(v->str, v->len)))
        return eb__cfg_err(err, "/push/url", "out of memory");
    return 0;
}

/* Header names we set ourselves (or HTTP owns): a config may not give them. */
static bool reserved(const char *k, size_t n)
{
    static const char *const names[] = {"content-type", "content-length", "host",
                                        "transfer-encoding", "connection", "expect",
                                        "user-agent", "te", "upgrade", "keep-alive"};
    if (n >= 8 && !strncasecmp(k, "webhook-", 8))
        return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !strncasecmp(names[i], k, n))
            return true;
    return false;
}

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int parse_headers(const eb_json *v, eb_push_cfg *p, eb_field_error *err)
{
    if (!eb_json_is(v, EB_JSON_OBJECT) || v->len > EB_PUSH_MAX_HEADERS)
        return eb__cfg_err(err, "/push/headers", "must be an object of at most 32 header names to "
                    "string values");
    for (const eb_json *m = v->child; m; m = m->next) {
        char f[64];
        snprintf(f, sizeof f, "/push/headers/%.40s", m->key);
        bool ok = m->key_len > 0 && m->key_len < 128;
        for (size_t i = 0; ok && i < m->key_len; i++)
            ok = token_char((unsigned char)m->key[i]);
        if (!ok)
            return eb__cfg_err(err, f, "not a valid header name");
        if (reserved(m->key, m->key_len))
            return eb__cfg_err(err, f, "set by eventbus itself (webhook-*, content-type, host, "
                        "content-length and the connection's own headers)");
        if (!eb_json_is(m, EB_JSON_STRING) || m->key_len + 2 + m->len > EB_PUSH_MAX_HEADER)
            return eb__cfg_err(err, f, "must be a string (name and value at most 1024 bytes)");
        for (size_t i = 0; i < m->len; i++) {
            unsigned char c = (unsigned char)m->str[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return eb__cfg_err(err, f, "control characters are not allowed in a header value");
        }
        char *h = malloc(m->key_len + 2 + m->len + 1);
        if (!h)
            return eb__cfg_err(err, f, "out of memory");
        snprintf(h, m->key_len + 2 + m->len + 1, "%.*s: %.*s", (int)m->key_len, m->key,
                 (int)m->len, m->str);
        p->headers[p->nheaders++] = h;
    }
    return 0;
}

static int parse_member(const eb_json *m, eb_push_cfg *p, eb_field_error *err)
{
    if (!strcmp(m->key, "url"))
        return p->url ? eb__cfg_err(err, "/push/url", "given twice") : parse_url(m, p, err);
    if (!strcmp(m->key, "secret"))
        return p->secret ? eb__cfg_err(err, "/push/secret", "given twice")
                         : parse_secret(m, p, err);
    if (!strcmp(m->key, "headers"))
        return p->nheaders ? eb__cfg_err(err, "/push/headers", "given twice")
                           : parse_headers(m, p, err);
    if (!strcmp(m->key, "timeout_ms"))
        return eb__cfg_u32(m, "/push/timeout_ms", 100, 600000, &p->timeout_ms, err);
    if (!strcmp(m->key, "max_in_flight"))
        return eb__cfg_u32(m, "/push/max_in_flight", 1, 1000, &p->max_in_flight, err);
    if (!strcmp(m->key, "batch"))
        return eb__cfg_u32(m, "/push/batch", 1, EB_PUSH_MAX_BATCH, &p->batch, err);
    if (!strcmp(m->key, "circuit_failures"))
        return eb__cfg_u32(m, "/push/circuit_failures", 1, 1000, &p->circuit_failures, err);
    if (!strcmp(m->key, "rotation_grace_ms"))
        return eb__cfg_u32(m, "/push/rotation_grace_ms", 0, 2592000000u, &p->rotation_grace_ms,
                       err);
    if (!strcmp(m->key, "format")) {
        if (eb_json_is(m, EB_JSON_STRING) && !strcmp(m->str, "event"))
            p->format = EB_PUSH_EVENT;
        else if (eb_json_is(m, EB_JSON_STRING) && !strcmp(m->str, "cloudevents"))
            p->format = EB_PUSH_CLOUDEVENTS;
        else
            return eb__cfg_err(err, "/push/format", "must be \"event\" or \"cloudevents\"");
        return 0;
    }
    /* read-only members of the view (a PATCH merges onto it): ignored */
    if (!strcmp(m->key, "previous_secret") || !strcmp(m->key, "previous_secret_until"))
        return 0;
    char f[72], msg[256];
    snprintf(f, sizeof f, "/push/%.60s", m->key);
    snprintf(msg, sizeof msg, "unknown field \"%.60s\" (allowed: url, secret, headers, "
             "timeout_ms, max_in_flight, batch, format, circuit_failures, rotation_grace_ms)",
             m->key);
    return eb__cfg_err(err, f, msg);
}

int eb_push_cfg_parse(const eb_json *v, eb_push_cfg **out, eb_field_error *err)
{
    *out = NULL;
    if (v && v->type == EB_JSON_NULL)
        return 0; /* "push": null: a pulled group (a merge patch removes it so) */
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return eb__cfg_err(err, "/push", "must be an object {url, secret, headers, timeout_ms, "
                    "max_in_flight, batch, format}");
    eb_push_cfg *p = calloc(1, sizeof *p);
    if (!p)
        return eb__cfg_err(err, "/push", "out of memory");
    *p = (eb_push_cfg){.timeout_ms = 10000, .max_in_flight = 100, .batch = 1,
                       .circuit_failures = 5, .rotation_grace_ms = 86400000};
    int rc = 0;
    for (const eb_json *m = v->child; m && !rc; m = m->next)
        rc = parse_member(m, p, err);
    if (!rc && !p->url)
        rc = eb__cfg_err(err, "/push/url", "required: the URL events are POSTed to");
    if (rc) {
        eb_push_cfg_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void eb_push_cfg_free(eb_push_cfg *p)
{
    if (!p)
        return;
    free(p->url);
    free(p->secret);
    free(p->prev_secret);
    for (size_t i = 0; i < p->nheaders; i++)
        free(p->headers[i]);
    free(p);
}

int eb_push_cfg_resolve(eb_push_cfg *nw, const eb_push_cfg *old, uint64_t now_us,
                        eb_field_error *err)
{
    const char *cur = old ? old->secret : NULL;
    if (nw->masked) {
        char m[32];
        eb_push_secret_mask(cur, m);
        if (!cur || strcmp(m, nw->secret) != 0)
            return eb__cfg_err(err, "/push/secret", "the masked text keeps the group's current "
                        "secret, and it is not this group's: give the full secret");
    }
    if (!nw->secret && !cur)
        return eb__cfg_err(err, "/push/secret", "required: \"whsec_\" and the base64 of 24 to 64 "
                    "random bytes (Standard Webhooks)");
    bool keep = nw->masked || !nw->secret || strcmp(nw->secret, cur ? cur : "") == 0;
    free(nw->prev_secret);
    nw->prev_secret = NULL;
    nw->prev_until_us = 0;
    if (keep) {
        free(nw->secret);
        nw->secret = strdup(cur);
        if (old->prev_secret && old->prev_until_us > now_us) {
            nw->prev_secret = strdup(old->prev_secret);
            nw->prev_until_us = old->prev_until_us;
        }
    } else if (cur && nw->rotation_grace_ms) {
        nw->prev_secret = strdup(cur);
        nw->prev_until_us = now_us + (uint64_t)nw->rotation_grace_ms * 1000u;
    }
    nw->masked = false;
    if (!nw->secret || (old && old->prev_secret && nw->prev_until_us && !nw->prev_secret))
        return eb__cfg_err(err, "/push/secret", "out of memory");
    return 0;
}

void eb_push_cfg_write(eb_jw *w, const eb_push_cfg *p)
{
    char m[32];
    eb_jw_obj_open(w);
    eb_jw_key(w, "url");
    eb_jw_str(w, p->url);
    if (p->secret) {
        eb_push_secret_mask(p->secret, m);
        eb_jw_key(w, "secret");
        eb_jw_str(w, p->masked ? p->secret : m);
    }
    if (p->prev_secret) {
        eb_push_secret_mask(p->prev_secret, m);
        eb_jw_key(w, "previous_secret");
        eb_jw_str(w, m);
        char t[32];
        eb_time_format(p->prev_until_us, t);
        eb_jw_key(w, "previous_secret_until");
        eb_jw_str(w, t);
    }
    eb_jw_key(w, "headers");
    eb_jw_obj_open(w);
    for (size_t i = 0; i < p->nheaders; i++) {
        const char *h = p->headers[i], *colon = strchr(h, ':');
        eb_jw_keyn(w, h, (size_t)(colon - h));
        eb_jw_str(w, colon + 2);
    }
    eb_jw_obj_close(w);
    eb_jw_key(w, "timeout_ms");
    eb_jw_uint(w, p->timeout_ms);
    eb_jw_key(w, "max_in_flight");
    eb_jw_uint(w, p->max_in_flight);
    eb_jw_key(w, "batch");
    eb_jw_uint(w, p->batch);
    eb_jw_key(w, "format");
    eb_jw_str(w, p->format == EB_PUSH_CLOUDEVENTS ? "cloudevents" : "event");
    eb_jw_key(w, "circuit_failures");
    eb_jw_uint(w, p->circuit_failures);
    eb_jw_key(w, "rotation_grace_ms");
    eb_jw_uint(w, p->rotation_grace_ms);
    eb_jw_obj_close(w);
}
