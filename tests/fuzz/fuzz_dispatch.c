/* Fuzz target: the relay's request handling end to end, in process and
 * without a network beyond loopback: relay/conn.c (framing, Noise
 * responder, decryption, budgeted Request unpacking), relay/dispatch.c (every
 * handler), the group-commit writer and LMDB store (in /dev/shm), and
 * relay_server_on_batch's replies and pushes.  The relay is assembled from
 * its public pieces (relay_server, conn_accept, relay_writer_start,
 * relay_server_on_batch), so no relay code needed a seam.
 *
 * The harness is a client on a loopback socket.  The input is a list of
 * operations; structured ones let the fuzzer use real mailboxes (the harness
 * knows the auth keys and send secrets of four slots and learns their ids
 * from the MailboxCreated replies), raw ones send any Request bytes or any
 * bytes at all:
 *   0 raw Request [len u16][bytes]      1 raw socket bytes [len u16][bytes]
 *   2 Hello [version u8]                3 CreateMailbox [slot]
 *   4 Login [slot][flags]               5 Send [slot][flags][len u16][blob]
 *   6 Fetch [slot][after u8][max u16]   7 Ack [slot][up_to u16]
 *   8 Subscribe [slot]                  9 DeleteMailbox [slot]
 *  10 Ping                             11 clock += [minutes u16]
 *  12 settle (wait for the writer)     13 reconnect (new connection, new h)
 *  op | 0x80: the request carries id [u8] instead of the next id.
 * flags bit 0: corrupt the signature / send a wrong secret; bit 1 (Login):
 * sign with another slot's key.
 *
 * Oracles (besides ASan/UBSan and leak checks):
 *  - every frame the relay sends decrypts, and is a RelayMessage;
 *  - a reply names a request id this connection sent;
 *  - a Login with a bad signature, a Send with a wrong secret, and an owner
 *    command (Fetch/Ack/Subscribe/Delete) for a slot this connection has not
 *    created or logged in to, never get OK;
 *  - a FetchResult has strictly increasing seqs above after_seq and blobs
 *    within the relay's limit, and fits one transport message;
 *  - after the client hangs up, the relay drops the connection, and once
 *    every mailbox is deleted the index is empty (no stuck references). */
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "alcove.pb-c.h"
#include "conn.h"
#include "err.h"
#include "frame.h"
#include "noise.h"
#include "server.h"

#define NSLOTS 4
#define MAX_IDS 1024

/* --- the relay ------------------------------------------------------------- */

static relay_config cfg;
static relay_log lg;
static relay_server *srv;
static uv_loop_t loop;
static uint16_t port;
static uint64_t clock_ms;
static int verbose; /* ALCOVE_FUZZ_VERBOSE=1: print every reply */

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return clock_ms;
}

static void on_connection(uv_stream_t *l, int status)
{
    (void)l;
    if (status == 0)
        conn_accept(srv);
}

static void relay_start(void)
{
    char dir[] = "/dev/shm/alcove-fuzz-dispatch-XXXXXX";
    char tdir[] = "/tmp/alcove-fuzz-dispatch-XXXXXX";
    char storedir[64];
    const char *base, *why = NULL;
    struct sockaddr_in sa;
    int sl = sizeof sa;
    uint64_t nmsgs = 0;

    base = mkdtemp(dir);
    if (base == NULL)
        base = mkdtemp(tdir);
    FUZZ_CHECK(base != NULL);
    snprintf(storedir, sizeof storedir, "%s/store", base);
    FUZZ_CHECK(mkdir(storedir, 0700) == 0);

    relay_config_defaults(&cfg);
    cfg.max_messages_per_mailbox = 16;
    cfg.max_bytes_per_mailbox = 200000;
    cfg.message_ttl_ms = 3600ull * 1000u;
    cfg.fetch_default = 4;
    cfg.rate_per_sec = 0; /* the token bucket reads the loop's clock */
    FUZZ_CHECK(relay_log_open(&lg, "/dev/null", RLOG_DEBUG) == 0);

    srv = calloc(1, sizeof *srv);
    FUZZ_CHECK(srv != NULL);
    srv->cfg = &cfg;
    srv->log = &lg;
    srv->now = fake_clock;
    srv->exit_code = -1;
    FUZZ_CHECK(relay_store_open(&srv->store, storedir, 0, &why) == 0);
    /* The journal in front of the store, as the relay makes it (1 MiB: the
     * smallest, in /dev/shm with the store). */
    FUZZ_CHECK(relay_writer_create_journal(srv->store, storedir, RELAY_JOURNAL_MIN_BYTES,
                                           &srv->journal, &why) == 0);
    FUZZ_CHECK((srv->index = relay_index_new()) != NULL);
    FUZZ_CHECK(relay_store_load(srv->store, srv->index, &srv->next_gseq, &nmsgs) == 0);
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    srv->loop = &loop;
    FUZZ_CHECK(relay_writer_start(&srv->writer, &loop, srv->store, srv->journal, cfg.batch_max_ops,
                                  cfg.batch_max_bytes, relay_server_on_batch, srv) == 0);
    srv->static_sk = sodium_malloc(32);
    FUZZ_CHECK(srv->static_sk != NULL);
    randombytes_buf(srv->static_sk, 32);
    crypto_scalarmult_base(srv->static_pk, srv->static_sk);

    FUZZ_CHECK(uv_tcp_init(&loop, &srv->listener) == 0);
    srv->listener.data = srv;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sa, 0) == 0);
    FUZZ_CHECK(uv_listen((uv_stream_t *)&srv->listener, 16, on_connection) == 0);
    FUZZ_CHECK(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    signal(SIGPIPE, SIG_IGN);
}

/* --- the client ------------------------------------------------------------ */

typedef struct slot {
    uint8_t auth_pk[32], auth_sk[64];
    uint8_t secret[32];
    uint8_t recv_id[16], send_id[16];
    int known;            /* ids learned from MailboxCreated */
    int owned;            /* created or logged in on this connection */
} slot;

enum expect { EXP_ANY = 0, EXP_NOT_OK, EXP_CREATE, EXP_LOGIN, EXP_FETCH };

typedef struct client {
    int fd;
    int dead; /* the relay closed, or the link is unusable */
    alcove_noise_transport *t;
    uint8_t h[64];
    alcove_frame_dec dec;
    uint64_t next_id;
    uint8_t sent[MAX_IDS]; /* ids below MAX_IDS sent on this connection */
    uint8_t expect[MAX_IDS];
    uint8_t exp_slot[MAX_IDS];
    uint64_t exp_after[MAX_IDS];
} client;

static slot slots[NSLOTS];
static client cl;
static uint8_t frame_out[ALCOVE_FRAME_HDR + ALCOVE_NOISE_MSG_MAX];
static uint8_t plain[ALCOVE_NOISE_MSG_MAX];
static uint8_t rbuf[65536];

static size_t drain(void);

/* Run the loop until the writer is idle and nothing more arrives. */
static void settle(void)
{
    for (int i = 0, quiet = 0; quiet < 3; i++) {
        FUZZ_CHECK(i < 100000);
        uv_run(&loop, UV_RUN_NOWAIT);
        if (relay_writer_inflight(srv->writer) > 0) {
            uv_run(&loop, UV_RUN_ONCE);
            quiet = 0;
        }
        if (drain() > 0 || relay_writer_inflight(srv->writer) > 0)
            quiet = 0;
        else
            quiet++;
    }
}

static void send_bytes(const uint8_t *p, size_t n)
{
    while (n > 0 && !cl.dead) {
        ssize_t r = send(cl.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* The relay paused reading us (back-pressure): let it run. */
            uv_run(&loop, UV_RUN_NOWAIT);
            (void)drain();
            continue;
        }
        cl.dead = 1;
    }
}

static void check_reply(const Alcove__Wire__Reply *r)
{
    uint64_t id = r->id;
    if (id >= MAX_IDS)
        return; /* ids the table does not track */
    FUZZ_CHECK(cl.sent[id]);
    uint8_t e = cl.expect[id];
    slot *s = &slots[cl.exp_slot[id] % NSLOTS];
    int ok = r->status == ALCOVE__WIRE__STATUS__OK;
    if (verbose)
        fprintf(stderr, "reply id=%llu status=%d result=%d detail=\"%s\" n=%zu\n",
                (unsigned long long)id, (int)r->status, (int)r->result_case, r->detail,
                r->result_case == ALCOVE__WIRE__REPLY__RESULT_FETCH ? r->fetch->n_messages : 0);
    switch (e) {
    case EXP_NOT_OK:
        if (ok)
            fprintf(stderr, "fuzz: request %llu should have been refused\n",
                    (unsigned long long)id);
        FUZZ_CHECK(!ok);
        break;
    case EXP_CREATE:
        if (ok) {
            FUZZ_CHECK(r->result_case == ALCOVE__WIRE__REPLY__RESULT_MAILBOX);
            FUZZ_CHECK(r->mailbox->recv_id.len == 16 && r->mailbox->send_id.len == 16);
            memcpy(s->recv_id, r->mailbox->recv_id.data, 16);
            memcpy(s->send_id, r->mailbox->send_id.data, 16);
            s->known = 1;
            s->owned = 1;
        }
        break;
    case EXP_LOGIN:
        if (ok)
            s->owned = 1;
        break;
    case EXP_FETCH:
        if (ok) {
            uint64_t last = cl.exp_after[id];
            FUZZ_CHECK(r->result_case == ALCOVE__WIRE__REPLY__RESULT_FETCH);
            for (size_t i = 0; i < r->fetch->n_messages; i++) {
                const Alcove__Wire__Stored *m = r->fetch->messages[i];
                FUZZ_CHECK(m->seq > last);
                FUZZ_CHECK(m->blob.len > 0 && m->blob.len <= cfg.max_blob_bytes);
                last = m->seq;
            }
        }
        break;
    default:
        break;
    }
    cl.expect[id] = EXP_ANY; /* replies come once */
}

/* Read and check everything the relay has sent so far; returns bytes. */
static size_t drain(void)
{
    size_t total = 0;

    while (!cl.dead) {
        ssize_t n = recv(cl.fd, rbuf, sizeof rbuf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR)) {
            cl.dead = 1;
            break;
        }
        if (n < 0)
            break;
        total += (size_t)n;
        const uint8_t *p = rbuf;
        size_t left = (size_t)n;
        while (left > 0) {
            size_t used = 0, flen = 0;
            const uint8_t *f = NULL;
            int r = alcove_frame_feed(&cl.dec, p, left, &used, &f, &flen);
            FUZZ_CHECK(r >= 0); /* the relay never sends a zero-length frame */
            p += used;
            left -= used;
            if (r != 1)
                continue;
            if (cl.t == NULL)
                continue; /* handshake message 2: read by connect() */
            FUZZ_CHECK(alcove_noise_decrypt(cl.t, f, flen, plain) == 0);
            Alcove__Wire__RelayMessage *m = alcove__wire__relay_message__unpack(
                NULL, flen - ALCOVE_NOISE_TAG_BYTES, plain);
            FUZZ_CHECK(m != NULL);
            if (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY)
                check_reply(m->reply);
            else if (verbose)
                fprintf(stderr, "push seq=%llu\n", (unsigned long long)
                        (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH &&
                         m->push->message ? m->push->message->seq : 0));
            if (m->kind_case != ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY)
                FUZZ_CHECK(m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH &&
                           m->push->recv_id.len == 16 && m->push->message != NULL);
            alcove__wire__relay_message__free_unpacked(m, NULL);
        }
    }
    return total;
}

static void disconnect(void)
{
    if (cl.fd >= 0)
        close(cl.fd);
    cl.fd = -1;
    alcove_noise_transport_free(cl.t);
    cl.t = NULL;
    alcove_frame_dec_free(&cl.dec);
    /* The relay notices the hang-up and drops the connection. */
    for (int i = 0; srv->conns != NULL || relay_writer_inflight(srv->writer) > 0; i++) {
        FUZZ_CHECK(i < 100000);
        uv_run(&loop, relay_writer_inflight(srv->writer) > 0 ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks */
    for (int i = 0; i < NSLOTS; i++)
        slots[i].owned = 0;
}

static void connect_relay(void)
{
    struct sockaddr_in sa;
    alcove_noise_hs *hs = NULL;
    uint8_t m1[ALCOVE_FRAME_HDR + ALCOVE_NOISE_HS1_BYTES], payload[64];
    size_t mlen = 0, plen = 0;
    int one = 1;

    memset(&cl, 0, sizeof cl);
    cl.next_id = 1;
    alcove_frame_dec_init(&cl.dec);
    cl.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(cl.fd >= 0);
    setsockopt(cl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    FUZZ_CHECK(connect(cl.fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    FUZZ_CHECK(alcove_noise_hs_initiator(&hs, srv->static_pk,
                                         (const uint8_t *)ALCOVE_NOISE_PROLOGUE,
                                         ALCOVE_NOISE_PROLOGUE_LEN) == 0);
    FUZZ_CHECK(alcove_noise_hs_write(hs, NULL, 0, m1 + 2, sizeof m1 - 2, &mlen) == 0);
    m1[0] = 0;
    m1[1] = (uint8_t)mlen;
    send_bytes(m1, 2 + mlen);
    /* Message 2. */
    for (int i = 0;; i++) {
        size_t used = 0, flen = 0;
        const uint8_t *f = NULL;
        FUZZ_CHECK(i < 100000 && !cl.dead);
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = recv(cl.fd, rbuf, ALCOVE_FRAME_HDR + ALCOVE_NOISE_HS2_BYTES, MSG_DONTWAIT);
        if (n <= 0)
            continue;
        FUZZ_CHECK(alcove_frame_feed(&cl.dec, rbuf, (size_t)n, &used, &f, &flen) >= 0);
        FUZZ_CHECK(used == (size_t)n);
        if (f == NULL)
            continue;
        FUZZ_CHECK(alcove_noise_hs_read(hs, f, flen, payload, sizeof payload, &plen) == 0);
        FUZZ_CHECK(alcove_noise_hs_split(hs, &cl.t, cl.h) == 0);
        break;
    }
    alcove_noise_hs_free(hs);
    FUZZ_CHECK(fcntl(cl.fd, F_SETFL, fcntl(cl.fd, F_GETFL) | O_NONBLOCK) == 0);
}

/* Encrypt plaintext[0..n) as one transport message and send it. */
static void send_plain(const uint8_t *p, size_t n)
{
    if (cl.dead || n > ALCOVE_NOISE_PLAINTEXT_MAX)
        return;
    FUZZ_CHECK(alcove_noise_encrypt(cl.t, p, n, frame_out + 2) == 0);
    FUZZ_CHECK(alcove_frame_put_len(frame_out, n + ALCOVE_NOISE_TAG_BYTES) == 0);
    send_bytes(frame_out, 2 + n + ALCOVE_NOISE_TAG_BYTES);
    uv_run(&loop, UV_RUN_NOWAIT);
    (void)drain();
}

static uint64_t take_id(uint8_t op, fuzz_in *in)
{
    if (op & 0x80)
        return fuzz_u8(in);
    return cl.next_id++;
}

static void send_request(Alcove__Wire__Request *req, uint8_t expect, uint8_t slot_i,
                         uint64_t after)
{
    size_t n = alcove__wire__request__get_packed_size(req);
    if (n > ALCOVE_NOISE_PLAINTEXT_MAX)
        return;
    alcove__wire__request__pack(req, plain);
    if (req->id < MAX_IDS) {
        /* A reused id is answered for whichever request; keep the first
         * expectation only if it is the stricter one. */
        cl.sent[req->id] = 1;
        if (cl.expect[req->id] == EXP_ANY || expect == EXP_NOT_OK) {
            cl.expect[req->id] = expect;
            cl.exp_slot[req->id] = slot_i;
            cl.exp_after[req->id] = after;
        }
    }
    send_plain(plain, n);
}

static void slot_keys(void)
{
    for (int i = 0; i < NSLOTS; i++) {
        crypto_sign_keypair(slots[i].auth_pk, slots[i].auth_sk);
        randombytes_buf(slots[i].secret, sizeof slots[i].secret);
    }
}

static void run_ops(fuzz_in *in)
{
    while (in->n > 0 && !cl.dead) {
        uint8_t op = fuzz_u8(in);
        Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
        uint8_t code = op & 0x7F;
        size_t len;
        const uint8_t *p;

        switch (code % 14) {
        case 0: { /* raw Request bytes */
            p = fuzz_bytes(in, fuzz_u16(in), &len);
            Alcove__Wire__Request *r = alcove__wire__request__unpack(NULL, len, p);
            if (r != NULL) {
                if (r->id < MAX_IDS)
                    cl.sent[r->id] = 1;
                alcove__wire__request__free_unpacked(r, NULL);
            }
            send_plain(p, len);
            break;
        }
        case 1: /* raw bytes on the socket */
            p = fuzz_bytes(in, fuzz_u16(in), &len);
            send_bytes(p, len);
            uv_run(&loop, UV_RUN_NOWAIT);
            (void)drain();
            break;
        case 2: {
            Alcove__Wire__Hello h = ALCOVE__WIRE__HELLO__INIT;
            h.version = fuzz_u8(in);
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_HELLO;
            req.hello = &h;
            send_request(&req, EXP_ANY, 0, 0);
            break;
        }
        case 3: {
            uint8_t si = fuzz_u8(in) % NSLOTS, hash[32];
            Alcove__Wire__CreateMailbox c = ALCOVE__WIRE__CREATE_MAILBOX__INIT;
            crypto_generichash(hash, sizeof hash, slots[si].secret, 32, NULL, 0);
            c.auth_pub.data = slots[si].auth_pk;
            c.auth_pub.len = 32;
            c.send_key_hash.data = hash;
            c.send_key_hash.len = 32;
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX;
            req.create_mailbox = &c;
            send_request(&req, EXP_CREATE, si, 0);
            break;
        }
        case 4: {
            uint8_t si = fuzz_u8(in) % NSLOTS, flags = fuzz_u8(in);
            uint8_t msg[15 + 64 + 16], sig[64];
            slot *s = &slots[si];
            const slot *signer = (flags & 2) ? &slots[(si + 1) % NSLOTS] : s;
            Alcove__Wire__Login l = ALCOVE__WIRE__LOGIN__INIT;
            memcpy(msg, "alcove-login-v1", 15);
            memcpy(msg + 15, cl.h, 64);
            memcpy(msg + 79, s->recv_id, 16);
            crypto_sign_detached(sig, NULL, msg, sizeof msg, signer->auth_sk);
            if (flags & 1)
                sig[flags % 64] ^= 0x10;
            l.recv_id.data = s->recv_id;
            l.recv_id.len = 16;
            l.sig.data = sig;
            l.sig.len = 64;
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
            req.login = &l;
            /* A forged signature never logs in.  (Another slot's key with
             * the same public key is impossible: keys are distinct.) */
            send_request(&req, (flags & 3) || !s->known ? EXP_NOT_OK : EXP_LOGIN, si, 0);
            break;
        }
        case 5: {
            uint8_t si = fuzz_u8(in) % NSLOTS, flags = fuzz_u8(in), wrong[32];
            slot *s = &slots[si];
            Alcove__Wire__Send sd = ALCOVE__WIRE__SEND__INIT;
            p = fuzz_bytes(in, fuzz_u16(in), &len);
            memcpy(wrong, s->secret, 32);
            wrong[flags % 32] ^= 0x01;
            sd.send_id.data = s->send_id;
            sd.send_id.len = 16;
            sd.send_secret.data = (flags & 1) ? wrong : s->secret;
            sd.send_secret.len = 32;
            sd.blob.data = (uint8_t *)(uintptr_t)p;
            sd.blob.len = len;
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
            req.send = &sd;
            send_request(&req, (flags & 1) || !s->known ? EXP_NOT_OK : EXP_ANY, si, 0);
            break;
        }
        case 6: {
            uint8_t si = fuzz_u8(in) % NSLOTS;
            Alcove__Wire__Fetch f = ALCOVE__WIRE__FETCH__INIT;
            f.recv_id.data = slots[si].recv_id;
            f.recv_id.len = 16;
            f.after_seq = fuzz_u8(in);
            f.max = fuzz_u16(in);
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
            req.fetch = &f;
            send_request(&req, slots[si].owned ? EXP_FETCH : EXP_NOT_OK, si, f.after_seq);
            break;
        }
        case 7: {
            uint8_t si = fuzz_u8(in) % NSLOTS;
            Alcove__Wire__Ack a = ALCOVE__WIRE__ACK__INIT;
            a.recv_id.data = slots[si].recv_id;
            a.recv_id.len = 16;
            a.up_to_seq = fuzz_u16(in);
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_ACK;
            req.ack = &a;
            send_request(&req, slots[si].owned ? EXP_ANY : EXP_NOT_OK, si, 0);
            break;
        }
        case 8: {
            uint8_t si = fuzz_u8(in) % NSLOTS;
            Alcove__Wire__Subscribe sb = ALCOVE__WIRE__SUBSCRIBE__INIT;
            sb.recv_id.data = slots[si].recv_id;
            sb.recv_id.len = 16;
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SUBSCRIBE;
            req.subscribe = &sb;
            send_request(&req, slots[si].owned ? EXP_ANY : EXP_NOT_OK, si, 0);
            break;
        }
        case 9: {
            uint8_t si = fuzz_u8(in) % NSLOTS;
            Alcove__Wire__DeleteMailbox d = ALCOVE__WIRE__DELETE_MAILBOX__INIT;
            d.recv_id.data = slots[si].recv_id;
            d.recv_id.len = 16;
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_DELETE_MAILBOX;
            req.delete_mailbox = &d;
            send_request(&req, slots[si].owned ? EXP_ANY : EXP_NOT_OK, si, 0);
            break;
        }
        case 10: {
            Alcove__Wire__Ping pg = ALCOVE__WIRE__PING__INIT;
            req.id = take_id(op, in);
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
            req.ping = &pg;
            send_request(&req, EXP_ANY, 0, 0);
            break;
        }
        case 11:
            clock_ms += (uint64_t)fuzz_u16(in) * 60000u;
            break;
        case 12:
            settle();
            break;
        default:
            settle();
            disconnect();
            connect_relay();
            break;
        }
    }
}

static void collect(relay_mbox *mb, void *ctx)
{
    relay_mbox ***pp = ctx;
    *(*pp)++ = mb;
}

/* Delete every mailbox, so the next input starts from an empty relay. */
static void reset_relay(void)
{
    size_t n = relay_index_count(srv->index);
    relay_mbox **all, **p;

    if (n == 0)
        return;
    all = calloc(n, sizeof *all);
    FUZZ_CHECK(all != NULL);
    p = all;
    relay_index_each(srv->index, collect, &p);
    FUZZ_CHECK((size_t)(p - all) == n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(relay_queue_delete(srv, NULL, 0, all[i]) == 0);
    free(all);
    for (int i = 0; relay_writer_inflight(srv->writer) > 0; i++) {
        FUZZ_CHECK(i < 100000);
        uv_run(&loop, UV_RUN_ONCE);
    }
    FUZZ_CHECK(relay_index_count(srv->index) == 0);
}

/* --- seeds ----------------------------------------------------------------- */

static void write_seeds(const char *dir)
{
    /* Hello; create slot 0; send it two messages; fetch; ack; subscribe;
     * send again (push); settle; reconnect; log in; fetch; delete. */
    static const uint8_t flow[] = {
        2, 1,                       /* Hello v1 */
        3, 0,                       /* create slot 0 */
        12,                         /* settle: learn its ids */
        5, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o',
        5, 0, 0, 0, 3, 'a', 'b', 'c',
        12,
        6, 0, 0, 0, 0,              /* fetch all */
        7, 0, 0, 1,                 /* ack 1 */
        8, 0,                       /* subscribe */
        5, 0, 0, 0, 4, 'p', 'u', 's', 'h',
        12,
        13,                         /* reconnect */
        2, 1,
        6, 0, 0, 0, 0,              /* fetch before login: refused */
        4, 0, 0,                    /* log in */
        12,
        6, 0, 1, 0, 10,             /* fetch after 1, max 10 */
        4, 0, 1,                    /* forged login */
        5, 0, 1, 0, 1, 'x',         /* wrong secret */
        11, 0, 120,                 /* two hours later: expired */
        6, 0, 0, 0, 0,
        9, 0,                       /* delete */
        12,
        6, 0, 0, 0, 0,              /* not found */
        10,
    };
    static const uint8_t violations[] = {
        10,                         /* Ping before Hello */
    };
    static const uint8_t second_hello[] = {
        2, 1, 3, 1, 12, 0x82, 1, 1, /* Hello with a reused id */
    };
    static const uint8_t raw[] = {
        2, 1,
        0, 0, 4, 0x08, 0x02, 0x52, 0x00, /* raw Request: id 2, Ping */
        1, 0, 3, 0, 1, 0xAA,             /* a frame that does not decrypt */
    };
    static const uint8_t quota[] = {
        2, 1, 3, 2, 12,
        5, 2, 0, 0, 1, 'a', 5, 2, 0, 0, 1, 'b', 5, 2, 0, 0, 1, 'c',
        5, 2, 0, 0, 1, 'd', 5, 2, 0, 0, 1, 'e', 5, 2, 0, 0, 1, 'f',
        5, 2, 0, 0, 1, 'g', 5, 2, 0, 0, 1, 'h', 5, 2, 0, 0, 1, 'i',
        5, 2, 0, 0, 1, 'j', 5, 2, 0, 0, 1, 'k', 5, 2, 0, 0, 1, 'l',
        5, 2, 0, 0, 1, 'm', 5, 2, 0, 0, 1, 'n', 5, 2, 0, 0, 1, 'o',
        5, 2, 0, 0, 1, 'p', 5, 2, 0, 0, 1, 'q', 12,
        6, 2, 0, 0, 0, 7, 2, 0, 16, 12, 6, 2, 0, 0, 0,
    };
    fuzz_write_seed(dir, "flow", flow, sizeof flow);
    fuzz_write_seed(dir, "ping-before-hello", violations, sizeof violations);
    fuzz_write_seed(dir, "reused-id", second_hello, sizeof second_hello);
    fuzz_write_seed(dir, "raw", raw, sizeof raw);
    fuzz_write_seed(dir, "quota", quota, sizeof quota);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_dispatch");
    verbose = getenv("ALCOVE_FUZZ_VERBOSE") != NULL;
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    relay_start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};

    if (size > (size_t)256 * 1024)
        return -1;
    fuzz_rng_reset("fuzz_dispatch/input");
    clock_ms = 1700000000000ull;
    memset(slots, 0, sizeof slots);
    slot_keys();
    connect_relay();
    run_ops(&in);
    settle();
    disconnect();
    reset_relay();
    return 0;
}
