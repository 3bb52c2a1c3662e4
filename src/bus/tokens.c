/* tokens.c - API tokens as durable bus state: the token table (by name and
 * by secret hash), the put and delete commands, and their replay at
 * startup. The bus never sees a secret, only its SHA-256 (hashed by the
 * API layer); the records' format is codec.c's. */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

/* Constant-time equality of two hashes. */
static bool hash_eq(const uint8_t *a, const uint8_t *b)
{
    volatile uint8_t d = 0;
    for (size_t i = 0; i < EB_TOKEN_HASH_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static void token_free(eb_token *t)
{
    if (!t)
        return;
    eb__token_free(t);
    free(t);
}

/* A deep copy of t. */
static eb_token *token_dup(const eb_token *t)
{
    eb_token *c = eb_xcalloc(1, sizeof *c);
    memcpy(c->name, t->name, sizeof c->name);
    c->name[EB_TOKEN_NAME_MAX] = '\0';
    memcpy(c->hash, t->hash, sizeof c->hash);
    c->created_us = t->created_us;
    c->expires_us = t->expires_us;
    c->scopes = eb_xcalloc(t->nscopes ? t->nscopes : 1, sizeof *c->scopes);
    for (size_t i = 0; i < t->nscopes; i++)
        c->scopes[c->nscopes++] = eb_xstrdup(t->scopes[i]);
    return c;
}

/* Removes token `name` from both tables and frees it; false if unknown. */
static bool forget(eb_bus *bus, const char *name, size_t n)
{
    eb_token *t = eb_map_del(&bus->tokens, name, n);
    if (!t)
        return false;
    eb_map_del(&bus->token_hash, (const char *)t->hash, EB_TOKEN_HASH_LEN);
    token_free(t);
    return true;
}

/* Enters t (owned by the table from now). */
static int enter(eb_bus *bus, eb_token *t)
{
    forget(bus, t->name, strlen(t->name));
    /* Another token with the same secret hash cannot happen with random
     * secrets; should it, the newer one wins the hash table. */
    eb_token *same = eb_map_get(&bus->token_hash, (const char *)t->hash, EB_TOKEN_HASH_LEN);
    if (same)
        forget(bus, same->name, strlen(same->name));
    eb_map_put(&bus->tokens, t->name, strlen(t->name), t, NULL);
    eb_map_put(&bus->token_hash, (const char *)t->hash, EB_TOKEN_HASH_LEN, t, NULL);
    return 0;
}

void eb__bus_tokens_reset(eb_bus *bus)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&bus->tokens, &it)))
        token_free(s->val);
    eb_map_free(&bus->tokens);
    eb_map_free(&bus->token_hash);
    eb_map_init(&bus->tokens);
    eb_map_init(&bus->token_hash);
}

int eb__bus_tokens_apply(eb_bus *bus, uint16_t kind, const eb_json *rec)
{
    eb_token t;
    int rc = eb__rec_token_decode(rec, kind == EB_META_TOKEN_DEL, &t);
    if (rc)
        return rc;
    if (kind == EB_META_TOKEN_DEL) {
        forget(bus, t.name, strlen(t.name));
        return 0;
    }
    eb_token *c = eb_xmalloc(sizeof *c);
    *c = t;
    return enter(bus, c);
}

/* --- commands ------------------------------------------------------------------- */

/* Appends the one record in ob; op completes when durable. */
static int append(eb_bus *bus, eb_outbox *ob, pending_op *op)
{
    int rc = eb_buf_failed(&ob->text) ? EB_ENOMEM : 0;
    if (rc == 0)
        rc = eb_meta_append(bus->meta, ob->recs[0].kind, ob->text.data + ob->recs[0].off,
                            ob->recs[0].len, eb__bus_on_durable, op);
    eb_outbox_free(ob);
    return rc;
}

static void put_done(eb_bus *bus, pending_op *op)
{
    eb_token *t = op->extra;
    int rc = op->status;
    if (rc == 0)
        rc = enter(bus, t);
    else
        token_free(t);
    if (op->done_cb)
        op->done_cb(op->arg, rc);
}

int eb_bus_token_put(eb_bus *bus, const eb_token *t, eb_bus_done_cb cb, void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    if (t->nscopes > EB_TOKEN_MAX_SCOPES || !t->name[0])
        return EB_EINVAL;
    if (bus->tokens.len >= EB_TOKENS_MAX && !eb_map_get(&bus->tokens, t->name, strlen(t->name)))
        return EB_EFULL;
    eb_token *c = token_dup(t);
    pending_op *op = eb_xcalloc(1, sizeof *op);
    *op = (pending_op){.bus = bus, .complete = put_done, .done_cb = cb, .arg = arg, .extra = c};
    eb_outbox ob;
    eb_outbox_init(&ob);
    eb__rec_token(&ob, c, false);
    int rc = append(bus, &ob, op);
    if (rc) {
        token_free(c);
        free(op);
    }
    return rc;
}

static void del_done(eb_bus *bus, pending_op *op)
{
    (void)bus;
    if (op->done_cb)
        op->done_cb(op->arg, op->status);
}

int eb_bus_token_delete(eb_bus *bus, const char *name, size_t n, eb_bus_done_cb cb, void *arg)
{
    if (bus->closing)
        return EB_ECLOSED;
    eb_token *t = eb_map_get(&bus->tokens, name, n);
    if (!t)
        return EB_ENOTFOUND;
    pending_op *op = eb_xcalloc(1, sizeof *op);
    *op = (pending_op){.bus = bus, .complete = del_done, .done_cb = cb, .arg = arg};
    eb_outbox ob;
    eb_outbox_init(&ob);
    eb__rec_token(&ob, t, true);
    int rc = append(bus, &ob, op);
    if (rc) {
        free(op);
        return rc;
    }
    forget(bus, name, n); /* revoked at once; answered when durable */
    return 0;
}

const eb_token *eb_bus_token_by_hash(eb_bus *bus, const uint8_t hash[EB_TOKEN_HASH_LEN])
{
    eb_token *t = eb_map_get(&bus->token_hash, (const char *)hash, EB_TOKEN_HASH_LEN);
    return t && hash_eq(t->hash, hash) ? t : NULL;
}

const eb_token *eb_bus_token_get(eb_bus *bus, const char *name, size_t n)
{
    return eb_map_get(&bus->tokens, name, n);
}

void eb_bus_tokens_each(eb_bus *bus, eb_token_fn fn, void *arg)
{
    size_t it = 0;
    const eb_map_slot *s;
    while ((s = eb_map_next(&bus->tokens, &it)))
        fn(arg, s->val);
}
