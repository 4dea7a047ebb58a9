#include "storetool.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "journal.h"
#include "keyfile.h"
#include "store.h"

#define MBOX_REC_BYTES 105u
#define PROBLEMS_SHOWN 20u

typedef struct mbx {
    uint8_t recv_id[16];
    uint8_t send_id[16];
    uint64_t acked, last_seq, count;
} mbx;

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A second LMDB environment on <storedir>, read-only.  nolock: nobody else
 * uses it (a fresh backup), so no lock file is needed. */
static int open_env(const char *storedir, int nolock, MDB_env **out, FILE *err)
{
    char path[PATH_MAX + 16], lock[PATH_MAX + 16];
    struct stat st, lst;
    snprintf(path, sizeof path, "%s/data.mdb", storedir);
    snprintf(lock, sizeof lock, "%s/lock.mdb", storedir);
    *out = NULL;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return ALCOVE_ENOTFOUND;
        fprintf(err, "alcove-relay: error: cannot read %s: %s\n", path, strerror(errno));
        return ALCOVE_EIO;
    }
    MDB_env *env = NULL;
    int rc;
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 4)) != 0 ||
        (rc = mdb_env_open(env, storedir, MDB_RDONLY | MDB_NOTLS | (nolock ? MDB_NOLOCK : 0),
                           0600)) != 0) {
        fprintf(err, "alcove-relay: error: cannot open the store in %s: %s\n", storedir,
                mdb_strerror(rc));
        if (env != NULL)
            mdb_env_close(env);
        return ALCOVE_ESTORE;
    }
    /* Run as root on a relay's store, LMDB may just have created the lock
     * file: give it to the store's owner, or the relay could not open it. */
    if (!nolock && geteuid() == 0 && stat(lock, &lst) == 0 &&
        (lst.st_uid != st.st_uid || lst.st_gid != st.st_gid) &&
        chown(lock, st.st_uid, st.st_gid) != 0)
        fprintf(err, "alcove-relay: warning: cannot give %s to the store's owner: %s\n", lock,
                strerror(errno));
    *out = env;
    return 0;
}

/* A read transaction; follows a map the relay has grown meanwhile. */
static int begin_read(MDB_env *env, MDB_txn **txn)
{
    int rc = MDB_MAP_RESIZED;
    for (int tries = 0; tries < 5 && rc == MDB_MAP_RESIZED; tries++) {
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
        if (rc == MDB_MAP_RESIZED)
            (void)mdb_env_set_mapsize(env, 0);
    }
    return rc;
}

typedef struct walk {
    relay_store_report *r;
    FILE *problems;
    uint64_t shown_errors, shown_warnings;
} walk;

__attribute__((format(printf, 3, 4))) static void problem(walk *w, int is_error, const char *fmt,
                                                          ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    /* A false positive: va_start is just above (the analyzer loses it when it
     * inlines a variadic function). */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint64_t *count = is_error ? &w->r->errors : &w->r->warnings;
    uint64_t *shown = is_error ? &w->shown_errors : &w->shown_warnings;
    (*count)++;
    if (w->problems == NULL || *shown >= PROBLEMS_SHOWN)
        return;
    (*shown)++;
    fprintf(w->problems, "%s: %s\n", is_error ? "error" : "warning", msg);
}

static int cmp_recv(const void *a, const void *b)
{
    return memcmp(((const mbx *)a)->recv_id, ((const mbx *)b)->recv_id, 16);
}

static int cmp_send(const void *a, const void *b)
{
    return memcmp(((const mbx *)a)->send_id, ((const mbx *)b)->send_id, 16);
}

static int walk_store(MDB_env *env, MDB_txn *txn, walk *w, FILE *err)
{
    relay_store_report *r = w->r;
    MDB_dbi dlog, dmbox, dmeta;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    mbx *boxes = NULL, *bysend = NULL;
    size_t nbox = 0, cap = 0;
    int rc, ret = ALCOVE_ESTORE;
    uint64_t now = wall_ms();

    if ((rc = mdb_dbi_open(txn, "meta", 0, &dmeta)) != 0 ||
        (rc = mdb_dbi_open(txn, "mbox", 0, &dmbox)) != 0 ||
        (rc = mdb_dbi_open(txn, "log", 0, &dlog)) != 0) {
        if (rc == MDB_NOTFOUND) {
            problem(w, 1, "the store lacks the meta, mbox or log database (not an alcove store?)");
            return 0;
        }
        fprintf(err, "alcove-relay: error: cannot open the store's databases: %s\n",
                mdb_strerror(rc));
        return ALCOVE_ESTORE;
    }
    static char schema_key[] = "schema";
    k.mv_size = 6;
    k.mv_data = schema_key;
    rc = mdb_get(txn, dmeta, &k, &v);
    if (rc == 0 && v.mv_size == 4) {
        const uint8_t *p = v.mv_data;
        r->schema = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (r->schema != RELAY_SCHEMA_VERSION)
            problem(w, 1, "schema version %u is not the supported %u", r->schema,
                    RELAY_SCHEMA_VERSION);
    } else {
        problem(w, 1, "the meta database has no valid schema version");
    }

    /* Mailboxes: LMDB keeps them sorted by recv_id, ready for bsearch. */
    if ((rc = mdb_cursor_open(txn, dmbox, &cur)) != 0)
        goto lmdb_fail;
    uint64_t nrec = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        nrec++;
        if (k.mv_size != 16 || v.mv_size != MBOX_REC_BYTES || p[0] != 1) {
            problem(w, 1, "mailbox record %llu: bad shape (key %zu bytes, value %zu bytes)",
                    (unsigned long long)nrec, k.mv_size, v.mv_size);
            continue;
        }
        if (nbox == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            mbx *nb = realloc(boxes, ncap * sizeof *nb);
            if (nb == NULL) {
                ret = ALCOVE_ENOMEM;
                goto out;
            }
            boxes = nb;
            cap = ncap;
        }
        mbx *b = &boxes[nbox++];
        memcpy(b->recv_id, k.mv_data, 16);
        memcpy(b->send_id, p + 33, 16);
        b->acked = get_u64(p + 1 + 32 + 16 + 32 + 16);
        b->last_seq = b->acked;
        b->count = 0;
        uint64_t created = get_u64(p + 81);
        if (created > now + 86400000ull)
            problem(w, 0, "mailbox record %llu was created in the future",
                    (unsigned long long)nrec);
    }
    if (rc != MDB_NOTFOUND)
        goto lmdb_fail;
    mdb_cursor_close(cur);
    cur = NULL;
    r->mailboxes = nbox;
    if (nbox > 0) {
        if ((bysend = malloc(nbox * sizeof *bysend)) == NULL) {
            ret = ALCOVE_ENOMEM;
            goto out;
        }
        memcpy(bysend, boxes, nbox * sizeof *bysend);
        qsort(bysend, nbox, sizeof *bysend, cmp_send);
        for (size_t i = 1; i < nbox; i++)
            if (memcmp(bysend[i - 1].send_id, bysend[i].send_id, 16) == 0)
                problem(w, 1, "two mailboxes share one send id (the relay would refuse to start)");
    }

    /* The log, in global order. */
    if ((rc = mdb_cursor_open(txn, dlog, &cur)) != 0)
        goto lmdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            problem(w, 1, "log record with a %zu-byte key", k.mv_size);
            continue;
        }
        uint64_t gseq = get_u64(k.mv_data);
        r->last_gseq = gseq;
        if (v.mv_size < RELAY_LOG_HDR) {
            problem(w, 1, "log record %llu is %zu bytes, shorter than its header",
                    (unsigned long long)gseq, v.mv_size);
            continue;
        }
        const uint8_t *p = v.mv_data;
        size_t blob = v.mv_size - RELAY_LOG_HDR;
        uint64_t seq = get_u64(p + 16), at = get_u64(p + 24);
        if (blob == 0 || blob > RELAY_BLOB_CAP)
            problem(w, 1, "log record %llu has a %zu-byte blob (1..%u allowed)",
                    (unsigned long long)gseq, blob, RELAY_BLOB_CAP);
        mbx key;
        memset(&key, 0, sizeof key);
        memcpy(key.recv_id, p, 16);
        mbx *b = nbox ? bsearch(&key, boxes, nbox, sizeof *boxes, cmp_recv) : NULL;
        if (b == NULL) {
            r->orphans++;
            continue;
        }
        if (seq <= b->acked) {
            r->leftovers++;
            continue;
        }
        if (seq <= b->last_seq && b->count > 0) {
            problem(w, 1, "log record %llu: mailbox seq %llu after %llu (out of order)",
                    (unsigned long long)gseq, (unsigned long long)seq,
                    (unsigned long long)b->last_seq);
            continue;
        }
        if (at > now + 86400000ull)
            problem(w, 0, "log record %llu was received in the future", (unsigned long long)gseq);
        b->last_seq = seq;
        b->count++;
        if (b->count > r->largest_mailbox)
            r->largest_mailbox = b->count;
        r->messages++;
        r->message_bytes += blob;
        if (r->oldest_ms == 0 || at < r->oldest_ms)
            r->oldest_ms = at;
        if (at > r->newest_ms)
            r->newest_ms = at;
    }
    if (rc != MDB_NOTFOUND)
        goto lmdb_fail;
    if (r->orphans > 0)
        problem(w, 0, "%llu log records belong to deleted mailboxes (removed at the relay's next "
                      "start)", (unsigned long long)r->orphans);
    if (r->leftovers > 0)
        problem(w, 0, "%llu log records are already acked (removed at the relay's next start)",
                (unsigned long long)r->leftovers);

    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &stat) == 0) {
        r->map_bytes = info.me_mapsize;
        r->page_size = stat.ms_psize;
        r->used_bytes = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
    }
    ret = 0;
    goto out;
lmdb_fail:
    fprintf(err, "alcove-relay: error: reading the store failed: %s\n", mdb_strerror(rc));
    ret = ALCOVE_ESTORE;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    free(boxes);
    free(bysend);
    return ret;
}

static int scan_dir(const char *storedir, int nolock, relay_store_report *r, FILE *problems,
                    FILE *err)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    memset(r, 0, sizeof *r);
    int rc = open_env(storedir, nolock, &env, err);
    if (rc != 0)
        return rc;
    char path[PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", storedir);
    if (stat(path, &st) == 0)
        r->file_bytes = (uint64_t)st.st_size;
    int mrc = begin_read(env, &txn);
    if (mrc != 0) {
        fprintf(err, "alcove-relay: error: cannot read the store in %s: %s\n", storedir,
                mdb_strerror(mrc));
        mdb_env_close(env);
        return ALCOVE_ESTORE;
    }
    walk w = {r, problems, 0, 0};
    rc = walk_store(env, txn, &w, err);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    if (problems != NULL && w.shown_errors < r->errors)
        fprintf(problems, "error: ... and %llu more errors\n",
                (unsigned long long)(r->errors - w.shown_errors));
    return rc;
}

/* A store left by a relay that did not stop cleanly has commits in
 * data.mdb that were never synced (the journal holds them; the relay
 * undoes and replays them at its next start).  Reading it offline could
 * show a snapshot that a power cut damaged, so refuse until the relay has
 * run once.  While the relay runs (it holds run.lock), reading is safe: every
 * acknowledged batch is committed in LMDB before its reply. */
static int refuse_unrecovered(const char *data_dir, const char *storedir, FILE *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/run.lock", data_dir);
    int lfd = open(path, O_RDONLY | O_CLOEXEC);
    if (lfd >= 0 && flock(lfd, LOCK_SH | LOCK_NB) != 0) {
        close(lfd);
        return 0; /* the relay is running */
    }
    relay_journal *j = NULL;
    const char *why = NULL;
    int rc = relay_journal_open(&j, storedir, &why);
    int dirty = 0;
    if (rc == 0) {
        uint32_t psize;
        const uint8_t *metas = relay_journal_metas(j, &psize);
        uint8_t *cur = malloc(2u * (size_t)psize);
        snprintf(path, sizeof path, "%s/data.mdb", storedir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (cur == NULL || fd < 0 || pread(fd, cur, 2u * (size_t)psize, 0) != (ssize_t)(2u * (size_t)psize) ||
            memcmp(cur, metas, 2u * (size_t)psize) != 0)
            dirty = 1;
        const uint8_t *p;
        size_t len;
        uint64_t bseq;
        if (relay_journal_replay_next(j, &p, &len, &bseq) != ALCOVE_ENOTFOUND)
            dirty = 1;
        if (fd >= 0)
            close(fd);
        free(cur);
        relay_journal_close(j);
    } else if (rc != ALCOVE_ENOTFOUND) {
        fprintf(err, "alcove-relay: error: %s/%s: %s\n", storedir, RELAY_JOURNAL_NAME, why);
        dirty = -1;
    }
    if (lfd >= 0)
        close(lfd);
    if (dirty > 0) {
        fprintf(err, "alcove-relay: error: the store in %s was not closed cleanly and its "
                     "journal has not been replayed\n", storedir);
        fprintf(err, "alcove-relay: hint: start the relay once (it replays store/journal at "
                     "start), then run this again\n");
    }
    return dirty ? ALCOVE_ESTATE : 0;
}

int relay_store_scan(const char *data_dir, relay_store_report *r, FILE *problems, FILE *err)
{
    char storedir[PATH_MAX + 8];
    snprintf(storedir, sizeof storedir, "%s/store", data_dir);
    int rc = refuse_unrecovered(data_dir, storedir, err);
    if (rc != 0)
        return rc;
    return scan_dir(storedir, 0, r, problems, err);
}

void relay_store_report_print(const relay_store_report *r, const char *data_dir, FILE *out)
{
    uint64_t now = wall_ms();
    fprintf(out, "# alcove-relay stats for %s/store\n", data_dir);
    fprintf(out, "alcove_mailboxes %llu\n", (unsigned long long)r->mailboxes);
    fprintf(out, "alcove_stored_messages %llu\n", (unsigned long long)r->messages);
    fprintf(out, "alcove_stored_bytes %llu\n", (unsigned long long)r->message_bytes);
    fprintf(out, "alcove_store_map_size_bytes %llu\n", (unsigned long long)r->map_bytes);
    fprintf(out, "alcove_store_used_bytes %llu\n", (unsigned long long)r->used_bytes);
    fprintf(out, "# figures only a full walk gives\n");
    fprintf(out, "alcove_store_file_bytes %llu\n", (unsigned long long)r->file_bytes);
    fprintf(out, "alcove_store_page_bytes %llu\n", (unsigned long long)r->page_size);
    fprintf(out, "alcove_store_schema_version %u\n", r->schema);
    fprintf(out, "alcove_largest_mailbox_messages %llu\n", (unsigned long long)r->largest_mailbox);
    fprintf(out, "alcove_oldest_message_age_seconds %.0f\n",
            r->oldest_ms && r->oldest_ms < now ? (double)(now - r->oldest_ms) / 1000.0 : 0.0);
    fprintf(out, "alcove_store_leftover_records %llu\n",
            (unsigned long long)(r->orphans + r->leftovers));
    fprintf(out, "alcove_store_last_log_key %llu\n", (unsigned long long)r->last_gseq);
}

/* --- backup ---------------------------------------------------------------- */

static int fsync_path(const char *path, int is_dir)
{
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Copy a small file (key, public address) with mode 0600.  Returns 0, 1 if
 * the source does not exist, -1 on error (errno set). */
static int copy_small(const char *from, const char *to)
{
    uint8_t buf[4096];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? 1 : -1;
    ssize_t n = read(in, buf, sizeof buf);
    close(in);
    if (n < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return -1;
    int rc = write(out, buf, (size_t)n) == n && fsync(out) == 0 ? 0 : -1;
    close(out);
    return rc;
}

static void remove_partial(const char *partial)
{
    static const char *const files[] = {"store/data.mdb", "store/lock.mdb", "store",
                                        RELAY_KEYFILE_NAME, RELAY_PUBLICFILE_NAME};
    char p[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", partial, files[i]);
        (void)remove(p);
    }
    (void)remove(partial);
}

int relay_store_backup(const char *data_dir, const char *dest, relay_store_report *copied,
                       FILE *err)
{
    char partial[PATH_MAX], storedir[PATH_MAX + 8], pstore[PATH_MAX + 8], a[PATH_MAX + 32],
        b[PATH_MAX + 32];
    struct stat st;
    MDB_env *env = NULL;
    int rc, mrc = 0, made = 0;

    if (snprintf(partial, sizeof partial, "%s.partial", dest) >= (int)sizeof partial) {
        fprintf(err, "alcove-relay: error: backup path is too long\n");
        return ALCOVE_EINVAL;
    }
    if (lstat(dest, &st) == 0) {
        fprintf(err, "alcove-relay: error: %s already exists; a backup goes to a new directory\n",
                dest);
        return ALCOVE_EEXIST;
    }
    if (lstat(partial, &st) == 0) {
        fprintf(err, "alcove-relay: error: %s exists (an interrupted backup?)\n", partial);
        fprintf(err, "alcove-relay: hint: remove it and run the backup again\n");
        return ALCOVE_EEXIST;
    }
    snprintf(storedir, sizeof storedir, "%s/store", data_dir);
    snprintf(pstore, sizeof pstore, "%s/store", partial);
    if ((rc = refuse_unrecovered(data_dir, storedir, err)) != 0)
        return rc;
    rc = open_env(storedir, 0, &env, err);
    if (rc == ALCOVE_ENOTFOUND)
        fprintf(err, "alcove-relay: error: no store in %s\n", data_dir);
    if (rc != 0)
        return rc;
    if (mkdir(partial, 0700) != 0 || (made = 1, mkdir(pstore, 0700) != 0)) {
        fprintf(err, "alcove-relay: error: cannot create %s: %s\n", made ? pstore : partial,
                strerror(errno));
        rc = ALCOVE_EIO;
        goto fail;
    }
    /* One read transaction inside: a consistent snapshot while the relay
     * keeps committing. */
    mrc = MDB_MAP_RESIZED;
    for (int tries = 0; tries < 5 && mrc == MDB_MAP_RESIZED; tries++) {
        mrc = mdb_env_copy2(env, pstore, MDB_CP_COMPACT);
        if (mrc == MDB_MAP_RESIZED)
            (void)mdb_env_set_mapsize(env, 0);
    }
    mdb_env_close(env);
    env = NULL;
    if (mrc != 0) {
        fprintf(err, "alcove-relay: error: copying the store failed: %s\n", mdb_strerror(mrc));
        rc = ALCOVE_ESTORE;
        goto fail;
    }
    snprintf(a, sizeof a, "%s/%s", data_dir, RELAY_KEYFILE_NAME);
    snprintf(b, sizeof b, "%s/%s", partial, RELAY_KEYFILE_NAME);
    if (copy_small(a, b) != 0) {
        fprintf(err, "alcove-relay: error: cannot copy the relay key %s: %s\n", a,
                errno ? strerror(errno) : "missing");
        rc = ALCOVE_EIO;
        goto fail;
    }
    snprintf(a, sizeof a, "%s/%s", data_dir, RELAY_PUBLICFILE_NAME);
    snprintf(b, sizeof b, "%s/%s", partial, RELAY_PUBLICFILE_NAME);
    if (copy_small(a, b) < 0) {
        fprintf(err, "alcove-relay: error: cannot copy %s: %s\n", a, strerror(errno));
        rc = ALCOVE_EIO;
        goto fail;
    }
    snprintf(a, sizeof a, "%s/data.mdb", pstore);
    if (fsync_path(a, 0) != 0 || fsync_path(pstore, 1) != 0 || fsync_path(partial, 1) != 0) {
        fprintf(err, "alcove-relay: error: cannot sync the backup: %s\n", strerror(errno));
        rc = ALCOVE_EIO;
        goto fail;
    }
    if ((rc = scan_dir(pstore, 1, copied, err, err)) != 0)
        goto fail;
    if (copied->errors != 0) {
        fprintf(err, "alcove-relay: error: the copy does not verify (%llu errors); the source "
                     "store may be damaged: run 'alcove-relay verify'\n",
                (unsigned long long)copied->errors);
        rc = ALCOVE_ECORRUPT;
        goto fail;
    }
    if (rename(partial, dest) != 0) {
        fprintf(err, "alcove-relay: error: cannot rename %s to %s: %s\n", partial, dest,
                strerror(errno));
        rc = ALCOVE_EIO;
        goto fail;
    }
    snprintf(a, sizeof a, "%s", dest);
    (void)fsync_path(dirname(a), 1);
    return 0;
fail:
    if (env != NULL)
        mdb_env_close(env);
    if (made || lstat(partial, &st) == 0)
        remove_partial(partial);
    return rc;
}
