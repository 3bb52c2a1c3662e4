/* main.c - `eventbus`, the command-line tool for eventbusd operators, built
 * on libeventbus: global options, the command table, exit codes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char HELP[] =
    "Usage: eventbus [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Talks to an eventbusd over its HTTP API.\n"
    "\n"
    "Commands:\n"
    "  publish TYPE [JSON | -]     publish an event (--file F.jsonl for many)\n"
    "  tail GROUP | --type T       print events as they arrive\n"
    "  events get ID | stream KEY  one event by id; one key's events in order\n"
    "  schemas register|check|list|show   the schema registry\n"
    "  groups create|update|list|show|history|pause|resume|delete   consumer groups\n"
    "  dlq list|redrive|purge GROUP       a group's dead letters\n"
    "  replay GROUP --since 2h     deliver a past range to a group again\n"
    "  stats                       a summary of the bus and its groups\n"
    "  top                         a refreshing view of rates, lag and DLQ depth\n"
    "  tokens create|list|revoke|self   API tokens (admin; self: the calling token)\n"
    "\n"
    "Options, anywhere on the line (before or after the command):\n"
    "  --url URL       the server, http:// or https:// (default $EVENTBUS_URL, else\n"
    "                  http://127.0.0.1:8470); or a comma-separated list of up to 16\n"
    "                  nodes of one bus: a request moves to the next one when a server\n"
    "                  cannot be reached or answers 503\n"
    "  --cacert FILE   https: trust the CAs in this PEM file instead of the system store\n"
    "                  (default $EVENTBUS_CACERT)\n"
    "  --token TOKEN   the API token to send (default $EVENTBUS_TOKEN; prefer the variable:\n"
    "                  a command line is visible to other users)\n"
    "  --json          print JSON (the default when stdout is not a terminal)\n"
    "  --table         print tables (the default on a terminal)\n"
    "  --timeout DUR   per request (default 30s; also 500ms, 2m)\n"
    "  --              ends the options: what follows goes to the command as it is\n"
    "Before the command only:\n"
    "  -h, --help      this help ('eventbus COMMAND --help' for a command's own)\n"
    "  --version       the version\n"
    "\n"
    "A command option's value that looks like one of these is written with '='\n"
    "(--key=--json).\n"
    "\n"
    "Environment: EVENTBUS_URL (as --url); EVENTBUS_TOKEN (as --token); EVENTBUS_CACERT\n"
    "(as --cacert); EVENTBUS_OUTPUT=json or table (as\n"
    "--json / --table, which win over it; any other value is refused).\n"
    "\n"
    "Exit codes: 0 ok, 1 the server said no (its message is printed),\n"
    "2 usage error, 3 cannot reach the server.\n";

typedef int (*cmd_fn)(cli *x, int argc, char **argv);

static const struct {
    const char *name;
    cmd_fn      fn;
} commands[] = {
    {"publish", cli_publish}, {"tail", cli_tail},     {"schemas", cli_schemas},
    {"groups", cli_groups},   {"dlq", cli_dlq},       {"replay", cli_replay},
    {"stats", cli_stats},     {"top", cli_top},       {"events", cli_events},
    {"tokens", cli_tokens},
};

/* The value of a global option at argv[*i]: "--url X" or "--url=X"
 * (advancing *i past X); NULL when it has none. */
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

/* Applies argv[*i] if it is one of the options valid anywhere (--json,
 * --table, --url, --timeout): 1 if it was, 0 if not, -1 after a usage
 * error (in *exit_code). */
static int anywhere_opt(cli *x, int argc, char **argv, int *i, int *exit_code)
{
    const char *a = argv[*i], *v;
    uint64_t ms;
    if (!strcmp(a, "--json") || !strcmp(a, "--table")) {
        x->json = a[2] == 'j';
        x->output_set = true;
    } else if (is_opt(a, "--url")) {
        if (!(v = opt_value(argc, argv, i, "--url"))) {
            *exit_code = cli_usage(x, "--url needs a value");
            return -1;
        }
        x->url = v;
    } else if (is_opt(a, "--cacert")) {
        if (!(v = opt_value(argc, argv, i, "--cacert"))) {
            *exit_code = cli_usage(x, "--cacert needs a file");
            return -1;
        }
        x->cafile = v;
    } else if (is_opt(a, "--token")) {
        if (!(v = opt_value(argc, argv, i, "--token"))) {
            *exit_code = cli_usage(x, "--token needs a value");
            return -1;
        }
        x->token = v;
    } else if (is_opt(a, "--timeout")) {
        if (!(v = opt_value(argc, argv, i, "--timeout")) || !cli_parse_ms(v, &ms) || !ms ||
            ms > 3600000) {
            *exit_code = cli_usage(x, "--timeout needs a duration like 30s or 500ms");
            return -1;
        }
        x->timeout_ms = (uint32_t)ms;
    } else {
        return 0;
    }
    return 1;
}

/* Output mode: --json/--table, else $EVENTBUS_OUTPUT, else JSON unless
 * stdout is a terminal. Returns false after a usage error. */
static bool output_mode(cli *x, int *exit_code)
{
    const char *mode = getenv("EVENTBUS_OUTPUT");
    if (mode && *mode && strcmp(mode, "json") && strcmp(mode, "table")) {
        *exit_code = cli_usage(x, "EVENTBUS_OUTPUT must be 'json' or 'table' (got '%s')", mode);
        return false;
    }
    if (!x->output_set)
        x->json = mode && *mode ? !strcmp(mode, "json") : !x->tty;
    return true;
}

/* Takes the global options out of argv wherever they are (up to a "--"),
 * leaving the command and its own arguments in argv[0..*argc). Returns the
 * command's index, or -1 when done (help, version) or after a usage error,
 * with the exit code in *exit_code. */
static int global_opts(cli *x, int *argc, char **argv, int *exit_code)
{
    int n = 1, at = -1;
    bool ended = false; /* after "--" */
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!ended && !strcmp(a, "--")) {
            ended = true;
            if (at < 0)
                continue; /* "eventbus -- CMD": the "--" only ends our options */
            argv[n++] = argv[i];
            continue;
        }
        int r = ended ? 0 : anywhere_opt(x, *argc, argv, &i, exit_code);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;
        if (at < 0 && !ended && a[0] == '-') { /* before the command */
            if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                *exit_code = cli_help(HELP);
            } else if (!strcmp(a, "--version")) {
                printf("eventbus %d.%d.%d\n", EB_VERSION_MAJOR, EB_VERSION_MINOR,
                       EB_VERSION_PATCH);
                *exit_code = CLI_OK;
            } else {
                *exit_code = cli_usage(x, "unknown option '%s'", a);
            }
            return -1;
        }
        if (at < 0)
            at = n;
        argv[n++] = argv[i];
    }
    *argc = n;
    argv[n] = NULL;
    if (at < 0) {
        fputs(HELP, stderr);
        *exit_code = CLI_USAGE;
        return -1;
    }
    return output_mode(x, exit_code) ? at : -1;
}

/* eb_client_new refused o: says which setting is at fault (the token, the
 * CA file or the URL), trying again without each. */
static int client_refused(cli *x, const eb_client_opts *o, int rc)
{
    eb_client *c;
    eb_client_opts t = *o;
    t.token = ""; /* "": none, and EVENTBUS_TOKEN is not read */
    if (rc == EB_EINVAL && eb_client_new(&t, &c) == 0) {
        eb_client_free(c);
        return cli_usage(x, "the token (--token or EVENTBUS_TOKEN) must be 1 to 512 "
                         "characters of A-Z a-z 0-9 - . _ ~ + / =");
    }
    t.cafile = ""; /* "": the system store, and EVENTBUS_CACERT is not read */
    if (rc == EB_EINVAL && eb_client_new(&t, &c) == 0) {
        eb_client_free(c);
        return cli_usage(x, "cannot read CA certificates from '%s' (--cacert or "
                         "EVENTBUS_CACERT)", o->cafile ? o->cafile : getenv("EVENTBUS_CACERT"));
    }
    return cli_usage(x, "cannot use URL '%s': %s", o->url ? o->url : getenv("EVENTBUS_URL"),
                     rc == EB_EUNSUPP ? "only http:// and https:// are supported" : "malformed");
}

int main(int argc, char **argv)
{
    cli x = {.tty = isatty(STDOUT_FILENO) == 1, .err_tty = isatty(STDERR_FILENO) == 1};
    int code = CLI_OK;
    int at = global_opts(&x, &argc, argv, &code);
    if (at < 0)
        return code;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(argv[at], commands[k].name))
            continue;
        x.cmd = commands[k].name;
        eb_client_opts o = {.size = sizeof o, .url = x.url, .timeout_ms = x.timeout_ms,
                            .token = x.token, .cafile = x.cafile};
        int rc = eb_client_new(&o, &x.c);
        if (rc)
            return client_refused(&x, &o, rc);
        const char *given = o.url ? o.url : getenv("EVENTBUS_URL");
        /* for messages and helper clients: a list as given, one server normalized */
        x.url = given && strchr(given, ',') ? given : eb_client_url(x.c);
        code = commands[k].fn(&x, argc - at, argv + at);
        eb_client_free(x.c);
        fflush(stdout);
        return code;
    }
    return cli_usage(&x, "unknown command '%s'", argv[at]);
}
