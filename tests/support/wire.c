#include "wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

alcove_link *tw_connect(const alcove_relay_addr *a)
{
    alcove_link *l = NULL;
    Alcove__Wire__HelloResult hr;
    int rc = alcove_link_connect(&l, a, TW_TIMEOUT, &hr);
    assert_int_equal(rc, 0);
    assert_non_null(l);
    assert_int_equal(hr.version, 1);
    return l;
}

static int call(alcove_link *l, Alcove__Wire__Request *req, Alcove__Wire__RelayMessage **keep)
{
    Alcove__Wire__RelayMessage *m = NULL;
    int rc = alcove_link_call(l, req, &m, TW_TIMEOUT, NULL, NULL);
    if (rc != 0)
        return rc;
    int st = (int)m->reply->status;
    if (keep != NULL)
        *keep = m;
    else
        alcove__wire__relay_message__free_unpacked(m, NULL);
    return st;
}

int tw_create(alcove_link *l, test_mbox *mb)
{
    uint8_t hash[32];
    crypto_sign_keypair(mb->auth_pk, mb->auth_sk);
    randombytes_buf(mb->secret, sizeof mb->secret);
    crypto_generichash(hash, sizeof hash, mb->secret, sizeof mb->secret, NULL, 0);
    Alcove__Wire__CreateMailbox c = ALCOVE__WIRE__CREATE_MAILBOX__INIT;
    c.auth_pub.data = mb->auth_pk;
    c.auth_pub.len = 32;
    c.send_key_hash.data = hash;
    c.send_key_hash.len = 32;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX;
    req.create_mailbox = &c;
    Alcove__Wire__RelayMessage *m = NULL;
    int st = call(l, &req, &m);
    if (st != 0)
        return st;
    Alcove__Wire__Reply *r = m->reply;
    assert_int_equal(r->result_case, ALCOVE__WIRE__REPLY__RESULT_MAILBOX);
    assert_int_equal(r->mailbox->recv_id.len, 16);
    assert_int_equal(r->mailbox->send_id.len, 16);
    memcpy(mb->recv_id, r->mailbox->recv_id.data, 16);
    memcpy(mb->send_id, r->mailbox->send_id.data, 16);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    return 0;
}

int tw_login_with_hash(alcove_link *l, const test_mbox *mb, const uint8_t h[64])
{
    uint8_t msg[15 + 64 + 16], sig[64];
    memcpy(msg, "alcove-login-v1", 15);
    memcpy(msg + 15, h, 64);
    memcpy(msg + 79, mb->recv_id, 16);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, mb->auth_sk);
    Alcove__Wire__Login lg = ALCOVE__WIRE__LOGIN__INIT;
    lg.recv_id.data = (uint8_t *)(uintptr_t)mb->recv_id;
    lg.recv_id.len = 16;
    lg.sig.data = sig;
    lg.sig.len = 64;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
    req.login = &lg;
    return call(l, &req, NULL);
}

int tw_login(alcove_link *l, const test_mbox *mb)
{
    return tw_login_with_hash(l, mb, alcove_link_hash(l));
}

int tw_send(alcove_link *l, const uint8_t send_id[16], const uint8_t secret[32],
            const uint8_t *blob, size_t len)
{
    Alcove__Wire__Send s = ALCOVE__WIRE__SEND__INIT;
    s.send_id.data = (uint8_t *)(uintptr_t)send_id;
    s.send_id.len = 16;
    s.send_secret.data = (uint8_t *)(uintptr_t)secret;
    s.send_secret.len = 32;
    s.blob.data = (uint8_t *)(uintptr_t)blob;
    s.blob.len = len;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    req.send = &s;
    return call(l, &req, NULL);
}

int tw_fetch(alcove_link *l, const uint8_t recv_id[16], uint64_t after, uint32_t max,
             Alcove__Wire__RelayMessage **out)
{
    Alcove__Wire__Fetch f = ALCOVE__WIRE__FETCH__INIT;
    f.recv_id.data = (uint8_t *)(uintptr_t)recv_id;
    f.recv_id.len = 16;
    f.after_seq = after;
    f.max = max;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
    req.fetch = &f;
    return call(l, &req, out);
}

int tw_ack(alcove_link *l, const uint8_t recv_id[16], uint64_t up_to)
{
    Alcove__Wire__Ack a = ALCOVE__WIRE__ACK__INIT;
    a.recv_id.data = (uint8_t *)(uintptr_t)recv_id;
    a.recv_id.len = 16;
    a.up_to_seq = up_to;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_ACK;
    req.ack = &a;
    return call(l, &req, NULL);
}

int tw_subscribe(alcove_link *l, const uint8_t recv_id[16])
{
    Alcove__Wire__Subscribe s = ALCOVE__WIRE__SUBSCRIBE__INIT;
    s.recv_id.data = (uint8_t *)(uintptr_t)recv_id;
    s.recv_id.len = 16;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SUBSCRIBE;
    req.subscribe = &s;
    return call(l, &req, NULL);
}

int tw_delete(alcove_link *l, const uint8_t recv_id[16])
{
    Alcove__Wire__DeleteMailbox d = ALCOVE__WIRE__DELETE_MAILBOX__INIT;
    d.recv_id.data = (uint8_t *)(uintptr_t)recv_id;
    d.recv_id.len = 16;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_DELETE_MAILBOX;
    req.delete_mailbox = &d;
    return call(l, &req, NULL);
}

int tw_ping(alcove_link *l)
{
    Alcove__Wire__Ping p = ALCOVE__WIRE__PING__INIT;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
    req.ping = &p;
    return call(l, &req, NULL);
}
