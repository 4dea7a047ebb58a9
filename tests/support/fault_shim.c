/* Test support: an LD_PRELOAD shim that injects storage and process faults
 * into a real alcove-relay or alcove process.  Built as a shared library
 * (tests/CMakeLists.txt, "fault injection" section); its path reaches the
 * tests in $ALCOVE_FAULT_SHIM.
 *
 * Controls:
 *   ALCOVE_FAULT_CTL=FILE  a mapped fault_ctl (fault_ctl.h): switch on and off
 *                          mid-run EIO on fsync/fdatasync/msync, ENOSPC on
 *                          writes, and record an undo log for power-loss
 *                          emulation, for files whose path contains match.
 *   ALCOVE_FAULT_KILL_AFTER_SEND=N
 *                          SIGKILL the process right after a send() of at
 *                          least N bytes succeeded (the bytes are in the
 *                          kernel; the reply is never read).
 *
 * The whole file is empty unless ALCOVE_FAULT_SHIM_BUILD is defined: the
 * test-support static library globs every .c file in tests/support and must
 * not pick up these interposers. */
typedef int fault_shim_translation_unit_is_not_empty;

#ifdef ALCOVE_FAULT_SHIM_BUILD

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fault_ctl.h"

#define MAX_FD 65536
#define FD_MATCH 1u
#define FD_SYNCWRITE 2u /* opened O_SYNC/O_DSYNC: every write is durable */

static uint8_t fd_flags[MAX_FD];
static fault_ctl *ctl;
static int undo_fd = -1;
static pthread_mutex_t undo_mu = PTHREAD_MUTEX_INITIALIZER;
static long kill_after_send;

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*close_fn)(int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef int (*sync_fn)(int);
typedef int (*msync_fn)(void *, size_t, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);

static open_fn real_open, real_open64;
static openat_fn real_openat, real_openat64;
static close_fn real_close;
static write_fn real_write;
static pwrite_fn real_pwrite, real_pwrite64;
static writev_fn real_writev;
static pwritev_fn real_pwritev;
static pread_fn real_pread;
static sync_fn real_fsync, real_fdatasync;
static msync_fn real_msync;
static send_fn real_send;

static void *next_sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
    if (real_write != NULL)
        return;
    real_open = (open_fn)next_sym("open");
    real_open64 = (open_fn)next_sym("open64");
    real_openat = (openat_fn)next_sym("openat");
    real_openat64 = (openat_fn)next_sym("openat64");
    real_close = (close_fn)next_sym("close");
    real_pwrite = (pwrite_fn)next_sym("pwrite");
    real_pwrite64 = (pwrite_fn)next_sym("pwrite64");
    real_writev = (writev_fn)next_sym("writev");
    real_pwritev = (pwritev_fn)next_sym("pwritev");
    real_pread = (pread_fn)next_sym("pread");
    real_fsync = (sync_fn)next_sym("fsync");
    real_fdatasync = (sync_fn)next_sym("fdatasync");
    real_msync = (msync_fn)next_sym("msync");
    real_send = (send_fn)next_sym("send");
    real_write = (write_fn)next_sym("write");
}

__attribute__((constructor)) static void shim_init(void)
{
    resolve();
    const char *k = getenv("ALCOVE_FAULT_KILL_AFTER_SEND");
    if (k != NULL)
        kill_after_send = atol(k);
    const char *path = getenv("ALCOVE_FAULT_CTL");
    if (path == NULL || *path == '\0')
        return;
    int fd = real_open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    void *p = mmap(NULL, sizeof(fault_ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    real_close(fd);
    if (p == MAP_FAILED)
        return;
    ctl = p;
    if (ctl->magic != FAULT_CTL_MAGIC) {
        ctl = NULL;
        return;
    }
    __atomic_store_n(&ctl->shim_loaded, (uint32_t)getpid(), __ATOMIC_SEQ_CST);
    if (ctl->undo_path[0] != '\0')
        undo_fd = real_open(ctl->undo_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static uint32_t ctl_get(const uint32_t *field)
{
    return __atomic_load_n(field, __ATOMIC_SEQ_CST);
}

static void ctl_add(uint64_t *field)
{
    __atomic_fetch_add(field, 1, __ATOMIC_SEQ_CST);
}

static int matched(int fd)
{
    return ctl != NULL && fd >= 0 && fd < MAX_FD && (fd_flags[fd] & FD_MATCH);
}

static void note_open(int fd, const char *path, int flags)
{
    if (fd < 0 || fd >= MAX_FD)
        return;
    uint8_t f = 0;
    if (ctl != NULL && ctl->match[0] != '\0' && path != NULL && strstr(path, ctl->match) != NULL) {
        f |= FD_MATCH;
        if (flags & (O_SYNC | O_DSYNC))
            f |= FD_SYNCWRITE;
    }
    fd_flags[fd] = f;
}

static void undo_append(const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = real_write(undo_fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void undo_marker(uint32_t type)
{
    if (undo_fd < 0)
        return;
    fault_undo_rec r = {type, 0, 0, 0, mono_us()};
    pthread_mutex_lock(&undo_mu);
    undo_append(&r, sizeof r);
    pthread_mutex_unlock(&undo_mu);
}

/* Before a write of len bytes at off on a matched fd: log the old bytes. */
static void undo_before_write(int fd, off_t off, size_t len)
{
    if (undo_fd < 0 || !matched(fd) || (fd_flags[fd] & FD_SYNCWRITE) || len == 0 || off < 0)
        return;
    int saved = errno;
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint8_t *old = calloc(1, len);
    if (old != NULL) {
        if ((uint64_t)off < size) {
            size_t have = size - (uint64_t)off < len ? (size_t)(size - (uint64_t)off) : len;
            size_t got = 0;
            while (got < have) {
                ssize_t r = real_pread(fd, old + got, have - got, off + (off_t)got);
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
        }
        fault_undo_rec r = {FAULT_UNDO_WRITE, (uint32_t)len, (uint64_t)off, size, mono_us()};
        pthread_mutex_lock(&undo_mu);
        undo_append(&r, sizeof r);
        undo_append(old, len);
        pthread_mutex_unlock(&undo_mu);
        free(old);
    }
    errno = saved;
}

/* 1 if this write must fail with ENOSPC. */
static int fail_write(int fd)
{
    if (!matched(fd))
        return 0;
    ctl_add(&ctl->writes);
    if (ctl_get(&ctl->write_enospc)) {
        ctl_add(&ctl->writes_failed);
        errno = ENOSPC;
        return 1;
    }
    return 0;
}

/* 1 if this sync must fail with EIO. */
static int fail_sync(void)
{
    ctl_add(&ctl->syncs);
    int fail = ctl_get(&ctl->sync_eio) != 0;
    if (!fail) {
        uint32_t n = ctl_get(&ctl->sync_fail_next);
        while (n > 0 && !__atomic_compare_exchange_n(&ctl->sync_fail_next, &n, n - 1, 0,
                                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            ;
        fail = n > 0;
    }
    if (fail) {
        ctl_add(&ctl->syncs_failed);
        undo_marker(FAULT_UNDO_SYNC_FAIL);
        errno = EIO;
    }
    return fail;
}

static int do_sync(sync_fn fn, int fd)
{
    resolve();
    if (!matched(fd))
        return fn(fd);
    if (fail_sync())
        return -1;
    int rc = fn(fd);
    if (rc == 0)
        undo_marker(FAULT_UNDO_SYNC_OK);
    else
        undo_marker(FAULT_UNDO_SYNC_FAIL);
    return rc;
}

static mode_t open_mode(int flags, va_list ap)
{
    if (flags & (O_CREAT | O_TMPFILE))
        return (mode_t)va_arg(ap, int);
    return 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    resolve();
    int fd = real_open(path, flags, mode);
    note_open(fd, path, flags);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    resolve();
    int fd = (real_open64 ? real_open64 : real_open)(path, flags, mode);
    note_open(fd, path, flags);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    resolve();
    int fd = real_openat(dirfd, path, flags, mode);
    note_open(fd, path, flags);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    resolve();
    int fd = (real_openat64 ? real_openat64 : real_openat)(dirfd, path, flags, mode);
    note_open(fd, path, flags);
    return fd;
}

int close(int fd)
{
    resolve();
    if (fd >= 0 && fd < MAX_FD)
        fd_flags[fd] = 0;
    return real_close(fd);
}

static off_t cur_off(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) {
        struct stat st;
        return fstat(fd, &st) == 0 ? st.st_size : -1;
    }
    return lseek(fd, 0, SEEK_CUR);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    resolve();
    if (matched(fd)) {
        if (fail_write(fd))
            return -1;
        undo_before_write(fd, cur_off(fd), n);
    }
    ssize_t r = real_write(fd, buf, n);
    if (kill_after_send > 0 && r >= kill_after_send) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            raise(SIGKILL);
    }
    return r;
}

static ssize_t pwrite_common(pwrite_fn fn, int fd, const void *buf, size_t n, off_t off)
{
    resolve();
    if (matched(fd)) {
        if (fail_write(fd))
            return -1;
        undo_before_write(fd, off, n);
    }
    return fn(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    resolve();
    return pwrite_common(real_pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    resolve();
    return pwrite_common(real_pwrite64 ? real_pwrite64 : real_pwrite, fd, buf, n, off);
}

static size_t iov_len(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    resolve();
    if (matched(fd)) {
        if (fail_write(fd))
            return -1;
        undo_before_write(fd, cur_off(fd), iov_len(iov, cnt));
    }
    return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    resolve();
    if (matched(fd)) {
        if (fail_write(fd))
            return -1;
        undo_before_write(fd, off, iov_len(iov, cnt));
    }
    return real_pwritev(fd, iov, cnt, off);
}

int fsync(int fd)
{
    resolve();
    return do_sync(real_fsync, fd);
}

int fdatasync(int fd)
{
    resolve();
    return do_sync(real_fdatasync, fd);
}

int msync(void *addr, size_t len, int flags)
{
    resolve();
    /* A mapping cannot be traced back to its fd cheaply: with a control
     * block present, every synchronous msync counts as a matched sync. */
    if (ctl != NULL && (flags & MS_SYNC)) {
        if (fail_sync())
            return -1;
        int rc = real_msync(addr, len, flags);
        undo_marker(rc == 0 ? FAULT_UNDO_SYNC_OK : FAULT_UNDO_SYNC_FAIL);
        return rc;
    }
    return real_msync(addr, len, flags);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    resolve();
    ssize_t r = real_send(fd, buf, n, flags);
    if (kill_after_send > 0 && r >= kill_after_send)
        raise(SIGKILL);
    return r;
}

#endif /* ALCOVE_FAULT_SHIM_BUILD */
