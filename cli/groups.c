/* groups.c - `eventbus groups ...`, `eventbus dlq ...` and `eventbus
 * replay`: managing consumer groups, their dead letters, and replays. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_LIST 64 /* --types / --type / --id values per command */

/* Splits comma-separated values of a repeatable option into list[]. */
static bool add_values(char *arg, const char **list, size_t *n)
{
    for (char *save = NULL, *tok = strtok_r(arg, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST)
            return false;
        list[(*n)++] = tok;
    }
    return true;
}

/* ============================== groups ============================== */

static const char GROUPS_HELP[] =
    "Usage: eventbus groups create GROUP --types T[,T...] [options]\n"
    "       eventbus groups update|set GROUP [--types ...] [options]\n"
    "       eventbus groups list\n"
    "       eventbus groups show GROUP\n"
    "       eventbus groups history GROUP\n"
    "       eventbus groups pause|resume|delete GROUP\n"
    "\n"
    "A consumer group receives every event of its types once (at least once),\n"
    "shared among its consumers. Type patterns: '*' is one segment (*.created),\n"
    "'>' last is the rest (order.>); a last '*' is the rest too (order.*, '*').\n"
    "create fails if the group exists; update (or set) changes only the options\n"
    "given, in one step on the server (PATCH: the rest is kept as it is).\n"
    "pause stops deliveries (events keep accumulating); delete drops the group,\n"
    "its pending deliveries and its dead letters. history prints the server's\n"
    "samples of the group (one every 5 s for the last hour by default): lag,\n"
    "what was delivered, acked and nacked in each interval, the DLQ depth.\n"
    "\n"
    "Options (create, update):\n"
    "  --types T,...            event types or patterns (repeatable)\n"
    "  --start WHEN             create only: latest (default), earliest, or RFC 3339\n"
    "  --max-attempts N         deliveries before an event goes to the DLQ (4)\n"
    "  --ack-timeout DUR        lease of a pulled event (30s)\n"
    "  --backoff-initial DUR    first retry delay (1s)\n"
    "  --backoff-multiplier X   growth per attempt (2)\n"
    "  --backoff-max DUR        longest retry delay (5m)\n"
    "  --jitter J               random spread of delays, 0..1 (0.2)\n"
    "  --ordering none|key      key: one event per key in flight, in order\n"
    "  --max-in-flight N        leases outstanding across all consumers (0: no cap)\n"
    "  --rate-limit R           deliveries per second, token bucket (0: none)\n"
    "  --filter JSON            deliver only events matching it ('{}': none; see docs/api.md)\n"
    "Push delivery (webhooks: the server POSTs the events; the group then refuses pulls):\n"
    "  --push URL               POST each event to URL (http:// or https://)\n"
    "  --push-secret whsec_...  Standard Webhooks signing secret (required with --push;\n"
    "                           update: a new one rotates, the old one signs for 24 h more)\n"
    "  --push-header 'K: V'     an extra request header (repeatable)\n"
    "  --push-timeout DUR       per POST (10s)\n"
    "  --push-max-in-flight N   events being POSTed at once (100)\n"
    "  --push-batch N           events per POST, a JSON array when > 1 (1)\n"
    "  --push-format F          event (default) or cloudevents\n"
    "  --no-push                update: stop pushing (the group is pulled again)\n";

typedef struct grp_args {
    const char     *sub, *group;
    const char     *types[MAX_LIST];
    const char     *push_headers[MAX_LIST];
    eb_groups_config g;
    bool            any_option;
    bool            mif_set, rate_set; /* --max-in-flight, --rate-limit given */
    bool            filter_set;
} grp_args;

static int set_dur(cli *x, const char *name, uint32_t *out)
{
    uint64_t ms;
    if (!cli_parse_ms(optarg, &ms) || !ms || ms > UINT32_MAX)
        return cli_usage(x, "--%s needs a duration like 500ms, 30s or 5m", name);
    *out = (uint32_t)ms;
    return 0;
}

static int config_option(cli *x, int c, grp_args *a)
{
    uint64_t v;
    char *end;
    a->any_option = true;
    switch (c) {
    case 'T':
        return add_values(optarg, a->types, &a->g.ntypes) ? 0 : cli_usage(x, "too many types");
    case 's': a->g.start = optarg; return 0;
    case 'm':
        if (!cli_parse_u64(optarg, 1000000, &v) || !v)
            return cli_usage(x, "--max-attempts needs a positive number");
        a->g.max_attempts = (uint32_t)v;
        return 0;
    case 'a': return set_dur(x, "ack-timeout", &a->g.ack_timeout_ms);
    case 'i': return set_dur(x, "backoff-initial", &a->g.backoff_initial_ms);
    case 'M': return set_dur(x, "backoff-max", &a->g.backoff_max_ms);
    case 'x':
        a->g.backoff_multiplier = strtod(optarg, &end);
        return *end || a->g.backoff_multiplier < 1
                   ? cli_usage(x, "--backoff-multiplier needs a number >= 1")
                   : 0;
    case 'j':
        a->g.backoff_jitter = strtod(optarg, &end);
        a->g.has_jitter = true;
        return *end || a->g.backoff_jitter < 0 || a->g.backoff_jitter > 1
                   ? cli_usage(x, "--jitter needs a number from 0 to 1")
                   : 0;
    case 'o':
        if (strcmp(optarg, "none") && strcmp(optarg, "key"))
            return cli_usage(x, "--ordering is none or key");
        a->g.ordering = optarg;
        return 0;
    case 'F':
        if (!cli_parse_u64(optarg, 1000000, &v))
            return cli_usage(x, "--max-in-flight needs a number from 0 to 1000000");
        a->g.max_in_flight = (uint32_t)v;
        a->mif_set = a->g.has_max_in_flight = true;
        return 0;
    case 'L':
        a->g.filter = strcmp(optarg, "{}") ? optarg : NULL;
        a->filter_set = true;
        return 0;
    case 'U': a->g.push_url = optarg; return 0;
    case 'S': a->g.push_secret = optarg; return 0;
    case 'H':
        if (a->g.npush_headers == MAX_LIST || !strchr(optarg, ':'))
            return cli_usage(x, "--push-header needs 'Name: value' (at most %d)", MAX_LIST);
        a->push_headers[a->g.npush_headers++] = optarg;
        a->g.push_headers = a->push_headers;
        return 0;
    case 'O': return set_dur(x, "push-timeout", &a->g.push_timeout_ms);
    case 'N':
        if (!cli_parse_u64(optarg, 1000, &v) || !v)
            return cli_usage(x, "--push-max-in-flight needs a number from 1 to 1000");
        a->g.push_max_in_flight = (uint32_t)v;
        return 0;
    case 'B':
        if (!cli_parse_u64(optarg, 100, &v) || !v)
            return cli_usage(x, "--push-batch needs a number from 1 to 100");
        a->g.push_batch = (uint32_t)v;
        return 0;
    case 'P':
        if (strcmp(optarg, "event") && strcmp(optarg, "cloudevents"))
            return cli_usage(x, "--push-format is event or cloudevents");
        a->g.push_format = optarg;
        return 0;
    case 'Z': a->g.push_remove = true; return 0;
    case 'R':
        a->g.rate_limit = strtod(optarg, &end);
        a->rate_set = a->g.has_rate_limit = true;
        return *end || !(a->g.rate_limit >= 0 && a->g.rate_limit <= 1000000)
                   ? cli_usage(x, "--rate-limit needs a number from 0 to 1000000")
                   : 0;
    }
    return -2;
}

static int parse_groups(cli *x, int argc, char **argv, grp_args *a)
{
    static const struct option opts[] = {
        {"types", 1, 0, 'T'},          {"type", 1, 0, 'T'},
        {"start", 1, 0, 's'},          {"max-attempts", 1, 0, 'm'},
        {"ack-timeout", 1, 0, 'a'},    {"backoff-initial", 1, 0, 'i'},
        {"backoff-max", 1, 0, 'M'},    {"backoff-multiplier", 1, 0, 'x'},
        {"jitter", 1, 0, 'j'},         {"ordering", 1, 0, 'o'},
        {"max-in-flight", 1, 0, 'F'},  {"rate-limit", 1, 0, 'R'},
        {"filter", 1, 0, 'L'},
        {"push", 1, 0, 'U'},           {"push-secret", 1, 0, 'S'},
        {"push-header", 1, 0, 'H'},    {"push-timeout", 1, 0, 'O'},
        {"push-max-in-flight", 1, 0, 'N'}, {"push-batch", 1, 0, 'B'},
        {"push-format", 1, 0, 'P'},    {"no-push", 0, 0, 'Z'},
        {"help", 0, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    a->g.types = a->types;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h')
            return -1;
        int r = config_option(x, c, a);
        if (r == -2)
            return cli_bad_option(x, c, argv);
        if (r)
            return r;
    }
    int n = argc - optind;
    if (n < 1)
        return cli_usage(x, "which subcommand? create, update (set), list, show, history, pause, "
                            "resume, delete");
    a->sub = argv[optind];
    a->group = n > 1 ? argv[optind + 1] : NULL;
    static const char *const with_group[] = {"create", "update", "set", "show", "history",
                                             "pause", "resume", "delete"};
    if (!strcmp(a->sub, "set"))
        a->sub = "update"; /* the same command */
    bool known = !strcmp(a->sub, "list"), needs_group = false;
    for (size_t i = 0; i < sizeof with_group / sizeof with_group[0]; i++)
        if (!strcmp(a->sub, with_group[i]))
            known = needs_group = true;
    if (!known)
        return cli_usage(x, "unknown subcommand '%s'", a->sub);
    if (n != (needs_group ? 2 : 1))
        return cli_usage(x, "'%s' takes %s", a->sub, needs_group ? "GROUP" : "no arguments");
    bool configures = !strcmp(a->sub, "create") || !strcmp(a->sub, "update");
    if (a->any_option && !configures)
        return cli_usage(x, "options like --types go with create and update");
    if (!strcmp(a->sub, "create") && !a->g.ntypes)
        return cli_usage(x, "create needs --types");
    if (!strcmp(a->sub, "update") && !a->any_option)
        return cli_usage(x, "update needs at least one option to change");
    if (!strcmp(a->sub, "update") && a->g.start)
        return cli_usage(x, "--start only applies when a group is created");
    bool push_opt = a->g.push_secret || a->g.npush_headers || a->g.push_timeout_ms ||
                    a->g.push_max_in_flight || a->g.push_batch || a->g.push_format;
    if (!strcmp(a->sub, "create") && push_opt && !a->g.push_url)
        return cli_usage(x, "--push-* options go with --push URL");
    if (!strcmp(a->sub, "create") && a->g.push_url && !a->g.push_secret)
        return cli_usage(x, "--push needs --push-secret whsec_... (Standard Webhooks)");
    if (a->g.push_remove && (push_opt || a->g.push_url || !strcmp(a->sub, "create")))
        return cli_usage(x, "--no-push goes alone, with update");
    return 0;
}

/* --- show / list ---------------------------------------------------------- */

static void print_config_line(const eb_groups_info *g)
{
    char mul[40], jit[40], rate[40];
    printf("max attempts:   %u\nack timeout:    %u ms\nbackoff:        %u ms x%s up to %u ms, "
           "jitter %s\nordering:       %s\nmax in flight:  %u\nrate limit:     %s/s\n",
           g->max_attempts, g->ack_timeout_ms, g->backoff_initial_ms,
           cli_num(g->backoff_multiplier, mul), g->backoff_max_ms, cli_num(g->backoff_jitter, jit),
           cli_or_dash(g->ordering), g->max_in_flight, cli_num(g->rate_limit, rate));
    if (g->filter)
        printf("filter:         %s\n", g->filter);
    if (g->has_push)
        printf("push:           %s (secret %s, timeout %u ms, max in flight %u, batch %u, %s)\n",
               cli_or_dash(g->push_url), cli_or_dash(g->push_secret), g->push_timeout_ms,
               g->push_max_in_flight, g->push_batch, cli_or_dash(g->push_format));
    if (g->push_circuit)
        printf("push circuit:   %s (%u consecutive failures, %" PRIu64 " in flight)\n",
               g->push_circuit, g->push_failures, g->push_in_flight);
}

static void print_consumers(const eb_groups_info *g)
{
    if (!g->nconsumers) {
        printf("consumers:      none yet\n");
        return;
    }
    printf("consumers:\n");
    static const char *const head[] = {"  NAME", "LAST PULL", "IN-FLIGHT"};
    cli_table t;
    cli_table_init(&t, head, 3);
    for (size_t i = 0; i < g->nconsumers; i++) {
        const eb_groups_consumer *c = g->consumers[i];
        char tb[32];
        cli_table_cell(&t, "  %s", c->name);
        cli_table_cell(&t, "%s", cli_short_time(cli_or_dash(c->last_pull), tb));
        cli_table_cell(&t, "%" PRIu64, c->in_flight);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_group(const void *res, const void *arg)
{
    (void)arg;
    const eb_groups_info *g = res;
    char types[160];
    printf("group:          %s\ntypes:          %s\npaused:         %s\n"
           "position:       cursor %" PRIu64 ", head %" PRIu64 "\nlag:            %" PRIu64
           "%s\nready:          %" PRIu64 "\ndelayed:        %" PRIu64 "\nin flight:      %" PRIu64
           "\nretrying:       %" PRIu64 "\ndead letters:   %" PRIu64 "\noldest unacked: %" PRIu64
           " ms\n",
           g->name, cli_join(g->types, g->ntypes, types, sizeof types), cli_yesno(g->paused),
           g->cursor, g->head, g->lag,
           g->lag_counting ? " (at least: its filter's count is under way)" : "", g->ready, g->delayed, g->in_flight, g->retry_scheduled,
           g->dead_letters,
           g->oldest_unacked_age_ms);
    print_config_line(g);
    printf("delivered:      %" PRIu64 " (acked %" PRIu64 ", nacked %" PRIu64 ", expired %" PRIu64
           ", redelivered %" PRIu64 ", dead-lettered %" PRIu64 ", redriven %" PRIu64
           ", replayed %" PRIu64 ")\n",
           g->counters.delivered, g->counters.acked, g->counters.nacked, g->counters.expired,
           g->counters.redelivered, g->counters.dead_lettered, g->counters.redriven,
           g->counters.replayed);
    print_consumers(g);
}

/* GET /v1/groups as a table. */
static void print_group_table(const void *res, const void *arg)
{
    (void)arg;
    const eb_groups_all *l = res;
    if (!l->n) {
        printf("no groups\n");
        return;
    }
    static const char *const head[] = {"GROUP", "PAUSED", "LAG", "READY", "IN-FLIGHT",
                                       "RETRYING", "DLQ"};
    cli_table t;
    cli_table_init(&t, head, 7);
    for (size_t i = 0; i < l->n; i++) {
        const eb_groups_info *g = l->groups[i];
        cli_table_cell(&t, "%s", g->name);
        cli_table_cell(&t, "%s", cli_yesno(g->paused));
        cli_table_cell(&t, "%" PRIu64, g->lag);
        cli_table_cell(&t, "%" PRIu64, g->ready);
        cli_table_cell(&t, "%" PRIu64, g->in_flight);
        cli_table_cell(&t, "%" PRIu64, g->retry_scheduled);
        cli_table_cell(&t, "%" PRIu64, g->dead_letters);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

/* GET /v1/groups/{group}/history as a table, oldest first. */
static void print_history(const void *res, const void *arg)
{
    const eb_groups_samples *h = res;
    if (!h->n) {
        printf("no samples of %s yet (one every %u ms)\n", (const char *)arg, h->interval_ms);
        return;
    }
    static const char *const head[] = {"TIME", "LAG", "DELIVERED", "ACKED", "NACKED",
                                       "DEAD-LETTERED", "DLQ", "OLDEST-MS"};
    cli_table t;
    cli_table_init(&t, head, 8);
    for (size_t i = 0; i < h->n; i++) {
        const eb_groups_sample *s = h->samples[i];
        char tb[32];
        cli_table_cell(&t, "%s", cli_short_time(s->ts, tb));
        cli_table_cell(&t, "%" PRIu64, s->lag);
        cli_table_cell(&t, "%" PRIu64, s->delivered);
        cli_table_cell(&t, "%" PRIu64, s->acked);
        cli_table_cell(&t, "%" PRIu64, s->nacked);
        cli_table_cell(&t, "%" PRIu64, s->dead_lettered);
        cli_table_cell(&t, "%" PRIu64, s->dead_letters);
        cli_table_cell(&t, "%" PRIu64, s->oldest_unacked_ms);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    printf("%zu samples, one every %u ms; counters are per interval\n", h->n, h->interval_ms);
}

/* --- create / update ----------------------------------------------------- */

static int put_group(cli *x, grp_args *a)
{
    bool create = !strcmp(a->sub, "create");
    if (create) {
        int rc = eb_groups_get(x->c, a->group, NULL);
        if (rc == 0) {
            fprintf(stderr, "eventbus groups: group '%s' exists (use 'groups update')\n",
                    a->group);
            return CLI_REFUSED;
        }
        if (rc != EB_ENOTFOUND)
            return cli_fail(x, rc);
    }
    /* update: only the options given change (a merge patch, applied by the
     * server at once: nothing read first, nothing else reset). */
    bool created = false;
    eb_groups_info *now = NULL;
    if (!create && a->filter_set && !a->g.filter)
        a->g.filter = "null"; /* --filter {}: a merge patch removes it */
    int rc = create ? eb_groups_put(x->c, a->group, &a->g, &created, &now)
                    : eb_groups_patch(x->c, a->group, &a->g, &now);
    if (rc)
        return cli_fail(x, rc);
    if (x->json) {
        cli_print_json(eb_client_answer(x->c, NULL));
    } else {
        char b[256];
        printf("%s group %s\n", created ? "created" : "updated", a->group);
        printf("types:          %s\n", cli_join(now->types, now->ntypes, b, sizeof b));
        print_config_line(now);
    }
    eb_result_free(now);
    return CLI_OK;
}

int cli_groups(cli *x, int argc, char **argv)
{
    grp_args a = {.g = {.size = sizeof a.g}};
    int code = parse_groups(x, argc, argv, &a);
    if (code)
        return code < 0 ? cli_help(GROUPS_HELP) : code;
    int rc;
    if (!strcmp(a.sub, "create") || !strcmp(a.sub, "update"))
        return put_group(x, &a);
    if (!strcmp(a.sub, "list")) {
        eb_groups_all *l = NULL;
        rc = eb_groups_list(x->c, &l);
        return cli_answer(x, rc, l, print_group_table, NULL);
    }
    if (!strcmp(a.sub, "history")) {
        eb_groups_samples *h = NULL;
        rc = eb_groups_history(x->c, a.group, &h);
        return cli_answer(x, rc, h, print_history, a.group);
    }
    if (!strcmp(a.sub, "show")) {
        eb_groups_info *g = NULL;
        rc = eb_groups_get(x->c, a.group, &g);
        return cli_answer(x, rc, g, print_group, NULL);
    }
    bool del = !strcmp(a.sub, "delete"), pause = !strcmp(a.sub, "pause");
    rc = del ? eb_groups_delete(x->c, a.group)
             : pause ? eb_groups_pause(x->c, a.group) : eb_groups_resume(x->c, a.group);
    if (rc)
        return cli_fail(x, rc);
    if (x->json)
        printf("{\"group\":\"%s\",\"%s\":true}\n", a.group,
               del ? "deleted" : pause ? "paused" : "resumed");
    else
        printf("%s group %s\n", del ? "deleted" : pause ? "paused" : "resumed", a.group);
    return CLI_OK;
}

/* ============================== dlq ============================== */

static const char DLQ_HELP[] =
    "Usage: eventbus dlq list GROUP [--limit N] [--all]\n"
    "       eventbus dlq redrive GROUP [--id EVENT_ID ...]\n"
    "       eventbus dlq purge GROUP [--id EVENT_ID]\n"
    "\n"
    "Dead letters are events a group failed to handle max-attempts times;\n"
    "each keeps its last error.\n"
    "list     the oldest first (--limit per page, 100; --all every page)\n"
    "redrive  puts them back for delivery with fresh attempts: the --id ones,\n"
    "         or all\n"
    "purge    drops them: the --id one, or all\n";

typedef struct dlq_args {
    const char *sub, *group;
    const char *ids[MAX_LIST];
    size_t      nids;
    uint64_t    limit;
    bool        all;
} dlq_args;

static int parse_dlq(cli *x, int argc, char **argv, dlq_args *a)
{
    static const struct option opts[] = {{"id", 1, 0, 'i'},  {"limit", 1, 0, 'l'},
                                         {"all", 0, 0, 'A'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (!add_values(optarg, a->ids, &a->nids))
                return cli_usage(x, "too many --id values");
            break;
        case 'l':
            if (!cli_parse_u64(optarg, 1000, &a->limit) || !a->limit)
                return cli_usage(x, "--limit needs a number from 1 to 1000");
            break;
        case 'A': a->all = true; break;
        case 'h': return -1;
        default: return cli_bad_option(x, c, argv);
        }
    }
    if (argc - optind != 2)
        return cli_usage(x, "expected a subcommand (list, redrive, purge) and a GROUP");
    a->sub = argv[optind];
    a->group = argv[optind + 1];
    bool list = !strcmp(a->sub, "list"), purge = !strcmp(a->sub, "purge");
    if (!list && !purge && strcmp(a->sub, "redrive"))
        return cli_usage(x, "unknown subcommand '%s'", a->sub);
    if (list && a->nids)
        return cli_usage(x, "--id goes with redrive and purge");
    if (!list && (a->limit || a->all))
        return cli_usage(x, "--limit and --all go with list");
    if (purge && a->nids > 1)
        return cli_usage(x, "purge takes one --id (or none: all)");
    return 0;
}

static void dlq_rows(cli_table *t, const eb_events *l)
{
    for (size_t i = 0; i < eb_events_count(l); i++) {
        const eb_event *e = eb_events_at(l, i);
        char tb[32];
        cli_table_cell(t, "%s", e->id);
        cli_table_cell(t, "%s", e->type);
        cli_table_cell(t, "%u", e->attempts);
        cli_table_cell(t, "%s", cli_short_time(e->failed_at, tb));
        cli_table_cell(t, "%s", e->consumer ? e->consumer : "-");
        cli_table_cell(t, "%s", e->error ? e->error : "-");
    }
}

static int dlq_list(cli *x, const dlq_args *a)
{
    static const char *const head[] = {"EVENT-ID", "TYPE", "ATTEMPTS", "FAILED-AT", "CONSUMER",
                                       "ERROR"};
    cli_table t;
    cli_table_init(&t, head, 6);
    char *after = NULL;
    size_t total = 0;
    int code = CLI_OK;
    do {
        eb_events *l = NULL;
        int rc = eb_dlq_list(x->c, a->group, (uint32_t)a->limit, after, &l);
        free(after);
        after = NULL;
        if (rc) {
            code = cli_fail(x, rc);
            break;
        }
        total += eb_events_count(l);
        if (x->json)
            cli_print_json(eb_events_json(l));
        else
            dlq_rows(&t, l);
        if (a->all && eb_events_next(l))
            after = strdup(eb_events_next(l));
        eb_events_free(l);
    } while (after);
    if (code == CLI_OK && !x->json) {
        if (total)
            cli_table_print(&t, stdout);
        else
            printf("no dead letters in %s\n", a->group);
    }
    cli_table_free(&t);
    return code;
}

int cli_dlq(cli *x, int argc, char **argv)
{
    dlq_args a = {0};
    int code = parse_dlq(x, argc, argv, &a);
    if (code)
        return code < 0 ? cli_help(DLQ_HELP) : code;
    if (!strcmp(a.sub, "list"))
        return dlq_list(x, &a);
    uint64_t n = 0;
    bool redrive = !strcmp(a.sub, "redrive");
    int rc = redrive ? eb_dlq_redrive(x->c, a.group, a.ids, a.nids, &n)
                     : eb_dlq_purge(x->c, a.group, a.nids ? a.ids[0] : NULL, &n);
    if (rc)
        return cli_fail(x, rc);
    if (x->json)
        printf("{\"%s\":%" PRIu64 "}\n", redrive ? "redriven" : "purged", n);
    else
        printf("%s %" PRIu64 " dead letter%s of %s\n", redrive ? "redrove" : "purged", n,
               n == 1 ? "" : "s", a.group);
    return CLI_OK;
}

/* ============================== replay ============================== */

static const char REPLAY_HELP[] =
    "Usage: eventbus replay GROUP --since WHEN [--until WHEN] [--type T ...]\n"
    "       eventbus replay GROUP --since-seq N [--until-seq N] [--type T ...]\n"
    "\n"
    "Delivers a past range of the log to GROUP again (in addition to its\n"
    "normal flow), e.g. after fixing a consumer's bug.\n"
    "WHEN is an RFC 3339 time or a duration back from now (30m, 2h, 7d).\n"
    "\n"
    "Options:\n"
    "  --since WHEN / --since-seq N   where the range starts\n"
    "  --until WHEN / --until-seq N   where it ends (default: now)\n"
    "  --type T                       only these types (default: the group's)\n"
    "  --dry-run                      only count what would be requeued\n";

int cli_replay(cli *x, int argc, char **argv)
{
    static const struct option opts[] = {
        {"since", 1, 0, 's'}, {"until", 1, 0, 'u'}, {"since-seq", 1, 0, 'S'},
        {"until-seq", 1, 0, 'U'}, {"type", 1, 0, 't'}, {"types", 1, 0, 't'},
        {"dry-run", 0, 0, 'n'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *types[MAX_LIST];
    eb_replay_opts o = {.size = sizeof o, .types = types};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's': o.since = optarg; break;
        case 'u': o.until = optarg; break;
        case 'S':
            if (!cli_parse_u64(optarg, UINT64_MAX, &o.since_seq) || !o.since_seq)
                return cli_usage(x, "--since-seq needs a sequence number");
            break;
        case 'U':
            if (!cli_parse_u64(optarg, UINT64_MAX, &o.until_seq) || !o.until_seq)
                return cli_usage(x, "--until-seq needs a sequence number");
            break;
        case 't':
            if (!add_values(optarg, types, &o.ntypes))
                return cli_usage(x, "too many types");
            break;
        case 'n': o.dry_run = true; break;
        case 'h': return cli_help(REPLAY_HELP);
        default: return cli_bad_option(x, c, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage(x, "which GROUP?");
    if (!o.since == !o.since_seq)
        return cli_usage(x, "give --since or --since-seq (one of them)");
    if (o.until && o.until_seq)
        return cli_usage(x, "give --until or --until-seq, not both");
    const char *group = argv[optind];
    uint64_t requeued = 0, expired = 0;
    int rc = eb_replay(x->c, group, &o, &requeued, &expired);
    if (rc)
        return cli_fail(x, rc);
    if (x->json)
        printf("{\"requeued\":%" PRIu64 ",\"expired\":%" PRIu64 "}\n", requeued, expired);
    else if (o.dry_run)
        printf("would requeue %" PRIu64 " event%s for %s (%" PRIu64 " of the range gone)\n",
               requeued, requeued == 1 ? "" : "s", group, expired);
    else if (expired)
        printf("requeued %" PRIu64 " events for %s; %" PRIu64 " more of the range are gone "
               "(removed by retention)\n", requeued, group, expired);
    else
        printf("requeued %" PRIu64 " event%s for %s\n", requeued, requeued == 1 ? "" : "s",
               group);
    return CLI_OK;
}
