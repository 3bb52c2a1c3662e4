/* json.c - libeventbus: the two JSON text utilities of the public API,
 * eb_json_check() and eb_json_pretty(), over the parser the server uses
 * (src/json), so a program (the CLI among them) checks and shows JSON the
 * way the server reads it without linking the parser itself. */
#include <stdio.h>
#include <string.h>

#include "client.h"

int eb_json_check(const char *text, size_t len, uint32_t *line, uint32_t *column, char *why,
                  size_t why_cap)
{
    eb_json_doc *doc = eb_json_doc_new();
    if (!doc)
        return EB_ENOMEM;
    eb_json_error e = {0};
    int rc = text ? eb_json_parse(doc, text, len, NULL, &e) : EB_EINVAL;
    eb_json_doc_free(doc);
    if (rc && rc != EB_ENOMEM && rc != EB_ETOOBIG && rc != EB_EDEPTH && rc != EB_EINVAL)
        rc = EB_ESYNTAX;
    if (line)
        *line = rc ? e.line : 0;
    if (column)
        *column = rc ? e.column : 0;
    if (why && why_cap)
        snprintf(why, why_cap, "%s", rc ? e.msg : "");
    return rc;
}

static void indent(eb_buf *b, int n)
{
    for (int i = 0; i < n; i++)
        eb_buf_putc(b, ' ');
}

/* v indented by two spaces per level, starting at column `at`. */
static void pretty(eb_buf *b, const eb_json *v, int at)
{
    switch (v->type) {
    case EB_JSON_OBJECT:
    case EB_JSON_ARRAY: {
        bool obj = v->type == EB_JSON_OBJECT;
        if (!v->child) {
            eb_buf_puts(b, obj ? "{}" : "[]");
            return;
        }
        eb_buf_puts(b, obj ? "{\n" : "[\n");
        for (const eb_json *m = v->child; m; m = m->next) {
            indent(b, at + 2);
            if (obj) {
                eb_json_escape(b, m->key, m->key_len);
                eb_buf_puts(b, ": ");
            }
            pretty(b, m, at + 2);
            eb_buf_puts(b, m->next ? ",\n" : "\n");
        }
        indent(b, at);
        eb_buf_putc(b, obj ? '}' : ']');
        return;
    }
    case EB_JSON_STRING:
        eb_json_escape(b, v->str, v->len);
        return;
    case EB_JSON_NUMBER:
        eb_buf_puts(b, v->str);
        return;
    default:
        eb_buf_puts(b, v->type == EB_JSON_TRUE ? "true" : v->type == EB_JSON_FALSE ? "false" : "null");
    }
}

int eb_json_pretty(const char *text, size_t len, char **out)
{
    *out = NULL;
    eb_json_doc *doc = eb_json_doc_new();
    if (!doc)
        return EB_ENOMEM;
    int rc = text ? eb_json_parse(doc, text, len, NULL, NULL) : EB_EINVAL;
    if (rc) {
        eb_json_doc_free(doc);
        return rc == EB_ENOMEM || rc == EB_EINVAL ? rc : EB_ESYNTAX;
    }
    eb_buf b = EB_BUF_INIT;
    pretty(&b, eb_json_root(doc), 0);
    eb_json_doc_free(doc);
    size_t n = b.len;
    if (eb_buf_failed(&b) || !(*out = eb_buf_steal(&b, &n))) {
        eb_buf_free(&b);
        return EB_ENOMEM;
    }
    return 0;
}
