/* stats.c - `eventbus stats` (a readable summary of GET /v1/stats) and
 * `eventbus top` (the same, refreshed, with rates from one sample to the
 * next). */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util/clock.h"

static const char STATS_HELP[] =
    "Usage: eventbus stats\n"
    "\n"
    "A summary of the bus: events published, the log's sequence range and\n"
    "size, and per group its lag, in-flight and retrying events, DLQ depth and\n"
    "delivery counters. JSON: the server's /v1/stats answer.\n";

static const char TOP_HELP[] =
    "Usage: eventbus top [--interval DUR] [-n N]\n"
    "\n"
    "A refreshing view of the bus: publish rate, and per group the lag, ready,\n"
    "in-flight, retrying, DLQ depth and delivery / ack / nack rates. Ctrl-C\n"
    "quits. When stdout is not a terminal (or with --json) it prints one JSON\n"
    "object per refresh instead: {\"time\",\"published_per_s\",\"head_seq\",\n"
    "\"groups\":[{\"name\",\"lag\",...,\"delivered_per_s\",\"acked_per_s\",\n"
    "\"nacked_per_s\"}]} (rates are null in the first sample).\n"
    "\n"
    "Options:\n"
    "  --interval DUR   time between refreshes (default 2s)\n"
    "  -n, --iterations N   stop after N refreshes\n";

static const char *human_bytes(uint64_t b, char out[32])
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return out;
}

static void print_summary(const void *res, const void *arg)
{
    (void)arg;
    const eb_stats_info *s = res;
    char hb[32];
    uint64_t next = s->head_seq; /* the next seq */
    printf("events:  %" PRIu64 " published; log holds seq %" PRIu64 "..%" PRIu64 " (%s)\n",
           s->published, s->first_seq, next ? next - 1 : 0, human_bytes(s->bytes, hb));
    if (!s->ngroups) {
        printf("groups:  none\n");
        return;
    }
    static const char *const head[] = {"GROUP", "PAUSED", "LAG", "IN-FLIGHT", "RETRYING", "DLQ",
                                       "DELIVERED", "ACKED", "NACKED", "EXPIRED",
                                       "DEAD-LETTERED", "REDRIVEN", "REPLAYED"};
    cli_table t;
    cli_table_init(&t, head, 13);
    for (size_t i = 0; i < s->ngroups; i++) {
        const eb_groups_info *g = s->groups[i];
        const uint64_t num[] = {g->lag, g->in_flight, g->retry_scheduled, g->dead_letters,
                                g->counters.delivered, g->counters.acked, g->counters.nacked,
                                g->counters.expired, g->counters.dead_lettered,
                                g->counters.redriven, g->counters.replayed};
        cli_table_cell(&t, "%s", g->name);
        cli_table_cell(&t, "%s", cli_yesno(g->paused));
        for (size_t k = 0; k < sizeof num / sizeof num[0]; k++)
            cli_table_cell(&t, "%" PRIu64, num[k]);
    }
    printf("\n");
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

int cli_stats(cli *x, int argc, char **argv)
{
    if (cli_wants_help(argc, argv))
        return cli_help(STATS_HELP);
    if (argc > 1 && argv[1][0] == '-' && strcmp(argv[1], "--"))
        return cli_usage(x, "unknown option '%s'", argv[1]);
    if (argc > 1)
        return cli_usage(x, "stats takes no arguments");
    eb_stats_info *s = NULL;
    int rc = eb_stats(x->c, &s);
    return cli_answer(x, rc, s, print_summary, NULL);
}

/* ============================== top ============================== */

#define TOP_MAX_GROUPS 256

/* One sample of the counters rates are computed from. */
typedef struct sample {
    double   t;         /* monotonic seconds */
    uint64_t published;
    size_t   n;
    struct {
        char     name[129];
        uint64_t delivered, acked, nacked;
    } g[TOP_MAX_GROUPS];
} sample;


static void take_sample(sample *s, const eb_stats_info *st)
{
    s->t = eb_clock_mono_s();
    s->published = st->published;
    s->n = 0;
    for (size_t i = 0; i < st->ngroups && s->n < TOP_MAX_GROUPS; i++, s->n++) {
        const eb_groups_info *g = st->groups[i];
        snprintf(s->g[s->n].name, sizeof s->g[s->n].name, "%s", g->name);
        s->g[s->n].delivered = g->counters.delivered;
        s->g[s->n].acked = g->counters.acked;
        s->g[s->n].nacked = g->counters.nacked;
    }
}

/* Rate of a counter between two samples; negative when unknown. */
static double rate(const sample *prev, const sample *cur, uint64_t before, uint64_t now)
{
    if (!prev || cur->t <= prev->t || now < before)
        return -1;
    return (double)(now - before) / (cur->t - prev->t);
}

static size_t find_group(const sample *s, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (!strcmp(s->g[i].name, name))
            return i;
    return SIZE_MAX;
}

typedef struct rates {
    double deliv, ack, nack;
} rates;

static rates group_rates(const sample *prev, const sample *cur, size_t i)
{
    size_t j = find_group(prev, cur->g[i].name);
    if (j == SIZE_MAX)
        return (rates){-1, -1, -1};
    return (rates){rate(prev, cur, prev->g[j].delivered, cur->g[i].delivered),
                   rate(prev, cur, prev->g[j].acked, cur->g[i].acked),
                   rate(prev, cur, prev->g[j].nacked, cur->g[i].nacked)};
}

static void cell_rate(cli_table *t, double r)
{
    if (r < 0)
        cli_table_cell(t, "-");
    else
        cli_table_cell(t, "%.1f", r);
}

static void draw_screen(const cli *x, const eb_stats_info *st, const sample *prev,
                        const sample *cur, double interval)
{
    char tb[16], pb[32], hb[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(tb, sizeof tb, "%H:%M:%S", &tm);
    double pub = rate(prev, cur, prev ? prev->published : 0, cur->published);
    printf("\033[H\033[2Jeventbus top  %s  %s  (every %.1fs, Ctrl-C quits)\n\n", eb_client_url(x->c), tb,
           interval);
    printf("published/s: %s   head seq: %" PRIu64 "   log: %s\n\n",
           pub < 0 ? "-" : (snprintf(pb, sizeof pb, "%.1f", pub), pb), st->head_seq,
           human_bytes(st->bytes, hb));
    static const char *const head[] = {"GROUP", "LAG", "READY", "IN-FLIGHT", "RETRYING", "DLQ",
                                       "DELIV/S", "ACK/S", "NACK/S", "PAUSED", "PUSH"};
    cli_table t;
    cli_table_init(&t, head, 11);
    for (size_t i = 0; i < st->ngroups && i < cur->n; i++) {
        const eb_groups_info *g = st->groups[i];
        rates r = group_rates(prev, cur, i);
        cli_table_cell(&t, "%s", cur->g[i].name);
        cli_table_cell(&t, "%" PRIu64, g->lag);
        cli_table_cell(&t, "%" PRIu64, g->ready);
        cli_table_cell(&t, "%" PRIu64, g->in_flight);
        cli_table_cell(&t, "%" PRIu64, g->retry_scheduled);
        cli_table_cell(&t, "%" PRIu64, g->dead_letters);
        cell_rate(&t, r.deliv);
        cell_rate(&t, r.ack);
        cell_rate(&t, r.nack);
        cli_table_cell(&t, "%s", cli_yesno(g->paused));
        cli_table_cell(&t, "%s", g->push_circuit ? g->push_circuit : "-"); /* its circuit */
    }
    if (cur->n)
        cli_table_print(&t, stdout);
    else
        printf("no consumer groups\n");
    cli_table_free(&t);
}

/* ,"key":rate (one decimal) or null when unknown. */
static void put_rate(const char *key, double r)
{
    char b[40];
    printf(",\"%s\":%s", key, r < 0 ? "null" : cli_num((double)(int64_t)(r * 10 + 0.5) / 10, b));
}

/* A JSON string; group names are [A-Za-z0-9._-], the escapes are for safety. */
static void put_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_snapshot(const eb_stats_info *st, const sample *prev, const sample *cur)
{
    printf("{\"time\":%lld", (long long)time(NULL));
    put_rate("published_per_s", rate(prev, cur, prev ? prev->published : 0, cur->published));
    printf(",\"head_seq\":%" PRIu64 ",\"groups\":[", st->head_seq);
    for (size_t i = 0; i < st->ngroups && i < cur->n; i++) {
        const eb_groups_info *g = st->groups[i];
        rates r = group_rates(prev, cur, i);
        printf("%s{\"name\":", i ? "," : "");
        put_str(cur->g[i].name);
        printf(",\"paused\":%s,\"lag\":%" PRIu64 ",\"in_flight\":%" PRIu64
               ",\"retry_scheduled\":%" PRIu64 ",\"dead_letters\":%" PRIu64
               ",\"ready\":%" PRIu64,
               g->paused ? "true" : "false", g->lag, g->in_flight, g->retry_scheduled,
               g->dead_letters, g->ready);
        put_rate("delivered_per_s", r.deliv);
        put_rate("acked_per_s", r.ack);
        put_rate("nacked_per_s", r.nack);
        if (g->push_circuit) {
            printf(",\"push_circuit\":");
            put_str(g->push_circuit);
        }
        putchar('}');
    }
    printf("]}\n");
}

static void nap(double s)
{
    double end = eb_clock_mono_s() + s;
    while (!cli_stop && eb_clock_mono_s() < end) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cli_top(cli *x, int argc, char **argv)
{
    static const struct option opts[] = {{"interval", 1, 0, 'i'}, {"iterations", 1, 0, 'n'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    uint64_t interval_ms = 2000, iterations = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn:", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (!cli_parse_ms(optarg, &interval_ms) || interval_ms < 100)
                return cli_usage(x, "--interval needs a duration of at least 100ms");
            break;
        case 'n':
            if (!cli_parse_u64(optarg, UINT32_MAX, &iterations) || !iterations)
                return cli_usage(x, "--iterations needs a positive number");
            break;
        case 'h': return cli_help(TOP_HELP);
        default: return cli_bad_option(x, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage(x, "top takes no arguments");
    cli_catch_signals();
    sample *s[2] = {calloc(1, sizeof(sample)), calloc(1, sizeof(sample))};
    int code = CLI_OK;
    bool have_prev = false;
    for (uint64_t it = 0; s[0] && s[1] && !cli_stop && (!iterations || it < iterations); it++) {
        if (it)
            nap((double)interval_ms / 1000);
        if (cli_stop)
            break;
        eb_stats_info *st = NULL;
        int rc = eb_stats(x->c, &st);
        if (rc) {
            if (!it || !x->tty) {
                code = cli_fail(x, rc);
                break;
            }
            printf("\033[H\033[2Jeventbus top  %s\n\n%s (retrying)\n", x->url,
                   eb_client_error(x->c)->message);
            fflush(stdout);
            continue;
        }
        sample *cur = s[it % 2], *prev = have_prev ? s[(it + 1) % 2] : NULL;
        take_sample(cur, st);
        if (x->json)
            print_snapshot(st, prev, cur);
        else
            draw_screen(x, st, prev, cur, (double)interval_ms / 1000);
        fflush(stdout);
        have_prev = true;
        eb_result_free(st);
    }
    free(s[0]);
    free(s[1]);
    return code;
}
