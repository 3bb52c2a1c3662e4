/* schemas.c - `eventbus schemas register|check|list|show`: the schema
 * registry from the command line. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char HELP[] =
    "Usage: eventbus schemas register TYPE FILE [--compat MODE]\n"
    "       eventbus schemas check TYPE FILE [--compat MODE]\n"
    "       eventbus schemas list\n"
    "       eventbus schemas show TYPE [--version N]\n"
    "\n"
    "register  adds FILE (a JSON Schema; '-' for stdin) as the next version of\n"
    "          TYPE. Refused (exit 1) if it breaks the type's compatibility\n"
    "          mode; every breaking change is listed.\n"
    "check     the same checks, nothing written: exit 0 if compatible, 1 if not.\n"
    "list      every type with its mode and versions.\n"
    "show      the latest schema of TYPE (or --version N).\n"
    "\n"
    "Options:\n"
    "  --compat MODE   backward (default for a new type), forward, full, none;\n"
    "                  becomes the type's mode\n"
    "  --version N     with show: that version\n";

typedef struct sch_args {
    const char *sub, *type, *file, *compat;
    uint64_t    version;
} sch_args;

static int parse(cli *x, int argc, char **argv, sch_args *a)
{
    static const struct option opts[] = {
        {"compat", 1, 0, 'c'}, {"version", 1, 0, 'v'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (strcmp(optarg, "backward") && strcmp(optarg, "forward") &&
                strcmp(optarg, "full") && strcmp(optarg, "none"))
                return cli_usage(x, "--compat is backward, forward, full or none");
            a->compat = optarg;
            break;
        case 'v':
            if (!cli_parse_u64(optarg, UINT32_MAX, &a->version) || !a->version)
                return cli_usage(x, "--version needs a positive number");
            break;
        case 'h': return -1;
        default: return cli_bad_option(x, c, argv);
        }
    }
    int n = argc - optind;
    char **p = argv + optind;
    if (n < 1)
        return cli_usage(x, "which subcommand? register, check, list or show");
    a->sub = p[0];
    int want = !strcmp(a->sub, "register") || !strcmp(a->sub, "check") ? 3
               : !strcmp(a->sub, "show")                                 ? 2
               : !strcmp(a->sub, "list")                                 ? 1
                                                                         : 0;
    if (!want)
        return cli_usage(x, "unknown subcommand '%s'", a->sub);
    if (n != want)
        return cli_usage(x, "'%s' takes %s", a->sub,
                         want == 3 ? "TYPE FILE" : want == 2 ? "TYPE" : "no arguments");
    a->type = n > 1 ? p[1] : NULL;
    a->file = n > 2 ? p[2] : NULL;
    return 0;
}

/* The breaking changes of a check, one per line. */
static void print_changes(const eb_schemas_verdict *v)
{
    for (size_t i = 0; i < v->nchanges; i++) {
        const eb_schemas_change *ch = v->changes[i];
        printf("  %s: %s%s\n", *ch->path ? ch->path : "(root)", ch->message,
               ch->undecidable ? " (cannot verify)" : "");
    }
}

static int do_register(cli *x, const sch_args *a, const char *schema)
{
    eb_schemas_result r = {.size = sizeof r};
    int rc = eb_schemas_register(x->c, a->type, schema, a->compat, &r);
    if (rc)
        return cli_fail(x, rc);
    if (x->json)
        printf("{\"type\":\"%s\",\"version\":%u,\"compatibility\":\"%s\"%s}\n", a->type,
               r.version, r.compatibility, r.existing ? ",\"existing\":true" : "");
    else if (r.existing)
        printf("%s: identical to version %u, nothing registered (%s)\n", a->type, r.version,
               r.compatibility);
    else
        printf("%s: registered version %u (%s)\n", a->type, r.version, r.compatibility);
    return CLI_OK;
}

static void show_check(const void *res, const void *arg)
{
    const sch_args *a = arg;
    const eb_schemas_verdict *v = res;
    printf("%s: %s as version %u under %s\n", a->type,
           v->compatible ? "compatible" : "NOT compatible", v->version, v->compatibility);
    print_changes(v);
}

static int do_check(cli *x, const sch_args *a, const char *schema)
{
    eb_schemas_verdict *v = NULL;
    int rc = eb_schemas_check(x->c, a->type, schema, a->compat, &v);
    bool ok = v && v->compatible;
    int code = cli_answer(x, rc, v, show_check, a);
    return code == CLI_OK && !ok ? CLI_REFUSED : code;
}

static int with_file(cli *x, const sch_args *a)
{
    size_t len;
    char *schema = cli_read_file(a->file, &len);
    if (!schema)
        return cli_usage(x, "cannot read %s: %s", a->file, strerror(errno));
    int code = !strcmp(a->sub, "register") ? do_register(x, a, schema) : do_check(x, a, schema);
    free(schema);
    return code;
}


static void show_list(const void *res, const void *arg)
{
    (void)arg;
    const eb_schemas_registry *l = res;
    if (!l->n) {
        printf("no schemas registered\n");
        return;
    }
    static const char *const head[] = {"TYPE", "COMPATIBILITY", "VERSIONS"};
    cli_table t;
    cli_table_init(&t, head, 3);
    for (size_t i = 0; i < l->n; i++) {
        const eb_schemas_type *s = l->types[i];
        char vs[256];
        cli_table_cell(&t, "%s", s->type);
        cli_table_cell(&t, "%s", cli_or_dash(s->compatibility));
        cli_table_cell(&t, "%s", cli_join_u32(s->versions, s->nversions, vs, sizeof vs));
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void show_schema(const void *res, const void *arg)
{
    const sch_args *a = arg;
    const eb_schemas_type *s = res;
    const eb_schemas_version *ver = s->version;
    char vs[256], tb[32];
    if (!a->version)
        printf("type:           %s\ncompatibility:  %s\nversions:       %s\n", a->type,
               cli_or_dash(s->compatibility), cli_join_u32(s->versions, s->nversions, vs, sizeof vs));
    printf("version:        %u (registered %s)\n", ver->version,
           cli_short_time(cli_or_dash(ver->registered_at), tb));
    cli_print_pretty(stdout, ver->schema, ver->schema_len);
    fputc('\n', stdout);
}

int cli_schemas(cli *x, int argc, char **argv)
{
    sch_args a = {0};
    int code = parse(x, argc, argv, &a);
    if (code)
        return code < 0 ? cli_help(HELP) : code;
    if (!strcmp(a.sub, "list")) {
        eb_schemas_registry *l = NULL;
        int rc = eb_schemas_list(x->c, &l);
        return cli_answer(x, rc, l, show_list, NULL);
    }
    if (!strcmp(a.sub, "show")) {
        eb_schemas_type *s = NULL;
        int rc = eb_schemas_get(x->c, a.type, (uint32_t)a.version, &s);
        return cli_answer(x, rc, s, show_schema, &a);
    }
    return with_file(x, &a);
}
