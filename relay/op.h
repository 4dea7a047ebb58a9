/* relay/op: one storage operation, as queued by the loop thread, applied by
 * the writer thread, and recorded in the journal (relay/journal.h).
 *
 * An op owns copies of every byte it writes.  The journal encoding of a
 * batch (a list of ops) is the op fields in a fixed binary layout
 * (docs/protocol.md, appendix "Journal"); replaying a batch applies exactly
 * what the live writer applied. */
#ifndef ALCOVE_RELAY_OP_H
#define ALCOVE_RELAY_OP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef enum relay_op_kind {
    OP_CREATE = 1, /* put mbox record */
    OP_SEND,       /* append one log record */
    OP_TRIM,       /* delete log records gseqs[]; put mbox record (ack/expiry) */
    OP_DELETE,     /* delete log records gseqs[] and the mbox record */
    OP_TOUCH,      /* put mbox record (last_seen) */
    OP_PURGE,      /* delete log records gseqs[] only */
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

relay_op *relay_op_new(relay_op_kind kind);
/* Frees the op's buffers (not its mb/conn references). */
void relay_op_free(relay_op *op);
/* Free a list linked by ->next. */
void relay_op_free_list(relay_op *list);

/* Apply one op inside the store's open write transaction.  Returns what the
 * store calls return (0, ALCOVE_ELIMIT, ALCOVE_ESTORE). */
int relay_op_apply(relay_store *st, const relay_op *op);

/* Operations that add data; at the store's cap they are refused. */
int relay_op_adds_data(const relay_op *op);

/* Bytes relay_op_encode writes for op. */
size_t relay_op_encoded_size(const relay_op *op);
/* Encode op at p (relay_op_encoded_size(op) bytes available); returns the
 * end. */
uint8_t *relay_op_encode(const relay_op *op, uint8_t *p);
/* Decode a whole journal payload into a list of new ops (in order).
 * Returns 0, ALCOVE_ECORRUPT (any malformed or trailing byte; *out is then
 * NULL), ALCOVE_ENOMEM.  Bounds: every length is checked against the
 * payload, never trusted for an allocation beyond it. */
int relay_op_decode_list(const uint8_t *p, size_t len, relay_op **out);

#endif
