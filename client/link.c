/* A blocking relay connection: TCP, Noise NK (initiator), then one protobuf
 * message per length-prefixed transport frame.
 *
 * The socket itself stays blocking (alcove_link_fd() is handed to poll() by
 * callers), but every send and recv here uses MSG_DONTWAIT and waits with
 * poll() against a deadline, so no call outlives its timeout.  A negative
 * timeout waits forever.
 *
 * Once the stream is broken (a frame that does not decode or decrypt, an
 * I/O error, a close, or a send that failed after its frame was encrypted),
 * the error is sticky: every later send or receive returns it again. */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "noise.h"
#include "pbuf.h"

#define RBUF_BYTES 16384u
#define PROTOCOL_VERSION 1u
#define MSG_BYTES (ALCOVE_FRAME_HDR + ALCOVE_NOISE_MSG_MAX)

_Static_assert(ALCOVE_NOISE_MSG_MAX == ALCOVE_FRAME_MAX,
               "one Noise message per frame");

struct alcove_link {
    int fd;
    int broken; /* sticky error once the stream is unusable, else 0 */
    alcove_noise_transport *t;
    uint64_t next_id;
    uint8_t h[ALCOVE_NOISE_HASH_BYTES];
    alcove_frame_dec dec;
    size_t rpos, rlen; /* bytes received but not yet fed: rbuf[rpos..rlen) */
    uint8_t rbuf[RBUF_BYTES];
    /* One outgoing frame (prefix + ciphertext), or one incoming plaintext. */
    uint8_t msg[MSG_BYTES];
};

/* --- time and waiting ----------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts = {0, 0};

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0; /* cannot happen for CLOCK_MONOTONIC on Linux */
    }
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -1 means no deadline. */
static int64_t deadline_in(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left;

    if (deadline < 0) {
        return -1;
    }
    left = deadline - now_ms();
    if (left <= 0) {
        return 0;
    }
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* Wait until fd is ready for `events` (or has an error or hang-up, which
 * the following I/O call reports). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n > 0) {
            return 0;
        }
        if (n == 0) {
            return ALCOVE_ETIMEDOUT;
        }
        if (errno != EINTR) {
            return ALCOVE_EIO;
        }
    }
}

static void close_fd(int fd)
{
    /* Nothing useful can be done if close fails on a socket we are
     * abandoning; the descriptor is released either way on Linux. */
    (void)close(fd);
}

/* --- sockets -------------------------------------------------------------- */

/* Connect one address; returns a blocking socket or a negative error. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd, err = 0, flags, one = 1;
    socklen_t err_len = sizeof err;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0) {
        return ALCOVE_ECONNECT;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int rc;
        if (errno != EINPROGRESS && errno != EINTR) {
            close_fd(fd);
            return ALCOVE_ECONNECT;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc != 0) {
            close_fd(fd);
            return rc == ALCOVE_ETIMEDOUT ? rc : ALCOVE_ECONNECT;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 ||
            err != 0) {
            close_fd(fd);
            return ALCOVE_ECONNECT;
        }
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        close_fd(fd);
        return ALCOVE_ECONNECT;
    }
    /* Requests and replies are small and interactive.  Failing to set
     * TCP_NODELAY only costs latency, so its result is deliberately unused. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int tcp_connect(const alcove_relay_addr *addr, int64_t deadline)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[8];
    int rc = ALCOVE_ECONNECT;

    if (addr == NULL || addr->port == 0 ||
        strnlen(addr->host, sizeof addr->host) == sizeof addr->host) {
        return ALCOVE_EINVAL;
    }
    if (snprintf(port, sizeof port, "%u", (unsigned)addr->port) < 0) {
        return ALCOVE_EINVAL;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (addr->host_is_ipv6 ? AI_NUMERICHOST : 0);
    if (getaddrinfo(addr->host, port, &hints, &res) != 0) {
        return ALCOVE_ECONNECT;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, deadline);
        if (rc >= 0 || rc == ALCOVE_ETIMEDOUT) {
            break;
        }
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(int fd, const uint8_t *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            return ALCOVE_ECLOSED;
        }
        return ALCOVE_EIO;
    }
    return 0;
}

/* Refill rbuf (only called once it is fully fed to the decoder). */
static int fill(alcove_link *l, int64_t deadline)
{
    for (;;) {
        ssize_t n = recv(l->fd, l->rbuf, sizeof l->rbuf, MSG_DONTWAIT);
        if (n > 0) {
            l->rpos = 0;
            l->rlen = (size_t)n;
            return 0;
        }
        if (n == 0) {
            return ALCOVE_ECLOSED;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(l->fd, POLLIN, deadline);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        return errno == ECONNRESET ? ALCOVE_ECLOSED : ALCOVE_EIO;
    }
}

/* Next whole frame; *frame is valid until the next read_frame or fill.  A
 * timeout leaves a partial frame in the decoder for the next call. */
static int read_frame(alcove_link *l, int64_t deadline, const uint8_t **frame,
                      size_t *frame_len)
{
    int rc;

    for (;;) {
        if (l->rpos < l->rlen) {
            size_t used = 0;
            rc = alcove_frame_feed(&l->dec, l->rbuf + l->rpos,
                                   l->rlen - l->rpos, &used, frame, frame_len);
            l->rpos += used;
            if (rc == 1) {
                return 0;
            }
            if (rc < 0) {
                return rc; /* EPROTO (zero length) or ENOMEM */
            }
        }
        rc = fill(l, deadline);
        if (rc != 0) {
            return rc;
        }
    }
}

/* Encrypt the plaintext at l->msg + 2 in place, prefix it, send it.  Any
 * failure after encryption breaks the link: the nonce has moved on. */
static int send_sealed(alcove_link *l, size_t pt_len, int64_t deadline)
{
    int rc = alcove_noise_encrypt(l->t, l->msg + ALCOVE_FRAME_HDR, pt_len,
                                  l->msg + ALCOVE_FRAME_HDR);
    if (rc != 0) {
        sodium_memzero(l->msg, sizeof l->msg);
        return rc;
    }
    rc = alcove_frame_put_len(l->msg, pt_len + ALCOVE_NOISE_TAG_BYTES);
    if (rc == 0) {
        rc = send_all(l->fd, l->msg, ALCOVE_FRAME_HDR + pt_len +
                                         ALCOVE_NOISE_TAG_BYTES, deadline);
    }
    if (rc != 0) {
        l->broken = rc;
    }
    return rc;
}

/* --- handshake ------------------------------------------------------------ */

static int handshake(alcove_link *l, const uint8_t key[ALCOVE_ADDR_KEY_BYTES],
                     int64_t deadline)
{
    alcove_noise_hs *hs = NULL;
    uint8_t out[ALCOVE_FRAME_HDR + ALCOVE_NOISE_HS1_BYTES];
    const uint8_t *frame = NULL;
    size_t n = 0, frame_len = 0;
    int rc;

    rc = alcove_noise_hs_initiator(&hs, key,
                                   (const uint8_t *)ALCOVE_NOISE_PROLOGUE,
                                   ALCOVE_NOISE_PROLOGUE_LEN);
    if (rc != 0) {
        goto out;
    }
    rc = alcove_noise_hs_write(hs, NULL, 0, out + ALCOVE_FRAME_HDR,
                               sizeof out - ALCOVE_FRAME_HDR, &n);
    if (rc != 0) {
        goto out; /* EBADKEY: the address holds a low-order key */
    }
    rc = alcove_frame_put_len(out, n);
    if (rc != 0) {
        goto out;
    }
    rc = send_all(l->fd, out, ALCOVE_FRAME_HDR + n, deadline);
    if (rc != 0) {
        goto out;
    }
    rc = read_frame(l, deadline, &frame, &frame_len);
    if (rc == ALCOVE_ECLOSED) {
        /* A relay that cannot decrypt message 1 (it does not hold the key
         * in the address) closes without answering; in NK that is the only
         * sign we get of a wrong key. */
        rc = ALCOVE_EDECRYPT;
    }
    if (rc != 0) {
        goto out;
    }
    /* Payloads are empty in version 1 and ignored; l->msg has room for any. */
    rc = alcove_noise_hs_read(hs, frame, frame_len, l->msg, sizeof l->msg, &n);
    sodium_memzero(l->msg, sizeof l->msg);
    if (rc != 0) {
        /* Bad tag, low-order e or a short message: the peer did not prove
         * it holds the relay key. */
        rc = rc == ALCOVE_ENOMEM ? rc : ALCOVE_EDECRYPT;
        goto out;
    }
    rc = alcove_noise_hs_split(hs, &l->t, l->h);
out:
    alcove_noise_hs_free(hs);
    sodium_memzero(out, sizeof out);
    return rc;
}

/* --- public API ----------------------------------------------------------- */

int alcove_tcp_connect(const alcove_relay_addr *addr, int timeout_ms)
{
    return tcp_connect(addr, deadline_in(timeout_ms));
}

int alcove_link_open(alcove_link **out, const alcove_relay_addr *addr,
                     int timeout_ms)
{
    int64_t deadline = deadline_in(timeout_ms);
    alcove_link *l;
    int rc;

    *out = NULL;
    if (addr == NULL) {
        return ALCOVE_EINVAL;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        return ALCOVE_ENOMEM;
    }
    l->fd = -1;
    l->next_id = 1;
    alcove_frame_dec_init(&l->dec);

    rc = tcp_connect(addr, deadline);
    if (rc < 0) {
        goto fail;
    }
    l->fd = rc;
    rc = handshake(l, addr->key, deadline);
    if (rc != 0) {
        goto fail;
    }
    *out = l;
    return 0;
fail:
    alcove_link_free(l);
    return rc;
}

const uint8_t *alcove_link_hash(const alcove_link *l)
{
    return l->h;
}

int alcove_link_fd(const alcove_link *l)
{
    return l->fd;
}

static int link_send(alcove_link *l, Alcove__Wire__Request *req, int keep_id,
                     int64_t deadline)
{
    size_t len;

    if (l->broken != 0) {
        return l->broken;
    }
    if (!keep_id) {
        req->id = l->next_id++;
    }
    len = alcove__wire__request__get_packed_size(req);
    if (len > ALCOVE_NOISE_PLAINTEXT_MAX) {
        return ALCOVE_ETOOBIG;
    }
    if (alcove__wire__request__pack(req, l->msg + ALCOVE_FRAME_HDR) != len) {
        sodium_memzero(l->msg, sizeof l->msg);
        return ALCOVE_EINVAL;
    }
    return send_sealed(l, len, deadline);
}

int alcove_link_send(alcove_link *l, Alcove__Wire__Request *req, int keep_id,
                     int timeout_ms)
{
    return link_send(l, req, keep_id, deadline_in(timeout_ms));
}

/* Decode one plaintext.  It is unpacked once under the budget allocator (an
 * amplifying message fails there without costing more than the budget), and
 * then again with the default allocator, which is what callers free with. */
static int unpack_relay_message(const uint8_t *pt, size_t len,
                                Alcove__Wire__RelayMessage **out)
{
    alcove_pb_budget b;
    Alcove__Wire__RelayMessage *m;

    alcove_pb_budget_init(&b, alcove_pb_budget_for(len));
    m = alcove__wire__relay_message__unpack(&b.alloc, len, pt);
    if (m == NULL) {
        return ALCOVE_EPROTO;
    }
    alcove__wire__relay_message__free_unpacked(m, &b.alloc);
    *out = alcove__wire__relay_message__unpack(NULL, len, pt);
    return *out != NULL ? 0 : ALCOVE_ENOMEM;
}

static int link_recv(alcove_link *l, Alcove__Wire__RelayMessage **out,
                     int64_t deadline)
{
    const uint8_t *frame = NULL;
    size_t frame_len = 0, pt_len;
    int rc;

    *out = NULL;
    if (l->broken != 0) {
        return l->broken;
    }
    rc = read_frame(l, deadline, &frame, &frame_len);
    if (rc != 0) {
        if (rc != ALCOVE_ETIMEDOUT) {
            l->broken = rc;
        }
        return rc;
    }
    rc = alcove_noise_decrypt(l->t, frame, frame_len, l->msg);
    if (rc != 0) {
        rc = rc == ALCOVE_EDECRYPT ? rc : ALCOVE_EPROTO;
        l->broken = rc;
        return rc;
    }
    pt_len = frame_len - ALCOVE_NOISE_TAG_BYTES;
    rc = unpack_relay_message(l->msg, pt_len, out);
    sodium_memzero(l->msg, pt_len);
    return rc;
}

int alcove_link_recv(alcove_link *l, Alcove__Wire__RelayMessage **out,
                     int timeout_ms)
{
    return link_recv(l, out, deadline_in(timeout_ms));
}

int alcove_link_call(alcove_link *l, Alcove__Wire__Request *req,
                     Alcove__Wire__RelayMessage **out, int timeout_ms,
                     void (*on_push)(void *ctx, const Alcove__Wire__Push *p),
                     void *ctx)
{
    int64_t deadline = deadline_in(timeout_ms);
    int rc;

    *out = NULL;
    rc = link_send(l, req, 0, deadline);
    if (rc != 0) {
        return rc;
    }
    for (;;) {
        Alcove__Wire__RelayMessage *m = NULL;
        rc = link_recv(l, &m, deadline);
        if (rc != 0) {
            return rc;
        }
        if (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY &&
            m->reply != NULL && m->reply->id == req->id) {
            *out = m;
            return 0;
        }
        if (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH &&
            m->push != NULL && on_push != NULL) {
            on_push(ctx, m->push);
        }
        /* Replies to other requests and empty messages are dropped. */
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
}

int alcove_link_connect(alcove_link **out, const alcove_relay_addr *addr,
                        int timeout_ms, Alcove__Wire__HelloResult *hello_out)
{
    int64_t deadline = deadline_in(timeout_ms);
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Hello hello = ALCOVE__WIRE__HELLO__INIT;
    Alcove__Wire__RelayMessage *m = NULL;
    const Alcove__Wire__Reply *reply;
    alcove_link *l = NULL;
    int rc;

    *out = NULL;
    rc = alcove_link_open(&l, addr, remaining_ms(deadline));
    if (rc != 0) {
        return rc;
    }
    hello.version = PROTOCOL_VERSION;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_HELLO;
    req.hello = &hello;
    rc = alcove_link_call(l, &req, &m, remaining_ms(deadline), NULL, NULL);
    if (rc != 0) {
        goto out;
    }
    reply = m->reply;
    if (reply->status != ALCOVE__WIRE__STATUS__OK) {
        rc = ALCOVE_ERELAY;
        goto out;
    }
    if (reply->result_case != ALCOVE__WIRE__REPLY__RESULT_HELLO ||
        reply->hello == NULL) {
        rc = ALCOVE_EPROTO;
        goto out;
    }
    if (hello_out != NULL) {
        /* Plain fields only: base may point at unknown fields owned by m. */
        alcove__wire__hello_result__init(hello_out);
        hello_out->version = reply->hello->version;
        hello_out->max_blob_bytes = reply->hello->max_blob_bytes;
        hello_out->message_ttl_ms = reply->hello->message_ttl_ms;
        hello_out->max_messages_per_mailbox =
            reply->hello->max_messages_per_mailbox;
        hello_out->max_bytes_per_mailbox = reply->hello->max_bytes_per_mailbox;
        hello_out->logs_addresses = reply->hello->logs_addresses;
    }
    rc = 0;
out:
    if (m != NULL) {
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
    if (rc != 0) {
        alcove_link_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int alcove_link_send_plaintext(alcove_link *l, const uint8_t *pt, size_t len,
                               int timeout_ms)
{
    if (l->broken != 0) {
        return l->broken;
    }
    if (len > ALCOVE_NOISE_PLAINTEXT_MAX) {
        return ALCOVE_ETOOBIG;
    }
    if (len > 0) {
        memcpy(l->msg + ALCOVE_FRAME_HDR, pt, len);
    }
    return send_sealed(l, len, deadline_in(timeout_ms));
}

int alcove_link_send_raw(alcove_link *l, const uint8_t *bytes, size_t len,
                         int timeout_ms)
{
    return send_all(l->fd, bytes, len, deadline_in(timeout_ms));
}

void alcove_link_free(alcove_link *l)
{
    if (l == NULL) {
        return;
    }
    if (l->fd >= 0) {
        close_fd(l->fd);
    }
    alcove_frame_dec_free(&l->dec);
    alcove_noise_transport_free(l->t);
    sodium_memzero(l, sizeof *l);
    free(l);
}
