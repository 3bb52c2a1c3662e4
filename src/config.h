/* config.h - eventbusd's settings: flags, each also settable through an
 * EVENTBUS_* environment variable (a flag wins over the environment). */
#ifndef EB_CONFIG_H
#define EB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/logger.h"

typedef struct eb_config {
    char            listen[128];       /* --listen, default 127.0.0.1:8470 */
    char            data[1024];        /* --data, default ./data */
    int             data_from;         /* --data from: 0 default, 1 environment, 2 flag */
    int             store_from;        /* --store from: the same */
    bool            parsing_flags;     /* eb_config_parse: past the environment */
    char            store[1024];       /* --store postgresql://..., "" = the embedded log */
    char            advertise_url[256]; /* --advertise-url, "" = from --listen (several nodes) */
    eb_store_sync   fsync;             /* --fsync always|interval|never */
    uint32_t        fsync_interval_ms; /* --fsync-interval-ms, default 100 */
    uint64_t        retention_ms;      /* --retention (7d, 24h, 0 = forever) */
    uint64_t        retention_bytes;   /* --retention-bytes (10GB, 0 = unlimited) */
    uint32_t        max_event_bytes;   /* --max-event-bytes, default 1MiB */
    uint64_t        meta_snapshot_bytes; /* --meta-snapshot-bytes, default 64MiB */
    uint64_t        dedupe_window_ms;  /* --dedupe-window, default 2m */
    uint64_t        dedupe_max_bytes;  /* --dedupe-max-bytes, default 64MiB */
    uint64_t        max_schemas;       /* --max-schemas, default 1000 */
    uint64_t        max_groups;        /* --max-groups, default 1000 */
    uint64_t        max_types;         /* --max-types, default 1000 */
    uint64_t        max_in_flight_total; /* --max-in-flight-total, default 1000000 */
    uint64_t        max_delay_ms;        /* --max-delay, default 30 days */
    uint64_t        max_delayed;         /* --max-delayed, default 1000000 */
    uint32_t        metrics_groups;    /* --metrics-groups, default 1000 */
    uint32_t        history_interval_ms; /* --history-interval, default 5s */
    uint64_t        history_groups;    /* --history-groups, default 1000 */
    uint64_t        delivery_cache_bytes; /* --delivery-cache-bytes, default 16MiB */
    uint64_t        lag_walk_records;  /* --lag-walk-records, default 1024 */
    bool            require_schemas;   /* --require-schemas */
    uint32_t        max_connections;   /* --max-connections, 0 = from RLIMIT_NOFILE */
    uint32_t        header_timeout_ms; /* --header-timeout, default 10s */
    uint32_t        body_timeout_ms;   /* --body-timeout, default 2m */
    size_t          conn_buffer;       /* --conn-buffer, default 4MiB */
    eb_level        log_level;         /* --log-level */
    bool            log_json;          /* --log-format json */
    int             auth;              /* --auth: -1 unset (by address), 0 none, 1 token */
    bool            insecure;          /* --insecure: allow --auth none off loopback */
    char            admin_token_file[1024]; /* --admin-token-file */
    bool            metrics_public;    /* --metrics-public */
    uint32_t        auth_fail_limit;   /* --auth-fail-limit, default 10 */
    char            tls_listen[128];   /* --tls-listen IP:PORT, "" = none */
    char            tls_cert[1024];    /* --tls-cert PEM (chain) */
    char            tls_key[1024];     /* --tls-key PEM */
    char            tls_client_ca[1024]; /* --tls-client-ca PEM: mutual TLS */
    bool            push_allow_private; /* --push-allow-private */
    char            push_ca_file[1024]; /* --push-ca-file PEM, "" = the system store */
    uint32_t        push_max_connections; /* --push-max-connections, default 256 */
    uint64_t        forward_max_answer;   /* --forward-max-answer, default 256MiB */
    uint64_t        forward_max_buffered; /* --forward-max-buffered, default 1GiB */
    uint32_t        forward_timeout_ms;   /* --forward-timeout, default 75s */
    uint32_t        store_timeout_ms;     /* --store-timeout, default 10s */
} eb_config;

/* The size of out that holds every answer of eb_config_parse (config.c
 * checks the --help text against it when it is compiled). */
#define EB_CONFIG_OUT_MAX 16384

/* Fills cfg from defaults, then the environment, then argv. Returns 0,
 * 1 when --help or --version was answered (out gets the text; outlen
 * EB_CONFIG_OUT_MAX holds it whole), or -1 with a message naming the flag
 * in err. */
int eb_config_parse(eb_config *cfg, int argc, char **argv, char *err, size_t errlen,
                    char *out, size_t outlen);
/* True if every listen address is a loopback one. listen "off": none. */
bool eb_config_loopback(const eb_config *cfg);
/* "10MB" / "1GiB" / "512KiB" / plain bytes -> bytes. */
int eb_parse_size(const char *s, uint64_t *bytes);

#endif
