/* relay/metrics: the relay's counters and their Prometheus text rendering.
 *
 * The counters live in relay_server (loop thread only, no locking); the
 * rest of what /metrics shows is read at scrape time from state the relay
 * keeps anyway (open connections, close reasons, the writer's statistics,
 * the index, the LMDB environment).  Labels are only ever fixed, small sets
 * (command, status, close reason): never a mailbox, a key or an address. */
#ifndef ALCOVE_RELAY_METRICS_H
#define ALCOVE_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Request commands as counted; index 0 is a request without a command. */
#define RELAY_METRIC_CMDS(X) \
    X(NONE, "none")                 \
    X(HELLO, "hello")               \
    X(CREATE, "create_mailbox")     \
    X(LOGIN, "login")               \
    X(SEND, "send")                 \
    X(FETCH, "fetch")               \
    X(ACK, "ack")                   \
    X(SUBSCRIBE, "subscribe")       \
    X(DELETE, "delete_mailbox")     \
    X(PING, "ping")

typedef enum {
#define RELAY_MC_ENUM(n, s) RELAY_MCMD_##n,
    RELAY_METRIC_CMDS(RELAY_MC_ENUM)
#undef RELAY_MC_ENUM
    RELAY_MCMD__COUNT
} relay_metric_cmd;

/* Reply statuses: alcove.proto's Status values 0..8. */
#define RELAY_METRIC_NSTATUS 9

typedef struct relay_metrics {
    uint64_t requests[RELAY_MCMD__COUNT][RELAY_METRIC_NSTATUS];
    uint64_t handshakes_ok;     /* Noise handshakes completed */
    uint64_t bytes_in;          /* bytes read from client connections */
    uint64_t bytes_out;         /* bytes queued to client connections */
    uint64_t expired_messages;  /* removed by TTL expiry */
    uint64_t expired_mailboxes; /* removed by idle-mailbox expiry */
    uint64_t failed_ops_full;   /* writes refused: store reached max-store */
    uint64_t failed_ops_io;     /* writes failed: LMDB or fsync error */
    uint64_t reloads_ok, reloads_failed;
    uint64_t start_time_ms;     /* Unix ms */
    relay_metric_cmd cur_cmd;   /* command being dispatched (dispatch.c) */
} relay_metrics;

/* Map a Request's cmd_case (protobuf field number) to a counted command. */
relay_metric_cmd relay_metric_cmd_of(int cmd_case);

/* Count one answered request.  Out-of-range values are ignored. */
static inline void relay_metrics_request(relay_metrics *m, relay_metric_cmd cmd, int status)
{
    if ((unsigned)cmd < RELAY_MCMD__COUNT && status >= 0 && status < RELAY_METRIC_NSTATUS)
        m->requests[cmd][status]++;
}

struct relay_server;

/* Render every metric of a running relay in Prometheus text exposition
 * format 0.0.4.  Returns a malloc'd, NUL-terminated buffer (caller frees) and
 * its length in *len, or NULL when out of memory.  Loop thread only. */
char *relay_metrics_render(struct relay_server *srv, size_t *len);

#endif
