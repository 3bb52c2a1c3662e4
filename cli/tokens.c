/* tokens.c - `eventbus tokens create|list|revoke|self`: API tokens (scope
 * admin; self: any valid token) through eb_request on /v1/tokens. The answers are printed as the
 * server sent them (re-indented on a terminal); create's holds the secret,
 * which is shown this once. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"

static const char HELP[] =
    "Usage: eventbus tokens create NAME --scopes SCOPE[,SCOPE...] [--expires-in DUR]\n"
    "       eventbus tokens list\n"
    "       eventbus tokens revoke NAME\n"
    "       eventbus tokens self\n"
    "\n"
    "API tokens (the calling token needs the scope admin; self, which shows the\n"
    "calling token's name, scopes and expiry, needs none). A scope is one of\n"
    "publish:<type pattern>, consume:<group pattern>, read, schemas:write,\n"
    "groups:write, metrics, admin; patterns as in a group's types (\"a.*\", \"*\").\n"
    "create prints the new token's secret (ebt_...): it is shown this once and\n"
    "the server keeps only a hash of it. --expires-in: a duration like 90d.\n"
    "list never shows a secret. revoke stops the token at once.\n";

/* Appends s as a JSON string. */
static void json_str(eb_buf *b, const char *s)
{
    eb_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            eb_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            eb_buf_printf(b, "\\u%04x", c);
        else
            eb_buf_putc(b, (char)c);
    }
    eb_buf_putc(b, '"');
}

/* {"name":..,"scopes":[..],"expires_in":..} from the comma-separated list. */
static void create_body(eb_buf *b, const char *name, const char *scopes, const char *exp)
{
    eb_buf_puts(b, "{\"name\":");
    json_str(b, name);
    eb_buf_puts(b, ",\"scopes\":[");
    char *list = strdup(scopes), *save = NULL;
    bool first = true;
    for (char *s = list ? strtok_r(list, ",", &save) : NULL; s; s = strtok_r(NULL, ",", &save)) {
        if (!first)
            eb_buf_putc(b, ',');
        json_str(b, s);
        first = false;
    }
    free(list);
    eb_buf_putc(b, ']');
    if (exp) {
        eb_buf_puts(b, ",\"expires_in\":");
        json_str(b, exp);
    }
    eb_buf_putc(b, '}');
}

/* Prints an answer: JSON as it came, or re-indented for people. */
static int show(const cli *x, int rc, const char *answer)
{
    if (rc)
        return cli_fail(x, rc);
    if (answer && *answer) {
        if (x->json)
            cli_print_json(answer);
        else
            cli_print_pretty(stdout, answer, strlen(answer)), fputc('\n', stdout);
    }
    return CLI_OK;
}

int cli_tokens(cli *x, int argc, char **argv)
{
    static const struct option opts[] = {{"scopes", 1, 0, 's'}, {"expires-in", 1, 0, 'e'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *scopes = NULL, *exp = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(HELP);
        else if (c == 's')
            scopes = optarg;
        else if (c == 'e')
            exp = optarg;
        else
            return cli_bad_option(x, c, argv);
    }
    int n = argc - optind;
    const char *sub = n > 0 ? argv[optind] : NULL, *name = n > 1 ? argv[optind + 1] : NULL;
    if (!sub)
        return cli_usage(x, "which subcommand? create, list, revoke, self");
    bool create = !strcmp(sub, "create"), revoke = !strcmp(sub, "revoke");
    bool self = !strcmp(sub, "self");
    if (!create && !revoke && !self && strcmp(sub, "list"))
        return cli_usage(x, "unknown subcommand '%s'", sub);
    if (n != ((create || revoke) ? 2 : 1))
        return cli_usage(x, "'%s' takes %s", sub, (create || revoke) ? "NAME" : "no arguments");
    if (create && !scopes)
        return cli_usage(x, "create needs --scopes");
    if (!create && (scopes || exp))
        return cli_usage(x, "--scopes and --expires-in go with create");
    char *answer = NULL;
    int rc;
    if (create) {
        eb_buf b = EB_BUF_INIT;
        create_body(&b, name, scopes, exp);
        rc = eb_buf_failed(&b) ? EB_ENOMEM
                               : eb_request(x->c, "POST", "/v1/tokens", b.data, b.len, NULL,
                                            &answer);
        eb_buf_free(&b);
    } else if (revoke) {
        eb_buf p = EB_BUF_INIT;
        eb_buf_puts(&p, "/v1/tokens/");
        for (const char *s = name; *s; s++) /* percent-encode all but [A-Za-z0-9._-] */
            if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *s))
                eb_buf_putc(&p, *s);
            else
                eb_buf_printf(&p, "%%%02X", (unsigned char)*s);
        rc = eb_buf_failed(&p) ? EB_ENOMEM
                               : eb_request(x->c, "DELETE", p.data, NULL, 0, NULL, &answer);
        eb_buf_free(&p);
        if (rc == 0 && !x->json)
            fprintf(stderr, "revoked token %s\n", name);
    } else {
        rc = eb_request(x->c, "GET", self ? "/v1/tokens/self" : "/v1/tokens", NULL, 0, NULL,
                        &answer);
    }
    int code = show(x, rc, answer);
    if (code == CLI_OK && create && !x->json)
        fputs("(the token above is shown this once: store it now)\n", stderr);
    eb_free(answer);
    return code;
}
