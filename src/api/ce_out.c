/* ce_out.c - stored events written out as CloudEvents 1.0 (structured
 * JSON): GET /v1/events/{id} with Accept: application/cloudevents+json, and
 * browse and pull with application/cloudevents-batch+json (a JSON array):
 * the media types; the rendering itself is bus/ce_write.c (push uses it too).
 *
 * Mapping back (the inverse of cloudevents.c's): id, source, type,
 * subject, datacontenttype, data as they are; key -> partitionkey,
 * correlationId -> correlationid, causationId -> causationid, version ->
 * schemaversion (an integer); the attributes kept under "extensions"
 * (time, dataschema, extensions) back at the top level with their JSON
 * types. "time" is the time the producer gave, else the append time; our
 * own figures are extensions: ebseq (the seq), ebappendtime (the append
 * time), ebkeyversion (keyed events), deliverat (a delayed event; the
 * name it is published with) and ebpublishedseq (a delayed event as a
 * group gets it), and for a pull ebdeliveryid, ebattempt, ebdeadline. An event published natively with no source gets
 * "/eventbus" (CloudEvents requires one); extension names CloudEvents
 * cannot carry are left out, and object or array values are written as
 * JSON text. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/cloudevents.h"
#include "eventbus/err.h"

bool eb_ce_accepts(const eb_http_req *req, const char *mtype)
{
    size_t n = 0, ml = strlen(mtype);
    const char *a = eb_http_req_header(req, "accept", &n);
    for (size_t i = 0; a && i + ml <= n; i++)
        if (strncasecmp(a + i, mtype, ml) == 0 && (i == 0 || a[i - 1] == ',' || a[i - 1] == ' ') &&
            (i + ml == n || a[i + ml] == ',' || a[i + ml] == ';' || a[i + ml] == ' '))
            return true;
    return false;
}
