/* shim.c - LD_PRELOAD write tracker for the power-loss test (tests/powerloss).
 *
 * Loaded into eventbusd with EB_PL_DIR=<data dir> and EB_PL_TRACE=<file>.
 * Every call that changes a file or a directory under EB_PL_DIR (and every
 * sync of one) is done under one global lock and appended to the trace in
 * the order it happened, so concurrent threads come out totally ordered:
 *
 *   record = header (below) + path + path2 + data
 *
 * A file or directory is named by a file id (fid) given when it is created
 * (or first opened), so a rename or an unlink of an open file does not
 * confuse what a later write or sync refers to. Syncs are recorded after
 * they return: a reply sent after an fsync finds its record in the trace,
 * which is how the driver knows which acknowledged operations precede a cut
 * (it reads the trace's size when the 2xx arrives).
 *
 * Calls the model does not know (writev, fallocate, link, ...) on a traced
 * path are recorded as PL_UNSUPPORTED, which makes the generator refuse the
 * trace instead of silently modelling it wrong.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum {
    PL_CREATE = 1,  /* fid, path: a new file linked at path */
    PL_OPEN = 2,    /* fid, path: an existing file or directory opened */
    PL_WRITE = 3,   /* fid, a = offset, data */
    PL_TRUNC = 4,   /* fid, a = new size */
    PL_FSYNC = 5,   /* fid */
    PL_FDATASYNC = 6,
    PL_RENAME = 7,  /* path -> path2 (fid of the file moved) */
    PL_UNLINK = 8,  /* path (fid of the file removed) */
    PL_MKDIR = 9,   /* fid, path */
    PL_UNSUPPORTED = 10, /* path = the call's name */
};

typedef struct __attribute__((packed)) pl_hdr {
    uint32_t op;
    uint32_t tid;
    uint64_t mono_ns; /* CLOCK_MONOTONIC when recorded */
    int64_t  fid;
    int64_t  a;
    uint32_t plen, p2len;
    uint64_t dlen;
} pl_hdr;

#define MAX_FD 65536
#define MAX_INO 65536

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;
static char root[PATH_MAX];
static size_t root_len;
static int64_t fd_fid[MAX_FD]; /* 0 = not traced */
static int64_t next_fid = 1;
static struct { dev_t dev; ino_t ino; int64_t fid; } inos[MAX_INO];
static size_t ninos;
static int inited;

#define REAL(name) ((__typeof__(&name))real_fn(#name))
static void *real_fn(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p)
        abort();
    return p;
}

static void init(void)
{
    if (inited)
        return;
    inited = 1;
    const char *d = getenv("EB_PL_DIR"), *t = getenv("EB_PL_TRACE");
    if (!d || !t || strlen(d) >= sizeof root)
        return;
    snprintf(root, sizeof root, "%s", d);
    root_len = strlen(root);
    while (root_len > 1 && root[root_len - 1] == '/')
        root[--root_len] = '\0';
    trace_fd = (int)syscall(SYS_openat, AT_FDCWD, t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* The path relative to the data dir ("" for the dir itself), or NULL. */
static const char *rel(const char *path, char *buf, size_t n)
{
    init();
    if (trace_fd < 0 || !path)
        return NULL;
    if (path[0] != '/') {
        if (!getcwd(buf, n) || strlen(buf) + strlen(path) + 2 > n)
            return NULL;
        strcat(buf, "/");
        strcat(buf, path);
    } else {
        snprintf(buf, n, "%s", path);
    }
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    if (strncmp(buf, root, root_len) != 0 || (buf[root_len] && buf[root_len] != '/'))
        return NULL;
    const char *r = buf + root_len;
    while (*r == '/')
        r++;
    return r;
}

static void emit(uint32_t op, int64_t fid, int64_t a, const char *p, const char *p2,
                 const void *data, uint64_t dlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pl_hdr h = {op, (uint32_t)syscall(SYS_gettid), (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                fid, a, p ? (uint32_t)strlen(p) : 0, p2 ? (uint32_t)strlen(p2) : 0, dlen};
    struct iovec v[4] = {{&h, sizeof h}, {(void *)p, h.plen}, {(void *)p2, h.p2len},
                         {(void *)data, dlen}};
    size_t total = sizeof h + h.plen + h.p2len + dlen;
    ssize_t w = (ssize_t)syscall(SYS_writev, trace_fd, v, 4);
    if (w != (ssize_t)total)
        abort(); /* a short trace would make every later check wrong */
}

static int64_t ino_fid(dev_t dev, ino_t ino, int fresh)
{
    for (size_t i = 0; i < ninos; i++)
        if (inos[i].dev == dev && inos[i].ino == ino) {
            if (fresh)
                inos[i].fid = next_fid++;
            return inos[i].fid;
        }
    if (ninos == MAX_INO)
        abort();
    inos[ninos].dev = dev;
    inos[ninos].ino = ino;
    inos[ninos].fid = next_fid++;
    return inos[ninos++].fid;
}

static int64_t fid_of(int fd)
{
    return fd >= 0 && fd < MAX_FD ? fd_fid[fd] : 0;
}

static void unsupported(const char *what, int fd, const char *path);

static int traced_open(int dirfd, const char *path, int flags, mode_t mode)
{
    char buf[PATH_MAX];
    init();
    if (dirfd != AT_FDCWD)
        unsupported("openat relative to a directory fd", dirfd, NULL);
    const char *r = dirfd == AT_FDCWD ? rel(path, buf, sizeof buf) : NULL;
    if (!r)
        return (int)syscall(SYS_openat, dirfd, path, flags, mode);
    pthread_mutex_lock(&mu);
    struct stat st;
    int existed = stat(path, &st) == 0;
    int fd = (int)syscall(SYS_openat, dirfd, path, flags, mode);
    int e = errno;
    if (fd >= 0 && fd < MAX_FD && fstat(fd, &st) == 0) {
        int created = !existed && (flags & O_CREAT);
        int64_t fid = ino_fid(st.st_dev, st.st_ino, created);
        fd_fid[fd] = fid;
        emit(created ? PL_CREATE : PL_OPEN, fid, S_ISDIR(st.st_mode), r, NULL, NULL, 0);
        if (existed && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY)
            emit(PL_TRUNC, fid, 0, NULL, NULL, NULL, 0);
    }
    pthread_mutex_unlock(&mu);
    errno = e;
    return fd;
}

static mode_t va_mode(int flags, va_list ap)
{
    return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_FN(name)                                          \
    int name(const char *path, int flags, ...)                 \
    {                                                          \
        va_list ap;                                            \
        va_start(ap, flags);                                   \
        mode_t m = va_mode(flags, ap);                         \
        va_end(ap);                                            \
        return traced_open(AT_FDCWD, path, flags, m);          \
    }
#define OPENAT_FN(name)                                        \
    int name(int dirfd, const char *path, int flags, ...)      \
    {                                                          \
        va_list ap;                                            \
        va_start(ap, flags);                                   \
        mode_t m = va_mode(flags, ap);                         \
        va_end(ap);                                            \
        return traced_open(dirfd, path, flags, m);             \
    }
OPEN_FN(open)
OPEN_FN(open64)
OPENAT_FN(openat)
OPENAT_FN(openat64)
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags) { return traced_open(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags) { return traced_open(AT_FDCWD, path, flags, 0); }
int creat(const char *path, mode_t mode)
{
    return traced_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}
int creat64(const char *path, mode_t mode)
{
    return traced_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

static ssize_t traced_pwrite(int fd, const void *p, size_t n, off_t off, int use_pos)
{
    init();
    if (!fid_of(fd))
        return use_pos ? (ssize_t)syscall(SYS_write, fd, p, n)
                       : (ssize_t)syscall(SYS_pwrite64, fd, p, n, off);
    pthread_mutex_lock(&mu);
    if (use_pos)
        off = lseek(fd, 0, SEEK_CUR);
    ssize_t w = use_pos ? (ssize_t)syscall(SYS_write, fd, p, n)
                        : (ssize_t)syscall(SYS_pwrite64, fd, p, n, off);
    int e = errno;
    if (w > 0)
        emit(PL_WRITE, fid_of(fd), off, NULL, NULL, p, (uint64_t)w);
    pthread_mutex_unlock(&mu);
    errno = e;
    return w;
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off) { return traced_pwrite(fd, p, n, off, 0); }
ssize_t pwrite64(int fd, const void *p, size_t n, off_t off) { return traced_pwrite(fd, p, n, off, 0); }
ssize_t write(int fd, const void *p, size_t n) { return traced_pwrite(fd, p, n, 0, 1); }

static int traced_trunc(int fd, off_t len)
{
    init();
    if (!fid_of(fd))
        return (int)syscall(SYS_ftruncate, fd, len);
    pthread_mutex_lock(&mu);
    int rc = (int)syscall(SYS_ftruncate, fd, len);
    int e = errno;
    if (rc == 0)
        emit(PL_TRUNC, fid_of(fd), len, NULL, NULL, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return rc;
}
int ftruncate(int fd, off_t len) { return traced_trunc(fd, len); }
int ftruncate64(int fd, off_t len) { return traced_trunc(fd, len); }

static int traced_sync(int fd, uint32_t op, long nr)
{
    init();
    if (!fid_of(fd))
        return (int)syscall(nr, fd);
    pthread_mutex_lock(&mu);
    int rc = (int)syscall(nr, fd);
    int e = errno;
    if (rc == 0)
        emit(op, fid_of(fd), 0, NULL, NULL, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return rc;
}
int fsync(int fd) { return traced_sync(fd, PL_FSYNC, SYS_fsync); }
int fdatasync(int fd) { return traced_sync(fd, PL_FDATASYNC, SYS_fdatasync); }

int close(int fd)
{
    init();
    if (fid_of(fd)) {
        pthread_mutex_lock(&mu);
        fd_fid[fd] = 0;
        int rc = (int)syscall(SYS_close, fd);
        pthread_mutex_unlock(&mu);
        return rc;
    }
    return (int)syscall(SYS_close, fd);
}

static int64_t path_fid(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? ino_fid(st.st_dev, st.st_ino, 0) : 0;
}

int rename(const char *from, const char *to)
{
    char b1[PATH_MAX], b2[PATH_MAX];
    const char *r1 = rel(from, b1, sizeof b1), *r2 = rel(to, b2, sizeof b2);
    if (!r1 && !r2)
        return (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
    pthread_mutex_lock(&mu);
    int64_t fid = path_fid(from);
    int rc = (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
    int e = errno;
    if (rc == 0 && r1 && r2)
        emit(PL_RENAME, fid, 0, r1, r2, NULL, 0);
    else if (rc == 0)
        emit(PL_UNSUPPORTED, 0, 0, "rename across the data dir", NULL, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return rc;
}

int unlink(const char *path)
{
    char b[PATH_MAX];
    const char *r = rel(path, b, sizeof b);
    if (!r)
        return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
    pthread_mutex_lock(&mu);
    int64_t fid = path_fid(path);
    int rc = (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
    int e = errno;
    if (rc == 0)
        emit(PL_UNLINK, fid, 0, r, NULL, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return rc;
}

int mkdir(const char *path, mode_t mode)
{
    char b[PATH_MAX];
    const char *r = rel(path, b, sizeof b);
    if (!r)
        return (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
    pthread_mutex_lock(&mu);
    int rc = (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
    int e = errno;
    struct stat st;
    if (rc == 0 && stat(path, &st) == 0)
        emit(PL_MKDIR, ino_fid(st.st_dev, st.st_ino, 1), 0, r, NULL, NULL, 0);
    pthread_mutex_unlock(&mu);
    errno = e;
    return rc;
}

/* Calls the model does not cover: refused on traced files. */
static void unsupported(const char *what, int fd, const char *path)
{
    char b[PATH_MAX];
    if (fid_of(fd) || (path && rel(path, b, sizeof b))) {
        pthread_mutex_lock(&mu);
        emit(PL_UNSUPPORTED, 0, 0, what, NULL, NULL, 0);
        pthread_mutex_unlock(&mu);
    }
}

ssize_t writev(int fd, const struct iovec *v, int n)
{
    init();
    unsupported("writev", fd, NULL);
    return (ssize_t)syscall(SYS_writev, fd, v, n);
}
ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off)
{
    init();
    unsupported("pwritev", fd, NULL);
    return REAL(pwritev)(fd, v, n, off);
}
ssize_t pwritev64(int fd, const struct iovec *v, int n, off_t off)
{
    init();
    unsupported("pwritev", fd, NULL);
    return REAL(pwritev64)(fd, v, n, off);
}
int fallocate(int fd, int mode, off_t off, off_t len)
{
    init();
    unsupported("fallocate", fd, NULL);
    return REAL(fallocate)(fd, mode, off, len);
}
int fallocate64(int fd, int mode, off_t off, off_t len)
{
    init();
    unsupported("fallocate", fd, NULL);
    return REAL(fallocate64)(fd, mode, off, len);
}
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    init();
    unsupported("sync_file_range", fd, NULL); /* no durability: a test would trust it */
    return REAL(sync_file_range)(fd, off, n, flags);
}
int truncate(const char *path, off_t len)
{
    unsupported("truncate", -1, path);
    return REAL(truncate)(path, len);
}
int link(const char *a, const char *b)
{
    unsupported("link", -1, a);
    unsupported("link", -1, b);
    return REAL(link)(a, b);
}
int rmdir(const char *path)
{
    unsupported("rmdir", -1, path);
    return REAL(rmdir)(path);
}
int renameat(int d1, const char *a, int d2, const char *b)
{
    if (d1 == AT_FDCWD && d2 == AT_FDCWD)
        return rename(a, b);
    unsupported("renameat relative to a directory fd", d1, NULL);
    unsupported("renameat relative to a directory fd", d2, NULL);
    return REAL(renameat)(d1, a, d2, b);
}
int unlinkat(int d, const char *path, int flags)
{
    if (d == AT_FDCWD && !(flags & AT_REMOVEDIR))
        return unlink(path);
    if (d == AT_FDCWD)
        unsupported("rmdir", -1, path);
    else
        unsupported("unlinkat relative to a directory fd", d, NULL);
    return REAL(unlinkat)(d, path, flags);
}
int mkdirat(int d, const char *path, mode_t mode)
{
    if (d == AT_FDCWD)
        return mkdir(path, mode);
    unsupported("mkdirat relative to a directory fd", d, NULL);
    return REAL(mkdirat)(d, path, mode);
}
