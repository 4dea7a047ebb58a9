#include "fault_util.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fault_long_mode(void)
{
    const char *e = getenv("ALCOVE_LONG");
    return e != NULL && *e != '\0' && strcmp(e, "0") != 0;
}

long fault_env_long(const char *name, long def)
{
    const char *e = getenv(name);
    if (e == NULL || *e == '\0')
        return def;
    char *end;
    long v = strtol(e, &end, 10);
    return *end == '\0' ? v : def;
}

const char *fault_shim_path(void)
{
    const char *p = getenv("ALCOVE_FAULT_SHIM");
    return p != NULL && *p != '\0' ? p : NULL;
}

fault_ctl *fault_ctl_create(const char *file, const char *match, const char *undo_path)
{
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, sizeof(fault_ctl)) != 0) {
        fprintf(stderr, "fault: cannot create %s: %s\n", file, strerror(errno));
        abort();
    }
    fault_ctl *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (c == MAP_FAILED) {
        fprintf(stderr, "fault: cannot map %s: %s\n", file, strerror(errno));
        abort();
    }
    memset(c, 0, sizeof *c);
    if (match != NULL)
        snprintf(c->match, sizeof c->match, "%s", match);
    if (undo_path != NULL)
        snprintf(c->undo_path, sizeof c->undo_path, "%s", undo_path);
    __atomic_store_n(&c->magic, FAULT_CTL_MAGIC, __ATOMIC_SEQ_CST);
    return c;
}

void fault_ctl_unmap(fault_ctl *c)
{
    if (c != NULL)
        munmap(c, sizeof *c);
}

typedef struct saved_env {
    char name[64];
    char *value; /* NULL: was unset */
} saved_env;

static void save_and_set(saved_env *s, const char *name, const char *value)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    const char *old = getenv(name);
    s->value = old != NULL ? strdup(old) : NULL;
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static void restore(saved_env *s)
{
    if (s->value != NULL)
        setenv(s->name, s->value, 1);
    else
        unsetenv(s->name);
    free(s->value);
    s->value = NULL;
}

int fault_relay_start(relayproc *rp, const char *const *extra, const char *ctl_file,
                      const char *const *extra_env)
{
    const char *shim = fault_shim_path();
    if (shim == NULL) {
        fprintf(stderr, "fault: ALCOVE_FAULT_SHIM is not set (run under ctest)\n");
        return -1;
    }
    saved_env s[16];
    int n = 0;
    char asan[512];
    const char *old_asan = getenv("ASAN_OPTIONS");
    /* A sanitizer build's runtime insists on being first in the library
     * list; the preloaded shim comes first by design. */
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old_asan ? old_asan : "",
             old_asan && *old_asan ? ":" : "");
    save_and_set(&s[n++], "LD_PRELOAD", shim);
    save_and_set(&s[n++], "ASAN_OPTIONS", asan);
    save_and_set(&s[n++], "ALCOVE_FAULT_CTL", ctl_file);
    for (int i = 0; extra_env != NULL && extra_env[i] != NULL && n < 16; i++) {
        char name[64];
        const char *eq = strchr(extra_env[i], '=');
        if (eq == NULL || (size_t)(eq - extra_env[i]) >= sizeof name)
            continue;
        memcpy(name, extra_env[i], (size_t)(eq - extra_env[i]));
        name[eq - extra_env[i]] = '\0';
        save_and_set(&s[n++], name, eq + 1);
    }
    int rc = relayproc_start(rp, extra);
    while (n > 0)
        restore(&s[--n]);
    return rc;
}

/* --- power-loss emulation ------------------------------------------------ */

/* The undo log of the last call, kept while the file is unchanged: a test
 * cuts the same log at many moments. */
static struct {
    char path[512];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint8_t *data;
    size_t len;
} undo_cache;

static const uint8_t *undo_load(const char *undo_path, size_t *len)
{
    struct stat sb;
    if (stat(undo_path, &sb) != 0)
        return NULL;
    if (undo_cache.data != NULL && strcmp(undo_cache.path, undo_path) == 0 &&
        undo_cache.dev == sb.st_dev && undo_cache.ino == sb.st_ino &&
        undo_cache.size == sb.st_size && undo_cache.mtime.tv_sec == sb.st_mtim.tv_sec &&
        undo_cache.mtime.tv_nsec == sb.st_mtim.tv_nsec) {
        *len = undo_cache.len;
        return undo_cache.data;
    }
    free(undo_cache.data);
    undo_cache.data = NULL;
    size_t n = 0;
    uint8_t *d = (uint8_t *)test_read_file(undo_path, &n);
    if (d == NULL)
        return NULL;
    snprintf(undo_cache.path, sizeof undo_cache.path, "%s", undo_path);
    undo_cache.dev = sb.st_dev;
    undo_cache.ino = sb.st_ino;
    undo_cache.size = sb.st_size;
    undo_cache.mtime = sb.st_mtim;
    undo_cache.data = d;
    undo_cache.len = n;
    *len = n;
    return d;
}

/* The next record at *p of the log, or 0 at the end (or a torn or unknown
 * record: the writer was killed mid-record). */
static int undo_next(const uint8_t *log, size_t loglen, size_t *p, fault_undo_rec *r)
{
    if (*p + sizeof *r > loglen)
        return 0;
    memcpy(r, log + *p, sizeof *r);
    if (r->type < FAULT_UNDO_WRITE || r->type > FAULT_UNDO_RENAME || r->file >= FAULT_MAX_FILES)
        return 0;
    size_t body = r->type == FAULT_UNDO_WRITE ? r->len : 0;
    if (*p + sizeof *r + body > loglen)
        return 0;
    *p += sizeof *r;
    return 1;
}

typedef struct undo_entry {
    uint64_t off, pos, old_size; /* pos: offset of the old bytes in the log */
    uint32_t len;
    uint8_t file, lost, pending;
} undo_entry;

/* Undo the lost writes of file index f (entries newest first), then cut the
 * file back to the size it had before the oldest lost write that grew it
 * (unless a kept write reaches further). */
static int undo_file(const char *path, int f, const undo_entry *e, size_t ne,
                     const uint8_t *log, fault_powerloss_stats *st)
{
    int rc = -1;
    uint8_t *settled = NULL;
    int fd = open(path, O_RDWR);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0)
        goto out;
    uint64_t size = (uint64_t)sb.st_size, grow_from = UINT64_MAX, kept_end = 0;
    for (size_t i = 0; i < ne; i++) {
        if (e[i].file != f)
            continue;
        uint64_t end = e[i].off + e[i].len;
        if (end > size)
            size = end;
        if (!e[i].lost && end > kept_end)
            kept_end = end;
        if (e[i].lost && end > e[i].old_size && e[i].old_size < grow_from)
            grow_from = e[i].old_size;
    }
    settled = calloc(size / 8 + 1, 1);
    if (settled == NULL)
        goto out;
    /* Newest first: a kept write settles its bytes; a lost one restores the
     * bytes no later kept write settled. */
    for (size_t k = ne; k-- > 0;) {
        const undo_entry *u = &e[k];
        if (u->file != f)
            continue;
        if (u->off % 8 == 0 && u->len % 8 == 0) {
            /* Fast path for whole bitmap bytes (LMDB writes whole pages). */
            uint8_t *bm = settled + u->off / 8;
            size_t nb = u->len / 8, set = 0;
            for (size_t i = 0; i < nb; i++)
                set += bm[i] == 0xff ? 1 : bm[i] == 0 ? 0 : nb + 1;
            if (!u->lost) {
                memset(bm, 0xff, nb);
                continue;
            }
            st->undone_writes++;
            st->file_undone_writes[f]++;
            if (set == nb)
                continue;
            if (set == 0) {
                if (pwrite(fd, log + u->pos, u->len, (off_t)u->off) != (ssize_t)u->len)
                    goto out;
                st->undone_bytes += u->len;
                continue;
            }
            st->undone_writes--; /* counted again below */
            st->file_undone_writes[f]--;
        }
        uint64_t run_start = 0;
        int in_run = 0;
        for (uint64_t b = u->off; b <= u->off + u->len; b++) {
            int unsettled = b < u->off + u->len && !(settled[b / 8] & (1u << (b % 8)));
            if (unsettled && !in_run) {
                run_start = b;
                in_run = 1;
            } else if (!unsettled && in_run) {
                if (u->lost) {
                    size_t n = (size_t)(b - run_start);
                    if (pwrite(fd, log + u->pos + (run_start - u->off), n, (off_t)run_start) !=
                        (ssize_t)n)
                        goto out;
                    st->undone_bytes += n;
                }
                in_run = 0;
            }
            if (b < u->off + u->len && !u->lost)
                settled[b / 8] |= (uint8_t)(1u << (b % 8));
        }
        if (u->lost) {
            st->undone_writes++;
            st->file_undone_writes[f]++;
        }
    }
    if (grow_from != UINT64_MAX) {
        uint64_t to = grow_from > kept_end ? grow_from : kept_end;
        if (to < (uint64_t)sb.st_size) {
            if (ftruncate(fd, (off_t)to) != 0)
                goto out;
            st->truncated++;
        }
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(settled);
    return rc;
}

int fault_powerloss_apply_files(const char *const *files, int nfiles, const char *undo_path,
                                uint64_t cut_us, uint32_t writeback, fault_powerloss_stats *st)
{
    memset(st, 0, sizeof *st);
    int rc = -1;
    size_t loglen = 0;
    const uint8_t *log = undo_load(undo_path, &loglen);
    undo_entry *e = NULL;
    size_t ne = 0, cap = 0, pending_from[FAULT_MAX_FILES] = {0};
    int named_at_cut[FAULT_MAX_FILES] = {0}, named_after[FAULT_MAX_FILES] = {0};
    if (log == NULL || nfiles < 0 || nfiles > FAULT_MAX_FILES)
        return -1;
    /* Classify, in log order.  Per file: a write before the cut is kept if
     * the file's next sync before the cut succeeded, lost if that sync failed
     * or there is none (or kept whatever the syncs say, in writeback mode);
     * a write after the cut is lost; syncs after the cut never happened. */
    fault_undo_rec r;
    for (size_t p = 0; undo_next(log, loglen, &p, &r);) {
        size_t body = p;
        if (r.type == FAULT_UNDO_WRITE)
            p += r.len;
        if (r.file >= (uint32_t)nfiles)
            goto out; /* the caller did not say where this file is */
        int f = (int)r.file, after = r.t_us > cut_us;
        if (files[f] == NULL)
            continue;
        if (r.type == FAULT_UNDO_WRITE) {
            if (ne == cap) {
                cap = cap ? cap * 2 : 1024;
                undo_entry *n2 = realloc(e, cap * sizeof *e);
                if (n2 == NULL)
                    goto out;
                e = n2;
            }
            int wb = !after && (writeback & FAULT_FILE(f)) != 0;
            e[ne++] = (undo_entry){r.off, body, r.old_size, r.len, (uint8_t)f, (uint8_t)!wb,
                                   (uint8_t)(!after && !wb)};
            st->writes++;
            st->file_writes[f]++;
        } else if (r.type == FAULT_UNDO_SYNC_OK || r.type == FAULT_UNDO_SYNC_FAIL) {
            if (after)
                continue;
            for (size_t i = pending_from[f]; i < ne; i++)
                if (e[i].file == f && e[i].pending) {
                    e[i].lost = r.type == FAULT_UNDO_SYNC_FAIL;
                    e[i].pending = 0;
                }
            pending_from[f] = ne;
            if (r.type == FAULT_UNDO_SYNC_OK)
                st->syncs_ok++;
            else
                st->syncs_failed++;
        } else if (r.type == FAULT_UNDO_RENAME) {
            if (!after)
                named_at_cut[f] = 1;
            else if (!named_at_cut[f] && r.old_size == UINT64_MAX)
                named_after[f] = 1;
        }
    }
    for (int f = 0; f < nfiles; f++) {
        if (files[f] == NULL)
            continue;
        if (named_after[f] && !named_at_cut[f]) {
            /* Renamed into place after the cut: the name did not exist. */
            if (unlink(files[f]) != 0 && errno != ENOENT)
                goto out;
            st->removed++;
            continue;
        }
        int any = 0;
        for (size_t i = 0; i < ne && !any; i++)
            any = e[i].file == f;
        if (any && undo_file(files[f], f, e, ne, log, st) != 0)
            goto out;
    }
    rc = 0;
out:
    free(e);
    return rc;
}

int fault_powerloss_apply(const char *data_file, const char *undo_path, uint64_t cut_us,
                          fault_powerloss_stats *st)
{
    const char *files[1] = {data_file};
    return fault_powerloss_apply_files(files, 1, undo_path, cut_us, 0, st);
}

int fault_powerloss_apply_dir(const char *dir, const char *match, const char *undo_path,
                              uint64_t cut_us, uint32_t writeback, fault_powerloss_stats *st)
{
    char paths[FAULT_MAX_FILES][600];
    const char *files[FAULT_MAX_FILES];
    int n = 0;
    char pat[128];
    while (n < FAULT_MAX_FILES && fault_match_pattern(match, n, pat, sizeof pat) >= 0) {
        snprintf(paths[n], sizeof paths[n], "%s/%s", dir, pat);
        files[n] = paths[n];
        n++;
    }
    return fault_powerloss_apply_files(files, n, undo_path, cut_us, writeback, st);
}

long fault_undo_syncs(const char *undo_path, uint64_t **times, int **ok, int **file)
{
    size_t loglen = 0, n = 0, cap = 256;
    const uint8_t *log = undo_load(undo_path, &loglen);
    if (log == NULL)
        return -1;
    *times = malloc(cap * sizeof **times);
    *ok = malloc(cap * sizeof **ok);
    int *fl = malloc(cap * sizeof *fl);
    fault_undo_rec r;
    for (size_t p = 0; *times && *ok && fl && undo_next(log, loglen, &p, &r);) {
        if (r.type == FAULT_UNDO_WRITE)
            p += r.len;
        if (r.type != FAULT_UNDO_SYNC_OK && r.type != FAULT_UNDO_SYNC_FAIL)
            continue;
        if (n == cap) {
            cap *= 2;
            uint64_t *t2 = realloc(*times, cap * sizeof *t2);
            if (t2 != NULL)
                *times = t2;
            int *o2 = t2 ? realloc(*ok, cap * sizeof *o2) : NULL;
            if (o2 != NULL)
                *ok = o2;
            int *f2 = o2 ? realloc(fl, cap * sizeof *f2) : NULL;
            if (f2 == NULL)
                break;
            fl = f2;
        }
        (*times)[n] = r.t_us;
        (*ok)[n] = r.type == FAULT_UNDO_SYNC_OK;
        fl[n] = (int)r.file;
        n++;
    }
    if (file != NULL)
        *file = fl;
    else
        free(fl);
    return (long)n;
}

long fault_relay_log_ids(const char *data_file, size_t id_len, uint8_t **ids, const char **why)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    long n = -1;
    size_t cap = 4096, have = 0;
    *ids = NULL;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 8);
    if (rc == 0)
        rc = mdb_env_open(env, data_file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "log", 0, &dbi);
    if (rc == MDB_NOTFOUND) {
        /* Both meta pages still those of a new environment (txn 0): the
         * relay was cut before the commit that creates its databases was
         * durable.  It opens such a store (and creates them); it holds no
         * messages. */
        MDB_envinfo info;
        if (mdb_env_info(env, &info) == 0 && info.me_last_txnid == 0) {
            *ids = malloc(id_len);
            n = *ids != NULL ? 0 : -1;
            *why = "out of memory";
            goto out;
        }
    }
    if (rc == 0)
        rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        *why = mdb_strerror(rc);
        goto out;
    }
    *ids = malloc(cap * id_len);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && *ids != NULL;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size < 32 + id_len)
            continue;
        if (have == cap) {
            cap *= 2;
            uint8_t *n2 = realloc(*ids, cap * id_len);
            if (n2 == NULL)
                break;
            *ids = n2;
        }
        memcpy(*ids + have * id_len, (const uint8_t *)v.mv_data + 32, id_len);
        have++;
    }
    if (rc != MDB_NOTFOUND) {
        *why = rc == 0 ? "out of memory" : mdb_strerror(rc);
        goto out;
    }
    n = (long)have;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (env != NULL)
        mdb_env_close(env);
    if (n < 0) {
        free(*ids);
        *ids = NULL;
    }
    return n;
}

int fault_copy_file(const char *from, const char *to)
{
    /* Blocks of zeros are left as holes: a preallocated journal is mostly
     * zeros, and a test copies stores many times. */
    enum { BLK = 4096, BUF = 1 << 20 };
    static const uint8_t zero[BLK];
    int rc = -1, in = open(from, O_RDONLY | O_CLOEXEC), out = -1;
    uint8_t *buf = malloc(BUF);
    uint64_t off = 0;
    if (in < 0 || buf == NULL)
        goto done;
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        goto done;
    for (;;) {
        ssize_t n = read(in, buf, BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        for (ssize_t k = 0; k < n; k += BLK) {
            size_t len = (size_t)(n - k) < BLK ? (size_t)(n - k) : BLK;
            if (memcmp(buf + k, zero, len) == 0)
                continue;
            if (pwrite(out, buf + k, len, (off_t)(off + (uint64_t)k)) != (ssize_t)len)
                goto done;
        }
        off += (uint64_t)n;
    }
    if (ftruncate(out, (off_t)off) != 0)
        goto done;
    rc = 0;
done:
    if (out >= 0 && close(out) != 0)
        rc = -1;
    if (in >= 0)
        close(in);
    free(buf);
    return rc;
}

int fault_copy_store(const char *from_dir, const char *to_dir, const char *match)
{
    char pat[128], from[600], to[600];
    for (int i = 0; i < FAULT_MAX_FILES && fault_match_pattern(match, i, pat, sizeof pat) >= 0;
         i++) {
        snprintf(from, sizeof from, "%s/%s", from_dir, pat);
        snprintf(to, sizeof to, "%s/%s", to_dir, pat);
        if (access(from, F_OK) != 0) {
            if (errno != ENOENT || (unlink(to) != 0 && errno != ENOENT))
                return -1;
            continue;
        }
        if (fault_copy_file(from, to) != 0)
            return -1;
    }
    return 0;
}

/* --- process figures ------------------------------------------------------- */

long fault_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces) start past ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (long)((utime + stime) * 1000u / (unsigned long)(hz > 0 ? hz : 100));
}

long fault_rss_peak_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

long fault_rss_anon_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int fault_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1;
#else
    return 0;
#endif
#else
    return 0;
#endif
}

long fault_raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if ((long)rl.rlim_max < want) {
        struct rlimit up = {(rlim_t)want, (rlim_t)want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if ((long)rl.rlim_cur < want) {
        rl.rlim_cur = (long)rl.rlim_max < want ? rl.rlim_max : (rlim_t)want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double fault_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)((p / 100.0) * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

uint64_t fault_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int fault_file_count(const char *path, const char *needle)
{
    char *data = test_read_file(path, NULL);
    int n = 0;
    if (data == NULL)
        return 0;
    size_t nl = strlen(needle);
    for (const char *p = data; (p = strstr(p, needle)) != NULL; p += nl)
        n++;
    free(data);
    return n;
}
