/* http.c - HTTP/1.1 server: connections and ordered answers (http.h).
 *
 * Each connection owns a request reader (reader.c: http_parser, request
 * building, limits). Complete requests go to the handler and into the
 * connection's answer queue; answers leave in queue order, several per
 * uv_write when they are ready together. Reading stops while a connection
 * holds too much (requests, bytes): the bytes read past that point wait in
 * `held` and are parsed when the answers drain. */
#include "http/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "http/reader.h"
#include "http/tls.h"
#include "util/buf.h"

struct eb_http_conn {
    uv_tcp_t        tcp;      /* must stay first */
    eb_http_server *srv;
    eb__http_reader rd;       /* parses what the socket delivers */
    uv_timer_t      idle;     /* closes idle keep-alive connections */
    uv_timer_t      deadline; /* the request being read must arrive by then */
    eb_http_req    *q_head;   /* unanswered or unwritten requests, in order */
    eb_http_req    *q_tail;
    uint32_t        queued;   /* requests in the queue */
    size_t          in_bytes; /* bodies of the requests in the queue */
    size_t          out_bytes; /* answers formatted and not yet written */
    eb_buf          held;     /* read but not parsed: reading is paused */
    uint64_t        dl_begun; /* the reader's request count the deadline is for */
    uint64_t        dl_start; /* when that request began (loop ms) */
    uint64_t        dl_due;   /* when the armed deadline fires */
    int             refs;     /* handles still open (tcp, idle, deadline) */
    bool            reading;  /* uv_read_start active */
    bool            feeding;  /* the reader is running (handlers may re-enter) */
    bool            dl_on;    /* the deadline timer is armed */
    bool            lingering; /* answered and shut down: reading to EOF, then close */
    bool            closing;  /* close once the queue is written */
    bool            closed;   /* uv_close called */
    bool            peer_eof; /* the client closed (or half-closed) its side */
    eb__tls_conn   *tls;      /* the TLS transport, or NULL: plain TCP */
    struct sockaddr_storage peer; /* the client's address, once asked (ss_family set) */
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
    eb_tls         *tls;       /* connections speak TLS (not owned), or NULL */
    time_t          date_at;
    int             reserve_fd; /* closed to accept-and-refuse on EMFILE */
    uint64_t        fd_limit;   /* RLIMIT_NOFILE when the server was made */
    bool            at_cap;     /* max_connections reached (logged once) */
    uint32_t        lingering;  /* connections in a lingering close */
    uint64_t        emfile_logged; /* loop ms of the last EMFILE log line */
};

typedef struct write_req {
    uv_write_t    w;
    eb_http_conn *conn;
    size_t        n;
    size_t        bytes;    /* counted in conn->out_bytes until written */
    char         *bufs[16]; /* owned answers */
    bool          close_after;
} write_req;

static void conn_close(eb_http_conn *c);
static void conn_linger(eb_http_conn *c);
static void conn_flush(eb_http_conn *c);
static bool tls_seal(eb_http_conn *c, write_req *wr, uv_buf_t *bufs, unsigned *n);
static void tls_in(eb_http_conn *c, const char *data, size_t len);
static void tls_write(eb_http_conn *c, const char *p, size_t n);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_deadline(uv_timer_t *t);
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
    c->in_bytes += r->body_len;
}

/* Whether the connection holds as much as it may: read no more for now. */
static bool conn_full(const eb_http_conn *c)
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
    if (c->srv->opts.on_answer)
        c->srv->opts.on_answer(c->srv->ud, req, status, body, len);
    req->resp = format_answer(c->srv, req, status, content_type, body, len, &req->resp_len);
    if (!req->resp) {
        static const char oom[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        req->resp = strdup(oom);
        req->resp_len = req->resp ? sizeof oom - 1 : 0;
        req->keep_alive = false;
    }
    c->out_bytes += req->resp_len;
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

void eb_http_req_peer_name(const eb_http_req *req, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    char ip[64];
    snprintf(buf, cap, "-");
    if (eb_http_req_peer(req, &ss) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        if (uv_ip6_name(a, ip, sizeof ip) == 0)
            snprintf(buf, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        if (uv_ip4_name(a, ip, sizeof ip) == 0)
            snprintf(buf, cap, "%s:%u", ip, ntohs(a->sin_port));
    }
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
    c->out_bytes -= wr->bytes;
    bool close_after = wr->close_after;
    free(wr);
    if (status < 0)
        conn_close(c);
    else if (close_after)
        conn_linger(c);
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
            conn_close(c);
            return;
        }
        if (write_now(c, &rest, &nrest)) {
            bool close_after = wr->close_after;
            for (size_t i = 0; i < wr->n; i++)
                free(wr->bufs[i]);
            c->out_bytes -= wr->bytes;
            free(wr);
            if (close_after) {
                conn_linger(c);
                return;
            }
            continue;
        }
        if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, rest, nrest, on_written) != 0) {
            for (size_t i = 0; i < wr->n; i++)
                free(wr->bufs[i]);
            c->out_bytes -= wr->bytes;
            free(wr);
            conn_close(c);
            return;
        }
        if (wr->close_after) {
            c->closing = true;
            return;
        }
    }
    if (c->closing && !c->q_head && !c->out_bytes) /* last answers written */
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
    eb_http_respond(r, status, "application/json", body, (size_t)n);
}

/* --- requests from the reader ----------------------------------------------- */

/* A complete request: into the answer queue, then to the handler. The
 * reader pauses after it when the connection is full (or closing). */
static void on_request(void *arg, eb_http_req *r)
{
    eb_http_conn *c = arg;
    if (c->closed) { /* closed by the handler of an earlier request in this read */
        eb__http_req_free(r);
        eb__http_reader_pause(&c->rd);
        return;
    }
    r->keep_alive = r->keep_alive && !c->srv->stopping;
    enqueue(c, r);
    c->srv->stats.requests++;
    if (c->srv->opts.timed)
        r->start_ns = uv_hrtime();
    c->srv->handler(c->srv->ud, r);
    if (c->closed || c->closing || conn_full(c))
        eb__http_reader_pause(&c->rd);
}

static void on_continue(void *arg)
{
    eb_http_conn *c = arg;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (c->tls) {
        tls_write(c, cont, sizeof cont - 1);
        return;
    }
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
    if (c->lingering)
        s->lingering--;
    if (s->at_cap && s->stats.open_connections < s->opts.max_connections) {
        s->at_cap = false;
        if (s->opts.warn)
            s->opts.warn(s->opts.warn_arg, "connections back under the limit: accepting again");
    }
    eb__http_reader_free(&c->rd); /* a request begun after conn_close, in the same read */
    eb__tls_conn_free(c->tls);
    eb_buf_free(&c->held);
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
    c->queued = 0;
    c->in_bytes = 0;
    eb__http_reader_free(&c->rd);
    eb_buf_free(&c->held);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
    uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* After a final answer (an error, a refusal): closing at once while the
 * client's bytes are unread makes the kernel send RST, which can destroy
 * the answer before the client reads it. So shut our side down, read and
 * drop what comes until EOF, and close then or after 2 s (nginx's
 * lingering close). At most MAX_LINGERING at a time: in a flood of
 * refused connections the descriptors matter more. */
#define MAX_LINGERING 32 /* more close at once: each holds a descriptor */

static void conn_linger(eb_http_conn *c)
{
    if (c->closed || c->lingering)
        return;
    if (c->srv->lingering >= MAX_LINGERING) { /* a flood: descriptors first */
        conn_close(c);
        return;
    }
    c->srv->lingering++;
    c->lingering = c->closing = true;
    eb__http_reader_free(&c->rd);
    eb_buf_free(&c->held);
    uv_shutdown_t *sr = malloc(sizeof *sr);
    if (!sr || uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sr);
        conn_close(c);
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    uv_timer_start(&c->deadline, on_deadline, 2000, 0);
}

static void on_idle(uv_timer_t *t)
{
    eb_http_conn *c = t->data;
    /* a request being read has its own deadline; answers being written
     * (out_bytes) are not cut off */
    if (!c->q_head && !c->out_bytes && (!c->rd.cur || c->closing))
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* the loop thread reads one chunk at a time */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void stop_reading(eb_http_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void parse_error(eb_http_conn *c, int status)
{
    c->srv->stats.bad_requests++;
    if (status == 413)
        answer_error(c, 413, "payload_too_large", "request body over the server's limit");
    else if (status == 431)
        answer_error(c, 431, "headers_too_large", "too many or too large request headers");
    else
        answer_error(c, 400, "bad_request", "malformed HTTP request");
    stop_reading(c);
}

/* The request being read: its head within header_timeout_ms of its first
 * byte, all of it within body_timeout_ms. The clock runs only while we
 * read (a connection paused by back-pressure is waiting for us). */
/* Whether the client closed (FIN or RST) a connection we are not reading:
 * its EOF waits behind the bytes we left unread, so ask the kernel. */
static bool peer_closed(eb_http_conn *c)
{
    uv_os_fd_t fd;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    return ti.tcpi_state == TCP_CLOSE_WAIT || ti.tcpi_state == TCP_CLOSE;
}

#define PAUSED_CHECK_MS 250 /* how often a paused connection is checked */

static void on_deadline(uv_timer_t *t)
{
    eb_http_conn *c = t->data;
    c->dl_on = false;
    if (c->lingering) {
        conn_close(c);
        return;
    }
    if (!c->reading && !c->closed) { /* paused: release it if its client left */
        if (peer_closed(c)) {
            c->peer_eof = true;
            conn_close(c);
        } else {
            uv_timer_start(&c->deadline, on_deadline, PAUSED_CHECK_MS, 0);
            c->dl_on = true;
            c->dl_due = 0;
        }
        return;
    }
    if (c->closed || c->closing || !c->rd.cur)
        return;
    c->srv->stats.timeouts++;
    c->srv->stats.bad_requests++;
    if (c->rd.head_done)
        answer_error(c, 408, "request_timeout", "the request body did not arrive in time");
    else
        answer_error(c, 408, "request_timeout", "the request headers did not arrive in time");
    stop_reading(c);
}

static void arm_deadline(eb_http_conn *c)
{
    const eb_http_opts *o = &c->srv->opts;
    if (c->closed || c->lingering)
        return;
    if (!c->reading && !c->closing && !c->peer_eof) {
        /* paused by back-pressure: no deadline (we are the slow one), but
         * a check that the client is still there */
        if (!c->dl_on || c->dl_due) {
            uv_timer_start(&c->deadline, on_deadline, PAUSED_CHECK_MS, 0);
            c->dl_on = true;
            c->dl_due = 0;
        }
        c->dl_start = 0; /* a paused request's clock starts again */
        return;
    }
    if (!c->rd.cur || c->closing) {
        if (c->dl_on)
            uv_timer_stop(&c->deadline);
        c->dl_on = false;
        c->dl_start = 0;
        return;
    }
    uint64_t now = uv_now(c->srv->loop);
    if (!c->dl_start || c->dl_begun != c->rd.begun) {
        c->dl_begun = c->rd.begun;
        c->dl_start = now;
    }
    uint64_t due = c->dl_start + (c->rd.head_done ? o->body_timeout_ms : o->header_timeout_ms);
    if (!c->dl_on || c->dl_due != due) {
        uv_timer_start(&c->deadline, on_deadline, due > now ? due - now : 0, 0);
        c->dl_on = true;
        c->dl_due = due;
    }
}

/* Parses data; the bytes after a pause are kept in held. */
static void parse(eb_http_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    c->feeding = true;
    int status = eb__http_reader_feed(&c->rd, data, len, &used);
    c->feeding = false;
    if (c->closed)
        return;
    if (status)
        parse_error(c, status);
    else if (used < len && !c->closing)
        eb_buf_append(&c->held, data + used, len - used);
}

/* Parses held bytes while the connection has room, then reads from the
 * socket only if nothing is held and there is room. */
/* Bytes for the reader: parsed now, or held behind bytes already held. */
static void plain_in(eb_http_conn *c, const char *data, size_t len)
{
    if (c->held.len)
        eb_buf_append(&c->held, data, len);
    else
        parse(c, data, len);
}

static void pump(eb_http_conn *c)
{
    if (c->lingering)
        return;
    while (!c->feeding && !c->closed && !c->closing && c->held.len && !conn_full(c)) {
        eb_buf b = c->held;
        c->held = (eb_buf)EB_BUF_INIT;
        parse(c, b.data, b.len);
        eb_buf_free(&b);
    }
    if (c->closed)
        return;
    if (eb_buf_failed(&c->held)) {
        conn_close(c);
        return;
    }
    bool want = !c->closing && !c->peer_eof && !c->held.len && !conn_full(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want) {
        stop_reading(c);
    }
    arm_deadline(c);
}

static void resume_reading(eb_http_conn *c)
{
    if (!c->feeding)
        pump(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    eb_http_conn *c = st->data;
    if (c->lingering) { /* what the client still sends is dropped */
        if (nread < 0)
            conn_close(c);
        return;
    }
    if (nread < 0) {
        /* EOF or an error: the client is gone (nginx treats an EOF while
         * it waits the same way). Unanswered requests are released as
         * they are answered; nothing more is written. */
        c->peer_eof = true;
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    uv_timer_again(&c->idle);
    if (c->closing || c->closed)
        return;
    if (c->tls) /* the plaintext goes to plain_in */
        tls_in(c, buf->base, (size_t)nread);
    else
        plain_in(c, buf->base, (size_t)nread);
    if (!c->closed)
        pump(c);
}

/* Answers a connection we cannot serve (at the cap) with 503 and closes it. */
static void refuse(eb_http_conn *c, const char *msg)
{
    c->srv->stats.refused++;
    answer_error(c, 503, "too_many_connections", msg);
}

/* Out of descriptors (EMFILE/ENFILE): give up the reserve one, accept
 * what waits, answer it 503 and close it, take the reserve back. Without
 * this the listener stays readable and the loop spins. */
static void warn(eb_http_server *s, const char *msg)
{
    if (s->opts.warn)
        s->opts.warn(s->opts.warn_arg, msg);
}

static void log_out_of_fds(eb_http_server *s, const char *why, int n)
{
    uint64_t now = uv_now(s->loop);
    if (s->emfile_logged && now - s->emfile_logged < 10000)
        return; /* once per 10 s */
    char msg[240];
    snprintf(msg, sizeof msg, "out of file descriptors (%s, limit %llu) accepting "
             "connections: %d answered 503 and closed; raise ulimit -n or lower "
             "--max-connections", why, (unsigned long long)s->fd_limit, n);
    warn(s, msg);
    s->emfile_logged = now;
}

static void shed_connections(eb_http_server *s, int status)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
        "application/json\r\nContent-Length: 99\r\nConnection: close\r\n\r\n"
        "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"server out of "
        "descriptors\",\"details\":[]}}";
    int lfd = -1;
    if (uv_fileno((uv_handle_t *)&s->listener, &lfd) != 0)
        return;
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    s->reserve_fd = -1;
    int n = 0;
    for (int fd; n < 256 && (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;
         n++) {
        ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
        s->stats.refused++;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    log_out_of_fds(s, uv_err_name(status), n);
}

/* The last FD_RESERVE descriptors are kept for the logs and libuv: a
 * connection that lands there is refused as if we were out of them (an
 * accept() that fails with EMFILE is libuv's, which drops it unanswered). */
#define FD_RESERVE 16

static bool in_fd_reserve(eb_http_server *s, eb_http_conn *c)
{
    uv_os_fd_t fd;
    return s->fd_limit > FD_RESERVE && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
           (uint64_t)fd >= s->fd_limit - FD_RESERVE;
}

static void on_connection(uv_stream_t *server, int status)
{
    eb_http_server *s = server->data;
    if (status == UV_EMFILE || status == UV_ENFILE)
        shed_connections(s, status);
    if (status < 0)
        return;
    eb_http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->refs = 3;
    uv_timer_init(s->loop, &c->idle);
    c->idle.data = c;
    uv_timer_init(s->loop, &c->deadline);
    c->deadline.data = c;
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
    if (s->tls && !(c->tls = eb__tls_conn_new(s->tls))) {
        conn_close(c);
        return;
    }
    eb__http_reader_init(&c->rd, &s->opts, on_request, on_continue, c);
    if (in_fd_reserve(s, c)) {
        log_out_of_fds(s, "EMFILE ahead", 1);
        refuse(c, "the server is out of file descriptors; retry later");
        return;
    }
    if (s->stats.open_connections > s->opts.max_connections) {
        if (!s->at_cap) {
            char msg[160];
            snprintf(msg, sizeof msg, "connection limit reached (%u open, --max-connections): "
                     "new connections get 503 until some close", s->opts.max_connections);
            warn(s, msg);
            s->at_cap = true;
        }
        refuse(c, "the server has as many connections as it may hold; retry later");
        return;
    }
    uv_timer_start(&c->idle, on_idle, s->opts.idle_timeout_ms, s->opts.idle_timeout_ms);
    pump(c);
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
#define DEFAULT(field, v) \
    if (!s->opts.field)    \
        s->opts.field = (v)
    DEFAULT(max_body, (1u << 20) + (64u << 10));
    DEFAULT(max_header_bytes, 16u << 10);
    DEFAULT(max_headers, 100);
    DEFAULT(idle_timeout_ms, 60000);
    DEFAULT(max_pipelined, 128);
    DEFAULT(max_conn_buffer, 4u << 20);
    DEFAULT(header_timeout_ms, 10000);
    DEFAULT(body_timeout_ms, 120000);
    DEFAULT(max_connections, 1024);
#undef DEFAULT
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct rlimit rl;
    s->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                      ? (uint64_t)rl.rlim_cur : 0;
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
        if (!c->q_head && !c->out_bytes) /* a request half read is dropped */
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
    if (s && s->reserve_fd >= 0)
        close(s->reserve_fd);
    free(s);
}

void eb_http_server_stats(const eb_http_server *s, eb_http_stats *st)
{
    *st = s->stats;
}

/* --- the peer's address (for the API's auth backoff) ---------------------- */

int eb_http_req_peer(const eb_http_req *req, struct sockaddr_storage *out)
{
    eb_http_conn *c = req->conn;
    if (!c)
        return EB_ECLOSED;
    int len = sizeof c->peer;
    if (!c->peer.ss_family && /* asked once per connection */
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0) {
        c->peer.ss_family = 0;
        return EB_EIO;
    }
    *out = c->peer;
    return 0;
}

/* --- the TLS transport (tls.h) ----------------------------------------------
 * With a TLS context, bytes from the socket go through tls_in (handshake,
 * then plaintext to the reader) and answers are sealed into records just
 * before they are written; the rest of this file sees plaintext only. */

void eb_http_server_set_tls(eb_http_server *s, eb_tls *tls)
{
    s->tls = tls;
}

bool eb_http_req_tls_cn(const eb_http_req *req, char *buf, size_t cap)
{
    return req->conn && req->conn->tls && eb__tls_conn_peer_cn(req->conn->tls, buf, cap);
}

/* Writes n bytes of records (taking p, malloc'd), in order after earlier writes. */
static void wire_write(eb_http_conn *c, char *p, size_t n)
{
    write_req *wr = calloc(1, sizeof *wr);
    if (!wr) {
        free(p);
        conn_close(c);
        return;
    }
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
        conn_close(c);
    }
}

static void wire_write_buf(eb_http_conn *c, eb_buf *b)
{
    if (eb_buf_failed(b)) {
        eb_buf_free(b);
        conn_close(c);
    } else if (b->len) {
        size_t n;
        char *p = eb_buf_steal(b, &n);
        wire_write(c, p, n);
    } else {
        eb_buf_free(b);
    }
}

typedef struct tls_read {
    eb_http_conn *c;
    eb_buf        out; /* records for the wire, made before the plaintext came */
} tls_read;

/* Plaintext from the records: what went before it (session tickets) goes
 * out first, since answers the reader may give are sealed after it. */
static void tls_plain(void *arg, const char *p, size_t n)
{
    tls_read *t = arg;
    if (t->out.len && !t->c->closed)
        wire_write_buf(t->c, &t->out);
    if (!t->c->closed && !t->c->closing)
        plain_in(t->c, p, n);
}

static void tls_in(eb_http_conn *c, const char *data, size_t len)
{
    tls_read t = {c, EB_BUF_INIT};
    int rc = eb__tls_conn_feed(c->tls, data, len, tls_plain, &t, &t.out);
    if (c->closed) {
        eb_buf_free(&t.out);
        return;
    }
    wire_write_buf(c, &t.out);
    if (rc && !c->closed) { /* a failed handshake or a bad record: the alert went out */
        if (c->q_head) {
            c->closing = true;
        } else {
            conn_close(c);
        }
    }
}

static void tls_write(eb_http_conn *c, const char *p, size_t n)
{
    eb_buf out = EB_BUF_INIT;
    eb__tls_conn_seal(c->tls, p, n, &out);
    wire_write_buf(c, &out);
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
