/* config.c - eventbusd's flags and EVENTBUS_* environment (see config.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eventbus.h"

static const char usage[] =
    "usage: eventbusd [options]\n"
    "  --listen HOST:PORT      HTTP address (default 127.0.0.1:8470)   EVENTBUS_LISTEN\n"
    "  --data DIR              data directory (default ./data)          EVENTBUS_DATA\n"
    "  --fsync POLICY          always|interval|never (default always)   EVENTBUS_FSYNC\n"
    "  --fsync-interval-ms N   sync period for 'interval' (default 100) EVENTBUS_FSYNC_INTERVAL_MS\n"
    "  --retention AGE         delete events older than AGE (7d, 24h; 0 = forever)  EVENTBUS_RETENTION\n"
    "  --retention-bytes SIZE  keep the log under SIZE (10GB; 0 = unlimited)       EVENTBUS_RETENTION_BYTES\n"
    "  --max-event-bytes SIZE  largest event accepted (default 1MiB)    EVENTBUS_MAX_EVENT_BYTES\n"
    "  --dedupe-window AGE     idempotent-publish window (default 2m)   EVENTBUS_DEDUPE_WINDOW\n"
    "  --require-schemas       refuse event types with no schema        EVENTBUS_REQUIRE_SCHEMAS=1\n"
    "  --meta-snapshot-bytes SIZE  meta log growth between state snapshots (64MiB)  EVENTBUS_META_SNAPSHOT_BYTES\n"
    "  --max-connections N     open connections at most (default: from ulimit -n, raised\n"
    "                          to its hard limit at start, less 256)     EVENTBUS_MAX_CONNECTIONS\n"
    "  --header-timeout AGE    a request's headers must arrive within (default 10s)  EVENTBUS_HEADER_TIMEOUT\n"
    "  --body-timeout AGE      a whole request must arrive within (default 2m)       EVENTBUS_BODY_TIMEOUT\n"
    "  --conn-buffer SIZE      bytes held per connection before reading it pauses (4MiB)  EVENTBUS_CONN_BUFFER\n"
    "  --log-level LEVEL       debug|info|warn|error (default info)     EVENTBUS_LOG_LEVEL\n"
    "  --log-format FORMAT     text|json (default text)                 EVENTBUS_LOG_FORMAT\n"
    "  --help, --version\n";

int eb_parse_duration_ms(const char *s, uint64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    double mult;
    if (!*end || !strcmp(end, "ms")) mult = 1;
    else if (!strcmp(end, "s")) mult = 1e3;
    else if (!strcmp(end, "m")) mult = 60e3;
    else if (!strcmp(end, "h")) mult = 3600e3;
    else if (!strcmp(end, "d")) mult = 86400e3;
    else return -1;
    *ms = (uint64_t)(v * mult);
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
    c->fsync = EB_FSYNC_ALWAYS;
    c->fsync_interval_ms = 100;
    c->max_event_bytes = 1u << 20;
    c->dedupe_window_ms = 120000;
    c->header_timeout_ms = 10000;
    c->body_timeout_ms = 120000;
    c->conn_buffer = 4u << 20;
    c->log_level = EB_LVL_INFO;
}

/* Applies one setting by its flag name (without "--"). */
static int apply(eb_config *c, const char *name, const char *v, char *err, size_t errlen)
{
    uint64_t n = 0;
#define BAD(what) do { snprintf(err, errlen, "--%s: %s (got \"%s\")", name, what, v); return -1; } while (0)
    if (!strcmp(name, "listen")) {
        if (!strchr(v, ':') || strlen(v) >= sizeof c->listen) BAD("expected HOST:PORT");
        snprintf(c->listen, sizeof c->listen, "%s", v);
    } else if (!strcmp(name, "data")) {
        if (!*v || strlen(v) >= sizeof c->data) BAD("expected a directory");
        snprintf(c->data, sizeof c->data, "%s", v);
    } else if (!strcmp(name, "fsync")) {
        if (!strcmp(v, "always")) c->fsync = EB_FSYNC_ALWAYS;
        else if (!strcmp(v, "interval")) c->fsync = EB_FSYNC_INTERVAL;
        else if (!strcmp(v, "never")) c->fsync = EB_FSYNC_NEVER;
        else BAD("expected always, interval or never");
    } else if (!strcmp(name, "fsync-interval-ms")) {
        if (eb_parse_duration_ms(v, &n) || n < 1 || n > 60000) BAD("expected 1 to 60000 ms");
        c->fsync_interval_ms = (uint32_t)n;
    } else if (!strcmp(name, "retention")) {
        if (eb_parse_duration_ms(v, &c->retention_ms)) BAD("expected a duration like 7d or 24h");
    } else if (!strcmp(name, "retention-bytes")) {
        if (eb_parse_size(v, &c->retention_bytes)) BAD("expected a size like 10GB");
    } else if (!strcmp(name, "max-event-bytes")) {
        if (eb_parse_size(v, &n) || n < 256 || n > (64u << 20)) BAD("expected 256B to 64MiB");
        c->max_event_bytes = (uint32_t)n;
    } else if (!strcmp(name, "dedupe-window")) {
        if (eb_parse_duration_ms(v, &c->dedupe_window_ms)) BAD("expected a duration like 2m");
    } else if (!strcmp(name, "require-schemas")) {
        c->require_schemas = !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes");
    } else if (!strcmp(name, "meta-snapshot-bytes")) {
        if (eb_parse_size(v, &c->meta_snapshot_bytes) || c->meta_snapshot_bytes < 4096)
            BAD("expected a size of at least 4KiB like 64MiB");
    } else if (!strcmp(name, "max-connections")) {
        char *end;
        unsigned long m = strtoul(v, &end, 10);
        if (end == v || *end || m < 1 || m > 10000000) BAD("expected 1 to 10000000");
        c->max_connections = (uint32_t)m;
    } else if (!strcmp(name, "header-timeout")) {
        if (eb_parse_duration_ms(v, &n) || n < 100 || n > 3600000) BAD("expected 100ms to 1h");
        c->header_timeout_ms = (uint32_t)n;
    } else if (!strcmp(name, "body-timeout")) {
        if (eb_parse_duration_ms(v, &n) || n < 100 || n > 86400000) BAD("expected 100ms to 24h");
        c->body_timeout_ms = (uint32_t)n;
    } else if (!strcmp(name, "conn-buffer")) {
        if (eb_parse_size(v, &n) || n < 4096 || n > (1ull << 30)) BAD("expected 4KiB to 1GiB");
        c->conn_buffer = (size_t)n;
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
    "max-event-bytes", "dedupe-window", "require-schemas", "meta-snapshot-bytes",
    "max-connections", "header-timeout", "body-timeout", "conn-buffer", "log-level", "log-format"};

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

int eb_config_parse(eb_config *c, int argc, char **argv, char *err, size_t errlen, char *out,
                    size_t outlen)
{
    defaults(c);
    if (from_env(c, err, errlen))
        return -1;
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
        if (eq)
            val = eq + 1;
        else if (!strcmp(name, "require-schemas"))
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
    return 0;
}
