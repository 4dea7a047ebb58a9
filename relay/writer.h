/* relay/writer: the group-commit writer thread (DESIGN §4).
 *
 * The loop thread queues operations; the writer thread takes everything
 * queued so far, applies it in one LMDB write transaction, commits once (one
 * fsync), and hands the whole batch back to the loop thread through a
 * uv_async_t.  The loop then updates the index and sends replies and pushes:
 * no reply claims durability before the data is synced.
 *
 * An op owns copies of every byte it writes; the writer thread never touches
 * the index or a connection.  If a batch fails (I/O error, disk full, map cap
 * reached) every op in it gets the error and nothing of it is on disk. */
#ifndef ALCOVE_RELAY_WRITER_H
#define ALCOVE_RELAY_WRITER_H

#include <stdint.h>
#include <uv.h>

#include "hist.h"
#include "store.h"

typedef enum relay_op_kind {
    OP_CREATE, /* put mbox record */
    OP_SEND,   /* append one log record */
    OP_TRIM,   /* delete log records gseqs[]; put mbox record (ack/expiry) */
    OP_DELETE, /* delete log records gseqs[] and the mbox record */
    OP_TOUCH,  /* put mbox record (last_seen) */
    OP_PURGE,  /* delete log records gseqs[] only */
} relay_op_kind;

typedef struct relay_op {
    struct relay_op *next;
    relay_op_kind kind;
    int result;          /* set by the writer: 0 or an alcove error */
    int store_rc;        /* with a failure: the LMDB/errno code behind it */
    /* Loop-thread context, not touched by the writer: */
    relay_mbox *mb;      /* referenced, or NULL */
    struct conn *conn;   /* referenced, or NULL when no reply is due */
    uint64_t req_id;
    /* Data the writer writes: */
    uint8_t recv_id[RELAY_ID_BYTES];
    relay_mbox_rec rec;  /* CREATE, TRIM, TOUCH */
    uint64_t gseq, seq, received_at; /* SEND */
    uint8_t *blob;       /* SEND, owned */
    uint32_t blob_len;
    uint64_t *gseqs;     /* TRIM, DELETE, PURGE, owned */
    uint32_t ngseqs;
    uint64_t new_acked;  /* TRIM */
} relay_op;

typedef struct relay_writer relay_writer;

/* Called on the loop thread with a batch (a list linked by ->next, in queue
 * order) once it is committed or has failed.  The callback owns the ops and
 * must free them with relay_op_free. */
typedef void (*relay_writer_done_cb)(void *ctx, relay_op *batch);

typedef struct relay_writer_stats {
    uint64_t commits, ops, failed_batches, map_grows;
    relay_hist batch_ops; /* ops per commit */
    relay_hist commit_us; /* microseconds per commit_batch (apply + commit) */
} relay_writer_stats;

/* Start the writer thread.  max_batch_ops and max_batch_bytes bound one
 * transaction (the rest waits for the next).  Returns 0, ALCOVE_ENOMEM, or
 * ALCOVE_EIO if the thread or async handle could not be created. */
int relay_writer_start(relay_writer **out, uv_loop_t *loop, relay_store *st,
                       uint32_t max_batch_ops, uint64_t max_batch_bytes,
                       relay_writer_done_cb cb, void *ctx);

/* Queue an op (loop thread).  Never fails; the op is owned by the writer
 * until it comes back through the callback. */
void relay_writer_submit(relay_writer *w, relay_op *op);

/* Number of ops submitted whose batch has not come back yet. */
uint64_t relay_writer_inflight(const relay_writer *w);

relay_writer_stats relay_writer_get_stats(relay_writer *w);

/* Stop: the thread finishes every queued op first (their callbacks still
 * run on the loop), then exits.  The async handle is closed; keep running
 * the loop until it has closed, then call relay_writer_free. */
void relay_writer_stop(relay_writer *w);
/* Join the thread and free.  NULL is a no-op. */
void relay_writer_free(relay_writer *w);

relay_op *relay_op_new(relay_op_kind kind);
/* Frees the op's buffers (not its mb/conn references). */
void relay_op_free(relay_op *op);

#endif
