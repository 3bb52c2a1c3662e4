/* outbox.c - the record list of outbox.h. */
#include "bus/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "eventbus/err.h"

void eb_outbox_init(eb_outbox *o)
{
    memset(o, 0, sizeof *o);
    eb_buf_init(&o->text);
}

void eb_outbox_free(eb_outbox *o)
{
    eb_buf_free(&o->text);
    free(o->recs);
    memset(o, 0, sizeof *o);
}

void eb_outbox_reset(eb_outbox *o)
{
    eb_buf_reset(&o->text);
    o->n = 0;
}

eb_jw *eb_outbox_begin(eb_outbox *o, uint16_t kind, eb_jw *w)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        void *r = realloc(o->recs, cap * sizeof *o->recs);
        if (!r) {
            o->text.oom = true;
            cap = o->cap;
        } else {
            o->recs = r;
            o->cap = cap;
        }
    }
    if (o->n < o->cap) {
        o->recs[o->n].kind = kind;
        o->recs[o->n].off = o->text.len;
    }
    eb_jw_init(w, &o->text);
    return w;
}

int eb_outbox_end(eb_outbox *o)
{
    if (eb_buf_failed(&o->text) || o->n >= o->cap)
        return EB_ENOMEM;
    o->recs[o->n].len = o->text.len - o->recs[o->n].off;
    o->n++;
    return 0;
}
