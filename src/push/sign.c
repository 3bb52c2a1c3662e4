/* sign.c - what a push POST carries: the body (the event as a pull renders
 * it, a JSON array of them when batched, or CloudEvents) and its Standard
 * Webhooks signature (HMAC-SHA256 of "id.timestamp.body", base64, "v1,"
 * first; two when a rotated-out secret still signs). */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "bus/ce_write.h"
#include "eventbus/err.h"
#include "push/push_int.h"
#include "util/base64.h"

static int one(eb_jw *w, const pconf *c, const eb_delivery *d, eb_json_doc *doc)
{
    eb_event_view v;
    if (eb_event_decode(d->event, d->len, &v) != 0)
        return EB_ECORRUPT;
    if (c->format == EB_PUSH_CLOUDEVENTS)
        return eb_ce_write(w, doc, d->seq, d->ts_us, &v, NULL);
    eb_jw_obj_open(w);
    eb_event_write_members(w, d->seq, d->ts_us, &v);
    eb_jw_obj_close(w);
    return 0;
}

int eb__push_body(eb_buf *out, const pconf *c, const eb_delivery *dl, size_t n,
                  eb_json_doc *doc)
{
    eb_jw w;
    eb_jw_init(&w, out);
    if (c->batch <= 1 && n == 1)
        return one(&w, c, &dl[0], doc);
    eb_jw_arr_open(&w);
    for (size_t i = 0; i < n; i++)
        if (one(&w, c, &dl[i], doc) != 0)
            return EB_ECORRUPT;
    eb_jw_arr_close(&w);
    return 0;
}

void eb__push_hmac_b64(eb_buf *out, const eb_buf *key, const char *msg, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key->data, (int)key->len, (const unsigned char *)msg, len, mac, &ml);
    eb_base64_encode(out, mac, ml);
}

void eb__push_signature(eb_buf *out, const pconf *c, const char *id, uint64_t ts_s,
                        const char *body, size_t len, uint64_t now_us)
{
    eb_buf msg = EB_BUF_INIT;
    eb_buf_printf(&msg, "%s.%llu.", id, (unsigned long long)ts_s);
    eb_buf_append(&msg, body, len);
    eb_buf_puts(out, "v1,");
    eb__push_hmac_b64(out, &c->key, msg.data, msg.len);
    if (c->prev_key.len && c->prev_until_us > now_us) {
        eb_buf_puts(out, " v1,");
        eb__push_hmac_b64(out, &c->prev_key, msg.data, msg.len);
    }
    eb_buf_free(&msg);
}
