/* mosquitto 2 peer: MQTT 3.1.1 QoS 1 PUBLISH of a 1 KiB payload, W packets
 * in flight per connection, each queued by the broker for one offline
 * persistent subscriber (clean session off, subscribed to bench/# at QoS 1
 * before the load, then disconnected): the closest MQTT analogue of a
 * store-and-forward mailbox.
 *
 * Not durable per ack: mosquitto answers PUBACK from memory and writes its
 * persistence file only every autosave_interval (and at shutdown). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench.h"

#define SUB_CLIENT_ID "alcove-bench-sub"
#define TOPIC_FILTER "bench/#"

typedef struct mqtt_priv {
    uint64_t counter;
    char topic[24];
    size_t topiclen;
} mqtt_priv;

static size_t put_varint(uint8_t *p, size_t v)
{
    size_t n = 0;
    do {
        uint8_t d = (uint8_t)(v % 128);
        v /= 128;
        if (v > 0)
            d |= 0x80;
        p[n++] = d;
    } while (v > 0 && n < 4);
    return n;
}

static size_t put_str(uint8_t *p, const char *s, size_t len)
{
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    memcpy(p + 2, s, len);
    return 2 + len;
}

/* CONNECT with keep-alive 0 (no keep-alive: idle connections may sit). */
static size_t build_connect(uint8_t *out, const char *client_id, int clean)
{
    uint8_t body[128];
    size_t n = 0;
    n += put_str(body + n, "MQTT", 4);
    body[n++] = 4; /* protocol level 3.1.1 */
    body[n++] = clean ? 0x02 : 0x00;
    body[n++] = 0;
    body[n++] = 0; /* keep-alive seconds */
    n += put_str(body + n, client_id, strlen(client_id));
    size_t o = 0;
    out[o++] = 0x10;
    o += put_varint(out + o, n);
    memcpy(out + o, body, n);
    return o + n;
}

/* The persistent subscriber: connect with clean session off, subscribe at
 * QoS 1, disconnect.  From then on the broker queues every publish. */
static int setup_subscriber(bench *b)
{
    int fd = tcp_connect_blocking(b->host, b->port, 5000);
    if (fd < 0)
        return -1;
    uint8_t pkt[256], in[8];
    int ok = 0;
    size_t n = build_connect(pkt, SUB_CLIENT_ID, 0);
    if (send_all(fd, pkt, n, 5000) == 0 && recv_exact(fd, in, 4, 5000) == 0 &&
        in[0] == 0x20 && in[3] == 0) {
        size_t o = 0;
        pkt[o++] = 0x82;
        pkt[o++] = (uint8_t)(2 + 2 + strlen(TOPIC_FILTER) + 1);
        pkt[o++] = 0;
        pkt[o++] = 1; /* packet id */
        o += put_str(pkt + o, TOPIC_FILTER, strlen(TOPIC_FILTER));
        pkt[o++] = 1; /* QoS 1 */
        ok = send_all(fd, pkt, o, 5000) == 0 && recv_exact(fd, in, 5, 5000) == 0 &&
             in[0] == 0x90 && in[4] == 1;
    }
    static const uint8_t disc[2] = {0xe0, 0x00};
    if (ok)
        ok = send_all(fd, disc, 2, 5000) == 0;
    close(fd);
    return ok ? 0 : -1;
}

static int mqtt_start(bench *b)
{
    char conf[300], logpath[300];
    if (bench_mkworkdir(b, "mosquitto") != 0)
        return -1;
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", b->workdir);
    snprintf(logpath, sizeof logpath, "%s/mosquitto.log", b->workdir);
    b->port = pick_port();
    if (b->port == 0)
        return -1;
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    int w = fprintf(f,
                    "listener %u 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "user root\n"
                    "persistence true\n"
                    "persistence_location %s/\n"
                    "persistence_file mosquitto.db\n"
                    "autosave_interval 1800\n"
                    "max_queued_messages 0\n"
                    "max_queued_bytes 0\n"
                    "max_connections -1\n"
                    "set_tcp_nodelay true\n"
                    "log_dest stderr\n"
                    "log_type error\n"
                    "log_type warning\n",
                    (unsigned)b->port, b->workdir);
    if (fclose(f) != 0 || w < 0)
        return -1;
    const char *argv[] = {"mosquitto", "-c", conf, NULL};
    b->server_pid = spawn_proc(argv, logpath, NULL);
    if (b->server_pid < 0)
        return -1;
    if (wait_port(b->host, b->port, b->server_pid, 20000) != 0) {
        fprintf(stderr, "loadgen: mosquitto did not come up; see %s\n", logpath);
        return -1;
    }
    if (b->mode != MODE_IDLE && setup_subscriber(b) != 0) {
        fprintf(stderr, "loadgen: mosquitto: persistent subscriber setup failed\n");
        return -1;
    }
    return 0;
}

static void mqtt_stop(bench *b)
{
    /* Its data is thrown away: do not wait for it to write a database of
     * every queued message at shutdown. */
    if (b->server_pid > 0)
        (void)stop_proc(b->server_pid, SIGKILL, 5000);
    b->server_pid = -1;
    bench_rmworkdir(b);
}

static int mqtt_conn_start(bconn *c)
{
    mqtt_priv *mp = c->priv;
    char id[32];
    uint8_t pkt[160];
    mp->topiclen = (size_t)snprintf(mp->topic, sizeof mp->topic, "bench/%u", c->idx);
    snprintf(id, sizeof id, "alcove-bench-%u", c->idx);
    size_t n = build_connect(pkt, id, 1);
    return bconn_write(c, pkt, n);
}

static long mqtt_on_data(bconn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !c->closing) {
        size_t rem = 0, mul = 1, i = 1;
        int done = 0;
        for (; i <= 4 && off + i < n; i++) {
            rem += (size_t)(p[off + i] & 0x7f) * mul;
            mul *= 128;
            if ((p[off + i] & 0x80) == 0) {
                done = 1;
                break;
            }
        }
        if (!done) {
            if (i > 4)
                return -1;
            break; /* length incomplete */
        }
        size_t total = 1 + i + rem;
        if (n - off < total)
            break;
        const uint8_t *v = p + off + 1 + i;
        switch (p[off] & 0xf0) {
        case 0x20: /* CONNACK */
            if (rem != 2 || v[1] != 0)
                return -1;
            bconn_ready(c);
            break;
        case 0x40: /* PUBACK */
            if (rem != 2)
                return -1;
            bconn_acked(c, ((uint64_t)v[0] << 8) | v[1], 1);
            break;
        default:
            break; /* PINGRESP and the like */
        }
        off += total;
    }
    return (long)off;
}

static int mqtt_send_msg(bconn *c, uint64_t *wire_id)
{
    mqtt_priv *mp = c->priv;
    uint16_t pid = (uint16_t)(mp->counter++ % 65535u + 1u);
    size_t rem = 2 + mp->topiclen + 2 + c->b->payload;
    uint8_t *dst = bconn_reserve(c, 1 + 4 + rem);
    if (dst == NULL)
        return -1;
    size_t o = 0;
    dst[o++] = 0x32; /* PUBLISH, QoS 1 */
    o += put_varint(dst + o, rem);
    o += put_str(dst + o, mp->topic, mp->topiclen);
    dst[o++] = (uint8_t)(pid >> 8);
    dst[o++] = (uint8_t)pid;
    memcpy(dst + o, c->b->payload_buf, c->b->payload);
    o += c->b->payload;
    bconn_commit(c, o);
    *wire_id = pid;
    return 0;
}

const target_ops target_mosquitto = {
    .name = "mosquitto",
    .durable = "no",
    .note = "PUBACK from memory; persistence file written every autosave_interval",
    .start = mqtt_start,
    .stop = mqtt_stop,
    .priv_size = sizeof(mqtt_priv),
    .conn_start = mqtt_conn_start,
    .on_data = mqtt_on_data,
    .send_msg = mqtt_send_msg,
    .conn_free = NULL,
};
