/* codec.h - the formats of the meta records (on disk in DATA/meta; the
 * kinds are listed in meta.h and group.h): writing them and reading them
 * back, and the contents of a snapshot. codec.c is their one owner; the
 * group engine writes its own records through group_int.h's eb__rec_*. */
#ifndef EB_BUS_CODEC_H
#define EB_BUS_CODEC_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/group.h"
#include "bus/outbox.h"
#include "bus/registry.h"
#include "json/json.h"
#include "util/map.h"

/* EB_META_SCHEMA: one registered schema version, into out (appended). */
int eb__rec_schema(const char *type, uint32_t version, eb_compat_mode mode, const char *text,
                   size_t len, uint64_t ts_us, eb_buf *out);

/* A decoded EB_META_SCHEMA record; views into the parsed record. */
typedef struct eb_rec_schema {
    eb_str         type;
    uint32_t       version;
    eb_compat_mode mode;
    uint64_t       ts_us;
    const eb_json *schema;
} eb_rec_schema;

/* Reads an EB_META_SCHEMA record; EB_ECORRUPT if malformed. */
int eb__rec_schema_decode(const eb_json *rec, eb_rec_schema *out);

/* EB_META_GROUP: g's config, the first seq it considers, paused. */
void eb__rec_group(eb_outbox *ob, const eb_group *g, uint64_t base);
/* EB_META_GROUP_DEL (paused < 0) or EB_META_GROUP_PAUSE of group `name`. */
void eb__rec_group_name(eb_outbox *ob, uint16_t kind, const char *name, int paused);
/* The group a group record names, or NULL if it names none. */
const eb_json *eb__rec_group_of(const eb_json *rec);
/* Reads an EB_META_GROUP record: cfg (release with eb_group_cfg_free),
 * base (1 if absent) and paused; EB_ECORRUPT if malformed. */
int  eb__rec_group_decode(const eb_json *rec, eb_group_cfg *cfg, uint64_t *base, bool *paused);
/* The "paused" member of an EB_META_GROUP_PAUSE record. */
bool eb__rec_paused(const eb_json *rec);

/* EB_META_TOKEN (t) or, when del, EB_META_TOKEN_DEL (t->name only). */
void eb__rec_token(eb_outbox *ob, const eb_token *t, bool del);
/* Reads an EB_META_TOKEN record into out (scopes allocated: release with
 * eb__token_free), or the name only of an EB_META_TOKEN_DEL; EB_ECORRUPT
 * if malformed. */
int eb__rec_token_decode(const eb_json *rec, bool del, eb_token *out);
void eb__token_free(eb_token *t);

/* A pending delayed event: due time (µs), its seq, its type's index. */
typedef struct eb_delay_ent {
    uint64_t due, seq;
    uint32_t tid;
} eb_delay_ent;

/* EB_META_DELAY into w: {"u":u,"w":[w_due,w_seq],"t":[types],"s":[[seq,due,ti],..]};
 * "u" left out when u is 0, "w" unless has_w, "t"/"s" when n is 0 (ti
 * indexes types). */
void eb__rec_delay(eb_jw *w, uint64_t u, bool has_w, uint64_t w_due, uint64_t w_seq,
                   const eb_str *types, size_t nt, const eb_delay_ent *e, size_t n);
/* A decoded EB_META_DELAY record (arrays are views into it). */
typedef struct eb_rec_delay {
    bool           has_u, has_w;
    uint64_t       u, w_due, w_seq;
    const eb_json *types;   /* array of strings, or NULL */
    const eb_json *entries; /* array of [seq,due,ti], or NULL */
} eb_rec_delay;
int eb__rec_delay_decode(const eb_json *rec, eb_rec_delay *out);
/* One entry of r.entries; EB_ECORRUPT if malformed. */
int eb__rec_delay_entry(const eb_json *item, uint64_t *seq, uint64_t *due, uint32_t *ti);

/* Writes a whole snapshot into ob: EB_META_SNAP, every schema version of
 * reg, then every group of `groups` (name -> eb_group) with its state, then
 * every token of `tokens` (name -> eb_token).
 * Returns 0 or EB_ENOMEM. */
int eb__snapshot_write(eb_outbox *ob, const eb_registry *reg, const eb_map *groups,
                       const eb_map *tokens);

#endif
