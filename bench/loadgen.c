/* alcove-loadgen: load generator for alcove-relay (real protocol: Noise NK,
 * Hello, CreateMailbox, Send) and, through the same engine, for the peers in
 * bench/peers/ (Redis XADD, mosquitto QoS 1, NATS JetStream).
 *
 * It starts the server itself (fresh data directory under /tmp, loopback
 * only), runs one bounded measurement and prints one machine-readable line
 * ("result key=value ...") plus human text on stderr.
 *
 *   alcove-loadgen --target relay --conns 50 --window 1 [--duration 3]
 *   alcove-loadgen --target relay --mode drain [--count 100000]
 *   alcove-loadgen --target relay --mode idle --idle 10000,max
 *   alcove-loadgen --target redis-always --conns 50 --window 16
 *   alcove-loadgen --target relay --conns 50 --window 16 --rate 20000
 */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <fcntl.h>

#include "address.h"
#include "alcove.pb-c.h"
#include "bench.h"
#include "frame.h"
#include "noise.h"

#ifndef ALCOVE_RELAY_BIN_DEFAULT
#define ALCOVE_RELAY_BIN_DEFAULT "alcove-relay"
#endif

/* === the relay target ===================================================== */

typedef enum { RS_HANDSHAKE, RS_HELLO, RS_CREATE, RS_READY } relay_state;

typedef struct relay_priv {
    alcove_noise_hs *hs;
    alcove_noise_transport *tx;
    relay_state st;
    uint64_t next_id;
    uint8_t send_id[16], recv_id[16], secret[32];
    /* drain mode */
    int draining;
    uint64_t after_seq, fetched, acks_out, fetch_id, verify_id;
    int fetch_done, verified;
    uint64_t t_drain0, t_drain1;
} relay_priv;

static int relay_send_req(bconn *c, Alcove__Wire__Request *req)
{
    relay_priv *rp = c->priv;
    req->id = ++rp->next_id;
    size_t n = alcove__wire__request__get_packed_size(req);
    if (n > ALCOVE_NOISE_PLAINTEXT_MAX)
        return -1;
    uint8_t *dst = bconn_reserve(c, ALCOVE_FRAME_HDR + n + ALCOVE_NOISE_TAG_BYTES);
    if (dst == NULL)
        return -1;
    if (alcove__wire__request__pack(req, dst + ALCOVE_FRAME_HDR) != n ||
        alcove_noise_encrypt(rp->tx, dst + ALCOVE_FRAME_HDR, n, dst + ALCOVE_FRAME_HDR) != 0 ||
        alcove_frame_put_len(dst, n + ALCOVE_NOISE_TAG_BYTES) != 0)
        return -1;
    bconn_commit(c, ALCOVE_FRAME_HDR + n + ALCOVE_NOISE_TAG_BYTES);
    return 0;
}

static int relay_conn_start(bconn *c)
{
    relay_priv *rp = c->priv;
    if (alcove_noise_hs_initiator(&rp->hs, c->b->relay_key,
                                  (const uint8_t *)ALCOVE_NOISE_PROLOGUE,
                                  ALCOVE_NOISE_PROLOGUE_LEN) != 0)
        return -1;
    uint8_t *dst = bconn_reserve(c, ALCOVE_FRAME_HDR + ALCOVE_NOISE_HS1_BYTES);
    size_t len = 0;
    if (dst == NULL ||
        alcove_noise_hs_write(rp->hs, NULL, 0, dst + ALCOVE_FRAME_HDR, ALCOVE_NOISE_HS1_BYTES,
                              &len) != 0 ||
        alcove_frame_put_len(dst, len) != 0)
        return -1;
    bconn_commit(c, ALCOVE_FRAME_HDR + len);
    rp->st = RS_HANDSHAKE;
    return 0;
}

static int relay_send_fetch(bconn *c, uint64_t after, uint32_t max, uint64_t *id)
{
    relay_priv *rp = c->priv;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Fetch f = ALCOVE__WIRE__FETCH__INIT;
    f.recv_id.data = rp->recv_id;
    f.recv_id.len = 16;
    f.after_seq = after;
    f.max = max;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
    req.fetch = &f;
    if (relay_send_req(c, &req) != 0)
        return -1;
    *id = req.id;
    return 0;
}

static int relay_send_ack(bconn *c, uint64_t up_to)
{
    relay_priv *rp = c->priv;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Ack a = ALCOVE__WIRE__ACK__INIT;
    a.recv_id.data = rp->recv_id;
    a.recv_id.len = 16;
    a.up_to_seq = up_to;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_ACK;
    req.ack = &a;
    return relay_send_req(c, &req);
}

/* Drain: one Fetch in flight at a time; each non-empty result is acked and
 * the next Fetch goes out at once (Acks are pipelined behind it). */
static int drain_reply(bconn *c, const Alcove__Wire__Reply *r)
{
    relay_priv *rp = c->priv;
    bench *b = c->b;
    if (r->status != ALCOVE__WIRE__STATUS__OK) {
        snprintf(b->errmsg, sizeof b->errmsg, "drain: status %d: %s", (int)r->status,
                 r->detail ? r->detail : "");
        b->errors++;
        bench_stop_phase(b);
        return 0;
    }
    if (r->id == rp->verify_id) {
        rp->verified = r->result_case == ALCOVE__WIRE__REPLY__RESULT_FETCH &&
                       r->fetch->n_messages == 0 && !r->fetch->more;
        bench_stop_phase(b);
        return 0;
    }
    if (r->id == rp->fetch_id) {
        if (r->result_case != ALCOVE__WIRE__REPLY__RESULT_FETCH)
            return -1;
        const Alcove__Wire__FetchResult *fr = r->fetch;
        uint64_t top = rp->after_seq;
        for (size_t i = 0; i < fr->n_messages; i++) {
            if (fr->messages[i]->seq <= rp->after_seq || fr->messages[i]->blob.len != b->payload)
                return -1; /* out of order, duplicated or damaged */
            if (fr->messages[i]->seq > top)
                top = fr->messages[i]->seq;
        }
        rp->fetched += fr->n_messages;
        if (fr->n_messages > 0) {
            rp->after_seq = top;
            if (relay_send_ack(c, top) != 0)
                return -1;
            rp->acks_out++;
        }
        if (fr->n_messages == 0 && !fr->more) {
            rp->fetch_done = 1;
        } else if (relay_send_fetch(c, rp->after_seq, 1024, &rp->fetch_id) != 0) {
            return -1;
        }
    } else {
        if (rp->acks_out == 0)
            return -1;
        rp->acks_out--;
    }
    if (rp->fetch_done && rp->acks_out == 0 && rp->t_drain1 == 0) {
        rp->t_drain1 = bench_now_ns();
        if (relay_send_fetch(c, 0, 1, &rp->verify_id) != 0)
            return -1;
    }
    return 0;
}

static int relay_handle(bconn *c, const uint8_t *frame, size_t len)
{
    relay_priv *rp = c->priv;
    bench *b = c->b;
    if (rp->st == RS_HANDSHAKE) {
        size_t plen = 0;
        uint8_t h[ALCOVE_NOISE_HASH_BYTES];
        if (alcove_noise_hs_read(rp->hs, frame, len, NULL, 0, &plen) != 0 ||
            alcove_noise_hs_split(rp->hs, &rp->tx, h) != 0)
            return -1;
        alcove_noise_hs_free(rp->hs);
        rp->hs = NULL;
        Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
        Alcove__Wire__Hello hello = ALCOVE__WIRE__HELLO__INIT;
        hello.version = 1;
        req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_HELLO;
        req.hello = &hello;
        if (relay_send_req(c, &req) != 0)
            return -1;
        rp->st = RS_HELLO;
        return 0;
    }
    if (len < ALCOVE_NOISE_TAG_BYTES || len - ALCOVE_NOISE_TAG_BYTES > sizeof b->scratch ||
        alcove_noise_decrypt(rp->tx, frame, len, b->scratch) != 0)
        return -1;
    Alcove__Wire__RelayMessage *m =
        alcove__wire__relay_message__unpack(NULL, len - ALCOVE_NOISE_TAG_BYTES, b->scratch);
    if (m == NULL)
        return -1;
    int rc = 0;
    if (m->kind_case != ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY) {
        alcove__wire__relay_message__free_unpacked(m, NULL);
        return 0; /* a Push: we never subscribe, so none should come */
    }
    const Alcove__Wire__Reply *r = m->reply;
    switch (rp->st) {
    case RS_HELLO:
        if (r->status != ALCOVE__WIRE__STATUS__OK ||
            r->result_case != ALCOVE__WIRE__REPLY__RESULT_HELLO || r->hello->version != 1) {
            rc = -1;
            break;
        }
        if (b->mode == MODE_IDLE) {
            rp->st = RS_READY;
            bconn_ready(c);
            break;
        }
        {
            Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
            Alcove__Wire__CreateMailbox cm = ALCOVE__WIRE__CREATE_MAILBOX__INIT;
            uint8_t auth_pub[32], hash[32];
            /* The auth key is only used by Login, which the bench never
             * does: random bytes of the right size are enough. */
            randombytes_buf(auth_pub, sizeof auth_pub);
            randombytes_buf(rp->secret, sizeof rp->secret);
            crypto_generichash(hash, sizeof hash, rp->secret, sizeof rp->secret, NULL, 0);
            cm.auth_pub.data = auth_pub;
            cm.auth_pub.len = 32;
            cm.send_key_hash.data = hash;
            cm.send_key_hash.len = 32;
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX;
            req.create_mailbox = &cm;
            if (relay_send_req(c, &req) != 0)
                rc = -1;
            rp->st = RS_CREATE;
        }
        break;
    case RS_CREATE:
        if (r->status != ALCOVE__WIRE__STATUS__OK ||
            r->result_case != ALCOVE__WIRE__REPLY__RESULT_MAILBOX ||
            r->mailbox->send_id.len != 16 || r->mailbox->recv_id.len != 16) {
            rc = -1;
            break;
        }
        memcpy(rp->send_id, r->mailbox->send_id.data, 16);
        memcpy(rp->recv_id, r->mailbox->recv_id.data, 16);
        rp->st = RS_READY;
        bconn_ready(c);
        break;
    case RS_READY:
        if (rp->draining)
            rc = drain_reply(c, r);
        else {
            if (r->status != ALCOVE__WIRE__STATUS__OK && b->errmsg[0] == '\0')
                snprintf(b->errmsg, sizeof b->errmsg, "relay refused a Send: status %d: %s",
                         (int)r->status, r->detail ? r->detail : "");
            bconn_acked(c, r->id, r->status == ALCOVE__WIRE__STATUS__OK);
        }
        break;
    default:
        rc = -1;
    }
    alcove__wire__relay_message__free_unpacked(m, NULL);
    return rc;
}

static long relay_on_data(bconn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= ALCOVE_FRAME_HDR && !c->closing) {
        size_t len = ((size_t)p[off] << 8) | p[off + 1];
        if (len == 0)
            return -1;
        if (n - off < ALCOVE_FRAME_HDR + len)
            break;
        if (relay_handle(c, p + off + ALCOVE_FRAME_HDR, len) != 0)
            return -1;
        off += ALCOVE_FRAME_HDR + len;
    }
    return (long)off;
}

static int relay_send_msg(bconn *c, uint64_t *wire_id)
{
    relay_priv *rp = c->priv;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Send s = ALCOVE__WIRE__SEND__INIT;
    s.send_id.data = rp->send_id;
    s.send_id.len = 16;
    s.send_secret.data = rp->secret;
    s.send_secret.len = 32;
    s.blob.data = c->b->payload_buf;
    s.blob.len = c->b->payload;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    req.send = &s;
    if (relay_send_req(c, &req) != 0)
        return -1;
    *wire_id = req.id;
    return 0;
}

static void relay_conn_free(bconn *c)
{
    relay_priv *rp = c->priv;
    if (rp == NULL)
        return;
    alcove_noise_hs_free(rp->hs);
    alcove_noise_transport_free(rp->tx);
    rp->hs = NULL;
    rp->tx = NULL;
}

static int relay_spawn(bench *b, const char *datadir, const char *logpath)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = b->relay_bin;
    argv[n++] = "run";
    argv[n++] = "--data";
    argv[n++] = datadir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    argv[n++] = "--max-messages";
    argv[n++] = "0";
    argv[n++] = "--max-mailbox-bytes";
    argv[n++] = "0";
    argv[n++] = "--max-connections";
    argv[n++] = "20000";
    argv[n++] = "--rate";
    argv[n++] = "0";
    argv[n++] = "--handshake-timeout";
    argv[n++] = "60s";
    argv[n++] = "--idle-timeout";
    argv[n++] = "30m";
    for (uint32_t i = 0; i < b->nrelay_args && n < 62; i++)
        argv[n++] = b->relay_args[i];
    argv[n] = NULL;
    int out = -1;
    b->server_pid = spawn_proc(argv, logpath, &out);
    if (b->server_pid < 0)
        return -1;
    char line[ALCOVE_ADDR_STR_MAX + 2];
    size_t have = 0;
    uint64_t deadline = bench_now_ns() + 20000000000ull;
    int ok = 0;
    while (bench_now_ns() < deadline && have < sizeof line - 1) {
        struct pollfd pf = {out, POLLIN, 0};
        int r = poll(&pf, 1, 100);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        ssize_t got = read(out, line + have, sizeof line - 1 - have);
        if (got <= 0)
            break;
        have += (size_t)got;
        line[have] = '\0';
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
            ok = 1;
            break;
        }
    }
    close(out);
    alcove_relay_addr a;
    const char *why = NULL;
    if (!ok || alcove_addr_parse(line, &a, &why) != 0) {
        fprintf(stderr, "loadgen: the relay did not print a usable address (%s); see %s\n",
                ok ? why : "no line", logpath);
        return -1;
    }
    memcpy(b->relay_key, a.key, 32);
    snprintf(b->host, sizeof b->host, "%s", a.host);
    b->port = a.port;
    return 0;
}

/* Experiment (--relay-prealloc MiB): extend the LMDB data file with real
 * zeros before the load, so that commits overwrite allocated blocks instead
 * of growing the file (on ext4 an fdatasync after growth also writes the
 * inode).  LMDB accepts a data file longer than its last page. */
static int prealloc_store(const char *datadir, uint32_t mib)
{
    char path[400];
    snprintf(path, sizeof path, "%s/store/data.mdb", datadir);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    off_t end = lseek(fd, 0, SEEK_END);
    static uint8_t zero[1 << 20];
    off_t want = (off_t)mib << 20;
    int rc = end < 0 ? -1 : 0;
    while (rc == 0 && end < want) {
        ssize_t w = pwrite(fd, zero, sizeof zero, end);
        if (w <= 0)
            rc = -1;
        else
            end += w;
    }
    if (rc == 0)
        rc = fdatasync(fd);
    close(fd);
    return rc;
}

static int relay_start(bench *b)
{
    char datadir[300], logpath[300];
    if (bench_mkworkdir(b, "relay") != 0)
        return -1;
    snprintf(datadir, sizeof datadir, "%s/relay", b->workdir);
    snprintf(logpath, sizeof logpath, "%s/relay.log", b->workdir);
    const char *init[] = {b->relay_bin, "init", "--data", datadir, NULL};
    int st = run_proc(init, logpath, 20000);
    if (st != 0) {
        fprintf(stderr, "loadgen: '%s init' failed (status %d); see %s\n", b->relay_bin, st,
                logpath);
        return -1;
    }
    if (b->relay_prealloc_mib > 0) {
        /* Start once so that the store exists, stop, then extend it. */
        if (relay_spawn(b, datadir, logpath) != 0)
            return -1;
        if (stop_proc(b->server_pid, SIGTERM, 15000) != 0)
            return -1;
        b->server_pid = -1;
        if (prealloc_store(datadir, b->relay_prealloc_mib) != 0) {
            fprintf(stderr, "loadgen: could not preallocate the store: %s\n", strerror(errno));
            return -1;
        }
    }
    return relay_spawn(b, datadir, logpath);
}

static void relay_stop(bench *b)
{
    if (b->server_pid > 0 && stop_proc(b->server_pid, SIGTERM, 15000) != 0)
        fprintf(stderr, "loadgen: the relay did not drain within 15 s (killed)\n");
    b->server_pid = -1;
    bench_rmworkdir(b);
}

const target_ops target_relay = {
    .name = "relay",
    .durable = "yes",
    .note = "replies after its group commit is fsync'd (LMDB)",
    .start = relay_start,
    .stop = relay_stop,
    .priv_size = sizeof(relay_priv),
    .conn_start = relay_conn_start,
    .on_data = relay_on_data,
    .send_msg = relay_send_msg,
    .conn_free = relay_conn_free,
};

/* === drain mode ============================================================ */

static void print_load_result(bench *b, const char *mode);

int relay_drain(bench *b, uint64_t fill, uint32_t fill_window)
{
    /* Fill: one connection, one mailbox, `fill_window` Sends in flight. */
    b->mode = MODE_LOAD;
    b->nconns = 1;
    b->window = fill_window;
    b->max_count = fill;
    b->warmup_s = 0;
    b->duration_s = 120;
    if (bench_connect(b, 1, 30) != 0 || b->nready != 1)
        return -1;
    if (bench_load(b) != 0)
        return -1;
    print_load_result(b, "fill");
    bconn *c = b->conns[0];
    if (c == NULL || b->errors != 0 || b->acked_total != fill)
        return -1;
    relay_priv *rp = c->priv;
    b->mode = MODE_DRAIN;
    rp->draining = 1;
    rp->t_drain0 = bench_now_ns();
    double cpu0 = -1, cli0 = self_cpu_s();
    proc_stat ps;
    if (proc_read(b->server_pid, &ps) == 0)
        cpu0 = ps.cpu_s;
    if (relay_send_fetch(c, 0, 1024, &rp->fetch_id) != 0)
        return -1;
    bconn_flush(c);
    int rc = bench_run_phase(b, 120);
    double cpu1 = proc_read(b->server_pid, &ps) == 0 ? ps.cpu_s : -1;
    double cli1 = self_cpu_s();
    c = b->conns[0];
    if (rc != 0 || c == NULL || rp->t_drain1 == 0) {
        fprintf(stderr, "loadgen: drain did not finish (%s)\n", rc ? "timeout" : b->errmsg);
        return -1;
    }
    double secs = (double)(rp->t_drain1 - rp->t_drain0) / 1e9;
    double rate = secs > 0 ? (double)rp->fetched / secs : 0;
    printf("result target=relay mode=drain durable=yes msgs=%llu secs=%.3f msgs_per_s=%.0f "
           "verified_empty=%d srv_cpu_s=%.2f cli_cpu_s=%.2f srv_hwm_kib=%ld errors=%llu\n",
           (unsigned long long)rp->fetched, secs, rate, rp->verified,
           cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1.0, cli1 - cli0, ps.hwm_kib,
           (unsigned long long)b->errors);
    fprintf(stderr, "drain: fetched and acked %llu messages in %.3f s = %.0f msgs/s (%s)\n",
            (unsigned long long)rp->fetched, secs, rate,
            rp->verified ? "mailbox verified empty" : "MAILBOX NOT EMPTY AFTERWARDS");
    return rp->fetched == fill && rp->verified && b->errors == 0 ? 0 : -1;
}

/* === main ================================================================== */

static const target_ops *const targets[] = {
    &target_relay, &target_redis_always, &target_redis_everysec, &target_mosquitto,
    &target_nats,
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: alcove-loadgen --target T [--mode load|drain|idle] [options]\n"
            "targets: relay redis-always redis-everysec mosquitto nats\n"
            "  --conns N        connections (load; default 1)\n"
            "  --window W       requests in flight per connection (default 1)\n"
            "  --size B         payload bytes (default 1024)\n"
            "  --warmup S       seconds before measuring (default 0.5)\n"
            "  --duration S     measured seconds at most (default 3)\n"
            "  --count N        sends at most, warm-up included (default 1000000;\n"
            "                   drain: messages to fill, default 100000)\n"
            "  --rate R         open loop: R sends/s in total, window W per connection\n"
            "  --idle LIST      idle mode: connection counts, e.g. 10000,max\n"
            "  --concurrency C  handshakes in progress at once (default 128)\n"
            "  --settle S       idle mode: seconds to wait before each RSS sample (default 3)\n"
            "  --relay-bin P    alcove-relay binary (default: the one built with this)\n"
            "  --relay-arg A    extra argument for 'alcove-relay run' (repeatable)\n"
            "  --relay-prealloc MiB  experiment: extend the relay's LMDB file with zeros\n"
            "  --keep           keep the server's data directory\n"
            "  -v               verbose\n");
}

static double srv_cpu(const bench *b)
{
    return b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0 ? b->srv_cpu1 - b->srv_cpu0 : -1.0;
}

static void print_load_result(bench *b, const char *mode)
{
    double end = b->issued >= b->max_count && b->t_last_ack < b->t1 ? (double)b->t_last_ack
                                                                     : (double)b->t1;
    double secs = (end - (double)b->t0) / 1e9;
    double rate = secs > 0 ? (double)b->acked_ok_window / secs : 0;
    proc_stat ps;
    long hwm = proc_read(b->server_pid, &ps) == 0 ? ps.hwm_kib : -1;
    double scpu = srv_cpu(b);
    double us_per = b->acked_ok_window && scpu >= 0 ? scpu * 1e6 / (double)b->acked_ok_window : -1;
    double mean = 0;
    for (size_t i = 0; i < b->lat.n; i++)
        mean += (double)b->lat.ns[i];
    mean = b->lat.n ? mean / (double)b->lat.n / 1000.0 : 0;
    double p50 = (double)lat_quantile(&b->lat, 0.50) / 1000.0;
    double p99 = (double)lat_quantile(&b->lat, 0.99) / 1000.0;
    double p999 = (double)lat_quantile(&b->lat, 0.999) / 1000.0;
    double pmax = (double)lat_quantile(&b->lat, 1.0) / 1000.0;
    printf("result target=%s mode=%s durable=%s conns=%u window=%u size=%u rate=%.0f "
           "msgs=%llu secs=%.3f msgs_per_s=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
           "max_us=%.0f mean_us=%.0f srv_cpu_s=%.2f srv_cpu_us_per_msg=%.1f cli_cpu_s=%.2f "
           "srv_hwm_kib=%ld stalls=%llu errors=%llu\n",
           b->t->name, mode, b->t->durable, b->nconns, b->window, b->payload, b->rate,
           (unsigned long long)b->acked_ok_window, secs, rate, p50, p99, p999, pmax, mean,
           scpu, us_per, b->cli_cpu1 - b->cli_cpu0, hwm, (unsigned long long)b->stalls,
           (unsigned long long)b->errors);
    fflush(stdout);
    fprintf(stderr,
            "%s %s: %u conns x %u in flight, %u B: %.0f acked writes/s over %.2f s "
            "(durable per ack: %s)\n  latency p50 %.0f us, p99 %.0f us, p99.9 %.0f us, "
            "max %.0f us; server CPU %.2f s (%.1f us/msg), peak RSS %ld KiB%s%s\n",
            b->t->name, mode, b->nconns, b->window, b->payload, rate, secs, b->t->durable,
            p50, p99, p999, pmax, scpu, us_per, hwm, b->errors ? "; ERRORS: " : "",
            b->errors ? b->errmsg : "");
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int run_idle(bench *b, long nofile)
{
    proc_stat ps;
    /* Let the server settle, then take the baseline with no connections. */
    (void)bench_run_phase(b, b->settle_s);
    if (proc_read(b->server_pid, &ps) != 0)
        return -1;
    long base = ps.rss_kib;
    fprintf(stderr, "%s idle: baseline RSS %ld KiB\n", b->t->name, base);
    int rc = 0;
    for (uint32_t s = 0; s < b->nidle_steps; s++) {
        uint32_t k = b->idle_steps[s];
        if (k == 0) { /* "max": what our descriptor limit leaves room for */
            long room = nofile - 100;
            k = room > 0 ? (uint32_t)(room < BENCH_MAX_CONNS ? room : BENCH_MAX_CONNS) : 0;
        }
        if (k < b->nopen)
            continue;
        uint64_t t0 = bench_now_ns();
        if (bench_connect(b, k, 120) != 0)
            rc = -1;
        double secs = (double)(bench_now_ns() - t0) / 1e9;
        (void)bench_run_phase(b, b->settle_s);
        if (proc_read(b->server_pid, &ps) != 0)
            return -1;
        uint32_t ready = b->nready;
        double per = ready ? (double)(ps.rss_kib - base) / (double)ready : -1;
        printf("result target=%s mode=idle conns=%u ready=%u failed=%u base_rss_kib=%ld "
               "rss_kib=%ld kib_per_conn=%.3f connect_secs=%.2f nofile=%ld\n",
               b->t->name, k, ready, b->nfailed, base, ps.rss_kib, per, secs, nofile);
        fflush(stdout);
        fprintf(stderr,
                "%s idle: %u connections up (%u failed) in %.2f s; RSS %ld KiB -> %.3f KiB "
                "per connection%s%s\n",
                b->t->name, ready, b->nfailed, secs, ps.rss_kib, per,
                b->errmsg[0] ? "; first error: " : "", b->errmsg);
        if (b->nfailed > 0)
            rc = -1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    static bench B;
    bench *b = &B;
    const target_ops *t = NULL;
    const char *mode = "load";
    const char *idle = "10000,max";
    uint32_t nconns = 1, window = 1, size = 1024, conc = 128, prealloc = 0;
    double warmup = 0.5, duration = 3.0, rate = 0, settle = 3.0;
    uint64_t count = 0;
    int keep = 0, verbose = 0;
    const char *relay_bin = getenv("ALCOVE_RELAY_BIN");
    const char *rargs[32];
    uint32_t nrargs = 0;

    if (relay_bin == NULL || *relay_bin == '\0')
        relay_bin = ALCOVE_RELAY_BIN_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, used = 1;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-v") == 0) {
            verbose = 1;
            used = 0;
        } else if (strcmp(a, "--keep") == 0) {
            keep = 1;
            used = 0;
        } else if (v == NULL) {
            bad = 1;
        } else if (strcmp(a, "--target") == 0) {
            for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++)
                if (strcmp(v, targets[k]->name) == 0)
                    t = targets[k];
            bad = t == NULL;
        } else if (strcmp(a, "--mode") == 0) {
            mode = v;
            bad = strcmp(v, "load") && strcmp(v, "drain") && strcmp(v, "idle");
        } else if (strcmp(a, "--conns") == 0) {
            bad = parse_u32(v, &nconns) || nconns == 0 || nconns > BENCH_MAX_CONNS;
        } else if (strcmp(a, "--window") == 0) {
            bad = parse_u32(v, &window) || window == 0 || window > BENCH_MAX_WINDOW;
        } else if (strcmp(a, "--size") == 0) {
            bad = parse_u32(v, &size) || size == 0 || size > 60000;
        } else if (strcmp(a, "--concurrency") == 0) {
            bad = parse_u32(v, &conc) || conc == 0;
        } else if (strcmp(a, "--warmup") == 0) {
            bad = parse_double(v, &warmup) || warmup > 600;
        } else if (strcmp(a, "--duration") == 0) {
            bad = parse_double(v, &duration) || duration <= 0 || duration > 600;
        } else if (strcmp(a, "--settle") == 0) {
            bad = parse_double(v, &settle) || settle > 60;
        } else if (strcmp(a, "--rate") == 0) {
            bad = parse_double(v, &rate);
        } else if (strcmp(a, "--count") == 0) {
            char *end;
            errno = 0;
            unsigned long long cv = strtoull(v, &end, 10);
            bad = errno || *end || cv == 0 || cv > 100000000ull;
            count = cv;
        } else if (strcmp(a, "--idle") == 0) {
            idle = v;
        } else if (strcmp(a, "--relay-prealloc") == 0) {
            bad = parse_u32(v, &prealloc) || prealloc > 65536;
        } else if (strcmp(a, "--relay-bin") == 0) {
            relay_bin = v;
        } else if (strcmp(a, "--relay-arg") == 0) {
            bad = nrargs >= 32;
            if (!bad)
                rargs[nrargs++] = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "alcove-loadgen: bad or missing value for %s\n", a);
            usage(stderr);
            return 2;
        }
        i += used;
    }
    if (t == NULL) {
        usage(stderr);
        return 2;
    }
    if (strcmp(mode, "drain") == 0 && t != &target_relay) {
        fprintf(stderr, "alcove-loadgen: drain mode is for the relay only\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "alcove-loadgen: libsodium failed to initialise\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    long nofile = raise_nofile_limit();
    if (bench_init(b, t) != 0) {
        fprintf(stderr, "alcove-loadgen: cannot initialise libuv\n");
        return 1;
    }
    b->nconns = nconns;
    b->window = window;
    b->payload = size;
    b->warmup_s = warmup;
    b->duration_s = duration;
    b->rate = rate;
    b->max_count = count ? count : 1000000;
    b->connect_concurrency = conc;
    b->settle_s = settle;
    b->keep_data = keep;
    b->verbose = verbose;
    b->relay_bin = relay_bin;
    b->relay_prealloc_mib = prealloc;
    memcpy(b->relay_args, rargs, sizeof rargs[0] * nrargs);
    b->nrelay_args = nrargs;
    randombytes_buf(b->payload_buf, sizeof b->payload_buf); /* incompressible */
    if (strcmp(mode, "idle") == 0) {
        b->mode = MODE_IDLE;
        b->window = 0;
        char tmp[128];
        snprintf(tmp, sizeof tmp, "%s", idle);
        char *save = NULL;
        for (char *tok = strtok_r(tmp, ",", &save); tok && b->nidle_steps < 8;
             tok = strtok_r(NULL, ",", &save)) {
            uint32_t k = 0;
            if (strcmp(tok, "max") != 0 && (parse_u32(tok, &k) || k == 0 || k > BENCH_MAX_CONNS)) {
                fprintf(stderr, "alcove-loadgen: bad --idle list '%s'\n", idle);
                return 2;
            }
            b->idle_steps[b->nidle_steps++] = k;
        }
    }

    int rc = 1;
    uint64_t t_begin = bench_now_ns();
    if (t->start(b) != 0) {
        fprintf(stderr, "alcove-loadgen: could not start %s\n", t->name);
        t->stop(b);
        bench_free(b);
        return 1;
    }
    fprintf(stderr, "# %s started: pid %d on %s:%u (durable per ack: %s: %s)\n", t->name,
            (int)b->server_pid, b->host, (unsigned)b->port, t->durable, t->note);
    if (strcmp(mode, "idle") == 0) {
        rc = run_idle(b, nofile) == 0 ? 0 : 1;
    } else if (strcmp(mode, "drain") == 0) {
        rc = relay_drain(b, count ? count : 100000, window > 1 ? window : 256) == 0 ? 0 : 1;
    } else {
        b->mode = MODE_LOAD;
        if (bench_connect(b, nconns, 60) != 0 || b->nready != nconns) {
            fprintf(stderr, "alcove-loadgen: only %u of %u connections came up: %s\n", b->nready,
                    nconns, b->errmsg);
        } else if (bench_load(b) == 0) {
            print_load_result(b, b->rate > 0 ? "open" : "load");
            rc = b->errors == 0 ? 0 : 1;
        }
    }
    bench_close_all(b);
    t->stop(b);
    bench_free(b);
    fprintf(stderr, "# total wall time %.1f s\n", (double)(bench_now_ns() - t_begin) / 1e9);
    return rc;
}
