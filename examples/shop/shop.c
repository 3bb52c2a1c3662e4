/* shop.c - the shared part of the shop's C consumers (see shop.h). */
#include "shop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

void shop_parse(int argc, char **argv, const char *usage, shop_opts *o)
{
    *o = (shop_opts){0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--url") && i + 1 < argc) {
            o->url = argv[++i];
        } else if (!strcmp(argv[i], "--idle") && i + 1 < argc) {
            o->idle_ms = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--fixed")) {
            o->fixed = true;
        } else {
            fprintf(stderr, "usage: %s %s\n", argv[0], usage);
            exit(2);
        }
    }
}

int shop_consume(const shop_opts *o, const char *group, const char *consumer,
                 eb_handler handler, void *arg)
{
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end early */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    eb_client *c;
    eb_client_opts co = {.size = sizeof co, .url = o->url};
    if (eb_client_new(&co, &c) != 0) {
        fprintf(stderr, "%s: bad URL\n", consumer);
        return 2;
    }
    eb_consume_stats st = {.size = sizeof st};
    eb_consume_opts opts = {.size = sizeof opts, .arg = arg, .stop = &stop, .idle_ms = o->idle_ms, .stats = &st};
    int rc = eb_consume(c, group, consumer, handler, &opts);
    if (rc)
        fprintf(stderr, "%s: %s (%s)\n", consumer, eb_client_error(c)->message, eb_strerror(rc));
    else
        printf("%s: %s; handled %llu event%s (%llu acked, %llu failed)\n", consumer,
               stop ? "stopped" : "caught up", (unsigned long long)st.handled,
               st.handled == 1 ? "" : "s", (unsigned long long)st.acked,
               (unsigned long long)st.nacked);
    eb_client_free(c);
    return rc ? 1 : 0;
}
