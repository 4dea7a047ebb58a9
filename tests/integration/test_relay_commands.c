/* Every relay command against a real alcove-relay process on loopback. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "relayproc.h"
#include "wire.h"

enum {
    OK = ALCOVE__WIRE__STATUS__OK,
    BAD = ALCOVE__WIRE__STATUS__BAD_REQUEST,
    UNAUTH = ALCOVE__WIRE__STATUS__UNAUTHORIZED,
    NOTFOUND = ALCOVE__WIRE__STATUS__NOT_FOUND,
    QUOTA = ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED,
    TOOLARGE = ALCOVE__WIRE__STATUS__TOO_LARGE,
};

typedef relay_fixture fixture;

static int start_with(void **state, const char *const *extra)
{
    return relay_fixture_start(state, extra);
}

static int setup(void **state) { return start_with(state, NULL); }

static int teardown(void **state) { return relay_fixture_teardown(state); }

static void blob_of(uint8_t *b, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(tag * 31u + i);
}

static void test_create_send_fetch_ack_fetch_empty(void **state)
{
    fixture *f = *state;
    alcove_link *owner = tw_connect(&f->rp.addr);
    alcove_link *sender = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(owner, &mb), OK);

    uint8_t blob[1024];
    for (unsigned i = 1; i <= 5; i++) {
        blob_of(blob, sizeof blob, i);
        assert_int_equal(tw_send(sender, mb.send_id, mb.secret, blob, sizeof blob), OK);
    }
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(tw_fetch(owner, mb.recv_id, 0, 0, &m), OK);
    Alcove__Wire__FetchResult *fr = m->reply->fetch;
    assert_non_null(fr);
    assert_int_equal(fr->n_messages, 5);
    assert_false(fr->more);
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(fr->messages[i]->seq, i + 1);
        blob_of(blob, sizeof blob, i + 1);
        assert_int_equal(fr->messages[i]->blob.len, sizeof blob);
        assert_memory_equal(fr->messages[i]->blob.data, blob, sizeof blob);
        assert_true(fr->messages[i]->received_at > 1700000000000ull);
    }
    alcove__wire__relay_message__free_unpacked(m, NULL);

    /* after_seq and max page through the mailbox. */
    assert_int_equal(tw_fetch(owner, mb.recv_id, 2, 2, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 2);
    assert_int_equal(m->reply->fetch->messages[0]->seq, 3);
    assert_true(m->reply->fetch->more);
    alcove__wire__relay_message__free_unpacked(m, NULL);

    assert_int_equal(tw_ack(owner, mb.recv_id, 5), OK);
    assert_int_equal(tw_fetch(owner, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 0);
    assert_false(m->reply->fetch->more);
    alcove__wire__relay_message__free_unpacked(m, NULL);

    /* Seqs are never reused after Ack empties the mailbox. */
    assert_int_equal(tw_send(sender, mb.send_id, mb.secret, blob, 10), OK);
    assert_int_equal(tw_fetch(owner, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 1);
    assert_int_equal(m->reply->fetch->messages[0]->seq, 6);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    /* Ack beyond the highest seq is OK. */
    assert_int_equal(tw_ack(owner, mb.recv_id, 1000), OK);
    alcove_link_free(owner);
    alcove_link_free(sender);
}

static void test_login_with_signature_from_other_connection_refused(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(a, &mb), OK);
    alcove_link *b = tw_connect(&f->rp.addr);
    alcove_link *c = tw_connect(&f->rp.addr);
    /* A signature bound to b's handshake replayed on c is refused... */
    assert_int_equal(tw_login_with_hash(c, &mb, alcove_link_hash(b)), UNAUTH);
    assert_int_equal(tw_fetch(c, mb.recv_id, 0, 0, NULL), UNAUTH);
    /* ...while the same key over c's own hash works. */
    assert_int_equal(tw_login(c, &mb), OK);
    assert_int_equal(tw_fetch(c, mb.recv_id, 0, 0, NULL), OK);
    /* A wrong key for an existing mailbox and an unknown mailbox answer alike. */
    test_mbox forged = mb;
    uint8_t pk[32];
    crypto_sign_keypair(pk, forged.auth_sk);
    assert_int_equal(tw_login(b, &forged), UNAUTH);
    randombytes_buf(forged.recv_id, 16);
    assert_int_equal(tw_login(b, &forged), UNAUTH);
    alcove_link_free(a);
    alcove_link_free(b);
    alcove_link_free(c);
}

static void test_owner_commands_without_login_refused(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(a, &mb), OK);
    alcove_link *b = tw_connect(&f->rp.addr);
    assert_int_equal(tw_fetch(b, mb.recv_id, 0, 0, NULL), UNAUTH);
    assert_int_equal(tw_ack(b, mb.recv_id, 1), UNAUTH);
    assert_int_equal(tw_subscribe(b, mb.recv_id), UNAUTH);
    assert_int_equal(tw_delete(b, mb.recv_id), UNAUTH);
    /* The refused delete changed nothing: the owner still fetches. */
    assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, NULL), OK);
    alcove_link_free(a);
    alcove_link_free(b);
}

static void test_wrong_send_secret_refused(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(a, &mb), OK);
    uint8_t bad[32], blob[8] = {1};
    memcpy(bad, mb.secret, 32);
    bad[31] ^= 1;
    assert_int_equal(tw_send(a, mb.send_id, bad, blob, sizeof blob), UNAUTH);
    uint8_t unknown[16];
    randombytes_buf(unknown, sizeof unknown);
    assert_int_equal(tw_send(a, unknown, mb.secret, blob, sizeof blob), UNAUTH);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 0);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    alcove_link_free(a);
}

static int status_of(alcove_link *l, Alcove__Wire__Request *req)
{
    Alcove__Wire__RelayMessage *m = NULL;
    int rc = alcove_link_call(l, req, &m, TW_TIMEOUT, NULL, NULL);
    if (rc != 0)
        return rc;
    int st = (int)m->reply->status;
    alcove__wire__relay_message__free_unpacked(m, NULL);
    return st;
}

static void test_wrong_field_sizes_get_bad_request_and_connection_stays(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(a, &mb), OK);
    uint8_t blob[4] = {1, 2, 3, 4}, buf[64] = {0};
    /* Empty blob. */
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 0), BAD);
    /* recv_id of 5 bytes. */
    Alcove__Wire__Fetch fe = ALCOVE__WIRE__FETCH__INIT;
    fe.recv_id.data = buf;
    fe.recv_id.len = 5;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
    req.fetch = &fe;
    assert_int_equal(status_of(a, &req), BAD);
    /* auth_pub of 31 bytes. */
    Alcove__Wire__CreateMailbox cm = ALCOVE__WIRE__CREATE_MAILBOX__INIT;
    cm.auth_pub.data = buf;
    cm.auth_pub.len = 31;
    cm.send_key_hash.data = buf;
    cm.send_key_hash.len = 32;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX;
    req.create_mailbox = &cm;
    assert_int_equal(status_of(a, &req), BAD);
    /* Signature of 63 bytes. */
    Alcove__Wire__Login lg = ALCOVE__WIRE__LOGIN__INIT;
    lg.recv_id.data = mb.recv_id;
    lg.recv_id.len = 16;
    lg.sig.data = buf;
    lg.sig.len = 63;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
    req.login = &lg;
    assert_int_equal(status_of(a, &req), BAD);
    /* Absent send_secret. */
    Alcove__Wire__Send sd = ALCOVE__WIRE__SEND__INIT;
    sd.send_id.data = mb.send_id;
    sd.send_id.len = 16;
    sd.blob.data = blob;
    sd.blob.len = sizeof blob;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    req.send = &sd;
    assert_int_equal(status_of(a, &req), BAD);
    /* The connection stayed open through all of it. */
    assert_int_equal(tw_ping(a), OK);
    assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, NULL), OK);
    alcove_link_free(a);
}

typedef struct push_seen {
    int count;
    uint64_t seq;
    uint8_t blob[64];
    size_t len;
} push_seen;

static void on_push(void *ctx, const Alcove__Wire__Push *p)
{
    push_seen *s = ctx;
    s->count++;
    s->seq = p->message->seq;
    s->len = p->message->blob.len < sizeof s->blob ? p->message->blob.len : sizeof s->blob;
    memcpy(s->blob, p->message->blob.data, s->len);
}

static void test_subscribe_receives_push(void **state)
{
    fixture *f = *state;
    alcove_link *owner = tw_connect(&f->rp.addr);
    alcove_link *owner2 = tw_connect(&f->rp.addr);
    alcove_link *sender = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(owner, &mb), OK);
    assert_int_equal(tw_login(owner2, &mb), OK);
    assert_int_equal(tw_subscribe(owner, mb.recv_id), OK);
    assert_int_equal(tw_subscribe(owner2, mb.recv_id), OK);
    const uint8_t blob[] = "sealed-blob-for-push";
    assert_int_equal(tw_send(sender, mb.send_id, mb.secret, blob, sizeof blob), OK);
    /* Both subscribers get the push; wait with a deadline. */
    alcove_link *subs[2] = {owner, owner2};
    for (int i = 0; i < 2; i++) {
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(alcove_link_recv(subs[i], &m, TW_TIMEOUT), 0);
        assert_int_equal(m->kind_case, ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH);
        push_seen s = {0};
        on_push(&s, m->push);
        assert_int_equal(m->push->recv_id.len, 16);
        assert_memory_equal(m->push->recv_id.data, mb.recv_id, 16);
        assert_int_equal(s.seq, 1);
        assert_int_equal(s.len, sizeof blob);
        assert_memory_equal(s.blob, blob, sizeof blob);
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
    alcove_link_free(owner);
    alcove_link_free(owner2);
    alcove_link_free(sender);
}

static void test_delete_mailbox_then_not_found_and_send_refused(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    alcove_link *b = tw_connect(&f->rp.addr);
    test_mbox mb;
    uint8_t blob[16] = {9};
    assert_int_equal(tw_create(a, &mb), OK);
    assert_int_equal(tw_login(b, &mb), OK);
    assert_int_equal(tw_send(b, mb.send_id, mb.secret, blob, sizeof blob), OK);
    assert_int_equal(tw_delete(a, mb.recv_id), OK);
    assert_int_equal(tw_fetch(b, mb.recv_id, 0, 0, NULL), NOTFOUND);
    assert_int_equal(tw_send(b, mb.send_id, mb.secret, blob, sizeof blob), UNAUTH);
    alcove_link *c = tw_connect(&f->rp.addr);
    assert_int_equal(tw_login(c, &mb), UNAUTH);
    alcove_link_free(a);
    alcove_link_free(b);
    alcove_link_free(c);
}

static void test_hello_must_come_first_and_only_once(void **state)
{
    fixture *f = *state;
    alcove_link *l = NULL;
    assert_int_equal(alcove_link_open(&l, &f->rp.addr, TW_TIMEOUT), 0);
    Alcove__Wire__Ping p = ALCOVE__WIRE__PING__INIT;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
    req.ping = &p;
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(alcove_link_call(l, &req, &m, TW_TIMEOUT, NULL, NULL), 0);
    assert_int_equal(m->reply->status, BAD);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    /* ...and the relay closed the connection. */
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);

    l = tw_connect(&f->rp.addr);
    Alcove__Wire__Hello h = ALCOVE__WIRE__HELLO__INIT;
    h.version = 1;
    Alcove__Wire__Request again = ALCOVE__WIRE__REQUEST__INIT;
    again.cmd_case = ALCOVE__WIRE__REQUEST__CMD_HELLO;
    again.hello = &h;
    assert_int_equal(alcove_link_call(l, &again, &m, TW_TIMEOUT, NULL, NULL), 0);
    assert_int_equal(m->reply->status, BAD);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);

    /* Unsupported version. */
    assert_int_equal(alcove_link_open(&l, &f->rp.addr, TW_TIMEOUT), 0);
    h.version = 2;
    assert_int_equal(alcove_link_call(l, &again, &m, TW_TIMEOUT, NULL, NULL), 0);
    assert_int_equal(m->reply->status, BAD);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    alcove_link_free(l);
}

static void test_request_ids_must_increase(void **state)
{
    fixture *f = *state;
    alcove_link *l = tw_connect(&f->rp.addr); /* Hello used id 1 */
    Alcove__Wire__Ping p = ALCOVE__WIRE__PING__INIT;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
    req.ping = &p;
    req.id = 1;
    assert_int_equal(alcove_link_send(l, &req, 1, TW_TIMEOUT), 0);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), 0);
    assert_int_equal(m->reply->status, BAD);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);

    /* A Request with no command set. */
    l = tw_connect(&f->rp.addr);
    Alcove__Wire__Request empty = ALCOVE__WIRE__REQUEST__INIT;
    assert_int_equal(alcove_link_call(l, &empty, &m, TW_TIMEOUT, NULL, NULL), 0);
    assert_int_equal(m->reply->status, BAD);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);
}

static int setup_limits(void **state)
{
    static const char *const extra[] = {"--max-messages", "3", "--max-mailbox-bytes", "2500",
                                        "--max-blob", "1000", NULL};
    return start_with(state, extra);
}

static void test_quota_and_blob_limit_answered_with_their_status(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb, mb2;
    uint8_t blob[1001];
    memset(blob, 7, sizeof blob);
    assert_int_equal(tw_create(a, &mb), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 1001), TOOLARGE);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 1000), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 1000), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 1000), QUOTA); /* bytes */
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 100), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 1), QUOTA); /* messages */
    /* Acking frees the quota. */
    assert_int_equal(tw_ack(a, mb.recv_id, 3), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, 1000), OK);
    /* Quota is per mailbox. */
    assert_int_equal(tw_create(a, &mb2), OK);
    assert_int_equal(tw_send(a, mb2.send_id, mb2.secret, blob, 1000), OK);
    alcove_link_free(a);
}

static int setup_ttl(void **state)
{
    static const char *const extra[] = {"--ttl", "1s", "--expiry-interval", "100ms", NULL};
    return start_with(state, extra);
}

static void test_ttl_expiry_removes_old_messages(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    uint8_t blob[32] = {1};
    assert_int_equal(tw_create(a, &mb), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, sizeof blob), OK);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 1);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    /* Poll until the message has expired, with a deadline. */
    uint64_t deadline = test_now_ms() + 10000;
    size_t n = 1;
    while (n != 0 && test_now_ms() < deadline) {
        assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, &m), OK);
        n = m->reply->fetch->n_messages;
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
    assert_int_equal(n, 0);
    alcove_link_free(a);
    /* Fetch hides expired messages at once; the sweep deletes them from
     * disk and logs it.  Wait for that line, then check after a restart
     * that the message is gone and the next seq is still 2. */
    int swept = 0;
    while (!swept && test_now_ms() < deadline + 10000) {
        char *log = test_read_file(f->rp.logpath, NULL);
        swept = log != NULL && strstr(log, "event=expired messages=1") != NULL;
        free(log);
        if (!swept)
            test_sleep_ms(20);
    }
    assert_true(swept);
    int st = relayproc_stop(&f->rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(relayproc_start(&f->rp, NULL), 0);
    a = tw_connect(&f->rp.addr);
    assert_int_equal(tw_login(a, &mb), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, sizeof blob), OK);
    assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 1);
    assert_int_equal(m->reply->fetch->messages[0]->seq, 2);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    alcove_link_free(a);
}

static void test_sigterm_drains_and_acked_messages_survive_restart(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    uint8_t blob[200];
    assert_int_equal(tw_create(a, &mb), OK);
    for (unsigned i = 0; i < 50; i++) {
        blob_of(blob, sizeof blob, i);
        assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, sizeof blob), OK);
    }
    assert_int_equal(tw_ack(a, mb.recv_id, 10), OK);
    int st = relayproc_stop(&f->rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    alcove_link_free(a);

    assert_int_equal(relayproc_start(&f->rp, NULL), 0);
    a = tw_connect(&f->rp.addr);
    assert_int_equal(tw_login(a, &mb), OK);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(tw_fetch(a, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 40);
    for (unsigned i = 0; i < 40; i++) {
        assert_int_equal(m->reply->fetch->messages[i]->seq, 11 + i);
        blob_of(blob, sizeof blob, 10 + i);
        assert_memory_equal(m->reply->fetch->messages[i]->blob.data, blob, sizeof blob);
    }
    alcove__wire__relay_message__free_unpacked(m, NULL);
    alcove_link_free(a);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_log_holds_no_mailbox_ids_at_default_level(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    uint8_t blob[8] = {1};
    assert_int_equal(tw_create(a, &mb), OK);
    assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, sizeof blob), OK);
    assert_int_equal(tw_delete(a, mb.recv_id), OK);
    alcove_link_free(a);
    int st = relayproc_stop(&f->rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t len = 0;
    char *log = test_read_file(f->rp.logpath, &len);
    assert_non_null(log);
    assert_non_null(strstr(log, "event=listening")); /* the log is real */
    char hx[33], b64[40];
    const uint8_t *ids[2] = {mb.recv_id, mb.send_id};
    for (int i = 0; i < 2; i++) {
        hex(ids[i], 16, hx);
        assert_null(strstr(log, hx));
        assert_int_equal(alcove_b64url_encode(ids[i], 16, b64, sizeof b64), 0);
        assert_null(strstr(log, b64));
    }
    assert_null(strstr(log, "127.0.0.1:"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_send_fetch_ack_fetch_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_with_signature_from_other_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_commands_without_login_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_send_secret_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_field_sizes_get_bad_request_and_connection_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_receives_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_mailbox_then_not_found_and_send_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hello_must_come_first_and_only_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_ids_must_increase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_and_blob_limit_answered_with_their_status, setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry_removes_old_messages, setup_ttl, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_drains_and_acked_messages_survive_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_holds_no_mailbox_ids_at_default_level, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
