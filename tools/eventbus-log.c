/* eventbus-log - offline inspection of an eventbus log directory, like
 * mdb_dump or redis-check-aof. Reads the files directly; never writes.
 *
 *   eventbus-log dump DIR [--from SEQ] [--limit N] [--json]
 *   eventbus-log verify DIR
 *
 * DIR is a log directory (DATA/events or DATA/meta). verify reads every
 * record of every segment (CRCs, sequence continuity, complete batches),
 * checks each sealed segment's index file against it, and exits 0 when all
 * is well, 1 with a report otherwise. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eventbus/err.h"
#include "json/json.h"
#include "log/log.h"
#include "log/log_int.h"
#include "util/crc32c.h"

static const char *bus_event_json(const unsigned char *p, uint32_t len, size_t *n);

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The base seqs of DIR's segments, sorted, into *out (caller frees).
 * Prints why and returns false when DIR cannot be read or holds none. */
static bool list(const char *dir, uint64_t **out, size_t *count)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    *out = NULL;
    *count = 0;
    if (!d) {
        fprintf(stderr, "eventbus-log: cannot open %s: %s\n", dir, strerror(errno));
        return false;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".seg"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *out = realloc(*out, cap * sizeof **out);
        }
        (*out)[n++] = strtoull(e->d_name, NULL, 10);
    }
    closedir(d);
    if (!n) {
        fprintf(stderr, "eventbus-log: no segments in %s (a log directory is DATA/events or "
                        "DATA/meta)\n", dir);
        return false;
    }
    if (n > 1)
        qsort(*out, n, sizeof **out, cmp_u64);
    *count = n;
    return true;
}

static void fmt_time(uint64_t us, char out[40])
{
    time_t s = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t k = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, 40 - k, ".%06uZ", (unsigned)(us % 1000000u));
}

static bool printable(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t')
            return false;
    return true;
}

/* Event records (type 1) start with a 16-byte binary prefix (see
 * src/bus/event.h); show their JSON part. */
static const char *bus_event_json(const unsigned char *p, uint32_t len, size_t *n)
{
    if (len < 16 || p[0] != 1)
        return NULL;
    size_t tl = p[1], il = p[2], kl = (size_t)(p[4] | p[5] << 8);
    size_t jl = (size_t)eb__get32(p + 12);
    if (16 + tl + il + kl + jl != len)
        return NULL;
    *n = jl;
    return (const char *)p + 16 + tl + il + kl;
}

static void dump_rec(const eb_log_rhdr *h, const unsigned char *p, bool json)
{
    char t[40];
    fmt_time(h->ts_us, t);
    size_t n = h->len;
    const char *text = h->type == 1 ? bus_event_json(p, h->len, &n) : NULL;
    if (!text && printable(p, h->len))
        text = (const char *)p;
    if (json) {
        eb_buf b = EB_BUF_INIT;
        eb_jw w;
        eb_jw_init(&w, &b);
        eb_jw_obj_open(&w);
        eb_jw_key(&w, "seq");
        eb_jw_uint(&w, h->seq);
        eb_jw_key(&w, "time");
        eb_jw_str(&w, t);
        eb_jw_key(&w, "type");
        eb_jw_uint(&w, h->type);
        eb_jw_key(&w, "flags");
        eb_jw_uint(&w, h->flags);
        eb_jw_key(&w, "len");
        eb_jw_uint(&w, h->len);
        eb_jw_key(&w, "payload");
        if (text)
            eb_jw_strn(&w, text, n);
        else
            eb_jw_null(&w);
        eb_jw_obj_close(&w);
        printf("%s\n", b.data);
        eb_buf_free(&b);
        return;
    }
    printf("%" PRIu64 "\t%s\ttype=%u flags=%u len=%u\t", h->seq, t, h->type, h->flags, h->len);
    if (text)
        printf("%.*s\n", (int)n, text);
    else
        printf("(binary)\n");
}

/* Walks one segment file, calling visit for each good record. Returns
 * the number of records, and sets *problem when the walk stopped early. */
static uint64_t walk(const char *path, uint64_t expect_base, const char **problem,
                     uint64_t *bad_at, void (*visit)(const eb_log_rhdr *, const unsigned char *, void *),
                     void *arg)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    *problem = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *problem = "cannot open";
        return 0;
    }
    unsigned char *data = malloc((size_t)st.st_size + 1);
    if (!data || read(fd, data, (size_t)st.st_size) != st.st_size) {
        *problem = "cannot read";
        close(fd);
        free(data);
        return 0;
    }
    close(fd);
    uint64_t base, n = 0, off = EB_LOG_SEG_HDR, size = (uint64_t)st.st_size, pending = 0;
    if (size < EB_LOG_SEG_HDR || eb__log_seg_hdr_check(data, &base) || base != expect_base) {
        *problem = "bad segment header";
        *bad_at = 0;
        free(data);
        return 0;
    }
    while (off < size) {
        eb_log_rhdr h;
        if (size - off < EB_LOG_REC_HDR) {
            *problem = "truncated record header";
            break;
        }
        eb__log_rhdr_decode(data + off, &h);
        if (h.len > size - off - EB_LOG_REC_HDR) {
            *problem = "truncated record";
            break;
        }
        if (eb__log_rec_crc(data + off, data + off + EB_LOG_REC_HDR, h.len) != h.crc) {
            *problem = "checksum mismatch";
            break;
        }
        if (h.seq != base + n) {
            *problem = "sequence number out of order";
            break;
        }
        if (visit)
            visit(&h, data + off + EB_LOG_REC_HDR, arg);
        pending = h.batch_left;
        off += EB_LOG_REC_HDR + h.len;
        n++;
    }
    if (!*problem && pending)
        *problem = "incomplete batch at the end";
    *bad_at = off;
    free(data);
    return n;
}

typedef struct dump_arg {
    uint64_t from, limit, shown;
    bool     json;
} dump_arg;

static void dump_visit(const eb_log_rhdr *h, const unsigned char *p, void *arg)
{
    dump_arg *d = arg;
    if (h->seq < d->from || d->shown >= d->limit)
        return;
    d->shown++;
    dump_rec(h, p, d->json);
}

/* A whole decimal number, into *out; false if s is anything else. */
static bool number(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno)
        return false;
    *out = v;
    return true;
}

static int cmd_dump(const char *dir, int argc, char **argv)
{
    dump_arg d = {0, UINT64_MAX, 0, false};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            d.json = true;
        else if (!strcmp(argv[i], "--from") && i + 1 < argc && number(argv[i + 1], &d.from))
            i++;
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc && number(argv[i + 1], &d.limit))
            i++;
        else if ((!strcmp(argv[i], "--from") || !strcmp(argv[i], "--limit")) && i + 1 < argc) {
            fprintf(stderr, "eventbus-log dump: %s needs a number (got '%s')\n", argv[i],
                    argv[i + 1]);
            return 2;
        } else {
            bool known = !strcmp(argv[i], "--from") || !strcmp(argv[i], "--limit");
            fprintf(stderr, "eventbus-log dump: %s '%s' (see --help)\n",
                    known ? "a value is missing after" : "unknown option", argv[i]);
            return 2;
        }
    }
    uint64_t *bases;
    size_t n;
    if (!list(dir, &bases, &n))
        return 1;
    for (size_t i = 0; i < n && d.shown < d.limit; i++) {
        if (i + 1 < n && bases[i + 1] <= d.from)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, bases[i]);
        const char *problem;
        uint64_t at;
        walk(path, bases[i], &problem, &at, dump_visit, &d);
        if (problem)
            fprintf(stderr, "%s: %s at offset %" PRIu64 " (later records not shown)\n", path,
                    problem, at);
    }
    free(bases);
    return 0;
}

/* Compares a sealed segment's .idx file with what the segment holds. */
static const char *check_index(const char *dir, uint64_t base, uint64_t count, uint64_t seg_size)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".idx", dir, base);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return "index file missing (eventbusd rebuilds it at start)";
    unsigned char h[EB_LOG_IDX_HDR];
    const char *why = NULL;
    if (read(fd, h, sizeof h) != (ssize_t)sizeof h || memcmp(h, EB_LOG_IDX_MAGIC, 8))
        why = "index header unreadable";
    else if (eb__get64(h + 16) != base || eb__get64(h + 24) != count)
        why = "index does not match the segment's records";
    else if (eb__get64(h + 32) != seg_size)
        why = "index describes another segment size (stale)";
    close(fd);
    return why;
}

static int cmd_verify(const char *dir)
{
    uint64_t *bases;
    size_t n;
    if (!list(dir, &bases, &n))
        return 1;
    int bad = 0;
    uint64_t records = 0, expect = bases[0];
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, bases[i]);
        const char *problem;
        uint64_t at;
        if (bases[i] != expect) {
            printf("%s: starts at seq %" PRIu64 ", expected %" PRIu64 " (gap)\n", path,
                   bases[i], expect);
            bad = 1;
        }
        uint64_t c = walk(path, bases[i], &problem, &at, NULL, NULL);
        records += c;
        expect = bases[i] + c;
        bool last = i + 1 == n;
        if (problem) {
            printf("%s: %s at offset %" PRIu64 " after %" PRIu64 " records%s\n", path, problem,
                   at, c, last ? " (a torn tail: eventbusd truncates it at start)" : "");
            bad = 1;
        } else if (!last) {
            struct stat st;
            stat(path, &st);
            const char *why = check_index(dir, bases[i], c, (uint64_t)st.st_size);
            if (why) {
                printf("%s: %s\n", path, why);
                bad = 1;
            }
        }
    }
    printf("%s: %zu segments, %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64 "): %s\n", dir, n,
           records, bases[0], expect - 1, bad ? "PROBLEMS FOUND" : "ok");
    free(bases);
    return bad;
}

static const char usage[] =
    "usage: eventbus-log dump DIR [--from SEQ] [--limit N] [--json]\n"
    "       eventbus-log verify DIR\n"
    "DIR is a log directory, e.g. ./data/events or ./data/meta\n"
    "\n"
    "Commands:\n"
    "  dump DIR        print the records of the log, one a line, in sequence order\n"
    "  verify DIR      check every record (CRC, sequence, whole batches) and each\n"
    "                  sealed segment's index; exit 0 if all is well, 1 otherwise\n"
    "\n"
    "Options:\n"
    "  --from SEQ      dump from this sequence number (default: the first)\n"
    "  --limit N       dump at most N records\n"
    "  --json          dump one JSON object a line\n"
    "  -h, --help      this help\n";

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "dump") && strcmp(argv[1], "verify")) {
        fprintf(stderr, "eventbus-log: unknown %s '%s' (see --help)\n",
                argv[1][0] == '-' ? "option" : "command", argv[1]);
        return 2;
    }
    if (argc < 3) {
        fprintf(stderr, "eventbus-log %s: which log directory? (see --help)\n", argv[1]);
        return 2;
    }
    if (!strcmp(argv[1], "dump"))
        return cmd_dump(argv[2], argc - 3, argv + 3);
    if (argc > 3) {
        fprintf(stderr, "eventbus-log verify: unexpected argument '%s' (see --help)\n", argv[3]);
        return 2;
    }
    return cmd_verify(argv[2]);
}
