/* client.h - internals shared by the files of libeventbus (not installed).
 *
 * A call builds its path in c->path and its JSON body in c->body (with the
 * shared JSON writer), then eb__call() sends it (to the servers of the URL
 * list in turn when one fails: "Failover" in client.c), parses the answer
 * into c->doc and records the outcome in c->err. Answers and parses are reused
 * from call to call, so a steady client does no allocation per request
 * beyond what results hand to the caller. */
#ifndef EB_LIB_CLIENT_H
#define EB_LIB_CLIENT_H

#include <stddef.h>

#include "eventbus.h"
#include "httpc.h"
#include "json/json.h"
#include "util/buf.h"
#include "util/ulid.h"

/* One server of the client's URL list. */
typedef struct eb__target {
    eb__http     http;        /* its connection */
    char        *url;         /* normalized base URL (owned) */
    char        *prefix;      /* path prefix of the URL, "" or "/x" (owned) */
    char        *key;         /* the URL compared with an Eb-Leader header: scheme,
                                 host in lower case, port, prefix (owned) */
} eb__target;

#define EB__MAX_URLS 16       /* servers in one client's list at most */

struct eb_client {
    eb__target  *targets;     /* the servers, in the order given (owned) */
    size_t       ntargets;
    size_t       cur;         /* the one that answered last: tried first */
    char        *urls;        /* the URL list as given (owned; eb_consume's helper) */
    char        *token;       /* the token in use, "" for none (owned; same use) */
    char        *cafile;      /* the CA file in use, "" for the system store (owned) */
    eb_ulid_gen  ids;         /* names the events published without an id */
    uint32_t     connect_timeout_ms;
    uint32_t     timeout_ms;  /* per request and server */
    const volatile sig_atomic_t *cancel; /* the user's flag (not owned) */
    eb_buf       path;        /* the request path being built (without prefix) */
    eb_buf       full;        /* a server's prefix + path, as sent */
    eb_buf       body;        /* the request body being built */
    eb_buf       answer;      /* the last answer's body */
    eb_json_doc *doc;         /* its parse (NULL after eb__take_answer) */
    eb_error     err;         /* what the last call did; strings in err_text */
    eb_buf       err_text;    /* server_code \0 message \0 details \0 */
    eb_json_doc *err_doc;     /* the parse of err's details (their strings) */
    eb_error_detail *details; /* err.detail's entries ... */
    const eb_error_detail **detail_ptrs; /* ... and the array of pointers to them */
    size_t       details_cap;
};

/* A second cancel flag for every connection of c (NULL: none): eb_consume's
 * stop flag cuts its long polls short. Not owned. */
void eb__set_stop(eb_client *c, const volatile sig_atomic_t *stop);

/* Writes a new event id (a ULID, 26 characters and a NUL) into out. */
void eb__new_id(eb_client *c, char out[EB_ULID_LEN + 1]);

/* Starts a path: lit (each server's prefix goes before it when it is sent).
 * Then add segments (percent-encoded), more
 * literal text, and query parameters (the first gets '?'). */
void eb__path(eb_client *c, const char *lit);
void eb__path_seg(eb_client *c, const char *seg);
void eb__path_lit(eb_client *c, const char *lit);
void eb__path_query(eb_client *c, const char *name, const char *value);

/* Starts the path /v1/groups/{group}{tail}; EB_EINVAL without a group. */
int eb__group_path(eb_client *c, const char *group, const char *tail);

/* Both: the group path, and a body with its object opened in *w. */
int eb__group_body(eb_client *c, const char *group, const char *tail, eb_jw *w);

/* Starts a JSON body; returns the writer over c->body. */
eb_jw *eb__body(eb_client *c, eb_jw *w);

/* Sends c->path (with c->body when has_body) and parses a 2xx answer. The
 * request must be safe to send twice (every call of the library is: a
 * publish carries its ids, settling is by delivery id, PUTs replace):
 * *root (may be NULL) is its JSON, NULL for an empty answer. extra_ms is
 * added to the timeout (long polls). Non-2xx answers become errors. */
int eb__call(eb_client *c, const char *method, bool has_body, uint32_t extra_ms,
             const eb_json **root);

/* Records a success that needed no request (nothing to send). */
void eb__ok(eb_client *c);
/* Records a local failure (no server answer) and returns code. */
int eb__fail(eb_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An answer without the member `what` the API documents: EB_EPROTO. */
int eb__bad_answer(eb_client *c, const char *what);

/* Hands the last answer (text and parse) to the caller, who then owns both;
 * the client makes new ones on its next call. */
void eb__take_answer(eb_client *c, char **text, size_t *len, eb_json_doc **doc);

/* JSON helpers for answers. */
bool eb__get_u64(const eb_json *obj, const char *key, uint64_t *out);
bool eb__get_bool(const eb_json *obj, const char *key, bool *out);
bool eb__get_str(const eb_json *obj, const char *key, char *out, size_t cap);
/* Writes the member key: an array of the n strings. */
void eb__write_strs(eb_jw *w, const char *key, const char *const *ids, size_t n);
/* Checks that text is one JSON value; EB_ESYNTAX with a message naming what. */
int eb__check_json(eb_client *c, const char *what, const char *text, size_t len);

/* --- structs that grow (see "Growing without breaking" in eventbus.h) -------- */

/* The size of the first version of struct T: up to and including its field
 * `last` of that version. Stays right when fields are added after it. */
#define EB__SIZE_TO(T, last) (offsetof(T, last) + sizeof(((T *)0)->last))

/* Copies the caller's options `in` (NULL: all zero) into dst (cur bytes, the
 * struct as this library knows it), checking in->size: EB_EINVAL below
 * min (the first version), EB_EUNSUPP when it is larger than cur and a
 * byte past cur is set (a field this library does not know). dst->size
 * becomes cur. what names the struct in the error message. */
int eb__opts_in(eb_client *c, const char *what, const void *in, size_t min, size_t cur,
                void *dst);
#define EB__OPTS_IN(c, T, last, in, dst) \
    eb__opts_in(c, #T, in, EB__SIZE_TO(T, last), sizeof(T), dst)

/* A caller-allocated result: EB_EINVAL if out (not NULL) has a size below
 * min. Checked before the request is sent. */
int eb__out_check(eb_client *c, const char *what, const void *out, size_t min);
#define EB__OUT_CHECK(c, T, last, out) eb__out_check(c, #T, out, EB__SIZE_TO(T, last))
/* Writes val (cur bytes, its size field included) into out (may be NULL),
 * at most out->size bytes; out->size is kept. */
void eb__out_put(void *out, const void *val, size_t cur);

/* --- typed results (eb_result_free) ----------------------------------------- */

/* Starts a result of `size` bytes (zeroed; NULL: out of memory) over the
 * last answer: it takes a copy of the text and the client's parse of it, so
 * the root eb__call gave, and the strings under it, now live as long as the
 * result. */
void *eb__result_new(eb_client *c, size_t size);
/* Zeroed memory that lives as long as the result (NULL: out of memory). */
void *eb__result_alloc(void *result, size_t size);
/* A string of the result's answer (obj[key] when a string, else NULL). */
const char *eb__str(const eb_json *obj, const char *key);
/* Reads a group object (summary, detail or a PUT answer) into g. */
int eb__group_info(eb_client *c, void *result, const eb_json *o, eb_groups_info *g);
/* Reads the group objects of arr into a result-owned array *out of *ng
 * (groups.c; the group list and the stats). */
int eb__group_array(eb_client *c, void *res, const eb_json *arr, size_t *ng,
                    const eb_groups_info *const **out);
/* admin.c: answer readers shared by the admin calls (admin.c, groups.c). */
/* Frees result (may be NULL) and fails c with EB_ENOMEM. */
int eb__no_memory(eb_client *c, const void *result);
/* GET path, whose answer must hold the array `member`: *arr. */
int eb__get_list(eb_client *c, const char *path, const char *member, const eb_json **arr);
/* An array member of o as a NULL-safe list: its length, or 0. */
size_t eb__arr_len(const eb_json *o, const char *key);
/* The unsigned integer member o[key], or 0. */
uint64_t eb__u64_of(const eb_json *o, const char *key);

#endif
