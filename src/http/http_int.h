/* http_int.h - the insides of the HTTP server, shared by its files:
 *
 *   http.c    the server: listening, accepting, the connection and
 *             descriptor limits, shutdown
 *   conn.c    one connection's lifetime: reading and parsing (reader.c),
 *             back-pressure on reading, deadlines, idle and lingering
 *             close, what a request knows of its connection, TLS bytes in
 *   answer.c  the answer queue: formatting answers, writing them in order
 *             (several per write), TLS records out
 *
 * Internal to src/http; nothing outside it includes this. */
#ifndef EB_HTTP_INT_H
#define EB_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "http/http.h"
#include "http/reader.h"
#include "http/tls.h"
#include "util/buf.h"
#include "util/xmalloc.h"

struct eb_http_conn {
    uv_tcp_t        tcp;      /* must stay first */
    eb_http_server *srv;
    eb__http_reader rd;       /* parses what the socket delivers */
    uv_timer_t      idle;     /* closes idle keep-alive connections */
    uv_timer_t      deadline; /* the request being read must arrive by then */
    eb_http_req    *q_head;   /* unanswered or unwritten requests, in order */
    eb_http_req    *q_tail;
    uint32_t        queued;   /* requests in the queue */
    size_t          in_bytes; /* bodies of the requests in the queue */
    size_t          out_bytes; /* answers formatted and not yet written */
    eb_buf          held;     /* read but not parsed: reading is paused */
    uint64_t        dl_begun; /* the reader's request count the deadline is for */
    uint64_t        dl_start; /* when that request began (loop ms) */
    uint64_t        dl_due;   /* when the armed deadline fires */
    int             refs;     /* handles still open (tcp, idle, deadline) */
    bool            reading;  /* uv_read_start active */
    bool            feeding;  /* the reader is running (handlers may re-enter) */
    bool            dl_on;    /* the deadline timer is armed */
    bool            lingering; /* answered and shut down: reading to EOF, then close */
    bool            closing;  /* close once the queue is written */
    bool            closed;   /* uv_close called */
    bool            peer_eof; /* the client closed (or half-closed) its side */
    eb__tls_conn   *tls;      /* the TLS transport, or NULL: plain TCP */
    struct sockaddr_storage peer; /* the client's address, once asked (ss_family set) */
    eb_http_conn   *prev, *next; /* server's list */
};

struct eb_http_server {
    uv_loop_t      *loop;
    uv_tcp_t        listener;
    eb_http_opts    opts;
    eb_http_handler handler;
    void           *ud;
    eb_http_conn   *conns;     /* open connections */
    bool            listening;
    bool            stopping;
    void          (*done)(void *);
    void           *done_arg;
    eb_http_stats   stats;
    char            date[40];  /* cached Date header value */
    eb_tls         *tls;       /* connections speak TLS (not owned), or NULL */
    time_t          date_at;
    int             reserve_fd; /* closed to accept-and-refuse on EMFILE */
    uint64_t        fd_limit;   /* RLIMIT_NOFILE when the server was made */
    bool            at_cap;     /* max_connections reached (logged once) */
    uint32_t        lingering;  /* connections in a lingering close */
    uint64_t        emfile_logged; /* loop ms of the last EMFILE log line */
};

typedef struct write_req {
    uv_write_t    w;
    eb_http_conn *conn;
    size_t        n;
    size_t        bytes;    /* counted in conn->out_bytes until written */
    char         *bufs[16]; /* owned answers */
    bool          close_after;
} write_req;

/* --- conn.c --------------------------------------------------------------- */

/* Starts reading a connection just accepted (its handles are set up). */
void eb__http_conn_init_reader(eb_http_conn *c);
/* Serves a connection let in: the idle timer, then reading. */
void eb__http_conn_start(eb_http_conn *c);
/* pump, unless the reader is running (it pumps when it returns). */
void eb__http_conn_resume(eb_http_conn *c);
/* Closes now: unanswered requests live on, their answers dropped. */
void eb__http_conn_close(eb_http_conn *c);
/* After a final answer: shut down our side, drain to EOF, then close. */
void eb__http_conn_linger(eb_http_conn *c);

/* --- answer.c ------------------------------------------------------------- */

/* Appends r to c's answer queue (r->conn = c). */
void eb__http_enqueue(eb_http_conn *c, eb_http_req *r);
/* Whether c holds as much as it may: read no more for now. */
bool eb__http_conn_full(const eb_http_conn *c);
/* Writes every ready answer at the head of the queue. */
void eb__http_conn_flush(eb_http_conn *c);
/* Answers a broken request (parse error, limits) and closes afterwards. */
void eb__http_answer_error(eb_http_conn *c, int status, const char *code, const char *msg);
/* TLS: seals n plaintext bytes and writes the records. */
void eb__http_tls_write(eb_http_conn *c, const char *p, size_t n);
/* Writes b's bytes (records) in order after earlier writes; frees b. */
void eb__http_wire_write_buf(eb_http_conn *c, eb_buf *b);

/* --- http.c --------------------------------------------------------------- */

/* Calls the shutdown's done callback once the last connection is gone. */
void eb__http_server_maybe_done(eb_http_server *s);

#endif
