/* outbox.c - the record list of outbox.h. */
#include "bus/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

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
        o->cap = o->cap ? o->cap * 2 : 8;
        o->recs = eb_xrealloc(o->recs, o->cap * sizeof *o->recs);
    }
    o->recs[o->n].kind = kind;
    o->recs[o->n].off = o->text.len;
    eb_jw_init(w, &o->text);
    return w;
}

void eb_outbox_end(eb_outbox *o)
{
    o->recs[o->n].len = o->text.len - o->recs[o->n].off;
    o->n++;
}
