#include "conn.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pbuf.h"

typedef struct wreq {
    uv_write_t req;
    conn *c;
    uint8_t *ext;   /* coalesced buffer (owned), or NULL: data follows */
    size_t len;
    uint8_t data[]; /* 2-byte length || ciphertext */
} wreq;

/* Coalesced output is flushed early past this size. */
#define CORK_MAX ((size_t)256u * 1024u)

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static int flush_cork(conn *c);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    (void)suggested;
    /* One buffer for all connections: every read is consumed in on_read. */
    buf->base = (char *)c->srv->readbuf;
    buf->len = sizeof c->srv->readbuf;
}

void conn_ref(conn *c) { c->refs++; }

static void conn_destroy(conn *c)
{
    free(c->obuf);
    alcove_frame_dec_free(&c->dec);
    alcove_noise_hs_free(c->hs);
    alcove_noise_transport_free(c->tx);
    free(c->sess);
    sodium_memzero(c, sizeof *c);
    free(c);
}

void conn_unref(conn *c)
{
    if (c != NULL && --c->refs == 0)
        conn_destroy(c);
}

static void on_close(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void drop_sessions(conn *c)
{
    for (uint32_t i = 0; i < c->nsess; i++) {
        relay_mbox_sub_remove(c->sess[i].mb, c);
        relay_mbox_unref(c->sess[i].mb);
    }
    c->nsess = 0;
}

void conn_close(conn *c, relay_close_reason why)
{
    if (c->closed)
        return;
    relay_server *srv = c->srv;
    c->closed = 1;
    c->state = CONN_CLOSING;
    srv->closes[why]++;
    relay_logf(srv->log, why == CLOSE_PEER_CLOSED || why == CLOSE_SHUTDOWN ? RLOG_DEBUG : RLOG_INFO,
               "conn_close", "reason=%s", relay_close_reason_name(why));
    drop_sessions(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->nconns--;
    /* Keys are not needed any more: wipe them now, not at free time. */
    alcove_noise_hs_free(c->hs);
    c->hs = NULL;
    alcove_noise_transport_free(c->tx);
    c->tx = NULL;
    alcove_frame_dec_free(&c->dec);
    free(c->obuf); /* gathered output for a closed peer is dropped */
    c->obuf = NULL;
    c->olen = c->ocap = 0;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    (void)status;
    free(req);
    c->shutting = 0;
    conn_close(c, (relay_close_reason)c->close_why);
    conn_unref(c);
}

void conn_close_after_flush(conn *c, relay_close_reason why)
{
    if (c->closed || c->shutting)
        return;
    c->state = CONN_CLOSING;
    c->close_why = why;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* The final reply may still be gathered: it must go before shutdown. */
    if (flush_cork(c) != 0 || c->closed)
        return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req == NULL) {
        conn_close(c, why);
        return;
    }
    req->data = c;
    /* A peer that never reads could hold the shutdown forever: the sweep
     * timer closes CLOSING connections past this deadline. */
    c->deadline = uv_now(c->srv->loop) + 5000;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c, why);
        return;
    }
    c->shutting = 1;
    conn_ref(c);
}

size_t conn_queued(const conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

void conn_pause(conn *c)
{
    if (!c->paused && !c->closed) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = 1;
    }
}

void conn_resume(conn *c)
{
    if (c->paused && !c->closed && c->state != CONN_CLOSING && !c->srv->draining) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->paused = 0;
    }
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = w->c;
    free(w->ext);
    free(w);
    if (status != 0 && !c->closed)
        conn_close(c, CLOSE_WRITE_ERROR);
    else if (c->paused && conn_queued(c) < c->srv->cfg->write_queue_bytes / 2)
        conn_resume(c);
    conn_unref(c);
}

/* After queueing bytes: pause reading from a peer that does not read, and
 * drop one whose queue keeps growing (pushes).  Returns 0 or ELIMIT. */
static int check_backpressure(conn *c)
{
    size_t q = conn_queued(c);
    const relay_config *cfg = c->srv->cfg;
    if (q > 4 * cfg->write_queue_bytes) {
        /* Nothing is lost: its messages stay stored until acked. */
        conn_close(c, CLOSE_SLOW_READER);
        return ALCOVE_ELIMIT;
    }
    if (q > cfg->write_queue_bytes)
        conn_pause(c);
    return 0;
}

static int write_buf(conn *c, wreq *w, uint8_t *base)
{
    w->c = c;
    size_t off = 0;
    if (conn_queued(c) == 0) {
        /* Nothing queued: write now, without a request and its deferred
         * callback; only what the socket does not take is queued. */
        uv_buf_t t = uv_buf_init((char *)base, (unsigned)w->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &t, 1);
        if (n > 0)
            off = (size_t)n;
        if (off == w->len) {
            c->srv->metrics.bytes_out += w->len;
            free(w->ext);
            free(w);
            return 0;
        }
    }
    uv_buf_t b = uv_buf_init((char *)base + off, (unsigned)(w->len - off));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w->ext);
        free(w);
        conn_close(c, CLOSE_WRITE_ERROR);
        return ALCOVE_EIO;
    }
    conn_ref(c);
    c->srv->metrics.bytes_out += w->len;
    return check_backpressure(c);
}

/* Write the gathered output of c (if any) with one write. */
static int flush_cork(conn *c)
{
    if (c->olen == 0 || c->closed)
        return 0;
    wreq *w = malloc(sizeof *w);
    if (w == NULL) {
        conn_close(c, CLOSE_NO_MEMORY);
        return ALCOVE_ENOMEM;
    }
    w->ext = c->obuf;
    w->len = c->olen;
    c->obuf = NULL;
    c->olen = c->ocap = 0;
    return write_buf(c, w, w->ext);
}

void conn_cork(relay_server *srv) { srv->cork_depth++; }

void conn_uncork(relay_server *srv)
{
    if (--srv->cork_depth > 0)
        return;
    while (srv->corked != NULL) {
        conn *c = srv->corked;
        srv->corked = c->onext;
        c->onext = NULL;
        c->oqueued = 0;
        (void)flush_cork(c);
        conn_unref(c);
    }
}

static int send_frame(conn *c, const uint8_t *pt, size_t len, int encrypt)
{
    size_t body = len + (encrypt ? ALCOVE_NOISE_TAG_BYTES : 0);
    uint8_t *dst;
    wreq *w = NULL;
    if (body > ALCOVE_FRAME_MAX)
        return ALCOVE_ETOOBIG;
    if (c->srv->cork_depth > 0) {
        if (c->olen + 2 + body > CORK_MAX && flush_cork(c) != 0)
            return ALCOVE_EIO;
        if (c->olen + 2 + body > c->ocap) {
            uint32_t ncap = c->ocap ? c->ocap : 4096;
            while (ncap < c->olen + 2 + body)
                ncap *= 2;
            uint8_t *nb = realloc(c->obuf, ncap);
            if (nb == NULL) {
                conn_close(c, CLOSE_NO_MEMORY);
                return ALCOVE_ENOMEM;
            }
            c->obuf = nb;
            c->ocap = ncap;
        }
        dst = c->obuf + c->olen;
    } else {
        w = malloc(sizeof *w + 2 + body);
        if (w == NULL) {
            conn_close(c, CLOSE_NO_MEMORY);
            return ALCOVE_ENOMEM;
        }
        w->ext = NULL;
        dst = w->data;
    }
    (void)alcove_frame_put_len(dst, body);
    if (encrypt) {
        int rc = alcove_noise_encrypt(c->tx, pt, len, dst + 2);
        if (rc != 0) {
            free(w);
            conn_close(c, CLOSE_PROTOCOL);
            return rc;
        }
    } else {
        memcpy(dst + 2, pt, len);
    }
    if (w == NULL) {
        c->olen += (uint32_t)(2 + body);
        if (!c->oqueued) {
            c->oqueued = 1;
            conn_ref(c);
            c->onext = c->srv->corked;
            c->srv->corked = c;
        }
        return 0;
    }
    w->len = 2 + body;
    return write_buf(c, w, w->data);
}

int conn_send(conn *c, const Alcove__Wire__RelayMessage *m)
{
    if (c->closed || c->tx == NULL)
        return ALCOVE_ECLOSED;
    size_t n = alcove__wire__relay_message__get_packed_size(m);
    if (n > ALCOVE_NOISE_PLAINTEXT_MAX) {
        relay_logf(c->srv->log, RLOG_ERROR, "reply_too_large", "bytes=%zu", n);
        return ALCOVE_ETOOBIG;
    }
    alcove__wire__relay_message__pack(m, c->srv->outbuf);
    return send_frame(c, c->srv->outbuf, n, 1);
}

int conn_reply(conn *c, uint64_t id, Alcove__Wire__Status st, const char *detail)
{
    Alcove__Wire__Reply r = ALCOVE__WIRE__REPLY__INIT;
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    r.id = id;
    r.status = st;
    r.detail = (char *)(uintptr_t)(detail ? detail : "");
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    m.reply = &r;
    return conn_send(c, &m);
}

conn_sess *conn_find_sess(conn *c, const uint8_t recv_id[16])
{
    for (uint32_t i = 0; i < c->nsess; i++)
        if (memcmp(c->sess[i].mb->recv_id, recv_id, RELAY_ID_BYTES) == 0)
            return &c->sess[i];
    return NULL;
}

int conn_add_sess(conn *c, relay_mbox *mb)
{
    for (uint32_t i = 0; i < c->nsess; i++)
        if (c->sess[i].mb == mb)
            return 0;
    if (c->nsess >= CONN_MAX_SESSIONS)
        return ALCOVE_ELIMIT;
    if (c->nsess == c->sess_cap) {
        uint32_t ncap = c->sess_cap ? c->sess_cap * 2 : 2;
        conn_sess *n = realloc(c->sess, (size_t)ncap * sizeof *n);
        if (n == NULL)
            return ALCOVE_ENOMEM;
        c->sess = n;
        c->sess_cap = ncap;
    }
    c->sess[c->nsess].mb = mb;
    c->sess[c->nsess].subscribed = 0;
    c->nsess++;
    relay_mbox_ref(mb);
    return 0;
}

static void handle_handshake(conn *c, const uint8_t *frame, size_t len)
{
    uint8_t payload[ALCOVE_FRAME_MAX];
    uint8_t msg2[ALCOVE_NOISE_HS2_BYTES];
    size_t plen = 0, mlen = 0;
    /* Version 1 handshake payloads are empty and ignored. */
    if (alcove_noise_hs_read(c->hs, frame, len, payload, sizeof payload, &plen) != 0 ||
        alcove_noise_hs_write(c->hs, NULL, 0, msg2, sizeof msg2, &mlen) != 0 ||
        alcove_noise_hs_split(c->hs, &c->tx, c->h) != 0) {
        sodium_memzero(payload, plen);
        conn_close(c, CLOSE_HANDSHAKE_FAILED);
        return;
    }
    sodium_memzero(payload, plen);
    alcove_noise_hs_free(c->hs);
    c->hs = NULL;
    c->state = CONN_HELLO;
    c->srv->metrics.handshakes_ok++;
    (void)send_frame(c, msg2, mlen, 0);
}

static void handle_frame(conn *c, const uint8_t *frame, size_t len)
{
    relay_server *srv = c->srv;
    if (c->state == CONN_HANDSHAKE) {
        handle_handshake(c, frame, len);
        return;
    }
    if (len < ALCOVE_NOISE_TAG_BYTES || alcove_noise_decrypt(c->tx, frame, len, srv->scratch) != 0) {
        conn_close(c, CLOSE_DECRYPT_FAILED);
        return;
    }
    size_t plen = len - ALCOVE_NOISE_TAG_BYTES;
    alcove_pb_budget budget;
    alcove_pb_budget_init(&budget, alcove_pb_budget_for(plen));
    Alcove__Wire__Request *req = alcove__wire__request__unpack(&budget.alloc, plen, srv->scratch);
    if (req == NULL) {
        relay_logf(srv->log, RLOG_DEBUG, "undecodable", "bytes=%zu budget_exhausted=%d", plen,
                   budget.exhausted);
        conn_close(c, CLOSE_UNDECODABLE);
        return;
    }
    relay_dispatch(c, req);
    alcove__wire__request__free_unpacked(req, &budget.alloc);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? CLOSE_PEER_CLOSED : CLOSE_READ_ERROR);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = (size_t)nread;
    unsigned frames = 0;
    c->srv->metrics.bytes_in += (uint64_t)nread;
    conn_ref(c); /* handlers may close c; keep it alive to the end */
    conn_cork(c->srv); /* replies to pipelined requests: one write */
    /* The whole read is processed even if back-pressure pauses reading
     * meanwhile: one read is at most 64 KiB, and the pause applies from the
     * next read on. */
    while (left > 0 && !c->closed && c->state != CONN_CLOSING) {
        size_t used = 0;
        const uint8_t *frame;
        size_t flen;
        int r = alcove_frame_feed(&c->dec, p, left, &used, &frame, &flen);
        p += used;
        left -= used;
        if (r < 0) {
            conn_close(c, r == ALCOVE_ENOMEM ? CLOSE_NO_MEMORY : CLOSE_BAD_FRAME);
            break;
        }
        if (r == 1) {
            handle_frame(c, frame, flen);
            frames++;
        }
    }
    /* Only a whole request proves the peer alive: bytes of a frame that
     * never completes must not hold a connection open (slowloris), and
     * until Hello the handshake deadline stands (do_hello moves it). */
    if (!c->closed && c->state == CONN_READY && frames > 0)
        c->deadline = uv_now(c->srv->loop) + c->srv->cfg->idle_timeout_ms;
    conn_uncork(c->srv);
    conn_unref(c);
}

void conn_accept(relay_server *srv)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL || uv_tcp_init(srv->loop, &c->tcp) != 0) {
        free(c);
        /* Accept into a throwaway handle is not possible without memory;
         * libuv will report the connection again. */
        return;
    }
    c->srv = srv;
    c->tcp.data = c;
    c->refs = 1; /* dropped in on_close */
    alcove_frame_dec_init(&c->dec);
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->accepted++;
    if (srv->nconns > srv->cfg->max_connections || srv->draining) {
        conn_close(c, srv->draining ? CLOSE_SHUTDOWN : CLOSE_CONN_LIMIT);
        return;
    }
    uint64_t now = uv_now(srv->loop);
    c->deadline = now + srv->cfg->handshake_timeout_ms;
    c->rate_ts = now;
    c->tokens = srv->cfg->rate_burst;
    uv_tcp_nodelay(&c->tcp, 1);
    if (alcove_noise_hs_responder(&c->hs, srv->static_sk, srv->static_pk,
                                  (const uint8_t *)ALCOVE_NOISE_PROLOGUE,
                                  ALCOVE_NOISE_PROLOGUE_LEN) != 0) {
        conn_close(c, CLOSE_NO_MEMORY);
        return;
    }
    if (srv->cfg->log_addresses) {
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        char ip[64] = "?";
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
            uv_ip_name((struct sockaddr *)&ss, ip, sizeof ip);
        relay_logf(srv->log, RLOG_INFO, "conn_open", "peer=%s", ip);
    } else {
        relay_logf(srv->log, RLOG_DEBUG, "conn_open", NULL);
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c, CLOSE_READ_ERROR);
}
