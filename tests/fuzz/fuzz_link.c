/* Fuzz target: the client's relay link (client/link.c) against a hostile
 * relay: a harness thread accepts the link's TCP connection on loopback,
 * completes a genuine Noise NK handshake (so everything after it is
 * authentic as far as the client can tell), then sends what the input says
 * and closes.  The client side is the real code: read_frame and the frame
 * decoder, transport decryption, unpack_relay_message (budgeted, then with
 * the default allocator), alcove_link_call's matching of replies and
 * pushes, and alcove_link_connect's Hello checks.
 *
 * Input: [mode u8] then records [kind u8][len u16][bytes]:
 *   kind % 3 == 0  bytes (<= 65519) encrypted as one transport message;
 *   kind % 3 == 1  bytes written raw (framing and encryption up to the input);
 *   kind % 3 == 2  bytes encrypted, then one bit of the ciphertext flipped.
 * mode bit 0: alcove_link_connect (Hello) then a Ping call, else
 * alcove_link_open; then alcove_link_recv until the link breaks.
 * Oracles: ASan/UBSan, every call returns (10 s deadline, nothing hangs),
 * only documented errors, a broken link stays broken. */
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "address.h"
#include "alcove.pb-c.h"
#include "err.h"
#include "frame.h"
#include "link.h"
#include "noise.h"

#define TIMEOUT_MS 10000 /* never reached: the fake relay always closes */

static int listener = -1;
static alcove_relay_addr addr;
static uint8_t relay_sk[32];
static const uint8_t relay_e[32] = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

typedef struct relay_job {
    const uint8_t *p;
    size_t n;
} relay_job;

static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The fake relay: one connection, then gone. */
static void *relay_thread(void *arg)
{
    static uint8_t buf[ALCOVE_FRAME_HDR + ALCOVE_NOISE_MSG_MAX];
    relay_job *job = arg;
    fuzz_in in = {job->p, job->n};
    alcove_noise_hs *hs = NULL;
    alcove_noise_transport *t = NULL;
    uint8_t m1[ALCOVE_FRAME_HDR + ALCOVE_NOISE_HS1_BYTES], h[64], pk[32];
    size_t plen = 0, mlen = 0;
    struct timeval tv = {5, 0};
    int fd = accept(listener, NULL, NULL);

    if (fd < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    crypto_scalarmult_base(pk, relay_sk);
    if (read_all(fd, m1, sizeof m1) != 0 ||
        alcove_noise_hs_responder(&hs, relay_sk, pk,
                                  (const uint8_t *)ALCOVE_NOISE_PROLOGUE,
                                  ALCOVE_NOISE_PROLOGUE_LEN) != 0 ||
        alcove_noise_hs_set_ephemeral(hs, relay_e) != 0 ||
        alcove_noise_hs_read(hs, m1 + 2, sizeof m1 - 2, buf, sizeof buf, &plen) != 0 ||
        alcove_noise_hs_write(hs, NULL, 0, buf + 2, sizeof buf - 2, &mlen) != 0 ||
        alcove_noise_hs_split(hs, &t, h) != 0)
        goto out;
    buf[0] = (uint8_t)(mlen >> 8);
    buf[1] = (uint8_t)mlen;
    if (write_all(fd, buf, 2 + mlen) != 0)
        goto out;
    while (in.n > 0) {
        uint8_t kind = fuzz_u8(&in);
        size_t len, want = fuzz_u16(&in);
        const uint8_t *p = fuzz_bytes(&in, want, &len);
        size_t out_len;
        if (kind % 3 == 1) {
            if (write_all(fd, p, len) != 0)
                break;
            continue;
        }
        if (len > ALCOVE_NOISE_PLAINTEXT_MAX)
            len = ALCOVE_NOISE_PLAINTEXT_MAX;
        FUZZ_CHECK(alcove_noise_encrypt(t, p, len, buf + 2) == 0);
        out_len = len + ALCOVE_NOISE_TAG_BYTES;
        if (kind % 3 == 2)
            buf[2 + ((size_t)kind * 31u + len) % out_len] ^= (uint8_t)(1u << (kind % 8));
        buf[0] = (uint8_t)(out_len >> 8);
        buf[1] = (uint8_t)out_len;
        if (write_all(fd, buf, 2 + out_len) != 0)
            break;
    }
out:
    /* FIN, not RST: let the client read everything, then wait for it to
     * hang up (anything it sent is read and dropped). */
    shutdown(fd, SHUT_WR);
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    close(fd);
    alcove_noise_hs_free(hs);
    alcove_noise_transport_free(t);
    return NULL;
}

static int recv_ok(int rc)
{
    return rc == 0 || rc == ALCOVE_ETIMEDOUT || rc == ALCOVE_ECLOSED ||
           rc == ALCOVE_EDECRYPT || rc == ALCOVE_EPROTO || rc == ALCOVE_EIO ||
           rc == ALCOVE_ENOMEM;
}

static volatile size_t sink;

static void touch(const Alcove__Wire__RelayMessage *m)
{
    if (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY) {
        sink += strlen(m->reply->detail);
        if (m->reply->result_case == ALCOVE__WIRE__REPLY__RESULT_FETCH)
            for (size_t i = 0; i < m->reply->fetch->n_messages; i++)
                sink += m->reply->fetch->messages[i]->blob.len;
    } else if (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH) {
        sink += m->push->recv_id.len;
    }
}

static void on_push(void *ctx, const Alcove__Wire__Push *p)
{
    (void)ctx;
    sink += p->recv_id.len + (p->message != NULL ? p->message->blob.len : 0);
}

static void client(int hello)
{
    alcove_link *l = NULL;
    Alcove__Wire__RelayMessage *m = NULL;
    Alcove__Wire__HelloResult hr;
    int rc;

    if (hello) {
        rc = alcove_link_connect(&l, &addr, TIMEOUT_MS, &hr);
        FUZZ_CHECK(recv_ok(rc) || rc == ALCOVE_ERELAY);
        if (rc != 0)
            return;
        Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
        Alcove__Wire__Ping ping = ALCOVE__WIRE__PING__INIT;
        req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
        req.ping = &ping;
        rc = alcove_link_call(l, &req, &m, TIMEOUT_MS, on_push, NULL);
        FUZZ_CHECK(recv_ok(rc));
        if (rc == 0) {
            FUZZ_CHECK(m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY &&
                       m->reply->id == req.id);
            alcove__wire__relay_message__free_unpacked(m, NULL);
        }
    } else {
        rc = alcove_link_open(&l, &addr, TIMEOUT_MS);
        FUZZ_CHECK(rc == 0);
    }
    for (int i = 0, eproto = 0; i < 10000; i++) {
        rc = alcove_link_recv(l, &m, TIMEOUT_MS);
        FUZZ_CHECK(recv_ok(rc));
        FUZZ_CHECK(rc != ALCOVE_ETIMEDOUT); /* the relay always closes */
        if (rc == ALCOVE_EPROTO) {
            /* A protobuf that does not decode leaves the link usable; a
             * zero-length frame breaks it (the same code, but sticky). */
            if (++eproto >= 64)
                break;
            continue;
        }
        eproto = 0;
        if (rc != 0) {
            /* Broken links stay broken. */
            FUZZ_CHECK(alcove_link_recv(l, &m, TIMEOUT_MS) == rc);
            break;
        }
        touch(m);
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
    alcove_link_free(l);
}

/* --- seeds ----------------------------------------------------------------- */

static size_t put_msg(uint8_t *out, const Alcove__Wire__RelayMessage *m)
{
    size_t n = alcove__wire__relay_message__get_packed_size(m);
    out[0] = 0; /* encrypted */
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    alcove__wire__relay_message__pack(m, out + 3);
    return 3 + n;
}

static void write_seeds(const char *dir)
{
    static uint8_t s[4096], id16[16], blob[48];
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    Alcove__Wire__Reply r;
    Alcove__Wire__HelloResult hr = ALCOVE__WIRE__HELLO_RESULT__INIT;
    Alcove__Wire__Stored st = ALCOVE__WIRE__STORED__INIT;
    Alcove__Wire__Push p = ALCOVE__WIRE__PUSH__INIT;
    Alcove__Wire__FetchResult fr = ALCOVE__WIRE__FETCH_RESULT__INIT;
    Alcove__Wire__Stored *list[1] = {&st};
    size_t n = 0;

    memset(id16, 7, sizeof id16);
    memset(blob, 0xbb, sizeof blob);
    alcove__wire__reply__init(&r);
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    m.reply = &r;
    s[n++] = 1; /* connect + ping */
    r.id = 1;
    hr.version = 1;
    hr.max_blob_bytes = 64000;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_HELLO;
    r.hello = &hr;
    n += put_msg(s + n, &m);
    /* A push before the Ping's reply. */
    st.seq = 3;
    st.blob.data = blob;
    st.blob.len = sizeof blob;
    p.recv_id.data = id16;
    p.recv_id.len = sizeof id16;
    p.message = &st;
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH;
    m.push = &p;
    n += put_msg(s + n, &m);
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    r.id = 2;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT__NOT_SET;
    n += put_msg(s + n, &m);
    /* Then a fetch result, a corrupted message and a raw zero-length frame. */
    r.id = 3;
    fr.n_messages = 1;
    fr.messages = list;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_FETCH;
    r.fetch = &fr;
    n += put_msg(s + n, &m);
    size_t k = put_msg(s + n, &m);
    s[n] = 2; /* flip a bit */
    n += k;
    s[n++] = 1;
    s[n++] = 0;
    s[n++] = 2;
    s[n++] = 0;
    s[n++] = 0;
    fuzz_write_seed(dir, "session", s, n);
    s[0] = 0; /* open + recv only */
    fuzz_write_seed(dir, "open-recv", s, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    uint8_t pk[32];

    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_link");
    crypto_box_keypair(pk, relay_sk);
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(listener >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(bind(listener, (struct sockaddr *)&sa, sizeof sa) == 0);
    FUZZ_CHECK(listen(listener, 16) == 0);
    FUZZ_CHECK(getsockname(listener, (struct sockaddr *)&sa, &sl) == 0);
    memset(&addr, 0, sizeof addr);
    memcpy(addr.key, pk, 32);
    snprintf(addr.host, sizeof addr.host, "127.0.0.1");
    addr.port = ntohs(sa.sin_port);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    relay_job job = {in.p, in.n};
    pthread_t th;

    if (size > (size_t)256 * 1024)
        return -1;
    fuzz_rng_reset("fuzz_link/input");
    FUZZ_CHECK(pthread_create(&th, NULL, relay_thread, &job) == 0);
    client(mode & 1);
    FUZZ_CHECK(pthread_join(th, NULL) == 0);
    return 0;
}
