/* client/store: the client's local encrypted store (DESIGN §6).
 *
 * An LMDB environment in <home>/store with named databases.  Every value is
 * sealed with the store key: nonce (24 random bytes) || XChaCha20-Poly1305
 * ciphertext, with associated data = database name || key, so a value moved
 * to another key or database fails to open.  Keys are random ids (plus a
 * big-endian counter for messages), never names or plaintext.
 *
 * All access happens inside a transaction; a write transaction commits
 * atomically and durably (LMDB's default sync), which is what lets the
 * client ack the relay only after its own commit. */
#ifndef ALCOVE_CLIENT_STORE_H
#define ALCOVE_CLIENT_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef enum cstore_db {
    CS_META = 0,     /* "meta" -> alcove.local.Meta */
    CS_CONTACTS = 1, /* contact id (16) -> alcove.local.Contact */
    CS_SESSIONS = 2, /* contact id (16) -> serialized ratchet state */
    CS_MESSAGES = 3, /* contact id (16) || u64 BE local seq -> alcove.local.Message */
    CS_AUDIT = 4,    /* u64 BE index -> alcove.local.AuditEntry; "head" -> AuditHead */
    CS__COUNT
} cstore_db;

/* Largest plaintext value (a ratchet state with every skipped key and the
 * whole duplicate window fits). */
#define CSTORE_VALUE_MAX (1u << 20)

typedef struct cstore cstore;
typedef struct cstore_txn cstore_txn;

/* Open or create the store in directory `dir` (created 0700 if missing).
 * The 32-byte key is copied into guarded memory.  Returns 0, ALCOVE_ESTORE
 * (*why says what), ALCOVE_ENOMEM. */
int cstore_open(cstore **out, const char *dir, const uint8_t key[32], const char **why);
/* Close and wipe.  NULL is a no-op.  No transaction may be open. */
void cstore_close(cstore *s);

/* Begin a transaction (write != 0 for a write transaction).
 * Returns 0, ALCOVE_ESTORE, ALCOVE_ENOMEM. */
int cstore_begin(cstore *s, int write, cstore_txn **out);
/* Commit (durably) and free the handle.  Returns 0 or ALCOVE_ESTORE (the
 * transaction is aborted then; nothing of it is stored). */
int cstore_commit(cstore_txn *t);
/* Abort and free.  NULL is a no-op. */
void cstore_abort(cstore_txn *t);

/* Seal and store a value.  Returns 0, ALCOVE_ETOOBIG, ALCOVE_ESTORE
 * (including a full disk or map), ALCOVE_ENOMEM. */
int cstore_put(cstore_txn *t, cstore_db db, const void *key, size_t klen,
               const void *val, size_t vlen);
/* Read and open a value.  *val is malloc'd; release it with
 * cstore_free_value (which wipes it).  Returns 0, ALCOVE_ENOTFOUND,
 * ALCOVE_ECORRUPT (does not authenticate), ALCOVE_ESTORE, ALCOVE_ENOMEM. */
int cstore_get(cstore_txn *t, cstore_db db, const void *key, size_t klen,
               uint8_t **val, size_t *vlen);
/* Delete a key; deleting an absent key is not an error.  Returns 0 or
 * ALCOVE_ESTORE. */
int cstore_del(cstore_txn *t, cstore_db db, const void *key, size_t klen);

/* Call fn for every key starting with prefix (plen may be 0), in key order,
 * with the opened value (valid only during the call).  fn returns 0 to go
 * on, anything else to stop (that value is returned).  Returns 0,
 * ALCOVE_ECORRUPT, ALCOVE_ESTORE, ALCOVE_ENOMEM, or fn's value. */
typedef int (*cstore_each_fn)(void *ctx, const uint8_t *key, size_t klen,
                              const uint8_t *val, size_t vlen);
int cstore_each(cstore_txn *t, cstore_db db, const void *prefix, size_t plen,
                cstore_each_fn fn, void *ctx);

/* Write a consistent, compacted copy of the whole store (every database,
 * values still sealed) into the existing empty directory dir, as dir/data.mdb
 * (mdb_env_copy2 with MDB_CP_COMPACT: a read transaction, so writers are not
 * blocked).  Returns 0 or ALCOVE_ESTORE. */
int cstore_copy(cstore *s, const char *dir);

/* Wipe and free a value from cstore_get.  NULL is a no-op. */
void cstore_free_value(uint8_t *val, size_t vlen);

#endif
