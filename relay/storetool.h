/* relay/storetool: the operator's view of a relay store, from outside the
 * relay process: `stats`, `verify` and `backup`.
 *
 * Each opens <data>/store as a second, read-only LMDB environment.  LMDB
 * supports several processes on one environment, so all three work while
 * the relay runs: they read one consistent snapshot (a read transaction),
 * never block the relay's writer, and never change the store.  (LMDB may
 * create the lock file if it is missing; when run as root it is then given
 * to the owner of the data file, so the relay can still open it.) */
#ifndef ALCOVE_RELAY_STORETOOL_H
#define ALCOVE_RELAY_STORETOOL_H

#include <stdint.h>
#include <stdio.h>

/* What one walk over a store found. */
typedef struct relay_store_report {
    uint32_t schema;
    uint64_t mailboxes;
    uint64_t messages;       /* log records the relay would serve */
    uint64_t message_bytes;  /* their blob bytes */
    uint64_t largest_mailbox; /* messages in the fullest mailbox */
    uint64_t oldest_ms, newest_ms; /* received_at range (0: none) */
    uint64_t orphans;        /* log records of a mailbox that is gone */
    uint64_t leftovers;      /* log records at or below their acked seq */
    uint64_t last_gseq;      /* highest log key (0: empty) */
    uint64_t map_bytes, used_bytes, file_bytes, page_size;
    uint64_t errors;         /* records that break the format or an invariant */
    uint64_t warnings;
} relay_store_report;

/* Walk the store of data_dir and fill *r.  When `problems` is not NULL,
 * every error and warning is printed there, one line each ("error: ..." /
 * "warning: ...", at most 20 of each kind, then a count).  Returns 0 (the
 * walk finished: look at r->errors), ALCOVE_ENOTFOUND (no store there),
 * ALCOVE_ESTORE with a message on err. */
int relay_store_scan(const char *data_dir, relay_store_report *r, FILE *problems, FILE *err);

/* Print r as Prometheus text (the store gauges of /metrics, same names,
 * plus a few figures only a full walk can give). */
void relay_store_report_print(const relay_store_report *r, const char *data_dir, FILE *out);

/* Copy data_dir to the new directory dest: a compacted, consistent copy of
 * the store (mdb_env_copy2 with MDB_CP_COMPACT, one read transaction, so it
 * is safe while the relay runs), plus the relay key and public address.  The
 * copy is made in dest.partial, synced, walked (it must verify), then
 * renamed to dest.  Fills *copied with the walk of the copy.  Returns 0,
 * ALCOVE_EEXIST (dest exists), ALCOVE_ENOTFOUND, ALCOVE_EIO, ALCOVE_ESTORE,
 * ALCOVE_ECORRUPT (the copy does not verify), with a message on err. */
int relay_store_backup(const char *data_dir, const char *dest, relay_store_report *copied,
                       FILE *err);

#endif
