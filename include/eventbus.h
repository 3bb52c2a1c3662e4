/* eventbus.h - the public API of libeventbus, the C client for eventbusd.
 *
 * Everything a program needs to talk to an eventbus server lives here, behind
 * opaque types. The error codes below are shared by the whole code base: the
 * server's internal layers return them too, so one eb_strerror() explains any
 * status.
 *
 * Conventions:
 *   - Functions return int: 0 (EB_OK) on success, a negative eb_err otherwise.
 *   - Codes sit in [-30999, -30000] so they never clash with -errno values,
 *     which some internal calls also pass through (see eb_strerror).
 *   - The library never prints and never exits.
 */
#ifndef EVENTBUS_H
#define EVENTBUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EB_VERSION_MAJOR 0
#define EB_VERSION_MINOR 1
#define EB_VERSION_PATCH 0

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
    EB_ERANGE      = -30019  /* value out of range */
} eb_err;

/* Returns a static, human-readable description of an eb_err code, or of a
 * negative errno value. Never NULL; the string is owned by the library. */
const char *eb_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* EVENTBUS_H */
