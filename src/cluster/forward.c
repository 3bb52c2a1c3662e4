/* forward.c - a follower relays a request to the leader: one libcurl
 * multi handle on the libuv loop (http/curl_uv.c; its connection cache
 * keeps the connections to the leader alive), the request's method,
 * path, query, headers and body sent as they came, and the answer's
 * status, content type, the headers the API sets, and body relayed,
 * bounded (--forward-max-answer each, past it 502 answer_too_large; and
 * all the answers being received at once to --forward-max-buffered, past
 * it 503 overloaded; an answer's Content-Length is counted against both
 * as soon as its headers arrive, so a follower never starts receiving
 * what it could not hold). The request carries "Eb-Forwarded: <epoch>":
 * a node that gets one while not serving answers 503 rather than
 * forwarding again (no loops). A leader that cannot be reached (refused,
 * reset, or no answer within --forward-timeout) gives 503 no_leader with
 * Retry-After: 1, which clients given several URLs move on from; a
 * publish is resent with its id, so one the leader did commit is not
 * stored twice. */
#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/cluster.h"
#include "eventbus/err.h"
#include "http/curl_uv.h"
#include "util/buf.h"
#include "util/xmalloc.h"

struct eb_fwd {
    eb_curl_uv *curl;
    CURLM      *multi;
    uint32_t    timeout_ms, max, in_flight;
    size_t      max_answer, max_buffered;
    size_t      buffered, peak; /* answer bytes held by the forwards in flight; the most */
    uint64_t    count;
    bool        closing;
    struct fwd *head;    /* in flight */
    struct fwd *spare;   /* done, kept for the next ones (their easy handle and
                          * body buffer: no allocation, no heap trimming) */
    uint32_t    nspare;
};

#define FWD_SPARES     64            /* finished forwards kept for reuse */
#define FWD_SPARE_BODY (64u << 10)   /* a kept one's body buffer at most (4 MiB in all) */

typedef struct fwd {
    eb_fwd            *f;
    eb_http_req       *req;
    CURL              *easy;
    struct curl_slist *hdrs;
    eb_buf             body;
    size_t             held; /* counted in f->buffered: max(Content-Length, body.len) */
    char               ctype[128];
    char               leader[512];   /* the URL relayed to: named in Eventbus-Leader */
    char               extra[8][200]; /* relayed answer headers, "Name: value" */
    int                nextra;
    bool               cut, full; /* over max_answer; over max_buffered */
    struct fwd        *prev, *next;
} fwd;

/* The answer headers the API sets that mean something to a client. */
static const char *const relayed[] = {"allow", "cache-control", "content-encoding",
                                      "content-security-policy", "etag", "location",
                                      "retry-after", "vary", "www-authenticate",
                                      "x-content-type-options"};
/* Request headers not relayed (hop by hop, or made again by libcurl). */
static const char *const dropped[] = {"host", "connection", "keep-alive", "transfer-encoding",
                                      "te", "upgrade", "content-length", "expect",
                                      "proxy-authorization", "proxy-connection", "eb-forwarded"};

static bool in_list(const char *name, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && !strncasecmp(list[i], name, len))
            return true;
    return false;
}

void eb__cluster_error(eb_http_req *req, int status, const char *code, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":[]}}", code, msg);
    if (status == 503)
        eb_http_set_header(req, "Retry-After", "1");
    eb_http_respond(req, status, "application/json", body, (size_t)n);
}

static void unlink_fwd(fwd *w)
{
    eb_fwd *f = w->f;
    if (w->prev)
        w->prev->next = w->next;
    else
        f->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    f->in_flight--;
}

/* A forward record: a spare one (its easy handle reset to the defaults,
 * its body buffer emptied), else a new one; NULL if libcurl cannot make a
 * handle. */
static fwd *fwd_get(eb_fwd *f)
{
    fwd *w = f->spare;
    if (w) {
        f->spare = w->next;
        f->nspare--;
        curl_easy_reset(w->easy);
        eb_buf body = w->body;
        CURL *e = w->easy;
        memset(w, 0, offsetof(fwd, extra)); /* extra[] is read up to nextra only */
        w->easy = e;
        w->body = body;
        eb_buf_reset(&w->body);
        w->nextra = 0;
        w->cut = w->full = false;
        w->prev = w->next = NULL;
        w->f = f;
        return w;
    }
    w = eb_xcalloc(1, sizeof *w);
    w->f = f;
    eb_buf_init(&w->body);
    if (!(w->easy = curl_easy_init())) {
        free(w);
        return NULL;
    }
    return w;
}

/* Done with w: kept as a spare (FWD_SPARES at most) or freed. */
static void fwd_free(fwd *w)
{
    eb_fwd *f = w->f;
    f->buffered -= w->held;
    w->held = 0;
    curl_multi_remove_handle(f->multi, w->easy); /* a no-op once done */
    curl_slist_free_all(w->hdrs);
    w->hdrs = NULL;
    if (!f->closing && f->nspare < FWD_SPARES && w->body.cap <= FWD_SPARE_BODY) {
        w->next = f->spare;
        f->spare = w;
        f->nspare++;
        return;
    }
    curl_easy_cleanup(w->easy);
    eb_buf_free(&w->body);
    free(w);
}

static void finish(fwd *w, CURLcode res)
{
    long status = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    eb_http_req *req = w->req;
    if (w->cut) {
        eb__cluster_error(req, 502, "answer_too_large", "the leader's answer is larger than "
                          "this node relays (--forward-max-answer)");
    } else if (w->full) {
        eb__cluster_error(req, 503, "overloaded", "too many answers being relayed at once "
                          "(--forward-max-buffered)");
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        eb__cluster_error(req, 503, "no_leader", "the leader did not answer within "
                          "--forward-timeout; retry (another node may be taking over)");
    } else if (res != CURLE_OK || status < 100) {
        eb__cluster_error(req, 503, "no_leader", "the leader cannot be reached; retry (another "
                          "node may be taking over)");
    } else {
        for (int i = 0; i < w->nextra; i++) {
            char *colon = strchr(w->extra[i], ':');
            *colon = '\0';
            eb_http_set_header(req, w->extra[i], colon + 1);
        }
        if (*w->leader) /* the clients given several URLs go there next */
            eb_http_set_header(req, "Eventbus-Leader", w->leader);
        eb_http_respond(req, (int)status, *w->ctype ? w->ctype : NULL, w->body.data,
                        w->body.len);
    }
    unlink_fwd(w);
    fwd_free(w);
}

static void on_done(void *arg, CURL *e, CURLcode res)
{
    (void)arg;
    fwd *w = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&w);
    finish(w, res);
}

int eb__fwd_open(uv_loop_t *loop, uint32_t timeout_ms, size_t max_answer, size_t max_buffered,
                 uint32_t max, eb_fwd **out)
{
    eb_fwd *f = eb_xcalloc(1, sizeof *f);
    if (eb_curl_uv_open(loop, on_done, f, &f->curl) != 0) {
        free(f);
        return EB_EIO;
    }
    f->multi = eb_curl_uv_multi(f->curl);
    f->timeout_ms = timeout_ms;
    f->max_answer = max_answer;
    f->max_buffered = max_buffered;
    f->max = max;
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)(max < 1024 ? max : 1024));
    *out = f;
    return 0;
}

/* The answer will hold `need` bytes: counted against both bounds (false:
 * over one, w->cut or w->full set) and kept counted until it is freed. */
static bool hold(fwd *w, size_t need)
{
    eb_fwd *f = w->f;
    if (need <= w->held)
        return true;
    if (need > f->max_answer) {
        w->cut = true;
        return false;
    }
    if (f->buffered + (need - w->held) > f->max_buffered) {
        w->full = true;
        return false;
    }
    f->buffered += need - w->held;
    w->held = need;
    if (f->buffered > f->peak)
        f->peak = f->buffered;
    return true;
}

static size_t on_body(char *d, size_t sz, size_t n, void *arg)
{
    fwd *w = arg;
    size_t len = sz * n;
    if (!hold(w, w->body.len + len))
        return 0; /* CURLE_WRITE_ERROR: answered 502 or 503 */
    eb_buf_append(&w->body, d, len);
    if (eb_buf_failed(&w->body)) {
        w->full = true; /* out of memory: 503 overloaded */
        return 0;
    }
    return len;
}

static size_t on_header(char *d, size_t sz, size_t n, void *arg)
{
    fwd *w = arg;
    size_t len = sz * n, nl = len;
    const char *colon = memchr(d, ':', len);
    if (!colon)
        return len;
    while (nl && (d[nl - 1] == '\n' || d[nl - 1] == '\r'))
        nl--;
    const char *v = colon + 1;
    while (v < d + nl && *v == ' ')
        v++;
    size_t name = (size_t)(colon - d), vlen = (size_t)(d + nl - v);
    if (name == 12 && !strncasecmp(d, "content-type", 12)) {
        snprintf(w->ctype, sizeof w->ctype, "%.*s", (int)vlen, v);
    } else if (name == 14 && !strncasecmp(d, "content-length", 14) && !w->req->head) {
        char num[24];
        snprintf(num, sizeof num, "%.*s", (int)(vlen < 23 ? vlen : 23), v);
        unsigned long long cl = strtoull(num, NULL, 10);
        if (!hold(w, cl > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)cl))
            return 0; /* the body is not received at all */
        eb_buf_reserve(&w->body, (size_t)cl); /* one allocation, no copies as it grows */
    }
    else if (in_list(d, name, relayed, sizeof relayed / sizeof *relayed) && w->nextra < 8 &&
             name + vlen + 2 < sizeof w->extra[0])
        snprintf(w->extra[w->nextra++], sizeof w->extra[0], "%.*s:%.*s", (int)name, d,
                 (int)vlen, v);
    return len;
}

/* The leader's URL as the Eventbus-Leader header names it; "" (no header) if it
 * could not be one header value (a control character or a space, or too
 * long). */
static void leader_name(fwd *w, const char *base)
{
    size_t n = strlen(base);
    w->leader[0] = '\0';
    if (n >= sizeof w->leader)
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)base[i] <= ' ' || base[i] == 0x7f)
            return;
    memcpy(w->leader, base, n + 1);
}

static const char *method_name(const eb_http_req *req)
{
    switch (req->method) {
    case EB_HTTP_DELETE: return "DELETE";
    case EB_HTTP_GET: return req->head ? "HEAD" : "GET";
    case EB_HTTP_POST: return "POST";
    case EB_HTTP_PUT: return "PUT";
    case EB_HTTP_PATCH: return "PATCH";
    default: return NULL;
    }
}

void eb__fwd_start(eb_fwd *f, const char *base, uint64_t epoch, eb_http_req *req)
{
    const char *m = method_name(req);
    if (!m) {
        eb__cluster_error(req, 405, "method_not_allowed", "unknown method");
        return;
    }
    if (f->closing || f->in_flight >= f->max) {
        eb__cluster_error(req, 503, f->closing ? "shutting_down" : "overloaded",
                          f->closing ? "the server is stopping"
                                     : "too many requests being forwarded to the leader");
        return;
    }
    fwd *w = fwd_get(f);
    if (!w) {
        eb__cluster_error(req, 503, "overloaded", "out of memory");
        return;
    }
    w->req = req;
    leader_name(w, base);
    eb_buf url = EB_BUF_INIT;
    eb_buf_printf(&url, "%s%.*s", base, (int)req->path_len, req->path);
    if (req->query)
        eb_buf_printf(&url, "?%.*s", (int)req->query_len, req->query);
    eb_buf_append(&url, "", 1);
    eb_buf line = EB_BUF_INIT;
    for (size_t i = 0; i < req->nheaders; i++) {
        const eb_http_header *h = &req->headers[i];
        if (in_list(h->name, h->name_len, dropped, sizeof dropped / sizeof *dropped))
            continue;
        eb_buf_reset(&line);
        eb_buf_printf(&line, "%.*s: %.*s", (int)h->name_len, h->name, (int)h->value_len,
                      h->value);
        eb_buf_append(&line, "", 1);
        w->hdrs = curl_slist_append(w->hdrs, line.data);
    }
    eb_buf_reset(&line);
    eb_buf_printf(&line, "Eb-Forwarded: %llu", (unsigned long long)epoch);
    eb_buf_append(&line, "", 1);
    w->hdrs = curl_slist_append(w->hdrs, line.data);
    w->hdrs = curl_slist_append(w->hdrs, "Expect:");
    if (!eb_http_req_header(req, "content-type", NULL)) /* libcurl adds none of its own */
        w->hdrs = curl_slist_append(w->hdrs, "Content-Type:");
    eb_buf_free(&line);
    CURL *e = w->easy;
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    eb_buf_free(&url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, w);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    if (req->head)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (req->method != EB_HTTP_GET || req->body_len) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    eb_curl_uv_easy(f->curl, e); /* close-on-exec, and the poll kept per socket */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL); /* the client's Accept-Encoding as is */
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    w->next = f->head;
    if (f->head)
        f->head->prev = w;
    f->head = w;
    f->in_flight++;
    f->count++;
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        unlink_fwd(w);
        fwd_free(w);
        eb__cluster_error(req, 503, "overloaded", "cannot start forwarding");
    }
}

uint64_t eb__fwd_count(const eb_fwd *f)
{
    return f->count;
}

void eb__fwd_held(const eb_fwd *f, uint64_t *now, uint64_t *peak)
{
    *now = f->buffered;
    *peak = f->peak;
}

void eb__fwd_close(eb_fwd *f)
{
    f->closing = true;
    while (f->head) {
        fwd *w = f->head;
        eb__cluster_error(w->req, 503, "shutting_down", "the server is stopping");
        unlink_fwd(w);
        fwd_free(w);
    }
    while (f->spare) {
        fwd *w = f->spare;
        f->spare = w->next;
        curl_easy_cleanup(w->easy);
        eb_buf_free(&w->body);
        free(w);
    }
    eb_curl_uv_close(f->curl, free, f);
}
