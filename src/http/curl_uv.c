/* curl_uv.c - one libcurl multi handle driven by a libuv loop (see
 * curl_uv.h). */
#include "http/curl_uv.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>

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
};

/* One socket libcurl asked us to watch. */
typedef struct sock_ctx {
    uv_poll_t     poll;
    curl_socket_t fd;
    eb_curl_uv   *c;
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

static int handle_socket(CURL *e, curl_socket_t fd, int action, void *arg, void *sockp)
{
    eb_curl_uv *c = arg;
    sock_ctx *s = sockp;
    (void)e;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(c->multi, fd, NULL);
            uv_close((uv_handle_t *)&s->poll, sock_closed);
        }
        return 0;
    }
    if (!s) {
        s = eb_xcalloc(1, sizeof *s);
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        c->handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int ev = action == CURL_POLL_IN    ? UV_READABLE
           : action == CURL_POLL_OUT   ? UV_WRITABLE
           : action == CURL_POLL_INOUT ? UV_READABLE | UV_WRITABLE
                                       : 0;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
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
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

int eb_curl_uv_cloexec(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg;
    (void)purpose;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    return CURL_SOCKOPT_OK;
}
