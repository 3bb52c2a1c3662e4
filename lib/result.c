/* result.c - libeventbus: what lets the API grow without breaking programs
 * built against an older header: the size-checked copies of the caller's
 * structs, and the typed results the library allocates (one block per
 * result: a header holding the answer and its parse, the public struct
 * after it, and the lists inside it), freed by eb_result_free(). */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* --- the caller's structs ----------------------------------------------------- */

int eb__opts_in(eb_client *c, const char *what, const void *in, size_t min, size_t cur,
                void *dst)
{
    memset(dst, 0, cur);
    *(size_t *)dst = cur;
    if (!in)
        return 0;
    size_t size = *(const size_t *)in;
    if (size < min)
        return eb__fail(c, EB_EINVAL, "%s.size is %zu, below %zu: set it to sizeof(%s)", what,
                        size, min, what);
    for (size_t i = cur; i < size; i++)
        if (((const unsigned char *)in)[i])
            return eb__fail(c, EB_EUNSUPP, "%s has fields this libeventbus does not know "
                            "(built against a newer eventbus.h?)", what);
    memcpy(dst, in, size < cur ? size : cur);
    *(size_t *)dst = cur;
    return 0;
}

int eb__out_check(eb_client *c, const char *what, const void *out, size_t min)
{
    if (out && *(const size_t *)out < min)
        return eb__fail(c, EB_EINVAL, "%s.size is %zu, below %zu: set it to sizeof(%s)", what,
                        *(const size_t *)out, min, what);
    return 0;
}

void eb__out_put(void *out, const void *val, size_t cur)
{
    if (!out)
        return;
    size_t size = *(const size_t *)out;
    memcpy((char *)out + sizeof(size_t), (const char *)val + sizeof(size_t),
           (size < cur ? size : cur) - sizeof(size_t));
}

/* --- typed results ------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    max_align_t   data[];
} chunk;

typedef struct result {
    char        *text;  /* the answer (a copy; eb_client_answer keeps the client's) */
    eb_json_doc *doc;   /* its parse, taken from the client */
    chunk       *mem;   /* what eb__result_alloc handed out */
    alignas(max_align_t) unsigned char value[]; /* the public struct */
} result;

static result *container(const void *value)
{
    return (result *)(void *)((char *)value - offsetof(result, value));
}

void *eb__result_new(eb_client *c, size_t size)
{
    result *r = calloc(1, sizeof *r + size);
    if (!r)
        return NULL;
    r->text = malloc(c->answer.len + 1);
    if (!r->text) {
        free(r);
        return NULL;
    }
    memcpy(r->text, c->answer.data ? c->answer.data : "", c->answer.len);
    r->text[c->answer.len] = '\0';
    r->doc = c->doc; /* the client makes a new one on its next call */
    c->doc = NULL;
    return r->value;
}

void *eb__result_alloc(void *value, size_t size)
{
    result *r = container(value);
    chunk *k = calloc(1, sizeof *k + (size ? size : 1));
    if (!k)
        return NULL;
    k->next = r->mem;
    r->mem = k;
    return k->data;
}

void eb_result_free(const void *value)
{
    if (!value)
        return;
    result *r = container(value);
    for (chunk *k = r->mem, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    eb_json_doc_free(r->doc);
    free(r->text);
    free(r);
}

const char *eb__str(const eb_json *obj, const char *key)
{
    const eb_json *v = eb_json_get(obj, key);
    return eb_json_is(v, EB_JSON_STRING) ? v->str : NULL;
}
