/* meta_fuzz.c - fuzz target for the readers of the meta records (src/bus/
 * codec.c, the one owner of their formats): what a restart reads back
 * from DATA/meta (or the PostgreSQL meta table) and acts on. A record's
 * frame is checked (CRC32C) before it gets here, so these readers see a
 * damaged record only through a writer bug, a format change or a forged
 * file; they must refuse it (EB_ECORRUPT), not crash.
 *
 * Input: a kind byte, then the record's JSON, parsed as the meta loader
 * parses it (src/bus/meta.c). The kind picks the reader: schema, group,
 * group pause and the group a record names, token, token deletion, delay
 * (with each entry), ack (its ranges and seqs), failures (each), dead
 * letter (its history and its base64 event copy, decoded and checked as
 * an event), redrive/purge seqs, replay, done, leases (each: a run no
 * longer than a group holds, that does not wrap, of attempt >= 1). Properties: a reader answers
 * 0 or EB_ECORRUPT (the void ones just return); every string it hands
 * back reads to its length (ASan checks the bytes); the iterators end; a
 * token read back has a NUL-terminated name
 * and as many scopes as it says, each NUL-terminated; a replay has no more
 * types than a group may have. Never crash, leak or hang is checked by the
 * sanitizers and libFuzzer. */
#include <stdlib.h>
#include <string.h>

#include "bus/codec.h"
#include "bus/group_int.h"
#include "eventbus/err.h"
#include "fuzz.h"
#include "json/json.h"

#define MAX_STEPS 100000 /* an iterator must end well before this */

/* Reads s's bytes (memchr is checked by ASan). */
static void touch(eb_str s)
{
    if (s.len) {
        FUZZ_CHECK(s.ptr);
        (void)memchr(s.ptr, '\x01', s.len);
    }
}

static void ranges(eb_rec_iter it)
{
    uint64_t a, b;
    size_t n = 0;
    while (eb__rec_next_range(&it, &a, &b))
        FUZZ_CHECK(++n < MAX_STEPS);
}

static void seqs(eb_rec_iter it)
{
    uint64_t s;
    size_t n = 0;
    while (eb__rec_next_seq(&it, &s))
        FUZZ_CHECK(++n < MAX_STEPS);
}

static void read_record(unsigned kind, const eb_json *rec)
{
    int rc = 0;
    switch (kind % 14) {
    case 0: {
        eb_rec_schema r;
        rc = eb__rec_schema_decode(rec, &r);
        if (rc == 0)
            touch(r.type);
        break;
    }
    case 1: {
        eb_group_cfg cfg;
        uint64_t base = 0;
        bool paused = false;
        rc = eb__rec_group_decode(rec, &cfg, &base, &paused);
        if (rc == 0)
            eb_group_cfg_free(&cfg);
        break;
    }
    case 2: {
        (void)eb__rec_paused(rec);
        const eb_json *name = eb__rec_group_of(rec);
        FUZZ_CHECK(!name || eb_json_is(name, EB_JSON_STRING));
        break;
    }
    case 3:
    case 4: {
        eb_token t;
        memset(&t, 0, sizeof t);
        rc = eb__rec_token_decode(rec, kind % 14 == 4, &t);
        if (rc == 0) {
            FUZZ_CHECK(memchr(t.name, 0, sizeof t.name));
            for (size_t i = 0; i < t.nscopes; i++)
                FUZZ_CHECK(t.scopes && t.scopes[i] && strlen(t.scopes[i]) < 1u << 20);
        }
        eb__token_free(&t);
        break;
    }
    case 5: {
        eb_rec_delay r;
        rc = eb__rec_delay_decode(rec, &r);
        if (rc == 0 && r.entries) {
            size_t n = 0;
            for (const eb_json *e = r.entries->child; e; e = e->next) {
                uint64_t seq, due;
                uint32_t ti;
                int erc = eb__rec_delay_entry(e, &seq, &due, &ti);
                FUZZ_CHECK((erc == 0 || erc == EB_ECORRUPT) && ++n < MAX_STEPS);
            }
        }
        break;
    }
    case 6: {
        eb_rec_ack r;
        eb__rec_ack_decode(rec, &r);
        ranges(r.m);
        ranges(r.r);
        seqs(r.d);
        break;
    }
    case 7: {
        eb_rec_iter it = eb__rec_fail_items(rec);
        eb_rec_fail f;
        size_t n = 0;
        int frc;
        while ((frc = eb__rec_next_fail(&it, &f)) == 1) {
            touch(f.error);
            touch(f.consumer);
            FUZZ_CHECK(++n < MAX_STEPS);
        }
        FUZZ_CHECK(frc == 0 || frc == EB_ECORRUPT);
        break;
    }
    case 8: {
        eb_rec_dead r;
        rc = eb__rec_dead_decode(rec, &r);
        if (rc == 0) {
            touch(r.error);
            touch(r.consumer);
            uint32_t attempt;
            uint64_t at;
            eb_str who, err;
            size_t n = 0;
            int hrc;
            while ((hrc = eb__rec_next_hist(&r.hist, &attempt, &at, &who, &err)) == 1) {
                touch(who);
                touch(err);
                FUZZ_CHECK(++n < MAX_STEPS);
            }
            FUZZ_CHECK(hrc == 0 || hrc == EB_ECORRUPT);
            if (r.payload) {
                eb_buf b = EB_BUF_INIT;
                eb_event_view v;
                int prc = eb__rec_dead_payload(&r, &b, &v);
                FUZZ_CHECK(prc == 0 || prc == EB_ECORRUPT);
                eb_buf_free(&b);
            }
        }
        break;
    }
    case 9:
        seqs(eb__rec_seqs_decode(rec));
        break;
    case 10: {
        eb_rec_replay r;
        rc = eb__rec_replay_decode(rec, &r);
        if (rc == 0) {
            FUZZ_CHECK(r.ntypes <= EB_GROUP_MAX_TYPES);
            for (size_t i = 0; i < r.ntypes; i++)
                FUZZ_CHECK(r.types[i] && strlen(r.types[i]) < 1u << 20);
        }
        break;
    }
    case 13: {
        eb_rec_iter it = eb__rec_lease_items(rec);
        eb_rec_lease l;
        size_t n = 0;
        int lrc;
        while ((lrc = eb__rec_next_lease(&it, &l)) == 1) {
            FUZZ_CHECK(l.n >= 1 && l.n <= EB_GROUP_MAX_PENDING && l.first >= 1 &&
                       l.first <= UINT64_MAX - l.n && l.attempt >= 1);
            FUZZ_CHECK(++n < MAX_STEPS);
        }
        FUZZ_CHECK(lrc == 0 || lrc == EB_ECORRUPT);
        break;
    }
    default: {
        eb_rec_done r;
        eb__rec_done_decode(rec, &r);
        ranges(r.r);
        break;
    }
    }
    FUZZ_CHECK(rc == 0 || rc == EB_ECORRUPT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static eb_json_doc *doc;
    if (size < 1 || size > (1u << 20))
        return 0;
    if (!doc)
        FUZZ_CHECK((doc = eb_json_doc_new()) != NULL);
    char *text = malloc(size - 1 ? size - 1 : 1); /* exactly its size: ASan sees a read past */
    FUZZ_CHECK(text);
    memcpy(text, data + 1, size - 1);
    eb_json_error err;
    if (eb_json_parse(doc, text, size - 1, NULL, &err) == 0)
        read_record(data[0], eb_json_root(doc));
    free(text);
    return 0;
}
