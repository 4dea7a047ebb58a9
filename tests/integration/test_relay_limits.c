/* Limits of a real relay, each configured by its flag and answered with its
 * own Status or by closing the connection: map growth, idle-mailbox expiry,
 * connection limit, idle timeout, request rate, and the address command. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "relayproc.h"
#include "wire.h"

typedef relay_fixture fixture;

static int start_with(void **state, const char *const *extra)
{
    return relay_fixture_start(state, extra);
}

static int teardown(void **state) { return relay_fixture_teardown(state); }

static int setup_big(void **state)
{
    static const char *const extra[] = {"--max-messages", "0", "--max-mailbox-bytes", "0", NULL};
    return start_with(state, extra);
}

/* The store starts with a 64 MiB map; 72 MB of blobs must grow it rather
 * than fail with MDB_MAP_FULL, and survive a restart. */
static void test_map_grows_instead_of_failing(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(a, &mb), ALCOVE__WIRE__STATUS__OK);
    enum { N = 1200, SZ = 60000 };
    uint8_t *blob = malloc(SZ);
    assert_non_null(blob);
    for (unsigned i = 0; i < N; i++) {
        randombytes_buf(blob, SZ); /* incompressible, distinct */
        blob[0] = (uint8_t)i;
        blob[1] = (uint8_t)(i >> 8);
        assert_int_equal(tw_send(a, mb.send_id, mb.secret, blob, SZ), ALCOVE__WIRE__STATUS__OK);
    }
    free(blob);
    alcove_link_free(a);
    int st = relayproc_stop(&f->rp, SIGTERM, 20000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(relayproc_start(&f->rp, NULL), 0);
    a = tw_connect(&f->rp.addr);
    assert_int_equal(tw_login(a, &mb), ALCOVE__WIRE__STATUS__OK);
    uint64_t after = 0;
    unsigned n = 0;
    for (;;) {
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(tw_fetch(a, mb.recv_id, after, 0, &m), ALCOVE__WIRE__STATUS__OK);
        Alcove__Wire__FetchResult *fr = m->reply->fetch;
        for (size_t k = 0; k < fr->n_messages; k++) {
            assert_int_equal(fr->messages[k]->blob.len, SZ);
            unsigned idx = fr->messages[k]->blob.data[0] | (fr->messages[k]->blob.data[1] << 8);
            assert_int_equal(idx, n);
            n++;
            after = fr->messages[k]->seq;
        }
        int more = fr->more;
        alcove__wire__relay_message__free_unpacked(m, NULL);
        if (!more)
            break;
    }
    assert_int_equal(n, N);
    char *log = test_read_file(f->rp.logpath, NULL);
    assert_non_null(log);
    /* The second start reports a map larger than the initial 64 MiB. */
    const char *p = strstr(log, "event=store_loaded mailboxes=1");
    assert_non_null(p);
    unsigned long long map = 0;
    const char *mp = strstr(p, "map_bytes=");
    assert_non_null(mp);
    assert_int_equal(sscanf(mp, "map_bytes=%llu", &map), 1);
    assert_true(map > (64ull << 20));
    free(log);
    alcove_link_free(a);
}

static int setup_idle_mailbox(void **state)
{
    static const char *const extra[] = {"--mailbox-idle", "1s", "--expiry-interval", "100ms", NULL};
    return start_with(state, extra);
}

static void test_idle_mailbox_expires_when_unused(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    test_mbox idle, busy;
    uint8_t blob[16] = {1};
    assert_int_equal(tw_create(a, &idle), ALCOVE__WIRE__STATUS__OK);
    assert_int_equal(tw_send(a, idle.send_id, idle.secret, blob, sizeof blob), ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(a);
    /* A mailbox someone stays logged in to is in use and is kept. */
    alcove_link *keep = tw_connect(&f->rp.addr);
    assert_int_equal(tw_create(keep, &busy), ALCOVE__WIRE__STATUS__OK);
    /* A Login counts as use, so watch the log instead of probing. */
    uint64_t deadline = test_now_ms() + 15000;
    int gone = 0;
    while (!gone && test_now_ms() < deadline) {
        char *log = test_read_file(f->rp.logpath, NULL);
        gone = log != NULL && strstr(log, "event=mailbox_deleted by=idle_expiry") != NULL;
        free(log);
        if (!gone)
            test_sleep_ms(50);
    }
    assert_true(gone);
    alcove_link *b = tw_connect(&f->rp.addr);
    assert_int_equal(tw_login(b, &idle), ALCOVE__WIRE__STATUS__UNAUTHORIZED);
    assert_int_equal(tw_send(b, idle.send_id, idle.secret, blob, sizeof blob),
                     ALCOVE__WIRE__STATUS__UNAUTHORIZED);
    alcove_link_free(b);
    assert_int_equal(tw_fetch(keep, busy.recv_id, 0, 0, NULL), ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(keep);
}

static int setup_conn_limit(void **state)
{
    static const char *const extra[] = {"--max-connections", "3", NULL};
    return start_with(state, extra);
}

static void test_connection_limit_closes_extra_connections(void **state)
{
    fixture *f = *state;
    alcove_link *l[3];
    for (int i = 0; i < 3; i++)
        l[i] = tw_connect(&f->rp.addr);
    alcove_link *extra = NULL;
    int rc = alcove_link_open(&extra, &f->rp.addr, 5000);
    assert_int_not_equal(rc, 0); /* closed before the handshake completes */
    alcove_link_free(extra);
    /* The three keep working, and a slot frees when one leaves. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(tw_ping(l[i]), ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(l[0]);
    uint64_t deadline = test_now_ms() + 10000;
    alcove_link *again = NULL;
    while (test_now_ms() < deadline) {
        if (alcove_link_open(&again, &f->rp.addr, 5000) == 0)
            break;
        alcove_link_free(again);
        again = NULL;
        test_sleep_ms(50);
    }
    assert_non_null(again);
    alcove_link_free(again);
    alcove_link_free(l[1]);
    alcove_link_free(l[2]);
}

static int setup_idle_timeout(void **state)
{
    static const char *const extra[] = {"--idle-timeout", "500ms", NULL};
    return start_with(state, extra);
}

static void test_idle_connection_is_closed(void **state)
{
    fixture *f = *state;
    alcove_link *quiet = tw_connect(&f->rp.addr);
    alcove_link *chatty = tw_connect(&f->rp.addr);
    uint64_t t0 = test_now_ms();
    /* The chatty one pings every 100 ms and stays open. */
    Alcove__Wire__RelayMessage *m = NULL;
    int closed = 0;
    while (!closed && test_now_ms() - t0 < 10000) {
        assert_int_equal(tw_ping(chatty), ALCOVE__WIRE__STATUS__OK);
        int rc = alcove_link_recv(quiet, &m, 100);
        if (rc == ALCOVE_ECLOSED)
            closed = 1;
        else
            assert_int_equal(rc, ALCOVE_ETIMEDOUT);
    }
    assert_true(closed);
    assert_true(test_now_ms() - t0 >= 400);
    assert_int_equal(tw_ping(chatty), ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(quiet);
    alcove_link_free(chatty);
}

static int setup_rate(void **state)
{
    static const char *const extra[] = {"--rate", "10", "--rate-burst", "5", NULL};
    return start_with(state, extra);
}

static void test_request_rate_answered_rate_limited(void **state)
{
    fixture *f = *state;
    alcove_link *a = tw_connect(&f->rp.addr);
    int ok = 0, limited = 0;
    for (int i = 0; i < 20; i++) {
        int st = tw_ping(a);
        if (st == ALCOVE__WIRE__STATUS__OK)
            ok++;
        else if (st == ALCOVE__WIRE__STATUS__RATE_LIMITED)
            limited++;
        else
            fail_msg("unexpected status %d", st);
    }
    /* 5 burst plus at most a couple refilled while the loop ran. */
    assert_true(ok >= 5 && ok <= 10);
    assert_true(limited >= 10);
    /* The connection stays usable once the bucket refills. */
    uint64_t deadline = test_now_ms() + 5000;
    int st = -1;
    while (st != ALCOVE__WIRE__STATUS__OK && test_now_ms() < deadline) {
        test_sleep_ms(150);
        st = tw_ping(a);
    }
    assert_int_equal(st, ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(a);
}

static int setup_plain(void **state) { return start_with(state, NULL); }

static void test_address_command_prints_the_same_key(void **state)
{
    fixture *f = *state;
    char cmd[600], line[400];
    snprintf(cmd, sizeof cmd, "%s address --data %s", test_relay_bin(), f->rp.dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    alcove_relay_addr a;
    const char *why = NULL;
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(alcove_addr_parse(line, &a, &why), 0);
    assert_memory_equal(a.key, f->rp.addr.key, 32);
    /* init refuses to replace an existing key. */
    snprintf(cmd, sizeof cmd, "%s init --data %s 2>/dev/null", test_relay_bin(), f->rp.dir);
    assert_int_not_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_map_grows_instead_of_failing, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_idle_mailbox_expires_when_unused, setup_idle_mailbox, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit_closes_extra_connections, setup_conn_limit, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_is_closed, setup_idle_timeout, teardown),
        cmocka_unit_test_setup_teardown(test_request_rate_answered_rate_limited, setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_address_command_prints_the_same_key, setup_plain, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
