/* validate-json.c - validates many JSON instances against named schemas, for
 * the integration harness's contract check (tests/integration/harness.py
 * checks every answer against docs/openapi.json with the project's own
 * validator, not with the daemon under test).
 *
 * Usage: validate-json DEFS_FILE < lines
 *   DEFS_FILE  a JSON object: schema name -> JSON Schema (2020-12); the
 *              schemas refer to each other as "#/$defs/<name>".
 *   each line  "<name>\t<JSON instance>"
 * Prints one line per input line: "ok", or "FAIL <path>: <message>; ..."
 * (or "ERROR <why>" when the line or the schema is unusable). Exits 0 when
 * every line is ok, 1 otherwise, 2 on a usage or I/O error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/buf.h"

#define MAX_NAMES 256

typedef struct named {
    char      *name;
    eb_schema *schema; /* NULL when it failed to compile */
    char      *error;
} named;

static named  cache[MAX_NAMES];
static size_t ncache;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    eb_buf b = EB_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        eb_buf_append(&b, chunk, n);
    fclose(f);
    return eb_buf_steal(&b, len);
}

/* The compiled schema "#/$defs/<name>" of defs, compiled once per name. */
static named *lookup(const char *defs, size_t defs_len, const char *name)
{
    for (size_t i = 0; i < ncache; i++)
        if (!strcmp(cache[i].name, name))
            return &cache[i];
    if (ncache == MAX_NAMES)
        return NULL;
    named *nd = &cache[ncache++];
    nd->name = strdup(name);
    eb_buf text = EB_BUF_INIT, err = EB_BUF_INIT;
    eb_buf_puts(&text, "{\"$ref\":\"#/$defs/");
    eb_buf_puts(&text, name);
    eb_buf_puts(&text, "\",\"$defs\":");
    eb_buf_append(&text, defs, defs_len);
    eb_buf_putc(&text, '}');
    if (eb_schema_compile(text.data, text.len, NULL, &nd->schema, &err) != 0) {
        nd->schema = NULL;
        eb_buf_putc(&err, '\0');
        nd->error = eb_buf_steal(&err, NULL);
    }
    eb_buf_free(&text);
    eb_buf_free(&err);
    return nd;
}

static int check_line(const char *defs, size_t defs_len, char *line, size_t len,
                      eb_json_doc *doc, eb_schema_errors *errs)
{
    char *tab = memchr(line, '\t', len);
    if (!tab) {
        puts("ERROR no tab in line");
        return 1;
    }
    *tab = '\0';
    named *nd = lookup(defs, defs_len, line);
    if (!nd || !nd->schema) {
        printf("ERROR schema %s: %s\n", line, nd && nd->error ? nd->error : "too many names");
        return 1;
    }
    eb_json_error je;
    const char *inst = tab + 1;
    if (eb_json_parse(doc, inst, len - (size_t)(inst - line), NULL, &je) != 0) {
        printf("ERROR instance is not JSON: %s\n", je.msg);
        return 1;
    }
    eb_schema_errors_reset(errs);
    if (eb_schema_validate(nd->schema, eb_json_root(doc), errs) == 0) {
        puts("ok");
        return 0;
    }
    fputs("FAIL", stdout);
    for (size_t i = 0; i < eb_schema_errors_count(errs); i++) {
        const eb_schema_error *e = eb_schema_errors_at(errs, i);
        printf("%s %s (%s): %s", i ? ";" : "", *e->path ? e->path : "/", e->schema_path,
               e->message);
    }
    putchar('\n');
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: validate-json DEFS_FILE < lines\n");
        return 2;
    }
    size_t defs_len = 0;
    char *defs = read_file(argv[1], &defs_len);
    if (!defs) {
        fprintf(stderr, "validate-json: cannot read %s\n", argv[1]);
        return 2;
    }
    eb_json_doc *doc = eb_json_doc_new();
    eb_schema_errors errs;
    eb_schema_errors_init(&errs, 20);
    int bad = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0)
            continue;
        bad |= check_line(defs, defs_len, line, (size_t)n, doc, &errs);
    }
    free(line);
    for (size_t i = 0; i < ncache; i++) {
        eb_schema_free(cache[i].schema);
        free(cache[i].name);
        free(cache[i].error);
    }
    eb_schema_errors_free(&errs);
    eb_json_doc_free(doc);
    free(defs);
    return bad ? 1 : 0;
}
