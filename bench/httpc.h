/* httpc.h - a tiny HTTP/1.1 client for benchmarks: a blocking one for
 * setup calls, a libuv closed-loop load generator for measurement, and the
 * daemon launcher the benchmarks share. Not part of any product binary. */
#ifndef EB_BENCH_HTTPC_H
#define EB_BENCH_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Starts eventbusd (path) on a free port with a fresh temp data dir and the
 * extra args; waits for /healthz. Returns its pid, fills port and dir. */
pid_t bench_start_daemon(const char *path, const char *const *extra, int *port,
                         char dir[256]);
/* SIGTERM, wait, remove the data dir. */
void bench_stop_daemon(pid_t pid, const char *dir);

/* Monotonic wall time and this process's CPU time (user + system), seconds. */
double bench_now_s(void);
double bench_cpu_s(void);

/* A blocking keep-alive connection (one thread uses it at a time). */
typedef struct bench_conn {
    int    fd;
    char  *in;            /* received bytes not yet consumed */
    size_t in_len, in_cap;
    size_t consumed;      /* length of the answer the last recv returned */
    /* Optional, set by the caller after bench_conn_open: a transport over
     * fd (TLS: bench/peers/eventbus.c) the bytes go through instead of
     * read/write, and header lines added to every request ("Name: v\r\n").
     * The caller frees io before bench_conn_close. */
    void       *io;
    ssize_t   (*io_read)(void *io, void *p, size_t n);
    ssize_t   (*io_write)(void *io, const void *p, size_t n);
    const char *headers;
    int         port;     /* the port it is connected to */
    const char *head;     /* the last answer's status line and headers (in `in`, */
    size_t      head_len; /* valid until the next recv), not NUL-terminated */
} bench_conn;

/* Connects to 127.0.0.1:port. Returns 0 or -1. */
int bench_conn_open(bench_conn *c, int port);
/* Sends one request (body may be NULL). Returns 0 or -1. */
int bench_conn_send(bench_conn *c, const char *method, const char *path, const char *body,
                    size_t blen);
/* Reads the next answer; returns its status (or -1) and points *body at its
 * body (NUL-terminated, owned by c, valid until the next recv). */
int bench_conn_recv(bench_conn *c, const char **body, size_t *blen);
void bench_conn_close(bench_conn *c);

/* One blocking request on a fresh connection; returns the status (or -1)
 * and copies up to cap-1 bytes of the body into out (NUL-terminated). */
int bench_request(int port, const char *method, const char *path, const char *body,
                  char *out, size_t cap);

/* A closed-loop load: `conns` keep-alive connections, each sending the
 * request make_body() builds (conn index, request number) and waiting for
 * the answer before the next, until `total` requests are answered. */
typedef struct bench_load {
    int         port;
    int         conns;
    uint64_t    total;        /* requests to complete */
    const char *method;
    const char *path;
    const char *headers;      /* extra header lines ("Name: v\r\n"...), or NULL */
    /* Builds the body of request n on connection c into buf; returns its length. */
    size_t    (*make_body)(void *arg, int c, uint64_t n, char *buf, size_t cap);
    void       *arg;
    /* results */
    uint64_t    ok, failed;   /* 2xx / other answers */
    double      seconds;      /* wall time */
    double     *lat_us;       /* per request latency (malloc'd, total entries) */
    void       *arg2;         /* internal */
} bench_load;

int bench_run_load(bench_load *l);
/* Percentile p (0..100) of n latencies (sorts in place). */
double bench_pct(double *v, size_t n, double p);

#endif
