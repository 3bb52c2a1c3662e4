/* metrics_proc.c - the /metrics families that are not per group: event
 * counters by type (bounded, "_other" beyond --max-types), build
 * info, storage state and the standard process_* metrics read from /proc
 * (Linux). Rendering only: the figures come from the bus's plain structs
 * and from the kernel. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "eventbus/version.h"

typedef struct type_ctx {
    eb_buf *o;
    int     k; /* which family */
} type_ctx;

static const struct { const char *name, *help; } type_families[] = {
    {"eventbus_events_published_total", "Events appended by this process, by type."},
    {"eventbus_duplicates_total", "Events answered as duplicates (not appended), by type."},
    {"eventbus_schema_rejections_total", "Events refused by their type's schema, by type."}};

static void type_line(void *arg, const char *type, const eb_bus_type_counts *c)
{
    type_ctx *t = arg;
    uint64_t v = t->k == 0 ? c->since_start : t->k == 1 ? c->duplicates : c->schema_rejected;
    if (t->k != 0 && v == 0)
        return;
    eb_buf_printf(t->o, "%s{type=\"", type_families[t->k].name);
    eb__api_prom_label(t->o, type);
    eb_buf_printf(t->o, "\"} %llu\n", (unsigned long long)v);
}

/* Per-type counters and the totals they add up to. */
void eb__api_prom_events(eb_bus *bus, const eb_bus_stats *st, eb_buf *o)
{
    type_ctx t = {o, 0};
    for (t.k = 0; t.k < 3; t.k++) {
        eb__api_prom_head(o, type_families[t.k].name, "counter", type_families[t.k].help);
        eb_bus_types_each(bus, type_line, &t);
    }
    eb__api_prom_head(o, "eventbus_published_events_total", "counter",
         "Events appended by this process (one per event, not per request).");
    eb_buf_printf(o, "eventbus_published_events_total %llu\n",
                  (unsigned long long)st->published_since_start);
    eb__api_prom_head(o, "eventbus_type_label_folded_total", "counter",
         "Events counted under type=\"_other\" because the type table was full.");
    eb_buf_printf(o, "eventbus_type_label_folded_total %llu\n",
                  (unsigned long long)st->types_folded);
    eb__api_prom_head(o, "eventbus_storage_degraded", "gauge",
         "1 while a store refuses writes: out of space or database unreachable (recovers by "
         "itself) or broken (/healthz).");
    eb_buf_printf(o, "eventbus_storage_degraded %d\n", st->degraded ? 1 : 0);
    eb__api_prom_head(o, "eventbus_build_info", "gauge", "Always 1; the version as a label.");
    eb_buf_printf(o, "eventbus_build_info{version=\"%d.%d.%d\"} 1\n", EB_VERSION_MAJOR,
                  EB_VERSION_MINOR, EB_VERSION_PATCH);
}

/* --- process_* (Linux /proc) ------------------------------------------------------ */

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

typedef struct proc_stat {
    double cpu_s, start_s, rss_bytes, vsize_bytes;
} proc_stat;

/* Fields of /proc/self/stat after the command name: utime (14), stime (15),
 * starttime (22), vsize (23), rss in pages (24). */
static int read_stat(proc_stat *ps)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st, start, vsize;
    long long rss;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                     "%*d %*d %llu %llu %lld",
                     &ut, &st, &start, &vsize, &rss) != 5)
        return -1;
    double tck = (double)sysconf(_SC_CLK_TCK), bt = boot_time();
    ps->cpu_s = (double)(ut + st) / tck;
    ps->start_s = bt < 0 ? 0 : bt + (double)start / tck;
    ps->rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
    ps->vsize_bytes = (double)vsize;
    return 0;
}

void eb__api_prom_process(eb_buf *o)
{
    proc_stat ps;
    if (read_stat(&ps) == 0) {
        eb__api_prom_head(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
        eb_buf_printf(o, "process_cpu_seconds_total %.2f\n", ps.cpu_s);
        eb__api_prom_head(o, "process_resident_memory_bytes", "gauge", "Resident memory size.");
        eb_buf_printf(o, "process_resident_memory_bytes %.0f\n", ps.rss_bytes);
        eb__api_prom_head(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
        eb_buf_printf(o, "process_virtual_memory_bytes %.0f\n", ps.vsize_bytes);
        eb__api_prom_head(o, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.");
        eb_buf_printf(o, "process_start_time_seconds %.2f\n", ps.start_s);
    }
    long fds = open_fds();
    if (fds >= 0) {
        eb__api_prom_head(o, "process_open_fds", "gauge", "Open file descriptors.");
        eb_buf_printf(o, "process_open_fds %ld\n", fds);
    }
    long max = sysconf(_SC_OPEN_MAX);
    if (max > 0) {
        eb__api_prom_head(o, "process_max_fds", "gauge", "Limit of open file descriptors.");
        eb_buf_printf(o, "process_max_fds %ld\n", max);
    }
}
