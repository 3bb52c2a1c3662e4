/* ui.c - the web dashboard at /ui/: serves the files compiled into the
 * binary (ui_assets.h) with their Content-Type, an ETag (If-None-Match
 * answers 304), Cache-Control: no-cache (always revalidated, so a new
 * build is seen at once), a Content-Security-Policy allowing only this
 * origin (no inline script, no framing) and the gzip copy when the client
 * accepts it.
 * /ui redirects to /ui/, which is index.html. Everything the pages show
 * comes from the public HTTP API (same origin). */
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/ui_assets.h"

static const eb_ui_asset *find_asset(const char *name, size_t n)
{
    for (const eb_ui_asset *a = eb_ui_assets; a->name; a++)
        if (strlen(a->name) == n && memcmp(a->name, name, n) == 0)
            return a;
    return NULL;
}

/* Whether the header value v (length n) lists token tok (comma-separated,
 * parameters such as ";q=1" ignored; "gzip;q=0" is taken as no). */
static bool lists(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ';' && v[i] != ' ')
            i++;
        bool hit = i - s == tl && strncasecmp(v + s, tok, tl) == 0;
        size_t q = i;
        while (i < n && v[i] != ',')
            i++;
        if (hit && !memmem(v + q, i - q, "q=0", 3))
            return true;
    }
    return false;
}

void eb__api_ui(eb_api *api, eb_http_req *req, const eb_api_params *p)
{
    (void)api;
    if (req->path_len == 3) { /* "/ui": relative links need the slash */
        eb_http_set_header(req, "Location", "/ui/");
        eb_http_respond(req, 308, "text/plain", "/ui/\n", 5);
        return;
    }
    const char *name = "index.html";
    size_t n = strlen(name);
    if (p->n == 1) {
        name = p->v[0].ptr;
        n = p->v[0].len;
    }
    const eb_ui_asset *a = find_asset(name, n);
    if (!a) {
        eb__api_error(req, 404, "not_found", "no such file in the dashboard", NULL);
        return;
    }
    /* (the headers fit the request's 256 bytes of extra headers) */
    eb_http_set_header(req, "ETag", a->etag);
    eb_http_set_header(req, "Cache-Control", "no-cache");
    eb_http_set_header(req, "Vary", "Accept-Encoding");
    eb_http_set_header(req, "X-Content-Type-Options", "nosniff");
    eb_http_set_header(req, "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
    size_t vl = 0;
    const char *inm = eb_http_req_header(req, "if-none-match", &vl);
    if (inm && memmem(inm, vl, a->etag, strlen(a->etag))) {
        eb_http_respond(req, 304, NULL, NULL, 0);
        return;
    }
    const char *ae = eb_http_req_header(req, "accept-encoding", &vl);
    if (a->gz && ae && lists(ae, vl, "gzip")) {
        eb_http_set_header(req, "Content-Encoding", "gzip");
        eb_http_respond(req, 200, a->type, (const char *)a->gz, a->gzlen);
        return;
    }
    eb_http_respond(req, 200, a->type, (const char *)a->data, a->len);
}
