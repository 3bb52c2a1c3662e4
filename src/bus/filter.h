/* filter.h - a group's "filter": conditions on an event's attributes and
 * data, evaluated on the server before delivery (in the spirit of
 * EventBridge patterns and Pub/Sub filters). Compiled once, when the group
 * is created or changed, with errors naming the path; pure afterwards.
 *
 *   {"source": ["shop", "billing"], "subject": [...], "key": [...],
 *    "extensions": {"tenant": ["acme"]},
 *    "data": {"currency": ["EUR", "USD"],
 *             "amount": [{"numeric": [">=", 100, "<", 1000]}],
 *             "customer": {"tier": [{"anything-but": ["free"]}],
 *                          "email": [{"exists": true}]},
 *             "sku": [{"prefix": "BK-"}]}}
 *
 * Every field named must match (AND); a field's list matches if any of its
 * entries does (OR). An entry is a literal (string, number, true, false,
 * null: equality), {"prefix": "s"}, {"numeric": [op, n (, op, n)]} with op
 * one of < <= = >= >, {"exists": true|false}, or {"anything-but": literal
 * | [literals] | {"prefix": "s"}} (present and none of those). An object
 * instead of a list descends into the value. When the event's value is an
 * array, the entry matches if it matches any element. Bounded: at most
 * EB_FILTER_MAX_CONDS entries, EB_FILTER_MAX_DEPTH levels, 1 KiB strings. */
#ifndef EB_BUS_FILTER_H
#define EB_BUS_FILTER_H

#include <stdbool.h>

#include "bus/event.h"
#include "json/json.h"

#define EB_FILTER_MAX_CONDS 256
#define EB_FILTER_MAX_DEPTH 8

typedef struct eb_filter eb_filter;

/* What a filter looks at; any member may be absent (NULL / {NULL, 0}). */
typedef struct eb_filter_event {
    eb_str         source, subject, key;
    const eb_json *extensions; /* an object */
    const eb_json *data;
} eb_filter_event;

/* Compiles the filter object v; 0, EB_EINVAL with err naming the path under
 * `at` (e.g. "/filter/data/amount/0/numeric"). *out owned by
 * the caller (eb_filter_free). */
int  eb_filter_compile(const eb_json *v, const char *at, eb_filter **out, eb_field_error *err);
void eb_filter_free(eb_filter *f);
bool eb_filter_match(const eb_filter *f, const eb_filter_event *ev);
/* Reads the filter's view of a stored event's JSON object (eb_event_view.json
 * parsed): source, subject, key, extensions, data. */
void eb_filter_event_of(const eb_json *envelope, eb_filter_event *out);

#endif
