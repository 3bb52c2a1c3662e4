/* main.c - eventbusd: reads its settings, locks the data directory, opens
 * the bus (recovering the logs), serves the HTTP API, and on SIGTERM or
 * SIGINT stops accepting, answers what is in flight, syncs and exits 0.
 * Under systemd (Type=notify) it sends READY=1 once its port accepts,
 * STOPPING=1 on a stop signal, and RELOADING=1 then READY=1 around SIGHUP,
 * which re-reads the TLS certificate and key (open connections are kept).
 * Plain HTTP (--listen) and HTTPS (--tls-listen) are two servers over the
 * same API.
 *
 * On PostgreSQL (--store) several nodes may share the database
 * (src/cluster): a node that takes the leader lock opens its bus before it
 * listens, as a single node does; one that cannot listens at once as a
 * follower (every request forwarded to the leader) and opens its bus when
 * the lock becomes its own. A leader that finds itself fenced (its lock
 * or epoch taken by another node) re-executes itself: it comes back as a
 * follower with nothing of its stale memory.
 *
 * Threads: the libuv loop (HTTP, API, bus, push delivery) on this thread;
 * one writer thread per log (events, meta) doing group commit; libcurl's
 * resolver threads (push delivery, forwarding); on PostgreSQL the
 * leadership thread (store_pg_lead.c). */
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
#include "cluster/cluster.h"
#include "config.h"
#include "eventbus/err.h"
#include "eventbus/version.h"
#include "http/http.h"
#include "http/tls.h"
#include "push/push.h"
#include "store/store_log.h"
#include "store/store_pg.h"
#include "util/logger.h"
#include "util/xmalloc.h"

typedef struct daemon_state {
    uv_loop_t       *loop;
    eb_config        cfg;
    eb_bus          *bus;
    eb_api          *api;
    eb_push         *push;    /* push delivery (webhooks) */
    eb_http_server  *http;    /* --listen, or NULL (off) */
    eb_http_server  *https;   /* --tls-listen, or NULL */
    eb_tls          *tls;
    int              running; /* servers not yet stopped */
    uv_signal_t      sigterm, sigint;
    uv_signal_t      sighup;  /* reload (see on_sighup) */
    uv_timer_t       insecure; /* --insecure: the hourly warning */
    int              signals; /* received so far */
    uint32_t         max_connections;
    eb_cluster      *cluster; /* --store: the node's role; NULL on the embedded log */
    eb_http_opts     ho;
    int              port;    /* --listen's bound port */
} daemon_state;

static void on_request(void *ud, eb_http_req *req)
{
    daemon_state *d = ud;
    if (d->cluster && eb_cluster_handle(d->cluster, req))
        return;
    eb_api_handle(d->api, req);
}

static void on_answer(void *ud, const eb_http_req *req, int status, const char *body,
                      size_t len)
{
    daemon_state *d = ud;
    if (d->api)
        eb_api_on_answer(d->api, req, status, body, len);
}

static char **saved_argv;

/* A leader fenced (store_pg_lead.c): its memory may be stale, so it stops
 * at once and comes back as a follower, the same process re-executed
 * (the listening sockets and database connections are close-on-exec). */
static void step_down(const char *why)
{
    EB_ERROR("cluster: no longer the leader (%s): stepping down, restarting as a follower",
             why);
    execv("/proc/self/exe", saved_argv);
    EB_ERROR("cluster: cannot re-execute: %s; exiting", strerror(errno));
    _exit(1);
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
    if (--d->running > 0)
        return;
    if (d->bus)
        eb_bus_close(d->bus); /* drains and syncs pending appends */
    d->bus = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    if (d->insecure.data)
        uv_close((uv_handle_t *)&d->insecure, NULL);
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
    eb_push_close(d->push); /* before the bus: no more leases, POSTs abandoned */
    d->push = NULL;
    eb_cluster_close(d->cluster); /* the leader lock goes: another node takes over */
    if (d->api)
        eb_api_shutdown(d->api);
    if (d->http)
        eb_http_server_shutdown(d->http, on_http_stopped, d);
    if (d->https)
        eb_http_server_shutdown(d->https, on_http_stopped, d);
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


/* SIGHUP: re-reads the TLS certificate and key (a failure keeps the old
 * ones and says why), and tells systemd (RELOADING=1 with the time
 * systemd >= 253 asks for, READY=1). */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    daemon_state *d = h->data;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    char err[600];
    if (!d->tls)
        EB_INFO("SIGHUP: reload: nothing to re-read (no TLS; settings are read at start); "
                "still serving %s", d->cfg.listen);
    else if (eb_tls_reload(d->tls, err, sizeof err) != 0)
        EB_ERROR("SIGHUP: TLS reload failed, keeping the current certificate: %s", err);
    else
        EB_INFO("SIGHUP: reloaded the TLS certificate %s and key %s (open connections kept)",
                d->cfg.tls_cert, d->cfg.tls_key);
    sd_notify(0, "READY=1");
}

static const char *fsync_name(eb_store_sync p)
{
    return p == EB_STORE_SYNC_ALWAYS ? "always" : p == EB_STORE_SYNC_INTERVAL ? "interval" : "never";
}

static void log_startup(const daemon_state *d, const eb_bus_report *r)
{
    EB_INFO("eventbusd %d.%d.%d: data %s, fsync %s", EB_VERSION_MAJOR, EB_VERSION_MINOR,
            EB_VERSION_PATCH, *d->cfg.store ? "in postgresql (--store)" : d->cfg.data,
            fsync_name(d->cfg.fsync));
    EB_INFO("events log recovered: %llu records in %llu segments (seq %llu..%llu), "
            "%llu torn bytes truncated, %u indexes rebuilt, %.1f ms",
            (unsigned long long)r->events.records, (unsigned long long)r->events.segments,
            (unsigned long long)r->events.first_seq, (unsigned long long)r->events.last_seq,
            (unsigned long long)r->events.truncated_bytes, r->events.indexes_rebuilt,
            r->events.elapsed_ms);
    EB_INFO("events lookups and counts: %llu records read, %u segment summaries rebuilt",
            (unsigned long long)r->events.records_read, r->events.summaries_rebuilt);
    EB_INFO("meta log recovered: %llu records; %zu schema versions; %zu consumer groups; "
            "%zu ids in the dedupe window",
            (unsigned long long)r->meta.records, r->schemas, r->groups, r->dedupe_ids);
}

/* One server of the API on addr (TLS when tls); its bound port in *port. */
static int serve(daemon_state *d, const eb_http_opts *ho, const char *addr, eb_tls *tls,
                 eb_http_server **out, int *port)
{
    int rc = eb_http_server_new(d->loop, ho, on_request, d, out);
    if (rc == 0 && tls)
        eb_http_server_set_tls(*out, tls);
    if (rc == 0)
        rc = eb_http_listen(*out, addr, port);
    if (rc) {
        EB_ERROR("cannot listen on %s: %s", addr, eb_strerror(rc));
        return -1;
    }
    d->running++;
    return 0;
}

/* --tls-listen: the TLS context and the HTTPS server. */
static int serve_tls(daemon_state *d, const eb_http_opts *ho)
{
    if (!*d->cfg.tls_listen)
        return 0;
    eb_tls_opts to = {.cert = d->cfg.tls_cert, .key = d->cfg.tls_key,
                      .client_ca = *d->cfg.tls_client_ca ? d->cfg.tls_client_ca : NULL};
    char err[600];
    if (eb_tls_new(&to, &d->tls, err, sizeof err) != 0) {
        EB_ERROR("TLS: %s", err);
        return -1;
    }
    int port = 0;
    if (serve(d, ho, d->cfg.tls_listen, d->tls, &d->https, &port) != 0)
        return -1;
    EB_INFO("listening on %s (port %d) with TLS%s", d->cfg.tls_listen, port,
            to.client_ca ? ", client certificates required" : "");
    return 0;
}

/* --- auth mode and the admin token file ---------------------------------- */

/* Resolves --auth from the listen address; -1 (said) if it may not run. */
static int auth_mode(eb_config *c)
{
    bool loop = eb_config_loopback(c);
    if (c->auth < 0)
        c->auth = loop ? 0 : 1;
    if (c->auth == 0 && !loop && !c->insecure) {
        EB_ERROR("refusing to serve %s without authentication: use --auth token (the default "
                 "off loopback), or --auth none --insecure to run open on a network",
                 c->listen);
        return -1;
    }
    return 0;
}

static void warn_insecure(uv_timer_t *t)
{
    daemon_state *d = t->data;
    EB_WARN("--insecure: serving %s WITHOUT authentication: anyone who reaches it may publish, "
            "consume and delete", d->cfg.listen);
}

typedef struct admin_file {
    char path[1024];
    char secret[EB_API_SECRET_LEN + 1];
} admin_file;

/* The admin token is durable: write the file (0600, never replacing one). */
static void admin_token_durable(void *arg, int status)
{
    admin_file *a = arg;
    int fd = status ? -1 : open(a->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        EB_ERROR("cannot create the admin token file %s: %s", a->path,
                 status ? eb_strerror(status) : strerror(errno));
    } else {
        char line[EB_API_SECRET_LEN + 2];
        int n = snprintf(line, sizeof line, "%s\n", a->secret);
        if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
            EB_ERROR("cannot write the admin token file %s: %s", a->path, strerror(errno));
        else
            EB_INFO("created the admin token file %s (token \"admin\", all scopes)", a->path);
        close(fd);
    }
    memset(a->secret, 0, sizeof a->secret);
    free(a);
}

/* --admin-token-file: if the file does not exist, a fresh token "admin"
 * with every scope (replacing an older "admin") goes into it. */
static int admin_token_file(daemon_state *d)
{
    const char *path = d->cfg.admin_token_file;
    if (!*path)
        return 0;
    if (access(path, F_OK) == 0) {
        EB_INFO("admin token file %s exists: left as it is", path);
        return 0;
    }
    static const char *const all[] = {"admin", "read", "metrics", "schemas:write",
                                      "groups:write", "publish:*", "consume:*"};
    admin_file *a = eb_xcalloc(1, sizeof *a);
    snprintf(a->path, sizeof a->path, "%s", path);
    int rc = eb_api_token_create(d->api, "admin", all, sizeof all / sizeof all[0], a->secret,
                                 admin_token_durable, a);
    if (rc) {
        EB_ERROR("cannot create the admin token: %s", eb_strerror(rc));
        free(a);
        return -1;
    }
    return 0;
}

/* Opens the bus, the API over it and push delivery: 0 or an error (a
 * follower's on_leader retries EB_EEXIST: the old leader's writer). */
static int open_bus(daemon_state *d)
{
    eb_bus_opts bo = {
        .data_dir = *d->cfg.store ? d->cfg.store : d->cfg.data,
        .engine = *d->cfg.store ? &eb_store_pg_engine : &eb_store_log_engine,
        .fsync = d->cfg.fsync,
        .fsync_interval_ms = d->cfg.fsync_interval_ms, .retention_ms = d->cfg.retention_ms,
        .retention_bytes = d->cfg.retention_bytes, .dedupe_window_ms = d->cfg.dedupe_window_ms,
        .max_event_bytes = d->cfg.max_event_bytes, .require_schemas = d->cfg.require_schemas,
        .meta_snapshot_bytes = d->cfg.meta_snapshot_bytes,
        .dedupe_max_bytes = d->cfg.dedupe_max_bytes, .max_schemas = d->cfg.max_schemas,
        .max_groups = d->cfg.max_groups, .max_types = d->cfg.max_types, .max_in_flight_total = d->cfg.max_in_flight_total,
        .history_interval_ms = d->cfg.history_interval_ms, .max_delay_ms = d->cfg.max_delay_ms,
        .max_delayed = d->cfg.max_delayed, .history_groups = (size_t)d->cfg.history_groups,
        .delivery_cache_bytes = d->cfg.delivery_cache_bytes,
        .lag_walk_records = (uint32_t)d->cfg.lag_walk_records};
    eb_bus_report rep;
    int rc = eb_bus_open(d->loop, &bo, &d->bus, &rep);
    if (rc) {
        if (!d->cluster)
            EB_ERROR("cannot open the data in %s: %s",
                     *d->cfg.store ? "postgresql (--store)" : d->cfg.data, eb_strerror(rc));
        d->bus = NULL;
        return rc;
    }
    eb_api_opts ao = {.auth = d->cfg.auth ? EB_AUTH_TOKEN : EB_AUTH_NONE,
                      .metrics_public = d->cfg.metrics_public,
                      .auth_fail_limit = d->cfg.auth_fail_limit,
                      .metrics_groups = d->cfg.metrics_groups ? d->cfg.metrics_groups
                                                              : EB_API_METRICS_NO_GROUPS};
    if ((rc = eb_api_new(d->bus, &ao, &d->api)) != 0) {
        EB_ERROR("cannot start the API: %s", eb_strerror(rc));
        exit(1);
    }
    eb_push_opts po = {.allow_private = d->cfg.push_allow_private,
                       .ca_file = *d->cfg.push_ca_file ? d->cfg.push_ca_file : NULL,
                       .max_connections = d->cfg.push_max_connections};
    if ((rc = eb_push_open(d->loop, d->bus, &po, &d->push)) != 0) {
        EB_ERROR("cannot start push delivery (libcurl): %s", eb_strerror(rc));
        exit(1);
    }
    if (d->cfg.push_allow_private)
        EB_WARN("--push-allow-private: pushed groups may POST to loopback and private "
                "addresses");
    log_startup(d, &rep);
    EB_INFO("auth %s%s", d->cfg.auth ? "token" : "none",
            d->cfg.auth && d->cfg.metrics_public ? " (/metrics public)" : "");
    if (admin_token_file(d) != 0)
        exit(1);
    return 0;
}

static int on_leader(void *arg)
{
    return open_bus(arg);
}

/* The HTTP and HTTPS servers. */
static int start_servers(daemon_state *d)
{
    /* A request body may hold a batch: 4 events of the largest size, and at
     * least 4 MiB (1000 events of 4 KiB). Larger bodies get 413 as soon as
     * their headers are read. */
    d->ho = (eb_http_opts){.max_body = (size_t)d->cfg.max_event_bytes * 4,
                           .max_conn_buffer = d->cfg.conn_buffer,
                           .header_timeout_ms = d->cfg.header_timeout_ms,
                           .body_timeout_ms = d->cfg.body_timeout_ms,
                           .max_connections = size_connections(d->cfg.max_connections),
                           .warn = http_warn,
                           .on_answer = on_answer,
                           .timed = eb_logger_on(EB_LVL_DEBUG)}; /* the access log's µs */
    if (d->ho.max_body < (4u << 20))
        d->ho.max_body = 4u << 20;
    d->max_connections = d->ho.max_connections;
    if (strcmp(d->cfg.listen, "off") != 0 &&
        serve(d, &d->ho, d->cfg.listen, NULL, &d->http, &d->port) != 0)
        return -1;
    if (serve_tls(d, &d->ho) != 0)
        return -1;
    if (d->http)
        EB_INFO("listening on %s (port %d), at most %u connections", d->cfg.listen, d->port,
                d->max_connections);
    return 0;
}

/* --advertise-url, or http://IP:PORT of --listen (https:// of
 * --tls-listen when --listen is off); the host name for a wildcard. */
static void advertise_url(const daemon_state *d, char *out, size_t cap)
{
    if (*d->cfg.advertise_url) {
        snprintf(out, cap, "%s", d->cfg.advertise_url);
        return;
    }
    bool plain = strcmp(d->cfg.listen, "off") != 0;
    const char *addr = plain ? d->cfg.listen : d->cfg.tls_listen;
    const char *colon = strrchr(addr, ':');
    int hlen = colon ? (int)(colon - addr) : (int)strlen(addr);
    char host[256];
    snprintf(host, sizeof host, "%.*s", hlen, addr);
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]")) {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
    }
    int port = plain && d->port ? d->port : colon ? atoi(colon + 1) : 0;
    snprintf(out, cap, "%s://%s:%d", plain ? "http" : "https", host, port);
}

static int open_all(daemon_state *d)
{
    if (!*d->cfg.store)
        return open_bus(d) == 0 && start_servers(d) == 0 ? 0 : -1;
    if (start_servers(d) != 0)
        return -1;
    char url[512];
    advertise_url(d, url, sizeof url);
    eb__store_pg_fenced = step_down;
    eb__store_pg_timeout_ms = d->cfg.store_timeout_ms;
    eb_cluster_opts co = {.uri = d->cfg.store, .advertise_url = url,
                          .timeout_ms = d->cfg.forward_timeout_ms,
                          .max_answer = (size_t)d->cfg.forward_max_answer,
                          .max_buffered = (size_t)d->cfg.forward_max_buffered,
                          .max_forwards = d->max_connections,
                          .on_leader = on_leader, .arg = d};
    int rc = eb_cluster_open(d->loop, &co, &d->cluster);
    if (rc) {
        if (rc != EB_ECONNECT)
            EB_ERROR("cannot start the cluster role: %s", eb_strerror(rc));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static daemon_state d;
    eb_set_oom_handler(eb_oom); /* the one policy: abort on allocation failure */
    char err[512] = "";
    static char out[EB_CONFIG_OUT_MAX];
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
    saved_argv = argv;
    signal(SIGPIPE, SIG_IGN);
    if (auth_mode(&d.cfg) != 0)
        return 2;
    if (!*d.cfg.store && lock_data_dir(d.cfg.data) < 0)
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
    if (!d.cfg.auth && !eb_config_loopback(&d.cfg)) {
        uv_timer_init(d.loop, &d.insecure);
        d.insecure.data = &d;
        warn_insecure(&d.insecure);
        uv_timer_start(&d.insecure, warn_insecure, 3600000, 3600000);
        uv_unref((uv_handle_t *)&d.insecure);
    }
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s",
               strcmp(d.cfg.listen, "off") ? d.cfg.listen : d.cfg.tls_listen); /* it accepts */
    uv_run(d.loop, UV_RUN_DEFAULT);
    eb_api_free(d.api);
    eb_cluster_free(d.cluster);
    eb_http_server_free(d.http);
    eb_http_server_free(d.https);
    eb_tls_free(d.tls);
    uv_loop_close(d.loop);
    EB_INFO("stopped cleanly");
    return 0;
}
