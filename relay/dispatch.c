/* relay/dispatch: the commands of DESIGN §3, one handler each.
 *
 * Handlers validate sizes first (BAD_REQUEST keeps the connection open), then
 * authorise (UNAUTHORIZED never says whether a mailbox exists), then either
 * answer at once (reads) or queue a writer op whose reply is sent by
 * relay_server_on_batch once the data is durable. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "err.h"

#define LOGIN_CTX "alcove-login-v1"
#define LOGIN_CTX_LEN 15u

typedef Alcove__Wire__Status status_t;
#define S_OK ALCOVE__WIRE__STATUS__OK
#define S_BAD ALCOVE__WIRE__STATUS__BAD_REQUEST
#define S_UNAUTH ALCOVE__WIRE__STATUS__UNAUTHORIZED
#define S_NOTFOUND ALCOVE__WIRE__STATUS__NOT_FOUND
#define S_QUOTA ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED
#define S_TOOLARGE ALCOVE__WIRE__STATUS__TOO_LARGE
#define S_RATE ALCOVE__WIRE__STATUS__RATE_LIMITED
#define S_UNAVAIL ALCOVE__WIRE__STATUS__UNAVAILABLE
#define S_INTERNAL ALCOVE__WIRE__STATUS__INTERNAL

/* Constant material for answering unknown mailboxes with the same work as
 * known ones (same answer, same timing). */
static uint8_t dummy_hash[32];
static uint8_t dummy_pub[32];
static int dummy_ready;

static void dummy_init(void)
{
    if (dummy_ready)
        return;
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    randombytes_buf(dummy_hash, sizeof dummy_hash);
    crypto_sign_keypair(dummy_pub, sk);
    sodium_memzero(sk, sizeof sk);
    dummy_ready = 1;
}

/* Every synchronous reply, counted by command and status for /metrics
 * (replies after a commit are counted in server.c). */
static int reply(conn *c, uint64_t id, status_t st, const char *detail)
{
    relay_metrics_request(&c->srv->metrics, c->srv->metrics.cur_cmd, (int)st);
    return conn_reply(c, id, st, detail);
}

static uint64_t now_ms(conn *c) { return c->srv->now(c->srv->now_ctx); }

static int field_ok(const ProtobufCBinaryData *b, size_t n) { return b->len == n && b->data; }

static relay_op *op_for(conn *c, relay_op_kind kind, relay_mbox *mb, uint64_t req_id)
{
    relay_op *op = relay_op_new(kind);
    if (op == NULL)
        return NULL;
    if (mb != NULL) {
        op->mb = mb;
        relay_mbox_ref(mb);
        memcpy(op->recv_id, mb->recv_id, RELAY_ID_BYTES);
    }
    if (c != NULL) {
        op->conn = c;
        conn_ref(c);
        op->req_id = req_id;
    }
    return op;
}

void relay_mbox_to_rec(const relay_mbox *mb, relay_mbox_rec *rec)
{
    memcpy(rec->auth_pub, mb->auth_pub, 32);
    memcpy(rec->send_id, mb->send_id, 16);
    memcpy(rec->send_key_hash, mb->send_key_hash, 32);
    rec->created_at = mb->created_at;
    rec->last_seen = mb->last_seen;
    rec->acked_seq = mb->acked_seq;
}

static void do_hello(conn *c, const Alcove__Wire__Request *req)
{
    const relay_config *cfg = c->srv->cfg;
    if (c->state != CONN_HELLO || req->hello->version != 1) {
        reply(c, req->id, S_BAD,
                   c->state != CONN_HELLO ? "second Hello" : "unsupported protocol version");
        conn_close_after_flush(c, CLOSE_PROTOCOL);
        return;
    }
    c->state = CONN_READY;
    c->deadline = uv_now(c->srv->loop) + cfg->idle_timeout_ms;
    Alcove__Wire__HelloResult hr = ALCOVE__WIRE__HELLO_RESULT__INIT;
    hr.version = 1;
    hr.max_blob_bytes = cfg->max_blob_bytes;
    hr.message_ttl_ms = cfg->message_ttl_ms;
    hr.max_messages_per_mailbox = cfg->max_messages_per_mailbox;
    hr.max_bytes_per_mailbox = cfg->max_bytes_per_mailbox;
    hr.logs_addresses = cfg->log_addresses ? 1 : 0;
    Alcove__Wire__Reply r = ALCOVE__WIRE__REPLY__INIT;
    r.id = req->id;
    r.status = S_OK;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_HELLO;
    r.hello = &hr;
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    m.reply = &r;
    relay_metrics_request(&c->srv->metrics, RELAY_MCMD_HELLO, S_OK);
    conn_send(c, &m);
}

static void do_create(conn *c, const Alcove__Wire__Request *req)
{
    const Alcove__Wire__CreateMailbox *q = req->create_mailbox;
    relay_server *srv = c->srv;
    if (!field_ok(&q->auth_pub, 32) || !field_ok(&q->send_key_hash, 32)) {
        reply(c, req->id, S_BAD, "auth_pub and send_key_hash must be 32 bytes");
        return;
    }
    if (c->nsess >= CONN_MAX_SESSIONS) {
        reply(c, req->id, S_QUOTA, "too many mailboxes on one connection");
        return;
    }
    relay_mbox *mb = relay_mbox_new();
    if (mb == NULL) {
        reply(c, req->id, S_INTERNAL, "out of memory");
        return;
    }
    do {
        randombytes_buf(mb->recv_id, RELAY_ID_BYTES);
        randombytes_buf(mb->send_id, RELAY_ID_BYTES);
    } while (relay_index_by_recv(srv->index, mb->recv_id) != NULL ||
             relay_index_by_send(srv->index, mb->send_id) != NULL);
    memcpy(mb->auth_pub, q->auth_pub.data, 32);
    memcpy(mb->send_key_hash, q->send_key_hash.data, 32);
    mb->created_at = mb->last_seen = mb->last_seen_disk = now_ms(c);
    relay_op *op = op_for(c, OP_CREATE, mb, req->id);
    relay_mbox_unref(mb); /* the op holds it now */
    if (op == NULL) {
        reply(c, req->id, S_INTERNAL, "out of memory");
        return;
    }
    relay_mbox_to_rec(mb, &op->rec);
    relay_writer_submit(srv->writer, op);
}

static void do_login(conn *c, const Alcove__Wire__Request *req)
{
    const Alcove__Wire__Login *q = req->login;
    relay_server *srv = c->srv;
    uint8_t msg[LOGIN_CTX_LEN + ALCOVE_NOISE_HASH_BYTES + RELAY_ID_BYTES];
    if (!field_ok(&q->recv_id, 16) || !field_ok(&q->sig, 64)) {
        reply(c, req->id, S_BAD, "recv_id must be 16 bytes and sig 64");
        return;
    }
    relay_mbox *mb = relay_index_by_recv(srv->index, q->recv_id.data);
    memcpy(msg, LOGIN_CTX, LOGIN_CTX_LEN);
    memcpy(msg + LOGIN_CTX_LEN, c->h, ALCOVE_NOISE_HASH_BYTES);
    memcpy(msg + LOGIN_CTX_LEN + ALCOVE_NOISE_HASH_BYTES, q->recv_id.data, RELAY_ID_BYTES);
    int bad = crypto_sign_verify_detached(q->sig.data, msg, sizeof msg,
                                          mb ? mb->auth_pub : dummy_pub) != 0;
    if (mb == NULL || bad) {
        reply(c, req->id, S_UNAUTH, "login refused");
        return;
    }
    int rc = conn_add_sess(c, mb);
    if (rc != 0) {
        reply(c, req->id, rc == ALCOVE_ELIMIT ? S_QUOTA : S_INTERNAL,
                   rc == ALCOVE_ELIMIT ? "too many mailboxes on one connection" : "out of memory");
        return;
    }
    uint64_t now = now_ms(c);
    mb->last_seen = now;
    if (now - mb->last_seen_disk > 3600ull * 1000) {
        /* Persist last_seen at most hourly, for idle-mailbox expiry. */
        relay_op *op = op_for(NULL, OP_TOUCH, mb, 0);
        if (op != NULL) {
            relay_mbox_to_rec(mb, &op->rec);
            mb->last_seen_disk = now;
            relay_writer_submit(srv->writer, op);
        }
    }
    reply(c, req->id, S_OK, NULL);
}

static void do_send(conn *c, const Alcove__Wire__Request *req)
{
    const Alcove__Wire__Send *q = req->send;
    relay_server *srv = c->srv;
    const relay_config *cfg = srv->cfg;
    uint8_t h[32];
    if (!field_ok(&q->send_id, 16) || !field_ok(&q->send_secret, 32) || q->blob.len == 0) {
        reply(c, req->id, S_BAD, "send_id must be 16 bytes, send_secret 32, blob non-empty");
        return;
    }
    if (q->blob.len > cfg->max_blob_bytes) {
        reply(c, req->id, S_TOOLARGE, "blob exceeds the relay's max_blob_bytes");
        return;
    }
    relay_mbox *mb = relay_index_by_send(srv->index, q->send_id.data);
    crypto_generichash(h, sizeof h, q->send_secret.data, 32, NULL, 0);
    int bad = crypto_verify_32(h, mb ? mb->send_key_hash : dummy_hash) != 0;
    sodium_memzero(h, sizeof h);
    if (mb == NULL || bad || mb->deleted) {
        reply(c, req->id, S_UNAUTH, "send refused");
        return;
    }
    if (cfg->max_messages_per_mailbox &&
        (uint64_t)mb->count + mb->pending_count >= cfg->max_messages_per_mailbox) {
        reply(c, req->id, S_QUOTA, "mailbox is full (messages)");
        return;
    }
    if (cfg->max_bytes_per_mailbox &&
        mb->bytes + mb->pending_bytes + q->blob.len > cfg->max_bytes_per_mailbox) {
        reply(c, req->id, S_QUOTA, "mailbox is full (bytes)");
        return;
    }
    relay_op *op = op_for(c, OP_SEND, mb, req->id);
    if (op != NULL && (op->blob = malloc(q->blob.len)) == NULL) {
        relay_mbox_unref(op->mb);
        conn_unref(op->conn);
        relay_op_free(op);
        op = NULL;
    }
    if (op == NULL) {
        reply(c, req->id, S_INTERNAL, "out of memory");
        return;
    }
    memcpy(op->blob, q->blob.data, q->blob.len);
    op->blob_len = (uint32_t)q->blob.len;
    op->seq = mb->next_seq++;
    op->gseq = srv->next_gseq++;
    op->received_at = now_ms(c);
    mb->pending_count++;
    mb->pending_bytes += q->blob.len;
    relay_writer_submit(srv->writer, op);
}

/* The owned mailbox named by recv_id, or NULL after replying. */
static relay_mbox *owned(conn *c, uint64_t id, const ProtobufCBinaryData *recv_id)
{
    if (!field_ok(recv_id, 16)) {
        reply(c, id, S_BAD, "recv_id must be 16 bytes");
        return NULL;
    }
    conn_sess *s = conn_find_sess(c, recv_id->data);
    if (s == NULL) {
        reply(c, id, S_UNAUTH, "not logged in to this mailbox");
        return NULL;
    }
    if (s->mb->deleted) {
        reply(c, id, S_NOTFOUND, "mailbox was deleted");
        return NULL;
    }
    return s->mb;
}

/* Per message in a FetchResult: Stored framing (tag, length, seq,
 * received_at, blob tag and length) is at most 32 bytes; the Reply and
 * RelayMessage around it at most 64. */
#define FETCH_MSG_OVERHEAD 32u
#define FETCH_OVERHEAD 64u

static void do_fetch(conn *c, const Alcove__Wire__Request *req)
{
    const Alcove__Wire__Fetch *q = req->fetch;
    relay_server *srv = c->srv;
    const relay_config *cfg = srv->cfg;
    relay_mbox *mb = owned(c, req->id, &q->recv_id);
    if (mb == NULL)
        return;
    uint32_t max = q->max == 0 ? cfg->fetch_default : q->max;
    if (max > RELAY_FETCH_CAP)
        max = RELAY_FETCH_CAP;
    uint64_t now = now_ms(c);
    mb->last_seen = now;

    Alcove__Wire__Stored items[RELAY_FETCH_CAP];
    Alcove__Wire__Stored *ptrs[RELAY_FETCH_CAP];
    Alcove__Wire__FetchResult fr = ALCOVE__WIRE__FETCH_RESULT__INIT;
    size_t budget = ALCOVE_NOISE_PLAINTEXT_MAX - FETCH_OVERHEAD;
    uint32_t n = 0, i = relay_mbox_first_after(mb, q->after_seq);
    relay_writer_note_reader(srv->writer);
    int rc = relay_store_rbegin(srv->store);
    if (rc != 0) {
        reply(c, req->id, S_UNAVAIL, "storage unavailable");
        return;
    }
    for (; i < mb->count && n < max; i++) {
        const relay_msg *m = relay_mbox_msg(mb, i);
        if (m->received_at + cfg->message_ttl_ms <= now)
            continue; /* expired, awaiting the expiry sweep */
        if ((size_t)m->size + FETCH_MSG_OVERHEAD > budget)
            break;
        const uint8_t *blob;
        size_t len;
        rc = relay_store_read_blob(srv->store, m->gseq, &blob, &len);
        if (rc == ALCOVE_ENOTFOUND)
            continue; /* deleted by a commit that is still being delivered */
        if (rc != 0)
            break;
        alcove__wire__stored__init(&items[n]);
        items[n].seq = m->seq;
        items[n].received_at = m->received_at;
        items[n].blob.data = (uint8_t *)(uintptr_t)blob;
        items[n].blob.len = len;
        ptrs[n] = &items[n];
        budget -= len + FETCH_MSG_OVERHEAD;
        n++;
    }
    if (rc != 0 && rc != ALCOVE_ENOTFOUND) {
        relay_store_rend(srv->store);
        relay_logf(srv->log, RLOG_ERROR, "fetch_failed", "error=\"%s\"", alcove_strerror(rc));
        reply(c, req->id, S_INTERNAL, "storage read failed");
        return;
    }
    fr.n_messages = n;
    fr.messages = ptrs;
    fr.more = i < mb->count;
    Alcove__Wire__Reply r = ALCOVE__WIRE__REPLY__INIT;
    r.id = req->id;
    r.status = S_OK;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_FETCH;
    r.fetch = &fr;
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    m.reply = &r;
    relay_metrics_request(&srv->metrics, RELAY_MCMD_FETCH, S_OK);
    conn_send(c, &m); /* packs (copies) before the read txn ends */
    relay_store_rend(srv->store);
}

int relay_queue_trim(relay_server *srv, conn *c, uint64_t req_id, relay_mbox *mb,
                     uint64_t up_to)
{
    /* Messages up to trim_queued are already being deleted by an earlier
     * trim still in the writer's queue: pipelined Acks must not delete
     * them again (a drain of N messages would cost O(N^2) deletes). */
    uint64_t from = mb->trim_queued > mb->acked_seq ? mb->trim_queued : mb->acked_seq;
    uint32_t lo = relay_mbox_first_after(mb, from);
    uint32_t hi = relay_mbox_first_after(mb, up_to);
    uint32_t n = hi > lo ? hi - lo : 0;
    relay_op *op = op_for(c, OP_TRIM, mb, req_id);
    if (op == NULL)
        return ALCOVE_ENOMEM;
    if (n > 0 && (op->gseqs = malloc((size_t)n * sizeof *op->gseqs)) == NULL) {
        relay_mbox_unref(op->mb);
        conn_unref(op->conn);
        relay_op_free(op);
        return ALCOVE_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        op->gseqs[i] = relay_mbox_msg(mb, lo + i)->gseq;
    op->ngseqs = n;
    if (up_to > mb->trim_queued)
        mb->trim_queued = up_to;
    op->new_acked = up_to > mb->acked_seq ? up_to : mb->acked_seq;
    relay_mbox_to_rec(mb, &op->rec);
    op->rec.acked_seq = op->new_acked;
    relay_writer_submit(srv->writer, op);
    return 0;
}

static void do_ack(conn *c, const Alcove__Wire__Request *req)
{
    const Alcove__Wire__Ack *q = req->ack;
    relay_mbox *mb = owned(c, req->id, &q->recv_id);
    if (mb == NULL)
        return;
    /* Ack beyond the highest seq is OK, but never marks seqs not yet
     * committed (or not yet assigned) as acked. */
    uint64_t top = mb->count ? relay_mbox_msg(mb, mb->count - 1)->seq : mb->acked_seq;
    uint64_t up_to = q->up_to_seq < top ? q->up_to_seq : top;
    if (up_to <= mb->acked_seq) {
        reply(c, req->id, S_OK, NULL);
        return;
    }
    if (relay_queue_trim(c->srv, c, req->id, mb, up_to) != 0)
        reply(c, req->id, S_INTERNAL, "out of memory");
}

static void do_subscribe(conn *c, const Alcove__Wire__Request *req)
{
    relay_mbox *mb = owned(c, req->id, &req->subscribe->recv_id);
    if (mb == NULL)
        return;
    conn_sess *s = conn_find_sess(c, mb->recv_id);
    if (relay_mbox_sub_add(mb, c) != 0) {
        reply(c, req->id, S_INTERNAL, "out of memory");
        return;
    }
    s->subscribed = 1;
    reply(c, req->id, S_OK, NULL);
}

int relay_queue_delete(relay_server *srv, conn *c, uint64_t req_id, relay_mbox *mb)
{
    relay_op *op = op_for(c, OP_DELETE, mb, req_id);
    if (op == NULL)
        return ALCOVE_ENOMEM;
    if (mb->count > 0 && (op->gseqs = malloc((size_t)mb->count * sizeof *op->gseqs)) == NULL) {
        relay_mbox_unref(op->mb);
        conn_unref(op->conn);
        relay_op_free(op);
        return ALCOVE_ENOMEM;
    }
    for (uint32_t i = 0; i < mb->count; i++)
        op->gseqs[i] = relay_mbox_msg(mb, i)->gseq;
    op->ngseqs = mb->count;
    mb->deleted = 1;
    /* Subscribers get nothing more; their sessions answer NOT_FOUND. */
    mb->nsubs = 0;
    relay_index_remove(srv->index, mb);
    relay_writer_submit(srv->writer, op);
    return 0;
}

static void do_delete(conn *c, const Alcove__Wire__Request *req)
{
    relay_mbox *mb = owned(c, req->id, &req->delete_mailbox->recv_id);
    if (mb == NULL)
        return;
    if (relay_queue_delete(c->srv, c, req->id, mb) != 0)
        reply(c, req->id, S_INTERNAL, "out of memory");
}

static int rate_ok(conn *c)
{
    const relay_config *cfg = c->srv->cfg;
    if (cfg->rate_per_sec == 0)
        return 1;
    uint64_t now = uv_now(c->srv->loop);
    uint64_t add = (now - c->rate_ts) * cfg->rate_per_sec / 1000;
    if (add > 0) {
        uint64_t t = c->tokens + add;
        c->tokens = t > cfg->rate_burst ? cfg->rate_burst : (uint32_t)t;
        c->rate_ts = now;
    }
    if (c->tokens == 0)
        return 0;
    c->tokens--;
    return 1;
}

void relay_dispatch(conn *c, const Alcove__Wire__Request *req)
{
    dummy_init();
    c->srv->metrics.cur_cmd = relay_metric_cmd_of((int)req->cmd_case);
    if (req->id <= c->last_req_id || req->cmd_case == ALCOVE__WIRE__REQUEST__CMD__NOT_SET) {
        reply(c, req->id, S_BAD,
                   req->id <= c->last_req_id ? "request ids must strictly increase"
                                             : "request has no command");
        conn_close_after_flush(c, CLOSE_PROTOCOL);
        return;
    }
    c->last_req_id = req->id;
    if (c->state == CONN_HELLO || req->cmd_case == ALCOVE__WIRE__REQUEST__CMD_HELLO) {
        if (req->cmd_case != ALCOVE__WIRE__REQUEST__CMD_HELLO) {
            reply(c, req->id, S_BAD, "the first request must be Hello");
            conn_close_after_flush(c, CLOSE_PROTOCOL);
            return;
        }
        do_hello(c, req);
        return;
    }
    if (!rate_ok(c)) {
        reply(c, req->id, S_RATE, "too many requests; slow down");
        return;
    }
    if (c->srv->draining && req->cmd_case != ALCOVE__WIRE__REQUEST__CMD_PING) {
        reply(c, req->id, S_UNAVAIL, "relay is shutting down");
        return;
    }
    switch (req->cmd_case) {
    case ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX: do_create(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_LOGIN: do_login(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_SEND: do_send(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_FETCH: do_fetch(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_ACK: do_ack(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_SUBSCRIBE: do_subscribe(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_DELETE_MAILBOX: do_delete(c, req); break;
    case ALCOVE__WIRE__REQUEST__CMD_PING: reply(c, req->id, S_OK, NULL); break;
    default:
        reply(c, req->id, S_BAD, "unknown command");
        conn_close_after_flush(c, CLOSE_PROTOCOL);
        break;
    }
}
