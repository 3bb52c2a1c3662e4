/* reader.c - the HTTP/1.1 request reader (reader.h): http_parser callbacks
 * that build requests and enforce the limits.
 *
 * A request is allocated when a message begins; its URL and headers
 * accumulate in one buffer and its body in another (both owned by the
 * request, so an answer may come long after the read buffer is gone).
 * Header names are lowercased on the way in. When the message completes,
 * the spans recorded during the build become the public fields. */
#include "http/reader.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/xmalloc.h"

typedef struct hdr_span {
    size_t name_off, name_len, value_off, value_len;
} hdr_span;

/* What a request is built from while it is parsed. */
typedef struct req_build {
    eb_buf    head;     /* URL, then header names and values */
    eb_buf    body;
    hdr_span *spans;
    size_t    nspans, cap;
    size_t    url_len;
    bool      in_value; /* the last header callback was a value */
} req_build;

/* A request and its build buffers in one allocation. */
struct eb__http_req_full {
    eb_http_req     pub;  /* must stay first */
    req_build       b;
    eb_http_header *hdrs;
};

eb_http_req *eb__http_req_new(void)
{
    eb__http_req_full *f = eb_xcalloc(1, sizeof *f);
    return &f->pub;
}

void eb__http_req_free(eb_http_req *r)
{
    eb__http_req_full *f = (eb__http_req_full *)r;
    eb_buf_free(&f->b.head);
    eb_buf_free(&f->b.body);
    free(f->b.spans);
    free(f->hdrs);
    free(r->resp);
    free(f);
}

static int map_method(unsigned m)
{
    switch (m) {
    case HTTP_DELETE: return EB_HTTP_DELETE;
    case HTTP_GET:    return EB_HTTP_GET;
    case HTTP_HEAD:   return EB_HTTP_HEAD;
    case HTTP_POST:   return EB_HTTP_POST;
    case HTTP_PUT:    return EB_HTTP_PUT;
    case HTTP_PATCH:  return EB_HTTP_PATCH;
    default:          return EB_HTTP_OTHER;
    }
}

/* --- parser callbacks --------------------------------------------------------- */

static eb__http_reader *reader_of(http_parser *p)
{
    return p->data;
}

static int on_message_begin(http_parser *p)
{
    eb__http_reader *r = reader_of(p);
    eb__http_req_full *f = eb_xcalloc(1, sizeof *f);
    if (r->cur) /* never happens: a message completes before the next begins */
        eb__http_req_free(&r->cur->pub);
    r->cur = f;
    r->begun++;
    r->head_done = false;
    return 0;
}

static int too_big_headers(eb__http_reader *r, size_t add)
{
    if (r->cur->b.head.len + add > r->opts->max_header_bytes) {
        r->error = 431;
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    eb__http_reader *r = reader_of(p);
    if (too_big_headers(r, len))
        return -1;
    eb_buf_append(&r->cur->b.head, at, len);
    r->cur->b.url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    eb__http_reader *r = reader_of(p);
    req_build *b = &r->cur->b;
    if (too_big_headers(r, len))
        return -1;
    if (b->nspans == 0 || b->in_value) {
        if (b->nspans >= r->opts->max_headers) {
            r->error = 431;
            return -1;
        }
        if (b->nspans == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 16;
            b->spans = eb_xrealloc(b->spans, cap * sizeof *b->spans);
            b->cap = cap;
        }
        b->spans[b->nspans++] = (hdr_span){b->head.len, 0, 0, 0};
        b->in_value = false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        eb_buf_putc(&b->head, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
    }
    b->spans[b->nspans - 1].name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    eb__http_reader *r = reader_of(p);
    req_build *b = &r->cur->b;
    if (too_big_headers(r, len))
        return -1;
    hdr_span *s = &b->spans[b->nspans - 1];
    if (!b->in_value) {
        s->value_off = b->head.len;
        b->in_value = true;
    }
    eb_buf_append(&b->head, at, len);
    s->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    eb__http_reader *r = reader_of(p);
    if (p->flags & F_CONTENTLENGTH && p->content_length > r->opts->max_body) {
        r->error = 413;
        return -1;
    }
    if (p->upgrade && p->method == HTTP_CONNECT) { /* a tunnel: not served */
        r->error = 400;
        return -1;
    }
    r->head_done = true;
    req_build *b = &r->cur->b;
    for (size_t i = 0; i < b->nspans && r->on_continue; i++) {
        const char *name = b->head.data + b->spans[i].name_off;
        if (b->spans[i].name_len == 6 && !memcmp(name, "expect", 6) &&
            b->spans[i].value_len >= 12 &&
            !strncasecmp(b->head.data + b->spans[i].value_off, "100-continue", 12))
            r->on_continue(r->arg);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    eb__http_reader *r = reader_of(p);
    eb_buf *body = &r->cur->b.body;
    if (body->len + len > r->opts->max_body) {
        r->error = 413;
        return -1;
    }
    eb_buf_append(body, at, len);
    return 0;
}

/* Turns the build buffers into the public request fields. */
static int finish_request(eb__http_req_full *f, http_parser *p)
{
    req_build *b = &f->b;
    if (eb_buf_failed(&b->head) || eb_buf_failed(&b->body))
        return -1;
    if (!b->head.data && !eb_buf_reserve(&b->head, 1))
        return -1;
    if (!b->body.data && !eb_buf_reserve(&b->body, 1))
        return -1;
    f->hdrs = eb_xcalloc(b->nspans, sizeof *f->hdrs);
    const char *h = b->head.data;
    for (size_t i = 0; i < b->nspans; i++)
        f->hdrs[i] = (eb_http_header){h + b->spans[i].name_off, b->spans[i].name_len,
                                      h + b->spans[i].value_off, b->spans[i].value_len};
    eb_http_req *r = &f->pub;
    r->head = p->method == HTTP_HEAD;
    r->method = r->head ? EB_HTTP_GET : map_method(p->method); /* answered without a body */
    r->path = h;
    r->path_len = b->url_len;
    const char *q = memchr(h, '?', b->url_len);
    if (q) {
        r->path_len = (size_t)(q - h);
        r->query = q + 1;
        r->query_len = b->url_len - r->path_len - 1;
    }
    r->headers = f->hdrs;
    r->nheaders = b->nspans;
    r->body = b->body.data;
    r->body_len = b->body.len;
    r->keep_alive = http_should_keep_alive(p);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    eb__http_reader *r = reader_of(p);
    if (finish_request(r->cur, p) != 0)
        return -1;
    eb_http_req *req = &r->cur->pub;
    r->cur = NULL;
    r->head_done = false;
    r->on_request(r->arg, req);
    if (r->pause) {
        r->pause = false;
        http_parser_pause(p, 1); /* execute returns after this message */
    }
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- the reader ------------------------------------------------------------------ */

void eb__http_reader_init(eb__http_reader *r, const eb_http_opts *opts,
                          eb__http_on_request on_request, eb__http_on_continue on_continue,
                          void *arg)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->opts = opts;
    r->on_request = on_request;
    r->on_continue = on_continue;
    r->arg = arg;
}

/* An Upgrade offer (h2c from `curl --http2`, websocket) is declined by
 * ignoring it (RFC 9110 7.8): the request is answered over HTTP/1.1. The
 * parser stops after such a request, as if other bytes followed; feeding
 * it on reads what follows as the next HTTP/1.1 request. */
int eb__http_reader_feed(eb__http_reader *r, const char *data, size_t len, size_t *used)
{
    size_t off = 0;
    *used = 0;
    while (off < len) {
        size_t n = http_parser_execute(&r->parser, &settings, data + off, len - off);
        off += n;
        if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED) {
            http_parser_pause(&r->parser, 0);
            break;
        }
        if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n == 0)
            return r->error ? r->error : 400; /* (a parser that reads nothing is stuck) */
    }
    *used = off;
    return 0;
}

void eb__http_reader_pause(eb__http_reader *r)
{
    r->pause = true;
}

void eb__http_reader_free(eb__http_reader *r)
{
    if (r->cur)
        eb__http_req_free(&r->cur->pub);
    r->cur = NULL;
}
