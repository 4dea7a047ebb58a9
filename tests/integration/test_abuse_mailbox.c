/* Abuse: getting into someone else's mailbox.  Thousands of forged,
 * replayed and cross-connection Login / Fetch / Ack / Subscribe /
 * DeleteMailbox / Send attempts against victims who are logged in on their
 * own connection meanwhile.  Every attempt must fail (0 succeed), the
 * victims' messages must be untouched, and the answers must not tell an
 * existing mailbox from a missing one (same status and detail; the median
 * times are printed).  Counts: CI as below, x5 with ALCOVE_LONG=1. */
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
#include "fault_util.h"
#include "relayproc.h"
#include "wire.h"

#define NV 3
#define S_OK ALCOVE__WIRE__STATUS__OK

typedef struct tally {
    const char *name;
    long tries, ok, unauthorized, other;
} tally;

static void count(tally *t, int st)
{
    t->tries++;
    if (st == S_OK)
        t->ok++;
    else if (st == ALCOVE__WIRE__STATUS__UNAUTHORIZED)
        t->unauthorized++;
    else
        t->other++;
}

/* A Login with the given recv_id and signature bytes; returns the status
 * and copies the detail. */
static int raw_login(alcove_link *l, const uint8_t recv_id[16], const uint8_t sig[64],
                     char *detail, size_t dcap, uint64_t *us)
{
    Alcove__Wire__Login lg = ALCOVE__WIRE__LOGIN__INIT;
    lg.recv_id.data = (uint8_t *)(uintptr_t)recv_id;
    lg.recv_id.len = 16;
    lg.sig.data = (uint8_t *)(uintptr_t)sig;
    lg.sig.len = 64;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
    req.login = &lg;
    Alcove__Wire__RelayMessage *m = NULL;
    uint64_t t0 = fault_now_us();
    int rc = alcove_link_call(l, &req, &m, TW_TIMEOUT, NULL, NULL);
    if (us != NULL)
        *us = fault_now_us() - t0;
    if (rc != 0)
        return rc;
    int st = (int)m->reply->status;
    if (detail != NULL)
        snprintf(detail, dcap, "%s", m->reply->detail ? m->reply->detail : "");
    alcove__wire__relay_message__free_unpacked(m, NULL);
    return st;
}

static int raw_send(alcove_link *l, const uint8_t send_id[16], const uint8_t secret[32],
                    char *detail, size_t dcap, uint64_t *us)
{
    uint8_t blob[64] = {9};
    Alcove__Wire__Send s = ALCOVE__WIRE__SEND__INIT;
    s.send_id.data = (uint8_t *)(uintptr_t)send_id;
    s.send_id.len = 16;
    s.send_secret.data = (uint8_t *)(uintptr_t)secret;
    s.send_secret.len = 32;
    s.blob.data = blob;
    s.blob.len = sizeof blob;
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    req.send = &s;
    Alcove__Wire__RelayMessage *m = NULL;
    uint64_t t0 = fault_now_us();
    int rc = alcove_link_call(l, &req, &m, TW_TIMEOUT, NULL, NULL);
    if (us != NULL)
        *us = fault_now_us() - t0;
    if (rc != 0)
        return rc;
    int st = (int)m->reply->status;
    if (detail != NULL)
        snprintf(detail, dcap, "%s", m->reply->detail ? m->reply->detail : "");
    alcove__wire__relay_message__free_unpacked(m, NULL);
    return st;
}

static void sign_login(uint8_t sig[64], const uint8_t h[64], const uint8_t recv_id[16],
                       const uint8_t sk[64])
{
    uint8_t msg[15 + 64 + 16];
    memcpy(msg, "alcove-login-v1", 15);
    memcpy(msg + 15, h, 64);
    memcpy(msg + 79, recv_id, 16);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
}

static void test_forged_replayed_cross_connection_access_all_fail(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    long x = fault_long_mode() ? 5 : 1;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);

    /* Victims: logged in and subscribed on their own connection. */
    alcove_link *victim = tw_connect(&rp.addr);
    test_mbox v[NV];
    uint8_t blob[100];
    for (int i = 0; i < NV; i++) {
        assert_int_equal(tw_create(victim, &v[i]), S_OK);
        assert_int_equal(tw_subscribe(victim, v[i].recv_id), S_OK);
        for (int k = 0; k < 5; k++) {
            memset(blob, i * 16 + k, sizeof blob);
            assert_int_equal(tw_send(victim, v[i].send_id, v[i].secret, blob, sizeof blob), S_OK);
        }
    }
    const uint8_t *vh = alcove_link_hash(victim);

    tally t[] = {{"login_random_id_and_sig", 0, 0, 0, 0},
                 {"login_victim_id_random_sig", 0, 0, 0, 0},
                 {"login_victim_id_attacker_key", 0, 0, 0, 0},
                 {"login_replayed_from_victim_connection", 0, 0, 0, 0},
                 {"login_sig_for_another_mailbox", 0, 0, 0, 0},
                 {"owner_cmds_not_logged_in", 0, 0, 0, 0},
                 {"owner_cmds_beside_own_mailbox", 0, 0, 0, 0},
                 {"send_wrong_secret", 0, 0, 0, 0},
                 {"login_bad_field_sizes", 0, 0, 0, 0}};
    uint8_t rid[16], sig[64], secret[32];
    char d_unknown[128] = "", d_badsig[128] = "", d_send_unknown[128] = "", d_send_bad[128] = "";
    double tu[2][600];
    size_t ntu[2] = {0, 0};
    double ts[2][600];
    size_t nts[2] = {0, 0};

    alcove_link *att = tw_connect(&rp.addr);
    const uint8_t *ah = alcove_link_hash(att);
    test_mbox own;
    uint8_t apk[32], ask[64];
    crypto_sign_keypair(apk, ask);
    for (long i = 0; i < 1000 * x; i++) {
        uint64_t us;
        randombytes_buf(rid, sizeof rid);
        randombytes_buf(sig, sizeof sig);
        count(&t[0], raw_login(att, rid, sig, d_unknown, sizeof d_unknown, &us));
        if (ntu[0] < 600)
            tu[0][ntu[0]++] = (double)us;
        randombytes_buf(sig, sizeof sig);
        count(&t[1], raw_login(att, v[i % NV].recv_id, sig, d_badsig, sizeof d_badsig, &us));
        if (ntu[1] < 600)
            tu[1][ntu[1]++] = (double)us;
    }
    for (long i = 0; i < 500 * x; i++) {
        sign_login(sig, ah, v[i % NV].recv_id, ask);
        count(&t[2], raw_login(att, v[i % NV].recv_id, sig, NULL, 0, NULL));
        /* The victim's key signing mailbox A, presented for mailbox B. */
        sign_login(sig, ah, v[i % NV].recv_id, v[i % NV].auth_sk);
        count(&t[4], raw_login(att, v[(i + 1) % NV].recv_id, sig, NULL, 0, NULL));
    }
    /* Replays of the victim's own Login (bound to the victim's handshake
     * hash) on fresh connections, one per connection. */
    for (long i = 0; i < 300 * x; i++) {
        alcove_link *l = tw_connect(&rp.addr);
        sign_login(sig, vh, v[i % NV].recv_id, v[i % NV].auth_sk);
        count(&t[3], raw_login(l, v[i % NV].recv_id, sig, NULL, 0, NULL));
        alcove_link_free(l);
    }
    /* Owner commands on victims' mailboxes without logging in. */
    for (long i = 0; i < 500 * x; i++) {
        const uint8_t *r = v[i % NV].recv_id;
        count(&t[5], tw_fetch(att, r, 0, 0, NULL));
        count(&t[5], tw_ack(att, r, 1000));
        count(&t[5], tw_subscribe(att, r));
        count(&t[5], tw_delete(att, r));
    }
    /* The same beside a mailbox of one's own (session confusion). */
    assert_int_equal(tw_create(att, &own), S_OK);
    for (long i = 0; i < 500 * x; i++) {
        const uint8_t *r = v[i % NV].recv_id;
        count(&t[6], tw_fetch(att, r, 0, 0, NULL));
        count(&t[6], tw_ack(att, r, 1000));
        count(&t[6], tw_subscribe(att, r));
        count(&t[6], tw_delete(att, r));
    }
    /* Sends with the victim's send_id and a guessed secret, and with an
     * unknown send_id (for the existence comparison). */
    for (long i = 0; i < 1000 * x; i++) {
        uint64_t us;
        randombytes_buf(secret, sizeof secret);
        count(&t[7], raw_send(att, v[i % NV].send_id, secret, d_send_bad, sizeof d_send_bad, &us));
        if (nts[1] < 600)
            ts[1][nts[1]++] = (double)us;
        randombytes_buf(rid, sizeof rid);
        int st = raw_send(att, rid, secret, d_send_unknown, sizeof d_send_unknown, &us);
        assert_int_equal(st, ALCOVE__WIRE__STATUS__UNAUTHORIZED);
        if (nts[0] < 600)
            ts[0][nts[0]++] = (double)us;
    }
    /* Wrong field sizes: refused as BAD_REQUEST, never OK. */
    for (long i = 0; i < 100 * x; i++) {
        Alcove__Wire__Login lg = ALCOVE__WIRE__LOGIN__INIT;
        lg.recv_id.data = v[0].recv_id;
        lg.recv_id.len = 15 + (size_t)(i % 3); /* 15, 16, 17 */
        sign_login(sig, ah, v[0].recv_id, v[0].auth_sk);
        lg.sig.data = sig;
        lg.sig.len = lg.recv_id.len == 16 ? 63 : 64;
        Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
        req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
        req.login = &lg;
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(alcove_link_call(att, &req, &m, TW_TIMEOUT, NULL, NULL), 0);
        count(&t[8], (int)m->reply->status);
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
    /* The attacker connection never got a Push. */
    int pushes = 0;
    Alcove__Wire__RelayMessage *pm = NULL;
    while (alcove_link_recv(att, &pm, 50) == 0) {
        pushes += pm->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH;
        alcove__wire__relay_message__free_unpacked(pm, NULL);
    }
    alcove_link_free(att);

    /* The victims' mailboxes are untouched. */
    int intact = 1;
    for (int i = 0; i < NV; i++) {
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(tw_fetch(victim, v[i].recv_id, 0, 0, &m), S_OK);
        Alcove__Wire__FetchResult *fr = m->reply->fetch;
        intact &= fr->n_messages == 5;
        for (size_t k = 0; k < fr->n_messages; k++)
            intact &= fr->messages[k]->seq == k + 1 &&
                      fr->messages[k]->blob.data[0] == (uint8_t)(i * 16 + (int)k);
        alcove__wire__relay_message__free_unpacked(m, NULL);
    }
    alcove_link_free(victim);
    int st = relayproc_stop(&rp, SIGTERM, 10000);

    long total = 0, ok = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        printf("abuse_mailbox:   %-38s tries=%ld ok=%ld unauthorized=%ld other=%ld\n", t[i].name,
               t[i].tries, t[i].ok, t[i].unauthorized, t[i].other);
        total += t[i].tries;
        ok += t[i].ok;
    }
    double lu = fault_percentile(tu[0], ntu[0], 50), lk = fault_percentile(tu[1], ntu[1], 50);
    double su = fault_percentile(ts[0], nts[0], 50), sk = fault_percentile(ts[1], nts[1], 50);
    printf("abuse_mailbox: attempts=%ld succeeded=%ld pushes_to_attacker=%d victims_intact=%d | "
           "existence: login unknown '%s' vs bad-sig '%s' (median %.0f vs %.0f us); send "
           "unknown '%s' vs wrong-secret '%s' (median %.0f vs %.0f us)\n",
           total, ok, pushes, intact, d_unknown, d_badsig, lu, lk, d_send_unknown, d_send_bad, su,
           sk);
    assert_int_equal(ok, 0);
    assert_int_equal(pushes, 0);
    assert_true(intact);
    for (int i = 0; i < 8; i++)
        assert_int_equal(t[i].unauthorized, t[i].tries);
    assert_int_equal(t[8].other, t[8].tries); /* BAD_REQUEST */
    assert_string_equal(d_unknown, d_badsig);
    assert_string_equal(d_send_unknown, d_send_bad);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forged_replayed_cross_connection_access_all_fail),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
