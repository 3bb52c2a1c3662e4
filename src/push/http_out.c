/* http_out.c - the push module's outgoing HTTP: one libcurl multi handle
 * driven by the libuv loop (libcurl's multi-uv pattern: a uv_poll_t per
 * socket from CURLMOPT_SOCKETFUNCTION, one uv_timer_t from
 * CURLMOPT_TIMERFUNCTION, curl_multi_socket_action on each event), the
 * POST of one request (keep-alive reuse through the multi's connection
 * cache, HTTP/2 over TLS when offered, no redirects, no proxies, a bounded
 * answer) and the SSRF guard on the address actually connected to. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "eventbus/err.h"
#include "push/push_int.h"
#include "util/xmalloc.h"

/* One socket libcurl asked us to watch. */
typedef struct sock_ctx {
    uv_poll_t     poll;
    curl_socket_t fd;
    eb_push      *push;
} sock_ctx;

/* --- the SSRF guard ------------------------------------------------------------- */

static bool v4_public(uint32_t a) /* host order */
{
    uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
    return !(b0 == 0 || b0 == 10 || b0 == 127 ||          /* this net, private, loopback */
             (b0 == 100 && (b1 & 0xc0) == 64) ||          /* 100.64/10 CGNAT */
             (b0 == 169 && b1 == 254) ||                  /* link-local (cloud metadata) */
             (b0 == 172 && (b1 & 0xf0) == 16) ||          /* 172.16/12 */
             (b0 == 192 && b1 == 168) ||                  /* 192.168/16 */
             (b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0) || /* 192.0.0/24 */
             (b0 == 198 && (b1 & 0xfe) == 18) ||          /* 198.18/15 benchmarking */
             b0 >= 224);                                  /* multicast, reserved, broadcast */
}

bool eb__addr_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[12] = {0};
    if (!memcmp(b, mapped, 12) || !memcmp(b, zero, 12)) /* ::ffff:a.b.c.d, ::a.b.c.d, ::1, :: */
        return v4_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                         b[15]) && memcmp(b, zero, 12) != 0;
    if ((b[0] & 0xfe) == 0xfc)                 /* fc00::/7 unique-local */
        return false;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
        return false;
    if (b[0] == 0xff)                          /* multicast */
        return false;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) /* documentation */
        return false;
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) /* 64:ff9b::/96 NAT64 */
        return v4_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                         (uint32_t)b[14] << 8 | b[15]);
    return true;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    request *r = arg;
    (void)purpose;
    if (!r->push->opts.allow_private && !eb__addr_public(&a->addr)) {
        char ip[INET6_ADDRSTRLEN] = "?";
        if (a->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, ip, sizeof ip);
        else if (a->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, ip, sizeof ip);
        snprintf(r->refused_ip, sizeof r->refused_ip, "%s", ip);
        r->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* --- the multi handle on the loop ---------------------------------------------- */

static void check_done(eb_push *p)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        request *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        struct curl_header *h = NULL;
        const char *ra = NULL;
        if (curl_easy_header(m->easy_handle, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
            CURLHE_OK)
            ra = h->value;
        CURLcode res = m->data.result;
        curl_multi_remove_handle(p->multi, m->easy_handle);
        eb__push_done(r, status, res, ra);
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
    eb_push *p = s->push;
    curl_multi_socket_action(p->multi, s->fd, flags, &running);
    check_done(p);
}

static void on_curl_timer(uv_timer_t *t)
{
    eb_push *p = t->data;
    int running;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(p);
}

static int start_timeout(CURLM *m, long ms, void *arg)
{
    eb_push *p = arg;
    (void)m;
    if (ms < 0)
        uv_timer_stop(&p->curl_timer);
    else
        uv_timer_start(&p->curl_timer, on_curl_timer, (uint64_t)ms, 0);
    return 0;
}

static void sock_closed(uv_handle_t *h)
{
    sock_ctx *s = h->data;
    eb_push *p = s->push;
    free(s);
    eb__push_handle_gone(p);
}

static void timer_closed(uv_handle_t *h)
{
    eb__push_handle_gone(h->data);
}

static int handle_socket(CURL *e, curl_socket_t fd, int action, void *arg, void *sockp)
{
    eb_push *p = arg;
    sock_ctx *s = sockp;
    (void)e;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(p->multi, fd, NULL);
            uv_close((uv_handle_t *)&s->poll, sock_closed);
        }
        return 0;
    }
    if (!s) {
        s = eb_xcalloc(1, sizeof *s);
        s->fd = fd;
        s->push = p;
        if (uv_poll_init_socket(p->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        p->handles++;
        curl_multi_assign(p->multi, fd, s);
    }
    int ev = action == CURL_POLL_IN    ? UV_READABLE
           : action == CURL_POLL_OUT   ? UV_WRITABLE
           : action == CURL_POLL_INOUT ? UV_READABLE | UV_WRITABLE
                                       : 0;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

int eb__http_out_open(eb_push *p)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(p->multi = curl_multi_init()))
        return EB_EIO;
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, handle_socket);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, start_timeout);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    long maxc = p->opts.max_connections ? (long)p->opts.max_connections : 256;
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxc);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, maxc);
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    uv_timer_init(p->loop, &p->curl_timer);
    p->curl_timer.data = p;
    p->handles++;
    return 0;
}

void eb__http_out_close(eb_push *p)
{
    uv_timer_stop(&p->curl_timer);
    uv_close((uv_handle_t *)&p->curl_timer, timer_closed);
}

void eb__http_out_drain(eb_push *p)
{
    while (p->nidle)
        curl_easy_cleanup(p->idle[--p->nidle]);
}

/* --- one POST ------------------------------------------------------------------ */

static size_t on_answer(char *d, size_t sz, size_t n, void *arg)
{
    request *r = arg;
    size_t len = sz * n, room = EB_PUSH_BODY_MAX - r->answer.len;
    if (len > room) {
        eb_buf_append(&r->answer, d, room);
        r->cut = true;
        return 0; /* the bound: stop reading (CURLE_WRITE_ERROR; the status stands) */
    }
    eb_buf_append(&r->answer, d, len);
    return len;
}

int eb__http_out_start(request *r, const char *url, const char *ca_file)
{
    eb_push *p = r->push;
    CURL *e = r->easy = p->nidle ? p->idle[--p->nidle] : curl_easy_init();
    if (!e)
        return EB_ENOMEM;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* no proxy from the environment */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* over TLS, wait for a connection being made to learn (ALPN) whether
     * it multiplexes rather than open one per request: with HTTP/2 the
     * POSTs in flight become streams of one connection (cleartext is
     * HTTP/1.1, one request per connection at a time: no waiting there) */
    if (!strncasecmp(url, "https:", 6))
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "eventbus-push/1");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (curl_multi_add_handle(r->push->multi, e) != CURLM_OK)
        return EB_ENOMEM;
    return 0;
}

void eb__request_free(request *r)
{
    eb_push *p = r->push;
    if (r->easy && p->nidle < EB_PUSH_IDLE_EASY && !p->closing) {
        curl_easy_reset(r->easy);
        p->idle[p->nidle++] = r->easy;
    } else if (r->easy) {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    eb_buf_free(&r->body);
    eb_buf_free(&r->answer);
    free(r->ids);
    free(r);
}

int eb__url_origin(const char *url, eb_buf *out)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = EB_EINVAL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        eb_buf_reset(out);
        eb_buf_printf(out, "%s://%s:%s", scheme, host, port);
        eb_buf_append(out, "", 1);
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}
