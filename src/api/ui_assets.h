/* ui_assets.h - the dashboard's files compiled into eventbusd (the table
 * is generated at build time from ui/www by scripts/embed_ui.py; served by
 * ui.c). */
#ifndef EB_API_UI_ASSETS_H
#define EB_API_UI_ASSETS_H

#include <stddef.h>

typedef struct eb_ui_asset {
    const char          *name;  /* "index.html" */
    const char          *type;  /* its Content-Type */
    const unsigned char *data;
    size_t               len;
    const unsigned char *gz;    /* gzip-compressed, or NULL when not smaller */
    size_t               gzlen;
    const char          *etag;  /* quoted */
} eb_ui_asset;

/* Ends with an entry whose name is NULL. */
extern const eb_ui_asset eb_ui_assets[];

#endif
