/* bench/: one load-generation engine on libuv shared by every system under
 * test, so that the client side costs the same CPU for the relay and for
 * each peer (the machine has 2 cores: a heavier client would skew the
 * comparison).  A "target" supplies the server's life (start, stop) and its
 * wire protocol (handshake, one 1 KiB durable-or-not write, its reply).
 *
 * Every loop is bounded by a count and by time; every buffer has a cap. */
#ifndef ALCOVE_BENCH_H
#define ALCOVE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define BENCH_RX_CAP (256u * 1024u)   /* unparsed input per connection */
#define BENCH_OUT_CAP (8u * 1024u * 1024u) /* queued output per connection */
#define BENCH_MAX_WINDOW 1024u
#define BENCH_MAX_CONNS 65536u
#define BENCH_MAX_SAMPLES 20000000u

typedef struct bench bench;
typedef struct bconn bconn;

typedef enum {
    BC_CONNECTING,
    BC_HANDSHAKE, /* TCP up, protocol handshake in progress */
    BC_READY,
    BC_CLOSED,
} bconn_state;

typedef struct bslot {
    uint64_t wire_id;
    uint64_t t_ns;
} bslot;

struct bconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    bench *b;
    uint32_t idx;
    bconn_state state;
    int writing;          /* a uv_write of wbuf is in flight */
    int closing;
    uint8_t *out;         /* bytes queued, not yet handed to libuv */
    size_t out_len, out_cap;
    uint8_t *wbuf;        /* bytes handed to libuv */
    size_t wbuf_cap;
    uint8_t *rx;          /* unparsed input carried between reads */
    size_t rx_len, rx_cap;
    bslot *slots;         /* in-flight requests (window) */
    uint32_t inflight;
    uint64_t sent, acked;
    void *priv;           /* target's per-connection state */
};

/* What a target implements. */
typedef struct target_ops {
    const char *name;
    const char *durable;  /* "yes": acked only after fsync; "no" otherwise */
    const char *note;     /* one line saying why, printed with the result */
    /* Start a fresh server (sets b->host, b->port, b->server_pid) and do any
     * setup a load needs (stream, persistent subscriber, ...).  0 or -1. */
    int (*start)(bench *b);
    /* Stop the server and remove its data. */
    void (*stop)(bench *b);
    size_t priv_size;
    /* TCP is connected: begin the handshake (queue bytes with bconn_write);
     * call bconn_ready() when the connection can carry load.  0 or -1. */
    int (*conn_start)(bconn *c);
    /* Parse input: return bytes consumed (whole messages only; the rest is
     * offered again with more data) or -1 on a protocol error.  Calls
     * bconn_ready / bconn_acked as replies arrive. */
    long (*on_data)(bconn *c, const uint8_t *p, size_t n);
    /* Queue one 1 KiB write; set *wire_id to what its reply will carry. */
    int (*send_msg)(bconn *c, uint64_t *wire_id);
    /* Release per-connection state (priv itself is freed by the engine). */
    void (*conn_free)(bconn *c);
} target_ops;

typedef struct lat_rec {
    uint64_t *ns;
    size_t n, cap;
    int sorted;
} lat_rec;

typedef enum { MODE_LOAD, MODE_IDLE, MODE_DRAIN } bench_mode;

struct bench {
    uv_loop_t loop;
    const target_ops *t;
    bench_mode mode;

    /* options */
    uint32_t nconns, window, payload;
    double warmup_s, duration_s;
    uint64_t max_count;     /* sends issued at most, warm-up included */
    double rate;            /* open loop: sends/s in total; 0 = closed loop */
    uint32_t connect_concurrency;
    uint32_t idle_steps[8];
    uint32_t nidle_steps;
    double settle_s;
    int keep_data;
    int verbose;

    /* server */
    char host[256];
    uint16_t port;
    pid_t server_pid;
    char workdir[256];       /* fresh directory under /tmp for the server */
    uint8_t relay_key[32];   /* relay: static public key from its address */
    const char *relay_bin;
    const char *relay_args[32];
    uint32_t nrelay_args;
    uint32_t relay_prealloc_mib; /* experiment: see loadgen.c */

    /* connections */
    bconn **conns;
    uint32_t nopen;          /* connections started */
    uint32_t nready, nfailed, nconnecting;

    /* phase control */
    int phase_done;
    uint64_t phase_deadline_ns;
    uv_timer_t tick;
    int tick_active;

    /* load phase */
    uint64_t t_start, t0, t1, t_last_ack; /* ns */
    int sampled0, stopped_issuing;
    uint64_t issued, acked_total, acked_ok_window, errors, unacked;
    uint64_t rr;             /* open loop: next connection, round robin */
    uint64_t stalls;         /* open loop: a due send found no window free */
    double srv_cpu0, srv_cpu1, cli_cpu0, cli_cpu1;
    lat_rec lat;

    uint8_t payload_buf[65536];
    uint8_t scratch[70000];  /* one decrypted / packed message */
    char errmsg[256];
};

/* --- engine ------------------------------------------------------------- */
uint64_t bench_now_ns(void);
int bench_init(bench *b, const target_ops *t);
void bench_free(bench *b);
/* Open conns [b->nopen, n) with at most connect_concurrency handshakes at
 * once; run until all are ready or failed, or timeout_s passes. 0 or -1. */
int bench_connect(bench *b, uint32_t n, double timeout_s);
/* The measured load phase (closed loop, or open loop when b->rate > 0). */
int bench_load(bench *b);
/* Close every connection (with RST: no TIME_WAIT) and run the loop until
 * the handles are gone. */
void bench_close_all(bench *b);
/* Run the loop until b->phase_done or the deadline (seconds from now). */
int bench_run_phase(bench *b, double timeout_s);
void bench_stop_phase(bench *b);

/* For targets. */
int bconn_write(bconn *c, const void *p, size_t n);
uint8_t *bconn_reserve(bconn *c, size_t n); /* then bconn_commit(c, n) */
void bconn_commit(bconn *c, size_t n);
void bconn_ready(bconn *c);
void bconn_acked(bconn *c, uint64_t wire_id, int ok);
void bconn_fail(bconn *c, const char *why);
void bconn_flush(bconn *c);
/* Drain mode hook: the relay target drives the connection itself. */
extern void (*bench_on_ready_hook)(bconn *c);

/* --- latency ------------------------------------------------------------ */
int lat_init(lat_rec *l, size_t cap);
void lat_add(lat_rec *l, uint64_t ns);
void lat_free(lat_rec *l);
/* Sorts in place; q in [0,1].  Returns nanoseconds (0 when empty). */
uint64_t lat_quantile(lat_rec *l, double q);

/* --- processes ---------------------------------------------------------- */
typedef struct proc_stat {
    double cpu_s;  /* utime + stime of all threads */
    long rss_kib;  /* VmRSS */
    long hwm_kib;  /* VmHWM: peak RSS */
} proc_stat;
int proc_read(pid_t pid, proc_stat *out);
double self_cpu_s(void);
/* fork+exec argv with stdout to *out_fd (a pipe) when out_fd != NULL, else
 * /dev/null; stderr appended to log_path.  Returns pid or -1. */
pid_t spawn_proc(const char *const argv[], const char *log_path, int *out_fd);
/* Send sig, wait up to timeout_ms, then SIGKILL.  Returns 0 if it exited
 * by itself, 1 if it had to be killed, -1 if pid <= 0. */
int stop_proc(pid_t pid, int sig, int timeout_ms);
/* Run argv to completion (stdout to /dev/null).  Returns its exit status
 * (0..255) or -1. */
int run_proc(const char *const argv[], const char *log_path, int timeout_ms);
/* Wait until host:port accepts TCP or pid died.  0 or -1. */
int wait_port(const char *host, uint16_t port, pid_t pid, int timeout_ms);
/* A free TCP port on 127.0.0.1 (bound then released). 0 on failure. */
uint16_t pick_port(void);
/* mkdtemp under /tmp named alcove-bench-<tag>-XXXXXX into b->workdir. */
int bench_mkworkdir(bench *b, const char *tag);
void bench_rmworkdir(bench *b);
/* Raise RLIMIT_NOFILE soft to hard; returns the new soft limit. */
long raise_nofile_limit(void);
/* Blocking helpers for setup steps (poll with a deadline). */
int tcp_connect_blocking(const char *host, uint16_t port, int timeout_ms);
int send_all(int fd, const void *p, size_t n, int timeout_ms);
/* Read exactly n bytes.  0 or -1. */
int recv_exact(int fd, void *buf, size_t n, int timeout_ms);
/* Read until `needle` appears in buf (NUL-terminated) or timeout. Returns
 * bytes read or -1. */
long recv_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms);

/* --- targets ------------------------------------------------------------ */
extern const target_ops target_relay;
extern const target_ops target_redis_always;
extern const target_ops target_redis_everysec;
extern const target_ops target_mosquitto;
extern const target_ops target_nats;

/* Relay drain mode (loadgen.c). */
int relay_drain(bench *b, uint64_t fill, uint32_t fill_window);

#endif
