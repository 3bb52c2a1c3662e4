/* dead_stream.c - the dead-letter stream: each dead-lettering is published
 * as an `eventbus.dead_letter` event into the log, so a group can subscribe
 * to the dead letters of every group (to page someone, say).
 *
 * The group engine tells the bus through its env (eb__bus_dead_lettered);
 * the notices gather here and are published right after the change that
 * made them is handed to the meta store (eb__bus_dead_letters_publish,
 * called by groups.c after each commit and timer tick), so publishing never
 * runs inside the engine. A dead `eventbus.dead_letter` event makes no
 * notice: no loop. The two stores are written separately: after a crash a
 * notice may be missing (its DEAD record was durable, the publish not yet)
 * or stand for a dead-lettering that was lost (then the event is delivered
 * again and may die again, with a second notice). Notices that cannot be
 * published (a schema refuses them, --require-schemas) are counted
 * (eb_bus_stats.notices_dropped), not retried. */
#include <stdio.h>
#include <string.h>

#include "bus/bus_int.h"
#include "eventbus/err.h"

#define DL_TYPE "eventbus.dead_letter"
#define DL_BATCH 100 /* events per publish (on the stack) */

void eb__bus_dead_lettered(void *arg, const char *group, const eb_dead_letter *dl)
{
    eb_bus *bus = arg;
    eb_event_view v;
    if (eb_event_decode(dl->event, dl->len, &v) != 0 ||
        (v.type.len == sizeof DL_TYPE - 1 && !memcmp(v.type.ptr, DL_TYPE, v.type.len)))
        return;
    eb_bus_groups *gr = &bus->grp;
    char at[32];
    eb_time_format(dl->failed_at_us, at);
    eb_jw w;
    eb_jw_init(&w, &gr->dl_text);
    eb_buf_putc(&gr->dl_text, gr->dl_n ? ',' : '[');
    eb_jw_obj_open(&w);
    eb_jw_key(&w, "group");
    eb_jw_str(&w, group);
    eb_jw_key(&w, "event_id");
    eb_jw_strn(&w, v.id.ptr, v.id.len);
    eb_jw_key(&w, "event_seq");
    eb_jw_uint(&w, dl->seq);
    eb_jw_key(&w, "type");
    eb_jw_strn(&w, v.type.ptr, v.type.len);
    eb_jw_key(&w, "error");
    eb_jw_str(&w, dl->error ? dl->error : "");
    eb_jw_key(&w, "attempts");
    eb_jw_uint(&w, dl->attempts);
    eb_jw_key(&w, "consumer");
    eb_jw_str(&w, dl->consumer ? dl->consumer : "");
    eb_jw_key(&w, "failed_at");
    eb_jw_str(&w, at);
    eb_jw_obj_close(&w);
    gr->dl_n++;
}

static void published(void *arg, int status, const eb_pub_result *res, size_t n)
{
    eb_bus *bus = arg;
    (void)res;
    if (status)
        bus->grp.dl_failed += n;
}

/* Publishes one batch: the array in text (parsed here) as events. */
static void publish_batch(eb_bus *bus, const eb_json *first, size_t n, const char *text)
{
    eb_event_in evs[DL_BATCH];
    size_t i = 0;
    for (const eb_json *e = first; e && i < n; e = e->next, i++) {
        const eb_json *g = eb_json_get(e, "group");
        evs[i] = (eb_event_in){.type = {DL_TYPE, sizeof DL_TYPE - 1},
                               .source = {"eventbusd", 9},
                               .key = {g->str, g->len},
                               .data = e,
                               .data_raw = {text + e->src_off, e->src_len}};
    }
    eb_pub_errors errs;
    eb_pub_errors_init(&errs);
    if (eb_bus_publish(bus, evs, i, &errs, published, bus) != 0)
        bus->grp.dl_failed += i;
    eb_pub_errors_free(&errs);
}

void eb__bus_dead_letters_publish(eb_bus *bus)
{
    eb_bus_groups *gr = &bus->grp;
    if (!gr->dl_n || bus->closing)
        return;
    eb_buf_putc(&gr->dl_text, ']');
    size_t n = gr->dl_n;
    gr->dl_n = 0;
    eb_json_doc *doc = eb_json_doc_new();
    if (eb_buf_failed(&gr->dl_text) || !doc ||
        eb_json_parse(doc, gr->dl_text.data, gr->dl_text.len, NULL, NULL) != 0) {
        gr->dl_failed += n;
    } else {
        const eb_json *e = eb_json_root(doc)->child;
        while (e) {
            publish_batch(bus, e, DL_BATCH, gr->dl_text.data);
            for (size_t k = 0; k < DL_BATCH && e; k++)
                e = e->next;
        }
    }
    eb_json_doc_free(doc);
    eb_buf_reset(&gr->dl_text);
}
