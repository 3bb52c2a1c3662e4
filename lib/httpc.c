/* httpc.c - the client library's HTTP/1.1 connection (see httpc.h). */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->answers = 0;
}

void eb__http_close(eb__http *h)
{
    disconnect(h);
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
    while (g == 0 && (g = gai_error(&l->cb)) == EAI_INPROGRESS) {
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
    return rc;
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

static int on_complete(http_parser *p)
{
    eb__http *h = p->data;
    if (p->status_code < 200) /* an interim 1xx answer: the real one follows */
        return 0;
    h->status = p->status_code;
    h->done = true;
    h->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* nothing after it belongs to us */
    return 0;
}

static const http_parser_settings answer_settings = {
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
    *got = false;
    while (!h->done) {
        ssize_t n = recv(h->fd, buf, sizeof buf, 0);
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

int eb__http_do(eb__http *h, const char *method, const char *path, const char *body,
                size_t blen, uint32_t timeout_ms, int *status, eb_buf *answer)
{
    uint64_t deadline = eb_clock_mono_ms() + timeout_ms;
    h->answer = answer;
    h->err[0] = '\0';
    if (canceled(h)) /* raised before the call: send nothing */
        return fail(h, EB_ECANCELED, "canceled");
    for (int attempt = 0;; attempt++) {
        eb_buf_reset(answer);
        bool reused = h->fd >= 0, got = false;
        int rc = reused ? 0 : do_connect(h);
        if (rc)
            return rc;
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
        if (!(reused && !got && rc == EB_ECONNECT && attempt == 0))
            return rc;
    }
}
