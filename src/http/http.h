/* http.h - an HTTP/1.1 server on libuv + Node's http_parser.
 *
 * Keep-alive and pipelining: requests read in one chunk are all parsed and
 * handed to the handler in order; answers may come later (after an fsync)
 * but always go out in request order per connection. Limits on header
 * bytes, header count and body size are enforced before the body is read
 * (413 / 431 with a JSON error, then the connection closes).
 *
 * Bounds against clients that never read or never finish (issue 13): a
 * connection stops being read while it holds max_pipelined requests or
 * max_conn_buffer bytes (unwritten answers, queued bodies), as h2o and
 * nginx do; a request's head must arrive within header_timeout_ms and the
 * whole request within body_timeout_ms (408), however slowly bytes trickle
 * in; at most max_connections are open (the next ones get 503), and a
 * reserve descriptor lets an EMFILE be answered with 503 rather than spin.
 * An EOF from the client closes the connection at once (as nginx treats a
 * client abort): requests still unanswered are released when answered, and
 * a long poll sees eb_http_req_client_gone.
 *
 * Threading: everything runs on the loop thread, including eb_http_respond.
 * A request (eb_http_req) is valid from the handler call until the
 * eb_http_respond() that answers it; if the client disconnects meanwhile,
 * respond only releases it. */
#ifndef EB_HTTP_H
#define EB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum { EB_HTTP_DELETE = 0, EB_HTTP_GET = 1, EB_HTTP_HEAD = 2, EB_HTTP_POST = 3,
       EB_HTTP_PUT = 4, EB_HTTP_PATCH = 5, EB_HTTP_OTHER = 99 };

typedef struct eb_http_header {
    const char *name;  /* lowercased */
    size_t      name_len;
    const char *value;
    size_t      value_len;
} eb_http_header;

typedef struct eb_http_conn eb_http_conn;

/* One request; the public fields are read-only for handlers. All pointers
 * are owned by the request. */
typedef struct eb_http_req {
    int                   method;     /* EB_HTTP_*; a HEAD comes as GET with
                                         `head` set: its answer has no body */
    const char           *path;       /* raw path (not decoded), no query */
    size_t                path_len;
    const char           *query;      /* after '?', or NULL */
    size_t                query_len;
    const eb_http_header *headers;
    size_t                nheaders;
    const char           *body;       /* NUL-terminated for convenience */
    size_t                body_len;
    void                 *app;        /* the handler's own (http never touches it) */
    /* private */
    struct eb_http_req   *next;       /* in the connection's answer queue */
    eb_http_conn         *conn;       /* NULL once the client is gone */
    char                 *resp;       /* formatted answer, once given */
    size_t                resp_len;
    char                  extra[512]; /* extra answer headers ("Name: v\r\n"; a relayed
                                         * answer's and Eb-Leader's URL) */
    size_t                extra_len;
    bool                  keep_alive; /* the client wants the connection kept */
    bool                  head;       /* HEAD: answer without a body */
    /* for the handler (read and written by it only) */
    uint16_t              tag;        /* the handler's mark (e.g. its route), 0 unset */
    uint64_t              start_ns;   /* uv_hrtime() at arrival, with opts.timed; else 0 */
} eb_http_req;

typedef struct eb_http_server eb_http_server;
typedef void (*eb_http_handler)(void *ud, eb_http_req *req);
/* Called (with the handler's ud) as each answer is given, before the
 * request is released: every answer, the server's own 4xx included (then
 * path may be NULL). body is the answer's body (borrowed for the call). */
typedef void (*eb_http_answer_fn)(void *ud, const eb_http_req *req, int status,
                                  const char *body, size_t len);

typedef struct eb_http_opts {
    size_t   max_body;         /* default 1 MiB + 64 KiB */
    size_t   max_header_bytes; /* default 16 KiB */
    size_t   max_headers;      /* default 100 */
    uint32_t idle_timeout_ms;  /* default 60000 */
    uint32_t max_pipelined;    /* unanswered requests per connection (default 128) */
    /* Bytes a connection may hold (bodies of queued requests plus answers
     * not yet written) before its reading stops until they drain; the
     * request being read may add one max_body. Default 4 MiB. */
    size_t   max_conn_buffer;
    uint32_t header_timeout_ms; /* a request's head must arrive within (default 10000) */
    uint32_t body_timeout_ms;   /* the whole request, from its first byte (default 120000) */
    uint32_t max_connections;   /* past it a connection gets 503 and is closed (default 1024) */
    /* Operator-worthy events (connection cap reached, out of descriptors):
     * a log line for the daemon. May be NULL. Called on the loop thread. */
    void   (*warn)(void *warn_arg, const char *msg);
    void    *warn_arg;
    eb_http_answer_fn on_answer; /* NULL: none */
    bool     timed;            /* stamp each request's start_ns (for an access log) */
} eb_http_opts;

/* Creates a server on loop; *out is owned by the caller (eb_http_server_free
 * after the shutdown callback). */
int  eb_http_server_new(uv_loop_t *loop, const eb_http_opts *o, eb_http_handler h,
                        void *ud, eb_http_server **out);
/* Listens on "host:port" ("127.0.0.1:8470", "[::1]:0"); the bound port is
 * returned through *bound_port when non-NULL. */
int  eb_http_listen(eb_http_server *s, const char *host_port, int *bound_port);
/* Answers req (copying body); the request is released. */
int  eb_http_respond(eb_http_req *req, int status, const char *content_type,
                     const char *body, size_t len);
/* Adds an answer header before eb_http_respond (e.g. "Allow"). */
void eb_http_set_header(eb_http_req *req, const char *name, const char *value);
/* True once the client closed its side of the connection (a full close or
 * a half-close: EOF either way). The connection is closed then, its answers
 * dropped: a long poll should hand it nothing more. */
bool eb_http_req_client_gone(const eb_http_req *req);
/* The client's address as "ip:port" (or "[ip6]:port") into buf; "-" when
 * the client is gone. */
void eb_http_req_peer_name(const eb_http_req *req, char *buf, size_t cap);
/* The value of header lname (lowercase), or NULL; its length in *len. */
const char *eb_http_req_header(const eb_http_req *req, const char *lname, size_t *len);
/* The client's address (the TCP peer); 0 or an error. */
struct sockaddr_storage;
int eb_http_req_peer(const eb_http_req *req, struct sockaddr_storage *out);
/* Makes s speak TLS on every connection it accepts from now on (call
 * before eb_http_listen); tls is borrowed and must outlive s. */
struct eb_tls;
void eb_http_server_set_tls(eb_http_server *s, struct eb_tls *tls);
/* The subject CN of the verified client certificate of req's connection
 * (mutual TLS) into buf; false if none. */
bool eb_http_req_tls_cn(const eb_http_req *req, char *buf, size_t cap);
/* Stops accepting; connections close once their answers are written (idle
 * ones at once); then done(arg) runs on the loop. */
void eb_http_server_shutdown(eb_http_server *s, void (*done)(void *), void *arg);
void eb_http_server_free(eb_http_server *s);

/* Counters for /metrics and logs. refused: connections answered 503 at
 * the connection cap or when out of descriptors; timeouts: requests whose
 * head or body did not arrive in time (408). */
typedef struct eb_http_stats {
    uint64_t requests, connections, open_connections, bad_requests, refused, timeouts;
} eb_http_stats;
void eb_http_server_stats(const eb_http_server *s, eb_http_stats *st);

#endif
