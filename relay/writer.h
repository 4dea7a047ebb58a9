/* relay/writer: the group-commit writer thread (DESIGN §4, with the
 * journal of docs/protocol.md "Journal").
 *
 * The loop thread queues operations; the writer thread takes everything
 * queued so far and, for that batch: applies it in one LMDB write
 * transaction; writes one journal record holding it and fdatasyncs the
 * journal (one sync, an overwrite of preallocated blocks); commits the LMDB
 * transaction without syncing; and hands the whole batch back to the loop
 * thread through a uv_async_t.  The loop then updates the index and sends
 * replies and pushes: no reply claims durability before the journal record
 * is synced.
 *
 * Checkpoints (every ckpt_bytes of journal, ckpt_ms after the first record
 * since the last one, at start and at stop) sync data.mdb and record LMDB's
 * meta pages in the journal, which then starts afresh.  A checkpoint whose
 * data sync fails is never retried in this process (Linux may have dropped
 * the pages that failed to write and would report the next sync clean):
 * batches keep being journaled until the journal is full, then fail with
 * ALCOVE_ESTORE until a restart replays the journal.
 *
 * An op owns copies of every byte it writes; the writer thread never touches
 * the index or a connection.  If a batch fails (I/O error, disk full, map cap
 * reached) every op in it gets the error and nothing of it is stored. */
#ifndef ALCOVE_RELAY_WRITER_H
#define ALCOVE_RELAY_WRITER_H

#include <stdint.h>
#include <uv.h>

#include "hist.h"
#include "journal.h"
#include "op.h"
#include "store.h"

typedef struct relay_writer relay_writer;

/* Called on the loop thread with a batch (a list linked by ->next, in queue
 * order) once it is committed or has failed.  The callback owns the ops and
 * must free them with relay_op_free. */
typedef void (*relay_writer_done_cb)(void *ctx, relay_op *batch);

typedef struct relay_writer_stats {
    uint64_t commits, ops, failed_batches, map_grows;
    uint64_t checkpoints, checkpoint_failures, journal_bytes;
    int checkpoint_broken; /* a data sync failed: no checkpoint until restart */
    relay_hist batch_ops; /* ops per commit */
    relay_hist commit_us; /* microseconds per commit_batch (apply + journal + commit) */
    relay_hist checkpoint_us;
} relay_writer_stats;

/* Replay the journal into the store at start-up (before relay_store_load),
 * then take a checkpoint.  Must run before relay_writer_start, on the same
 * store and journal.  *batches and *ops count what was replayed.  Returns 0,
 * ALCOVE_ECORRUPT (a record with a valid checksum that does not decode),
 * ALCOVE_ELIMIT (the store cap leaves no room even with its reserve),
 * ALCOVE_ESTORE, ALCOVE_EIO, ALCOVE_ENOMEM. */
int relay_writer_recover(relay_store *st, relay_journal *j, uint64_t *batches, uint64_t *ops);

/* A store without a journal: sync it and create <storedir>/journal of
 * `bytes` whose first checkpoint is the store as it is.  Returns 0 or an
 * alcove error with a static message in *why. */
int relay_writer_create_journal(relay_store *st, const char *storedir, uint64_t bytes,
                                relay_journal **out, const char **why);

/* Start the writer thread.  max_batch_ops and max_batch_bytes bound one
 * transaction (the rest waits for the next).  Returns 0, ALCOVE_ENOMEM, or
 * ALCOVE_EIO if the thread or async handle could not be created. */
int relay_writer_start(relay_writer **out, uv_loop_t *loop, relay_store *st,
                       relay_journal *j, uint32_t max_batch_ops, uint64_t max_batch_bytes,
                       relay_writer_done_cb cb, void *ctx);

/* Queue an op (loop thread).  Never fails; the op is owned by the writer
 * until it comes back through the callback. */
void relay_writer_submit(relay_writer *w, relay_op *op);

/* A read (Fetch) was served in this loop iteration: this iteration's batch
 * goes to the writer thread, so that the loop keeps serving reads while
 * the batch syncs, instead of writing it itself. */
void relay_writer_note_reader(relay_writer *w);

/* Number of ops submitted whose batch has not come back yet. */
uint64_t relay_writer_inflight(const relay_writer *w);

relay_writer_stats relay_writer_get_stats(relay_writer *w);

/* Stop: the thread finishes every queued op first (their callbacks still
 * run on the loop), takes a last checkpoint, then exits.  The async handle is closed; keep running
 * the loop until it has closed, then call relay_writer_free. */
void relay_writer_stop(relay_writer *w);
/* Join the thread and free.  NULL is a no-op. */
void relay_writer_free(relay_writer *w);

#endif
