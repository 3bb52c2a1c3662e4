/* push.h - push delivery (webhooks): eventbusd POSTs the events of groups
 * configured with "push" to their URL, signed per Standard Webhooks, and
 * acks or nacks them by the answer; a circuit breaker per endpoint.
 *
 * A client of the bus's command API (bus/bus.h) as src/api is: it leases
 * with eb_bus_pull and settles with eb_bus_settle. Its outgoing HTTP is
 * libcurl's multi interface driven by the loop (ARCHITECTURE.md, "Push
 * delivery").
 *
 * Threads: every call on the loop thread given to eb_push_open. */
#ifndef EB_PUSH_H
#define EB_PUSH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"

typedef struct eb_push eb_push;

typedef struct eb_push_opts {
    bool        allow_private;   /* --push-allow-private: loopback/private targets allowed */
    const char *ca_file;         /* --push-ca-file: PEM bundle; NULL: the system store */
    uint32_t    max_connections; /* open connections, all endpoints (0: 256) */
} eb_push_opts;

/* Response bodies are kept (for the nack's error) and read to this bound;
 * a longer answer is cut there (the connection is then closed). */
#define EB_PUSH_BODY_MAX 4096
/* Bytes of a failed answer's body quoted in the nack's error. */
#define EB_PUSH_ERROR_EXCERPT 256

/* Starts pushing the bus's pushed groups (and those created later).
 * bus is borrowed and must outlive the push module. *out is the caller's
 * until eb_push_close. 0, or EB_ENOMEM / EB_EIO (libcurl would not start). */
int eb_push_open(uv_loop_t *loop, eb_bus *bus, const eb_push_opts *opts, eb_push **out);
/* Stops: no more pulls, POSTs in flight abandoned (their leases expire and
 * they are delivered again), the bus's hooks removed. Frees p once its
 * loop handles are closed (the loop must run on). Call before closing the
 * bus. */
void eb_push_close(eb_push *p);

#endif
