/* Test support: an LD_PRELOAD shim that injects storage and process faults
 * into a real alcove-relay or alcove process.  Built as a shared library
 * (tests/CMakeLists.txt, "fault injection" section); its path reaches the
 * tests in $ALCOVE_FAULT_SHIM.
 *
 * Controls:
 *   ALCOVE_FAULT_CTL=FILE  a mapped fault_ctl (fault_ctl.h): switch on and off
 *                          mid-run EIO on fsync/fdatasync/msync, ENOSPC on
 *                          writes, and record an undo log for power-loss
 *                          emulation, for files whose path contains one of
 *                          the patterns of match ("data.mdb|journal"); each
 *                          file is known by its pattern's index, and the
 *                          switches can be limited to some (fault_files).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fault_ctl.h"

#define MAX_FD 65536
#define FD_MATCH 1u
#define FD_SYNCWRITE 2u /* opened O_SYNC/O_DSYNC: every write is durable */
#define FD_SEEN 4u      /* opened through the shim (rename scans these) */
#define MAX_MAPS 64

static uint8_t fd_flags[MAX_FD];
static uint8_t fd_file[MAX_FD]; /* index of the matched pattern */
static int fd_high;             /* highest fd marked FD_SEEN */
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
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned int);

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
static mmap_fn real_mmap, real_mmap64;
static munmap_fn real_munmap;
static rename_fn real_rename;
static renameat_fn real_renameat;
static renameat2_fn real_renameat2;

/* Shared mappings of matched files, so that an msync is known by file. */
static struct {
    uintptr_t addr;
    size_t len;
    int file;
} maps[MAX_MAPS];
static pthread_mutex_t maps_mu = PTHREAD_MUTEX_INITIALIZER;

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
    real_mmap = (mmap_fn)next_sym("mmap");
    real_mmap64 = (mmap_fn)next_sym("mmap64");
    real_munmap = (munmap_fn)next_sym("munmap");
    real_rename = (rename_fn)next_sym("rename");
    real_renameat = (renameat_fn)next_sym("renameat");
    real_renameat2 = (renameat2_fn)next_sym("renameat2");
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
    void *p = real_mmap(NULL, sizeof(fault_ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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

/* Index of the first pattern of match that path contains, or -1. */
static int match_file(const char *path)
{
    char pat[sizeof ctl->match];
    if (ctl == NULL || path == NULL)
        return -1;
    for (int i = 0; i < FAULT_MAX_FILES; i++)
        if (fault_match_pattern(ctl->match, i, pat, sizeof pat) >= 0 && strstr(path, pat) != NULL)
            return i;
    return -1;
}

/* Index of the pattern path's last component equals (a rename's target),
 * or -1. */
static int match_name(const char *path)
{
    char pat[sizeof ctl->match];
    if (ctl == NULL || path == NULL)
        return -1;
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    for (int i = 0; i < FAULT_MAX_FILES; i++)
        if (fault_match_pattern(ctl->match, i, pat, sizeof pat) >= 0 && strcmp(base, pat) == 0)
            return i;
    return -1;
}

static void mark_fd(int fd, int file, int flags)
{
    uint8_t f = FD_SEEN;
    if (file >= 0) {
        f |= FD_MATCH;
        if (flags & (O_SYNC | O_DSYNC))
            f |= FD_SYNCWRITE;
    }
    fd_file[fd] = (uint8_t)(file >= 0 ? file : 0);
    fd_flags[fd] = f;
    if (fd > __atomic_load_n(&fd_high, __ATOMIC_RELAXED))
        __atomic_store_n(&fd_high, fd, __ATOMIC_RELAXED);
}

static void note_open(int fd, const char *path, int flags)
{
    if (fd < 0 || fd >= MAX_FD)
        return;
    mark_fd(fd, match_file(path), flags);
}

/* 1 if the fault switches act on file index f. */
static int selected(int f)
{
    uint32_t mask = ctl_get(&ctl->fault_files);
    return mask == 0 || (mask & FAULT_FILE(f)) != 0;
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

static void undo_record(uint32_t type, int file, uint64_t old_size)
{
    if (undo_fd < 0)
        return;
    int saved = errno;
    fault_undo_rec r = {type, 0, 0, old_size, mono_us(), (uint32_t)file, 0};
    pthread_mutex_lock(&undo_mu);
    undo_append(&r, sizeof r);
    pthread_mutex_unlock(&undo_mu);
    errno = saved;
}

static void undo_marker(uint32_t type, int file)
{
    undo_record(type, file, 0);
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
        fault_undo_rec r = {FAULT_UNDO_WRITE, (uint32_t)len, (uint64_t)off, size, mono_us(),
                            fd_file[fd], 0};
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
    int f = fd_file[fd];
    ctl_add(&ctl->writes);
    ctl_add(&ctl->file_writes[f]);
    if (ctl_get(&ctl->write_enospc) && selected(f)) {
        ctl_add(&ctl->writes_failed);
        ctl_add(&ctl->file_writes_failed[f]);
        errno = ENOSPC;
        return 1;
    }
    return 0;
}

/* 1 if this sync of file index f must fail with EIO. */
static int fail_sync(int f)
{
    ctl_add(&ctl->syncs);
    ctl_add(&ctl->file_syncs[f]);
    int fail = 0;
    if (selected(f)) {
        fail = ctl_get(&ctl->sync_eio) != 0;
        if (!fail) {
            uint32_t n = ctl_get(&ctl->sync_fail_next);
            while (n > 0 && !__atomic_compare_exchange_n(&ctl->sync_fail_next, &n, n - 1, 0,
                                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                ;
            fail = n > 0;
        }
    }
    if (fail) {
        ctl_add(&ctl->syncs_failed);
        ctl_add(&ctl->file_syncs_failed[f]);
        undo_marker(FAULT_UNDO_SYNC_FAIL, f);
        errno = EIO;
    }
    return fail;
}

static int do_sync(sync_fn fn, int fd)
{
    resolve();
    if (!matched(fd))
        return fn(fd);
    int f = fd_file[fd];
    if (fail_sync(f))
        return -1;
    int rc = fn(fd);
    undo_marker(rc == 0 ? FAULT_UNDO_SYNC_OK : FAULT_UNDO_SYNC_FAIL, f);
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
    if (fd >= 0 && fd < MAX_FD) {
        fd_flags[fd] = 0;
        fd_file[fd] = 0;
    }
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

/* The file index of the shared mapping of a matched file that holds addr,
 * or -1. */
static int map_file(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    int f = -1;
    pthread_mutex_lock(&maps_mu);
    for (int i = 0; i < MAX_MAPS && f < 0; i++)
        if (maps[i].len != 0 && a >= maps[i].addr && a - maps[i].addr < maps[i].len)
            f = maps[i].file;
    pthread_mutex_unlock(&maps_mu);
    return f;
}

int msync(void *addr, size_t len, int flags)
{
    resolve();
    /* A synchronous msync of a shared mapping of a matched file is a sync of
     * that file (writes through the mapping are not in the undo log). */
    int f = ctl != NULL && (flags & MS_SYNC) ? map_file(addr) : -1;
    if (f >= 0) {
        if (fail_sync(f))
            return -1;
        int rc = real_msync(addr, len, flags);
        undo_marker(rc == 0 ? FAULT_UNDO_SYNC_OK : FAULT_UNDO_SYNC_FAIL, f);
        return rc;
    }
    return real_msync(addr, len, flags);
}

static void *mmap_common(mmap_fn fn, void *addr, size_t len, int prot, int flags, int fd,
                         off_t off)
{
    void *p = fn != NULL ? fn(addr, len, prot, flags, fd, off)
                         : (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && len > 0 && matched(fd) && (flags & MAP_SHARED)) {
        pthread_mutex_lock(&maps_mu);
        for (int i = 0; i < MAX_MAPS; i++)
            if (maps[i].len == 0) {
                maps[i].addr = (uintptr_t)p;
                maps[i].len = len;
                maps[i].file = fd_file[fd];
                break;
            }
        pthread_mutex_unlock(&maps_mu);
    }
    return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    return mmap_common(real_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    return mmap_common(real_mmap64 ? real_mmap64 : real_mmap, addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
    resolve();
    int rc = real_munmap != NULL ? real_munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
    if (rc == 0) {
        uintptr_t a = (uintptr_t)addr;
        pthread_mutex_lock(&maps_mu);
        for (int i = 0; i < MAX_MAPS; i++)
            if (maps[i].len != 0 && maps[i].addr >= a && maps[i].addr - a < len)
                maps[i].len = 0;
        pthread_mutex_unlock(&maps_mu);
    }
    return rc;
}

/* Renames.  A rename whose target's last component is one of the patterns
 * creates (or replaces) that file: the undo log records when, so that a
 * power cut before it can leave the name free (a file written under a
 * temporary name and renamed into place did not exist before), and fds
 * already open on the renamed file become matched (a temporary name need
 * not contain the pattern). */
typedef struct rename_note {
    int file;
    uint64_t old_size; /* of the file the rename replaces; UINT64_MAX: none */
} rename_note;

static rename_note rename_before(int dirfd, const char *to)
{
    rename_note n = {match_name(to), UINT64_MAX};
    struct stat st;
    if (n.file >= 0 && fstatat(dirfd, to, &st, 0) == 0)
        n.old_size = (uint64_t)st.st_size;
    return n;
}

static void rename_after(const rename_note *n, int rc, int dirfd, const char *to)
{
    if (n->file < 0 || rc != 0)
        return;
    int saved = errno;
    undo_record(FAULT_UNDO_RENAME, n->file, n->old_size);
    struct stat st, fst;
    if (fstatat(dirfd, to, &st, 0) == 0) {
        int high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);
        for (int fd = 0; fd <= high && fd < MAX_FD; fd++) {
            if ((fd_flags[fd] & (FD_SEEN | FD_MATCH)) != FD_SEEN || fstat(fd, &fst) != 0 ||
                fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
                continue;
            int fl = fcntl(fd, F_GETFL);
            mark_fd(fd, n->file, fl >= 0 ? fl : 0);
        }
    }
    errno = saved;
}

int rename(const char *from, const char *to)
{
    resolve();
    rename_note n = rename_before(AT_FDCWD, to);
    int rc = real_rename(from, to);
    rename_after(&n, rc, AT_FDCWD, to);
    return rc;
}

int renameat(int fromdir, const char *from, int todir, const char *to)
{
    resolve();
    rename_note n = rename_before(todir, to);
    int rc = real_renameat(fromdir, from, todir, to);
    rename_after(&n, rc, todir, to);
    return rc;
}

int renameat2(int fromdir, const char *from, int todir, const char *to, unsigned int flags)
{
    resolve();
    if (real_renameat2 == NULL) {
        errno = ENOSYS;
        return -1;
    }
    rename_note n = rename_before(todir, to);
    int rc = real_renameat2(fromdir, from, todir, to, flags);
    rename_after(&n, rc, todir, to);
    return rc;
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
