/* shop.h - what the shop's C consumers share: command-line options, a
 * client, Ctrl-C / SIGTERM as a clean stop, and running the consumer loop
 * of libeventbus (eb_consume) with their handler. */
#ifndef SHOP_H
#define SHOP_H

#include <eventbus.h>
#include <stdbool.h>

typedef struct shop_opts {
    const char *url;     /* --url, else $EVENTBUS_URL, else the default */
    unsigned    idle_ms; /* --idle MS: stop once no event came for that long */
    bool        fixed;   /* --fixed: the repaired handler (notification) */
} shop_opts;

/* Parses argv (exits 2 on a bad option). */
void shop_parse(int argc, char **argv, const char *usage, shop_opts *o);

/* Consumes `group` as `consumer` with handler until stopped (signal or
 * --idle); prints a summary line. Returns the process exit code. */
int shop_consume(const shop_opts *o, const char *group, const char *consumer,
                 eb_handler handler, void *arg);

#endif
