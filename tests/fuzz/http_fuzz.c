/* http_fuzz.c - fuzz target for the HTTP/1.1 request reader (src/http/
 * reader.c: http_parser callbacks, request building, limits): everything
 * eventbusd does with the bytes a client sends before a handler runs.
 *
 * Input: byte 0 picks the chunk size of the split read (1-64 bytes), byte 1
 * the limits (bit 0: 200 header bytes instead of 16 KiB, bit 1: 3 headers
 * instead of 100, bit 2: a 16-byte body bound instead of 1 MiB, bit 3: the
 * split read pauses the reader after every request and resumes it where it
 * stopped, as the server does under back-pressure); the rest
 * is the byte stream a client sends on one connection (pipelined requests).
 * The stream is read twice, whole and in chunks. Properties, abort() on a
 * breach:
 *   - every request is well formed: known method (HEAD comes as GET with its flag), path and query
 *     split at the first '?', lowercase header names, header lookup finds
 *     the first of a name, NUL-terminated body, all within the limits;
 *   - a failure is 400, 413 or 431;
 *   - the split read yields the same requests, the same 100-continue calls
 *     and the same outcome as the whole read (callbacks may be cut anywhere).
 *     Only the status of a failure may differ: a request both malformed and
 *     over a limit is 400 or 431 depending on which the parser meets first,
 *     and the limits are checked as callbacks arrive, at token or chunk ends.
 * Requests are released as the server releases them (no leak). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/reader.h"
#include "util/buf.h"

/* What one read of the stream produced. */
typedef struct outcome {
    const eb_http_opts *opts;
    eb__http_reader    *rd;
    bool                pause;     /* pause the reader after every request */
    eb_buf              log;       /* every request, serialized */
    int                 requests;
    int                 continues;
} outcome;

static void log_bytes(eb_buf *b, const char *p, size_t n)
{
    eb_buf_printf(b, "%zu:", n);
    eb_buf_append(b, p, n);
}

static void check_request(const outcome *o, const eb_http_req *r)
{
    FUZZ_CHECK(r->method == EB_HTTP_DELETE || r->method == EB_HTTP_GET ||
               r->method == EB_HTTP_HEAD || r->method == EB_HTTP_POST ||
               r->method == EB_HTTP_PUT || r->method == EB_HTTP_OTHER);
    FUZZ_CHECK(r->method != EB_HTTP_HEAD && (!r->head || r->method == EB_HTTP_GET));
    FUZZ_CHECK(r->path != NULL && !memchr(r->path, '?', r->path_len));
    size_t head_bytes = r->path_len;
    if (r->query) {
        FUZZ_CHECK(r->query == r->path + r->path_len + 1 && r->path[r->path_len] == '?');
        head_bytes += r->query_len + 1;
    }
    FUZZ_CHECK(r->nheaders <= o->opts->max_headers);
    for (size_t i = 0; i < r->nheaders; i++) {
        const eb_http_header *h = &r->headers[i];
        for (size_t k = 0; k < h->name_len; k++)
            FUZZ_CHECK(!(h->name[k] >= 'A' && h->name[k] <= 'Z'));
        head_bytes += h->name_len + h->value_len;
        char name[64];
        if (h->name_len >= sizeof name || memchr(h->name, '\0', h->name_len))
            continue;
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        size_t vl = 0;
        const char *v = eb_http_req_header(r, name, &vl);
        size_t first = 0;
        while (r->headers[first].name_len != h->name_len ||
               memcmp(r->headers[first].name, name, h->name_len))
            first++;
        FUZZ_CHECK(v == r->headers[first].value && vl == r->headers[first].value_len);
    }
    FUZZ_CHECK(head_bytes <= o->opts->max_header_bytes);
    FUZZ_CHECK(r->body != NULL && r->body[r->body_len] == '\0');
    FUZZ_CHECK(r->body_len <= o->opts->max_body);
}

static void on_request(void *arg, eb_http_req *r)
{
    outcome *o = arg;
    check_request(o, r);
    eb_buf *b = &o->log;
    eb_buf_printf(b, "%d %d %d ", r->method, r->keep_alive, r->query != NULL);
    log_bytes(b, r->path, r->path_len);
    if (r->query)
        log_bytes(b, r->query, r->query_len);
    for (size_t i = 0; i < r->nheaders; i++) {
        log_bytes(b, r->headers[i].name, r->headers[i].name_len);
        log_bytes(b, r->headers[i].value, r->headers[i].value_len);
    }
    log_bytes(b, r->body, r->body_len);
    eb_buf_putc(b, '\n');
    o->requests++;
    eb__http_req_free(r);
    if (o->pause)
        eb__http_reader_pause(o->rd);
}

static void on_continue(void *arg)
{
    outcome *o = arg;
    o->continues++;
    eb_buf_puts(&o->log, "100-continue\n");
}

/* Reads data in chunks of `chunk` bytes (0: all at once). */
static int read_stream(outcome *o, const char *data, size_t len, size_t chunk)
{
    eb__http_reader rd;
    eb__http_reader_init(&rd, o->opts, on_request, on_continue, o);
    o->rd = &rd;
    int status = 0;
    size_t off = 0;
    do {
        size_t n = chunk && len - off > chunk ? chunk : len - off, used = 0;
        status = eb__http_reader_feed(&rd, data + off, n, &used);
        FUZZ_CHECK(used <= n && (status || used == n || o->pause));
        off += used;
    } while (!status && off < len);
    eb__http_reader_free(&rd);
    FUZZ_CHECK(status == 0 || status == 400 || status == 413 || status == 431);
    FUZZ_CHECK(!eb_buf_failed(&o->log));
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20))
        return 0;
    size_t chunk = data[0] % 64 + 1;
    eb_http_opts opts = {
        .max_body = (data[1] & 4) ? 16 : (1u << 20),
        .max_header_bytes = (data[1] & 1) ? 200 : (16u << 10),
        .max_headers = (data[1] & 2) ? 3 : 100,
    };
    const char *stream = (const char *)data + 2;
    size_t len = size - 2;
    outcome whole = {.opts = &opts, .log = EB_BUF_INIT};
    outcome split = {.opts = &opts, .log = EB_BUF_INIT, .pause = data[1] & 8};
    int s1 = read_stream(&whole, stream, len, 0);
    int s2 = read_stream(&split, stream, len, chunk);
    FUZZ_CHECK((s1 == 0) == (s2 == 0));
    FUZZ_CHECK(whole.requests == split.requests && whole.continues == split.continues);
    FUZZ_CHECK(whole.log.len == split.log.len &&
               (whole.log.len == 0 || !memcmp(whole.log.data, split.log.data, whole.log.len)));
    eb_buf_free(&whole.log);
    eb_buf_free(&split.log);
    return 0;
}
