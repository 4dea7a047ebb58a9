/* NATS JetStream peer: PUB of a 1 KiB payload to a subject captured by one
 * file-storage stream, with a reply inbox so that JetStream answers each
 * publish with a PubAck ({"stream":...,"seq":N}); W publishes in flight per
 * connection (the core protocol, spoken over the bench engine, as
 * js_PublishAsync does with a max-pending of W).
 *
 * Not durable per ack: nats-server 2.9 acks once the message is in its file
 * store's write buffer and fsyncs on a timer (sync_interval, 2 min). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bench.h"

#define STREAM_JSON                                                                          \
    "{\"name\":\"BENCH\",\"subjects\":[\"bench.>\"],\"retention\":\"limits\","              \
    "\"storage\":\"file\",\"discard\":\"old\",\"max_consumers\":-1,\"max_msgs\":-1,"         \
    "\"max_bytes\":-1,\"max_age\":0,\"max_msgs_per_subject\":-1,\"max_msg_size\":-1,"        \
    "\"num_replicas\":1}"

#define CONNECT_LINE                                                                         \
    "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"protocol\":1,"           \
    "\"lang\":\"c\",\"version\":\"alcove-bench\"}\r\n"

typedef struct nats_priv {
    int connected; /* CONNECT sent */
    uint64_t counter;
} nats_priv;

static int create_stream(bench *b)
{
    char buf[8192], req[1024];
    int n = snprintf(req, sizeof req,
                     CONNECT_LINE "SUB _SETUP.r 1\r\nPUB $JS.API.STREAM.CREATE.BENCH _SETUP.r %zu\r\n"
                                  "%s\r\nPING\r\n",
                     strlen(STREAM_JSON), STREAM_JSON);
    if (n < 0 || (size_t)n >= sizeof req)
        return -1;
    /* JetStream may need a moment after the port opens: retry for 15 s. */
    for (int attempt = 0; attempt < 30; attempt++) {
        int fd = tcp_connect_blocking(b->host, b->port, 2000);
        if (fd < 0)
            return -1;
        int ok = -1;
        if (recv_until(fd, buf, sizeof buf, "\r\n", 2000) >= 0 && strncmp(buf, "INFO", 4) == 0 &&
            send_all(fd, req, (size_t)n, 2000) == 0 &&
            recv_until(fd, buf, sizeof buf, "}\r\n", 2000) >= 0) {
            char *msg = strstr(buf, "MSG _SETUP.r");
            if (msg != NULL && strstr(msg, "\"error\"") == NULL &&
                strstr(msg, "\"BENCH\"") != NULL)
                ok = 0;
            else if (b->verbose)
                fprintf(stderr, "loadgen: nats stream create answered: %s\n", buf);
        }
        close(fd);
        if (ok == 0)
            return 0;
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int nats_start(bench *b)
{
    char logpath[300], sd[300], port[16];
    if (bench_mkworkdir(b, "nats") != 0)
        return -1;
    snprintf(logpath, sizeof logpath, "%s/nats.log", b->workdir);
    snprintf(sd, sizeof sd, "%s/js", b->workdir);
    b->port = pick_port();
    if (b->port == 0)
        return -1;
    snprintf(port, sizeof port, "%u", (unsigned)b->port);
    const char *argv[] = {"nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", sd,
                          "-l", logpath, NULL};
    b->server_pid = spawn_proc(argv, logpath, NULL);
    if (b->server_pid < 0)
        return -1;
    if (wait_port(b->host, b->port, b->server_pid, 20000) != 0) {
        fprintf(stderr, "loadgen: nats-server did not come up; see %s\n", logpath);
        return -1;
    }
    if (b->mode != MODE_IDLE && create_stream(b) != 0) {
        fprintf(stderr, "loadgen: nats: could not create the JetStream stream; see %s\n",
                logpath);
        return -1;
    }
    return 0;
}

static void nats_stop(bench *b)
{
    if (b->server_pid > 0)
        (void)stop_proc(b->server_pid, SIGTERM, 15000);
    b->server_pid = -1;
    bench_rmworkdir(b);
}

static int nats_conn_start(bconn *c)
{
    (void)c; /* the server speaks first (INFO) */
    return 0;
}

static long nats_on_data(bconn *c, const uint8_t *p, size_t n)
{
    nats_priv *np = c->priv;
    size_t off = 0;
    while (off < n && !c->closing) {
        const uint8_t *s = p + off;
        const uint8_t *nl = memchr(s, '\n', n - off);
        if (nl == NULL) {
            if (n - off > 4096)
                return -1;
            break;
        }
        size_t line = (size_t)(nl - s) + 1;
        if (line >= 4 && memcmp(s, "MSG ", 4) == 0) {
            /* MSG <subject> <sid> [reply] <#bytes>\r\n<payload>\r\n */
            char hdr[256];
            if (line >= sizeof hdr)
                return -1;
            memcpy(hdr, s, line);
            hdr[line] = '\0';
            char *last = strrchr(hdr, ' ');
            if (last == NULL)
                return -1;
            long len = strtol(last + 1, NULL, 10);
            if (len < 0 || len > 65536)
                return -1;
            if (n - off < line + (size_t)len + 2)
                break;
            /* subject is _I.<conn>.<tag> */
            char *subj = hdr + 4;
            char *sp = strchr(subj, ' ');
            if (sp == NULL)
                return -1;
            *sp = '\0';
            char *dot = strrchr(subj, '.');
            if (dot == NULL)
                return -1;
            uint64_t tag = strtoull(dot + 1, NULL, 10);
            const uint8_t *pl = s + line;
            int ok = 1;
            for (long i = 0; i + 7 <= len; i++)
                if (memcmp(pl + i, "\"error\"", 7) == 0) {
                    ok = 0;
                    break;
                }
            off += line + (size_t)len + 2;
            bconn_acked(c, tag, ok);
            continue;
        }
        if (line >= 4 && memcmp(s, "INFO", 4) == 0) {
            if (!np->connected) {
                char cmd[512];
                int k = snprintf(cmd, sizeof cmd, CONNECT_LINE "SUB _I.%u.* 1\r\nPING\r\n",
                                 c->idx);
                if (k < 0 || (size_t)k >= sizeof cmd || bconn_write(c, cmd, (size_t)k) != 0)
                    return -1;
                np->connected = 1;
            }
        } else if (line >= 4 && memcmp(s, "PONG", 4) == 0) {
            if (c->state != BC_READY)
                bconn_ready(c);
        } else if (line >= 4 && memcmp(s, "PING", 4) == 0) {
            if (bconn_write(c, "PONG\r\n", 6) != 0)
                return -1;
        } else if (line >= 4 && memcmp(s, "-ERR", 4) == 0) {
            return -1;
        } /* +OK and anything else: ignore */
        off += line;
    }
    return (long)off;
}

static int nats_send_msg(bconn *c, uint64_t *wire_id)
{
    nats_priv *np = c->priv;
    char hdr[128];
    uint64_t tag = ++np->counter;
    int h = snprintf(hdr, sizeof hdr, "PUB bench.%u _I.%u.%llu %u\r\n", c->idx, c->idx,
                     (unsigned long long)tag, c->b->payload);
    if (h < 0 || (size_t)h >= sizeof hdr)
        return -1;
    uint8_t *dst = bconn_reserve(c, (size_t)h + c->b->payload + 2);
    if (dst == NULL)
        return -1;
    memcpy(dst, hdr, (size_t)h);
    memcpy(dst + h, c->b->payload_buf, c->b->payload);
    memcpy(dst + h + c->b->payload, "\r\n", 2);
    bconn_commit(c, (size_t)h + c->b->payload + 2);
    *wire_id = tag;
    return 0;
}

const target_ops target_nats = {
    .name = "nats",
    .durable = "no",
    .note = "JetStream file store: PubAck before fsync (synced every 2 min)",
    .start = nats_start,
    .stop = nats_stop,
    .priv_size = sizeof(nats_priv),
    .conn_start = nats_conn_start,
    .on_data = nats_on_data,
    .send_msg = nats_send_msg,
    .conn_free = NULL,
};
