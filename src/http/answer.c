/* answer.c - the HTTP server's answer queue (http_int.h).
 *
 * Each connection keeps its requests in arrival order; an answer is
 * formatted when the handler gives it (eb_http_respond) and leaves in queue
 * order, several per write when they are ready together, first with
 * uv_try_write and only then through a queued uv_write. The bytes a
 * connection holds (bodies in the queue, answers not yet written) are what
 * back-pressure counts (eb__http_conn_full). With TLS, answers are sealed
 * into records just before they are written. */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventbus/err.h"

static bool tls_seal(eb_http_conn *c, write_req *wr, uv_buf_t *bufs, unsigned *n);

/* --- small helpers --------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default:  return "Status";
    }
}

static const char *date_now(eb_http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_at = now;
    }
    return s->date;
}

/* --- answer queue ----------------------------------------------------------- */

void eb__http_enqueue(eb_http_conn *c, eb_http_req *r)
{
    r->conn = c;
    r->next = NULL;
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
    c->queued++;
    c->in_bytes += r->body_len;
}

/* Whether the connection holds as much as it may: read no more for now. */
bool eb__http_conn_full(const eb_http_conn *c)
{
    const eb_http_opts *o = &c->srv->opts;
    return c->queued >= o->max_pipelined || c->in_bytes + c->out_bytes >= o->max_conn_buffer;
}

static char *format_answer(eb_http_server *s, eb_http_req *r, int status, const char *ctype,
                           const char *body, size_t len, size_t *out_len)
{
    char head[640];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nServer: eventbus/0.1\r\nDate: %s\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n%s%.*s\r\n",
                      status, reason(status), date_now(s), ctype ? ctype : "application/json",
                      len, r->keep_alive ? "" : "Connection: close\r\n", (int)r->extra_len,
                      r->extra);
    size_t blen = r->head ? 0 : len;
    char *p = eb_xmalloc((size_t)hn + blen);
    memcpy(p, head, (size_t)hn);
    if (blen)
        memcpy(p + hn, body, blen);
    *out_len = (size_t)hn + blen;
    return p;
}

int eb_http_respond(eb_http_req *req, int status, const char *content_type,
                    const char *body, size_t len)
{
    eb_http_conn *c = req->conn;
    if (!c) { /* the client went away */
        eb__http_req_free(req);
        return EB_ECLOSED;
    }
    if (c->srv->opts.on_answer)
        c->srv->opts.on_answer(c->srv->ud, req, status, body, len);
    req->resp = format_answer(c->srv, req, status, content_type, body, len, &req->resp_len);
    c->out_bytes += req->resp_len;
    eb__http_conn_flush(c);
    return 0;
}

void eb_http_set_header(eb_http_req *req, const char *name, const char *value)
{
    int n = snprintf(req->extra + req->extra_len, sizeof req->extra - req->extra_len,
                     "%s: %s\r\n", name, value);
    if (n > 0 && (size_t)n < sizeof req->extra - req->extra_len)
        req->extra_len += (size_t)n;
}

static void on_written(uv_write_t *w, int status)
{
    write_req *wr = (write_req *)w;
    eb_http_conn *c = wr->conn;
    for (size_t i = 0; i < wr->n; i++)
        free(wr->bufs[i]);
    c->out_bytes -= wr->bytes;
    bool close_after = wr->close_after;
    free(wr);
    if (status < 0)
        eb__http_conn_close(c);
    else if (close_after)
        eb__http_conn_linger(c);
    else if (!c->closed)
        eb__http_conn_flush(c); /* more may have become ready */
}


/* Writes what the socket takes at once (uv_try_write: nothing queued in
 * libuv, so order holds) and moves *bufs and *n past it; true when all of
 * it went. Saves the write request, its callback, and the epoll_ctl that
 * libuv 1.44 issues after every queued write drains (uv__drain stops
 * POLLOUT, which re-arms the watcher): measured in bench/peers latency. */
static bool write_now(eb_http_conn *c, uv_buf_t **bufs, unsigned *n)
{
    int w = uv_try_write((uv_stream_t *)&c->tcp, *bufs, *n);
    size_t done = w > 0 ? (size_t)w : 0;
    while (*n && done >= (*bufs)->len) {
        done -= (*bufs)->len;
        (*bufs)++;
        (*n)--;
    }
    if (*n) {
        (*bufs)->base += done;
        (*bufs)->len -= done;
    }
    return *n == 0;
}

/* Writes every ready answer at the head of the queue. */
void eb__http_conn_flush(eb_http_conn *c)
{
    if (c->closed)
        return;
    while (c->q_head && c->q_head->resp) {
        write_req *wr = eb_xcalloc(1, sizeof *wr);
        wr->conn = c;
        uv_buf_t bufs[16];
        while (wr->n < 16 && c->q_head && c->q_head->resp) {
            eb_http_req *r = c->q_head;
            c->q_head = r->next;
            if (!c->q_head)
                c->q_tail = NULL;
            c->queued--;
            c->in_bytes -= r->body_len;
            wr->bytes += r->resp_len;
            bufs[wr->n] = uv_buf_init(r->resp, (unsigned)r->resp_len);
            wr->bufs[wr->n++] = r->resp;
            r->resp = NULL;
            if (!r->keep_alive)
                wr->close_after = true;
            eb__http_req_free(r);
            if (wr->close_after)
                break;
        }
        uv_buf_t *rest = bufs;
        unsigned nrest = (unsigned)wr->n;
        if (c->tls && !tls_seal(c, wr, bufs, &nrest)) {
            c->out_bytes -= wr->bytes;
            free(wr);
            eb__http_conn_close(c);
            return;
        }
        if (write_now(c, &rest, &nrest)) {
            bool close_after = wr->close_after;
            for (size_t i = 0; i < wr->n; i++)
                free(wr->bufs[i]);
            c->out_bytes -= wr->bytes;
            free(wr);
            if (close_after) {
                eb__http_conn_linger(c);
                return;
            }
            continue;
        }
        if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, rest, nrest, on_written) != 0) {
            for (size_t i = 0; i < wr->n; i++)
                free(wr->bufs[i]);
            c->out_bytes -= wr->bytes;
            free(wr);
            eb__http_conn_close(c);
            return;
        }
        if (wr->close_after) {
            c->closing = true;
            return;
        }
    }
    if (c->closing && !c->q_head && !c->out_bytes) /* last answers written */
        eb__http_conn_close(c);
    else
        eb__http_conn_resume(c);
}

/* Answers a broken request (parse error, limits) and closes afterwards. */
void eb__http_answer_error(eb_http_conn *c, int status, const char *code, const char *msg)
{
    eb_http_req *r = eb__http_req_new();
    r->keep_alive = false;
    eb__http_enqueue(c, r);
    char body[400];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":[]}}", code, msg);
    c->closing = true;
    eb_http_respond(r, status, "application/json", body, (size_t)n);
}

/* --- the TLS transport's output (tls.h) ------------------------------------- */

/* Writes n bytes of records (taking p, malloc'd), in order after earlier writes. */
static void wire_write(eb_http_conn *c, char *p, size_t n)
{
    write_req *wr = eb_xcalloc(1, sizeof *wr);
    wr->conn = c;
    wr->bufs[wr->n++] = p;
    uv_buf_t b = uv_buf_init(p, (unsigned)n), *rest = &b;
    unsigned nrest = 1;
    if (write_now(c, &rest, &nrest)) {
        free(p);
        free(wr);
        return;
    }
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, rest, nrest, on_written) != 0) {
        free(p);
        free(wr);
        eb__http_conn_close(c);
    }
}

void eb__http_wire_write_buf(eb_http_conn *c, eb_buf *b)
{
    if (eb_buf_failed(b)) {
        eb_buf_free(b);
        eb__http_conn_close(c);
    } else if (b->len) {
        size_t n;
        char *p = eb_buf_steal(b, &n);
        wire_write(c, p, n);
    } else {
        eb_buf_free(b);
    }
}

void eb__http_tls_write(eb_http_conn *c, const char *p, size_t n)
{
    eb_buf out = EB_BUF_INIT;
    eb__tls_conn_seal(c->tls, p, n, &out);
    eb__http_wire_write_buf(c, &out);
}

/* Replaces the n plaintext answers of wr (in bufs) by one buffer of
 * records; false if out of memory or the session failed. */
static bool tls_seal(eb_http_conn *c, write_req *wr, uv_buf_t *bufs, unsigned *n)
{
    eb_buf out = EB_BUF_INIT;
    int rc = 0;
    for (unsigned i = 0; i < *n && !rc; i++)
        rc = eb__tls_conn_seal(c->tls, bufs[i].base, bufs[i].len, &out);
    for (size_t i = 0; i < wr->n; i++)
        free(wr->bufs[i]);
    if (rc || eb_buf_failed(&out) || !out.len) {
        eb_buf_free(&out);
        wr->n = 0;
        return false;
    }
    size_t len;
    wr->bufs[0] = eb_buf_steal(&out, &len);
    wr->n = 1;
    bufs[0] = uv_buf_init(wr->bufs[0], (unsigned)len);
    *n = 1;
    return true;
}
