/* logger.h - the daemon's log lines: text or JSON, with a level filter.
 * Writes to stderr. Used by eventbusd only (library code never logs). */
#ifndef EB_UTIL_LOGGER_H
#define EB_UTIL_LOGGER_H

typedef enum eb_level { EB_LVL_DEBUG = 0, EB_LVL_INFO, EB_LVL_WARN, EB_LVL_ERROR } eb_level;

void eb_logger_setup(eb_level min, int json);
int  eb_logger_parse_level(const char *s, eb_level *out);
void eb_logger(eb_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define EB_DEBUG(...) eb_logger(EB_LVL_DEBUG, __VA_ARGS__)
#define EB_INFO(...) eb_logger(EB_LVL_INFO, __VA_ARGS__)
#define EB_WARN(...) eb_logger(EB_LVL_WARN, __VA_ARGS__)
#define EB_ERROR(...) eb_logger(EB_LVL_ERROR, __VA_ARGS__)

#endif
