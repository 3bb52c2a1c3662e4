/* store_pg_ins.c - how the PostgreSQL engine commits a META batch: one
 * prepared `INSERT ... SELECT FROM unnest($1..$5)` of five binary arrays,
 * one round trip (Bind/Execute/Sync; the implicit transaction commits at
 * the Sync), where a COPY takes two (COPY → CopyInResponse, then the data
 * and its commit). META batches are small (a group's ack is one record)
 * and each one is waited for by a client, so the round trip is the cost;
 * EVENTS keeps COPY (large batches, store_pg_writer.c).
 *
 * The batch is kept as COPY binary tuples (store_pg.c encodes them on the
 * loop thread): per record an int16 field count (5), then per field an
 * int32 length and the bytes. A binary array's element is the same int32
 * length and bytes, so the arrays are the tuples' fields regrouped. */
#include <string.h>

#include "eventbus/err.h"
#include "store/store_pg_int.h"

#define INS_NAME "eb_ins"

/* The five columns: the array element type's oid. */
static const unsigned elem_oid[5] = {20 /* int8 */, 20, 23 /* int4 */, 23, 17 /* bytea */};

int eb__pg_prepare_insert(PGconn *c, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO %s (seq, ts, type, flags, data) SELECT * FROM "
             "unnest($1::bigint[], $2::bigint[], $3::integer[], $4::integer[], $5::bytea[])",
             table);
    PGresult *r = PQprepare(c, INS_NAME, sql, 5, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : eb__pg_classify(c, r);
    PQclear(r);
    return rc;
}

static void put32(eb_buf *b, uint32_t v)
{
    unsigned char t[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    eb_buf_append(b, t, 4);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The batch's tuples as five one-dimensional binary arrays (into arr[0..4],
 * reset first). False if the tuples are not what store_pg.c writes. */
static bool to_arrays(const batch *b, eb_buf arr[5])
{
    for (int f = 0; f < 5; f++) {
        eb_buf_reset(&arr[f]);
        put32(&arr[f], 1);                     /* dimensions */
        put32(&arr[f], 0);                     /* no NULLs */
        put32(&arr[f], elem_oid[f]);
        put32(&arr[f], (uint32_t)b->records);  /* length */
        put32(&arr[f], 1);                     /* lower bound */
    }
    const unsigned char *p = (const unsigned char *)b->copy.data, *end = p + b->copy.len;
    for (size_t i = 0; i < b->records; i++) {
        if (end - p < 2 || p[0] != 0 || p[1] != 5)
            return false;
        p += 2;
        for (int f = 0; f < 5; f++) {
            if (end - p < 4 || (size_t)(end - p - 4) < get32(p))
                return false;
            size_t n = 4 + get32(p);
            eb_buf_append(&arr[f], p, n); /* the element: length and bytes */
            p += n;
        }
    }
    for (int f = 0; f < 5; f++)
        if (eb_buf_failed(&arr[f]))
            return false;
    return p == end;
}

int eb__pg_insert_batch(PGconn *c, const batch *b)
{
    eb_buf arr[5];
    for (int f = 0; f < 5; f++)
        eb_buf_init(&arr[f]);
    int rc = 0;
    if (!to_arrays(b, arr))
        rc = EB_ENOMEM;
    const char *vals[5];
    int lens[5], fmts[5] = {1, 1, 1, 1, 1};
    for (int f = 0; f < 5; f++) {
        vals[f] = arr[f].data;
        lens[f] = (int)arr[f].len;
    }
    /* Not sent: nothing committed (the caller tries a new connection).
     * A connection the server closed while it was idle (the database
     * restarted) is found here when its end has arrived: with COPY that
     * showed at the `COPY` statement, which commits nothing, where a lost
     * INSERT's outcome is unknown (then resolved on a new connection and,
     * not committed, sent again: commit_lane). */
    if (!rc && (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK ||
                !PQsendQueryPrepared(c, INS_NAME, 5, vals, lens, fmts, 0)))
        rc = EB_ECONNECT;
    for (int f = 0; f < 5; f++)
        eb_buf_free(&arr[f]);
    if (rc)
        return rc;
    return eb__pg_commit_outcome(c);
}
