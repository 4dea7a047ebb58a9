/* The admin listener: Prometheus text at /metrics that follows the relay's
 * traffic and never names a mailbox or an address; a tiny HTTP/1.0
 * responder that answers nothing else, bounds what it reads and how many it
 * serves, and is off unless configured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "test_operator_util.h"
#include "wire.h"

#define OK ALCOVE__WIRE__STATUS__OK
/* More than the listener serves at once (16). */
#define RELAY_ADMIN_TEST_CLIENTS 20

typedef struct fixture {
    char tmp[256];
    relayproc rp;
    unsigned port;
    int idle_fd; /* an admin client still open when the relay stops, or -1 */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    test_mkdtemp(f->tmp, sizeof f->tmp);
    relayproc_init_dir(&f->rp, f->tmp);
    const char *extra[] = {"--admin-listen", "127.0.0.1:0", "--max-blob", "1000", NULL};
    assert_int_equal(relayproc_start(&f->rp, extra), 0);
    f->port = admin_port(&f->rp);
    assert_true(f->port > 0);
    f->idle_fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->rp.pid > 0) {
        int st = relayproc_stop(&f->rp, SIGTERM, 10000);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    if (f->idle_fd >= 0)
        close(f->idle_fd);
    test_rmtree(f->tmp);
    free(f);
    return 0;
}

static char *scrape(unsigned port)
{
    char *r = http_get(port, "/metrics");
    assert_non_null(r);
    if (strncmp(r, "HTTP/1.0 200 OK\r\n", 17) != 0)
        fail_msg("expected 200, got: %.80s", r);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    return r;
}

static void expect_metric(const char *body, const char *series, double want)
{
    double got = metric(body, series);
    if (got != want)
        fail_msg("%s: want %g, got %g", series, want, got);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_metrics_follow_traffic_and_name_no_mailbox(void **state)
{
    fixture *f = *state;
    char *before = scrape(f->port);
    expect_metric(before, "alcove_connections_open", 0);
    expect_metric(before, "alcove_requests_total{command=\"send\",status=\"ok\"}", 0);
    expect_metric(before, "alcove_mailboxes", 0);
    free(before);

    alcove_link *l = tw_connect(&f->rp.addr);
    test_mbox a, b;
    assert_int_equal(tw_create(l, &a), OK);
    assert_int_equal(tw_create(l, &b), OK);
    uint8_t blob[500], big[2000];
    memset(blob, 7, sizeof blob);
    memset(big, 8, sizeof big);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tw_send(l, a.send_id, a.secret, blob, sizeof blob), OK);
    assert_int_equal(tw_send(l, b.send_id, b.secret, blob, sizeof blob), OK);
    assert_int_equal(tw_send(l, a.send_id, a.secret, big, sizeof big),
                     ALCOVE__WIRE__STATUS__TOO_LARGE);
    assert_int_equal(tw_send(l, a.send_id, b.secret, blob, sizeof blob),
                     ALCOVE__WIRE__STATUS__UNAUTHORIZED);
    assert_int_equal(tw_ack(l, a.recv_id, 2), OK);
    assert_int_equal(tw_ping(l), OK);

    char *m = scrape(f->port);
    expect_metric(m, "alcove_connections_open", 1);
    expect_metric(m, "alcove_connections_total", 1);
    expect_metric(m, "alcove_handshakes_total{result=\"ok\"}", 1);
    expect_metric(m, "alcove_requests_total{command=\"hello\",status=\"ok\"}", 1);
    expect_metric(m, "alcove_requests_total{command=\"create_mailbox\",status=\"ok\"}", 2);
    expect_metric(m, "alcove_requests_total{command=\"send\",status=\"ok\"}", 6);
    expect_metric(m, "alcove_requests_total{command=\"send\",status=\"too_large\"}", 1);
    expect_metric(m, "alcove_requests_total{command=\"send\",status=\"unauthorized\"}", 1);
    expect_metric(m, "alcove_requests_total{command=\"ack\",status=\"ok\"}", 1);
    expect_metric(m, "alcove_requests_total{command=\"ping\",status=\"ok\"}", 1);
    expect_metric(m, "alcove_mailboxes", 2);
    expect_metric(m, "alcove_stored_messages", 4);
    expect_metric(m, "alcove_stored_bytes", 4 * 500);
    assert_true(metric(m, "alcove_received_bytes_total") > 4000);
    assert_true(metric(m, "alcove_sent_bytes_total") > 0);
    assert_true(metric(m, "alcove_commit_batch_ops_count") >= 1);
    assert_true(metric(m, "alcove_commit_duration_seconds_count") >= 1);
    assert_true(metric(m, "alcove_commit_batch_ops_bucket{le=\"+Inf\"}") ==
                metric(m, "alcove_commit_batch_ops_count"));
    assert_true(metric(m, "alcove_store_map_size_bytes") > 0);
    assert_true(metric(m, "alcove_store_used_bytes") > 0);
    expect_metric(m, "alcove_commit_failures_total", 0);
    expect_metric(m, "alcove_expired_messages_total", 0);

    /* No mailbox id, send id or address anywhere, in any encoding we use. */
    char h[33];
    const uint8_t *ids[] = {a.recv_id, a.send_id, b.recv_id, b.send_id};
    for (size_t i = 0; i < 4; i++) {
        hex(ids[i], 16, h);
        assert_null(strstr(m, h));
    }
    assert_null(strstr(m, "127.0.0.1"));
    /* Every sample line is name{fixed labels} value: the label values are
     * from the fixed sets (command, status, reason, result, le, version). */
    for (const char *p = m; (p = strstr(p, "=\"")) != NULL; p += 2) {
        const char *e = strchr(p + 2, '"');
        assert_non_null(e);
        assert_true(e - p < 40);
    }
    free(m);
    alcove_link_free(l);

    /* The connection closed: open drops, peer_closed counts it. */
    uint64_t deadline = test_now_ms() + 5000;
    double open = 1;
    while (open != 0 && test_now_ms() < deadline) {
        m = scrape(f->port);
        open = metric(m, "alcove_connections_open");
        free(m);
        if (open != 0)
            test_sleep_ms(20);
    }
    assert_true(open == 0);
}

static void test_admin_answers_only_get_metrics(void **state)
{
    fixture *f = *state;
    char *r = http_get(f->port, "/");
    assert_non_null(r);
    assert_true(strncmp(r, "HTTP/1.0 404", 12) == 0);
    free(r);
    r = http_get(f->port, "/metrics/../etc/passwd");
    assert_true(strncmp(r, "HTTP/1.0 404", 12) == 0);
    free(r);
    r = http_get(f->port, "/metrics?name=x");
    assert_true(strncmp(r, "HTTP/1.0 200", 12) == 0);
    free(r);
    const char post[] = "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
    r = http_raw(f->port, post, sizeof post - 1);
    assert_true(strncmp(r, "HTTP/1.0 405", 12) == 0);
    assert_non_null(strstr(r, "Allow: GET"));
    free(r);
    const char junk[] = "hello there\r\n\r\n";
    r = http_raw(f->port, junk, sizeof junk - 1);
    assert_true(strncmp(r, "HTTP/1.0 400", 12) == 0);
    free(r);
    /* HTTP/1.1 clients (curl, Prometheus) get an HTTP/1.0 answer too. */
    const char v11[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    r = http_raw(f->port, v11, sizeof v11 - 1);
    assert_true(strncmp(r, "HTTP/1.0 200", 12) == 0);
    free(r);
    /* Half a request, still open when the relay stops (teardown): the
     * drain closes it and the relay still exits 0. */
    f->idle_fd = tcp_connect(f->port);
    assert_true(f->idle_fd >= 0);
    assert_int_equal(send(f->idle_fd, "GET /met", 8, MSG_NOSIGNAL), 8);
    test_sleep_ms(50);
}

static void test_admin_bounds_request_size_time_and_clients(void **state)
{
    fixture *f = *state;
    /* A head that never ends: cut at 4096 bytes with 400. */
    size_t n = 20000;
    char *big = malloc(n);
    assert_non_null(big);
    memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
    memset(big + 26, 'a', n - 26);
    char *r = http_raw(f->port, big, n);
    free(big);
    assert_non_null(r);
    assert_true(strncmp(r, "HTTP/1.0 400", 12) == 0);
    free(r);

    /* More idle clients than it serves: the extra ones are closed at once,
     * the rest after the request timeout; /metrics still answers after. */
    int fds[RELAY_ADMIN_TEST_CLIENTS];
    for (int i = 0; i < RELAY_ADMIN_TEST_CLIENTS; i++) {
        fds[i] = tcp_connect(f->port);
        assert_true(fds[i] >= 0);
    }
    assert_true(test_wait_closed(fds[RELAY_ADMIN_TEST_CLIENTS - 1], 2000));
    uint64_t t0 = test_now_ms();
    assert_true(test_wait_closed(fds[0], 8000));
    uint64_t waited = test_now_ms() - t0;
    assert_true(waited > 2000); /* held until the 5 s timeout, not at once */
    for (int i = 0; i < RELAY_ADMIN_TEST_CLIENTS; i++)
        close(fds[i]);
    test_sleep_ms(100);
    char *m = scrape(f->port);
    free(m);
}

static void test_admin_is_off_unless_configured(void **state)
{
    (void)state;
    char tmp[256], conf[300];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    alcove_link *l = tw_connect(&rp.addr);
    assert_int_equal(tw_ping(l), OK);
    alcove_link_free(l);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *log = test_read_file(rp.logpath, NULL);
    assert_non_null(log);
    assert_null(strstr(log, "admin_listening"));
    free(log);

    /* Beyond loopback only when asked twice. */
    snprintf(conf, sizeof conf, "%s/remote.conf", tmp);
    write_text(conf, "[admin]\nadmin-listen = 0.0.0.0:9770\n");
    run_result r;
    relay_cmd(&r, (const char *[]){"check-config", "--config", conf, NULL});
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "remote.conf:2: admin-listen"));
    assert_non_null(strstr(r.err, "not a loopback address"));
    run_result_free(&r);
    write_text(conf, "[admin]\nadmin-listen = 0.0.0.0:9770\nadmin-allow-remote = yes\n");
    relay_cmd(&r, (const char *[]){"check-config", "--config", conf, NULL});
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "admin-listen = 0.0.0.0:9770"));
    run_result_free(&r);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_follow_traffic_and_name_no_mailbox, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_answers_only_get_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_bounds_request_size_time_and_clients, setup,
                                        teardown),
        cmocka_unit_test(test_admin_is_off_unless_configured),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
