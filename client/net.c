#include "net.h"

#include <sodium.h>
#include <string.h>

#include "app.h"
#include "err.h"

const char *net_status_text(int status)
{
    switch (status) {
    case ALCOVE__WIRE__STATUS__OK: return "ok";
    case ALCOVE__WIRE__STATUS__BAD_REQUEST: return "the relay rejected the request as malformed";
    case ALCOVE__WIRE__STATUS__UNAUTHORIZED: return "the relay refused (unknown or revoked mailbox)";
    case ALCOVE__WIRE__STATUS__NOT_FOUND: return "the mailbox no longer exists";
    case ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED: return "the mailbox is full";
    case ALCOVE__WIRE__STATUS__TOO_LARGE: return "the message is larger than the relay accepts";
    case ALCOVE__WIRE__STATUS__RATE_LIMITED: return "the relay asks to slow down";
    case ALCOVE__WIRE__STATUS__UNAVAILABLE: return "the relay could not store it right now";
    case ALCOVE__WIRE__STATUS__INTERNAL: return "the relay had an internal error";
    default: return alcove_strerror(status);
    }
}

int net_open(net *n, const char *relay_address)
{
    alcove_relay_addr a;
    const char *why = NULL;
    memset(n, 0, sizeof *n);
    snprintf(n->relay, sizeof n->relay, "%s", relay_address);
    if (alcove_addr_parse(relay_address, &a, &why) != 0) {
        app_error("bad relay address '%s': %s", relay_address, why);
        return -1;
    }
    int rc = alcove_link_connect(&n->link, &a, NET_TIMEOUT_MS, &n->hello);
    if (rc == 0)
        return 0;
    switch (rc) {
    case ALCOVE_ECONNECT:
        app_error("cannot reach the relay at %s:%u", a.host, a.port);
        app_hint("is alcove-relay running there? check the address and your network");
        break;
    case ALCOVE_ETIMEDOUT:
        app_error("the relay at %s:%u did not answer in time", a.host, a.port);
        break;
    case ALCOVE_EDECRYPT:
        app_error("the relay at %s:%u does not hold the key in its address", a.host, a.port);
        app_hint("the address may be mistyped or outdated; ask for the current one");
        break;
    case ALCOVE_ERELAY:
        app_error("the relay at %s:%u refused this client's protocol version", a.host, a.port);
        break;
    default:
        app_error("cannot talk to the relay at %s:%u: %s", a.host, a.port, alcove_strerror(rc));
    }
    return -1;
}

void net_close(net *n)
{
    alcove_link_free(n->link);
    n->link = NULL;
}

static void note_push(void *ctx, const Alcove__Wire__Push *p)
{
    (void)p;
    ((net *)ctx)->push_seen = 1;
}

static int call(net *n, Alcove__Wire__Request *req, Alcove__Wire__RelayMessage **keep)
{
    Alcove__Wire__RelayMessage *m = NULL;
    int rc = alcove_link_call(n->link, req, &m, NET_TIMEOUT_MS, note_push, n);
    if (rc != 0) {
        app_error("lost the connection to the relay: %s", alcove_strerror(rc));
        return rc;
    }
    /* A hostile relay may send any number: never let it pass for one of
     * our negative error codes or an unknown status. */
    int st = (int)m->reply->status;
    if (st < 0 || st > ALCOVE__WIRE__STATUS__INTERNAL)
        st = ALCOVE__WIRE__STATUS__INTERNAL;
    if (keep != NULL && st == 0)
        *keep = m;
    else
        alcove__wire__relay_message__free_unpacked(m, NULL);
    return st;
}

#define BIN(field, ptr, n) \
    do {                   \
        (field).data = (uint8_t *)(uintptr_t)(ptr); \
        (field).len = (n); \
    } while (0)

int net_create(net *n, const uint8_t auth_pk[32], const uint8_t send_secret[32],
               uint8_t recv_id[16], uint8_t send_id[16])
{
    uint8_t hash[32];
    crypto_generichash(hash, sizeof hash, send_secret, 32, NULL, 0);
    Alcove__Wire__CreateMailbox c = ALCOVE__WIRE__CREATE_MAILBOX__INIT;
    BIN(c.auth_pub, auth_pk, 32);
    BIN(c.send_key_hash, hash, 32);
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX;
    req.create_mailbox = &c;
    Alcove__Wire__RelayMessage *m = NULL;
    int st = call(n, &req, &m);
    if (st != 0)
        return st;
    Alcove__Wire__MailboxCreated *mc = m->reply->mailbox;
    if (m->reply->result_case != ALCOVE__WIRE__REPLY__RESULT_MAILBOX || mc->recv_id.len != 16 ||
        mc->send_id.len != 16) {
        alcove__wire__relay_message__free_unpacked(m, NULL);
        app_error("the relay answered CreateMailbox without mailbox ids");
        return ALCOVE_EPROTO;
    }
    memcpy(recv_id, mc->recv_id.data, 16);
    memcpy(send_id, mc->send_id.data, 16);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    return 0;
}

int net_login(net *n, const uint8_t recv_id[16], const uint8_t auth_sk[64])
{
    uint8_t msg[15 + 64 + 16], sig[64];
    memcpy(msg, "alcove-login-v1", 15);
    memcpy(msg + 15, alcove_link_hash(n->link), 64);
    memcpy(msg + 79, recv_id, 16);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, auth_sk);
    Alcove__Wire__Login lg = ALCOVE__WIRE__LOGIN__INIT;
    BIN(lg.recv_id, recv_id, 16);
    BIN(lg.sig, sig, 64);
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
    req.login = &lg;
    return call(n, &req, NULL);
}

int net_send(net *n, const uint8_t send_id[16], const uint8_t secret[32], const uint8_t *blob,
             size_t len)
{
    Alcove__Wire__Send s = ALCOVE__WIRE__SEND__INIT;
    BIN(s.send_id, send_id, 16);
    BIN(s.send_secret, secret, 32);
    BIN(s.blob, blob, len);
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    req.send = &s;
    return call(n, &req, NULL);
}

int net_fetch(net *n, const uint8_t recv_id[16], uint64_t after, uint32_t max,
              Alcove__Wire__RelayMessage **out)
{
    Alcove__Wire__Fetch f = ALCOVE__WIRE__FETCH__INIT;
    BIN(f.recv_id, recv_id, 16);
    f.after_seq = after;
    f.max = max;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
    req.fetch = &f;
    int st = call(n, &req, out);
    if (st == 0 && (*out)->reply->result_case != ALCOVE__WIRE__REPLY__RESULT_FETCH) {
        alcove__wire__relay_message__free_unpacked(*out, NULL);
        *out = NULL;
        app_error("the relay answered Fetch without messages");
        return ALCOVE_EPROTO;
    }
    return st;
}

int net_ack(net *n, const uint8_t recv_id[16], uint64_t up_to)
{
    Alcove__Wire__Ack a = ALCOVE__WIRE__ACK__INIT;
    BIN(a.recv_id, recv_id, 16);
    a.up_to_seq = up_to;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_ACK;
    req.ack = &a;
    return call(n, &req, NULL);
}

int net_subscribe(net *n, const uint8_t recv_id[16])
{
    Alcove__Wire__Subscribe s = ALCOVE__WIRE__SUBSCRIBE__INIT;
    BIN(s.recv_id, recv_id, 16);
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SUBSCRIBE;
    req.subscribe = &s;
    return call(n, &req, NULL);
}

int net_delete(net *n, const uint8_t recv_id[16])
{
    Alcove__Wire__DeleteMailbox d = ALCOVE__WIRE__DELETE_MAILBOX__INIT;
    BIN(d.recv_id, recv_id, 16);
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_DELETE_MAILBOX;
    req.delete_mailbox = &d;
    return call(n, &req, NULL);
}

int net_ping(net *n)
{
    Alcove__Wire__Ping p = ALCOVE__WIRE__PING__INIT;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
    req.ping = &p;
    return call(n, &req, NULL);
}

net *netpool_get(netpool *p, const char *relay)
{
    for (int i = 0; i < p->n; i++)
        if (p->conns[i].link != NULL && strcmp(p->conns[i].relay, relay) == 0)
            return &p->conns[i];
    if (p->n == NETPOOL_MAX) {
        app_error("too many relays at once");
        return NULL;
    }
    if (net_open(&p->conns[p->n], relay) != 0)
        return NULL;
    return &p->conns[p->n++];
}

void netpool_close(netpool *p)
{
    for (int i = 0; i < p->n; i++)
        net_close(&p->conns[i]);
    p->n = 0;
}

int net_status_permanent(int status)
{
    return status == ALCOVE__WIRE__STATUS__BAD_REQUEST ||
           status == ALCOVE__WIRE__STATUS__UNAUTHORIZED ||
           status == ALCOVE__WIRE__STATUS__NOT_FOUND || status == ALCOVE__WIRE__STATUS__TOO_LARGE;
}
