/* reader.h - the HTTP/1.1 request reader: bytes in, complete requests out.
 *
 * The pure half of the server (http.c owns sockets, timers and the answer
 * queue): it runs Node's http_parser over whatever bytes arrive, in any
 * split, builds each request (URL and headers in one buffer, the body in
 * another, both owned by the request) and enforces the limits of
 * eb_http_opts before a body is read. No I/O and no event loop, so it can
 * be tested and fuzzed on its own (tests/fuzz/http_fuzz.c). Internal to
 * src/http. */
#ifndef EB_HTTP_READER_H
#define EB_HTTP_READER_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

typedef struct eb__http_req_full eb__http_req_full;

/* A complete request, in order. The callee owns req from then on: it is
 * released by eb_http_respond() (once it has a connection) or by
 * eb__http_req_free(). */
typedef void (*eb__http_on_request)(void *arg, eb_http_req *req);
/* The request being read asked for "Expect: 100-continue"; called once its
 * headers are complete, before its body. */
typedef void (*eb__http_on_continue)(void *arg);

typedef struct eb__http_reader {
    http_parser           parser;
    const eb_http_opts   *opts;        /* limits (borrowed, must outlive the reader) */
    eb__http_req_full    *cur;         /* request being read, or NULL */
    int                   error;       /* status the last failure maps to */
    eb__http_on_request   on_request;
    eb__http_on_continue  on_continue; /* may be NULL */
    void                 *arg;         /* passed to both callbacks */
    uint64_t              begun;       /* requests begun so far (deadlines) */
    bool                  head_done;   /* cur's headers are complete */
    bool                  pause;       /* stop after the request being delivered */
} eb__http_reader;

/* Prepares r to read requests under the limits in opts (every field set). */
void eb__http_reader_init(eb__http_reader *r, const eb_http_opts *opts,
                          eb__http_on_request on_request, eb__http_on_continue on_continue,
                          void *arg);
/* Reads len more bytes; complete requests go to on_request, in order,
 * before it returns. *used gets the bytes read: all of them, unless
 * on_request called eb__http_reader_pause (then the bytes after that
 * request are left for the caller to feed again later). Returns 0, or the
 * status a broken stream is answered with: 400 (malformed, or CONNECT;
 * another Upgrade offer is ignored), 413 (body over max_body), 431 (header
 * bytes or count over their limits). After a failure the reader reads
 * nothing more: the connection answers and closes. */
int  eb__http_reader_feed(eb__http_reader *r, const char *data, size_t len, size_t *used);
/* From on_request: stop reading after this request (back-pressure). */
void eb__http_reader_pause(eb__http_reader *r);
/* Releases the partly read request, if any. The reader may not be fed again. */
void eb__http_reader_free(eb__http_reader *r);

/* A request with no fields set, for answers the server makes up itself
 * (eb_http_respond releases it); never NULL (util/xmalloc.h). */
eb_http_req *eb__http_req_new(void);
/* Releases a request and everything it owns (its answer included). */
void eb__http_req_free(eb_http_req *req);

#endif
