/* meta.h - durable store for the bus's own state: schema registrations,
 * group configuration, acks, failed attempts, dead letters, replays.
 *
 * A second store (kind EB_STORE_META) holds one record per state change;
 * the payload is compact JSON, the record type says which change. At
 * startup every record is replayed, in order, through a callback, which
 * rebuilds the in-memory state. When the log has grown enough the bus
 * writes a snapshot (EB_META_SNAP followed by the whole state, one atomic
 * batch) and drops the segments before it. */
#ifndef EB_BUS_META_H
#define EB_BUS_META_H

#include <stddef.h>
#include <stdint.h>

#include "json/json.h"
#include "store/store.h"

/* Record types of the meta log (stable: they are on disk). */
enum {
    EB_META_SCHEMA = 16, /* {"type","version","compatibility","schema","ts"} */
    EB_META_DELAY = 48,  /* {"u":seq,"w":[due,seq],"t":[types],"s":[[seq,due,t],..]}
                          * delayed events (delay.c; format in codec.c) */
    EB_META_TOKEN = 64,  /* {"name","hash":hex,"scopes":[..],"created","expires"} */
    EB_META_TOKEN_DEL,   /* {"name"} */
};

typedef struct eb_meta eb_meta;

/* Replays one record: kind and its parsed JSON payload. Return non-zero to
 * stop the open with that error. */
typedef int (*eb_meta_replay_cb)(void *arg, uint16_t kind, uint64_t seq, const eb_json *rec);

/* Opens the META store of `engine` (base's sync settings and data_dir),
 * replaying every record through cb. */
int eb_meta_open(const eb_store_engine *engine, const eb_store_opts *base, eb_meta **out,
                 eb_store_recovery *rep, eb_meta_replay_cb cb, void *arg);
void eb_meta_close(eb_meta *m);
/* Appends one record; cb fires on the writer thread once durable. */
int eb_meta_append(eb_meta *m, uint16_t kind, const char *json, size_t len,
                   eb_store_done_cb cb, void *arg);
/* Appends n records atomically (all or none after a crash); *first_seq
 * receives the seq of the first. */
int eb_meta_append_batch(eb_meta *m, const eb_store_rec_in *recs, size_t n, uint64_t *first_seq,
                         eb_store_done_cb cb, void *arg);
/* The underlying store (sizes, dropping what a snapshot made obsolete). */
eb_store *eb_meta_store(eb_meta *m);

#endif
