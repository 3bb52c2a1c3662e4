/* httpc.c - the client library's HTTP/1.1 connection (see httpc.h). */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "eventbus.h"
#include "util/clock.h"

#define SLICE_MS 100 /* longest wait between two looks at the cancel flags */


static int fail(eb__http *h, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(eb__http *h, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
    return code;
}

static bool canceled(const eb__http *h)
{
    return (h->cancel[0] && *h->cancel[0]) || (h->cancel[1] && *h->cancel[1]);
}

void eb__http_init(eb__http *h, const char *host, const char *port, uint32_t connect_timeout_ms)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    snprintf(h->host, sizeof h->host, "%s", host);
    snprintf(h->port, sizeof h->port, "%s", port);
    if (strchr(host, ':'))
        snprintf(h->hosthdr, sizeof h->hosthdr, "[%s]:%s", host, port);
    else
        snprintf(h->hosthdr, sizeof h->hosthdr, "%s:%s", host, port);
    h->connect_timeout_ms = connect_timeout_ms;
    eb_buf_init(&h->head);
}

static void disconnect(eb__http *h)
{
    if (h->ssl) {
        SSL_free(h->ssl); /* no close_notify wait: the socket goes too */
        h->ssl = NULL;
    }
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->answers = 0;
}

void eb__http_close(eb__http *h)
{
    disconnect(h);
    SSL_CTX_free(h->tls);
    h->tls = NULL;
    eb_buf_free(&h->head);
}

/* Waits until fd is ready for `events`, the deadline passes, or a cancel
 * flag rises. Returns 0, EB_ETIMEDOUT or EB_ECANCELED. */
static int wait_fd(eb__http *h, short events, uint64_t deadline)
{
    for (;;) {
        if (canceled(h))
            return fail(h, EB_ECANCELED, "canceled");
        uint64_t now = eb_clock_mono_ms();
        if (now >= deadline)
            return fail(h, EB_ETIMEDOUT, "no answer from %s in time", h->hosthdr);
        uint64_t left = deadline - now;
        struct pollfd p = {.fd = h->fd, .events = events};
        int n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return fail(h, EB_ECONNECT, "poll: %s", strerror(errno));
    }
}

/* Tries one resolved address; 0 with h->fd connected, or an error. */
static int connect_addr(eb__http *h, const struct addrinfo *ai, uint64_t deadline)
{
    h->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   ai->ai_protocol);
    if (h->fd < 0)
        return fail(h, EB_ECONNECT, "socket: %s", strerror(errno));
    if (connect(h->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            disconnect(h);
            return fail(h, EB_ECONNECT, "cannot connect to %s: %s", h->hosthdr, strerror(e));
        }
        int rc = wait_fd(h, POLLOUT, deadline);
        if (rc) {
            disconnect(h);
            return rc == EB_ETIMEDOUT
                       ? fail(h, EB_ECONNECT, "cannot connect to %s: timed out", h->hosthdr)
                       : rc;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            disconnect(h);
            return fail(h, EB_ECONNECT, "cannot connect to %s: %s", h->hosthdr, strerror(soerr));
        }
    }
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* A name lookup under the connect deadline and the cancel flags: an IP
 * literal at once, a name through glibc's getaddrinfo_a, waited for in
 * slices. A lookup cut short is cancelled; if the resolver cannot cancel
 * it, its request block is left to it (a small, bounded leak per timeout,
 * rather than a wait past the deadline). */
typedef struct lookup {
    struct gaicb    cb;
    struct addrinfo hints;
    char            host[256], port[8];
} lookup;

static int resolve(eb__http *h, uint64_t deadline, struct addrinfo **res)
{
    struct addrinfo num = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    if (getaddrinfo(h->host, h->port, &num, res) == 0)
        return 0;
    lookup *l = calloc(1, sizeof *l);
    if (!l)
        return fail(h, EB_ENOMEM, "out of memory");
    snprintf(l->host, sizeof l->host, "%s", h->host);
    snprintf(l->port, sizeof l->port, "%s", h->port);
    l->hints = (struct addrinfo){.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    l->cb = (struct gaicb){.ar_name = l->host, .ar_service = l->port, .ar_request = &l->hints};
    struct gaicb *list[1] = {&l->cb};
    int g = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (g == 0)
        g = gai_error(&l->cb);
    for (; g == EAI_INPROGRESS; g = gai_error(&l->cb)) {
        uint64_t now = eb_clock_mono_ms();
        if (canceled(h) || now >= deadline) {
            bool cancel = canceled(h);
            if (gai_cancel(&l->cb) != EAI_NOTCANCELED) {
                if (gai_error(&l->cb) == 0)
                    freeaddrinfo(l->cb.ar_result);
                free(l);
            }
            return cancel ? fail(h, EB_ECANCELED, "canceled")
                          : fail(h, EB_ECONNECT, "cannot resolve %s: timed out", h->host);
        }
        uint64_t left = deadline - now;
        struct timespec ts = {0, (long)(left < SLICE_MS ? left : SLICE_MS) * 1000000L};
        gai_suspend((const struct gaicb *const *)list, 1, &ts);
    }
    *res = l->cb.ar_result;
    free(l);
    if (g != 0)
        return fail(h, EB_ECONNECT, "cannot resolve %s: %s", h->host, gai_strerror(g));
    return 0;
}

static int tls_connect(eb__http *h, uint64_t deadline);

static int do_connect(eb__http *h)
{
    uint64_t deadline = eb_clock_mono_ms() + h->connect_timeout_ms;
    struct addrinfo *res = NULL;
    int g = resolve(h, deadline, &res);
    if (g != 0)
        return g;
    int rc = EB_ECONNECT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_addr(h, ai, deadline);
        if (rc == 0 || rc == EB_ECANCELED)
            break;
    }
    freeaddrinfo(res);
    if (rc == 0 && h->tls && (rc = tls_connect(h, deadline)) != 0)
        disconnect(h);
    return rc;
}

/* --- TLS ------------------------------------------------------------------ *
 * OpenSSL over the non-blocking socket: every WANT_READ / WANT_WRITE waits
 * with wait_fd, so the handshake and each record fall under the deadline
 * and the cancel flags like plain reads and writes. */

int eb__http_set_tls(eb__http *h, const char *cafile)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return EB_ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    int ok = cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
                    : SSL_CTX_set_default_verify_paths(ctx);
    ERR_clear_error();
    if (ok != 1) {
        SSL_CTX_free(ctx);
        return EB_EINVAL;
    }
    SSL_CTX_free(h->tls);
    h->tls = ctx;
    return 0;
}

/* OpenSSL writes with write(2), not send(2) with MSG_NOSIGNAL: a peer gone
 * would raise SIGPIPE in the program. So each TLS call runs with SIGPIPE
 * blocked for this thread, and a SIGPIPE it raised is taken before the
 * mask is restored (as libcurl does). */
typedef struct pipe_guard {
    sigset_t old;
    bool     was_pending; /* a SIGPIPE was already pending: not ours to take */
} pipe_guard;

static void pipe_block(pipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_restore(pipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* The reason of the last TLS failure, for messages. */
static const char *tls_reason(eb__http *h, char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    long v = h->ssl ? SSL_get_verify_result(h->ssl) : X509_V_OK;
    if (v != X509_V_OK)
        snprintf(buf, cap, "certificate not trusted: %s", X509_verify_cert_error_string(v));
    else if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "the connection closed");
    ERR_clear_error();
    return buf;
}

/* After SSL_* returned r <= 0: waits as asked (0 to retry), or fails. */
static int tls_wait(eb__http *h, int r, uint64_t deadline, const char *what)
{
    int e = SSL_get_error(h->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(h, POLLIN, deadline);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(h, POLLOUT, deadline);
    char why[256];
    return fail(h, EB_ECONNECT, "TLS %s with %s failed: %s", what, h->hosthdr,
                tls_reason(h, why, sizeof why));
}

static int tls_connect(eb__http *h, uint64_t deadline)
{
    if (!(h->ssl = SSL_new(h->tls)) || SSL_set_fd(h->ssl, h->fd) != 1)
        return fail(h, EB_ENOMEM, "out of memory");
    unsigned char ip[16];
    bool literal = inet_pton(AF_INET, h->host, ip) == 1 || inet_pton(AF_INET6, h->host, ip) == 1;
    if (literal)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), h->host);
    else if (SSL_set1_host(h->ssl, h->host) != 1 ||
             SSL_set_tlsext_host_name(h->ssl, h->host) != 1)
        return fail(h, EB_EINVAL, "cannot use %s as a TLS server name", h->host);
    for (;;) {
        pipe_guard g;
        pipe_block(&g);
        int r = SSL_connect(h->ssl);
        pipe_restore(&g);
        if (r == 1)
            return 0;
        int rc = tls_wait(h, r, deadline, "handshake");
        if (rc)
            return rc;
    }
}

/* Writes all of p under the deadline. */
static int tls_send(eb__http *h, const char *p, size_t n, uint64_t deadline)
{
    while (n) {
        pipe_guard g;
        pipe_block(&g);
        int r = SSL_write(h->ssl, p, n > 1u << 30 ? 1 << 30 : (int)n);
        pipe_restore(&g);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        int rc = tls_wait(h, r, deadline, "write");
        if (rc)
            return rc;
    }
    return 0;
}

/* Like recv(): > 0 bytes, 0 at the end, -1 with errno EAGAIN after waiting
 * is needed (done here: the caller just calls again), or an error in *rc. */
static ssize_t tls_recv(eb__http *h, char *buf, size_t cap, uint64_t deadline, int *rc)
{
    pipe_guard g;
    pipe_block(&g);
    int r = SSL_read(h->ssl, buf, (int)cap);
    pipe_restore(&g);
    if (r > 0)
        return r;
    int e = SSL_get_error(h->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
        ERR_clear_error();
        return 0;
    }
    *rc = tls_wait(h, r, deadline, "read");
    errno = EAGAIN;
    return -1;
}

/* --- sending ------------------------------------------------------------- */

static int send_all(eb__http *h, struct iovec *iov, int niov, uint64_t deadline)
{
    while (niov > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t n = sendmsg(h->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int rc = wait_fd(h, POLLOUT, deadline);
                if (rc)
                    return rc;
                continue;
            }
            return fail(h, EB_ECONNECT, "connection to %s broke: %s", h->hosthdr, strerror(errno));
        }
        size_t left = (size_t)n;
        while (niov > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            niov--;
        }
        if (niov > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int eb__http_set_token(eb__http *h, const char *token)
{
    size_t n = strlen(token);
    if (!n || n > 512 || strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789-._~+/=") != n)
        return EB_EINVAL;
    snprintf(h->auth, sizeof h->auth, "Authorization: Bearer %s\r\n", token);
    return 0;
}

static int send_request(eb__http *h, const char *method, const char *path, const char *body,
                        size_t blen, uint64_t deadline)
{
    eb_buf_reset(&h->head);
    eb_buf_printf(&h->head,
                  "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: libeventbus/%d.%d.%d\r\n"
                  "Accept: application/json\r\n",
                  method, path, h->hosthdr, EB_VERSION_MAJOR, EB_VERSION_MINOR, EB_VERSION_PATCH);
    eb_buf_puts(&h->head, h->auth);
    if (blen || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        eb_buf_printf(&h->head, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    eb_buf_puts(&h->head, "\r\n");
    if (eb_buf_failed(&h->head))
        return fail(h, EB_ENOMEM, "out of memory");
    if (h->ssl) { /* one record for a small request, as one write would be */
        if (blen && blen <= 16384) {
            eb_buf_append(&h->head, body, blen);
            if (eb_buf_failed(&h->head))
                return fail(h, EB_ENOMEM, "out of memory");
            return tls_send(h, h->head.data, h->head.len, deadline);
        }
        int rc = tls_send(h, h->head.data, h->head.len, deadline);
        return rc ? rc : tls_send(h, body, blen, deadline);
    }
    struct iovec iov[2] = {{h->head.data, h->head.len}, {(void *)body, blen}};
    return send_all(h, iov, blen ? 2 : 1, deadline);
}

/* --- reading the answer -------------------------------------------------- */

static int on_body(http_parser *p, const char *at, size_t len)
{
    eb__http *h = p->data;
    if (h->answer->len + len > EB__HTTP_MAX_ANSWER)
        return 1;
    eb_buf_append(h->answer, at, len);
    return eb_buf_failed(h->answer) ? 1 : 0;
}

/* Header names and values may come in pieces (one per read): the name is
 * kept until its value starts, and only Eventbus-Leader's value is kept. */
static int on_hfield(http_parser *p, const char *at, size_t len)
{
    eb__http *h = p->data;
    if (h->hstate != 1) {
        h->hstate = 1;
        h->hname_len = 0;
    }
    if (h->hname_len + len <= sizeof h->hname)
        memcpy(h->hname + h->hname_len, at, len);
    h->hname_len += len;
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t len)
{
    eb__http *h = p->data;
    if (h->hstate != 2) {
        h->hstate = 2;
        h->in_leader = h->hname_len == 15 && !strncasecmp(h->hname, "eventbus-leader", 15);
        if (h->in_leader)
            h->leader_len = 0;
    }
    if (!h->in_leader || h->leader_len == SIZE_MAX)
        return 0;
    if (h->leader_len + len >= sizeof h->leader) {
        h->leader_len = SIZE_MAX; /* no URL of ours is that long: ignored */
        h->leader[0] = '\0';
        return 0;
    }
    memcpy(h->leader + h->leader_len, at, len);
    h->leader_len += len;
    h->leader[h->leader_len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    eb__http *h = p->data;
    if (p->status_code < 200) { /* an interim 1xx answer: the real one follows, */
        h->leader[0] = '\0';      /* and an Eventbus-Leader of this one is not its */
        h->leader_len = 0;
        return 0;
    }
    h->status = p->status_code;
    h->done = true;
    h->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* nothing after it belongs to us */
    return 0;
}

static const http_parser_settings answer_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* Feeds n bytes (n == 0: end of stream) to the parser. */
static int feed(eb__http *h, const char *buf, size_t n)
{
    http_parser_execute(&h->parser, &answer_settings, buf, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (h->done)
        return 0;
    if (e == HPE_CB_body)
        return eb_buf_failed(h->answer) ? fail(h, EB_ENOMEM, "out of memory")
                                        : fail(h, EB_ETOOBIG, "answer larger than %zu bytes",
                                               EB__HTTP_MAX_ANSWER);
    if (e != HPE_OK)
        return fail(h, EB_EPROTO, "malformed HTTP answer from %s: %s", h->hosthdr,
                    http_errno_description(e));
    return 0;
}

/* Reads until the answer is complete. *got tells whether any byte came. */
static int read_answer(eb__http *h, uint64_t deadline, bool *got)
{
    char buf[16384];
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->parser.data = h;
    h->done = false;
    h->status = 0;
    h->leader[0] = '\0';
    h->leader_len = 0;
    h->hstate = 0;
    h->in_leader = false;
    *got = false;
    while (!h->done) {
        int trc = 0;
        ssize_t n = h->ssl ? tls_recv(h, buf, sizeof buf, deadline, &trc)
                           : recv(h->fd, buf, sizeof buf, 0);
        if (trc)
            return trc;
        if (n < 0 && h->ssl)
            continue; /* tls_recv waited */
        if (n > 0) {
            *got = true;
            int rc = feed(h, buf, (size_t)n);
            if (rc)
                return rc;
            continue;
        }
        if (n == 0) {
            int rc = feed(h, buf, 0);
            if (rc || h->done)
                return rc;
            h->keep_alive = false;
            return fail(h, EB_ECONNECT, "%s closed the connection %s", h->hosthdr,
                        *got ? "in the middle of an answer" : "without answering");
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(h, POLLIN, deadline);
            if (rc)
                return rc;
            continue;
        }
        return fail(h, EB_ECONNECT, "connection to %s broke: %s", h->hosthdr, strerror(errno));
    }
    return 0;
}

/* A kept connection the server has closed (or sent something unasked on)
 * is readable: such a connection must not carry a request that cannot be
 * sent twice. */
static bool looks_closed(const eb__http *h)
{
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

int eb__http_do(eb__http *h, const char *method, const char *path, const char *body,
                size_t blen, uint32_t timeout_ms, bool resend, int *status, eb_buf *answer)
{
    uint64_t deadline = eb_clock_mono_ms() + timeout_ms;
    h->answer = answer;
    h->err[0] = '\0';
    h->sent = false;
    if (canceled(h)) /* raised before the call: send nothing */
        return fail(h, EB_ECANCELED, "canceled");
    if (!resend && h->fd >= 0 && looks_closed(h))
        disconnect(h);
    for (int attempt = 0;; attempt++) {
        eb_buf_reset(answer);
        bool reused = h->fd >= 0, got = false;
        int rc = reused ? 0 : do_connect(h);
        if (rc)
            return rc;
        h->sent = true;
        rc = send_request(h, method, path, body, blen, deadline);
        if (rc == 0)
            rc = read_answer(h, deadline, &got);
        if (rc == 0) {
            h->answers++;
            *status = h->status;
            if (!h->keep_alive)
                disconnect(h);
            return 0;
        }
        disconnect(h);
        /* A stale keep-alive connection: the server closed it while idle. */
        if (!(resend && reused && !got && rc == EB_ECONNECT && attempt == 0))
            return rc;
    }
}
