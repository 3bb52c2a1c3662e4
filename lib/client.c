/* client.c - libeventbus: the client handle, its URL list, the error detail
 * and the one request path every call goes through (eb__call), failing
 * over from server to server. */
#include "client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

#define DEFAULT_URL "http://127.0.0.1:8470"
#define DEFAULT_PORT "8470"

unsigned eb_version(const char **str)
{
#define EB__STR2(x) #x
#define EB__STR(x) EB__STR2(x)
    if (str)
        *str = EB__STR(EB_VERSION_MAJOR) "." EB__STR(EB_VERSION_MINOR) "." EB__STR(EB_VERSION_PATCH);
#undef EB__STR
#undef EB__STR2
    return EB_VERSION_HEX;
}

void eb_free(void *p)
{
    free(p);
}

/* --- the URL ---------------------------------------------------------------- */

typedef struct url_parts {
    char host[256];
    char port[8];
    char prefix[512];
    bool tls;           /* https:// */
} url_parts;

/* "http://host:port/prefix", "host:port", "[v6]:port", "host". */
static int parse_url(const char *url, url_parts *u)
{
    const char *s = url, *port_default = DEFAULT_PORT;
    u->tls = false;
    if (strncmp(s, "http://", 7) == 0) {
        s += 7;
        port_default = "80";
    } else if (strncmp(s, "https://", 8) == 0) {
        s += 8;
        port_default = "443";
        u->tls = true;
    } else if (strstr(s, "://")) {
        return EB_EUNSUPP;
    }
    const char *slash = strchr(s, '/');
    size_t hp_len = slash ? (size_t)(slash - s) : strlen(s);
    const char *host = s, *port = NULL;
    size_t host_len = hp_len;
    if (*s == '[') {
        const char *rb = memchr(s, ']', hp_len);
        if (!rb)
            return EB_EINVAL;
        host = s + 1;
        host_len = (size_t)(rb - host);
        if (rb + 1 < s + hp_len) {
            if (rb[1] != ':')
                return EB_EINVAL;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(s, ':', hp_len);
        if (colon) {
            host_len = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    size_t port_len = port ? (size_t)(s + hp_len - port) : 0;
    if (host_len == 0 || host_len >= sizeof u->host || (port && (port_len == 0 || port_len > 5)))
        return EB_EINVAL;
    for (size_t i = 0; i < port_len; i++)
        if (port[i] < '0' || port[i] > '9')
            return EB_EINVAL;
    memcpy(u->host, host, host_len);
    u->host[host_len] = '\0';
    if (port_len)
        snprintf(u->port, sizeof u->port, "%.*s", (int)port_len, port);
    else
        snprintf(u->port, sizeof u->port, "%s", port_default);
    const char *pre = slash ? slash : "";
    size_t pre_len = strlen(pre);
    while (pre_len && pre[pre_len - 1] == '/')
        pre_len--;
    if (pre_len >= sizeof u->prefix || memchr(pre, '?', pre_len))
        return EB_EINVAL;
    memcpy(u->prefix, pre, pre_len);
    u->prefix[pre_len] = '\0';
    return 0;
}

/* The form two spellings of one server's URL share: "scheme://host:port/prefix"
 * with the host in lower case and the port always written (the default's
 * too), IPv6 in brackets; malloc'd (NULL: out of memory). */
static char *url_key(const url_parts *u)
{
    char host[sizeof u->host];
    size_t i = 0;
    for (; u->host[i]; i++)
        host[i] = (char)(u->host[i] >= 'A' && u->host[i] <= 'Z' ? u->host[i] + 32 : u->host[i]);
    host[i] = '\0';
    size_t n = strlen(host) + strlen(u->port) + strlen(u->prefix) + 16;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s://%s%s%s:%s%s", u->tls ? "https" : "http",
                 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", u->port,
                 u->prefix);
    return k;
}

/* --- lifecycle ----------------------------------------------------------- */

static void set_ok(eb_client *c, int status)
{
    c->err = (eb_error){.code = 0, .http_status = status, .server_code = "", .message = "",
                        .details = "[]", .detail = c->detail_ptrs};
}

void eb__ok(eb_client *c)
{
    set_ok(c, 0);
}

/* One server of the list: its URL parsed, its connection prepared (token,
 * TLS) and counted in c->ntargets once it needs closing. */
static int target_add(eb_client *c, const char *url)
{
    url_parts u;
    int rc = parse_url(url, &u);
    if (rc)
        return rc;
    eb__target *t = &c->targets[c->ntargets];
    eb__http_init(&t->http, u.host, u.port, c->connect_timeout_ms);
    c->ntargets++;
    t->http.cancel[0] = c->cancel;
    if (*c->token && eb__http_set_token(&t->http, c->token) != 0)
        return EB_EINVAL;
    if (u.tls && (rc = eb__http_set_tls(&t->http, *c->cafile ? c->cafile : NULL)))
        return rc;
    size_t ul = strlen(t->http.hosthdr) + strlen(u.prefix) + 10;
    t->url = malloc(ul);
    t->prefix = strdup(u.prefix);
    t->key = url_key(&u);
    if (!t->url || !t->prefix || !t->key)
        return EB_ENOMEM;
    snprintf(t->url, ul, "%s://%s%s", u.tls ? "https" : "http", t->http.hosthdr, u.prefix);
    return 0;
}

/* The comma-separated URL list (spaces around a URL ignored), 1 to
 * EB__MAX_URLS of them. */
static int targets_new(eb_client *c, const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    if (n > EB__MAX_URLS)
        return EB_EINVAL;
    if (!(c->targets = calloc(n, sizeof *c->targets)))
        return EB_ENOMEM;
    for (const char *s = list;; s++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        char one[1024];
        if (len == 0 || len >= sizeof one)
            return EB_EINVAL;
        memcpy(one, s, len);
        one[len] = '\0';
        int rc = target_add(c, one);
        if (rc || !e)
            return rc;
        s = e;
    }
}

int eb_client_new(const eb_client_opts *opts, eb_client **out)
{
    eb_client_opts o;
    if (opts && *(const size_t *)opts < EB__SIZE_TO(eb_client_opts, cancel))
        return EB_EINVAL; /* no client yet to tell why */
    for (size_t i = sizeof o; opts && i < opts->size; i++)
        if (((const unsigned char *)opts)[i])
            return EB_EUNSUPP;
    memset(&o, 0, sizeof o);
    if (opts)
        memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    if (!o.url)
        o.url = getenv("EVENTBUS_URL");
    if (!o.url || !*o.url)
        o.url = DEFAULT_URL;
    if (!o.token)
        o.token = getenv("EVENTBUS_TOKEN");
    if (!o.cafile)
        o.cafile = getenv("EVENTBUS_CACERT");
    eb_client *c = calloc(1, sizeof *c);
    if (!c)
        return EB_ENOMEM;
    c->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : 5000;
    c->timeout_ms = o.timeout_ms ? o.timeout_ms : 30000;
    c->cancel = o.cancel;
    c->urls = strdup(o.url);
    c->token = strdup(o.token ? o.token : "");
    c->cafile = strdup(o.cafile ? o.cafile : "");
    int rc = !c->urls || !c->token || !c->cafile ? EB_ENOMEM : targets_new(c, o.url);
    if (rc) {
        eb_client_free(c);
        return rc;
    }
    eb_buf_init(&c->path);
    eb_buf_init(&c->full);
    eb_buf_init(&c->body);
    eb_buf_init(&c->answer);
    eb_buf_init(&c->err_text);
    set_ok(c, 0);
    *out = c;
    return 0;
}

void eb_client_free(eb_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ntargets; i++) {
        eb__http_close(&c->targets[i].http);
        free(c->targets[i].url);
        free(c->targets[i].prefix);
        free(c->targets[i].key);
    }
    free(c->targets);
    free(c->urls);
    free(c->token);
    free(c->cafile);
    eb_buf_free(&c->path);
    eb_buf_free(&c->full);
    eb_buf_free(&c->body);
    eb_buf_free(&c->answer);
    eb_buf_free(&c->err_text);
    eb_json_doc_free(c->doc);
    eb_json_doc_free(c->err_doc);
    free(c->details);
    free(c->detail_ptrs);
    free(c);
}

const char *eb_client_url(const eb_client *c)
{
    return c->targets[c->cur].url;
}

void eb__set_stop(eb_client *c, const volatile sig_atomic_t *stop)
{
    for (size_t i = 0; i < c->ntargets; i++)
        c->targets[i].http.cancel[1] = stop;
}

void eb__new_id(eb_client *c, char out[EB_ULID_LEN + 1])
{
    eb_ulid_next(&c->ids, eb_clock_wall_us(), out);
}

const eb_error *eb_client_error(const eb_client *c)
{
    return &c->err;
}

const char *eb_client_answer(const eb_client *c, size_t *len)
{
    if (len)
        *len = c->answer.len;
    return c->answer.data && c->answer.len ? c->answer.data : "";
}

/* --- errors ---------------------------------------------------------------- */

/* Stores the three strings of an error and points c->err at them. */
static void set_error(eb_client *c, int code, int status, const char *scode, size_t scode_len,
                      const char *msg, size_t msg_len, const char *details, size_t det_len)
{
    eb_buf *t = &c->err_text;
    eb_buf_reset(t);
    eb_buf_append(t, scode, scode_len);
    eb_buf_putc(t, '\0');
    eb_buf_append(t, msg, msg_len);
    eb_buf_putc(t, '\0');
    eb_buf_append(t, details, det_len);
    eb_buf_putc(t, '\0');
    c->err.code = code;
    c->err.http_status = status;
    c->err.ndetails = 0;
    c->err.detail = c->detail_ptrs;
    if (eb_buf_failed(t)) {
        c->err.server_code = "";
        c->err.message = "out of memory";
        c->err.details = "[]";
        return;
    }
    c->err.server_code = t->data;
    c->err.message = t->data + scode_len + 1;
    c->err.details = t->data + scode_len + 1 + msg_len + 1;
}

int eb__fail(eb_client *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(c, code, 0, "", 0, msg, strlen(msg), "[]", 2);
    return code;
}

int eb__bad_answer(eb_client *c, const char *what)
{
    int status = c->err.http_status;
    eb__fail(c, EB_EPROTO, "unexpected answer from the server: %s", what);
    c->err.http_status = status;
    return EB_EPROTO;
}

/* Fills err.detail from the details array (entries that are objects). The
 * client keeps the parse (err_doc) until the next error. */
static void parse_details(eb_client *c, const eb_json *det)
{
    if (!eb_json_is(det, EB_JSON_ARRAY) || !det->len)
        return;
    if (det->len > c->details_cap) {
        eb_error_detail *d = realloc(c->details, det->len * sizeof *d);
        if (d)
            c->details = d;
        const eb_error_detail **p = realloc(c->detail_ptrs, det->len * sizeof *p);
        if (p)
            c->detail_ptrs = p;
        if (!d || !p)
            return;
        c->details_cap = det->len;
    }
    size_t n = 0;
    for (const eb_json *e = det->child; e; e = e->next) {
        if (!eb_json_is(e, EB_JSON_OBJECT))
            continue;
        const eb_json *ix = eb_json_get(e, "index");
        const char *msg = eb__str(e, "message");
        c->details[n] = (eb_error_detail){
            .index = eb_json_is(ix, EB_JSON_NUMBER) && (ix->flags & EB_JSON_F_INT) ? ix->i64 : -1,
            .path = eb__str(e, "path"),
            .field = eb__str(e, "field"),
            .message = msg ? msg : ""};
        c->detail_ptrs[n] = &c->details[n];
        n++;
    }
    /* the strings live in c->doc; keep that parse as the error's own */
    eb_json_doc *keep = c->err_doc;
    c->err_doc = c->doc;
    c->doc = keep;
    c->err.ndetails = n;
    c->err.detail = c->detail_ptrs;
}

static int code_for(int status, const char *scode)
{
    switch (status) {
    case 400: return strcmp(scode, "malformed_json") == 0 ? EB_ESYNTAX : EB_EINVAL;
    case 401: return EB_EAUTH;
    case 403: return EB_EDENIED;
    case 404: return EB_ENOTFOUND;
    case 405: return EB_EINVAL;
    case 409: return EB_ECONFLICT;
    case 413: return EB_ETOOBIG;
    case 415: return EB_EINVAL;
    case 422: return EB_ESCHEMA;
    case 431: return EB_ETOOBIG;
    case 503: return EB_ECLOSED;
    default:  return EB_ESERVER;
    }
}

/* A non-2xx answer: {"error":{"code","message","details"}} when the server
 * sent one, else the status line says it all. */
static int server_error(eb_client *c, int status, const eb_json *root)
{
    const eb_json *e = eb_json_get(root, "error");
    const eb_json *code = eb_json_get(e, "code"), *msg = eb_json_get(e, "message"),
                  *det = eb_json_get(e, "details");
    const char *sc = eb_json_is(code, EB_JSON_STRING) ? code->str : "";
    int rc = code_for(status, sc);
    char fallback[64];
    snprintf(fallback, sizeof fallback, "the server answered HTTP %d", status);
    const char *m = eb_json_is(msg, EB_JSON_STRING) ? msg->str : fallback;
    const char *d = "[]";
    size_t dl = 2;
    if (det && (det->type == EB_JSON_ARRAY || det->type == EB_JSON_OBJECT)) {
        d = c->answer.data + det->src_off;
        dl = det->src_len;
    }
    set_error(c, rc, status, sc, strlen(sc), m, strlen(m), d, dl);
    parse_details(c, det);
    return rc;
}

/* --- requests ------------------------------------------------------------- */

static void path_escaped(eb_buf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch) || (ch && strchr(keep, ch))) {
            eb_buf_putc(b, (char)ch);
        } else {
            eb_buf_putc(b, '%');
            eb_buf_putc(b, hex[ch >> 4]);
            eb_buf_putc(b, hex[ch & 15]);
        }
    }
}

void eb__path(eb_client *c, const char *lit)
{
    eb_buf_reset(&c->path);
    eb_buf_puts(&c->path, lit);
}

void eb__path_seg(eb_client *c, const char *seg)
{
    path_escaped(&c->path, seg, "");
}

void eb__path_lit(eb_client *c, const char *lit)
{
    eb_buf_puts(&c->path, lit);
}

void eb__path_query(eb_client *c, const char *name, const char *value)
{
    eb_buf_putc(&c->path, strchr(c->path.data ? c->path.data : "", '?') ? '&' : '?');
    eb_buf_puts(&c->path, name);
    eb_buf_putc(&c->path, '=');
    path_escaped(&c->path, value, ":");
}

int eb__group_path(eb_client *c, const char *group, const char *tail)
{
    if (!group || !*group)
        return eb__fail(c, EB_EINVAL, "a group name is required");
    eb__path(c, "/v1/groups/");
    eb__path_seg(c, group);
    eb__path_lit(c, tail);
    return 0;
}

int eb__group_body(eb_client *c, const char *group, const char *tail, eb_jw *w)
{
    int rc = eb__group_path(c, group, tail);
    if (rc)
        return rc;
    eb_jw_obj_open(eb__body(c, w));
    return 0;
}

eb_jw *eb__body(eb_client *c, eb_jw *w)
{
    eb_buf_reset(&c->body);
    eb_jw_init(w, &c->body);
    return w;
}

/* --- failover ------------------------------------------------------------ *
 * A request goes to the server that answered last (or to the leader it
 * named, when that is one of the list: follow_leader), and moves on to the
 * next one of the list (round robin, each at most once per request) when
 * that one cannot be reached, its connection breaks or times out, or it
 * answers 503 (stopping, out of connections, storage refusing writes: the
 * request was not carried out). A request that may have reached the server
 * before the failure moves on only when it may be sent twice (resend): a
 * publish carries its events' ids (generated here when the caller gave
 * none), so the second copy is a duplicate the server drops; settling is
 * by delivery id; PUTs replace. When every server failed, the last
 * failure is the call's (a 503 answer included). */

/* After an answer from target t: when it names the leader (Eventbus-Leader, set by
 * a follower that relayed the request) and the leader is one of the list,
 * the next requests go there (the answer in hand is used as it is). A URL
 * not in the list is never followed: the token goes only where the user
 * sent it. */
static void follow_leader(eb_client *c, const eb__target *t)
{
    url_parts u;
    if (!t->http.leader[0] || !strstr(t->http.leader, "://") || parse_url(t->http.leader, &u))
        return;
    char *key = url_key(&u);
    for (size_t i = 0; key && i < c->ntargets; i++)
        if (!strcmp(c->targets[i].key, key)) {
            c->cur = i;
            break;
        }
    free(key);
}

/* One try at target t: 0 with *status, or the connection's failure. */
static int try_target(eb_client *c, eb__target *t, const char *method, const char *path,
                      const char *body, size_t blen, uint32_t timeout_ms, bool resend,
                      int *status)
{
    eb_buf_reset(&c->full);
    eb_buf_puts(&c->full, t->prefix);
    eb_buf_puts(&c->full, path);
    if (eb_buf_failed(&c->full))
        return EB_ENOMEM;
    return eb__http_do(&t->http, method, c->full.data, body, blen, timeout_ms, resend, status,
                       &c->answer);
}

/* Sends a request (failing over as above) and reads its answer; parses a
 * non-empty body. */
static int exchange(eb_client *c, const char *method, const char *path, const char *body,
                    size_t blen, uint32_t timeout_ms, bool resend, int *status,
                    const eb_json **root)
{
    *root = NULL;
    size_t n = c->ntargets;
    for (size_t i = 0; i < n; i++) {
        size_t at = (c->cur + i) % n;
        eb__target *t = &c->targets[at];
        int rc = try_target(c, t, method, path, body, blen, timeout_ms, resend, status);
        if (rc == EB_ENOMEM)
            return eb__fail(c, rc, "out of memory");
        if (rc == 0 && *status == 503 && i + 1 < n)
            continue;
        if (rc == 0) {
            if (*status != 503) {
                c->cur = at;
                follow_leader(c, t);
            }
            break;
        }
        bool moving = (rc == EB_ECONNECT || rc == EB_ETIMEDOUT) && (resend || !t->http.sent);
        if (!moving || i + 1 == n)
            return n == 1 ? eb__fail(c, rc, "%s", t->http.err)
                          : eb__fail(c, rc, "%s (%zu of %zu servers tried)", t->http.err, i + 1, n);
    }
    if (!c->doc && !(c->doc = eb_json_doc_new()))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    if (c->answer.len && eb_json_parse(c->doc, c->answer.data, c->answer.len, NULL, NULL) == 0)
        *root = eb_json_root(c->doc);
    return 0;
}

int eb__call(eb_client *c, const char *method, bool has_body, uint32_t extra_ms,
             const eb_json **root)
{
    if (eb_buf_failed(&c->path) || (has_body && eb_buf_failed(&c->body)))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    int status = 0;
    const eb_json *r;
    int rc = exchange(c, method, c->path.data, has_body ? c->body.data : NULL,
                      has_body ? c->body.len : 0, c->timeout_ms + extra_ms, true, &status, &r);
    if (rc)
        return rc;
    if (status < 200 || status > 299)
        return server_error(c, status, r);
    set_ok(c, status);
    if (c->answer.len && !r)
        return eb__bad_answer(c, "the body is not JSON");
    if (root)
        *root = r;
    return 0;
}

int eb_request(eb_client *c, const char *method, const char *path, const char *body,
               size_t body_len, int *status, char **answer)
{
    if (answer)
        *answer = NULL;
    if (!method || !path || (body_len && !body))
        return eb__fail(c, EB_EINVAL, "method and path are required");
    eb__path(c, path);
    if (eb_buf_failed(&c->path))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    int st = 0;
    const eb_json *r;
    /* the caller's request: sent twice only if its method is idempotent */
    bool resend = !strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "PUT") ||
                  !strcmp(method, "DELETE") || !strcmp(method, "OPTIONS");
    int rc = exchange(c, method, c->path.data, body, body_len, c->timeout_ms, resend, &st, &r);
    if (rc)
        return rc;
    if (status)
        *status = st;
    if (answer && !(*answer = strndup(c->answer.data ? c->answer.data : "", c->answer.len)))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    if (st < 200 || st > 299)
        return server_error(c, st, r);
    set_ok(c, st);
    return 0;
}

void eb__take_answer(eb_client *c, char **text, size_t *len, eb_json_doc **doc)
{
    *len = c->answer.len;
    *text = eb_buf_steal(&c->answer, len);
    *doc = c->doc;
    c->doc = NULL;
}

/* --- JSON helpers ----------------------------------------------------------- */

bool eb__get_u64(const eb_json *obj, const char *key, uint64_t *out)
{
    const eb_json *v = eb_json_get(obj, key);
    if (!eb_json_is(v, EB_JSON_NUMBER) || !(v->flags & EB_JSON_F_INT) || v->i64 < 0)
        return false;
    *out = (uint64_t)v->i64;
    return true;
}

bool eb__get_bool(const eb_json *obj, const char *key, bool *out)
{
    const eb_json *v = eb_json_get(obj, key);
    if (!eb_json_is_bool(v))
        return false;
    *out = v->type == EB_JSON_TRUE;
    return true;
}

bool eb__get_str(const eb_json *obj, const char *key, char *out, size_t cap)
{
    const eb_json *v = eb_json_get(obj, key);
    if (!eb_json_is(v, EB_JSON_STRING) || v->len >= cap)
        return false;
    memcpy(out, v->str, v->len + 1);
    return true;
}

void eb__write_strs(eb_jw *w, const char *key, const char *const *ids, size_t n)
{
    eb_jw_key(w, key);
    eb_jw_arr_open(w);
    for (size_t i = 0; i < n; i++)
        eb_jw_str(w, ids[i]);
    eb_jw_arr_close(w);
}

int eb__check_json(eb_client *c, const char *what, const char *text, size_t len)
{
    if (!c->doc && !(c->doc = eb_json_doc_new()))
        return eb__fail(c, EB_ENOMEM, "out of memory");
    eb_json_error e;
    int rc = eb_json_parse(c->doc, text, len, NULL, &e);
    if (rc == EB_ENOMEM)
        return eb__fail(c, rc, "out of memory");
    if (rc)
        return eb__fail(c, rc == EB_ETOOBIG ? rc : EB_ESYNTAX,
                        "%s: malformed JSON at line %u, column %u: %s", what, e.line, e.column,
                        e.msg);
    return 0;
}
