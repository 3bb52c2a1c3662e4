/* estore.c - bench/estore: the event store's costs (issue 16).
 *
 *   1. Publish rate of single events over 64 keep-alive connections with
 *      every event keyed and carrying expected_version (each connection
 *      appends to its own key, so every check passes), against the same
 *      events unkeyed, in one run and on one daemon: under --fsync always
 *      (the default; fsync dominates) and --fsync never (CPU bound: what
 *      the version bookkeeping costs shows).
 *   2. GET /v1/events?key=K&limit=1000 latency for a key with 1,000 events
 *      spread through a log of --log-events events (default 10,000,000; the
 *      others keyed over 100,000 keys), over one keep-alive connection; then
 *      the time eventbusd takes to start on that log after a clean stop and
 *      after SIGKILL (the lookups from the segment summaries either way),
 *      and the reads again after each restart.
 *
 * Usage: estore EVENTBUSD [--events N] [--log-events N] [--reads N] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"

#define CONNS 64

typedef struct pub_arg {
    bool     keyed;
    uint64_t version[CONNS]; /* per connection: its key's current version */
} pub_arg;

static size_t one_body(void *arg, int c, uint64_t n, char *buf, size_t cap)
{
    pub_arg *a = arg;
    char key[96] = "";
    if (a->keyed)
        snprintf(key, sizeof key, "\"key\":\"acct-%d\",\"expected_version\":%llu,", c,
                 (unsigned long long)a->version[c]++);
    int len = snprintf(buf, cap,
                       "{\"type\":\"account.posted\",\"source\":\"ledger\",%s"
                       "\"data\":{\"n\":%llu,\"amount\":129.95,\"currency\":\"EUR\","
                       "\"memo\":\"a posting of about two hundred bytes, like the others\"}}",
                       key, (unsigned long long)n);
    return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

static double rate(int port, pub_arg *a, uint64_t events, const char *name)
{
    bench_load l = {.port = port, .conns = CONNS, .total = events, .method = "POST",
                    .path = "/v1/events", .make_body = one_body, .arg = a};
    bench_run_load(&l);
    double r = (double)l.ok / l.seconds;
    printf("  %-44s %9.0f events/s  p99 %6.2f ms  (%llu ok, %llu failed)\n", name, r,
           bench_pct(l.lat_us, l.total, 99) / 1000, (unsigned long long)l.ok,
           (unsigned long long)l.failed);
    free(l.lat_us);
    return l.failed ? 0 : r;
}

static void publish_rates(const char *daemon, uint64_t events, const char *fsync)
{
    int port;
    char dir[256];
    const char *extra[] = {"--fsync", fsync, NULL};
    pid_t pid = bench_start_daemon(daemon, extra, &port, dir);
    if (pid < 0) {
        fprintf(stderr, "cannot start %s\n", daemon);
        exit(1);
    }
    printf("publish, --fsync %s, %d connections, %llu events each way:\n", fsync, CONNS,
           (unsigned long long)events);
    /* Alternate, twice each, so drift on a shared machine hits both. */
    double un = 0, keyed = 0;
    pub_arg *ua = calloc(1, sizeof *ua), *ka = calloc(1, sizeof *ka);
    ka->keyed = true; /* its versions carry over from round to round */
    for (int round = 0; round < 2; round++) {
        un += rate(port, ua, events / 2, "unkeyed");
        keyed += rate(port, ka, events / 2, "keyed + expected_version");
    }
    free(ua);
    free(ka);
    printf("RESULT publish_%s unkeyed=%.0f keyed_expected=%.0f ratio=%.3f\n", fsync, un / 2,
           keyed / 2, un > 0 ? keyed / un : 0);
    bench_stop_daemon(pid, dir);
}

/* Fills the log: `total` events in batches of 1000, of which 1000 are the
 * hot key's, spread evenly. */
static int fill(int port, uint64_t total)
{
    static char body[1 << 20];
    bench_conn c;
    if (bench_conn_open(&c, port) != 0)
        return -1;
    uint64_t every = total / 1000, hot = 0;
    double t0 = bench_now_s();
    for (uint64_t n = 0; n < total;) {
        size_t len = 0;
        body[len++] = '[';
        for (int i = 0; i < 1000 && n < total; i++, n++) {
            char key[32];
            if (n % every == every / 2 && hot < 1000)
                snprintf(key, sizeof key, "hot"), hot++;
            else
                snprintf(key, sizeof key, "k-%llu", (unsigned long long)(n * 7919 % 100000));
            int w = snprintf(body + len, sizeof body - len,
                             "%s{\"type\":\"account.posted\",\"key\":\"%s\","
                             "\"data\":{\"n\":%llu,\"amount\":1.5,\"memo\":\"padding padding "
                             "padding padding padding padding\"}}",
                             i ? "," : "", key, (unsigned long long)n);
            len += (size_t)w;
        }
        body[len++] = ']';
        const char *ans;
        size_t alen;
        if (bench_conn_send(&c, "POST", "/v1/events/batch", body, len) != 0 ||
            bench_conn_recv(&c, &ans, &alen) != 201) {
            fprintf(stderr, "fill failed at %llu\n", (unsigned long long)n);
            bench_conn_close(&c);
            return -1;
        }
        if (n % 1000000 == 0)
            fprintf(stderr, "  filled %llu events (%.0f/s)\n", (unsigned long long)n,
                    (double)n / (bench_now_s() - t0));
    }
    bench_conn_close(&c);
    printf("  filled %llu events (%llu of key \"hot\") in %.1f s\n", (unsigned long long)total,
           (unsigned long long)hot, bench_now_s() - t0);
    return 0;
}

static void key_reads(int port, int reads, uint64_t total)
{
    bench_conn c;
    double *lat = calloc((size_t)reads, sizeof *lat);
    if (!lat || bench_conn_open(&c, port) != 0) {
        fprintf(stderr, "cannot connect\n");
        exit(1);
    }
    size_t got = 0;
    for (int i = 0; i < reads; i++) {
        double t = bench_now_s();
        const char *ans;
        size_t alen;
        if (bench_conn_send(&c, "GET", "/v1/events?key=hot&limit=1000", NULL, 0) != 0 ||
            bench_conn_recv(&c, &ans, &alen) != 200) {
            fprintf(stderr, "read failed\n");
            exit(1);
        }
        lat[i] = (bench_now_s() - t) * 1e6;
        got = alen;
    }
    bench_conn_close(&c);
    double p50 = bench_pct(lat, (size_t)reads, 50), p99 = bench_pct(lat, (size_t)reads, 99);
    printf("  GET ?key=hot&limit=1000 (1000 events, %zu bytes): p50 %.2f ms  p99 %.2f ms  "
           "(%d reads)\n", got, p50 / 1000, p99 / 1000, reads);
    printf("RESULT key_read log_events=%llu p50_ms=%.3f p99_ms=%.3f\n", (unsigned long long)total,
           p50 / 1000, p99 / 1000);
    free(lat);
}

/* Starts eventbusd again on dir (a port the kernel picks, then handed
 * over); waits up to 10 minutes for /healthz. */
static pid_t restart_on(const char *daemon, const char *dir, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    close(fd);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *port);
    pid_t pid = fork();
    if (pid == 0) {
        execl(daemon, daemon, "--listen", listen, "--data", dir, "--log-level", "warn",
              "--fsync", "never", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 60000; i++) {
        usleep(10000);
        if (bench_request(*port, "GET", "/healthz", NULL, NULL, 0) == 200)
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s EVENTBUSD [--events N] [--log-events N] [--reads N]\n",
                argv[0]);
        return 2;
    }
    uint64_t events = 100000, log_events = 10000000;
    int reads = 300;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            events = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--log-events"))
            log_events = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--reads"))
            reads = atoi(argv[i + 1]);
    }
    if (events)
        publish_rates(argv[1], events, "always"), publish_rates(argv[1], events, "never");
    if (!log_events)
        return 0;
    if (log_events < 1000)
        log_events = 1000;
    printf("key stream reads in a log of %llu events:\n", (unsigned long long)log_events);
    int port;
    char dir[256];
    const char *extra[] = {"--fsync", "never", NULL};
    pid_t pid = bench_start_daemon(argv[1], extra, &port, dir);
    if (pid < 0 || fill(port, log_events) != 0)
        return 1;
    key_reads(port, reads, log_events);
    /* Restart on the same data, after a clean stop and after SIGKILL: the
     * lookups come back from the segment summaries and the active segment. */
    const char *how[] = {"clean stop", "SIGKILL"};
    const char *tag[] = {"restart_clean", "restart_kill"};
    for (int k = 0; k < 2; k++) {
        kill(pid, k ? SIGKILL : SIGTERM);
        waitpid(pid, NULL, 0);
        double t0 = bench_now_s();
        pid = restart_on(argv[1], dir, &port);
        if (pid < 0)
            return 1;
        double ready = bench_now_s() - t0;
        printf("  restart after %s: ready in %.1f s\n", how[k], ready);
        printf("RESULT %s log_events=%llu seconds=%.2f\n", tag[k], (unsigned long long)log_events,
               ready);
        key_reads(port, reads, log_events);
    }
    bench_stop_daemon(pid, dir);
    return 0;
}
