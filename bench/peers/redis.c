/* Redis 7 peer: XADD of one 1 KiB field to a per-connection stream, spoken
 * in RESP over the bench engine (pipelined: W commands in flight).
 *
 * redis-server is started fresh from the Debian package with
 * `appendonly yes` and `appendfsync always` (durable: Redis writes and
 * fsyncs the AOF before it sends the replies of an event-loop iteration) or
 * `appendfsync everysec` (not durable per ack: up to ~1 s can be lost).
 * RDB snapshots are off so that neither run pays for a fork. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench.h"

typedef struct redis_priv {
    int ponged;
    uint64_t next_wire, next_reply;
    char key[24];
    size_t keylen;
} redis_priv;

static int redis_start_mode(bench *b, const char *fsync)
{
    char logpath[300], maxclients[32], port[16];
    if (bench_mkworkdir(b, "redis") != 0)
        return -1;
    snprintf(logpath, sizeof logpath, "%s/redis.log", b->workdir);
    b->port = pick_port();
    if (b->port == 0)
        return -1;
    snprintf(port, sizeof port, "%u", (unsigned)b->port);
    /* Redis itself raises its descriptor limit to maxclients + 32 when it
     * can; keep within our (inherited) hard limit. */
    long nofile = raise_nofile_limit();
    long mc = nofile > 200 ? nofile - 64 : 100;
    if (mc > 65000)
        mc = 65000;
    snprintf(maxclients, sizeof maxclients, "%ld", mc);
    const char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                          "--dir", b->workdir, "--appendonly", "yes", "--appendfsync", fsync,
                          "--save", "", "--daemonize", "no", "--protected-mode", "no",
                          "--maxclients", maxclients, "--logfile", logpath,
                          "--timeout", "0", NULL};
    b->server_pid = spawn_proc(argv, logpath, NULL);
    if (b->server_pid < 0)
        return -1;
    if (wait_port(b->host, b->port, b->server_pid, 20000) != 0) {
        fprintf(stderr, "loadgen: redis-server did not come up; see %s\n", logpath);
        return -1;
    }
    return 0;
}

static int redis_start_always(bench *b) { return redis_start_mode(b, "always"); }
static int redis_start_everysec(bench *b) { return redis_start_mode(b, "everysec"); }

static void redis_stop(bench *b)
{
    if (b->server_pid > 0)
        (void)stop_proc(b->server_pid, SIGTERM, 15000);
    b->server_pid = -1;
    bench_rmworkdir(b);
}

static int redis_conn_start(bconn *c)
{
    redis_priv *rp = c->priv;
    rp->keylen = (size_t)snprintf(rp->key, sizeof rp->key, "s%u", c->idx);
    /* PING is the "hello": the connection counts as up once +PONG is back. */
    return bconn_write(c, "PING\r\n", 6);
}

/* One RESP reply at p[0..n): returns its length, 0 if incomplete, -1 if it
 * is not something XADD or PING answers.  *ok is 1 unless it is an error. */
static long resp_one(const uint8_t *p, size_t n, int *ok)
{
    const uint8_t *nl = memchr(p, '\n', n);
    if (nl == NULL)
        return 0;
    size_t line = (size_t)(nl - p) + 1;
    if (line < 3 || p[line - 2] != '\r')
        return -1;
    *ok = 1;
    switch (p[0]) {
    case '+':
    case ':':
        return (long)line;
    case '-':
        *ok = 0;
        return (long)line;
    case '$': {
        long len = strtol((const char *)p + 1, NULL, 10);
        if (len < 0)
            return (long)line; /* nil */
        if (len > 1 << 20)
            return -1;
        if (n < line + (size_t)len + 2)
            return 0;
        return (long)(line + (size_t)len + 2);
    }
    default:
        return -1;
    }
}

static long redis_on_data(bconn *c, const uint8_t *p, size_t n)
{
    redis_priv *rp = c->priv;
    size_t off = 0;
    while (off < n && !c->closing) {
        int ok = 0;
        long len = resp_one(p + off, n - off, &ok);
        if (len < 0)
            return -1;
        if (len == 0)
            break;
        off += (size_t)len;
        if (!rp->ponged) {
            if (!ok)
                return -1;
            rp->ponged = 1;
            bconn_ready(c);
            continue;
        }
        /* Redis answers in order: this is the oldest command in flight. */
        bconn_acked(c, ++rp->next_reply, ok);
    }
    return (long)off;
}

static int redis_send_msg(bconn *c, uint64_t *wire_id)
{
    redis_priv *rp = c->priv;
    char hdr[128];
    int h = snprintf(hdr, sizeof hdr,
                     "*5\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n$1\r\n*\r\n$1\r\nf\r\n$%u\r\n", rp->keylen,
                     rp->key, c->b->payload);
    if (h < 0 || (size_t)h >= sizeof hdr)
        return -1;
    uint8_t *dst = bconn_reserve(c, (size_t)h + c->b->payload + 2);
    if (dst == NULL)
        return -1;
    memcpy(dst, hdr, (size_t)h);
    memcpy(dst + h, c->b->payload_buf, c->b->payload);
    memcpy(dst + h + c->b->payload, "\r\n", 2);
    bconn_commit(c, (size_t)h + c->b->payload + 2);
    *wire_id = ++rp->next_wire;
    return 0;
}

const target_ops target_redis_always = {
    .name = "redis-always",
    .durable = "yes",
    .note = "appendfsync always: the AOF is fsync'd before replies go out",
    .start = redis_start_always,
    .stop = redis_stop,
    .priv_size = sizeof(redis_priv),
    .conn_start = redis_conn_start,
    .on_data = redis_on_data,
    .send_msg = redis_send_msg,
    .conn_free = NULL,
};

const target_ops target_redis_everysec = {
    .name = "redis-everysec",
    .durable = "no",
    .note = "appendfsync everysec: acked writes of the last ~1 s can be lost",
    .start = redis_start_everysec,
    .stop = redis_stop,
    .priv_size = sizeof(redis_priv),
    .conn_start = redis_conn_start,
    .on_data = redis_on_data,
    .send_msg = redis_send_msg,
    .conn_free = NULL,
};
