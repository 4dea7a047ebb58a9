/* A blocking connection to a relay: TCP, Noise NK handshake, then one
 * protobuf message per transport frame.  Used by the `alcove` CLI and by the
 * integration tests (which also need to send raw, hostile frames).
 *
 * All calls take a timeout in milliseconds (poll-based; never sleep-and-hope)
 * and return alcove error codes (proto/err.h). */
#ifndef ALCOVE_LINK_H
#define ALCOVE_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "alcove.pb-c.h"

typedef struct alcove_link alcove_link;

/* Connect to addr (host resolved with getaddrinfo), run the Noise NK
 * handshake against addr->key with prologue "alcove/1", and send nothing
 * else.  A negative timeout waits forever; the timeout covers the whole call.
 * Returns 0 and *out, or ALCOVE_ECONNECT, ALCOVE_ETIMEDOUT,
 * ALCOVE_EDECRYPT (the relay did not prove it holds addr->key: message 2
 * failed to decrypt, or the relay closed the connection after message 1,
 * which is what a relay with another key does), ALCOVE_ECLOSED (closed
 * before message 1 was sent), ALCOVE_EBADKEY (addr->key is a low-order
 * point), ALCOVE_EIO, ALCOVE_ENOMEM. */
int alcove_link_open(alcove_link **out, const alcove_relay_addr *addr,
                     int timeout_ms);

/* Like alcove_link_open, then sends Hello{version 1} and waits for its reply.
 * If hello_out is not NULL it receives the relay's HelloResult (caller frees
 * with alcove__wire__relay_message__free_unpacked on the enclosing message:
 * to keep it simple, hello_out is a copy of the plain fields).
 * Returns as alcove_link_open, or ALCOVE_ERELAY if the relay refused. */
int alcove_link_connect(alcove_link **out, const alcove_relay_addr *addr,
                        int timeout_ms, Alcove__Wire__HelloResult *hello_out);

/* The 64-byte Noise handshake hash of this connection (binds Login). */
const uint8_t *alcove_link_hash(const alcove_link *l);

/* The underlying socket (for poll() in `listen`). */
int alcove_link_fd(const alcove_link *l);

/* Assign req->id (the next id: 1, 2, 3, ...) unless `keep_id` is set, pack,
 * encrypt and send.  Returns 0, ALCOVE_ETOOBIG, ALCOVE_EIO, ALCOVE_ECLOSED,
 * ALCOVE_ETIMEDOUT.  Once a frame was encrypted, any failure to send it
 * leaves the link broken: later sends and receives return the same error. */
int alcove_link_send(alcove_link *l, Alcove__Wire__Request *req, int keep_id,
                     int timeout_ms);

/* Receive one RelayMessage (Reply or Push).  Caller frees *out with
 * alcove__wire__relay_message__free_unpacked(*out, NULL).  Returns 0,
 * ALCOVE_ETIMEDOUT (a partial frame stays buffered for the next call),
 * ALCOVE_ECLOSED (close or reset by the relay), ALCOVE_EDECRYPT,
 * ALCOVE_EPROTO (zero-length or short frame, or a protobuf that does not
 * decode within alcove_pb_budget_for(len)), ALCOVE_EIO, ALCOVE_ENOMEM.
 * Every error but ETIMEDOUT and a protobuf EPROTO leaves the link broken. */
int alcove_link_recv(alcove_link *l, Alcove__Wire__RelayMessage **out,
                     int timeout_ms);

/* Send req and wait for the Reply with its id.  Pushes that arrive in the
 * meantime are passed to on_push (if not NULL; it must not keep the pointer)
 * or dropped.  *out is the whole RelayMessage (its ->reply is the Reply);
 * free it as above.  Returns as send/recv. */
int alcove_link_call(alcove_link *l, Alcove__Wire__Request *req,
                     Alcove__Wire__RelayMessage **out, int timeout_ms,
                     void (*on_push)(void *ctx, const Alcove__Wire__Push *p),
                     void *ctx);

/* Tests only: encrypt `len` raw plaintext bytes as one transport message and
 * send it framed.  Returns as alcove_link_send. */
int alcove_link_send_plaintext(alcove_link *l, const uint8_t *pt, size_t len,
                               int timeout_ms);

/* Tests only: write raw bytes to the socket, bypassing Noise and framing. */
int alcove_link_send_raw(alcove_link *l, const uint8_t *bytes, size_t len,
                         int timeout_ms);

/* Close and wipe.  NULL is a no-op. */
void alcove_link_free(alcove_link *l);

/* Tests only: open a plain TCP connection to addr with no handshake.
 * Returns a connected blocking socket or a negative alcove error. */
int alcove_tcp_connect(const alcove_relay_addr *addr, int timeout_ms);

#endif
