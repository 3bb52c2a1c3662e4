/* log.c - the log: open and close, retention, stats (recovery is in
 * recover.c, the writer thread and appends in writer.c, reads in
 * reader.c; their shared insides in log_impl.h; see log.h).
 *
 * Locks: `mu` guards the pending batch (appenders and the writer);
 * `rw` guards the segment list and indexes (readers share it; the writer
 * takes it exclusively to grow an index, publish a durable batch, roll, or
 * delete). The writer is the writer thread, or an inline appender holding
 * `mu` while the writer thread holds no batch (`writing`). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log_impl.h"
#include "util/clock.h"
#include "util/xmalloc.h"

static uint64_t real_us(void *arg)
{
    (void)arg;
    return eb_clock_wall_us();
}

uint64_t eb_log_first_seq(eb_log *l) { return atomic_load(&l->first); }
uint64_t eb_log_durable_seq(eb_log *l) { return atomic_load(&l->durable); }

uint64_t eb_log_next_seq(eb_log *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->next_seq;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void eb_log_set_durable_hook(eb_log *l, void (*hook)(void *, uint64_t), void *arg)
{
    pthread_mutex_lock(&l->mu);
    l->hook = hook;
    l->hook_arg = arg;
    pthread_mutex_unlock(&l->mu);
}

void eb_log_set_seal_hook(eb_log *l, void (*hook)(void *, const eb_log_seg_info *), void *arg)
{
    pthread_mutex_lock(&l->mu);
    l->seal_hook = hook;
    l->seal_arg = arg;
    pthread_mutex_unlock(&l->mu);
}

void eb_log_aux_path(const eb_log *l, uint64_t base, char *out, size_t n)
{
    eb__log_seg_path(l, base, EB_LOG_AUX_EXT, out, n);
}

size_t eb_log_sealed(eb_log *l, eb_log_seg_info *out, size_t max)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&l->rw);
    for (size_t i = 0; i < l->nsegs && l->segs[i]->sealed; i++, n++)
        if (n < max)
            out[n] = (eb_log_seg_info){l->segs[i]->base, l->segs[i]->count, l->segs[i]->size};
    pthread_rwlock_unlock(&l->rw);
    return n;
}

/* --- retention ---------------------------------------------------------------- */

/* Removes the oldest segment (sealed, caller holds rw exclusively), and
 * syncs the directory before another one may go: of a run of deletes a
 * power cut then keeps a prefix, never a segment after a gap (a gap
 * between segments refuses to open). */
static int drop_oldest(eb_log *l)
{
    seg *s = l->segs[0];
    char path[1200];
    eb__log_seg_path(l, s->base, "seg", path, sizeof path);
    unlink(path);
    eb__log_seg_path(l, s->base, "idx", path, sizeof path);
    unlink(path);
    eb__log_seg_path(l, s->base, EB_LOG_AUX_EXT, path, sizeof path);
    unlink(path);
    memmove(l->segs, l->segs + 1, (l->nsegs - 1) * sizeof *l->segs);
    l->nsegs--;
    atomic_store(&l->first, l->segs[0]->base);
    eb__log_seg_free(s);
    return eb__log_fsync_dir(l);
}

static uint64_t total_bytes(const eb_log *l)
{
    uint64_t t = 0;
    for (size_t i = 0; i < l->nsegs; i++)
        t += l->segs[i]->size;
    return t;
}

int eb_log_enforce_retention(eb_log *l, uint64_t now_us, uint64_t *deleted)
{
    uint64_t n = 0;
    int rc = 0;
    pthread_rwlock_wrlock(&l->rw);
    while (!rc && l->nsegs > 1 && l->segs[0]->sealed) {
        seg *s = l->segs[0];
        bool old = l->o.retention_ms && s->count &&
                   eb__log_idx_ts(s, s->count - 1) + l->o.retention_ms * 1000u < now_us;
        bool big = l->o.retention_bytes && total_bytes(l) > l->o.retention_bytes;
        if (!old && !big)
            break;
        rc = drop_oldest(l);
        n++;
    }
    pthread_rwlock_unlock(&l->rw);
    if (deleted)
        *deleted = n;
    return rc;
}

int eb_log_drop_before(eb_log *l, uint64_t seq, uint64_t *deleted)
{
    uint64_t n = 0;
    pthread_rwlock_wrlock(&l->rw);
    /* What makes the dropped records obsolete (the meta store's snapshot)
     * was only written under interval and never: sync it before the
     * deletes can reach the disk, or a power cut keeps neither. */
    int rc = 0;
    if (l->o.fsync != EB_FSYNC_ALWAYS && l->nsegs > 1 && l->segs[0]->sealed &&
        l->segs[0]->base + l->segs[0]->count <= seq)
        rc = fdatasync(l->segs[l->nsegs - 1]->fd) == 0 ? 0 : -errno;
    while (!rc && l->nsegs > 1 && l->segs[0]->sealed &&
           l->segs[0]->base + l->segs[0]->count <= seq) {
        rc = drop_oldest(l);
        n++;
    }
    pthread_rwlock_unlock(&l->rw);
    if (deleted)
        *deleted = n;
    return rc;
}

void eb_log_get_stats(eb_log *l, eb_log_stats *st)
{
    pthread_mutex_lock(&l->mu);
    *st = l->st;
    st->error = l->broken ? l->broken : l->full ? EB_ENOSPC : 0;
    pthread_mutex_unlock(&l->mu);
    pthread_rwlock_rdlock(&l->rw);
    st->bytes = total_bytes(l);
    st->segments = l->nsegs;
    pthread_rwlock_unlock(&l->rw);
}

/* --- open / close -------------------------------------------------------------- */

/* Creates one directory if missing. A new one is made durable by an fsync
 * of its parent: until then a power cut may drop its name, and with it
 * every segment in it, synced or not. */
static int make_dir(char *path)
{
    if (mkdir(path, 0755) != 0)
        return errno == EEXIST ? 0 : -errno;
    char *slash = strrchr(path, '/');
    const char *parent = ".";
    if (slash == path)
        parent = "/";
    else if (slash)
        *slash = '\0', parent = path;
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : fsync(fd) == 0 ? 0 : -errno;
    if (fd >= 0)
        close(fd);
    if (slash && slash != path)
        *slash = '/';
    return rc;
}

static int make_dirs(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = make_dir(tmp);
        if (rc)
            return rc;
        *p = '/';
    }
    return make_dir(tmp);
}

static void free_log(eb_log *l)
{
    for (size_t i = 0; i < l->nsegs; i++)
        eb__log_seg_free(l->segs[i]);
    free(l->segs);
    eb_buf_free(&l->pend.bytes);
    eb_buf_free(&l->work.bytes);
    free(l->pend.cbs);
    free(l->work.cbs);
    if (l->dir_fd >= 0)
        close(l->dir_fd);
    pthread_rwlock_destroy(&l->rw);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->wake);
    pthread_cond_destroy(&l->space);
    free(l);
}

int eb_log_open(const eb_log_opts *o, eb_log **out, eb_log_recovery *rep)
{
    eb_log_recovery dummy;
    if (!rep)
        rep = &dummy;
    memset(rep, 0, sizeof *rep);
    double t0 = eb_clock_mono_s();
    if (!o || !o->dir || strlen(o->dir) >= sizeof ((eb_log *)0)->dir)
        return EB_EINVAL;
    eb_log *l = eb_xcalloc(1, sizeof *l);
    l->o = *o;
    snprintf(l->dir, sizeof l->dir, "%s", o->dir);
    l->o.dir = l->dir;
    if (!l->o.clock)
        l->o.clock = real_us;
    if (!l->o.segment_bytes)
        l->o.segment_bytes = 64u << 20;
    if (!l->o.max_record_bytes)
        l->o.max_record_bytes = 16u << 20;
    if (!l->o.fsync_interval_ms)
        l->o.fsync_interval_ms = 100;
    /* Test hook: tests/powerloss rolls segments (and so deletes and
     * snapshots) in a small workload. Not a user setting. */
    const char *tsb = getenv("EB_TEST_SEGMENT_BYTES");
    if (tsb && strtoull(tsb, NULL, 10) >= 4096)
        l->o.segment_bytes = strtoull(tsb, NULL, 10);
    l->dir_fd = -1;
    pthread_rwlock_init(&l->rw, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->wake, NULL);
    pthread_cond_init(&l->space, NULL);
    int rc = make_dirs(l->dir);
    if (!rc && (l->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = -errno;
    if (!rc)
        rc = eb__log_recover(l, rep);
    if (!rc && pthread_create(&l->writer, NULL, eb__log_writer_main, l) != 0)
        rc = EB_ENOMEM;
    if (rc) {
        free_log(l);
        return rc;
    }
    rep->elapsed_ms = (eb_clock_mono_s() - t0) * 1e3;
    *out = l;
    return 0;
}

void eb_log_close(eb_log *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    pthread_cond_broadcast(&l->wake);
    pthread_cond_broadcast(&l->space);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    free_log(l);
}
