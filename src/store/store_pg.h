/* store_pg.h - PostgreSQL as a storage engine (store_pg.c): the store's
 * data_dir is a libpq connection URI (postgresql://...); EVENTS is the
 * table eb_events (partitioned by seq range), META is eb_meta. */
#ifndef EB_STORE_PG_H
#define EB_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

extern const eb_store_engine eb_store_pg_engine;
/* Seqs per events partition (65536): the tests make it small to see
 * retention drop partitions. Set before opening a store. */
extern uint64_t eb__store_pg_part_seqs;
/* --store-timeout: how long a statement or commit may wait for the
 * database (ms; 0: no bound) before its connection is dropped and the wait
 * fails as a lost connection (store_pg_guard.c). Set before opening. */
extern uint32_t eb__store_pg_timeout_ms;
/* The queries an EVENTS or META store sent to read records since it was
 * opened (scans, read-aheads, seek_time): the tests check the backlog is
 * read in chunks, once for every reader. */
uint64_t eb__store_pg_read_queries(eb_store *s);

/* --- several nodes on one database (store_pg_lead.c) ------------------------
 * A node's leadership: the leader lock on a connection of its own, the
 * epoch and URL in eb_leader, NOTIFY eb_leader on a change. */
typedef struct eb_pg_lead eb_pg_lead;
#define EB_PG_LEAD_URL_MAX 512
/* Called on the leadership thread when the state changed (this node
 * became the leader, or a follower learned of a new leader). */
typedef void (*eb_pg_lead_fn)(void *arg);
/* Tries once, synchronously, to become the leader at uri (advertising
 * url), then goes on in a thread of its own (waiting for the lock as a
 * follower, or watching it as the leader); *out is the caller's
 * (eb_pg_lead_stop). fn may be NULL. 0, EB_ECONNECT (the database cannot
 * be reached: said in the log) or EB_EIO. */
int  eb_pg_lead_start(const char *uri, const char *url, eb_pg_lead_fn fn, void *arg,
                      eb_pg_lead **out);
/* True if this node is the leader; the leader's epoch and URL ("" when no
 * leader is known) into *epoch and url (either may be NULL). */
bool eb_pg_lead_state(eb_pg_lead *l, uint64_t *epoch, char *url, size_t cap);
/* Stops the thread and closes the connections (the lock goes with them). */
void eb_pg_lead_stop(eb_pg_lead *l);
/* The epoch this node leads in: 0 (one node alone, the unit tests) or the
 * one a writer connection checks in eb_leader after taking its lock. */
extern _Atomic uint64_t eb__store_pg_epoch;
/* Called (from any thread) when this node finds it is no longer the
 * leader while its bus is open: the lock of a writer is held elsewhere, or
 * eb_leader's epoch moved on. It must stop writing at once; the daemon
 * re-executes itself (main.c). NULL: the writer retries as before. */
extern void (*eb__store_pg_fenced)(const char *why);

#endif
