/* events.h - building eb_events lists from answers (internal to libeventbus). */
#ifndef EB_LIB_EVENTS_H
#define EB_LIB_EVENTS_H

#include "client.h"

typedef enum eb__events_kind {
    EB__EVENTS_PLAIN = 0, /* events as GET /v1/events shows them */
    EB__EVENTS_PULL,      /* pulled: each has a "delivery" object */
    EB__EVENTS_DLQ        /* dead letters: {"event":{...},"error",...} */
} eb__events_kind;

/* Makes a list from the array root[member] of the last answer (which the
 * list takes over, see eb__take_answer) and the cursor root[next_member]
 * (NULL: none). *out is caller-owned (eb_events_free). */
int eb__events_from(eb_client *c, const eb_json *root, const char *member,
                    const char *next_member, eb__events_kind kind, eb_events **out);

#endif
