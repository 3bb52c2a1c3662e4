/* group_cfg.c - consumer group configuration: parsing with field-named
 * errors, defaults, type patterns, and writing it back out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/group_types.h"
#include "bus/subject_match.h"
#include "eventbus/err.h"

int eb__cfg_err(eb_field_error *err, const char *field, const char *msg)
{
    snprintf(err->field, sizeof err->field, "%.63s", field);
    snprintf(err->message, sizeof err->message, "%s", msg);
    return EB_EINVAL;
}

bool eb_group_type_match(const char *p, const char *t, size_t n)
{
    return eb_subject_match(p, t, n);
}

bool eb_group_cfg_matches(const eb_group_cfg *cfg, const char *t, size_t n)
{
    for (size_t i = 0; i < cfg->ntypes; i++)
        if (eb_group_type_match(cfg->types[i], t, n))
            return true;
    return false;
}

bool eb_group_cfg_passes(const eb_group_cfg *cfg, const eb_filter_event *ev)
{
    return !cfg->filter || eb_filter_match(cfg->filter, ev);
}

static int parse_filter(const eb_json *v, eb_group_cfg *cfg, eb_field_error *err)
{
    if (cfg->filter)
        return eb__cfg_err(err, "/filter", "given twice");
    int rc = eb_filter_compile(v, "/filter", &cfg->filter, err);
    if (rc)
        return rc;
    eb_buf b = EB_BUF_INIT;
    eb_jw w;
    eb_jw_init(&w, &b);
    eb_jw_value(&w, v);
    eb_buf_putc(&b, '\0');
    if (eb_buf_failed(&b)) {
        eb_buf_free(&b);
        return eb__cfg_err(err, "/filter", "out of memory");
    }
    cfg->filter_json = eb_buf_steal(&b, NULL);
    return 0;
}

bool eb_group_pattern_valid(const char *s, size_t n)
{
    return eb_subject_pattern_valid(s, n);
}

static int parse_types(const eb_json *v, eb_group_cfg *cfg, eb_field_error *err)
{
    if (!eb_json_is(v, EB_JSON_ARRAY) || v->len == 0 || v->len > EB_GROUP_MAX_TYPES)
        return eb__cfg_err(err, "/types", "must be an array of 1 to 64 type names or patterns "
                       "(\"order.created\", \"*.created\", \"order.>\", \">\")");
    size_t i = 0;
    for (const eb_json *e = v->child; e; e = e->next, i++) {
        char f[32];
        snprintf(f, sizeof f, "/types/%zu", i);
        if (e->type != EB_JSON_STRING || !eb_group_pattern_valid(e->str, e->len))
            return eb__cfg_err(err, f, "not a valid type name or pattern (segments of a-z 0-9 - _, "
                           "\"*\" for one segment, \">\" last for the rest)");
        if (!(cfg->types[cfg->ntypes] = strndup(e->str, e->len)))
            return eb__cfg_err(err, f, "out of memory");
        cfg->ntypes++;
    }
    return 0;
}

static int parse_start(const eb_json *v, eb_group_cfg *cfg, eb_field_error *err)
{
    if (v->type == EB_JSON_STRING && !strcmp(v->str, "latest"))
        cfg->start = EB_START_LATEST;
    else if (v->type == EB_JSON_STRING && !strcmp(v->str, "earliest"))
        cfg->start = EB_START_EARLIEST;
    else if (v->type == EB_JSON_STRING && eb_time_parse(v->str, v->len, &cfg->start_us) == 0)
        cfg->start = EB_START_TIME;
    else
        return eb__cfg_err(err, "/start", "must be \"latest\", \"earliest\" or an RFC 3339 time");
    return 0;
}

int eb__cfg_u32(const eb_json *v, const char *field, uint32_t lo, uint32_t hi, uint32_t *out,
                eb_field_error *err)
{
    if (v->type != EB_JSON_NUMBER || !(v->flags & EB_JSON_F_INT) || v->i64 < lo ||
        v->i64 > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer from %u to %u", lo, hi);
        return eb__cfg_err(err, field, msg);
    }
    *out = (uint32_t)v->i64;
    return 0;
}

static int get_num(const eb_json *v, const char *field, double lo, double hi, double *out,
                   eb_field_error *err)
{
    double d = eb_json_num(v);
    if (v->type != EB_JSON_NUMBER || !isfinite(d) || d < lo || d > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a number from %g to %g", lo, hi);
        return eb__cfg_err(err, field, msg);
    }
    *out = d;
    return 0;
}

static int parse_backoff(const eb_json *v, eb_group_cfg *cfg, eb_field_error *err)
{
    if (!eb_json_is(v, EB_JSON_OBJECT))
        return eb__cfg_err(err, "/backoff", "must be an object {initial_ms, multiplier, max_ms, "
                       "jitter}");
    int rc = 0;
    for (const eb_json *m = v->child; m && !rc; m = m->next) {
        if (!strcmp(m->key, "initial_ms"))
            rc = eb__cfg_u32(m, "/backoff/initial_ms", 0, 86400000, &cfg->backoff_initial_ms, err);
        else if (!strcmp(m->key, "max_ms"))
            rc = eb__cfg_u32(m, "/backoff/max_ms", 0, 86400000, &cfg->backoff_max_ms, err);
        else if (!strcmp(m->key, "multiplier"))
            rc = get_num(m, "/backoff/multiplier", 1, 100, &cfg->backoff_multiplier, err);
        else if (!strcmp(m->key, "jitter"))
            rc = get_num(m, "/backoff/jitter", 0, 1, &cfg->backoff_jitter, err);
        else
            rc = eb__cfg_err(err, "/backoff", "unknown field (allowed: initial_ms, multiplier, "
                         "max_ms, jitter)");
    }
    if (!rc && cfg->backoff_max_ms < cfg->backoff_initial_ms)
        rc = eb__cfg_err(err, "/backoff/max_ms", "must be at least initial_ms");
    return rc;
}

static int parse_member(const eb_json *m, eb_group_cfg *cfg, eb_field_error *err)
{
    if (!strcmp(m->key, "types"))
        return parse_types(m, cfg, err);
    if (!strcmp(m->key, "start"))
        return parse_start(m, cfg, err);
    if (!strcmp(m->key, "max_attempts"))
        return eb__cfg_u32(m, "/max_attempts", 1, 1000, &cfg->max_attempts, err);
    if (!strcmp(m->key, "ack_timeout_ms"))
        return eb__cfg_u32(m, "/ack_timeout_ms", 100, 43200000, &cfg->ack_timeout_ms, err);
    if (!strcmp(m->key, "backoff"))
        return parse_backoff(m, cfg, err);
    if (!strcmp(m->key, "filter"))
        return parse_filter(m, cfg, err);
    if (!strcmp(m->key, "max_in_flight"))
        return eb__cfg_u32(m, "/max_in_flight", 0, 1000000, &cfg->max_in_flight, err);
    if (!strcmp(m->key, "rate_limit"))
        return get_num(m, "/rate_limit", 0, 1000000, &cfg->rate_limit, err);
    if (!strcmp(m->key, "push")) {
        if (cfg->push)
            return eb__cfg_err(err, "/push", "given twice");
        return eb_push_cfg_parse(m, &cfg->push, err);
    }
    if (!strcmp(m->key, "ordering")) {
        if (m->type == EB_JSON_STRING && !strcmp(m->str, "none"))
            cfg->ordering = EB_ORDER_NONE;
        else if (m->type == EB_JSON_STRING && !strcmp(m->str, "key"))
            cfg->ordering = EB_ORDER_KEY;
        else
            return eb__cfg_err(err, "/ordering", "must be \"none\" or \"key\"");
        return 0;
    }
    char f[72], msg[224];
    snprintf(f, sizeof f, "/%.60s", m->key);
    snprintf(msg, sizeof msg, "unknown field \"%.60s\" (allowed: types, start, max_attempts, "
             "backoff, ack_timeout_ms, ordering, max_in_flight, rate_limit, filter, push)", m->key);
    return eb__cfg_err(err, f, msg);
}

int eb_group_cfg_parse(const eb_json *obj, eb_group_cfg *cfg, eb_field_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_attempts = 4;
    cfg->backoff_initial_ms = 1000;
    cfg->backoff_multiplier = 2;
    cfg->backoff_max_ms = 300000;
    cfg->backoff_jitter = 0.2;
    cfg->ack_timeout_ms = 30000;
    if (!eb_json_is(obj, EB_JSON_OBJECT))
        return eb__cfg_err(err, "", "a group config is a JSON object");
    for (const eb_json *m = obj->child; m; m = m->next) {
        int rc = parse_member(m, cfg, err);
        if (rc) {
            eb_group_cfg_free(cfg);
            return rc;
        }
    }
    if (cfg->ntypes == 0) {
        eb_group_cfg_free(cfg);
        return eb__cfg_err(err, "/types", "required field \"types\" missing");
    }
    return 0;
}

void eb_group_cfg_free(eb_group_cfg *cfg)
{
    for (size_t i = 0; i < cfg->ntypes; i++)
        free(cfg->types[i]);
    cfg->ntypes = 0;
    eb_filter_free(cfg->filter);
    free(cfg->filter_json);
    cfg->filter = NULL;
    cfg->filter_json = NULL;
    eb_push_cfg_free(cfg->push);
    cfg->push = NULL;
}

void eb_group_cfg_write(eb_jw *w, const eb_group_cfg *cfg)
{
    eb_jw_obj_open(w);
    eb_jw_key(w, "types");
    eb_jw_arr_open(w);
    for (size_t i = 0; i < cfg->ntypes; i++)
        eb_jw_str(w, cfg->types[i]);
    eb_jw_arr_close(w);
    eb_jw_key(w, "start");
    if (cfg->start == EB_START_TIME) {
        char t[32];
        eb_time_format(cfg->start_us, t);
        eb_jw_str(w, t);
    } else {
        eb_jw_str(w, cfg->start == EB_START_EARLIEST ? "earliest" : "latest");
    }
    eb_jw_key(w, "max_attempts");
    eb_jw_uint(w, cfg->max_attempts);
    eb_jw_key(w, "backoff");
    eb_jw_obj_open(w);
    eb_jw_key(w, "initial_ms");
    eb_jw_uint(w, cfg->backoff_initial_ms);
    eb_jw_key(w, "multiplier");
    eb_jw_double(w, cfg->backoff_multiplier);
    eb_jw_key(w, "max_ms");
    eb_jw_uint(w, cfg->backoff_max_ms);
    eb_jw_key(w, "jitter");
    eb_jw_double(w, cfg->backoff_jitter);
    eb_jw_obj_close(w);
    eb_jw_key(w, "ack_timeout_ms");
    eb_jw_uint(w, cfg->ack_timeout_ms);
    eb_jw_key(w, "ordering");
    eb_jw_str(w, cfg->ordering == EB_ORDER_KEY ? "key" : "none");
    eb_jw_key(w, "max_in_flight");
    eb_jw_uint(w, cfg->max_in_flight);
    eb_jw_key(w, "rate_limit");
    eb_jw_double(w, cfg->rate_limit);
    if (cfg->filter_json) {
        eb_jw_key(w, "filter");
        eb_jw_raw(w, cfg->filter_json, strlen(cfg->filter_json));
    }
    if (cfg->push) {
        eb_jw_key(w, "push");
        eb_push_cfg_write(w, cfg->push);
    }
    eb_jw_obj_close(w);
}
