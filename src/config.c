/* config.c - eventbusd's flags and EVENTBUS_* environment (see config.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eventbus/err.h"
#include "bus/bus.h"
#include "eventbus/version.h"
#include "util/duration.h"

static const char usage[] =
    "usage: eventbusd [options]\n"
    "  --listen IP:PORT        HTTP address; [::1]:PORT for IPv6; port 1-65535, 0: any free one (default 127.0.0.1:8470)  EVENTBUS_LISTEN\n"
    "  --data DIR              data directory (default ./data)          EVENTBUS_DATA\n"
    "  --store URI             keep the data in PostgreSQL instead: a libpq URI like\n"
    "                          postgresql://user@host/db (not with --data)  EVENTBUS_STORE\n"
    "  --advertise-url URL     with --store: this node's URL for the other nodes on the same database,\n"
    "                          which forward requests to the leader (default http://IP:PORT of --listen,\n"
    "                          the host name for 0.0.0.0 or [::])  EVENTBUS_ADVERTISE_URL\n"
    "  --fsync POLICY          always|interval|never (default always)   EVENTBUS_FSYNC\n"
    "  --fsync-interval-ms N   sync period for 'interval' (default 100) EVENTBUS_FSYNC_INTERVAL_MS\n"
    "  --retention AGE         delete events older than AGE, like 7d or 24h (default 0: kept forever)  EVENTBUS_RETENTION\n"
    "  --retention-bytes SIZE  keep the log under SIZE, like 10GB (default 0: unlimited)  EVENTBUS_RETENTION_BYTES\n"
    "  --max-event-bytes SIZE  largest event accepted (default 1MiB)    EVENTBUS_MAX_EVENT_BYTES\n"
    "  --dedupe-window AGE     idempotent-publish window (default 2m)   EVENTBUS_DEDUPE_WINDOW\n"
    "  --dedupe-max-bytes SIZE memory of the dedupe window; past it the oldest ids are forgotten early (default 64MiB)  EVENTBUS_DEDUPE_MAX_BYTES\n"
    "  --max-schemas N         schema versions held, all types; more are refused (default 1000)  EVENTBUS_MAX_SCHEMAS\n"
    "  --max-groups N          consumer groups; more are refused (default 1000)  EVENTBUS_MAX_GROUPS\n"
    "  --max-types N           event types counted by name in /v1/stats and /metrics; the rest as \"_other\" (default 1000)  EVENTBUS_MAX_TYPES\n"
    "  --max-in-flight-total N leased deliveries, all groups; pulls get none past it (default 1000000)  EVENTBUS_MAX_IN_FLIGHT_TOTAL\n"
    "  --max-delay AGE         deliver_at/delay at most this far ahead; later is refused (default 30d)  EVENTBUS_MAX_DELAY\n"
    "  --max-delayed N         delayed events waiting at once; more are refused (default 1000000)  EVENTBUS_MAX_DELAYED\n"
    "  --require-schemas       refuse event types with no schema (default off)  EVENTBUS_REQUIRE_SCHEMAS=1\n"
    "  --meta-snapshot-bytes SIZE  meta log growth between state snapshots (default 64MiB)  EVENTBUS_META_SNAPSHOT_BYTES\n"
    "  --tls-listen IP:PORT    HTTPS address, beside --listen (which may be 'off'); needs --tls-cert and --tls-key  EVENTBUS_TLS_LISTEN\n"
    "  --tls-cert FILE         PEM certificate and its chain; re-read on SIGHUP  EVENTBUS_TLS_CERT\n"
    "  --tls-key FILE          PEM private key; re-read on SIGHUP  EVENTBUS_TLS_KEY\n"
    "  --tls-client-ca FILE    PEM CAs: require a client certificate chaining to one (mutual TLS)  EVENTBUS_TLS_CLIENT_CA\n"
    "  --auth MODE             token|none (default none when listening on loopback only, else token)  EVENTBUS_AUTH\n"
    "  --insecure              allow --auth none on a non-loopback address (warned at start and hourly)  EVENTBUS_INSECURE=1\n"
    "  --admin-token-file PATH create PATH (mode 0600) holding a fresh all-scopes token named admin if it does not exist  EVENTBUS_ADMIN_TOKEN_FILE\n"
    "  --metrics-public        serve /metrics without a token  EVENTBUS_METRICS_PUBLIC=1\n"
    "  --auth-fail-limit N     failed authentications from one address before it backs off (default 10, 0: never)  EVENTBUS_AUTH_FAIL_LIMIT\n"
    "  --max-connections N     open connections at most (default: from ulimit -n, raised\n"
    "                          to its hard limit at start, less 256)  EVENTBUS_MAX_CONNECTIONS\n"
    "  --header-timeout AGE    a request's headers must arrive within (default 10s)  EVENTBUS_HEADER_TIMEOUT\n"
    "  --body-timeout AGE      a whole request must arrive within (default 2m)  EVENTBUS_BODY_TIMEOUT\n"
    "  --conn-buffer SIZE      bytes held per connection before reading it pauses (default 4MiB)  EVENTBUS_CONN_BUFFER\n"
    "  --metrics-groups N      per-group /metrics series for the N groups with the largest lag (default 1000, 0: none)  EVENTBUS_METRICS_GROUPS\n"
    "  --history-interval AGE  per-group samples for charts, 720 kept (default 5s: an hour)  EVENTBUS_HISTORY_INTERVAL\n"
    "  --push-allow-private    let pushed groups POST to loopback, private, link-local and unique-local addresses (default off: refused)  EVENTBUS_PUSH_ALLOW_PRIVATE=1\n"
    "  --push-ca-file FILE     PEM CAs that push endpoints' TLS certificates are verified against (default: the system store)  EVENTBUS_PUSH_CA_FILE\n"
    "  --push-max-connections N  open connections to push endpoints, all groups (default 256)  EVENTBUS_PUSH_MAX_CONNECTIONS\n"
    "  --history-groups N      groups with a history ring (28 KiB each, made at a group's first activity; default 1000)  EVENTBUS_HISTORY_GROUPS\n"
    "  --delivery-cache-bytes SIZE  recent events kept for deliveries, which hold no copy (default 16MiB)  EVENTBUS_DELIVERY_CACHE_BYTES\n"
    "  --forward-max-answer SIZE  with --store, on a follower: a relayed answer of the leader larger than\n"
    "                          this is not passed on (502 answer_too_large; default 256MiB)  EVENTBUS_FORWARD_MAX_ANSWER\n"
    "  --forward-max-buffered SIZE  answer bytes a follower holds for all relayed requests at once;\n"
    "                          past it 503 overloaded (default 1GiB)  EVENTBUS_FORWARD_MAX_BUFFERED\n"
    "  --forward-timeout AGE   a relayed request's whole time; keep it above the longest long poll,\n"
    "                          60s (default 75s)  EVENTBUS_FORWARD_TIMEOUT\n"
    "  --lag-walk-records N    records (and filter evaluations) the lag count of groups with a filter reads per loop turn, off the request path (default 1024)  EVENTBUS_LAG_WALK_RECORDS\n"
    "  --store-timeout AGE     with --store: a statement or commit waits this long for the database at\n"
    "                          most, then its connection is dropped and the request answered 503\n"
    "                          storage_unavailable (also the TCP keepalive/user timeout; default 10s)  EVENTBUS_STORE_TIMEOUT\n"
    "  --log-level LEVEL       debug|info|warn|error (default info; debug adds the access log:\n"
    "                          one line per answer, with the cause of every 4xx/5xx)  EVENTBUS_LOG_LEVEL\n"
    "  --log-format FORMAT     text|json (default text)                 EVENTBUS_LOG_FORMAT\n"
    "  -h, --help              this help\n"
    "  --version               the version\n";

/* A flag's duration (util/duration.h; a bare number is ms) -> ms. */
static int duration_ms(const char *s, uint64_t *ms)
{
    uint64_t us;
    if (eb_duration_parse(s, strlen(s), EB_DURATION_US_MS, &us) != 0)
        return -1;
    *ms = us / 1000u;
    return 0;
}

/* A whole number in [lo, hi]. */
static int count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || *s == '-' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int eb_parse_size(const char *s, uint64_t *bytes)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    static const struct { const char *u; double m; } units[] = {
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcasecmp(end, units[i].u)) {
            *bytes = (uint64_t)(v * units[i].m);
            return 0;
        }
    return -1;
}

static void defaults(eb_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8470");
    snprintf(c->data, sizeof c->data, "./data");
    c->fsync = EB_STORE_SYNC_ALWAYS;
    c->fsync_interval_ms = 100;
    c->max_event_bytes = 1u << 20;
    c->dedupe_window_ms = 120000;
    c->dedupe_max_bytes = EB_BUS_DEFAULT_DEDUPE_MAX_BYTES;
    c->max_schemas = EB_BUS_DEFAULT_MAX_SCHEMAS;
    c->max_groups = EB_BUS_DEFAULT_MAX_GROUPS;
    c->max_types = EB_BUS_DEFAULT_MAX_TYPES;
    c->max_in_flight_total = EB_BUS_DEFAULT_MAX_IN_FLIGHT_TOTAL;
    c->max_delay_ms = EB_BUS_DEFAULT_MAX_DELAY_MS;
    c->max_delayed = EB_BUS_DEFAULT_MAX_DELAYED;
    c->header_timeout_ms = 10000;
    c->body_timeout_ms = 120000;
    c->conn_buffer = 4u << 20;
    c->history_interval_ms = 5000;
    c->history_groups = EB_BUS_DEFAULT_HISTORY_GROUPS;
    c->delivery_cache_bytes = EB_BUS_DEFAULT_DELIVERY_CACHE_BYTES;
    c->lag_walk_records = EB_BUS_DEFAULT_LAG_WALK_RECORDS;
    c->log_level = EB_LVL_INFO;
    c->auth = -1;
    c->metrics_groups = 1000;
    c->auth_fail_limit = 10;
    c->forward_max_answer = (uint64_t)256 << 20;
    c->forward_max_buffered = (uint64_t)1 << 30;
    c->forward_timeout_ms = 75000;
    c->store_timeout_ms = 10000;
}

static bool ip_literal(const char *host, size_t n);

static bool loopback(const char *a)
{
    return !strncmp(a, "127.", 4) || !strncmp(a, "[::1]:", 6);
}

bool eb_config_loopback(const eb_config *c)
{
    return (!strcmp(c->listen, "off") || loopback(c->listen)) &&
           (!*c->tls_listen || loopback(c->tls_listen));
}

/* An IP:PORT flag value (--listen, --tls-listen) checked, into dst. */
static const char *address(const char *v, char *dst, size_t cap)
{
    if (!strchr(v, ':') || strlen(v) >= cap)
        return "expected IP:PORT";
    const char *port = strrchr(v, ':') + 1;
    if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
        strtoull(port, NULL, 10) > 65535)
        return "the port must be a number from 1 to 65535 (0: any free port)";
    if (!ip_literal(v, (size_t)(port - 1 - v)))
        return "the host must be an IP address like 127.0.0.1, 0.0.0.0 or [::1] (names are not "
               "resolved)";
    snprintf(dst, cap, "%s", v);
    return NULL;
}

/* A boolean flag's value: 1, true, yes (or none given) / 0, false, no. */
static int flag_bool(const char *v, bool *out)
{
    bool on = !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes");
    if (!on && strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "no") && *v)
        return -1;
    *out = on;
    return 0;
}

/* True if the n bytes at host are an IPv4 address or a bracketed IPv6 one. */
static bool ip_literal(const char *host, size_t n)
{
    char h[64];
    unsigned char addr[16];
    bool v6 = n >= 2 && host[0] == '[' && host[n - 1] == ']';
    if (n >= sizeof h)
        return false;
    snprintf(h, sizeof h, "%.*s", v6 ? (int)n - 2 : (int)n, v6 ? host + 1 : host);
    return inet_pton(v6 ? AF_INET6 : AF_INET, h, addr) == 1;
}

/* Applies one setting by its flag name (without "--"). */
static int apply(eb_config *c, const char *name, const char *v, char *err, size_t errlen)
{
    uint64_t n = 0;
#define BAD(what) do { snprintf(err, errlen, "--%s: %s (got \"%s\")", name, what, v); return -1; } while (0)
    const char *why;
    if (!strcmp(name, "listen")) {
        if (!strcmp(v, "off"))
            snprintf(c->listen, sizeof c->listen, "off");
        else if ((why = address(v, c->listen, sizeof c->listen)))
            BAD(why);
    } else if (!strcmp(name, "tls-listen")) {
        if ((why = address(v, c->tls_listen, sizeof c->tls_listen)))
            BAD(why);
    } else if (!strcmp(name, "tls-cert") || !strcmp(name, "tls-key") ||
               !strcmp(name, "tls-client-ca")) {
        char *dst = name[4] == 'c' && name[5] == 'e' ? c->tls_cert
                    : name[4] == 'k'                 ? c->tls_key
                                                     : c->tls_client_ca;
        if (!*v || strlen(v) >= sizeof c->tls_cert) BAD("expected a file path");
        snprintf(dst, sizeof c->tls_cert, "%s", v);
    } else if (!strcmp(name, "data")) {
        if (!*v || strlen(v) >= sizeof c->data) BAD("expected a directory");
        snprintf(c->data, sizeof c->data, "%s", v);
        c->data_from = c->parsing_flags ? 2 : 1;
    } else if (!strcmp(name, "store")) {
        if (strncmp(v, "postgresql://", 13) && strncmp(v, "postgres://", 11))
            BAD("expected a PostgreSQL URI, postgresql://...");
        if (strlen(v) >= sizeof c->store) BAD("too long");
        snprintf(c->store, sizeof c->store, "%s", v);
        c->store_from = c->parsing_flags ? 2 : 1;
    } else if (!strcmp(name, "advertise-url")) {
        if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
            BAD("expected an http:// or https:// URL");
        if (strlen(v) >= sizeof c->advertise_url) BAD("too long");
        snprintf(c->advertise_url, sizeof c->advertise_url, "%s", v);
        size_t ul = strlen(c->advertise_url);
        while (ul > 8 && c->advertise_url[ul - 1] == '/')
            c->advertise_url[--ul] = '\0';
    } else if (!strcmp(name, "fsync")) {
        if (!strcmp(v, "always")) c->fsync = EB_STORE_SYNC_ALWAYS;
        else if (!strcmp(v, "interval")) c->fsync = EB_STORE_SYNC_INTERVAL;
        else if (!strcmp(v, "never")) c->fsync = EB_STORE_SYNC_NEVER;
        else BAD("expected always, interval or never");
    } else if (!strcmp(name, "fsync-interval-ms")) {
        if (duration_ms(v, &n) || n < 1 || n > 60000) BAD("expected 1 to 60000 ms");
        c->fsync_interval_ms = (uint32_t)n;
    } else if (!strcmp(name, "retention")) {
        if (duration_ms(v, &c->retention_ms)) BAD("expected a duration like 7d or 24h");
    } else if (!strcmp(name, "retention-bytes")) {
        if (eb_parse_size(v, &c->retention_bytes)) BAD("expected a size like 10GB");
    } else if (!strcmp(name, "max-event-bytes")) {
        if (eb_parse_size(v, &n) || n < 256 || n > (64u << 20)) BAD("expected 256B to 64MiB");
        c->max_event_bytes = (uint32_t)n;
    } else if (!strcmp(name, "dedupe-window")) {
        if (duration_ms(v, &c->dedupe_window_ms)) BAD("expected a duration like 2m");
    } else if (!strcmp(name, "dedupe-max-bytes")) {
        if (eb_parse_size(v, &c->dedupe_max_bytes) || c->dedupe_max_bytes < 4096)
            BAD("expected a size of at least 4KiB like 64MiB");
    } else if (!strcmp(name, "max-schemas")) {
        if (count(v, 1, 10000000, &c->max_schemas)) BAD("expected 1 to 10000000");
    } else if (!strcmp(name, "max-groups")) {
        if (count(v, 1, 1000000, &c->max_groups)) BAD("expected 1 to 1000000");
    } else if (!strcmp(name, "max-types")) {
        if (count(v, 1, 1000000, &c->max_types)) BAD("expected 1 to 1000000");
    } else if (!strcmp(name, "max-in-flight-total")) {
        if (count(v, 1, 1000000000, &c->max_in_flight_total)) BAD("expected 1 to 1000000000");
    } else if (!strcmp(name, "max-delay")) {
        if (duration_ms(v, &n) || n < 1000 || n > 3650ull * 86400 * 1000)
            BAD("expected a duration from 1s to 3650d like 30d");
        c->max_delay_ms = n;
    } else if (!strcmp(name, "max-delayed")) {
        if (count(v, 1, 100000000, &c->max_delayed)) BAD("expected 1 to 100000000");
    } else if (!strcmp(name, "require-schemas")) {
        if (flag_bool(v, &c->require_schemas)) BAD("expected 1, true, yes, 0, false or no");
    } else if (!strcmp(name, "insecure")) {
        if (flag_bool(v, &c->insecure)) BAD("expected 1, true, yes, 0, false or no");
    } else if (!strcmp(name, "metrics-public")) {
        if (flag_bool(v, &c->metrics_public)) BAD("expected 1, true, yes, 0, false or no");
    } else if (!strcmp(name, "auth")) {
        if (strcmp(v, "token") && strcmp(v, "none")) BAD("expected token or none");
        c->auth = !strcmp(v, "token");
    } else if (!strcmp(name, "admin-token-file")) {
        if (!*v || strlen(v) >= sizeof c->admin_token_file) BAD("expected a file path");
        snprintf(c->admin_token_file, sizeof c->admin_token_file, "%s", v);
    } else if (!strcmp(name, "auth-fail-limit")) {
        char *end;
        unsigned long long k = strtoull(v, &end, 10);
        if (!*v || *end || k > 1000000) BAD("expected 0 to 1000000");
        c->auth_fail_limit = (uint32_t)k;
    } else if (!strcmp(name, "meta-snapshot-bytes")) {
        if (eb_parse_size(v, &c->meta_snapshot_bytes) || c->meta_snapshot_bytes < 4096)
            BAD("expected a size of at least 4KiB like 64MiB");
    } else if (!strcmp(name, "max-connections")) {
        if (count(v, 1, 10000000, &n)) BAD("expected 1 to 10000000");
        c->max_connections = (uint32_t)n;
    } else if (!strcmp(name, "header-timeout")) {
        if (duration_ms(v, &n) || n < 100 || n > 3600000) BAD("expected 100ms to 1h");
        c->header_timeout_ms = (uint32_t)n;
    } else if (!strcmp(name, "body-timeout")) {
        if (duration_ms(v, &n) || n < 100 || n > 86400000) BAD("expected 100ms to 24h");
        c->body_timeout_ms = (uint32_t)n;
    } else if (!strcmp(name, "conn-buffer")) {
        if (eb_parse_size(v, &n) || n < 4096 || n > (1ull << 30)) BAD("expected 4KiB to 1GiB");
        c->conn_buffer = (size_t)n;
    } else if (!strcmp(name, "metrics-groups")) {
        if (count(v, 0, 1000000, &n)) BAD("expected 0 to 1000000");
        c->metrics_groups = (uint32_t)n;
    } else if (!strcmp(name, "history-interval")) {
        if (duration_ms(v, &n) || n < 100 || n > 3600000) BAD("expected 100ms to 1h like 5s");
        c->history_interval_ms = (uint32_t)n;
    } else if (!strcmp(name, "push-allow-private")) {
        if (flag_bool(v, &c->push_allow_private)) BAD("expected 1, true, yes, 0, false or no");
    } else if (!strcmp(name, "push-ca-file")) {
        if (!*v || strlen(v) >= sizeof c->push_ca_file) BAD("expected a file path");
        snprintf(c->push_ca_file, sizeof c->push_ca_file, "%s", v);
    } else if (!strcmp(name, "push-max-connections")) {
        if (count(v, 1, 100000, &n)) BAD("expected 1 to 100000");
        c->push_max_connections = (uint32_t)n;
    } else if (!strcmp(name, "history-groups")) {
        if (count(v, 1, 1000000, &c->history_groups)) BAD("expected 1 to 1000000");
    } else if (!strcmp(name, "delivery-cache-bytes")) {
        if (eb_parse_size(v, &c->delivery_cache_bytes) || c->delivery_cache_bytes < 65536 ||
            c->delivery_cache_bytes > (1ull << 36))
            BAD("expected 64KiB to 64GiB");
    } else if (!strcmp(name, "forward-max-answer")) {
        if (eb_parse_size(v, &c->forward_max_answer) || c->forward_max_answer < 4096 ||
            c->forward_max_answer > (16ull << 30))
            BAD("expected 4KiB to 16GiB");
    } else if (!strcmp(name, "forward-max-buffered")) {
        if (eb_parse_size(v, &c->forward_max_buffered) || c->forward_max_buffered < 4096 ||
            c->forward_max_buffered > (1ull << 40))
            BAD("expected 4KiB to 1TiB");
    } else if (!strcmp(name, "forward-timeout")) {
        if (duration_ms(v, &n) || n < 100 || n > 86400000) BAD("expected 100ms to 24h like 75s");
        c->forward_timeout_ms = (uint32_t)n;
    } else if (!strcmp(name, "store-timeout")) {
        if (duration_ms(v, &n) || n < 100 || n > 3600000) BAD("expected 100ms to 1h like 10s");
        c->store_timeout_ms = (uint32_t)n;
    } else if (!strcmp(name, "lag-walk-records")) {
        if (count(v, 1, 1000000, &c->lag_walk_records)) BAD("expected 1 to 1000000");
    } else if (!strcmp(name, "log-level")) {
        if (eb_logger_parse_level(v, &c->log_level)) BAD("expected debug, info, warn or error");
    } else if (!strcmp(name, "log-format")) {
        if (strcmp(v, "text") && strcmp(v, "json")) BAD("expected text or json");
        c->log_json = !strcmp(v, "json");
    } else {
        snprintf(err, errlen, "unknown option --%s (see --help)", name);
        return -1;
    }
#undef BAD
    return 0;
}

static const char *const env_names[] = {
    "listen", "data", "fsync", "fsync-interval-ms", "retention", "retention-bytes",
    "max-event-bytes", "dedupe-window", "dedupe-max-bytes", "max-schemas", "max-groups", "max-types",
    "max-in-flight-total", "require-schemas", "meta-snapshot-bytes", "max-connections",
    "header-timeout", "body-timeout", "conn-buffer", "log-level", "log-format",
    "auth", "insecure", "admin-token-file", "metrics-public", "auth-fail-limit",
    "tls-listen", "tls-cert", "tls-key", "tls-client-ca", "metrics-groups", "history-interval",
    "store", "max-delay", "max-delayed", "push-allow-private", "push-ca-file",
    "push-max-connections", "history-groups", "delivery-cache-bytes", "advertise-url",
    "forward-max-answer", "forward-max-buffered", "forward-timeout", "lag-walk-records",
    "store-timeout"};

static bool known(const char *name)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        if (!strcmp(name, env_names[i]))
            return true;
    return false;
}

static int from_env(eb_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++) {
        char var[64] = "EVENTBUS_";
        size_t k = 9;
        for (const char *p = env_names[i]; *p && k < sizeof var - 1; p++)
            var[k++] = *p == '-' ? '_' : (char)(*p - 32 * (*p >= 'a' && *p <= 'z'));
        var[k] = '\0';
        const char *v = getenv(var);
        if (v && apply(c, env_names[i], v, err, errlen)) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (from %s)", var);
            return -1;
        }
    }
    return 0;
}

/* The TLS flags go together. */
static int check_tls(const eb_config *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (*c->tls_listen && (!*c->tls_cert || !*c->tls_key))
        why = "--tls-listen needs --tls-cert and --tls-key";
    else if (!*c->tls_listen && (*c->tls_cert || *c->tls_key || *c->tls_client_ca))
        why = "--tls-cert, --tls-key and --tls-client-ca go with --tls-listen";
    else if (!strcmp(c->listen, "off") && !*c->tls_listen)
        why = "--listen off needs --tls-listen";
    if (why)
        snprintf(err, errlen, "%s", why);
    return why ? -1 : 0;
}

_Static_assert(sizeof usage <= EB_CONFIG_OUT_MAX, "--help outgrew EB_CONFIG_OUT_MAX");

int eb_config_parse(eb_config *c, int argc, char **argv, char *err, size_t errlen, char *out,
                    size_t outlen)
{
    defaults(c);
    if (from_env(c, err, errlen))
        return -1;
    c->parsing_flags = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            snprintf(out, outlen, "%s", usage);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            snprintf(out, outlen, "eventbusd %d.%d.%d\n", EB_VERSION_MAJOR, EB_VERSION_MINOR,
                     EB_VERSION_PATCH);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", a);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a + 2, '='), *val;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        snprintf(name, sizeof name, "%.*s", (int)nl, a + 2);
        if (!known(name)) {
            snprintf(err, errlen, "unknown option --%s (see --help)", name);
            return -1;
        }
        if (eq)
            val = eq + 1;
        else if (!strcmp(name, "require-schemas") || !strcmp(name, "insecure") ||
                 !strcmp(name, "metrics-public") || !strcmp(name, "push-allow-private"))
            val = "1";
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            snprintf(err, errlen, "--%s needs a value", name);
            return -1;
        }
        if (apply(c, name, val, err, errlen))
            return -1;
    }
    /* --data and --store exclude each other; as everywhere a flag wins over
     * the environment (the systemd unit sets EVENTBUS_DATA: --store in
     * EVENTBUSD_ARGS overrides it). */
    if (*c->store && c->data_from == c->store_from) {
        snprintf(err, errlen, "--data and --store are exclusive: the data is either in a "
                 "directory (--data) or in PostgreSQL (--store)%s",
                 c->store_from == 1 ? " (from EVENTBUS_DATA and EVENTBUS_STORE)" : "");
        return -1;
    }
    if (*c->store && c->data_from > c->store_from)
        c->store[0] = '\0'; /* --data over EVENTBUS_STORE */
    return check_tls(c, err, errlen);
}
