/* http.c - HTTP/1.1 server: listening, accepting and shutting down (http.h).
 *
 * The server accepts connections under its limits (--max-connections, and
 * a reserve of file descriptors: a connection it cannot serve is answered
 * 503 and closed, and running out of descriptors sheds what waits instead
 * of spinning) and hands each to conn.c, which reads its requests; answers
 * leave through answer.c's queue. http_int.h maps the files. */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eventbus/err.h"

/* Answers a connection we cannot serve (at the cap) with 503 and closes it. */
static void refuse(eb_http_conn *c, const char *msg)
{
    c->srv->stats.refused++;
    eb__http_answer_error(c, 503, "too_many_connections", msg);
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
    eb_http_conn *c = eb_xcalloc(1, sizeof *c);
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
        eb__http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->tls && !(c->tls = eb__tls_conn_new(s->tls))) {
        eb__http_conn_close(c);
        return;
    }
    eb__http_conn_init_reader(c);
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
    eb__http_conn_start(c);
}

/* --- server ------------------------------------------------------------------ */

int eb_http_server_new(uv_loop_t *loop, const eb_http_opts *o, eb_http_handler h, void *ud,
                       eb_http_server **out)
{
    eb_http_server *s = eb_xcalloc(1, sizeof *s);
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

void eb__http_server_maybe_done(eb_http_server *s)
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
    eb__http_server_maybe_done(s);
}

void eb_http_server_shutdown(eb_http_server *s, void (*done)(void *), void *arg)
{
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (eb_http_conn *c = s->conns, *nx; c; c = nx) {
        nx = c->next;
        if (!c->q_head && !c->out_bytes) /* a request half read is dropped */
            eb__http_conn_close(c);
        else
            c->closing = true;
    }
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    else
        eb__http_server_maybe_done(s);
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

/* --- the TLS transport (tls.h) ----------------------------------------------
 * With a TLS context, bytes from the socket go through conn.c's tls_in
 * (handshake, then plaintext to the reader) and answers are sealed into
 * records just before answer.c writes them; the rest sees plaintext only. */

void eb_http_server_set_tls(eb_http_server *s, eb_tls *tls)
{
    s->tls = tls;
}
