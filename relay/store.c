#define _GNU_SOURCE /* sync_file_range */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define INITIAL_MAP (64ull << 20)
#define MBOX_REC_BYTES (1u + 32u + 16u + 32u + 8u + 8u + 8u)
#define MBOX_REC_VERSION 1u

struct relay_store {
    MDB_env *env;
    MDB_dbi log, mbox, meta;
    MDB_txn *wtxn;
    MDB_txn *rtxn; /* reused read transaction (reset between reads) */
    pthread_rwlock_t resize; /* readers: loop-thread reads; writer: grow */
    uint64_t map_size;
    uint64_t max_map;
    int last_rc;
    /* Writer thread only; see "Checkpoint pins" below. */
    MDB_txn *pin;      /* read txn on the last checkpoint's snapshot, or NULL */
    MDB_txn *pin_prev; /* the one before, while a new checkpoint is written */
};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int map_err(relay_store *st, int rc)
{
    if (rc == 0) /* keep the last failure's code: the other thread's success
                  * (a checkpoint's sync) must not erase it before it is read */
        return 0;
    __atomic_store_n(&st->last_rc, rc, __ATOMIC_RELAXED);
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
        return ALCOVE_ELIMIT;
    return ALCOVE_ESTORE;
}

/* 1 if the data file is shorter than the pages its meta page claims. */
static int file_truncated(MDB_env *env, const MDB_envinfo *info)
{
    MDB_stat ms;
    mdb_filehandle_t fd;
    struct stat sb;
    if (mdb_env_stat(env, &ms) != 0 || mdb_env_get_fd(env, &fd) != 0 || fstat(fd, &sb) != 0)
        return 1;
    return (uint64_t)sb.st_size < ((uint64_t)info->me_last_pgno + 1) * ms.ms_psize;
}

/* Checkpoint pins.
 *
 * Commits run with MDB_NOSYNC: durability comes from the journal, and
 * data.mdb is synced only at checkpoints (relay/writer.c).  After a power
 * cut the relay writes the meta pages saved with the last checkpoint back
 * into data.mdb, so LMDB opens that checkpoint's snapshot, and replays the
 * journal on top.  For that, no page of the checkpoint's snapshot may be
 * overwritten until a newer checkpoint is durable.  LMDB (0.9.x) lets write
 * txn T reuse pages freed by txns older than the oldest live reader (or
 * T-1 without readers); a read transaction on the checkpoint's snapshot
 * therefore keeps every one of its pages in place.  The pin never reads the
 * map, so changing the map size while it is held is harmless
 * (mdb_env_set_mapsize refuses only during a write txn; the loop thread's
 * cached read txn is still dropped as before).  While held, commits grow the
 * file by what they rewrite between two checkpoints instead of reusing
 * those pages. */
int relay_store_pin_push(relay_store *st)
{
    if (st->pin_prev != NULL) /* a checkpoint inside a checkpoint: never */
        return map_err(st, EINVAL);
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &t);
    if (rc != 0)
        return map_err(st, rc);
    st->pin_prev = st->pin;
    st->pin = t;
    return 0;
}

void relay_store_pin_settle(relay_store *st, int keep_new)
{
    if (keep_new) {
        if (st->pin_prev != NULL)
            mdb_txn_abort(st->pin_prev);
    } else {
        if (st->pin != NULL)
            mdb_txn_abort(st->pin);
        st->pin = st->pin_prev;
    }
    st->pin_prev = NULL;
}

int relay_store_last_rc(const relay_store *st)
{
    return __atomic_load_n(&st->last_rc, __ATOMIC_RELAXED);
}

const char *relay_store_last_error(const relay_store *st)
{
    return mdb_strerror(relay_store_last_rc(st));
}

int relay_store_open(relay_store **out, const char *dir, uint64_t max_map_bytes,
                     const char **why)
{
    relay_store *st = calloc(1, sizeof *st);
    MDB_txn *txn = NULL;
    int rc;
    *why = "out of memory";
    if (st == NULL)
        return ALCOVE_ENOMEM;
    if (pthread_rwlock_init(&st->resize, NULL) != 0) {
        free(st);
        return ALCOVE_ENOMEM;
    }
    st->max_map = max_map_bytes;
    st->map_size = INITIAL_MAP;
    if (st->max_map && st->map_size > st->max_map)
        st->map_size = st->max_map;
    if ((rc = mdb_env_create(&st->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(st->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, (size_t)st->map_size)) != 0 ||
        /* Readers stay on the loop thread, the writer on its own.
         * MDB_NOSYNC: commits only write; a batch is durable once its
         * journal record is, and data.mdb is synced at checkpoints, whose
         * snapshots are pinned (see "Checkpoint pins"). */
        (rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_NOSYNC, 0600)) != 0)
        goto fail;
    MDB_envinfo info;
    if ((rc = mdb_env_info(st->env, &info)) != 0)
        goto fail;
    st->map_size = info.me_mapsize; /* an existing larger file wins */
    if (file_truncated(st->env, &info)) {
        /* Touching a page past the end of the file would be SIGBUS. */
        *why = "store file is truncated (restore it from a backup)";
        relay_store_close(st);
        return ALCOVE_ECORRUPT;
    }
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "log", MDB_CREATE, &st->log)) != 0 ||
        (rc = mdb_dbi_open(txn, "mbox", MDB_CREATE, &st->mbox)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0)
        goto fail;
    {
        static char schema_key[] = "schema";
        MDB_val k = {6, schema_key}, v;
        uint8_t ver[4] = {0, 0, 0, RELAY_SCHEMA_VERSION};
        rc = mdb_get(txn, st->meta, &k, &v);
        if (rc == MDB_NOTFOUND) {
            v.mv_size = sizeof ver;
            v.mv_data = ver;
            if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0)
                goto fail;
        } else if (rc != 0) {
            goto fail;
        } else if (v.mv_size != 4 || memcmp(v.mv_data, ver, 4) != 0) {
            mdb_txn_abort(txn);
            *why = "store has an unsupported schema version";
            relay_store_close(st);
            return ALCOVE_EFORMAT;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto fail;
    *out = st;
    return 0;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    *why = mdb_strerror(rc);
    relay_store_close(st);
    return ALCOVE_ESTORE;
}

void relay_store_close(relay_store *st)
{
    if (st == NULL)
        return;
    if (st->wtxn != NULL)
        mdb_txn_abort(st->wtxn);
    if (st->rtxn != NULL)
        mdb_txn_abort(st->rtxn);
    if (st->pin != NULL)
        mdb_txn_abort(st->pin);
    if (st->pin_prev != NULL)
        mdb_txn_abort(st->pin_prev);
    if (st->env != NULL)
        mdb_env_close(st->env);
    pthread_rwlock_destroy(&st->resize);
    free(st);
}

static int decode_mbox(const MDB_val *k, const MDB_val *v, relay_mbox *mb)
{
    const uint8_t *p = v->mv_data;
    if (k->mv_size != RELAY_ID_BYTES || v->mv_size != MBOX_REC_BYTES ||
        p[0] != MBOX_REC_VERSION)
        return ALCOVE_ECORRUPT;
    memcpy(mb->recv_id, k->mv_data, RELAY_ID_BYTES);
    p++;
    memcpy(mb->auth_pub, p, 32);
    p += 32;
    memcpy(mb->send_id, p, 16);
    p += 16;
    memcpy(mb->send_key_hash, p, 32);
    p += 32;
    mb->created_at = get_u64(p);
    mb->last_seen = mb->last_seen_disk = get_u64(p + 8);
    mb->acked_seq = get_u64(p + 16);
    mb->next_seq = mb->acked_seq + 1;
    return 0;
}

int relay_store_load(relay_store *st, relay_index *ix, uint64_t *next_gseq,
                     uint64_t *nmsgs)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc, err = ALCOVE_ESTORE;
    uint64_t last = 0, count = 0;

    *nmsgs = 0;
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
        goto out;
    if ((rc = mdb_cursor_open(txn, st->mbox, &cur)) != 0)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        relay_mbox *mb = relay_mbox_new();
        if (mb == NULL) {
            err = ALCOVE_ENOMEM;
            goto out;
        }
        int e = decode_mbox(&k, &v, mb);
        if (e == 0)
            e = relay_index_insert(ix, mb);
        relay_mbox_unref(mb);
        if (e != 0) {
            err = e == ALCOVE_EEXIST ? ALCOVE_ECORRUPT : e;
            goto out;
        }
    }
    if (rc != MDB_NOTFOUND)
        goto out;
    mdb_cursor_close(cur);
    cur = NULL;

    if ((rc = mdb_cursor_open(txn, st->log, &cur)) != 0)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
        if (k.mv_size != 8 || v.mv_size < RELAY_LOG_HDR) {
            err = ALCOVE_ECORRUPT;
            goto out;
        }
        uint64_t gseq = get_u64(k.mv_data);
        last = gseq;
        const uint8_t *p = v.mv_data;
        relay_mbox *mb = relay_index_by_recv(ix, p);
        relay_msg m = {get_u64(p + 16), gseq, get_u64(p + 24),
                       (uint32_t)(v.mv_size - RELAY_LOG_HDR)};
        if (mb == NULL || m.seq <= mb->acked_seq ||
            (mb->count > 0 && m.seq <= relay_mbox_msg(mb, mb->count - 1)->seq)) {
            /* Orphan of a deleted mailbox, or acked but not yet removed. */
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                goto out;
            /* After a delete, MDB_NEXT yields the record that took its place. */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (relay_mbox_push_msg(mb, &m) != 0) {
            err = ALCOVE_ENOMEM;
            goto out;
        }
        if (m.seq >= mb->next_seq)
            mb->next_seq = m.seq + 1;
        count++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND)
        goto out;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto out;
    *next_gseq = last + 1;
    *nmsgs = count;
    err = 0;
out:
    st->last_rc = rc;
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    return err;
}

int relay_store_wbegin(relay_store *st)
{
    return map_err(st, mdb_txn_begin(st->env, NULL, 0, &st->wtxn));
}

int relay_store_put_mbox(relay_store *st, const uint8_t recv_id[16],
                         const relay_mbox_rec *rec)
{
    uint8_t buf[MBOX_REC_BYTES], *p = buf;
    *p++ = MBOX_REC_VERSION;
    memcpy(p, rec->auth_pub, 32);
    p += 32;
    memcpy(p, rec->send_id, 16);
    p += 16;
    memcpy(p, rec->send_key_hash, 32);
    p += 32;
    put_u64(p, rec->created_at);
    put_u64(p + 8, rec->last_seen);
    put_u64(p + 16, rec->acked_seq);
    MDB_val k = {RELAY_ID_BYTES, (void *)(uintptr_t)recv_id}, v = {sizeof buf, buf};
    return map_err(st, mdb_put(st->wtxn, st->mbox, &k, &v, 0));
}

int relay_store_del_mbox(relay_store *st, const uint8_t recv_id[16])
{
    MDB_val k = {RELAY_ID_BYTES, (void *)(uintptr_t)recv_id};
    int rc = mdb_del(st->wtxn, st->mbox, &k, NULL);
    return map_err(st, rc == MDB_NOTFOUND ? 0 : rc);
}

int relay_store_append(relay_store *st, uint64_t gseq, const uint8_t recv_id[16],
                       uint64_t seq, uint64_t received_at, const uint8_t *blob,
                       size_t len)
{
    uint8_t kb[8];
    put_u64(kb, gseq);
    MDB_val k = {8, kb}, v = {RELAY_LOG_HDR + len, NULL};
    int rc = mdb_put(st->wtxn, st->log, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0)
        return map_err(st, rc);
    uint8_t *p = v.mv_data;
    memcpy(p, recv_id, RELAY_ID_BYTES);
    put_u64(p + 16, seq);
    put_u64(p + 24, received_at);
    memcpy(p + RELAY_LOG_HDR, blob, len);
    return 0;
}

int relay_store_del_log(relay_store *st, uint64_t gseq)
{
    uint8_t kb[8];
    put_u64(kb, gseq);
    MDB_val k = {8, kb};
    int rc = mdb_del(st->wtxn, st->log, &k, NULL);
    return map_err(st, rc == MDB_NOTFOUND ? 0 : rc);
}

int relay_store_wcommit(relay_store *st)
{
    int rc = mdb_txn_commit(st->wtxn);
    st->wtxn = NULL;
    return map_err(st, rc);
}

int relay_store_tick(relay_store *st)
{
    static char key[] = "tick";
    for (int grown = 0;; grown = 1) {
        int rc = relay_store_wbegin(st);
        if (rc != 0)
            return rc;
        MDB_val k = {4, key}, v;
        uint8_t b[8] = {0};
        if (mdb_get(st->wtxn, st->meta, &k, &v) == 0 && v.mv_size == 8)
            memcpy(b, v.mv_data, 8);
        for (int i = 7; i >= 0 && ++b[i] == 0; i--)
            ;
        v.mv_size = 8;
        v.mv_data = b;
        rc = mdb_put(st->wtxn, st->meta, &k, &v, 0);
        if (rc == 0)
            return relay_store_wcommit(st);
        relay_store_wabort(st);
        rc = map_err(st, rc);
        if (rc != ALCOVE_ELIMIT || grown || (rc = relay_store_grow(st, 1)) != 0)
            return rc;
    }
}

void relay_store_writeback(relay_store *st)
{
    mdb_filehandle_t fd;
    if (mdb_env_get_fd(st->env, &fd) == 0)
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void relay_store_wabort(relay_store *st)
{
    if (st->wtxn != NULL)
        mdb_txn_abort(st->wtxn);
    st->wtxn = NULL;
}

int relay_store_grow(relay_store *st, int use_reserve)
{
    uint64_t want = st->map_size * 2;
    uint64_t cap = st->max_map;
    if (cap != 0 && use_reserve) {
        /* Past the cap, only to let acks and deletes free space. */
        uint64_t reserve = cap / 16 > (1u << 20) ? cap / 16 : (1u << 20);
        cap += reserve;
    }
    if (cap != 0 && want > cap)
        want = cap;
    if (want <= st->map_size)
        return ALCOVE_ELIMIT;
    if (pthread_rwlock_wrlock(&st->resize) != 0)
        return ALCOVE_ESTORE;
    /* The cached read transaction counts as active: drop it first. */
    if (st->rtxn != NULL) {
        mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
    }
    int rc = mdb_env_set_mapsize(st->env, (size_t)want);
    if (rc == 0)
        st->map_size = want;
    pthread_rwlock_unlock(&st->resize);
    return map_err(st, rc);
}

int relay_store_fit_cap(relay_store *st)
{
    if (st->max_map == 0 || st->map_size <= st->max_map)
        return 0;
    if (pthread_rwlock_wrlock(&st->resize) != 0)
        return ALCOVE_ESTORE;
    if (st->rtxn != NULL) {
        mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
    }
    /* LMDB rounds a size below the pages in use up to that minimum. */
    int rc = mdb_env_set_mapsize(st->env, (size_t)st->max_map);
    MDB_envinfo info;
    if (rc == 0 && (rc = mdb_env_info(st->env, &info)) == 0)
        st->map_size = info.me_mapsize;
    pthread_rwlock_unlock(&st->resize);
    return map_err(st, rc);
}

int relay_store_sync(relay_store *st)
{
    return map_err(st, mdb_env_sync(st->env, 1));
}

uint32_t relay_store_page_size(relay_store *st)
{
    MDB_stat ms;
    return mdb_env_stat(st->env, &ms) == 0 ? ms.ms_psize : 0;
}

static int read_all_at(int fd, uint8_t *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t r = pread(fd, buf, len, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        len -= (size_t)r;
        off += r;
    }
    return 0;
}

int relay_store_read_metas(relay_store *st, uint8_t *buf, uint32_t psize)
{
    mdb_filehandle_t fd;
    int rc = mdb_env_get_fd(st->env, &fd);
    if (rc != 0)
        return map_err(st, rc);
    if (read_all_at(fd, buf, 2u * (size_t)psize, 0) != 0)
        return map_err(st, errno ? errno : EIO);
    return 0;
}

/* Wait (up to 10 s) until no other process has the LMDB environment in dir
 * open.  LMDB's processes hold a read lock on the first byte of lock.mdb;
 * the first opener takes a write lock there to learn it is alone.  The lock
 * taken here is dropped before LMDB opens (closing any descriptor of a file
 * drops this process's locks on it); another tool opening the store in
 * between is not excluded, only made unlikely. */
static int wait_store_unused(const char *dir, const char **why)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/lock.mdb", dir) >= sizeof path) {
        *why = "path too long";
        return ALCOVE_EINVAL;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        *why = "cannot open store/lock.mdb";
        return ALCOVE_ESTORE;
    }
    for (int i = 0; i < 500; i++) {
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = 0;
        fl.l_len = 1;
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            close(fd);
            return 0;
        }
        if (errno != EACCES && errno != EAGAIN)
            break;
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
    close(fd);
    *why = "another process has the store open (alcove-relay backup, stats or verify?); "
           "start the relay again when it has finished";
    return ALCOVE_ESTORE;
}

int relay_store_restore_metas(const char *dir, const uint8_t *metas, uint32_t psize,
                              const char **why)
{
    char path[PATH_MAX];
    size_t n = 2u * (size_t)psize;
    if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path) {
        *why = "path too long";
        return ALCOVE_EINVAL;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ENOENT ? "store/data.mdb is missing but store/journal exists"
                               : "cannot open store/data.mdb";
        return errno == ENOENT ? ALCOVE_ECORRUPT : ALCOVE_ESTORE;
    }
    uint8_t *cur = malloc(n);
    int rc = ALCOVE_ENOMEM;
    *why = "out of memory";
    if (cur == NULL)
        goto out;
    rc = ALCOVE_ESTORE;
    *why = "cannot read store/data.mdb";
    if (read_all_at(fd, cur, n, 0) != 0)
        goto out;
    if (memcmp(cur, metas, n) != 0) {
        /* Unsynced commits after the checkpoint: undo them (the journal
         * holds every acknowledged one and is replayed next).  Not while
         * another process (alcove-relay backup, stats, verify) has the
         * environment open: LMDB would keep that process's idea of the
         * newest transaction in lock.mdb. */
        rc = wait_store_unused(dir, why);
        if (rc != 0)
            goto out;
        rc = ALCOVE_ESTORE;
        *why = "cannot restore the checkpoint's meta pages in store/data.mdb";
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(fd, metas + done, n - done, (off_t)done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            done += (size_t)w;
        }
        if (fdatasync(fd) != 0)
            goto out;
    }
    rc = 0;
out:
    free(cur);
    close(fd);
    return rc;
}

int relay_store_rbegin(relay_store *st)
{
    if (pthread_rwlock_rdlock(&st->resize) != 0)
        return ALCOVE_ESTORE;
    int rc = st->rtxn ? mdb_txn_renew(st->rtxn)
                      : mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);
    if (rc != 0) {
        if (st->rtxn != NULL) {
            mdb_txn_abort(st->rtxn);
            st->rtxn = NULL;
        }
        pthread_rwlock_unlock(&st->resize);
        return map_err(st, rc);
    }
    return 0;
}

int relay_store_read_blob(relay_store *st, uint64_t gseq, const uint8_t **blob,
                          size_t *len)
{
    uint8_t kb[8];
    put_u64(kb, gseq);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(st->rtxn, st->log, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ALCOVE_ENOTFOUND;
    if (rc != 0)
        return map_err(st, rc);
    if (v.mv_size < RELAY_LOG_HDR)
        return ALCOVE_ECORRUPT;
    *blob = (const uint8_t *)v.mv_data + RELAY_LOG_HDR;
    *len = v.mv_size - RELAY_LOG_HDR;
    return 0;
}

void relay_store_rend(relay_store *st)
{
    if (st->rtxn != NULL)
        mdb_txn_reset(st->rtxn);
    pthread_rwlock_unlock(&st->resize);
}

uint64_t relay_store_map_size(const relay_store *st) { return st->map_size; }

int relay_store_usage(relay_store *st, uint64_t *used_bytes, uint64_t *map_bytes)
{
    MDB_envinfo info;
    MDB_stat stat;
    if (pthread_rwlock_rdlock(&st->resize) != 0)
        return ALCOVE_ESTORE;
    int rc = mdb_env_info(st->env, &info);
    if (rc == 0)
        rc = mdb_env_stat(st->env, &stat);
    pthread_rwlock_unlock(&st->resize);
    if (rc != 0)
        return ALCOVE_ESTORE;
    *used_bytes = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
    *map_bytes = info.me_mapsize;
    return 0;
}
