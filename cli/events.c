/* events.c - `eventbus publish` (one event, or many from a JSON Lines file
 * with a progress bar) and `eventbus tail` (follow a group or a type). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/clock.h"


/* ============================== publish ============================== */

static const char PUBLISH_HELP[] =
    "Usage: eventbus publish TYPE [JSON | -] [options]\n"
    "       eventbus publish [TYPE] --file F.jsonl [options]\n"
    "\n"
    "Publishes one event of TYPE whose data is JSON (or stdin with '-'; no\n"
    "JSON: null). Returns once the server has it on disk.\n"
    "With --file, publishes every line of F (JSON Lines; '-' for stdin): with\n"
    "TYPE each line is an event's data, without it each line is a whole event\n"
    "({\"type\":...,\"data\":...}). Lines go in atomic batches; a refused batch\n"
    "stops the run and names the offending lines. A progress bar shows on a\n"
    "terminal.\n"
    "\n"
    "Options:\n"
    "  --key K              ordering key\n"
    "  --id ID              event id, for deduplication (not with --file)\n"
    "  --source S           producer name\n"
    "  --subject S\n"
    "  --correlation-id ID\n"
    "  --causation-id ID\n"
    "  --version N          schema version to validate against (default latest)\n"
    "  --expected-version N with --key: refused unless the key's current version\n"
    "                       is N (0: the key must be new); exit 1 on a conflict\n"
    "  --delay D            deliver to groups after D (90s, 15m, 2h, 7d; at most the\n"
    "                       server's --max-delay, 30d): stored now, delivered then\n"
    "  --deliver-at T       deliver at T (RFC 3339, 2026-12-01T09:00:00Z; the past: now)\n"
    "  --file F             publish every line of F\n"
    "  --batch N            events per request with --file (1-1000, default 500)\n"
    "\n"
    "Prints the event's id, seq and time (JSON: the server's receipt).\n";

typedef struct pub_args {
    eb_publish_opts o;
    const char     *type;
    const char     *data;  /* JSON text, "-" or NULL */
    const char     *file;
    uint64_t        batch;
} pub_args;

static int parse_publish(cli *x, int argc, char **argv, pub_args *a)
{
    static const struct option opts[] = {
        {"key", 1, 0, 'k'},    {"id", 1, 0, 'i'},      {"source", 1, 0, 's'},
        {"subject", 1, 0, 'S'}, {"correlation-id", 1, 0, 'c'}, {"causation-id", 1, 0, 'C'},
        {"version", 1, 0, 'v'}, {"file", 1, 0, 'f'},   {"batch", 1, 0, 'b'},
        {"expected-version", 1, 0, 'e'}, {"delay", 1, 0, 'd'}, {"deliver-at", 1, 0, 'D'},
        {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    uint64_t v;
    int c;
    bool batch_set = false;
    a->batch = 500;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': a->o.key = optarg; break;
        case 'i': a->o.id = optarg; break;
        case 's': a->o.source = optarg; break;
        case 'S': a->o.subject = optarg; break;
        case 'c': a->o.correlation_id = optarg; break;
        case 'C': a->o.causation_id = optarg; break;
        case 'f': a->file = optarg; break;
        case 'd': a->o.delay = optarg; break;
        case 'D': a->o.deliver_at = optarg; break;
        case 'v':
            if (!cli_parse_u64(optarg, UINT32_MAX, &v) || !v)
                return cli_usage(x, "--version needs a positive number");
            a->o.version = (uint32_t)v;
            break;
        case 'e':
            if (!cli_parse_u64(optarg, UINT64_MAX, &a->o.expected_version))
                return cli_usage(x, "--expected-version needs a version (0, 1, 2, ...)");
            a->o.check_version = true;
            break;
        case 'b':
            if (!cli_parse_u64(optarg, 1000, &a->batch) || !a->batch)
                return cli_usage(x, "--batch needs a number from 1 to 1000");
            batch_set = true;
            break;
        case 'h': return -1;
        default: return cli_bad_option(x, c, argv);
        }
    }
    int left = argc - optind;
    a->type = left > 0 ? argv[optind] : NULL;
    a->data = left > 1 ? argv[optind + 1] : NULL;
    if (left > 2)
        return cli_usage(x, "too many arguments (quote the JSON)");
    if (!a->file && !a->type)
        return cli_usage(x, "which event type?");
    if (batch_set && !a->file)
        return cli_usage(x, "--batch goes with --file");
    if (a->file && a->data)
        return cli_usage(x, "give either JSON or --file, not both");
    if (a->o.delay && a->o.deliver_at)
        return cli_usage(x, "give --delay or --deliver-at, not both");
    if (a->o.check_version && !a->o.key)
        return cli_usage(x, "--expected-version goes with --key");
    if (a->file && a->o.check_version)
        return cli_usage(x, "--expected-version is for one event (not with --file)");
    if (a->file && a->o.id)
        return cli_usage(x, "--id with --file would make every event a duplicate of the first");
    return 0;
}

static void print_receipt(const cli *x, const char *type, const eb_publish_result *r)
{
    if (x->json) {
        char kv[48] = "", da[64] = "";
        if (r->key_version)
            snprintf(kv, sizeof kv, ",\"key_version\":%" PRIu64, r->key_version);
        if (r->deliver_at[0])
            snprintf(da, sizeof da, ",\"deliver_at\":\"%s\"", r->deliver_at);
        printf("{\"id\":\"%s\",\"seq\":%" PRIu64 ",\"time\":\"%s\"%s%s%s}\n", r->id, r->seq,
               r->time, kv, da, r->duplicate ? ",\"duplicate\":true" : "");
        return;
    }
    printf("%s %s  seq %" PRIu64 "  id %s  %s", r->duplicate ? "duplicate of" : "published",
           type, r->seq, r->id, r->time);
    if (r->key_version)
        printf("  key version %" PRIu64, r->key_version);
    if (r->deliver_at[0])
        printf("  delivered at %s", r->deliver_at);
    putchar('\n');
}

static int publish_one(cli *x, const pub_args *a)
{
    char *stdin_data = NULL;
    const char *data = a->data;
    if (data && !strcmp(data, "-")) {
        size_t n;
        if (!(stdin_data = cli_read_file("-", &n)))
            return cli_usage(x, "cannot read stdin: %s", strerror(errno));
        data = stdin_data;
    }
    eb_publish_result r = {.size = sizeof r};
    int rc = eb_publish(x->c, a->type, data, &a->o, &r);
    free(stdin_data);
    if (rc)
        return cli_fail(x, rc);
    print_receipt(x, a->type, &r);
    return CLI_OK;
}

/* --- --file ---------------------------------------------------------------- */

typedef struct file_run {
    cli            *x;
    const pub_args *a;
    FILE           *f;
    uint64_t        size;      /* file size for the progress bar; 0: unknown */
    uint64_t        read;      /* bytes read so far */
    uint64_t        lineno;
    eb_buf          body;      /* without TYPE: the batch's events as a JSON array */
    eb_message     *msgs;      /* with TYPE: the batch's events ... */
    const eb_message **msgp;   /* ... and pointers to them */
    uint64_t       *lines;     /* input line of each event in the batch */
    size_t          n;         /* events in the batch */
    uint64_t        published, duplicates, first_seq, last_seq;
    double          t0, last_draw;
} file_run;

static void progress(file_run *r, bool final)
{
    if (!r->x->err_tty)
        return;
    double now = eb_clock_mono_s();
    if (!final && now - r->last_draw < 0.1)
        return;
    r->last_draw = now;
    double el = now - r->t0, rate = el > 0 ? (double)r->published / el : 0;
    int width = 30, fill = 0;
    char pct[8] = "";
    if (r->size) {
        double frac = (double)r->read / (double)r->size;
        fill = (int)(frac * width);
        snprintf(pct, sizeof pct, "%3d%%", (int)(frac * 100));
    }
    fprintf(stderr, "\r[");
    for (int i = 0; i < width; i++)
        fputc(r->size ? (i < fill ? '#' : '.') : (i == (int)(el * 10) % width ? '#' : '.'), stderr);
    fprintf(stderr, "] %s %" PRIu64 " events  %.0f/s   %s", pct, r->published, rate,
            final ? "\n" : "");
    fflush(stderr);
}

/* Sends the batch; on refusal reports the lines and returns the exit code. */
static int flush_batch(file_run *r)
{
    if (!r->n)
        return CLI_OK;
    eb_receipts *rec = NULL;
    int rc;
    if (r->a->type) {
        rc = eb_publish_batch(r->x->c, r->msgp, r->n, &rec);
    } else {
        eb_buf_putc(&r->body, ']');
        rc = eb_buf_failed(&r->body) ? EB_ENOMEM
                                     : eb_publish_json(r->x->c, r->body.data, r->body.len, &rec);
    }
    for (size_t i = 0; r->a->type && i < r->n; i++) {
        free((char *)r->msgs[i].data);
        r->msgs[i].data = NULL;
    }
    if (rc) {
        progress(r, true);
        fprintf(stderr, "eventbus publish: lines %" PRIu64 "-%" PRIu64 " were not published "
                "(%" PRIu64 " events before them were)\n", r->lines[0], r->lines[r->n - 1],
                r->published);
        return cli_fail_lines(r->x, rc, r->lines, r->n);
    }
    for (size_t i = 0; i < rec->n && i < r->n; i++) {
        if (rec->results[i]->duplicate)
            r->duplicates++;
        if (!r->first_seq)
            r->first_seq = rec->results[i]->seq;
        r->last_seq = rec->results[i]->seq;
    }
    r->published += rec->n;
    eb_result_free(rec);
    r->n = 0;
    eb_buf_reset(&r->body);
    progress(r, false);
    return CLI_OK;
}

/* Adds one line to the batch: its data (with TYPE) or the whole event. */
static int add_line(file_run *r, const char *line, size_t len)
{
    uint32_t eline, ecol;
    char why[96];
    if (eb_json_check(line, len, &eline, &ecol, why, sizeof why) != 0) {
        progress(r, true);
        fprintf(stderr, "eventbus publish: line %" PRIu64 ": malformed JSON at column %u: %s\n"
                "  (%" PRIu64 " events before this batch were published)\n",
                r->lineno, ecol, why, r->published);
        return CLI_USAGE;
    }
    const pub_args *a = r->a;
    if (!a->type) {
        eb_buf_putc(&r->body, r->n ? ',' : '[');
        eb_buf_append(&r->body, line, len);
    } else {
        char *data = strndup(line, len);
        if (!data) {
            progress(r, true);
            fprintf(stderr, "eventbus publish: out of memory\n");
            return CLI_USAGE;
        }
        r->msgs[r->n] = (eb_message){.size = sizeof(eb_message), .type = a->type, .data = data,
                                     .opts = &a->o};
        r->msgp[r->n] = &r->msgs[r->n];
    }
    r->lines[r->n++] = r->lineno;
    return r->n == r->a->batch ? flush_batch(r) : CLI_OK;
}

static int run_file(file_run *r)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int code = CLI_OK;
    while (code == CLI_OK && (len = getline(&line, &cap, r->f)) >= 0) {
        r->lineno++;
        r->read += (uint64_t)len;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        size_t skip = strspn(line, " \t");
        if ((size_t)len > skip)
            code = add_line(r, line + skip, (size_t)len - skip);
    }
    int err = errno; /* getline's, when it failed */
    free(line);
    if (code == CLI_OK && ferror(r->f)) {
        fprintf(stderr, "eventbus publish: cannot read %s: %s\n", r->a->file, strerror(err));
        code = CLI_USAGE;
    }
    return code == CLI_OK ? flush_batch(r) : code;
}

static void file_summary(const file_run *r)
{
    double el = eb_clock_mono_s() - r->t0;
    if (r->x->json) {
        printf("{\"published\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"first_seq\":%" PRIu64
               ",\"last_seq\":%" PRIu64 ",\"seconds\":%.3f}\n",
               r->published, r->duplicates, r->first_seq, r->last_seq, el);
        return;
    }
    printf("published %" PRIu64 " events", r->published);
    if (r->published)
        printf(" (seq %" PRIu64 "..%" PRIu64 ")", r->first_seq, r->last_seq);
    if (r->duplicates)
        printf(", %" PRIu64 " of them duplicates", r->duplicates);
    printf(" in %.2f s (%.0f events/s)\n", el, el > 0 ? (double)r->published / el : 0.0);
}

static int publish_file(cli *x, const pub_args *a)
{
    file_run r = {.x = x, .a = a, .t0 = eb_clock_mono_s()};
    r.f = strcmp(a->file, "-") ? fopen(a->file, "r") : stdin;
    if (!r.f)
        return cli_usage(x, "cannot read %s: %s", a->file, strerror(errno));
    struct stat st;
    if (fstat(fileno(r.f), &st) == 0 && S_ISREG(st.st_mode))
        r.size = (uint64_t)st.st_size;
    r.lines = calloc(a->batch, sizeof *r.lines);
    r.msgs = calloc(a->batch, sizeof *r.msgs);
    r.msgp = calloc(a->batch, sizeof *r.msgp);
    int code = CLI_USAGE;
    if (r.lines && r.msgs && r.msgp)
        code = run_file(&r);
    if (code == CLI_OK) {
        progress(&r, true);
        file_summary(&r);
    }
    if (r.f != stdin)
        fclose(r.f);
    for (size_t i = 0; a->type && i < r.n; i++) /* a run that stopped early */
        free((char *)r.msgs[i].data);
    eb_buf_free(&r.body);
    free(r.lines);
    free(r.msgs);
    free(r.msgp);
    return code;
}

int cli_publish(cli *x, int argc, char **argv)
{
    pub_args a = {.o = {.size = sizeof a.o}};
    int code = parse_publish(x, argc, argv, &a);
    if (code)
        return code < 0 ? cli_help(PUBLISH_HELP) : code;
    return a.file ? publish_file(x, &a) : publish_one(x, &a);
}

/* ============================== tail ============================== */

static const char TAIL_HELP[] =
    "Usage: eventbus tail GROUP [options]\n"
    "       eventbus tail --type TYPE [--since WHEN] [options]\n"
    "\n"
    "Prints events as they arrive, one per line (JSON: the event as the server\n"
    "sends it), until Ctrl-C, -n or --idle.\n"
    "With GROUP it consumes from the group: every event printed is acked\n"
    "(--no-ack leaves them leased: they are redelivered after the group's ack\n"
    "timeout). With --type it only reads the log (no group, nothing acked),\n"
    "from now on, or from --since.\n"
    "\n"
    "Options:\n"
    "  --type TYPE        follow the log for this event type instead of a group\n"
    "  --since WHEN       with --type: start at RFC 3339 time or duration ago (2h)\n"
    "  --consumer NAME    consumer name (default eventbus-tail-HOST-PID)\n"
    "  --no-ack           print without acking\n"
    "  -n, --count N      stop after N events\n"
    "  --idle DUR         stop when no event came for DUR (e.g. 5s)\n"
    "  --wait DUR         long-poll wait per request (default 20s)\n";

typedef struct tail_args {
    const char *group, *type, *since, *consumer;
    bool        no_ack;
    uint64_t    count, idle_ms, wait_ms;
    uint64_t    printed;
} tail_args;

void cli_print_event(const cli *x, const eb_event *e)
{
    if (x->json) {
        fwrite(e->json, 1, e->json_len, stdout);
        fputc('\n', stdout);
    } else {
        char t[32];
        printf("#%-6" PRIu64 " %s  %s  %s", e->seq, cli_short_time(e->time, t), e->type, e->id);
        if (e->key)
            printf("  key=%s", e->key);
        if (e->key_version)
            printf(" v%" PRIu64, e->key_version);
        if (e->attempt > 1)
            printf("  (attempt %u)", e->attempt);
        printf("  %s\n", e->data);
    }
    fflush(stdout);
}

static int tail_handler(const eb_event *ev, void *arg, char *err, size_t cap)
{
    (void)err;
    (void)cap;
    const cli *x = arg;
    cli_print_event(x, ev);
    return 0;
}

static int parse_tail(cli *x, int argc, char **argv, tail_args *a)
{
    static const struct option opts[] = {
        {"type", 1, 0, 't'},  {"since", 1, 0, 's'}, {"consumer", 1, 0, 'c'},
        {"no-ack", 0, 0, 'N'}, {"count", 1, 0, 'n'}, {"idle", 1, 0, 'I'},
        {"wait", 1, 0, 'w'},  {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int c;
    a->wait_ms = 20000;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn:", opts, NULL)) != -1) {
        switch (c) {
        case 't': a->type = optarg; break;
        case 's': a->since = optarg; break;
        case 'c': a->consumer = optarg; break;
        case 'N': a->no_ack = true; break;
        case 'n':
            if (!cli_parse_u64(optarg, UINT64_MAX, &a->count) || !a->count)
                return cli_usage(x, "--count needs a positive number");
            break;
        case 'I':
            if (!cli_parse_ms(optarg, &a->idle_ms) || !a->idle_ms || a->idle_ms > UINT32_MAX)
                return cli_usage(x, "--idle needs a duration like 5s");
            break;
        case 'w':
            if (!cli_parse_ms(optarg, &a->wait_ms) || a->wait_ms > 60000)
                return cli_usage(x, "--wait needs a duration up to 60s");
            break;
        case 'h': return -1;
        default: return cli_bad_option(x, c, argv);
        }
    }
    if (argc - optind > 1)
        return cli_usage(x, "too many arguments");
    a->group = argc > optind ? argv[optind] : NULL;
    if (!!a->group == !!a->type)
        return cli_usage(x, "give a GROUP or --type TYPE (one of them)");
    if (a->since && !a->type)
        return cli_usage(x, "--since goes with --type (for a group, see 'eventbus replay')");
    if (a->type && (a->no_ack || a->consumer))
        return cli_usage(x, "--no-ack and --consumer go with a GROUP");
    return 0;
}

static int tail_group_ack(cli *x, tail_args *a)
{
    eb_consume_opts o = {.size = sizeof o, .arg = x, .max = 100, .wait_ms = (uint32_t)a->wait_ms,
                         .stop = &cli_stop, .max_events = a->count,
                         .idle_ms = (uint32_t)a->idle_ms, .retry_max_ms = 30000};
    int rc = eb_consume(x->c, a->group, a->consumer, tail_handler, &o);
    return rc ? cli_fail(x, rc) : CLI_OK;
}

static int peek_loop(cli *x, tail_args *a)
{
    double last = eb_clock_mono_s();
    while (!cli_stop && (!a->count || a->printed < a->count)) {
        if (a->idle_ms && (eb_clock_mono_s() - last) * 1000 >= (double)a->idle_ms)
            break;
        uint64_t left = a->count ? a->count - a->printed : 1000;
        uint32_t wait = (uint32_t)a->wait_ms;
        if (a->idle_ms && a->idle_ms < wait)
            wait = (uint32_t)a->idle_ms;
        eb_events *l = NULL;
        int rc = eb_pull(x->c, a->group, a->consumer, (uint32_t)(left < 1000 ? left : 1000), wait,
                         &l);
        if (rc == EB_ECANCELED)
            break;
        if (rc)
            return cli_fail(x, rc);
        for (size_t i = 0; i < eb_events_count(l); i++, a->printed++)
            cli_print_event(x, eb_events_at(l, i));
        if (eb_events_count(l))
            last = eb_clock_mono_s();
        eb_events_free(l);
    }
    return CLI_OK;
}

/* --no-ack: pull and print; the leases simply run out. Uses a client whose
 * cancel flag is the signal flag, so Ctrl-C ends a long poll at once. */
static int tail_group_peek(cli *x, tail_args *a)
{
    eb_client *main_client = x->c;
    eb_client_opts co = {.size = sizeof co, .url = x->url, .timeout_ms = x->timeout_ms,
                         .cancel = &cli_stop, .token = x->token, .cafile = x->cafile};
    if (eb_client_new(&co, &x->c))
        return cli_usage(x, "cannot use URL %s", x->url);
    int code = peek_loop(x, a);
    eb_client_free(x->c);
    x->c = main_client;
    return code;
}

/* Where "from now" is: just before the log's head seq (from /v1/stats),
 * or, on a server without it, the current time. */
static void tail_start(cli *x, eb_browse_opts *q, char since_buf[40])
{
    eb_stats_info *st = NULL;
    uint64_t head = 0; /* the seq the next event will get */
    if (eb_stats(x->c, &st) == 0)
        head = st->head_seq;
    eb_result_free(st);
    if (head) {
        q->after_seq = head - 1;
    } else {
        uint64_t now = eb_clock_wall_us();
        time_t sec = (time_t)(now / 1000000u);
        struct tm tm;
        gmtime_r(&sec, &tm);
        size_t n = strftime(since_buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(since_buf + n, 40 - n, ".%06uZ", (unsigned)(now % 1000000u));
        q->since = since_buf;
    }
}

static void nap_ms(unsigned ms)
{
    for (unsigned i = 0; i < ms && !cli_stop; i += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int tail_type(cli *x, tail_args *a)
{
    char since_buf[40];
    eb_browse_opts q = {.size = sizeof q, .type = a->type, .since = a->since, .limit = 1000};
    if (!a->since)
        tail_start(x, &q, since_buf);
    double last = eb_clock_mono_s();
    while (!cli_stop && (!a->count || a->printed < a->count)) {
        if (a->idle_ms && (eb_clock_mono_s() - last) * 1000 >= (double)a->idle_ms)
            break;
        eb_events *l = NULL;
        int rc = eb_events_browse(x->c, &q, &l);
        if (rc)
            return cli_fail(x, rc);
        size_t n = eb_events_count(l);
        for (size_t i = 0; i < n && (!a->count || a->printed < a->count); i++, a->printed++)
            cli_print_event(x, eb_events_at(l, i));
        if (n) {
            q.after_seq = eb_events_at(l, n - 1)->seq;
            q.since = NULL;
            last = eb_clock_mono_s();
        }
        bool more = eb_events_next(l) != NULL;
        eb_events_free(l);
        if (!more)
            nap_ms(250);
    }
    return CLI_OK;
}

int cli_tail(cli *x, int argc, char **argv)
{
    tail_args a = {0};
    int code = parse_tail(x, argc, argv, &a);
    if (code)
        return code < 0 ? cli_help(TAIL_HELP) : code;
    char name[128];
    if (a.group && !a.consumer) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(name, sizeof name, "eventbus-tail-%s-%ld", host, (long)getpid());
        a.consumer = name;
    }
    cli_catch_signals();
    if (a.type)
        return tail_type(x, &a);
    return a.no_ack ? tail_group_peek(x, &a) : tail_group_ack(x, &a);
}
