/* events_read.c - `eventbus events get ID [--source S]` (one event by id,
 * any retained one, optionally the one from source S) and `eventbus events stream KEY` (one key's events in version order,
 * page by page). */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char HELP[] =
    "Usage: eventbus events get ID [--source S]\n"
    "       eventbus events stream KEY [--from-version N] [--limit N]\n"
    "\n"
    "get     one event by its id (client-chosen or generated; any retained event):\n"
    "        the newest with the id, or with --source the one from source S\n"
    "        (--source '': the one published without a source).\n"
    "stream  KEY's events in version order (1, 2, 3 ...), each with its key\n"
    "        version: all of them from --from-version on, or --limit of them.\n"
    "\n"
    "Options:\n"
    "  --source S        get: the event with the id from source S\n"
    "  --from-version N  the first version to print (default: the oldest retained)\n"
    "  --limit N         print at most N events (default: all)\n"
    "\n"
    "Prints one event a line (JSON: the server's event objects, one a line).\n";

typedef struct ev_args {
    const char *sub, *arg;
    const char *source; /* get --source; NULL: any */
    uint64_t    from, limit;
} ev_args;

static int parse(cli *x, int argc, char **argv, ev_args *a)
{
    static const struct option opts[] = {
        {"from-version", 1, 0, 'f'}, {"limit", 1, 0, 'l'}, {"source", 1, 0, 's'},
        {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (!cli_parse_u64(optarg, UINT64_MAX, &a->from))
                return cli_usage(x, "--from-version needs a version (1, 2, ...)");
            break;
        case 's': a->source = optarg; break;
        case 'l':
            if (!cli_parse_u64(optarg, UINT64_MAX, &a->limit) || !a->limit)
                return cli_usage(x, "--limit needs a positive number");
            break;
        case 'h': return -1;
        default: return cli_bad_option(x, c, argv);
        }
    }
    int n = argc - optind;
    if (n < 1)
        return cli_usage(x, "which subcommand? get or stream");
    a->sub = argv[optind];
    if (strcmp(a->sub, "get") && strcmp(a->sub, "stream"))
        return cli_usage(x, "unknown subcommand '%s'", a->sub);
    if (n != 2)
        return cli_usage(x, "'%s' takes %s", a->sub, !strcmp(a->sub, "get") ? "ID" : "KEY");
    if (!strcmp(a->sub, "get") && (a->from || a->limit))
        return cli_usage(x, "--from-version and --limit go with stream");
    if (strcmp(a->sub, "get") && a->source)
        return cli_usage(x, "--source goes with get");
    a->arg = argv[optind + 1];
    return 0;
}

static int get(cli *x, const ev_args *a)
{
    eb_events *l;
    eb_get_opts o = {.size = sizeof o, .source = a->source};
    int rc = eb_events_get_opts(x->c, a->arg, &o, &l);
    if (rc)
        return cli_fail(x, rc);
    cli_print_event(x, eb_events_at(l, 0));
    eb_events_free(l);
    return CLI_OK;
}

static int stream(cli *x, const ev_args *a)
{
    eb_stream_opts q = {.size = sizeof q, .from_version = a->from};
    uint64_t printed = 0;
    for (;;) {
        uint64_t left = a->limit ? a->limit - printed : 1000;
        q.limit = (uint32_t)(left < 1000 ? left : 1000);
        eb_events *l;
        int rc = eb_events_stream(x->c, a->arg, &q, &l);
        if (rc)
            return cli_fail(x, rc);
        size_t n = eb_events_count(l);
        for (size_t i = 0; i < n; i++)
            cli_print_event(x, eb_events_at(l, i));
        printed += n;
        const char *next = eb_events_next(l);
        if (next)
            q.from_version = strtoull(next, NULL, 10);
        eb_events_free(l);
        if (n == 0 || (a->limit && printed >= a->limit) || !next)
            return CLI_OK;
    }
}

int cli_events(cli *x, int argc, char **argv)
{
    ev_args a = {0};
    int rc = parse(x, argc, argv, &a);
    if (rc)
        return rc < 0 ? cli_help(HELP) : rc;
    return !strcmp(a.sub, "get") ? get(x, &a) : stream(x, &a);
}
