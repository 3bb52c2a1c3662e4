/* curl_uv.c - one libcurl multi handle driven by a libuv loop (see
 * curl_uv.h).
 *
 * A connection's socket keeps its uv_poll_t as long as it is open (made
 * when libcurl first asks to watch it, closed from
 * CURLOPT_CLOSESOCKETFUNCTION before the fd can be reused), not per
 * transfer: when libcurl stops watching a kept-alive connection at the
 * end of a transfer (CURL_POLL_REMOVE), the poll stays armed for reading
 * but idle, and the next transfer on that connection, asking for the same
 * events, costs no system call (before: six epoll_ctl and an ioctl, and a
 * handle made and closed, per relayed request; uv_poll_start itself does
 * an epoll_ctl DEL and ADD, so it is called only when the events change).
 * An idle socket that becomes readable (the server closed it, or sent
 * something unasked) is stopped: libcurl finds out when it next uses the
 * connection. Only the sockets libcurl opened for connections (marked by
 * CURLOPT_SOCKOPTFUNCTION, closed through our callback) are kept so;
 * others it watches (its resolver thread's socketpair, closed with a
 * plain close()) get their poll closed at CURL_POLL_REMOVE, as before. */
#include "http/curl_uv.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "util/xmalloc.h"

struct eb_curl_uv {
    uv_loop_t         *loop;
    CURLM             *multi;
    uv_timer_t         timer;   /* CURLMOPT_TIMERFUNCTION's */
    eb_curl_uv_done_fn done;
    void              *arg;
    int                handles; /* open loop handles: freed at 0 once closing */
    bool               closing;
    void             (*closed)(void *arg);
    void              *closed_arg;
    struct sock_ctx  **socks;   /* by fd: the polls of the open sockets, or NULL */
    unsigned char     *conn;    /* by fd: 1 for a connection's socket (see above) */
    size_t             nsocks;  /* entries of both */
};

/* One socket libcurl asked us to watch, until it is closed. */
typedef struct sock_ctx {
    uv_poll_t     poll;
    curl_socket_t fd;
    eb_curl_uv   *c;
    int           events;  /* UV_* being watched, 0: stopped */
    bool          idle;    /* libcurl does not watch it (CURL_POLL_REMOVE) */
} sock_ctx;

static void check_done(eb_curl_uv *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        curl_multi_remove_handle(c->multi, e);
        c->done(c->arg, e, res);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *s = h->data;
    int flags = 0, running;
    if (s->idle) { /* closed by the server while kept, or unasked bytes */
        uv_poll_stop(&s->poll);
        s->events = 0;
        return;
    }
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    eb_curl_uv *c = s->c;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static void on_timer(uv_timer_t *t)
{
    eb_curl_uv *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int start_timeout(CURLM *m, long ms, void *arg)
{
    eb_curl_uv *c = arg;
    (void)m;
    if (ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
    return 0;
}

static void handle_gone(eb_curl_uv *c)
{
    if (--c->handles == 0 && c->closing) {
        if (c->closed)
            c->closed(c->closed_arg);
        free(c);
    }
}

static void sock_closed(uv_handle_t *h)
{
    sock_ctx *s = h->data;
    eb_curl_uv *c = s->c;
    free(s);
    handle_gone(c);
}

static void timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static sock_ctx *sock_get(eb_curl_uv *c, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < c->nsocks ? c->socks[fd] : NULL;
}

/* Grows the tables by fd to hold fd. */
static void sock_room(eb_curl_uv *c, curl_socket_t fd)
{
    if ((size_t)fd < c->nsocks)
        return;
    size_t n = c->nsocks ? c->nsocks : 64;
    while (n <= (size_t)fd)
        n *= 2;
    c->socks = eb_xrealloc(c->socks, n * sizeof *c->socks);
    c->conn = eb_xrealloc(c->conn, n);
    memset(c->socks + c->nsocks, 0, (n - c->nsocks) * sizeof *c->socks);
    memset(c->conn + c->nsocks, 0, n - c->nsocks);
    c->nsocks = n;
}

/* A poll for fd, kept in c->socks[fd]; NULL if libuv refuses the fd. */
static sock_ctx *sock_new(eb_curl_uv *c, curl_socket_t fd)
{
    sock_room(c, fd);
    sock_ctx *s = eb_xcalloc(1, sizeof *s);
    s->fd = fd;
    s->c = c;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->poll.data = s;
    c->handles++;
    c->socks[fd] = s;
    return s;
}

static void sock_drop(sock_ctx *s)
{
    s->c->socks[s->fd] = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int handle_socket(CURL *e, curl_socket_t fd, int action, void *arg, void *sockp)
{
    eb_curl_uv *c = arg;
    sock_ctx *s = sockp ? sockp : sock_get(c, fd);
    (void)e;
    if (action == CURL_POLL_REMOVE) {
        if (s && !c->conn[fd]) { /* not a connection's: closed without our callback */
            curl_multi_assign(c->multi, fd, NULL);
            sock_drop(s);
        } else if (s) { /* kept, watched for reading while idle (see above) */
            curl_multi_assign(c->multi, fd, NULL);
            s->idle = true;
            if (s->events != UV_READABLE) {
                s->events = UV_READABLE;
                uv_poll_start(&s->poll, UV_READABLE, on_poll);
            }
        }
        return 0;
    }
    if (!s && !(s = sock_new(c, fd)))
        return -1;
    if (!sockp)
        curl_multi_assign(c->multi, fd, s);
    s->idle = false;
    int ev = action == CURL_POLL_IN    ? UV_READABLE
           : action == CURL_POLL_OUT   ? UV_WRITABLE
           : action == CURL_POLL_INOUT ? UV_READABLE | UV_WRITABLE
                                       : 0;
    /* libuv's uv_poll_start removes the fd from epoll and adds it again
     * (two system calls) even for the same events: only on a change */
    if (ev != s->events) {
        s->events = ev;
        if (ev)
            uv_poll_start(&s->poll, ev, on_poll);
        else
            uv_poll_stop(&s->poll);
    }
    return 0;
}

/* CURLOPT_SOCKOPTFUNCTION: a connection's socket, close-on-exec (a daemon
 * that re-executes itself keeps none of them), marked as closed through
 * close_socket. */
static int sock_opened(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    eb_curl_uv *c = arg;
    (void)purpose;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    if (fd >= 0) {
        sock_room(c, fd);
        c->conn[fd] = 1;
    }
    return CURL_SOCKOPT_OK;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the poll goes before the fd does (another
 * socket may get its number at once). */
static int close_socket(void *arg, curl_socket_t fd)
{
    eb_curl_uv *c = arg;
    sock_ctx *s = sock_get(c, fd);
    if (s)
        sock_drop(s);
    if (fd >= 0 && (size_t)fd < c->nsocks)
        c->conn[fd] = 0;
    return close(fd);
}

void eb_curl_uv_easy(eb_curl_uv *c, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sock_opened);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, c);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
}

int eb_curl_uv_open(uv_loop_t *loop, eb_curl_uv_done_fn done, void *arg, eb_curl_uv **out)
{
    CURLM *m;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(m = curl_multi_init()))
        return EB_EIO;
    eb_curl_uv *c = eb_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->multi = m;
    c->done = done;
    c->arg = arg;
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, handle_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, start_timeout);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    *out = c;
    return 0;
}

CURLM *eb_curl_uv_multi(eb_curl_uv *c)
{
    return c->multi;
}

void eb_curl_uv_close(eb_curl_uv *c, void (*closed)(void *arg), void *arg)
{
    c->closing = true;
    c->closed = closed;
    c->closed_arg = arg;
    curl_multi_cleanup(c->multi); /* closes the cached connections (their polls) */
    c->multi = NULL;
    for (size_t i = 0; i < c->nsocks; i++) /* a socket closed without our callback */
        if (c->socks[i])
            sock_drop(c->socks[i]);
    free(c->socks);
    free(c->conn);
    c->socks = NULL;
    c->conn = NULL;
    c->nsocks = 0;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}
