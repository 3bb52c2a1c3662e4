/* logger.c - text or JSON log lines on stderr (see logger.h). */
#include "util/logger.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/clock.h"

static eb_level min_level = EB_LVL_INFO;
static int as_json;

static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void eb_logger_setup(eb_level min, int json)
{
    min_level = min;
    as_json = json;
}

int eb_logger_parse_level(const char *s, eb_level *out)
{
    static const char *lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, lower[i])) {
            *out = (eb_level)i;
            return 0;
        }
    return -1;
}

static void json_escape_to(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

int eb_logger_on(eb_level lvl)
{
    return lvl >= min_level;
}

/* The line's time, RFC 3339 UTC with milliseconds. */
static void stamp(char t[40])
{
    uint64_t now = eb_clock_wall_us();
    time_t sec = (time_t)(now / 1000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(t, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + n, 40 - n, ".%03uZ", (unsigned)(now % 1000000u / 1000u));
}

void eb_logger(eb_level lvl, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    eb_logger_kv(lvl, msg, NULL, 0);
}

static void text_value(FILE *f, const char *s)
{
    if (!*s || strpbrk(s, " \"\\=")) {
        fputc('"', f);
        json_escape_to(f, s);
        fputc('"', f);
    } else {
        for (; *s; s++)
            fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
    }
}

void eb_logger_kv(eb_level lvl, const char *msg, const eb_log_kv *kv, size_t n)
{
    if (lvl < min_level)
        return;
    char t[40];
    stamp(t);
    flockfile(stderr);
    if (as_json) {
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", t, names[lvl]);
        json_escape_to(stderr, msg);
        fputc('"', stderr);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, ",\"%s\":", kv[i].k);
            if (kv[i].s) {
                fputc('"', stderr);
                json_escape_to(stderr, kv[i].s);
                fputc('"', stderr);
            } else {
                fprintf(stderr, "%llu", kv[i].u);
            }
        }
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "%s %-5s %s", t, names[lvl], msg);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, " %s=", kv[i].k);
            if (kv[i].s)
                text_value(stderr, kv[i].s);
            else
                fprintf(stderr, "%llu", kv[i].u);
        }
        fputc('\n', stderr);
    }
    funlockfile(stderr);
}
