/* http.c - HTTP/1.1 server: connections and ordered answers (http.h).
 *
 * Each connection owns a request reader (reader.c: http_parser, request
 * building, limits). Complete requests go to the handler and into the
 * connection's answer queue; answers leave in queue order, several per
 * uv_write when they are ready together. */
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventbus/err.h"
#include "http/reader.h"
#include "util/buf.h"

struct eb_http_conn {
    uv_tcp_t        tcp;      /* must stay first */
    eb_http_server *srv;
    eb__http_reader rd;       /* parses what the socket delivers */
    uv_timer_t      idle;     /* closes idle keep-alive connections */
    eb_http_req    *q_head;   /* unanswered or unwritten requests, in order */
    eb_http_req    *q_tail;
    uint32_t        queued;   /* requests in the queue */
    int             refs;     /* handles still open (tcp, idle) */
    bool            reading;  /* uv_read_start active */
    bool            closing;  /* close once the queue is written */
    bool            closed;   /* uv_close called */
    bool            peer_eof; /* the client closed (or half-closed) its side */
    eb_http_conn   *prev, *next; /* server's list */
};

struct eb_http_server {
    uv_loop_t      *loop;
    uv_tcp_t        listener;
    eb_http_opts    opts;
    eb_http_handler handler;
    void           *ud;
    eb_http_conn   *conns;     /* open connections */
    bool            listening;
    bool            stopping;
    void          (*done)(void *);
    void           *done_arg;
    eb_http_stats   stats;
    char            date[40];  /* cached Date header value */
    time_t          date_at;
};

typedef struct write_req {
    uv_write_t    w;
    eb_http_conn *conn;
    size_t        n;
    char         *bufs[16]; /* owned answers */
    bool          close_after;
} write_req;

static void conn_close(eb_http_conn *c);
static void conn_flush(eb_http_conn *c);
static void maybe_done(eb_http_server *s);

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
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
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

static void enqueue(eb_http_conn *c, eb_http_req *r)
{
    r->conn = c;
    r->next = NULL;
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
    c->queued++;
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
    char *p = malloc((size_t)hn + blen);
    if (!p)
        return NULL;
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
    req->resp = format_answer(c->srv, req, status, content_type, body, len, &req->resp_len);
    if (!req->resp) {
        static const char oom[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        req->resp = strdup(oom);
        req->resp_len = req->resp ? sizeof oom - 1 : 0;
        req->keep_alive = false;
    }
    conn_flush(c);
    return 0;
}

void eb_http_set_header(eb_http_req *req, const char *name, const char *value)
{
    int n = snprintf(req->extra + req->extra_len, sizeof req->extra - req->extra_len,
                     "%s: %s\r\n", name, value);
    if (n > 0 && (size_t)n < sizeof req->extra - req->extra_len)
        req->extra_len += (size_t)n;
}

bool eb_http_req_client_gone(const eb_http_req *req)
{
    return !req->conn || req->conn->peer_eof;
}

const char *eb_http_req_header(const eb_http_req *req, const char *lname, size_t *len)
{
    size_t n = strlen(lname);
    for (size_t i = 0; i < req->nheaders; i++) {
        const eb_http_header *h = &req->headers[i];
        if (h->name_len == n && memcmp(h->name, lname, n) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

static void on_written(uv_write_t *w, int status)
{
    write_req *wr = (write_req *)w;
    eb_http_conn *c = wr->conn;
    for (size_t i = 0; i < wr->n; i++)
        free(wr->bufs[i]);
    bool close_after = wr->close_after || status < 0;
    free(wr);
    if (close_after)
        conn_close(c);
    else if (!c->closed)
        conn_flush(c); /* more may have become ready */
}

static void resume_reading(eb_http_conn *c);

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
static void conn_flush(eb_http_conn *c)
{
    if (c->closed)
        return;
    while (c->q_head && c->q_head->resp) {
        write_req *wr = calloc(1, sizeof *wr);
        if (!wr) {
            conn_close(c);
            return;
        }
        wr->conn = c;
        uv_buf_t bufs[16];
        while (wr->n < 16 && c->q_head && c->q_head->resp) {
            eb_http_req *r = c->q_head;
            c->q_head = r->next;
            if (!c->q_head)
                c->q_tail = NULL;
            c->queued--;
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
        if (write_now(c, &rest, &nrest)) {
            bool close_after = wr->close_after;
            for (size_t i = 0; i < wr->n; i++)
                free(wr->bufs[i]);
            free(wr);
            if (close_after) {
                conn_close(c);
                return;
            }
            continue;
        }
        if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, rest, nrest, on_written) != 0) {
            for (size_t i = 0; i < wr->n; i++)
                free(wr->bufs[i]);
            free(wr);
            conn_close(c);
            return;
        }
        if (wr->close_after) {
            c->closing = true;
            return;
        }
    }
    if (c->closing && !c->q_head)
        conn_close(c);
    else
        resume_reading(c);
}

/* Answers a broken request (parse error, limits) and closes afterwards. */
static void answer_error(eb_http_conn *c, int status, const char *code, const char *msg)
{
    eb_http_req *r = eb__http_req_new();
    if (!r) {
        conn_close(c);
        return;
    }
    r->keep_alive = false;
    enqueue(c, r);
    char body[400];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":[]}}", code, msg);
    c->closing = true;
    c->srv->stats.bad_requests++;
    eb_http_respond(r, status, "application/json", body, (size_t)n);
}

/* --- requests from the reader ----------------------------------------------- */

/* A complete request: into the answer queue, then to the handler. */
static void on_request(void *arg, eb_http_req *r)
{
    eb_http_conn *c = arg;
    if (c->closed) { /* closed by the handler of an earlier request in this read */
        eb__http_req_free(r);
        return;
    }
    r->keep_alive = r->keep_alive && !c->srv->stopping;
    enqueue(c, r);
    c->srv->stats.requests++;
    c->srv->handler(c->srv->ud, r);
}

static void on_continue(void *arg)
{
    eb_http_conn *c = arg;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t buf = uv_buf_init((char *)cont, sizeof cont - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
}

/* --- connections ----------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    eb_http_conn *c = h->data;
    if (--c->refs > 0)
        return;
    eb_http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->stats.open_connections--;
    eb__http_reader_free(&c->rd); /* a request begun after conn_close, in the same read */
    free(c);
    maybe_done(s);
}

static void conn_close(eb_http_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    /* Unanswered requests live on: their answers will just be dropped. */
    for (eb_http_req *r = c->q_head, *nx; r; r = nx) {
        nx = r->next;
        r->conn = NULL;
        if (r->resp) /* already answered, never written */
            eb__http_req_free(r);
    }
    c->q_head = c->q_tail = NULL;
    eb__http_reader_free(&c->rd);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

static void on_idle(uv_timer_t *t)
{
    eb_http_conn *c = t->data;
    if (!c->q_head)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* the loop thread reads one chunk at a time */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void parse_error(eb_http_conn *c, int status)
{
    if (status == 413)
        answer_error(c, 413, "payload_too_large", "request body over the server's limit");
    else if (status == 431)
        answer_error(c, 431, "headers_too_large", "too many or too large request headers");
    else
        answer_error(c, 400, "bad_request", "malformed HTTP request");
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void feed(eb_http_conn *c, const char *data, size_t len)
{
    if (c->closing || c->closed)
        return;
    int status = eb__http_reader_feed(&c->rd, data, len);
    if (status)
        parse_error(c, status);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    eb_http_conn *c = st->data;
    if (nread < 0) {
        c->peer_eof = true;
        if (c->q_head) { /* answers still owed: finish them, then close */
            c->closing = true;
            uv_read_stop(st);
            c->reading = false;
        } else {
            conn_close(c);
        }
        return;
    }
    if (nread == 0)
        return;
    uv_timer_again(&c->idle);
    feed(c, buf->base, (size_t)nread);
    if (!c->closed && c->queued >= c->srv->opts.max_pipelined && c->reading) {
        uv_read_stop(st); /* back-pressure until answers drain */
        c->reading = false;
    }
}

static void resume_reading(eb_http_conn *c)
{
    if (c->closed || c->closing || c->reading || c->queued >= c->srv->opts.max_pipelined)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void on_connection(uv_stream_t *server, int status)
{
    eb_http_server *s = server->data;
    if (status < 0)
        return;
    eb_http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->refs = 2;
    uv_timer_init(s->loop, &c->idle);
    c->idle.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->stats.connections++;
    s->stats.open_connections++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    eb__http_reader_init(&c->rd, &s->opts, on_request, on_continue, c);
    uv_timer_start(&c->idle, on_idle, s->opts.idle_timeout_ms, s->opts.idle_timeout_ms);
    resume_reading(c);
}

/* --- server ------------------------------------------------------------------ */

int eb_http_server_new(uv_loop_t *loop, const eb_http_opts *o, eb_http_handler h, void *ud,
                       eb_http_server **out)
{
    eb_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return EB_ENOMEM;
    s->loop = loop;
    s->handler = h;
    s->ud = ud;
    if (o)
        s->opts = *o;
    if (!s->opts.max_body)
        s->opts.max_body = (1u << 20) + (64u << 10);
    if (!s->opts.max_header_bytes)
        s->opts.max_header_bytes = 16u << 10;
    if (!s->opts.max_headers)
        s->opts.max_headers = 100;
    if (!s->opts.idle_timeout_ms)
        s->opts.idle_timeout_ms = 60000;
    if (!s->opts.max_pipelined)
        s->opts.max_pipelined = 128;
    *out = s;
    return 0;
}

static int parse_addr(const char *hp, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof host)
        return EB_EINVAL;
    int port = atoi(colon + 1);
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
        memcpy(host, hp + 1, hl - 2);
        host[hl - 2] = '\0';
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) ? EB_EINVAL : 0;
    }
    memcpy(host, hp, hl);
    host[hl] = '\0';
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? EB_EINVAL : 0;
}

int eb_http_listen(eb_http_server *s, const char *host_port, int *bound_port)
{
    struct sockaddr_storage ss;
    if (parse_addr(host_port, &ss))
        return EB_EINVAL;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        return rc; /* a negative errno: eb_strerror explains it */
    }
    s->listening = true;
    if (bound_port) {
        struct sockaddr_storage got;
        int len = sizeof got;
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
        *bound_port = got.ss_family == AF_INET6
                          ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                          : ntohs(((struct sockaddr_in *)&got)->sin_port);
    }
    return 0;
}

static void maybe_done(eb_http_server *s)
{
    if (s->stopping && !s->conns && !s->listening && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        done(s->done_arg);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    eb_http_server *s = h->data;
    s->listening = false;
    maybe_done(s);
}

void eb_http_server_shutdown(eb_http_server *s, void (*done)(void *), void *arg)
{
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (eb_http_conn *c = s->conns, *nx; c; c = nx) {
        nx = c->next;
        if (!c->q_head && !c->rd.cur)
            conn_close(c);
        else
            c->closing = true;
    }
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    else
        maybe_done(s);
}

void eb_http_server_free(eb_http_server *s)
{
    free(s);
}

void eb_http_server_stats(const eb_http_server *s, eb_http_stats *st)
{
    *st = s->stats;
}
