/* httpc.h - the client library's HTTP/1.1 connection (internal).
 *
 * One keep-alive TCP connection to one server, used by one thread. A request
 * is written in one go and its answer read with Node's http_parser (the same
 * parser the server uses), so Content-Length, chunked and read-until-close
 * bodies all work. A connection that was idle may have been closed by the
 * server meanwhile: when a request that may be sent again (see
 * eb__http_do) fails on a reused connection before any byte of its answer
 * came, it is sent once more on a fresh connection; one that may not is
 * sent on a reused connection only if that connection shows no sign of
 * having been closed (nothing to read on it).
 * Every wait is bounded by the request's deadline and cut into slices of at
 * most 100 ms so the cancel flags are seen promptly. Sockets are written
 * with MSG_NOSIGNAL: no SIGPIPE, no signal handler needed.
 */
#ifndef EB_LIB_HTTPC_H
#define EB_LIB_HTTPC_H

#include <http_parser.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

#define EB__HTTP_MAX_ANSWER ((size_t)256 << 20) /* bigger answers are refused */

typedef struct eb__http {
    char        host[256];    /* name or address, without IPv6 brackets */
    char        port[8];
    char        hosthdr[272]; /* Host header value */
    int         fd;           /* -1 when not connected */
    uint64_t    answers;      /* answers read on the current connection */
    uint32_t    connect_timeout_ms;
    const volatile sig_atomic_t *cancel[2]; /* any nonzero stops a wait; not owned */
    eb_buf      head;         /* request head scratch (owned) */
    http_parser parser;       /* the answer being read */
    eb_buf     *answer;       /* where its body goes (not owned) */
    int         status;       /* its HTTP status */
    bool        done;         /* the answer is complete */
    bool        keep_alive;   /* the connection may carry the next request */
    bool        sent;         /* the last request may have reached the server: some
                                 of it was written on an open connection */
    char        err[256];     /* why the last request failed (local reasons) */
    char        leader[512];  /* the last answer's Eventbus-Leader header (the URL of the
                                 node that leads, named by a follower that relayed
                                 the request), "" without one or when too long; an
                                 interim 1xx answer's is dropped */
    char        hname[16];    /* the header name being read (its first bytes) */
    size_t      hname_len;    /* its length (more than sizeof hname: too long) */
    size_t      leader_len;   /* bytes of leader[] so far; SIZE_MAX: too long */
    int         hstate;       /* 0 none, 1 in a header name, 2 in a value */
    bool        in_leader;    /* the value being read is Eventbus-Leader's */
    char        auth[540];    /* "Authorization: Bearer <token>\r\n", or "" */
    struct ssl_ctx_st *tls;   /* https: the client context (owned), or NULL */
    struct ssl_st     *ssl;   /* the TLS session of fd (owned), or NULL */
} eb__http;

/* Prepares h for host:port (copied); no connection is made. */
void eb__http_init(eb__http *h, const char *host, const char *port,
                   uint32_t connect_timeout_ms);
/* Sends token with every request from now on; EB_EINVAL if it is not 1 to
 * 512 token68 characters (so it cannot break the request head). */
int eb__http_set_token(eb__http *h, const char *token);
/* Speaks TLS from now on: TLS 1.2 or 1.3, the server's certificate verified
 * against cafile (PEM), or the system store when NULL, and its name (or IP)
 * checked against the URL's host. 0, EB_EINVAL (cafile unusable), EB_ENOMEM. */
int eb__http_set_tls(eb__http *h, const char *cafile);
/* Closes the connection (if any) and frees h's buffers; h can be reused. */
void eb__http_close(eb__http *h);
/* Sends one request (body may be NULL when blen is 0) and reads its answer
 * into `answer` (reset first) within timeout_ms. Returns 0 with *status set
 * whatever the status, or EB_ECONNECT, EB_ETIMEDOUT, EB_ECANCELED,
 * EB_EPROTO, EB_ETOOBIG, EB_ENOMEM with h->err explaining; h->sent then
 * tells whether the server may have got the request (false: it surely did
 * not, e.g. the connection was refused). resend: the request may be sent
 * twice (it is idempotent), so a stale keep-alive connection is retried
 * on a fresh one. A cancel flag already up when the call starts sends
 * nothing; one raised midway leaves the outcome unknown, like a timeout. */
int eb__http_do(eb__http *h, const char *method, const char *path, const char *body,
                size_t blen, uint32_t timeout_ms, bool resend, int *status, eb_buf *answer);

#endif
