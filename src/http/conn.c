/* conn.c - one HTTP connection's lifetime (http_int.h).
 *
 * Bytes from the socket (through TLS first, when the server has it) go to
 * the connection's request reader (reader.c); each complete request joins
 * the answer queue (answer.c) and goes to the handler. Reading stops while
 * the connection holds too much (requests, bytes): the bytes read past
 * that point wait in `held` and are parsed when the answers drain. A
 * request being read has deadlines; an idle keep-alive connection is
 * closed; a final answer is followed by a lingering close. */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "eventbus/err.h"

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_deadline(uv_timer_t *t);
static void tls_in(eb_http_conn *c, const char *data, size_t len);

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
    eb__http_enqueue(c, r);
    c->srv->stats.requests++;
    if (c->srv->opts.timed)
        r->start_ns = uv_hrtime();
    c->srv->handler(c->srv->ud, r);
    if (c->closed || c->closing || eb__http_conn_full(c))
        eb__http_reader_pause(&c->rd);
}

static void on_continue(void *arg)
{
    eb_http_conn *c = arg;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (c->tls) {
        eb__http_tls_write(c, cont, sizeof cont - 1);
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)cont, sizeof cont - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
}

void eb__http_conn_init_reader(eb_http_conn *c)
{
    eb__http_reader_init(&c->rd, &c->srv->opts, on_request, on_continue, c);
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
    eb__http_server_maybe_done(s);
}

void eb__http_conn_close(eb_http_conn *c)
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

void eb__http_conn_linger(eb_http_conn *c)
{
    if (c->closed || c->lingering)
        return;
    if (c->srv->lingering >= MAX_LINGERING) { /* a flood: descriptors first */
        eb__http_conn_close(c);
        return;
    }
    c->srv->lingering++;
    c->lingering = c->closing = true;
    eb__http_reader_free(&c->rd);
    eb_buf_free(&c->held);
    uv_shutdown_t *sr = eb_xmalloc(sizeof *sr);
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sr);
        eb__http_conn_close(c);
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
        eb__http_conn_close(c);
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
        eb__http_answer_error(c, 413, "payload_too_large", "request body over the server's limit");
    else if (status == 431)
        eb__http_answer_error(c, 431, "headers_too_large", "too many or too large request headers");
    else
        eb__http_answer_error(c, 400, "bad_request", "malformed HTTP request");
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
        eb__http_conn_close(c);
        return;
    }
    if (!c->reading && !c->closed) { /* paused: release it if its client left */
        if (peer_closed(c)) {
            c->peer_eof = true;
            eb__http_conn_close(c);
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
        eb__http_answer_error(c, 408, "request_timeout", "the request body did not arrive in time");
    else
        eb__http_answer_error(c, 408, "request_timeout", "the request headers did not arrive in time");
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
    while (!c->feeding && !c->closed && !c->closing && c->held.len && !eb__http_conn_full(c)) {
        eb_buf b = c->held;
        c->held = (eb_buf)EB_BUF_INIT;
        parse(c, b.data, b.len);
        eb_buf_free(&b);
    }
    if (c->closed)
        return;
    if (eb_buf_failed(&c->held)) {
        eb__http_conn_close(c);
        return;
    }
    bool want = !c->closing && !c->peer_eof && !c->held.len && !eb__http_conn_full(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want) {
        stop_reading(c);
    }
    arm_deadline(c);
}

void eb__http_conn_start(eb_http_conn *c)
{
    uv_timer_start(&c->idle, on_idle, c->srv->opts.idle_timeout_ms, c->srv->opts.idle_timeout_ms);
    pump(c);
}

void eb__http_conn_resume(eb_http_conn *c)
{
    if (!c->feeding)
        pump(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    eb_http_conn *c = st->data;
    if (c->lingering) { /* what the client still sends is dropped */
        if (nread < 0)
            eb__http_conn_close(c);
        return;
    }
    if (nread < 0) {
        /* EOF or an error: the client is gone (nginx treats an EOF while
         * it waits the same way). Unanswered requests are released as
         * they are answered; nothing more is written. */
        c->peer_eof = true;
        eb__http_conn_close(c);
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

/* --- what a request knows of its connection -------------------------------- */

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

bool eb_http_req_tls_cn(const eb_http_req *req, char *buf, size_t cap)
{
    return req->conn && req->conn->tls && eb__tls_conn_peer_cn(req->conn->tls, buf, cap);
}

/* --- the TLS transport's input (tls.h) -------------------------------------- */

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
        eb__http_wire_write_buf(t->c, &t->out);
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
    eb__http_wire_write_buf(c, &t.out);
    if (rc && !c->closed) { /* a failed handshake or a bad record: the alert went out */
        if (c->q_head) {
            c->closing = true;
        } else {
            eb__http_conn_close(c);
        }
    }
}

