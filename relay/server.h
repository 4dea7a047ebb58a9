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

#include "admin.h"
#include "config.h"
#include "index.h"
#include "log.h"
#include "metrics.h"
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

/* SIGHUP: build the settings afresh (defaults, config file, flags) into
 * *fresh.  Returns 0, or an alcove error with the reason written to err. */
typedef int (*relay_reload_fn)(void *ctx, relay_config *fresh, FILE *err);
typedef struct relay_reload {
    relay_reload_fn fn; /* NULL: SIGHUP only reopens the log */
    void *ctx;
} relay_reload;

typedef struct relay_server {
    uv_loop_t *loop;
    const relay_config *cfg;
    relay_log *log;
    relay_clock_fn now;
    void *now_ctx;
    relay_store *store;
    relay_journal *journal;
    int checkpoint_broken_logged;
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

    relay_metrics metrics;  /* counters for /metrics (loop thread) */
    relay_admin *admin;     /* admin listener, or NULL */
    relay_reload reload;
    relay_config *live_cfg; /* == cfg: the copy SIGHUP updates */
    uint64_t nofile_cap;    /* max-connections ceiling from RLIMIT_NOFILE */
} relay_server;

/* Run the relay described by cfg until drained.  Prints the relay address
 * (one line) to `out` once listening, then tells systemd READY=1 (a no-op
 * outside systemd).  SIGHUP reloads the reloadable settings through
 * `reload` (may be NULL) and reopens the log; SIGTERM/SIGINT drain.
 * Returns the process exit code. */
int relay_server_run(const relay_config *cfg, relay_log *log, FILE *out,
                     const relay_reload *reload);

/* One expiry pass: TTL trims and idle-mailbox deletes (expiry.c). */
void relay_expiry_run(relay_server *srv);

/* Called by the writer callback for each finished batch (server.c). */
void relay_server_on_batch(void *ctx, relay_op *batch);
/* Log once when the writer's checkpoints broke (relay/writer.h). */
void relay_server_check_writer(relay_server *srv);

/* SIGHUP (reload.c): reopen the log, rebuild the settings through
 * srv->reload and apply the reloadable ones; a bad config is refused with an
 * `event=reload ok=no` log line.  Tells systemd RELOADING=1, then READY=1. */
void relay_server_reload(relay_server *srv);
/* Lower cfg->max_connections to what RLIMIT_NOFILE allows (reload.c). */
void relay_server_cap_connections(relay_server *srv, relay_config *cfg);
/* After settings changed: restart the expiry and sweep timers if their
 * intervals differ from the old ones (server.c). */
void relay_server_retime(relay_server *srv, uint64_t old_expiry_ms, uint64_t old_sweep_ms);
/* The sweep timer's interval for these timeouts. */
uint64_t relay_server_sweep_ms(const relay_config *cfg);

/* Name of a close reason. */
const char *relay_close_reason_name(relay_close_reason r);

#endif
