/* main.c - `eventbus`, the command-line tool for eventbusd operators, built
 * on libeventbus: global options, the command table, exit codes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char HELP[] =
    "Usage: eventbus [--url URL] [--json | --table] [--timeout DUR] COMMAND [ARGS]\n"
    "\n"
    "Talks to an eventbusd over its HTTP API.\n"
    "\n"
    "Commands:\n"
    "  publish TYPE [JSON | -]     publish an event (--file F.jsonl for many)\n"
    "  tail GROUP | --type T       print events as they arrive\n"
    "  schemas register|check|list|show   the schema registry\n"
    "  groups create|update|list|show|pause|resume|delete   consumer groups\n"
    "  dlq list|redrive|purge GROUP       a group's dead letters\n"
    "  replay GROUP --since 2h     deliver a past range to a group again\n"
    "  stats                       a summary of the bus and its groups\n"
    "  top                         a refreshing view of rates, lag and DLQ depth\n"
    "\n"
    "Options:\n"
    "  --url URL       the server (default $EVENTBUS_URL, else http://127.0.0.1:8470)\n"
    "  --json          print JSON (the default when stdout is not a terminal)\n"
    "  --table         print tables (the default on a terminal)\n"
    "  --timeout DUR   per request (30s; also 500ms, 2m)\n"
    "  -h, --help      this help; 'eventbus COMMAND --help' for a command's\n"
    "  --version       the version\n"
    "\n"
    "Exit codes: 0 ok, 1 the server said no (its message is printed),\n"
    "2 usage error, 3 cannot reach the server.\n"
    "$EVENTBUS_OUTPUT=json|table sets the output mode like --json/--table.\n";

typedef int (*cmd_fn)(cli *x, int argc, char **argv);

static const struct {
    const char *name;
    cmd_fn      fn;
} commands[] = {
    {"publish", cli_publish}, {"tail", cli_tail},     {"schemas", cli_schemas},
    {"groups", cli_groups},   {"dlq", cli_dlq},       {"replay", cli_replay},
    {"stats", cli_stats},     {"top", cli_top},
};

/* Takes the value of a global option: "--url X" or "--url=X". */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (!strcmp(argv[*i], name) && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static bool is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(arg, name, n) && (arg[n] == '\0' || arg[n] == '=');
}

/* Parses the global options before the command; returns the command's
 * index in argv, or -1 after printing a usage error. */
static int global_opts(cli *x, int argc, char **argv, int *exit_code)
{
    const char *mode = getenv("EVENTBUS_OUTPUT");
    x->json = !x->tty;
    if (mode && !strcmp(mode, "json"))
        x->json = true;
    else if (mode && !strcmp(mode, "table"))
        x->json = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v;
        uint64_t ms;
        if (!strcmp(a, "--json")) {
            x->json = true;
        } else if (!strcmp(a, "--table")) {
            x->json = false;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            *exit_code = cli_help(HELP);
            return -1;
        } else if (!strcmp(a, "--version")) {
            printf("eventbus %d.%d.%d\n", EB_VERSION_MAJOR, EB_VERSION_MINOR, EB_VERSION_PATCH);
            *exit_code = CLI_OK;
            return -1;
        } else if (is_opt(a, "--url")) {
            if (!(v = opt_value(argc, argv, &i, "--url"))) {
                *exit_code = cli_usage(x, "--url needs a value");
                return -1;
            }
            x->url = v;
        } else if (is_opt(a, "--timeout")) {
            if (!(v = opt_value(argc, argv, &i, "--timeout")) || !cli_parse_ms(v, &ms) || !ms ||
                ms > 3600000) {
                *exit_code = cli_usage(x, "--timeout needs a duration like 30s or 500ms");
                return -1;
            }
            x->timeout_ms = (uint32_t)ms;
        } else {
            *exit_code = cli_usage(x, "unknown option '%s'", a);
            return -1;
        }
    }
    if (i == argc) {
        fputs(HELP, stderr);
        *exit_code = CLI_USAGE;
        return -1;
    }
    return i;
}

int main(int argc, char **argv)
{
    cli x = {.tty = isatty(STDOUT_FILENO) == 1, .err_tty = isatty(STDERR_FILENO) == 1};
    int code = CLI_OK;
    int at = global_opts(&x, argc, argv, &code);
    if (at < 0)
        return code;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(argv[at], commands[k].name))
            continue;
        x.cmd = commands[k].name;
        eb_client_opts o = {.size = sizeof o, .url = x.url, .timeout_ms = x.timeout_ms};
        int rc = eb_client_new(&o, &x.c);
        if (rc)
            return cli_usage(&x, "cannot use URL '%s': %s", x.url ? x.url : getenv("EVENTBUS_URL"),
                             rc == EB_EUNSUPP ? "only http:// is supported" : "malformed");
        x.url = eb_client_url(x.c);
        code = commands[k].fn(&x, argc - at, argv + at);
        eb_client_free(x.c);
        fflush(stdout);
        return code;
    }
    return cli_usage(&x, "unknown command '%s'", argv[at]);
}
