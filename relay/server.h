/* relay/server: the alcove-relay event loop (libuv, one thread) with its
 * connections, the group-commit writer and the expiry timers.
 *
 * relay_server_run() is the whole life of `alcove-relay run`: it returns when
 * SIGTERM/SIGINT has drained the relay (0) or when start-up failed. */
#ifndef ALCOVE_RELAY_SERVER_H
#define ALCOVE_RELAY_SERVER_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "config.h"
#include "index.h"
#include "log.h"
#include "store.h"
#include "writer.h"

/* Why connections close; each counted and logged by name. */
#define RELAY_CLOSE_REASONS(X) \
    X(PEER_CLOSED, "peer_closed") \
    X(READ_ERROR, "read_error") \
    X(WRITE_ERROR, "write_error") \
    X(BAD_FRAME, "bad_frame") \
    X(HANDSHAKE_FAILED, "handshake_failed") \
    X(DECRYPT_FAILED, "decrypt_failed") \
    X(UNDECODABLE, "undecodable") \
    X(PROTOCOL, "protocol_violation") \
    X(HANDSHAKE_TIMEOUT, "handshake_timeout") \
    X(IDLE_TIMEOUT, "idle_timeout") \
    X(SLOW_READER, "slow_reader") \
    X(CONN_LIMIT, "connection_limit") \
    X(NO_MEMORY, "out_of_memory") \
    X(SHUTDOWN, "shutdown")

typedef enum {
#define RELAY_CR_ENUM(n, s) CLOSE_##n,
    RELAY_CLOSE_REASONS(RELAY_CR_ENUM)
#undef RELAY_CR_ENUM
    CLOSE__COUNT
} relay_close_reason;

struct conn;

typedef uint64_t (*relay_clock_fn)(void *ctx); /* Unix ms */

typedef struct relay_server {
    uv_loop_t *loop;
    const relay_config *cfg;
    relay_log *log;
    relay_clock_fn now;
    void *now_ctx;
    relay_store *store;
    relay_index *index;
    relay_writer *writer;
    uint8_t *static_sk; /* sodium_malloc'd, not owned */
    uint8_t static_pk[32];

    uv_tcp_t listener;
    uv_timer_t sweep;   /* timeouts, drain progress */
    uv_timer_t expiry;  /* TTL and idle-mailbox expiry */
    uv_signal_t sig_term, sig_int, sig_hup;
    struct conn *conns; /* doubly linked list of open connections */
    uint32_t nconns;
    uint64_t next_gseq;
    int draining;
    uint64_t drain_deadline;
    int exit_code;

    uint8_t readbuf[65536];   /* shared: consumed within each read callback */
    uint8_t scratch[65536];   /* decrypted request plaintext */
    uint8_t outbuf[65536];    /* packed reply plaintext */

    int cork_depth;     /* >0: conn_send gathers output (conn.c) */
    struct conn *corked;

    uint64_t closes[CLOSE__COUNT];
    uint64_t accepted;
} relay_server;

/* Run the relay described by cfg until drained.  Prints the relay address
 * (one line) to `out` once listening.  Returns the process exit code. */
int relay_server_run(const relay_config *cfg, relay_log *log, FILE *out);

/* Called by the writer callback for each finished batch (server.c). */
void relay_server_on_batch(void *ctx, relay_op *batch);

/* Name of a close reason. */
const char *relay_close_reason_name(relay_close_reason r);

#endif
