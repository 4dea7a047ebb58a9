#include "cstore.h"

#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KEY_MAX 64u
#define MAP_SIZE (4ull << 30) /* address space only; the file grows as used */

static const char *const db_names[CS__COUNT] = {"meta", "contacts", "sessions", "messages",
                                                   "audit"};

struct cstore {
    MDB_env *env;
    MDB_dbi dbi[CS__COUNT];
    uint8_t *key; /* sodium_malloc'd, read-only */
};

struct cstore_txn {
    cstore *s;
    MDB_txn *txn;
};

_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "store key is 32 bytes");

/* 1 if the data file is shorter than the pages its meta page claims. */
static int file_truncated(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat ms;
    mdb_filehandle_t fd;
    struct stat sb;
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &ms) != 0 ||
        mdb_env_get_fd(env, &fd) != 0 || fstat(fd, &sb) != 0)
        return 1;
    return (uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
}

int cstore_open(cstore **out, const char *dir, const uint8_t key[32], const char **why)
{
    cstore *s = calloc(1, sizeof *s);
    MDB_txn *txn = NULL;
    int rc;
    *why = "out of memory";
    if (s == NULL)
        return ALCOVE_ENOMEM;
    if ((s->key = sodium_malloc(32)) == NULL) {
        free(s);
        return ALCOVE_ENOMEM;
    }
    memcpy(s->key, key, 32);
    sodium_mprotect_readonly(s->key);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        *why = strerror(errno);
        cstore_close(s);
        return ALCOVE_ESTORE;
    }
    if ((rc = mdb_env_create(&s->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, CS__COUNT + 1)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)MAP_SIZE)) != 0 ||
        (rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600)) != 0)
        goto fail;
    if (file_truncated(s->env)) {
        /* Touching a page past the end of the file would be SIGBUS. */
        *why = "the store file is truncated (restore from a backup)";
        cstore_close(s);
        return ALCOVE_ECORRUPT;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        goto fail;
    for (int i = 0; i < CS__COUNT; i++)
        if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i])) != 0)
            goto fail;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    *why = mdb_strerror(rc);
    cstore_close(s);
    return ALCOVE_ESTORE;
}

void cstore_close(cstore *s)
{
    if (s == NULL)
        return;
    if (s->env != NULL)
        mdb_env_close(s->env);
    if (s->key != NULL)
        sodium_free(s->key);
    free(s);
}

int cstore_begin(cstore *s, int write, cstore_txn **out)
{
    cstore_txn *t = calloc(1, sizeof *t);
    if (t == NULL)
        return ALCOVE_ENOMEM;
    t->s = s;
    if (mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn) != 0) {
        free(t);
        return ALCOVE_ESTORE;
    }
    *out = t;
    return 0;
}

int cstore_commit(cstore_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    free(t);
    return rc == 0 ? 0 : ALCOVE_ESTORE;
}

void cstore_abort(cstore_txn *t)
{
    if (t == NULL)
        return;
    mdb_txn_abort(t->txn);
    free(t);
}

/* ad = database name || key */
static size_t make_ad(uint8_t *ad, cstore_db db, const void *key, size_t klen)
{
    size_t n = strlen(db_names[db]);
    memcpy(ad, db_names[db], n);
    memcpy(ad + n, key, klen);
    return n + klen;
}

int cstore_put(cstore_txn *t, cstore_db db, const void *key, size_t klen,
               const void *val, size_t vlen)
{
    uint8_t ad[16 + KEY_MAX];
    if (klen == 0 || klen > KEY_MAX || vlen > CSTORE_VALUE_MAX)
        return ALCOVE_ETOOBIG;
    MDB_val k = {klen, (void *)(uintptr_t)key}, v = {NONCE + vlen + TAG, NULL};
    int rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, MDB_RESERVE);
    if (rc != 0)
        return rc == ENOMEM ? ALCOVE_ENOMEM : ALCOVE_ESTORE;
    uint8_t *p = v.mv_data;
    randombytes_buf(p, NONCE);
    size_t adlen = make_ad(ad, db, key, klen);
    crypto_aead_xchacha20poly1305_ietf_encrypt(p + NONCE, NULL, val, vlen, ad, adlen, NULL, p,
                                               t->s->key);
    return 0;
}

static int open_value(const cstore_txn *t, cstore_db db, const MDB_val *k, const MDB_val *v,
                      uint8_t **val, size_t *vlen)
{
    uint8_t ad[16 + KEY_MAX];
    if (k->mv_size == 0 || k->mv_size > KEY_MAX || v->mv_size < NONCE + TAG ||
        v->mv_size - NONCE - TAG > CSTORE_VALUE_MAX)
        return ALCOVE_ECORRUPT;
    size_t n = v->mv_size - NONCE - TAG;
    uint8_t *out = malloc(n ? n : 1);
    if (out == NULL)
        return ALCOVE_ENOMEM;
    const uint8_t *p = v->mv_data;
    size_t adlen = make_ad(ad, db, k->mv_data, k->mv_size);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, p + NONCE, n + TAG, ad,
                                                   adlen, p, t->s->key) != 0) {
        free(out);
        return ALCOVE_ECORRUPT;
    }
    *val = out;
    *vlen = n;
    return 0;
}

int cstore_get(cstore_txn *t, cstore_db db, const void *key, size_t klen,
               uint8_t **val, size_t *vlen)
{
    MDB_val k = {klen, (void *)(uintptr_t)key}, v;
    int rc = mdb_get(t->txn, t->s->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND)
        return ALCOVE_ENOTFOUND;
    if (rc != 0)
        return ALCOVE_ESTORE;
    return open_value(t, db, &k, &v, val, vlen);
}

int cstore_del(cstore_txn *t, cstore_db db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)(uintptr_t)key};
    int rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ALCOVE_ESTORE;
}

int cstore_each(cstore_txn *t, cstore_db db, const void *prefix, size_t plen,
                cstore_each_fn fn, void *ctx)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)(uintptr_t)prefix}, v;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &cur);
    if (rc != 0)
        return ALCOVE_ESTORE;
    int result = 0;
    rc = plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        uint8_t *val = NULL;
        size_t vlen = 0;
        result = open_value(t, db, &k, &v, &val, &vlen);
        if (result == 0) {
            result = fn(ctx, k.mv_data, k.mv_size, val, vlen);
            cstore_free_value(val, vlen);
        }
        if (result != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (result != 0)
        return result;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ALCOVE_ESTORE;
}

int cstore_copy(cstore *s, const char *dir)
{
    return mdb_env_copy2(s->env, dir, MDB_CP_COMPACT) == 0 ? 0 : ALCOVE_ESTORE;
}

void cstore_free_value(uint8_t *val, size_t vlen)
{
    if (val == NULL)
        return;
    sodium_memzero(val, vlen);
    free(val);
}
