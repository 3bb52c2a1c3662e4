/* logger.h - the daemon's log lines: text or JSON, with a level filter.
 * Writes to stderr. Used by eventbusd only (library code never logs). */
#ifndef EB_UTIL_LOGGER_H
#define EB_UTIL_LOGGER_H

#include <stddef.h>

typedef enum eb_level { EB_LVL_DEBUG = 0, EB_LVL_INFO, EB_LVL_WARN, EB_LVL_ERROR } eb_level;

void eb_logger_setup(eb_level min, int json);
int  eb_logger_parse_level(const char *s, eb_level *out);
void eb_logger(eb_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when a line at lvl would be written (to skip preparing one). */
int  eb_logger_on(eb_level lvl);
/* A line of named fields: text "msg k=v k=v" (a value with a space or a
 * quote is quoted), or JSON members beside "msg". A field with s NULL is
 * the number u. */
typedef struct eb_log_kv {
    const char        *k;
    const char        *s;
    unsigned long long u;
} eb_log_kv;
void eb_logger_kv(eb_level lvl, const char *msg, const eb_log_kv *kv, size_t n);

#define EB_DEBUG(...) eb_logger(EB_LVL_DEBUG, __VA_ARGS__)
#define EB_INFO(...) eb_logger(EB_LVL_INFO, __VA_ARGS__)
#define EB_WARN(...) eb_logger(EB_LVL_WARN, __VA_ARGS__)
#define EB_ERROR(...) eb_logger(EB_LVL_ERROR, __VA_ARGS__)

#endif
