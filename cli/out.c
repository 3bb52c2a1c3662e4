/* out.c - the CLI's shared helpers: error reporting and exit codes, tables,
 * JSON printing, argument parsing, file reading, signals. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/duration.h"

volatile sig_atomic_t cli_stop;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end early */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* --- errors ------------------------------------------------------------------ */

int cli_usage(const cli *x, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "eventbus%s%s: ", x->cmd ? " " : "", x->cmd ? x->cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'eventbus %s%s--help'.\n", x->cmd ? x->cmd : "", x->cmd ? " " : "");
    return CLI_USAGE;
}

int cli_bad_option(const cli *x, int opt, char **argv)
{
    extern int optind, optopt;
    const char *arg = argv[optind - 1];
    if (opt == ':')
        return cli_usage(x, "option '%s' needs a value", arg);
    if (optopt)
        return cli_usage(x, "unknown option '-%c'", optopt);
    return cli_usage(x, "unknown option '%s'", arg);
}

int cli_help(const char *text)
{
    fputs(text, stdout);
    return CLI_OK;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return false;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return true;
    }
    return false;
}

/* One line per detail: "  where: message", prefixed with "line L: " when
 * lines maps the details' batch indexes to input lines. */
static void print_details(const eb_error *e, const uint64_t *lines, size_t nlines)
{
    for (size_t k = 0; k < e->ndetails; k++) {
        const eb_error_detail *d = e->detail[k];
        const char *where = d->path ? d->path : d->field;
        fprintf(stderr, "  ");
        if (lines && d->index >= 0 && (uint64_t)d->index < nlines)
            fprintf(stderr, "line %llu: ", (unsigned long long)lines[d->index]);
        if (where)
            fprintf(stderr, "%s: ", *where ? where : "(root)");
        fprintf(stderr, "%s\n", *d->message ? d->message : "-");
    }
}

int cli_fail(const cli *x, int rc)
{
    return cli_fail_lines(x, rc, NULL, 0);
}

int cli_fail_lines(const cli *x, int rc, const uint64_t *lines, size_t nlines)
{
    const eb_error *e = eb_client_error(x->c);
    const char *msg = e->message && *e->message ? e->message : eb_strerror(rc);
    if (e->http_status) {
        fprintf(stderr, "eventbus %s: %s%s%s\n", x->cmd, *e->server_code ? e->server_code : "",
                *e->server_code ? ": " : "", msg);
        if (strcmp(e->details, "[]") != 0)
            print_details(e, lines, nlines);
        return rc == EB_EPROTO ? CLI_UNREACHABLE : CLI_REFUSED;
    }
    fprintf(stderr, "eventbus %s: %s\n", x->cmd, msg);
    switch (rc) {
    case EB_ECONNECT:
    case EB_ETIMEDOUT:
    case EB_EPROTO:
    case EB_ECANCELED:
        if (rc != EB_ECANCELED)
            fprintf(stderr, "  (server%s: %s; set --url or EVENTBUS_URL)\n",
                    strchr(x->url, ',') ? "s" : "", x->url);
        return CLI_UNREACHABLE;
    case EB_ESYNTAX:
    case EB_EINVAL:
    case EB_ETOOBIG:
        return CLI_USAGE; /* refused locally, before anything was sent */
    default:
        return CLI_REFUSED;
    }
}

/* --- arguments ------------------------------------------------------------------ */

bool cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_ms(const char *s, uint64_t *ms)
{
    uint64_t us;
    if (!s || eb_duration_parse(s, strlen(s), EB_DURATION_US_MS, &us) != 0 ||
        us / 1000u > 1000000000000000ull)
        return false;
    *ms = us / 1000u;
    return true;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int e = ferror(f) ? errno : 0;
    if (f != stdin)
        fclose(f);
    if (buf && e) {
        free(buf);
        errno = e;
        return NULL;
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* --- tables ------------------------------------------------------------------ */

void cli_table_init(cli_table *t, const char *const *headers, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++)
        cli_table_cell(t, "%s", headers[i]);
}

void cli_table_cell(cli_table *t, const char *fmt, ...)
{
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **nc = realloc(t->cells, cap * sizeof *nc);
        if (!nc)
            return;
        t->cells = nc;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    t->cells[t->ncells++] = s;
}

/* Display width of a UTF-8 string: code points (continuation bytes skipped). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t *w = calloc(t->ncols, sizeof *w);
    if (!w)
        return;
    for (size_t i = 0; i < t->ncells; i++) {
        size_t cw = width(t->cells[i]);
        if (cw > w[i % t->ncols])
            w[i % t->ncols] = cw;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t col = i % t->ncols;
        const char *s = t->cells[i] ? t->cells[i] : "";
        bool last = col == t->ncols - 1;
        fputs(s, f);
        for (size_t p = width(s); !last && p < w[col] + 2; p++)
            fputc(' ', f);
        if (last)
            fputc('\n', f);
    }
    free(w);
}

void cli_table_free(cli_table *t)
{
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* --- JSON ----------------------------------------------------------------------- */

int cli_answer(const cli *x, int rc, const void *result, cli_show_fn show, const void *arg)
{
    if (rc) {
        eb_result_free(result);
        return cli_fail(x, rc);
    }
    if (x->json)
        cli_print_json(eb_client_answer(x->c, NULL));
    else
        show(result, arg);
    eb_result_free(result);
    return CLI_OK;
}

void cli_print_json(const char *json)
{
    fputs(json, stdout);
    size_t n = strlen(json);
    if (!n || json[n - 1] != '\n')
        fputc('\n', stdout);
}

void cli_print_pretty(FILE *f, const char *json, size_t len)
{
    char *p = NULL;
    if (eb_json_pretty(json, len, &p) == 0)
        fputs(p, f);
    else
        fwrite(json, 1, len, f);
    eb_free(p);
}

const char *cli_short_time(const char *t, char out[32])
{
    if (!t || strlen(t) < 19) {
        snprintf(out, 32, "%s", t ? t : "-");
        return out;
    }
    const char *dot = strchr(t, '.');
    int frac = 0;
    if (dot)
        while (frac < 3 && dot[1 + frac] >= '0' && dot[1 + frac] <= '9')
            frac++;
    snprintf(out, 32, "%.10s %.8s%s%.*s", t, t + 11, frac ? "." : "", frac, dot ? dot + 1 : "");
    return out;
}

/* --- values as text ----------------------------------------------------------- */

const char *cli_num(double v, char out[40])
{
    snprintf(out, 40, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, 40, "%.17g", v);
    return out;
}

const char *cli_yesno(bool v)
{
    return v ? "yes" : "no";
}

const char *cli_or_dash(const char *s)
{
    return s ? s : "-";
}

const char *cli_join(const char *const *s, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", used ? "," : "", s[i] ? s[i] : "?");
        used = w < 0 || (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
    }
    return out;
}

const char *cli_join_u32(const uint32_t *v, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%u", used ? "," : "", v[i]);
        used = w < 0 || (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
    }
    return out;
}
