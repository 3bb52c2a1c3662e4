/* uri.c - just enough RFC 3986 reference resolution for "$id" and "$ref". */
#include <stdio.h>
#include <string.h>

#include "schema/uri.h"

/* Length of the scheme (before ':') if s starts with one, else 0. */
static size_t scheme_len(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[i] && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    return s[i] == ':' ? i : 0;
}

/* Removes "." and ".." segments from path in place. */
static void remove_dots(char *path)
{
    char out[2048];
    size_t o = 0;
    const char *p = path;
    while (*p) {
        if (!strncmp(p, "../", 3)) {
            p += 3;
        } else if (!strncmp(p, "./", 2)) {
            p += 2;
        } else if (!strncmp(p, "/./", 3)) {
            p += 2;
        } else if (!strcmp(p, "/.")) {
            p += 1;
            out[o++] = '/';
            break;
        } else if (!strncmp(p, "/../", 4) || !strcmp(p, "/..")) {
            p += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            if (!*p) {
                out[o++] = '/';
                break;
            }
        } else if (!strcmp(p, ".") || !strcmp(p, "..")) {
            break;
        } else {
            do {
                if (o < sizeof out - 1)
                    out[o++] = *p;
                p++;
            } while (*p && *p != '/');
        }
    }
    out[o] = '\0';
    strcpy(path, out);
}

void eb__uri_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    if (scheme_len(ref)) {
        snprintf(out, cap, "%s", ref);
        return;
    }
    char b[2048];
    snprintf(b, sizeof b, "%s", base);
    char *hash = strchr(b, '#');
    if (hash)
        *hash = '\0';
    if (ref[0] == '#' || ref[0] == '\0') {
        snprintf(out, cap, "%s%s", b, ref);
        return;
    }
    size_t sl = scheme_len(b);
    char *auth_end = b + (sl ? sl + 1 : 0);
    if (!strncmp(auth_end, "//", 2)) {
        char *slash = strchr(auth_end + 2, '/');
        auth_end = slash ? slash : auth_end + strlen(auth_end);
    }
    if (!strncmp(ref, "//", 2)) {
        snprintf(out, cap, "%.*s%s", (int)(sl ? sl + 1 : 0), b, ref);
        return;
    }
    char path[2048];
    if (ref[0] == '/') {
        snprintf(path, sizeof path, "%s", ref);
    } else {
        const char *q = strchr(auth_end, '?');
        size_t plen = q ? (size_t)(q - auth_end) : strlen(auth_end);
        const char *last = NULL;
        for (size_t i = 0; i < plen; i++)
            if (auth_end[i] == '/')
                last = auth_end + i;
        if (last)
            snprintf(path, sizeof path, "%.*s%s", (int)(last - auth_end + 1), auth_end, ref);
        else if (auth_end > b + sl + 1 && !strncmp(b + (sl ? sl + 1 : 0), "//", 2))
            snprintf(path, sizeof path, "/%s", ref);
        else
            snprintf(path, sizeof path, "%s", ref);
    }
    char frag[1024] = "";
    char *h = strchr(path, '#');
    if (h) {
        snprintf(frag, sizeof frag, "%s", h);
        *h = '\0';
    }
    remove_dots(path);
    snprintf(out, cap, "%.*s%s%s", (int)(auth_end - b), b, path, frag);
}

void eb__uri_split(const char *uri, char *doc, size_t cap, const char **frag)
{
    const char *h = strchr(uri, '#');
    size_t n = h ? (size_t)(h - uri) : strlen(uri);
    snprintf(doc, cap, "%.*s", (int)n, uri);
    *frag = h ? h + 1 : "";
}
