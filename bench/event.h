/* event.h - the benchmarks' workload event: the seed's ~200-byte
 * order.created, numbered so a consumer can tell which one it got, and its
 * JSON Schema. Shared by bench/publish, bench/consume and bench/peers. */
#ifndef EB_BENCH_EVENT_H
#define EB_BENCH_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* The order.created schema eventbusd validates the events against. */
extern const char *const bench_order_schema;

/* Writes event number n as the eventbus envelope
 * {"type":"order.created","source":...,"key":...,"data":{...}} into buf
 * (NUL-terminated); returns its length (about 200 bytes), 0 if cap is short. */
size_t bench_event_json(char *buf, size_t cap, uint64_t n);

/* Writes a JSON array of events first..first+count-1 into buf; returns its
 * length, 0 if cap is short. */
size_t bench_event_batch(char *buf, size_t cap, uint64_t first, int count);

/* Finds the event number in any text that holds one event's JSON as
 * written by bench_event_json (also after a store re-serialized it, as
 * PostgreSQL's jsonb does): the digits after the first `"A-`. Returns 0 and
 * sets *n, or -1 when there is none before end. */
int bench_event_number(const char *text, const char *end, uint64_t *n);

#endif
