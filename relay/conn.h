/* relay/conn: one client connection: Noise handshake, framing, encrypted
 * replies, back-pressure and a reference-counted life.
 *
 * A connection is freed only when its socket has closed AND no pending
 * writer operation still references it (ops reply to it when they finish;
 * a closed connection just drops the reply). */
#ifndef ALCOVE_RELAY_CONN_H
#define ALCOVE_RELAY_CONN_H

#include <stdint.h>
#include <uv.h>

#include "alcove.pb-c.h"
#include "frame.h"
#include "noise.h"
#include "server.h"

typedef enum {
    CONN_HANDSHAKE, /* waiting for Noise message 1 */
    CONN_HELLO,     /* transport up, waiting for Hello */
    CONN_READY,
    CONN_CLOSING,   /* flushing a final reply, or closed */
} conn_state;

typedef struct conn_sess {
    relay_mbox *mb; /* referenced */
    int subscribed;
} conn_sess;

typedef struct conn {
    uv_tcp_t tcp;
    relay_server *srv;
    struct conn *prev, *next;
    alcove_frame_dec dec;
    alcove_noise_hs *hs;
    alcove_noise_transport *tx;
    uint8_t h[ALCOVE_NOISE_HASH_BYTES];
    uint64_t last_req_id;
    uint64_t deadline;      /* handshake deadline, then idle deadline */
    uint64_t rate_ts;       /* token bucket */
    uint32_t tokens;
    uint32_t refs;
    conn_state state;
    uint8_t paused;         /* reading stopped for back-pressure */
    uint8_t closed;         /* uv_close called */
    uint8_t shutting;       /* uv_shutdown in flight */
    uint8_t close_why;      /* reason to log once the flush is done */
    conn_sess *sess;
    uint32_t nsess, sess_cap;
    /* Coalesced output while the server is corked (see conn_cork). */
    uint8_t *obuf;
    uint32_t olen, ocap;
    struct conn *onext;     /* in the server's corked list (referenced) */
    uint8_t oqueued;
} conn;

/* Accept a new connection from the listener.  On failure the pending
 * connection is accepted and closed (counted). */
void conn_accept(relay_server *srv);

void conn_ref(conn *c);
/* Drop a reference; frees once closed and unreferenced.  NULL is a no-op. */
void conn_unref(conn *c);

/* Close now (drops queued writes).  Idempotent. */
void conn_close(conn *c, relay_close_reason why);
/* Stop reading, flush queued replies, then close. */
void conn_close_after_flush(conn *c, relay_close_reason why);

/* Encrypt and queue one RelayMessage.  Returns 0, or a negative error after
 * which the connection has been closed (the caller just stops). */
int conn_send(conn *c, const Alcove__Wire__RelayMessage *m);

/* Convenience: a Reply with status, detail (may be NULL) and no result. */
int conn_reply(conn *c, uint64_t id, Alcove__Wire__Status st, const char *detail);

/* Stop or resume reading (drain, back-pressure). */
void conn_pause(conn *c);
void conn_resume(conn *c);

/* Session lookup: the mailbox this connection is logged in to, or NULL. */
conn_sess *conn_find_sess(conn *c, const uint8_t recv_id[16]);
/* Add a session (takes a reference on mb).  Returns 0 or ALCOVE_ENOMEM /
 * ALCOVE_ELIMIT (too many mailboxes on one connection). */
int conn_add_sess(conn *c, relay_mbox *mb);

/* Handle one decoded Request (dispatch.c). */
void relay_dispatch(conn *c, const Alcove__Wire__Request *req);

/* Snapshot a mailbox's persistent fields. */
void relay_mbox_to_rec(const relay_mbox *mb, relay_mbox_rec *rec);
/* Queue deletion of stored messages with seq <= up_to (Ack or TTL expiry)
 * and record up_to as acked.  c may be NULL (relay-initiated: no reply).
 * Returns 0 or ALCOVE_ENOMEM. */
int relay_queue_trim(relay_server *srv, conn *c, uint64_t req_id, relay_mbox *mb,
                     uint64_t up_to);
/* Queue deletion of a mailbox and all its stored messages; it leaves the
 * index at once.  c may be NULL.  Returns 0 or ALCOVE_ENOMEM. */
int relay_queue_delete(relay_server *srv, conn *c, uint64_t req_id, relay_mbox *mb);

/* Cork: while corked, replies and pushes to each connection are gathered
 * and written with one write per connection at uncork, instead of one
 * system call per message.  Nests; the outermost uncork flushes. */
void conn_cork(relay_server *srv);
void conn_uncork(relay_server *srv);

/* Bytes queued to the peer and not yet written. */
size_t conn_queued(const conn *c);

#define CONN_MAX_SESSIONS 4096u

#endif
