/* meta.c - the bus's state log (see meta.h). */
#include "bus/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/group.h"
#include "eventbus.h"

struct eb_meta {
    eb_log      *log; /* DATA/meta */
    eb_json_doc *doc; /* scratch for replay */
};

typedef struct replay_ctx {
    eb_meta          *m;
    eb_meta_replay_cb cb;
    void             *arg;
    int               rc;   /* first error */
    uint64_t          next; /* next seq to read */
    bool              skip; /* before the first snapshot of a trimmed log */
} replay_ctx;

static int replay_one(void *arg, const eb_log_rec *rec)
{
    replay_ctx *c = arg;
    c->next = rec->seq + 1;
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

int eb_meta_open(const char *data_dir, const eb_log_opts *base, eb_meta **out,
                 eb_log_recovery *rep, eb_meta_replay_cb cb, void *arg)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/meta", data_dir);
    eb_meta *m = calloc(1, sizeof *m);
    if (!m || !(m->doc = eb_json_doc_new())) {
        free(m);
        return EB_ENOMEM;
    }
    eb_log_opts o = *base;
    o.dir = dir;
    o.retention_ms = 0; /* state is never aged out */
    o.retention_bytes = 0;
    o.segment_bytes = 16u << 20;
    int rc = eb_log_open(&o, &m->log, rep);
    if (rc) {
        eb_json_doc_free(m->doc);
        free(m);
        return rc;
    }
    /* Once a snapshot has let older segments go, the records before it in
     * its own segment are a partial history (a schema version whose earlier
     * versions are gone): the snapshot restates all of it, so replay starts
     * there. A trimmed log without a snapshot is damage. */
    uint64_t first = eb_log_first_seq(m->log);
    replay_ctx c = {m, cb, arg, 0, first, first > 1};
    while (c.rc == 0 && c.next < eb_log_durable_seq(m->log)) {
        uint64_t before = c.next;
        rc = eb_log_scan(m->log, c.next, 1024, replay_one, &c);
        if (rc || c.next == before)
            break;
    }
    if (rc == 0)
        rc = c.rc;
    if (rc == 0 && c.skip && first < eb_log_durable_seq(m->log))
        rc = EB_ECORRUPT;
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
    eb_log_close(m->log);
    eb_json_doc_free(m->doc);
    free(m);
}

int eb_meta_append(eb_meta *m, uint16_t kind, const char *json, size_t len,
                   eb_log_done_cb cb, void *arg)
{
    eb_log_rec_in r = {kind, 0, json, (uint32_t)len};
    uint64_t seq, ts;
    return eb_log_append(m->log, &r, 1, &seq, &ts, cb, arg);
}

int eb_meta_append_batch(eb_meta *m, const eb_log_rec_in *recs, size_t n, uint64_t *first_seq,
                         eb_log_done_cb cb, void *arg)
{
    uint64_t ts;
    return eb_log_append(m->log, recs, n, first_seq, &ts, cb, arg);
}

eb_log *eb_meta_log(eb_meta *m)
{
    return m->log;
}
