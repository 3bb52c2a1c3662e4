/* ce_write.h - a stored event as a structured CloudEvent 1.0 (the one
 * renderer: the API's CloudEvents answers and push delivery use it). */
#ifndef EB_BUS_CE_WRITE_H
#define EB_BUS_CE_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/event.h"
#include "json/json.h"

/* Whether name is a valid CloudEvents attribute name: [a-z0-9]{1,20}. */
bool eb_ce_name_valid(const char *name, size_t n);

/* A pull's delivery, written as extensions (strings borrowed). */
typedef struct eb_ce_delivery {
    const char *id;
    uint32_t    attempt;
    const char *deadline; /* RFC 3339 */
    size_t      deadline_len;
} eb_ce_delivery;

/* Writes the stored event v (seq, append time ts_us) as one structured
 * CloudEvent; d adds a pull's delivery (NULL: none). doc is scratch: the
 * stored JSON is parsed into it. Returns 0 or EB_ECORRUPT (nothing written). */
int eb_ce_write(eb_jw *w, eb_json_doc *doc, uint64_t seq, uint64_t ts_us, const eb_event_view *v,
                const eb_ce_delivery *d);

#endif
