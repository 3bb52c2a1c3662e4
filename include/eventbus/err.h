/* eventbus/err.h - the one error enum of eventbus and eb_strerror().
 *
 * Shared by the server and the client library: every layer of eventbusd
 * (util, json, schema, log, http, bus, api) and every libeventbus call
 * returns these codes, so one eb_strerror() explains any status. This header
 * is public (installed beside eventbus.h, which includes it) and depends on
 * nothing else: server code includes it instead of the client API.
 *
 * Conventions:
 *   - Functions return int: 0 (EB_OK) on success, a negative eb_err otherwise.
 *   - Codes sit in [-30999, -30000] so they never clash with -errno values,
 *     which some internal calls also pass through (see eb_strerror).
 */
#ifndef EVENTBUS_ERR_H
#define EVENTBUS_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eb_err {
    EB_OK          = 0,
    EB_ENOMEM      = -30000, /* out of memory */
    EB_EINVAL      = -30001, /* invalid argument */
    EB_EIO         = -30002, /* I/O error (errno kept by the caller if needed) */
    EB_ECORRUPT    = -30003, /* data failed a checksum or format check */
    EB_ENOTFOUND   = -30004, /* no such item */
    EB_EEXIST      = -30005, /* item already exists */
    EB_ETOOBIG     = -30006, /* input exceeds a configured size bound */
    EB_EDEPTH      = -30007, /* input exceeds a configured nesting bound */
    EB_ESYNTAX     = -30008, /* malformed input (JSON, HTTP, schema) */
    EB_ESCHEMA     = -30009, /* a document violates its schema */
    EB_ECONFLICT   = -30010, /* conflicting state (e.g. incompatible schema) */
    EB_ECLOSED     = -30011, /* object is closed or shutting down */
    EB_ETIMEDOUT   = -30012, /* operation timed out */
    EB_ECONNECT    = -30013, /* cannot reach the server */
    EB_EPROTO      = -30014, /* the peer broke the protocol */
    EB_ESERVER     = -30015, /* the server answered with an error */
    EB_EFULL       = -30016, /* a queue or table is full */
    EB_EUNSUPP     = -30017, /* feature or keyword not supported */
    EB_EGONE       = -30018, /* data removed (e.g. by retention) */
    EB_ERANGE      = -30019, /* value out of range */
    EB_ECANCELED   = -30020, /* stopped by the caller's cancel/stop flag */
    EB_ENOSPC      = -30021, /* storage full: nothing written, try again later */
    EB_EAUTH       = -30022, /* not authenticated (no, unknown or expired token: 401) */
    EB_EDENIED     = -30023  /* authenticated, but not allowed (missing scope: 403) */
} eb_err;

/* Returns a static, human-readable description of an eb_err code, or of a
 * negative errno value. Never NULL; the string is owned by the library. */
const char *eb_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* EVENTBUS_ERR_H */
