/* relay/store: the LMDB half of the relay's storage (DESIGN §4).
 *
 * Databases in one environment (directory <data>/store):
 *   log   u64 big-endian global sequence -> recv_id(16) || seq(u64 BE) ||
 *         received_at(u64 BE) || blob; always appended with MDB_APPEND.
 *   mbox  recv_id(16) -> version(1) || auth_pub(32) || send_id(16) ||
 *         send_key_hash(32) || created_at || last_seen || acked_seq (u64 BE).
 *   meta  "schema" -> u32 BE schema version (1).
 *
 * Writes happen only on the writer thread inside one write transaction per
 * group commit (relay_store_wbegin .. wcommit).  Reads (Fetch) happen on the
 * loop thread between relay_store_rbegin and relay_store_rend.  Growing the
 * map (on MDB_MAP_FULL) takes an internal lock that excludes readers, as LMDB
 * requires that no transaction be active while the map size changes. */
#ifndef ALCOVE_RELAY_STORE_H
#define ALCOVE_RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"

#define RELAY_SCHEMA_VERSION 1u
#define RELAY_LOG_HDR (16u + 8u + 8u)

typedef struct relay_store relay_store;

typedef struct relay_mbox_rec {
    uint8_t auth_pub[32];
    uint8_t send_id[16];
    uint8_t send_key_hash[32];
    uint64_t created_at;
    uint64_t last_seen;
    uint64_t acked_seq;
} relay_mbox_rec;

/* Open (creating if needed) the environment in `dir` (must exist, 0700).
 * max_map_bytes caps growth (0 = no cap).  Returns 0, ALCOVE_ESTORE (with a
 * message in *why, static or from mdb_strerror), ALCOVE_ENOMEM. */
int relay_store_open(relay_store **out, const char *dir, uint64_t max_map_bytes,
                     const char **why);
void relay_store_close(relay_store *st);

/* Rebuild `ix` from disk: every mailbox, then one scan of `log` in order.
 * Log records of unknown mailboxes or already-acked seqs are deleted.
 * *next_gseq receives 1 + the highest log key.  *nmsgs counts messages
 * indexed.  Returns 0, ALCOVE_ESTORE, ALCOVE_ECORRUPT, ALCOVE_ENOMEM. */
int relay_store_load(relay_store *st, relay_index *ix, uint64_t *next_gseq,
                     uint64_t *nmsgs);

/* --- writer thread ------------------------------------------------------ */
/* All w* calls return 0, ALCOVE_ELIMIT (map full: abort, relay_store_grow,
 * retry), ALCOVE_ESTORE (any other LMDB or I/O error; abort). */
int relay_store_wbegin(relay_store *st);
int relay_store_put_mbox(relay_store *st, const uint8_t recv_id[16],
                         const relay_mbox_rec *rec);
int relay_store_del_mbox(relay_store *st, const uint8_t recv_id[16]);
int relay_store_append(relay_store *st, uint64_t gseq, const uint8_t recv_id[16],
                       uint64_t seq, uint64_t received_at, const uint8_t *blob,
                       size_t len);
/* Deleting an absent key is not an error. */
int relay_store_del_log(relay_store *st, uint64_t gseq);
/* Commit.  The environment runs with MDB_NOSYNC: a commit writes its pages
 * and meta page but syncs nothing.  Durability is the journal's
 * (relay/journal.h); data.mdb is made durable by relay_store_sync at
 * checkpoints. */
int relay_store_wcommit(relay_store *st);
/* Commit a tiny change (meta "tick" += 1), growing into the reserve if
 * needed: it moves LMDB's transaction id past the last one that freed pages,
 * so that after the next checkpoint's pin those pages can be reused. */
int relay_store_tick(relay_store *st);
/* Start writing back data.mdb's dirty pages without waiting (so that the
 * next checkpoint's sync has little left to do). */
void relay_store_writeback(relay_store *st);
void relay_store_wabort(relay_store *st);
/* Double the map size (bounded by max_map_bytes; with use_reserve, by
 * max_map_bytes plus a reserve of max(1 MiB, cap/16) that only operations
 * freeing space may use, so a full store can still be emptied).  Returns 0, or
 * ALCOVE_ELIMIT when the cap is reached, ALCOVE_ESTORE. */
int relay_store_grow(relay_store *st, int use_reserve);
/* Before a transaction that adds data: if the map was grown into the
 * reserve, bring it back to max_map_bytes (or to the pages in use, if more)
 * so that additions never eat the reserve.  Returns 0 or ALCOVE_ESTORE. */
int relay_store_fit_cap(relay_store *st);
/* Flush to disk (mdb_env_sync force).  Returns 0 or ALCOVE_ESTORE. */
int relay_store_sync(relay_store *st);
/* LMDB's page size (0 on failure). */
uint32_t relay_store_page_size(relay_store *st);
/* Raw copy of LMDB's two meta pages (2 * psize bytes at the file's start),
 * for a checkpoint.  Returns 0 or ALCOVE_ESTORE. */
int relay_store_read_metas(relay_store *st, uint8_t *buf, uint32_t psize);
/* Before relay_store_open: write the meta pages saved by the last checkpoint
 * back into <dir>/data.mdb (if they differ) and fdatasync, so that LMDB opens
 * that checkpoint's snapshot.  Returns 0, ALCOVE_ECORRUPT (no data.mdb),
 * ALCOVE_ESTORE, ALCOVE_ENOMEM with a static message in *why. */
int relay_store_restore_metas(const char *dir, const uint8_t *metas, uint32_t psize,
                              const char **why);
/* Checkpoint pins (store.c): pin_push begins a read transaction on the
 * current snapshot, keeping the previous pin; pin_settle(1) then releases
 * the previous one (the new checkpoint is durable), pin_settle(0) the new
 * one (it is not).  Writer thread only.  Returns 0 or ALCOVE_ESTORE. */
int relay_store_pin_push(relay_store *st);
void relay_store_pin_settle(relay_store *st, int keep_new);
/* errno-like detail of the last failure (mdb_strerror text), for logs. */
const char *relay_store_last_error(const relay_store *st);
/* The raw code behind it (an LMDB or errno value), for the writer to hand
 * to the loop thread with a failed op; mdb_strerror() turns it into text. */
int relay_store_last_rc(const relay_store *st);

/* --- loop thread reads ---------------------------------------------------- */
int relay_store_rbegin(relay_store *st);
/* Blob of log record gseq; valid until relay_store_rend.  Returns 0,
 * ALCOVE_ENOTFOUND, ALCOVE_ECORRUPT, ALCOVE_ESTORE. */
int relay_store_read_blob(relay_store *st, uint64_t gseq, const uint8_t **blob,
                          size_t *len);
void relay_store_rend(relay_store *st);

/* Current map size in bytes (for logs and tests). */
uint64_t relay_store_map_size(const relay_store *st);

/* For /metrics, any thread: bytes up to the highest page in use and the map
 * size.  Returns 0 or ALCOVE_ESTORE. */
int relay_store_usage(relay_store *st, uint64_t *used_bytes, uint64_t *map_bytes);

#endif
