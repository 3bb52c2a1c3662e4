/* merge.c - JSON merge patch (RFC 7396): writes the result of applying a
 * patch to a target, both parsed trees, through the streaming writer.
 * Recursive over object nesting only, which the parser bounds (depth). */
#include "json/json.h"

static void merge(eb_jw *w, const eb_json *target, const eb_json *patch);

/* Writes the members of patch (an object) not null, merged into nothing:
 * what applying it to {} gives. */
static void write_patch_value(eb_jw *w, const eb_json *v)
{
    if (v->type == EB_JSON_OBJECT)
        merge(w, NULL, v);
    else
        eb_jw_value(w, v);
}

static void merge(eb_jw *w, const eb_json *target, const eb_json *patch)
{
    if (target && target->type != EB_JSON_OBJECT)
        target = NULL; /* a patch object replaces a non-object target */
    eb_jw_obj_open(w);
    if (target)
        for (const eb_json *m = target->child; m; m = m->next) {
            const eb_json *p = eb_json_getn(patch, m->key, m->key_len);
            if (!p) {
                eb_jw_keyn(w, m->key, m->key_len);
                eb_jw_value(w, m);
            } else if (p->type != EB_JSON_NULL) {
                eb_jw_keyn(w, m->key, m->key_len);
                if (p->type == EB_JSON_OBJECT)
                    merge(w, m, p);
                else
                    eb_jw_value(w, p);
            }
        }
    for (const eb_json *p = patch->child; p; p = p->next) {
        if (p->type == EB_JSON_NULL || (target && eb_json_getn(target, p->key, p->key_len)))
            continue;
        eb_jw_keyn(w, p->key, p->key_len);
        write_patch_value(w, p);
    }
    eb_jw_obj_close(w);
}

void eb_json_merge_patch(eb_jw *w, const eb_json *target, const eb_json *patch)
{
    if (patch->type != EB_JSON_OBJECT) {
        eb_jw_value(w, patch); /* a non-object patch replaces the target */
        return;
    }
    merge(w, target, patch);
}
