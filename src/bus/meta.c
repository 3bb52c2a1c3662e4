/* meta.c - the bus's state log (see meta.h). */
#include "bus/meta.h"

#include <stdlib.h>
#include <string.h>

#include "bus/group.h"
#include "eventbus/err.h"
#include "util/xmalloc.h"

struct eb_meta {
    eb_store    *store; /* the META store */
    eb_json_doc *doc; /* scratch for replay */
};

typedef struct replay_ctx {
    eb_meta          *m;
    eb_meta_replay_cb cb;
    void             *arg;
    int               rc;   /* first error */
    uint64_t          next; /* next seq to read */
    uint64_t          snap; /* seq of the newest snapshot read, 0: none */
    bool              skip; /* before the first snapshot of a trimmed log */
} replay_ctx;

static int replay_one(void *arg, const eb_store_rec *rec)
{
    replay_ctx *c = arg;
    c->next = rec->seq + 1;
    if (rec->type == EB_META_SNAP)
        c->snap = rec->seq;
    if (c->skip && rec->type != EB_META_SNAP)
        return 0;
    c->skip = false;
    eb_json_error jerr;
    if (eb_json_parse(c->m->doc, rec->data, rec->len, NULL, &jerr) != 0) {
        c->rc = EB_ECORRUPT;
        return 1;
    }
    c->rc = c->cb(c->arg, rec->type, rec->seq, eb_json_root(c->m->doc));
    return c->rc != 0;
}

int eb_meta_open(const eb_store_engine *engine, const eb_store_opts *base, eb_meta **out,
                 eb_store_recovery *rep, eb_meta_replay_cb cb, void *arg)
{
    eb_meta *m = eb_xcalloc(1, sizeof *m);
    m->doc = eb_json_doc_new();
    eb_store_opts o = *base;
    o.kind = EB_STORE_META;
    o.retention_ms = 0; /* state is never aged out */
    o.retention_bytes = 0;
    int rc = eb_store_open(engine, &o, &m->store, rep);
    if (rc) {
        eb_json_doc_free(m->doc);
        free(m);
        return rc;
    }
    /* Once a snapshot has let older segments go, the records before it in
     * its own segment are a partial history (a schema version whose earlier
     * versions are gone): the snapshot restates all of it, so replay starts
     * there. A trimmed log without a snapshot is damage. */
    uint64_t first = eb_store_first_seq(m->store);
    replay_ctx c = {m, cb, arg, 0, first, 0, first > 1};
    while (c.rc == 0 && c.next < eb_store_durable_seq(m->store)) {
        uint64_t before = c.next;
        rc = eb_store_scan(m->store, c.next, 1024, replay_one, &c);
        if (rc || c.next == before)
            break;
    }
    if (rc == 0)
        rc = c.rc;
    if (rc == 0 && c.skip && first < eb_store_durable_seq(m->store))
        rc = EB_ECORRUPT;
    /* The records before the newest snapshot are obsolete: a node that
     * stopped before its engine dropped them (a database engine deletes
     * them on its writer thread, after the snapshot committed) drops them
     * now, or they would stay until the next snapshot. (Its failure, as
     * after a snapshot, only leaves them.) */
    if (rc == 0 && c.snap > first)
        (void)eb_store_drop_before(m->store, c.snap);
    if (rc) {
        eb_meta_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void eb_meta_close(eb_meta *m)
{
    if (!m)
        return;
    eb_store_close(m->store);
    eb_json_doc_free(m->doc);
    free(m);
}

int eb_meta_append(eb_meta *m, uint16_t kind, const char *json, size_t len,
                   eb_store_done_cb cb, void *arg)
{
    eb_store_rec_in r = {kind, 0, json, (uint32_t)len};
    uint64_t seq, ts;
    return eb_store_append(m->store, &r, 1, false, &seq, &ts, cb, arg);
}

int eb_meta_append_batch(eb_meta *m, const eb_store_rec_in *recs, size_t n, uint64_t *first_seq,
                         eb_store_done_cb cb, void *arg)
{
    uint64_t ts;
    return eb_store_append(m->store, recs, n, false, first_seq, &ts, cb, arg);
}

eb_store *eb_meta_store(eb_meta *m)
{
    return m->store;
}
