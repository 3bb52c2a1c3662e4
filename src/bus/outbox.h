/* outbox.h - the meta records one change produces, gathered in order and
 * appended by the bus as one atomic batch before the change is answered.
 * The engine and the codec write into it; only the bus appends it. */
#ifndef EB_BUS_OUTBOX_H
#define EB_BUS_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "json/json.h"
#include "util/buf.h"

typedef struct eb_outbox {
    eb_buf   text;     /* the JSON payloads, back to back */
    struct { uint16_t kind; size_t off, len; } *recs;
    size_t   n, cap;
} eb_outbox;

void eb_outbox_init(eb_outbox *o);
void eb_outbox_free(eb_outbox *o);
void eb_outbox_reset(eb_outbox *o);
/* Starts a record of `kind`; write its JSON with the returned writer, then
 * call eb_outbox_end. Allocation failure aborts (util/xmalloc.h). */
eb_jw *eb_outbox_begin(eb_outbox *o, uint16_t kind, eb_jw *w);
void   eb_outbox_end(eb_outbox *o);

#endif
