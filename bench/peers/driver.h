/* driver.h - the workloads bench/peers and bench/consume run, written once
 * against a small interface each system implements (peer_ops): eventbusd
 * over HTTP, Redis Streams, NATS JetStream, PostgreSQL.
 *
 * Workloads (each on a fresh server, started by the caller):
 *   publish  - `publishers` threads publish `events` in batches of `batch`,
 *              each batch acknowledged by the system before the next;
 *   consume  - `events` are loaded first (untimed), then `groups` consumer
 *              groups, one consumer each, read all of them at once, pulling
 *              up to `pull` and acknowledging each pull as one batch;
 *   latency  - one group waits for events while `rate_threads` publishers
 *              send single events at a fixed total `rate` for `seconds`;
 *              latency = delivery to the consumer - start of the publish;
 *   connect  - `publishers` threads for `seconds` each open a new connection
 *              (its TLS handshake too), make one small request and close it,
 *              again and again: new connections per second (peers that
 *              implement `connect` only).
 * Results are printed as `RESULT <workload> key=value ...` lines. */
#ifndef EB_BENCH_DRIVER_H
#define EB_BENCH_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct drv_opts {
    const char *target;       /* where the system listens; each peer reads it its way */
    const char *workload;     /* "publish", "consume" or "latency" */
    const char *run;          /* names the stream/table/consumer groups of this run */
    uint64_t    events;       /* events to publish or consume */
    int         publishers;   /* publisher threads (publish, and the consume preload) */
    int         batch;        /* events per publish batch */
    int         groups;       /* consumer groups (consume) */
    int         pull;         /* max events per pull */
    double      rate;         /* events/s (latency) */
    double      seconds;      /* duration of the paced publish (latency) */
    int         rate_threads; /* publisher threads sharing the rate (latency) */
    bool        phases;       /* PHASE lines + SIGSTOP between phases (run.py's CPU) */
} drv_opts;

/* One system. Every function returns 0 on success, -1 on failure (after
 * printing why on stderr); handles are used by one thread at a time. */
typedef struct peer_ops {
    const char *name;
    /* Creates what the events go to (stream, table), empty. */
    int (*prepare)(const drv_opts *o);
    /* Opens a publisher connection; NULL on failure. */
    void *(*pub_open)(const drv_opts *o);
    /* Publishes events first..first+n-1 as one batch; returns once the
     * system acknowledged every one of them. */
    int (*publish)(void *pub, uint64_t first, int n);
    void (*pub_close)(void *pub);
    /* Creates consumer groups 0..n-1, reading from the first event stored
     * (earliest) or only events published from now on. */
    int (*groups)(const drv_opts *o, int n, int earliest);
    /* Opens a consumer of group g; NULL on failure. */
    void *(*con_open)(const drv_opts *o, int g);
    /* Waits up to wait_ms for at least one event, takes up to max; writes
     * their event numbers to nums and returns how many (0 when the wait
     * ended), -1 on failure. Also acknowledges, as one batch, what the
     * previous pull returned: that ack may still be in flight when this
     * pull returns (one ack batch in flight at most), and is complete when
     * the next pull or con_close returns. */
    int (*pull)(void *con, int max, int wait_ms, uint64_t *nums);
    /* Acknowledges what the last pull returned, waits for every ack. */
    int (*con_close)(void *con);
    /* Opens a new connection (and its handshake), makes one small request,
     * closes it. NULL: the connect workload is not offered. */
    int (*connect)(const drv_opts *o);
} peer_ops;

int drv_publish(const peer_ops *p, const drv_opts *o);
int drv_consume(const peer_ops *p, const drv_opts *o);
int drv_latency(const peer_ops *p, const drv_opts *o);
int drv_connect(const peer_ops *p, const drv_opts *o);

/* Parses `--name value` options into o (defaults: the bench-peers
 * workload); returns the workload name (argv[1]) or NULL after printing
 * usage. */
const char *drv_parse(int argc, char **argv, drv_opts *o);
/* Runs the workload named by drv_parse; returns the process exit code. */
int drv_main(const peer_ops *p, int argc, char **argv);

/* Monotonic clock, nanoseconds. */
uint64_t drv_now_ns(void);

#endif
