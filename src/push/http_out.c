/* http_out.c - the push module's outgoing HTTP: one libcurl multi handle
 * driven by the libuv loop (http/curl_uv.c), the
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
#include "http/curl_uv.h"
#include "push/push_int.h"
#include "util/xmalloc.h"

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

/* --- the multi handle on the loop (http/curl_uv.c) ------------------------------ */

static void on_done(void *arg, CURL *e, CURLcode res)
{
    (void)arg;
    request *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    struct curl_header *h = NULL;
    const char *ra = NULL;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        ra = h->value;
    eb__push_done(r, status, res, ra);
}

int eb__http_out_open(eb_push *p)
{
    if (eb_curl_uv_open(p->loop, on_done, p, &p->curl) != 0)
        return EB_EIO;
    p->multi = eb_curl_uv_multi(p->curl);
    long maxc = p->opts.max_connections ? (long)p->opts.max_connections : 256;
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxc);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, maxc);
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    p->handles++;
    return 0;
}

static void curl_closed(void *arg)
{
    eb__push_handle_gone(arg);
}

void eb__http_out_close(eb_push *p)
{
    eb_curl_uv_close(p->curl, curl_closed, p); /* closes the cached connections (their polls) */
    p->curl = NULL;
    p->multi = NULL;
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
    eb_curl_uv_easy(r->push->curl, e); /* close-on-exec, and the poll kept per socket */
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
