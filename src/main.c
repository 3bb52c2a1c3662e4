/* main.c - eventbusd: reads its settings, locks the data directory, opens
 * the bus (recovering the logs), serves the HTTP API, and on SIGTERM or
 * SIGINT stops accepting, answers what is in flight, syncs and exits 0.
 * Under systemd (Type=notify) it sends READY=1 once its port accepts,
 * STOPPING=1 on a stop signal, and RELOADING=1 then READY=1 around SIGHUP,
 * which re-reads nothing yet (a later TLS setting reloads its certificates).
 *
 * Threads: the libuv loop (HTTP, API, bus) on this thread; one writer
 * thread per log (events, meta) doing group commit. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "bus/bus.h"
#include "config.h"
#include "eventbus/err.h"
#include "eventbus/version.h"
#include "http/http.h"
#include "store/store_log.h"
#include "util/logger.h"
#include "util/xmalloc.h"

typedef struct daemon_state {
    uv_loop_t       *loop;
    eb_config        cfg;
    eb_bus          *bus;
    eb_api          *api;
    eb_http_server  *http;
    uv_signal_t      sigterm, sigint;
    uv_signal_t      sighup;  /* reload (see on_sighup) */
    int              signals; /* received so far */
    uint32_t         max_connections;
} daemon_state;

static void on_request(void *ud, eb_http_req *req)
{
    eb_api_handle(ud, req);
}

/* Takes an exclusive lock on DATA/LOCK for the life of the process. */
static int lock_data_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        EB_ERROR("cannot create data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        EB_ERROR("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        EB_ERROR("data directory %s is in use by another eventbusd (lock %s held)", dir, path);
        close(fd);
        return -1;
    }
    return fd; /* kept open: the lock lives as long as the process */
}

static void on_http_stopped(void *arg)
{
    daemon_state *d = arg;
    eb_bus_close(d->bus); /* drains and syncs pending appends */
    d->bus = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_state *d = h->data;
    if (++d->signals > 1) {
        EB_WARN("second signal: exiting now");
        _exit(1);
    }
    EB_INFO("%s: stopping (finishing requests in flight)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1");
    eb_api_shutdown(d->api);
    eb_http_server_shutdown(d->http, on_http_stopped, d);
}

static void http_warn(void *arg, const char *msg)
{
    (void)arg;
    EB_WARN("%s", msg);
}

/* Raises the descriptor limit to its hard limit and sizes the connection
 * cap from it when --max-connections is not given: the limit less 256
 * (log segments, the listener, libuv's own), at least 16. */
static uint32_t size_connections(uint32_t asked)
{
    struct rlimit rl;
    rlim_t have = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t old = rl.rlim_cur;
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                rl.rlim_cur = old;
        }
        have = rl.rlim_cur;
    }
    uint32_t room = have > 10000000 + 256 ? 10000000 : have > 512 ? (uint32_t)(have - 256)
                                                                    : (uint32_t)(have / 2);
    if (room < 16)
        room = 16;
    if (asked && asked > room)
        EB_WARN("--max-connections %u is over what the descriptor limit (%llu) leaves room "
                "for; past it connections get 503 (out of descriptors)", asked,
                (unsigned long long)have);
    return asked ? asked : room;
}


/* SIGHUP: the reload hook. Nothing is re-read yet; it says so, and tells
 * systemd (RELOADING=1 with the time systemd >= 253 asks for, READY=1). */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    daemon_state *d = h->data;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    EB_INFO("SIGHUP: reload: nothing to re-read (settings are read at start); still serving %s",
            d->cfg.listen);
    sd_notify(0, "READY=1");
}

static const char *fsync_name(eb_store_sync p)
{
    return p == EB_STORE_SYNC_ALWAYS ? "always" : p == EB_STORE_SYNC_INTERVAL ? "interval" : "never";
}

static void log_startup(const daemon_state *d, const eb_bus_report *r, int port)
{
    EB_INFO("eventbusd %d.%d.%d: data %s, fsync %s", EB_VERSION_MAJOR, EB_VERSION_MINOR,
            EB_VERSION_PATCH, d->cfg.data, fsync_name(d->cfg.fsync));
    EB_INFO("events log recovered: %llu records in %llu segments (seq %llu..%llu), "
            "%llu torn bytes truncated, %u indexes rebuilt, %.1f ms",
            (unsigned long long)r->events.records, (unsigned long long)r->events.segments,
            (unsigned long long)r->events.first_seq, (unsigned long long)r->events.last_seq,
            (unsigned long long)r->events.truncated_bytes, r->events.indexes_rebuilt,
            r->events.elapsed_ms);
    EB_INFO("meta log recovered: %llu records; %zu schema versions; %zu consumer groups; "
            "%zu ids in the dedupe window",
            (unsigned long long)r->meta.records, r->schemas, r->groups, r->dedupe_ids);
    EB_INFO("listening on %s (port %d), at most %u connections", d->cfg.listen, port,
            d->max_connections);
}

static int open_all(daemon_state *d)
{
    eb_bus_opts bo = {
        .data_dir = d->cfg.data, .engine = &eb_store_log_engine, .fsync = d->cfg.fsync,
        .fsync_interval_ms = d->cfg.fsync_interval_ms, .retention_ms = d->cfg.retention_ms,
        .retention_bytes = d->cfg.retention_bytes, .dedupe_window_ms = d->cfg.dedupe_window_ms,
        .max_event_bytes = d->cfg.max_event_bytes, .require_schemas = d->cfg.require_schemas,
        .meta_snapshot_bytes = d->cfg.meta_snapshot_bytes,
        .dedupe_max_bytes = d->cfg.dedupe_max_bytes, .max_schemas = d->cfg.max_schemas,
        .max_groups = d->cfg.max_groups, .max_in_flight_total = d->cfg.max_in_flight_total,
        .history_interval_ms = d->cfg.history_interval_ms};
    eb_bus_report rep;
    int rc = eb_bus_open(d->loop, &bo, &d->bus, &rep);
    if (rc) {
        EB_ERROR("cannot open the data in %s: %s", d->cfg.data, eb_strerror(rc));
        return -1;
    }
    /* A request body may hold a batch: 4 events of the largest size, and at
     * least 4 MiB (1000 events of 4 KiB). Larger bodies get 413 as soon as
     * their headers are read. */
    eb_http_opts ho = {.max_body = (size_t)d->cfg.max_event_bytes * 4,
                       .max_conn_buffer = d->cfg.conn_buffer,
                       .header_timeout_ms = d->cfg.header_timeout_ms,
                       .body_timeout_ms = d->cfg.body_timeout_ms,
                       .max_connections = size_connections(d->cfg.max_connections),
                       .warn = http_warn};
    if (ho.max_body < (4u << 20))
        ho.max_body = 4u << 20;
    d->max_connections = ho.max_connections;
    int port = 0;
    eb_api_opts ao = {.metrics_groups = d->cfg.metrics_groups ? d->cfg.metrics_groups
                                                              : EB_API_METRICS_NO_GROUPS};
    if ((rc = eb_api_new(d->bus, &ao, &d->api)) != 0 ||
        (rc = eb_http_server_new(d->loop, &ho, on_request, d->api, &d->http)) != 0 ||
        (rc = eb_http_listen(d->http, d->cfg.listen, &port)) != 0) {
        EB_ERROR("cannot listen on %s: %s", d->cfg.listen, eb_strerror(rc));
        return -1;
    }
    log_startup(d, &rep, port);
    return 0;
}

int main(int argc, char **argv)
{
    static daemon_state d;
    eb_set_oom_handler(eb_oom); /* the one policy: abort on allocation failure */
    char err[512] = "", out[4096] = "";
    int rc = eb_config_parse(&d.cfg, argc, argv, err, sizeof err, out, sizeof out);
    if (rc == 1) {
        fputs(out, stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "eventbusd: %s\n", err);
        return 2;
    }
    eb_logger_setup(d.cfg.log_level, d.cfg.log_json);
    signal(SIGPIPE, SIG_IGN);
    if (lock_data_dir(d.cfg.data) < 0)
        return 1;
    d.loop = uv_default_loop();
    if (open_all(&d) != 0) {
        if (d.bus)
            eb_bus_close(d.bus);
        return 1;
    }
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_init(d.loop, &d.sighup);
    d.sighup.data = &d;
    uv_signal_start(&d.sighup, on_sighup, SIGHUP);
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s", d.cfg.listen); /* the port accepts */
    uv_run(d.loop, UV_RUN_DEFAULT);
    eb_api_free(d.api);
    eb_http_server_free(d.http);
    uv_loop_close(d.loop);
    EB_INFO("stopped cleanly");
    return 0;
}
